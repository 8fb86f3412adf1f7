//! Leases in the repository (fs + Garage, which ignores conditional writes): two concurrent
//! runs of one job make exactly one backup; `--if-running skip` exits 0; a crashed run's
//! expired lease is taken over.

use crate::common::*;
use std::process::Stdio;

/// A Redis that waits 3 s before it starts each snapshot, so a backup is slow enough to
/// overlap another.
fn slow_redis(dir: &std::path::Path) -> Redis {
    let r = Redis::start(dir, &["--repl-diskless-sync-delay", "3"]);
    assert!(r.cli(&["DEBUG", "POPULATE", "1000"]).contains("OK"));
    r
}

fn lease_files(w: &World) -> Vec<String> {
    std::fs::read_dir(w.fs_root.join("locks/backup-cache"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_concurrent_runs_of_one_job_make_exactly_one_backup() {
    let dir = tempdir("lease-");
    let r = slow_redis(&dir.join("redis"));
    let w = World::with_job(
        "lease",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );

    let spawn = || {
        w.cmd(&["backup", "run", "cache"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{}\n---\n{}", stderr(&outs[0]), stderr(&outs[1]));
    let lost = outs.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(
        lost.status.code(),
        Some(3),
        "lease held has its own exit code"
    );
    assert!(stderr(lost).contains("already running"), "{}", stderr(lost));
    assert!(
        stderr(lost).contains("--if-running skip"),
        "{}",
        stderr(lost)
    );
    let ids = w.backup_ids("cache");
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].ends_with("@garage,local"), "{ids:?}");
    assert!(lease_files(&w).is_empty(), "{:?}", lease_files(&w));

    // `--if-running skip`: a CronJob tick that finds the job running exits 0 and does nothing.
    let first = spawn();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = w.drctl(&["backup", "run", "cache", "--if-running", "skip"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("skipped, already running"),
        "{}",
        stdout(&o)
    );
    assert!(first.wait_with_output().unwrap().status.success());
    assert_eq!(w.backup_ids("cache").len(), 2);
}

#[test]
fn an_expired_lease_of_a_crashed_run_is_taken_over() {
    let dir = tempdir("lease-stale-");
    let r = Redis::start(&dir.join("redis"), &[]);
    let w = World::with_job(
        "lease-stale",
        "cache",
        &format!("{{ kind: redis, url: \"{}\" }}", r.url()),
    );
    let now = chrono::Utc::now();
    let stale = serde_json::json!({
        "name": "backup-cache", "owner": "backup cache", "host": "crashed-node", "pid": 4242,
        "nonce": "00000000000000bb", "acquired_at": now - chrono::Duration::hours(2),
        "expires_at": now - chrono::Duration::hours(1), "held": true
    });
    w.put_both(
        "locks/backup-cache/00000000000000bb.json",
        stale.to_string().as_bytes(),
    );
    w.backup_ok_job("cache");
    assert!(lease_files(&w).is_empty(), "{:?}", lease_files(&w));

    // A live one blocks, naming who holds it.
    let live = serde_json::json!({
        "name": "backup-cache", "owner": "backup cache", "host": "busy-node", "pid": 77,
        "nonce": "00000000000000cc", "acquired_at": now,
        "expires_at": now + chrono::Duration::hours(1), "held": true
    });
    w.put_both(
        "locks/backup-cache/00000000000000cc.json",
        live.to_string().as_bytes(),
    );
    let o = w.drctl(&["backup", "run", "cache"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("busy-node"), "{}", stderr(&o));
    assert_eq!(w.backup_ids("cache").len(), 1);
}
