//! `drctl schedule` (the daemon) against real services, with sub-minute schedules (a leading
//! seconds field) so ticks come fast: backups start on their ticks, two runs of one job never
//! overlap, SIGTERM mid-upload leaves no partial backup and exits 0, `/metrics` carries the
//! figures of the backups in the repository, and each failure sends exactly one webhook.
//! Also `backup run --pushgateway` (CronJob mode) against a local receiver.

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A local HTTP receiver: records (method, path, body) of every request and answers 200.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut r = BufReader::new(s);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (m, p) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                g.lock()
                    .unwrap()
                    .push((m, p, String::from_utf8_lossy(&body).into_owned()));
                let _ = r.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { port, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn bodies(&self, path: &str) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p, _)| p == path)
            .map(|(_, _, b)| b.clone())
            .collect()
    }
}

pub(crate) struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    pub(crate) fn start(w: &World) -> Daemon {
        Self::start_in(w, &std::env::current_dir().unwrap())
    }

    /// The daemon with `cwd` as its working directory (where it finds `./playbooks`).
    fn start_in(w: &World, cwd: &std::path::Path) -> Daemon {
        let port = free_port();
        let child = w
            .cmd(&["schedule", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let d = Daemon { child, port };
        let start = Instant::now();
        while d.get("/healthz").0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    /// (status, body) of a GET, or (0, "") when nothing answers.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new());
        };
        let _ = write!(s, "GET {path} HTTP/1.0\r\nhost: x\r\n\r\n");
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let code = resp
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (
            code,
            resp.split_once("\r\n\r\n").map_or("", |x| x.1).to_string(),
        )
    }

    /// The value of one series in /metrics, e.g. `drctl_backup_failures_total{job="db"}`.
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.get("/metrics").1, series)
    }

    /// SIGTERM, then wait for the exit; returns (exit code, stderr).
    fn term(mut self, within: Duration) -> (Option<i32>, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (st.code(), err);
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!("daemon still running {within:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            if v == "+Inf" {
                f64::INFINITY
            } else {
                v.parse().unwrap()
            }
        })
}

fn manifests(w: &World, job: &str) -> Vec<serde_json::Value> {
    let dir = w.fs_root.join(format!("backups/{job}"));
    let mut out: Vec<serde_json::Value> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read(e.path().join("manifest.json")).ok())
                .map(|b| serde_json::from_slice(&b).unwrap())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|m| m["started_at"].as_str().unwrap().to_string());
    out
}

fn secs(v: &serde_json::Value) -> f64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0
}

/// Every backup folder in the fs region has its manifest, and no lease is left.
fn assert_no_partial(w: &World, job: &str) {
    let dir = w.fs_root.join(format!("backups/{job}"));
    for e in std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().collect())
        .unwrap_or_else(|_| vec![])
    {
        assert!(
            e.path().join("manifest.json").exists(),
            "partial backup left: {:?}",
            e.path()
        );
    }
    assert!(w.s3_uploads().is_empty(), "{:?}", w.s3_uploads());
    let locks = w.fs_root.join(format!("locks/backup-{job}"));
    let left: Vec<_> = std::fs::read_dir(&locks)
        .map(|rd| rd.flatten().collect())
        .unwrap_or_else(|_| vec![]);
    assert!(left.is_empty(), "leases left: {left:?}");
}

fn slow_redis(dir: &std::path::Path) -> Redis {
    let r = Redis::start(dir, &["--repl-diskless-sync-delay", "3"]);
    assert!(r.cli(&["DEBUG", "POPULATE", "2000"]).contains("OK"));
    r
}

#[test]
fn daemon_runs_on_its_ticks_never_overlaps_and_exports_what_the_repository_holds() {
    let dir = tempdir("sched-");
    let r = slow_redis(&dir.join("redis"));
    let hook = Receiver::start();
    let w = World::with_job(
        "sched",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    // Every 2 s, but each backup takes over 3 s (the Redis delays its snapshot).
    w.write_config(&format!(
        "{cfg}    schedule: \"*/2 * * * * *\"\n    rpo: 1h\nscheduler: {{ attempts: 1, shutdown_grace: 30s }}\nnotifications:\n  - {{ kind: webhook, url: \"{}\", on: [success, failure] }}\n",
        hook.url("/hook")
    ));
    let d = Daemon::start(&w);
    // Ready once the config is loaded and the first status refresh is done: soon, not at once.
    let start = Instant::now();
    while d.get("/readyz").0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(20), "never ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(13));
    let text = d.get("/metrics").1;
    let listed = manifests(&w, "cache");
    let (code, err) = d.term(Duration::from_secs(40));
    assert_eq!(code, Some(0), "{err}");
    let all = manifests(&w, "cache");

    // Several backups; the intervals of their runs never intersect.
    assert!(all.len() >= 3, "{} backups\n{err}", all.len());
    for pair in all.windows(2) {
        assert!(
            secs(&pair[0]["finished_at"]) <= secs(&pair[1]["started_at"]),
            "runs overlap: {} .. {} and {} ..",
            pair[0]["started_at"],
            pair[0]["finished_at"],
            pair[1]["started_at"]
        );
    }
    // On time: after the catch-up run at start, each run starts within a second of an even
    // second (its tick), not whenever the previous one happened to end.
    for m in &all[1..] {
        let s = secs(&m["started_at"]);
        let since_tick = s - 2.0 * (s / 2.0).floor();
        assert!(
            since_tick < 1.0,
            "started {since_tick:.2}s after its tick: {}",
            m["started_at"]
        );
    }
    // Ticks that found the previous run still going were skipped and counted.
    let overlaps = metric(
        &text,
        "drctl_schedule_overlaps_total{job=\"cache\",task=\"backup\"}",
    );
    assert!(overlaps.unwrap_or(0.0) >= 1.0, "{text}");

    // /metrics matches the newest backup committed when it was scraped.
    let newest = listed.last().expect("a backup before the scrape");
    let last = metric(
        &text,
        "drctl_backup_last_success_timestamp_seconds{job=\"cache\"}",
    )
    .unwrap();
    assert!(
        (last - secs(&newest["finished_at"])).abs() < 1.5,
        "{last} vs {}",
        newest["finished_at"]
    );
    let raw: u64 = newest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["raw_size"].as_u64().unwrap())
        .sum();
    let stored: u64 = newest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["stored_size"].as_u64().unwrap())
        .sum();
    assert_eq!(
        metric(&text, "drctl_backup_bytes{job=\"cache\",kind=\"raw\"}"),
        Some(raw as f64),
        "{text}"
    );
    assert_eq!(
        metric(&text, "drctl_backup_bytes{job=\"cache\",kind=\"stored\"}"),
        Some(stored as f64),
        "{text}"
    );
    assert_eq!(
        metric(&text, "drctl_backup_failures_total{job=\"cache\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "drctl_backup_last_run_success{job=\"cache\"}"),
        Some(1.0)
    );
    for region in ["local", "garage"] {
        let s = format!("drctl_backup_region_last_success_timestamp_seconds{{job=\"cache\",region=\"{region}\"}}");
        assert!(metric(&text, &s).is_some(), "{s}\n{text}");
    }
    let exposure = metric(&text, "drctl_rpo_exposure_seconds{job=\"cache\"}").unwrap();
    assert!((0.0..30.0).contains(&exposure), "{exposure}");
    assert_eq!(
        metric(&text, "drctl_rpo_target_seconds{job=\"cache\"}"),
        Some(3600.0)
    );
    assert!(
        text.contains("# TYPE drctl_backup_failures_total counter"),
        "{text}"
    );

    // One success webhook per committed backup.
    let hooks = hook.bodies("/hook");
    assert_eq!(hooks.len(), all.len(), "{hooks:?}");
    let ids: Vec<String> = hooks
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
        .inspect(|v| assert_eq!(v["event"], "success"))
        .map(|v| v["backup"].as_str().unwrap().to_string())
        .collect();
    for m in &all {
        assert!(
            ids.contains(&m["id"].as_str().unwrap().to_string()),
            "{ids:?}"
        );
    }
    // The run in flight at SIGTERM finished within the grace period: nothing partial.
    assert_no_partial(&w, "cache");
}

#[test]
fn sigterm_mid_upload_aborts_past_the_grace_period_leaves_nothing_and_exits_0() {
    let dir = tempdir("sched-term-");
    let r = slow_redis(&dir.join("redis"));
    let w = World::with_job(
        "sched_term",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    // A yearly schedule: the only run is the catch-up at start (never backed up).
    w.write_config(&format!(
        "{cfg}    schedule: \"@yearly\"\nscheduler: {{ shutdown_grace: 0s }}\n"
    ));
    let d = Daemon::start(&w);
    let start = Instant::now();
    while d.metric("drctl_runs_in_progress") != Some(1.0) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the catch-up run did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (code, err) = d.term(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("aborting the running ones"), "{err}");
    assert!(manifests(&w, "cache").is_empty());
    w.assert_nothing_left();
    assert_no_partial(&w, "cache");
}

#[test]
fn each_failure_sends_exactly_one_webhook_and_a_breach_is_told_once() {
    // PostgreSQL on a port where nothing listens: every run fails.
    let dead = free_port();
    let hook = Receiver::start();
    let w = World::with_job(
        "sched_fail",
        "db",
        &format!("{{ kind: postgres, url: \"postgres://nobody@127.0.0.1:{dead}/app\" }}"),
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!(
        "{cfg}    schedule: \"*/2 * * * * *\"\n    rpo: 1m\nscheduler: {{ attempts: 1 }}\nnotifications:\n  - {{ kind: webhook, url: \"{}\" }}\n  - {{ kind: slack, url: \"{}\", on: [failure] }}\n  - {{ kind: webhook, url: \"http://127.0.0.1:{dead}/down\", timeout: 2s }}\n",
        hook.url("/generic"),
        hook.url("/slack"),
    ));
    let d = Daemon::start(&w);
    std::thread::sleep(Duration::from_secs(7));
    let text = d.get("/metrics").1;
    let failures = metric(&text, "drctl_backup_failures_total{job=\"db\"}").unwrap();
    let (code, err) = d.term(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(failures >= 2.0, "{text}");
    assert_eq!(
        metric(&text, "drctl_backup_last_run_success{job=\"db\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "drctl_rpo_exposure_seconds{job=\"db\"}"),
        Some(f64::INFINITY),
        "{text}"
    );

    let generic: Vec<serde_json::Value> = hook
        .bodies("/generic")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let fails: Vec<_> = generic.iter().filter(|v| v["event"] == "failure").collect();
    let breaches: Vec<_> = generic
        .iter()
        .filter(|v| v["event"] == "rpo_breach")
        .collect();
    // Failures counted by the scrape were each told once (one more may have ended since).
    assert!(
        fails.len() as f64 == failures || fails.len() as f64 == failures + 1.0,
        "{} webhooks for {failures} failures",
        fails.len()
    );
    assert!(fails.iter().all(|v| v["job"] == "db"));
    assert!(
        fails[0]["message"]
            .as_str()
            .unwrap()
            .contains(&dead.to_string()),
        "{:?}",
        fails[0]
    );
    assert_eq!(
        breaches.len(),
        1,
        "a breach is told once, not on every check: {generic:?}"
    );
    let slack = hook.bodies("/slack");
    assert_eq!(slack.len(), fails.len());
    let s: serde_json::Value = serde_json::from_str(&slack[0]).unwrap();
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .contains("backup FAILED: job *db*"),
        "{s}"
    );
    // The dead notifier was logged, and did not stop anything.
    assert!(err.contains("notification not delivered"), "{err}");
}

#[test]
fn cronjob_mode_pushes_the_runs_metrics_to_a_pushgateway() {
    let dir = tempdir("push-");
    let r = Redis::start(&dir.join("redis"), &[]);
    assert!(r.cli(&["DEBUG", "POPULATE", "500"]).contains("OK"));
    let gw = Receiver::start();
    let w = World::with_job(
        "push",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let o = w.drctl(&[
        "-o",
        "json",
        "backup",
        "run",
        "cache",
        "--pushgateway",
        &gw.url(""),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pushed = gw.bodies("/metrics/job/cache");
    assert_eq!(pushed.len(), 1, "{:?}", gw.got.lock().unwrap());
    let body = &pushed[0];
    // The grouping key carries `job`; the body must not.
    assert!(!body.contains("job=\""), "{body}");
    assert_eq!(
        metric(body, "drctl_backup_bytes{kind=\"raw\"}"),
        report[0]["raw_bytes"].as_f64(),
        "{body}"
    );
    assert_eq!(metric(body, "drctl_backup_last_run_success"), Some(1.0));
    assert!(
        metric(body, "drctl_rpo_exposure_seconds").unwrap() < 60.0,
        "{body}"
    );

    // A Pushgateway that is down does not fail the backup.
    let o = w.drctl(&[
        "backup",
        "run",
        "cache",
        "--pushgateway",
        &format!("http://127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot push metrics"), "{}", stderr(&o));
}

#[test]
fn a_failed_scheduled_verification_is_counted_and_told() {
    let dir = tempdir("sched-verify-");
    let r = Redis::start(&dir.join("redis"), &[]);
    assert!(r.cli(&["DEBUG", "POPULATE", "300"]).contains("OK"));
    let hook = Receiver::start();
    let w = World::with_job(
        "sched_verify",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let id = w.backup_ok_job("cache")["id"].as_str().unwrap().to_string();
    // Flip one byte of the fs copy: checksum fails in `local`.
    let art = std::fs::read_dir(w.fs_root.join(format!("backups/cache/{id}")))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| !p.ends_with("manifest.json"))
        .unwrap();
    let mut bytes = std::fs::read(&art).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&art, bytes).unwrap();
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    // Never verified: the verification catches up at start.
    w.write_config(&format!(
        "{cfg}    verify: {{ level: checksum, schedule: \"@weekly\" }}\nscheduler: {{ attempts: 1 }}\nnotifications:\n  - {{ kind: webhook, url: \"{}\" }}\n",
        hook.url("/v")
    ));
    let d = Daemon::start(&w);
    let start = Instant::now();
    while d
        .metric("drctl_verify_failures_total{job=\"cache\"}")
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no verification ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        d.metric("drctl_verify_failures_total{job=\"cache\"}"),
        Some(1.0)
    );
    let (code, err) = d.term(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    let told: Vec<serde_json::Value> = hook
        .bodies("/v")
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let v: Vec<_> = told
        .iter()
        .filter(|e| e["event"] == "verify_failure")
        .collect();
    assert_eq!(v.len(), 1, "{told:?}");
    assert!(
        v[0]["message"].as_str().unwrap().contains("region local"),
        "{:?}",
        v[0]
    );
}

#[test]
fn sighup_applies_a_valid_config_and_keeps_the_old_one_when_invalid() {
    let dir = tempdir("sched-hup-");
    let r = Redis::start(&dir.join("redis"), &[]);
    let w = World::with_job(
        "sched_hup",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let base = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!("{base}    schedule: \"0 3 * * *\"\n"));
    let d = Daemon::start(&w);
    let next = |d: &Daemon| {
        d.metric("drctl_schedule_next_run_timestamp_seconds{job=\"cache\",task=\"backup\"}")
    };
    let start = Instant::now();
    while next(&d).is_none() {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
    }
    let hup = |d: &Daemon| unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) };

    // Invalid: refused, the old schedule stays.
    let before = next(&d);
    w.write_config(&format!("{base}    schedule: \"0 3 * *\"\n"));
    hup(&d);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(d.get("/healthz").0, 200);
    assert_eq!(next(&d), before);

    // Valid: a second job appears in the plan.
    w.write_config(&format!(
        "{base}    schedule: \"0 3 * * *\"\n  - name: cache2\n    source: {{ kind: redis, url: \"{}\" }}\n    schedule: \"0 4 * * *\"\n",
        r.url()
    ));
    hup(&d);
    let start = Instant::now();
    while d
        .metric("drctl_schedule_next_run_timestamp_seconds{job=\"cache2\",task=\"backup\"}")
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new config was not applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, err) = d.term(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("the new config is invalid; still running the previous one"),
        "{err}"
    );
    assert!(err.contains("expected 5 cron fields"), "{err}");
    assert!(err.contains("config re-read and applied"), "{err}");
}

#[test]
fn a_slow_client_cannot_hold_the_daemons_http_port() {
    let w = World::with_job(
        "slowloris",
        "c",
        "{ kind: redis, url: \"redis://127.0.0.1:1\" }",
    );
    // A checklist in ./playbooks: its next drill's due time is exported.
    std::fs::create_dir_all(w.dir.join("playbooks")).unwrap();
    std::fs::write(
        w.dir.join("playbooks/team-dr.yaml"),
        "name: Team DR\nnext_drill: 2026-06-14\nscenarios:\n  - name: s\n    steps:\n      1: { action: Page, owner: IC, timeout: 5m }\n",
    )
    .unwrap();
    let d = Daemon::start_in(&w, &w.dir);
    let series = "drctl_drill_next_due_timestamp_seconds{playbook=\"team-dr\"}";
    let start = Instant::now();
    while d.metric(series).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{}",
            d.get("/metrics").1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(d.metric(series), Some(1_781_395_200.0)); // 2026-06-14T00:00:00Z
    let half = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        // Headers begun, never finished.
        write!(s, "GET /metrics HTTP/1.1\r\nhost: x\r\nx-slow: ").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    // One half-sent request: closed by the server within its header timeout.
    let mut s = half();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
    // Many at once: past the cap, new connections are closed at once, and the port serves
    // again once the slow ones timed out.
    let slow: Vec<_> = (0..64).map(|_| half()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = write!(extra, "GET /healthz HTTP/1.0\r\n\r\n");
    let mut got = String::new();
    let t = Instant::now();
    let _ = extra.read_to_string(&mut got);
    assert!(
        got.is_empty() && t.elapsed() < Duration::from_secs(2),
        "served past the cap: {got:?}"
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        d.get("/healthz").0,
        200,
        "the port did not recover after the slow clients timed out"
    );
    drop(slow);
    let (code, _) = d.term(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}
