//! The operator's console: RTO judged in `status` (from verifications and drills' restore
//! steps; "not measured" is never OK; a much larger newest backup is said), and the status
//! page — written by `drctl report --html`, served by the daemon at `/` — read in a real
//! headless Chromium at a phone's width.

use crate::common::*;
use crate::schedule::Daemon;
use std::path::Path;
use std::time::{Duration, Instant};

fn status_json(w: &World) -> (Option<i32>, serde_json::Value, String) {
    let o = w.drctl(&["-o", "json", "status"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, stderr(&o))
}

fn restore_drill(w: &World, pg: &Pg, db: &str) {
    let out = w
        .cmd(&[
            "drill",
            "run",
            "restore-from-backup",
            "--var",
            "job=app",
            "--var",
            &format!("admin={}", pg.url("postgres")),
            "--var",
            &format!("database={db}"),
            "--var",
            &format!("target={}", pg.url(db)),
            "--var",
            "check_query=SELECT count(*) FROM orders",
        ])
        .env("DRCTL_EVIDENCE_DIR", w.dir.join("ev"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn rto_is_judged_from_verify_and_drill_restores_and_not_measured_is_never_ok() {
    let (pg, src, w) = seeded_world("console_rto", 2);
    let base = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!("{base}    rpo: 1h\n    rto: 1h\n"));
    w.backup_ok();

    // A target and no timed restore: not measured, a breach, exit 1.
    let (code, s, err) = status_json(&w);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(s[0]["rto_state"], "not_measured", "{s:#}");
    assert_eq!(s[0]["rto_breached"], true);
    assert!(s[0]["rto_measured"].is_null());
    assert!(err.contains("RTO breached or not measured: app"), "{err}");
    let o = w.drctl(&["status"]);
    assert!(stdout(&o).contains("RTO NOT MEASURED"), "{}", stdout(&o));

    // A scratch restore by verify is a measurement: met, exit 0.
    w.write_config(&format!(
        "{base}    rpo: 1h\n    rto: 1h\n    verify: {{ level: restore, scratch: \"{}\" }}\n",
        pg.url("postgres")
    ));
    let o = w.drctl(&["verify", "app", "--level", "restore"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (code, s, err) = status_json(&w);
    assert_eq!(code, Some(0), "{err}\n{s:#}");
    assert_eq!(s[0]["rto_state"], "met");
    assert_eq!(s[0]["rto_measured"]["by"], "verify");
    let verify_secs = s[0]["rto_measured"]["seconds"].as_f64().unwrap();
    assert!(verify_secs > 0.0);

    // A drill's restore step, newer, is the measurement now.
    restore_drill(&w, pg, &src);
    let (code, s, err) = status_json(&w);
    assert_eq!(code, Some(0), "{err}");
    let by = s[0]["rto_measured"]["by"].as_str().unwrap();
    assert!(by.starts_with("drill restore-from-backup/"), "{by}");
    assert!(s[0]["rto_measured"]["raw_bytes"].as_u64().unwrap() > 0);

    // A target tighter than the measurement: breached, exit 1, in the text too.
    let tight = std::fs::read_to_string(&w.config)
        .unwrap()
        .replace("rto: 1h", "rto: 1ms");
    w.write_config(&tight);
    let (code, s, err) = status_json(&w);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(s[0]["rto_state"], "breached");
    let o = w.drctl(&["status"]);
    assert!(stdout(&o).contains("RTO BREACHED"), "{}", stdout(&o));

    // The data grows fourfold: the newest backup is much larger than the one timed, and
    // the status says so with a scaled estimate (the verdict stays on the measurement).
    w.write_config(&tight.replace("rto: 1ms", "rto: 1h"));
    pg.psql(
        &src,
        "INSERT INTO orders(customer_id, amount, note, placed) SELECT 1 + g % 3000, g, repeat('m', 400), date '2025-01-01' FROM generate_series(1, 20000) g",
    );
    w.backup_ok();
    let (code, s, err) = status_json(&w);
    assert_eq!(code, Some(0), "{err}");
    let ratio = s[0]["rto_size_ratio"].as_f64().unwrap();
    assert!(ratio >= 1.5, "{s:#}");
    let note = s[0]["rto_note"].as_str().unwrap();
    assert!(note.contains("the size of") && note.contains('×'), "{note}");
    let est = s[0]["rto_estimated_seconds"].as_f64().unwrap();
    let measured = s[0]["rto_measured"]["seconds"].as_f64().unwrap();
    assert!(
        (est - measured * ratio).abs() < 1e-6,
        "{est} vs {measured} × {ratio}"
    );
    let o = w.drctl(&["status"]);
    assert!(stdout(&o).contains("the size of"), "{}", stdout(&o));
}

/// What the page shows in Chromium, laid out in a 390 px wide frame: read by a script in a
/// wrapper page (the page itself has none), written into the dumped DOM.
const PROBE: &str = r#"<!doctype html><html><body style="margin:0"><iframe id="f" src="page.html" style="width:390px;height:3000px;border:0"></iframe><script>
const f = document.getElementById('f');
f.addEventListener('load', () => {
  const d = f.contentDocument, w = f.contentWindow, over = [];
  for (const e of d.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w.innerWidth + 0.5) over.push(e.tagName + '.' + e.getAttribute('class') + ' right=' + Math.round(r.right));
  }
  const marks = {};
  for (const s of d.querySelectorAll('svg[data-chart]')) marks[s.dataset.chart] = s.querySelectorAll('.mark').length;
  const jobs = [...d.querySelectorAll('[data-job]')].map(e => ({job: e.dataset.job, rpo: e.dataset.rpo, rto: e.dataset.rto, text: e.innerText}));
  const drills = [...d.querySelectorAll('[data-playbook]')].map(e => ({playbook: e.dataset.playbook, overdue: e.dataset.overdue, text: e.innerText}));
  const p = document.createElement('pre');
  p.id = 'probe';
  p.textContent = JSON.stringify({width: w.innerWidth, scroll: d.documentElement.scrollWidth, over: over.slice(0, 20), marks, jobs, drills});
  document.body.appendChild(p);
});
</script></body></html>"#;

/// Open `page` in headless Chromium through the probe; returns what the probe saw.
fn browse(page: &Path) -> serde_json::Value {
    let dir = page.parent().unwrap();
    std::fs::write(dir.join("probe.html"), PROBE).unwrap();
    let o = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--window-size=800,1000",
            // No background calls home (this network is closed) and a profile of its own.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join("chromium-profile").display()
        ))
        .arg(format!("file://{}", dir.join("probe.html").display()))
        .output()
        .expect("chromium (Debian `chromium`, installed by scripts/deps.sh)");
    let dom = String::from_utf8_lossy(&o.stdout);
    let json = dom
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, r)| r.split_once("</pre>"))
        .map(|(j, _)| {
            j.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        })
        .unwrap_or_else(|| {
            panic!(
                "no probe in the DOM: {}",
                excerpt(&String::from_utf8_lossy(&o.stderr))
            )
        });
    serde_json::from_str(&json).unwrap()
}

/// A quick shell-only drill, published to the repository.
fn quick_drill(w: &World) {
    let p = w.dir.join("quick.yaml");
    std::fs::write(
        &p,
        "name: quick\ntargets: { rto: 1m }\nsteps:\n  - { id: break, owner: SRE, timeout: 10s, kind: shell, run: \"true\", fault: true }\n  - { id: fix, owner: SRE, timeout: 10s, kind: shell, run: \"sleep 0.2\", recovered: true }\n",
    )
    .unwrap();
    let o = w
        .cmd(&["drill", "run", p.to_str().unwrap()])
        .env("DRCTL_EVIDENCE_DIR", w.dir.join("ev"))
        .output()
        .unwrap();
    // RPO is not measured without a probe (and has no target here): the run passes.
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn the_status_page_lists_every_job_shows_breaches_has_a_mark_per_run_and_fits_a_phone() {
    let pg = pg();
    let src = db_name("console_page_src");
    seed(pg, &src);
    let w = World::new("console_page");
    let source = pg_source(&pg.url(&src), &[]);
    w.write_config(
        &w.regions()
            .top("min_copies: 2")
            .top("drills: { cadence: { quick: 30d, restore-from-backup: 7d } }")
            .job(
                "app",
                &source,
                &["rpo: 1h", "rto: 1h", "schedule: \"0 3 * * *\""],
            )
            .job("ledger-with-a-rather-long-name", &source, &["rpo: 1h"])
            .text(),
    );
    for _ in 0..3 {
        w.backup_ok_job("app");
    }
    for _ in 0..2 {
        w.backup_ok_job("ledger-with-a-rather-long-name");
    }
    for _ in 0..3 {
        quick_drill(&w);
    }

    let page = w.dir.join("page.html");
    let o = w.drctl(&["report", "--html", page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    // Air-gapped: nothing to fetch, nothing to run.
    assert!(!html.contains("<script"), "the page must need no script");
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "external resource: {external}");
    }

    let seen = browse(&page);
    assert_eq!(seen["width"], 390, "{seen:#}");
    assert!(
        seen["over"].as_array().unwrap().is_empty() && seen["scroll"].as_u64() <= Some(390),
        "overflows at 390 px: {seen:#}"
    );
    // The probe can fail: the same page with one too-wide element is seen overflowing.
    let wide = w.dir.join("wide").join("page.html");
    std::fs::create_dir_all(wide.parent().unwrap()).unwrap();
    std::fs::write(
        &wide,
        html.replacen(
            "<main",
            "<div class=\"too-wide\" style=\"width:600px\">x</div><main",
            1,
        ),
    )
    .unwrap();
    let over = browse(&wide)["over"].to_string();
    assert!(
        over.contains("too-wide"),
        "the probe missed an overflow: {over}"
    );
    let jobs = seen["jobs"].as_array().unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "ledger-with-a-rather-long-name"]);
    // `app` has an rto and no timed restore: shown as breached ("not measured").
    assert_eq!(jobs[0]["rto"], "not_measured");
    assert!(jobs[0]["text"]
        .as_str()
        .unwrap()
        .contains("RTO NOT MEASURED"));
    assert_eq!(jobs[0]["rpo"], "met");
    assert_eq!(jobs[1]["rpo"], "met");
    assert_eq!(jobs[1]["rto"], "no_target");
    let marks = &seen["marks"];
    assert_eq!(marks["app-size"], 3, "{marks:#}");
    assert_eq!(marks["app-duration"], 3);
    assert_eq!(marks["ledger-with-a-rather-long-name-size"], 2);
    assert_eq!(marks["quick-rto"], 3, "one mark per drill run: {marks:#}");
    assert_eq!(marks["quick-rpo"], 3, "unmeasured RPO is still a mark");
    let drills = seen["drills"].as_array().unwrap();
    let drill = |n: &str| drills.iter().find(|d| d["playbook"] == n).unwrap();
    assert_eq!(drill("quick")["overdue"], "false", "{drills:#?}");
    assert_eq!(
        drill("restore-from-backup")["overdue"],
        "true",
        "never drilled"
    );
    assert!(drill("restore-from-backup")["text"]
        .as_str()
        .unwrap()
        .contains("OVERDUE"));
    assert!(
        html.contains("backup/app"),
        "the next scheduled runs are listed"
    );

    // A tighter RPO turns the job breached on the page (and its card says so).
    std::thread::sleep(Duration::from_millis(1100));
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&cfg.replacen("rpo: 1h", "rpo: 1s", 1));
    let o = w.drctl(&["report", "--html", page.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = browse(&page);
    assert_eq!(seen["jobs"][0]["rpo"], "breached", "{seen:#}");
    assert!(seen["jobs"][0]["text"]
        .as_str()
        .unwrap()
        .contains("RPO BREACHED"));

    // The daemon serves the same page at `/`, refreshing itself.
    w.write_config(&cfg);
    let d = Daemon::start(&w);
    let start = Instant::now();
    let body = loop {
        let (code, body) = d.get("/");
        if code == 200 {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no page: {code}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        body.contains("http-equiv=\"refresh\""),
        "{}",
        excerpt(&body)
    );
    for job in names {
        assert!(body.contains(&format!("data-job=\"{job}\"")), "{job}");
    }
    assert_eq!(
        d.metric("drctl_rto_measured_seconds{job=\"app\"}"),
        Some(f64::INFINITY)
    );
    assert_eq!(
        d.metric("drctl_region_readable{region=\"garage\"}"),
        Some(1.0)
    );
    assert_eq!(
        d.metric("drctl_drill_next_due_timestamp_seconds{playbook=\"restore-from-backup\"}"),
        Some(0.0),
        "never drilled: due since the epoch"
    );
}
