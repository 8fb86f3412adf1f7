//! Drills: the engine's semantics with shell steps (parallel, timeouts that kill the process
//! group, retries, polling, outputs, abort and rollback, guard, Ctrl-C), validation, manual
//! steps on and off a terminal, and the checklist format.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `drctl drill ...` in `dir` (no drctl.yaml there, so no config), evidence under dir/ev.
pub fn drill_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
    c.current_dir(dir)
        .args(["--log-format", "json", "drill"])
        .args(args)
        .env("DRCTL_EVIDENCE_DIR", dir.join("ev"))
        .env_remove("DRCTL_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    c
}

pub fn drill(dir: &Path, args: &[&str]) -> Output {
    drill_cmd(dir, args).output().unwrap()
}

/// The run folders under an evidence dir, oldest first.
pub fn runs(ev: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in std::fs::read_dir(ev).into_iter().flatten().flatten() {
        for r in std::fs::read_dir(p.path()).into_iter().flatten().flatten() {
            out.push(r.path());
        }
    }
    out.sort_by_key(|p| p.file_name().unwrap().to_os_string());
    out
}

pub fn report(run: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap()
}

pub fn journal(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn step<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {r:#}"))
}

pub fn at(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Running (a zombie waiting for a reaper does not count: it was killed).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

#[test]
fn engine_runs_parallel_groups_retries_polling_and_outputs() {
    let dir = tempdir("drill-engine-");
    let d = dir.display();
    std::fs::write(
        dir.join("p.yaml"),
        format!(
            r#"name: engine
targets: {{ rto: 1m }}
steps:
  - id: greet
    owner: SRE
    timeout: 10s
    kind: shell
    run: "echo hello-$((40+2))"
  - id: both
    parallel:
      - {{ id: left, owner: DBA, timeout: 10s, kind: shell, run: "sleep 1" }}
      - {{ id: right, owner: NetOps, timeout: 10s, kind: shell, run: "sleep 1" }}
  - id: flaky
    owner: SRE
    timeout: 20s
    retries: 3
    backoff: 100ms
    kind: shell
    run: "n=$(cat {d}/count 2>/dev/null || echo 0); echo $((n+1)) > {d}/count; [ $n -ge 2 ]"
  - id: appears
    owner: QA
    timeout: 20s
    until_success: {{ every: 200ms }}
    kind: shell
    run: "test -e {d}/flag || {{ sleep 1 && touch {d}/flag & }}; test -e {d}/flag"
  - id: uses-output
    owner: QA
    timeout: 10s
    kind: shell
    run: "echo '${{steps.greet.stdout}}'"
    expect_stdout: hello-42
    recovered: true
"#
        ),
    )
    .unwrap();
    let out = drill(&dir, &["run", "p.yaml"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let run = &runs(&dir.join("ev"))[0];
    let r = report(run);
    assert_eq!(r["passed"], true);
    // Parallel: both ran for ~1s and their intervals overlap.
    let (l, rt) = (step(&r, "left"), step(&r, "right"));
    assert!(
        at(&l["started_at"]) < at(&rt["finished_at"])
            && at(&rt["started_at"]) < at(&l["finished_at"]),
        "{l} {rt}"
    );
    assert_eq!(l["group"], "both");
    // Retries: two failures, then success on the third attempt.
    assert_eq!(step(&r, "flaky")["attempts"], 3);
    assert_eq!(
        std::fs::read_to_string(dir.join("count")).unwrap().trim(),
        "3"
    );
    // Polling: failed until the flag appeared, then passed.
    assert!(step(&r, "appears")["attempts"].as_u64().unwrap() > 1);
    // Outputs: `${steps.greet.stdout}` fed the later step.
    assert_eq!(step(&r, "uses-output")["status"], "passed");
    // RTO: no fault step ⇒ from the drill's start, to the end of the recovered step.
    let rto = r["rto"]["seconds"].as_f64().unwrap();
    let expect = (at(&step(&r, "uses-output")["finished_at"]) - at(&r["started_at"]))
        .num_milliseconds() as f64
        / 1000.0;
    assert!((rto - expect).abs() < 0.002, "{rto} vs {expect}");
    assert_eq!(
        r["rpo"]["seconds"],
        Value::Null,
        "no probe: RPO is not measured, not 0"
    );
    assert!(
        stdout(&out).contains("RPO not measured"),
        "{}",
        stdout(&out)
    );
    // The journal has one start and one end per step, flushed as JSON lines.
    let j = journal(run);
    for id in ["greet", "left", "right", "flaky", "appears", "uses-output"] {
        assert_eq!(
            j.iter()
                .filter(|e| e["event"] == "step_started" && e["id"] == id)
                .count(),
            1,
            "{id}"
        );
        assert_eq!(
            j.iter()
                .filter(|e| e["event"] == "step_finished" && e["id"] == id)
                .count(),
            1,
            "{id}"
        );
    }
    assert_eq!(
        j.iter()
            .filter(|e| e["event"] == "attempt_failed" && e["id"] == "flaky")
            .count(),
        2
    );
    for f in ["report.md", "report.html"] {
        assert!(run.join(f).is_file(), "{f}");
    }
}

#[test]
fn timeout_kills_the_process_group_abort_skips_the_rest_and_rolls_back() {
    let dir = tempdir("drill-abort-");
    let d = dir.display();
    std::fs::write(
        dir.join("p.yaml"),
        format!(
            r#"name: abort
targets: {{ rto: 1m }}
steps:
  - id: first
    owner: SRE
    timeout: 5s
    kind: shell
    run: "echo started"
    fault: true
  - id: hangs
    owner: DBA
    timeout: 1s
    kind: shell
    run: "sleep 60 & echo $! > {d}/child.pid; wait"
  - id: never
    owner: QA
    timeout: 5s
    kind: shell
    run: "touch {d}/never-ran"
    recovered: true
rollback:
  - id: undo
    owner: SRE
    timeout: 5s
    kind: shell
    run: "touch {d}/rolled-back"
"#
        ),
    )
    .unwrap();
    let t = Instant::now();
    let out = drill(&dir, &["run", "p.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(dir.join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !alive(pid),
        "the timed-out step's background child {pid} survived"
    );
    assert!(!dir.join("never-ran").exists());
    assert!(dir.join("rolled-back").exists());
    let r = report(&runs(&dir.join("ev"))[0]);
    assert_eq!(step(&r, "hangs")["status"], "timed_out");
    assert_eq!(step(&r, "never")["status"], "not_run");
    assert_eq!(step(&r, "undo")["status"], "passed");
    assert_eq!(step(&r, "undo")["phase"], "rollback");
    assert!(
        r["aborted"].as_str().unwrap().contains("`hangs` timed out"),
        "{}",
        r["aborted"]
    );
    // The recovery step never ran: RTO is not measured, and its target is not met.
    assert_eq!(r["rto"]["seconds"], Value::Null);
    assert_eq!(r["rto"]["met"], false);
    let text = stdout(&out);
    assert!(
        text.contains("FAILED") && text.contains("`hangs` (DBA) timed out"),
        "{text}"
    );
}

#[test]
fn interrupt_aborts_runs_rollback_and_guard_aborts() {
    let dir = tempdir("drill-int-");
    let d = dir.display();
    std::fs::write(
        dir.join("long.yaml"),
        format!(
            r#"name: long
steps:
  - {{ id: wait, owner: SRE, timeout: 60s, kind: shell, run: "sleep 60 & echo $! > {d}/sleep.pid; wait" }}
rollback:
  - {{ id: undo, owner: SRE, timeout: 5s, kind: shell, run: "touch {d}/undone" }}
"#
        ),
    )
    .unwrap();
    let mut child = drill_cmd(&dir, &["run", "long.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pidfile = dir.join("sleep.pid");
    let t = Instant::now();
    while !pidfile.exists() {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted drill exits 130");
    assert!(t.elapsed() < Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(pid), "the interrupted step's child survived");
    assert!(
        dir.join("undone").exists(),
        "rollback did not run after Ctrl-C"
    );
    let run = &runs(&dir.join("ev"))[0];
    let r = report(run);
    assert_eq!(step(&r, "wait")["status"], "cancelled");
    assert!(r["aborted"].as_str().unwrap().contains("interrupted"));
    assert!(journal(run).iter().any(|e| e["event"] == "interrupted"));

    // A guard probe failing twice in a row aborts the drill.
    std::fs::write(
        dir.join("guarded.yaml"),
        format!(
            r#"name: guarded
guard: {{ every: 200ms, failures: 2, kind: shell, run: "test ! -e {d}/error-rate-high" }}
steps:
  - {{ id: wait, owner: SRE, timeout: 60s, kind: shell, run: "sleep 60" }}
rollback:
  - {{ id: undo, owner: SRE, timeout: 5s, kind: shell, run: "touch {d}/guard-undone" }}
"#
        ),
    )
    .unwrap();
    let mut child = drill_cmd(&dir, &["run", "guarded.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(dir.join("error-rate-high"), "").unwrap();
    let t = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a guard's abort is a failure, not an interrupt"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "guard took {:?}",
        t.elapsed()
    );
    assert!(dir.join("guard-undone").exists());
    let run = runs(&dir.join("ev"))
        .into_iter()
        .find(|p| p.parent().unwrap().ends_with("guarded"))
        .unwrap();
    let r = report(&run);
    assert!(
        r["aborted"]
            .as_str()
            .unwrap()
            .contains("guard `guard` failed 2 times"),
        "{}",
        r["aborted"]
    );
    assert_eq!(
        journal(&run)
            .iter()
            .filter(|e| e["event"] == "guard_failed")
            .count(),
        2
    );
}

#[test]
fn validate_reports_every_problem_with_position_and_runs_nothing() {
    let dir = tempdir("drill-validate-");
    let d = dir.display();
    std::fs::write(
        dir.join("bad.yaml"),
        format!(
            r#"name: bad
targets: {{ rto: 5m, rpo: sometimes }}
steps:
  - id: a
    owner: SRE
    timeout: 1m
    kind: shell
    run: "touch {d}/ran; echo ${{nope}}"
    fault: true
  - id: a
    owner: SRE
    timeout: 10x
    kind: shel
  - id: c
    owner: DBA
    timeout: 1m
    kind: postgres
    url: postgres://x@h/db
    query: "select 1"
    colour: red
  - id: d
    owner: QA
    timeout: 1m
    kind: http
    url: "http://x/${{steps.zz.value}}"
    fault: true
"#
        ),
    )
    .unwrap();
    for args in [
        &["validate", "bad.yaml"][..],
        &["run", "bad.yaml", "--yes"][..],
    ] {
        let out = drill(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let e = stderr(&out);
        for want in [
            "bad.yaml:2:26: `rpo`: \"sometimes\" is not a duration",
            "bad.yaml:8:10: step `a`: undefined variable `${nope}`",
            "bad.yaml:10:9: step `a`: duplicate step id `a`",
            "bad.yaml:12:14: step `a`: `timeout`: \"10x\" is not a duration",
            "bad.yaml:13:11: step `a`: unknown kind `shel`",
            "bad.yaml:20:5: step `c`: postgres step: Unknown field `colour`",
            "bad.yaml:21:7: step `d`: a second `fault: true` step",
            "bad.yaml:25:10: step `d`: `${steps.zz.value}`: no step `zz` runs before this one",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        assert!(e.contains("(8 problems)"), "{e}");
        assert!(!dir.join("ran").exists(), "an invalid playbook ran a step");
        assert!(
            !dir.join("ev").exists(),
            "an invalid playbook left evidence"
        );
    }
    // Malformed YAML is one clear problem too.
    std::fs::write(
        dir.join("broken.yaml"),
        "name: x\nsteps:\n  - id: a\n   owner: b\n",
    )
    .unwrap();
    let out = drill(&dir, &["validate", "broken.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("broken.yaml:4:"), "{}", stderr(&out));
    // The shipped playbooks are valid (the one needing a secret gets it from --var).
    for p in [
        "pg-primary-failure",
        "redis-failover",
        "restore-from-backup",
    ] {
        let out = drill(&dir, &["validate", p]);
        assert!(out.status.success(), "{p}: {}", stderr(&out));
    }
    let out = drill(
        &dir,
        &[
            "validate",
            "region-failure",
            "--var",
            "tsig_secret=c2VjcmV0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = drill(&dir, &["list", "-o", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let dir = tempdir("drill-dry-");
    let d = dir.display();
    std::fs::write(
        dir.join("p.yaml"),
        format!(
            "name: dry\ntargets: {{ rto: 20m, rpo: 1m }}\nvars: {{ db_password: hunter2, standby: \"postgres://u:pw@127.0.0.1:1/db\" }}\nsteps:\n  - {{ id: boom, owner: SRE, timeout: 1m, kind: shell, run: \"touch {d}/touched\", fault: true }}\n  - {{ id: promote, owner: DBA, timeout: 5m, kind: postgres, url: \"${{standby}}\", promote: true, recovered: true }}\n"
        ),
    )
    .unwrap();
    let out = drill(&dir, &["run", "p.yaml", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "DRY RUN",
        "targets: RTO 20m, RPO 1m",
        "boom",
        "[SRE] shell · timeout 1m · FAULT",
        "[DBA] postgres · timeout 5m",
        "promote on ${standby}",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(
        !text.contains("hunter2") && !text.contains(":pw@"),
        "a secret leaked:\n{text}"
    );
    assert!(!dir.join("touched").exists() && !dir.join("ev").exists());
    let out = drill(&dir, &["-o", "json", "run", "p.yaml", "--dry-run"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["steps"][1]["owner"], "DBA");
    assert_eq!(v["targets"]["rto_seconds"], 1200.0);
}

const CHECKLIST: &str = r#"scenarios:
  - name: 数据库主库故障
    description: 主库宕机，切换到备库
    recovery_time_target: 30min
    steps:
      2: { action: 确认备库已提升为主库, owner: DBA, timeout: 5m }
      1: { action: 通知值班负责人, owner: 值班经理, timeout: 2m }
      3: { action: 验证应用写入正常, owner: QA, timeout: 10m }
  - name: Region outage
    recovery_time_target: 1s
    steps:
      1: { action: Fail over the load balancer, owner: NetOps, timeout: 2s }
"#;

#[test]
fn checklists_run_as_manual_steps_on_and_off_a_terminal() {
    let dir = tempdir("drill-checklist-");
    std::fs::write(dir.join("dr.yaml"), CHECKLIST).unwrap();
    // Two scenarios and none chosen: a usage error naming them.
    let out = drill(&dir, &["validate", "dr.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("数据库主库故障, Region outage"),
        "{}",
        stderr(&out)
    );
    // Off a terminal without --yes: refuse at once, run nothing.
    let t = Instant::now();
    let out = drill(&dir, &["run", "dr.yaml", "--scenario", "数据库主库故障"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = stderr(&out);
    assert!(
        e.contains("step `1` is manual (值班经理 must confirm it)") && e.contains("--yes"),
        "{e}"
    );
    assert!(!dir.join("ev").exists());
    // --yes: runs in key order; a rehearsal, so RTO is not measured and the target not met.
    let out = drill(
        &dir,
        &["run", "dr.yaml", "--scenario", "数据库主库故障", "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("REHEARSAL"), "{}", stdout(&out));
    let r = report(&runs(&dir.join("ev"))[0]);
    let ids: Vec<_> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(step(&r, "1")["owner"], "值班经理");
    assert_eq!(step(&r, "2")["name"], "确认备库已提升为主库");
    assert_eq!(r["scenario"], "数据库主库故障");
    assert_eq!(r["rto"]["target_seconds"], 1800.0);
    assert_eq!(r["rto"]["seconds"], Value::Null);
    assert_eq!(r["rto"]["met"], false);
    assert_eq!(r["rehearsal"], true);
    assert_eq!(step(&r, "2")["confirmed_by_flag"], true);
    assert!(
        std::fs::read_to_string(runs(&dir.join("ev"))[0].join("report.html"))
            .unwrap()
            .contains("数据库主库故障")
    );
}

/// Run `drctl drill run` under a pseudo-terminal (`script`), feeding `input` after `delay`.
fn on_a_terminal(dir: &Path, args: &str, input: Option<(&str, Duration)>) -> (i32, Duration) {
    let cmd = format!(
        "{} --log-format json drill run {args}",
        env!("CARGO_BIN_EXE_drctl")
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(dir)
        .env("DRCTL_EVIDENCE_DIR", dir.join("ev"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    if let Some((text, delay)) = input {
        std::thread::sleep(delay);
        use std::io::Write;
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    (status.code().unwrap_or(-1), t.elapsed())
}

#[test]
fn manual_steps_on_a_terminal_wait_for_an_answer_within_their_timeout() {
    let dir = tempdir("drill-tty-");
    std::fs::write(dir.join("dr.yaml"), CHECKLIST).unwrap();
    // Nobody answers: the 2s timeout is enforced and the drill fails.
    let (code, took) = on_a_terminal(&dir, "dr.yaml --scenario 'Region outage'", None);
    assert_eq!(code, 1);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "{took:?}"
    );
    let r = report(&runs(&dir.join("ev"))[0]);
    assert_eq!(step(&r, "1")["status"], "timed_out");
    // An answer after 1.5s: the step passes, the person's time is on the timeline, and the
    // 1s recovery target is missed by about half a second.
    let (code, _) = on_a_terminal(
        &dir,
        "dr.yaml --scenario 'Region outage'",
        Some(("y\n", Duration::from_millis(1500))),
    );
    assert_eq!(code, 1);
    let r = report(runs(&dir.join("ev")).last().unwrap());
    let s = step(&r, "1");
    assert_eq!(s["status"], "passed");
    let took = (at(&s["finished_at"]) - at(&s["started_at"])).num_milliseconds();
    assert!((1300..3500).contains(&took), "{took} ms");
    assert_eq!(r["rto"]["met"], false);
    let by = r["rto"]["missed_by_seconds"].as_f64().unwrap();
    assert!((0.2..2.6).contains(&by), "{by}");
    assert!(
        r["failures"].to_string().contains("MISSED by"),
        "{}",
        r["failures"]
    );
}

/// A real team's checklist, as they keep it: top-level metadata drctl does not use, the
/// dates of the last and next drill, an automatic step (`timeout: 0m`, owner System), a name
/// with spaces.
const TEAM_CHECKLIST: &str = r#"name: Agent Platform DR Checklist
version: 3.2
owner_team: platform-sre
last_drill: 2026-03-14
next_drill: 2026-06-14
approved_by: { name: Li Wei, role: Head of SRE }
scenarios:
  - name: payments-db-failover
    description: Primary payments database lost
    recovery_time_target: 30m
    steps:
      1: { action: Page the on-call DBA, owner: Incident Commander, timeout: 5m }
      2: { action: Circuit breaker opens for payment writes, owner: System, timeout: 0m }
      3: { action: Promote the standby, owner: DBA, timeout: 10m }
"#;

#[test]
fn a_teams_checklist_runs_unchanged_and_yes_makes_a_rehearsal_not_a_met_target() {
    let dir = tempdir("drill-team-");
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("playbooks/team-dr.yaml"), TEAM_CHECKLIST).unwrap();
    let out = drill(
        &dir,
        &[
            "validate",
            "playbooks/team-dr.yaml",
            "--scenario",
            "payments-db-failover",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("fields drctl does not use"),
        "{}",
        stderr(&out)
    );

    let out = drill(&dir, &["-o", "json", "list"]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "team-dr")
        .unwrap()
        .clone();
    assert_eq!(row["overdue"], true, "{row:#}");
    assert_eq!(row["metadata"]["last_drill"], "2026-03-14");
    assert_eq!(
        row["metadata"]["approved_by"],
        "{name: Li Wei, role: Head of SRE}"
    );
    let text = stdout(&drill(&dir, &["list"]));
    assert!(
        text.contains("OVERDUE: the next drill was due 2026-06-14"),
        "{text}"
    );

    let out = drill(
        &dir,
        &[
            "run",
            "playbooks/team-dr.yaml",
            "--scenario",
            "payments-db-failover",
            "--yes",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rehearsal never meets a target: {}",
        stderr(&out)
    );
    let s = stdout(&out);
    assert!(
        s.contains("REHEARSAL") && s.contains("RTO not measured"),
        "{s}"
    );
    assert!(!s.contains(": met"), "{s}");
    // The evidence folder is a slug; the report keeps the full name and the metadata.
    let run = &runs(&dir.join("ev"))[0];
    assert!(
        run.parent()
            .unwrap()
            .ends_with("agent-platform-dr-checklist"),
        "{}",
        run.display()
    );
    let r = report(run);
    assert_eq!(r["title"], "Agent Platform DR Checklist");
    assert_eq!(r["metadata"]["version"], "3.2");
    assert_eq!(step(&r, "2")["status"], "automatic");
    assert_eq!(step(&r, "1")["confirmed_by_flag"], true);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        html.contains("REHEARSAL")
            && html.contains("confirmed by --yes")
            && html.contains("next_drill: 2026-06-14")
    );
    let journal = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"confirmed_by_flag\":true"), "{journal}");
}

#[test]
fn evidence_names_the_regions_that_hold_it_and_warns_for_each_that_does_not() {
    let w = World::new("evidence-regions");
    // `blocked`'s root is a file: nothing can be written under it. `dead` answers nothing.
    let blocked = w.dir.join("blocked");
    std::fs::write(&blocked, "not a directory").unwrap();
    let text = ConfigText::default()
        .fs("local", &w.fs_root)
        .fs("blocked", &blocked)
        .dead_s3("dead", ", timeout: 1s")
        .text();
    w.write_config(&text);
    std::fs::write(
        w.dir.join("pb.yaml"),
        "name: ev\nsteps:\n  - { id: hi, owner: SRE, timeout: 10s, kind: shell, run: \"echo hi\" }\n",
    )
    .unwrap();
    let ev = w.dir.join("ev");
    let o = w
        .cmd(&["drill", "run", w.dir.join("pb.yaml").to_str().unwrap()])
        .env("DRCTL_EVIDENCE_DIR", &ev)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run = runs(&ev).pop().expect("a local run folder");
    let run_id = run.file_name().unwrap().to_string_lossy().to_string();
    let line = stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with("evidence:"))
        .unwrap()
        .to_string();
    assert!(
        line.ends_with(&format!("drills/ev/{run_id}/ in local")),
        "only the region that holds it: {line}"
    );
    for f in ["journal.jsonl", "report.json", "report.md", "report.html"] {
        let stored = w.fs_root.join(format!("drills/ev/{run_id}/{f}"));
        assert!(stored.is_file(), "{} missing", stored.display());
    }
    // One warning per region that does not hold it, naming the region and why.
    let warned: Vec<Value> = stderr(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "drill evidence not stored in a region")
        .collect();
    let mut names: Vec<&str> = warned
        .iter()
        .map(|l| l["fields"]["region"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["blocked", "dead"], "{}", stderr(&o));
    assert!(warned
        .iter()
        .all(|l| l["fields"]["error"].as_str().unwrap().len() > 10));
}
