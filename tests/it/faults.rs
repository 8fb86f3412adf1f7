//! Fault injection against the real services: the store dies or stalls mid-upload, a region
//! fills up or refuses writes, drctl itself is SIGKILLed, prune races a running backup, a
//! manifest write fails. Each asserts the exit code, the message, and — with the aws CLI and
//! a walk of the fs region — that nothing partial looks complete and no upload is left.

use crate::common::*;
use crate::proxy::Proxy;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn source_db() -> String {
    let db = db_name("fault_src");
    seed(pg(), &db);
    db
}

/// A fault world's config: a fs region `local` and an S3 region `garage`, one postgres job
/// whose pg_dump is a stand-in running `dump`. Defaults: the world's fs root, the shared
/// Garage with its key, `min_copies: 2`.
struct Setup<'a> {
    w: &'a World,
    fs_root: PathBuf,
    endpoint: String,
    keys: (String, String),
    min_copies: usize,
    /// Appended inside the S3 region's flow mapping, e.g. `, timeout: 2s`.
    region_extra: &'a str,
    /// Top-level lines, e.g. `lease_ttl: 10s`.
    top_extra: &'a str,
}

impl<'a> Setup<'a> {
    fn new(w: &'a World) -> Self {
        let g = garage();
        Setup {
            w,
            fs_root: w.fs_root.clone(),
            endpoint: g.endpoint.clone(),
            keys: (g.key_id.clone(), g.secret.clone()),
            min_copies: 2,
            region_extra: "",
            top_extra: "",
        }
    }

    fn write(&self, dump: &str) {
        let fake = format!("pg_dump: \"{}\"", fake_pg_dump(&self.w.dir, dump).display());
        let (root, key) = (
            &self.w.s3_root,
            (self.keys.0.as_str(), self.keys.1.as_str()),
        );
        let mut text = ConfigText::default()
            .fs("local", &self.fs_root)
            .garage_at("garage", root, &self.endpoint, key, self.region_extra)
            .top(&format!("min_copies: {}", self.min_copies));
        for line in self.top_extra.lines() {
            text = text.top(line);
        }
        let source = pg_source(&pg().url(&source_db()), &[&fake, "row_counts: false"]);
        self.w.write_config(&text.job("app", &source, &[]).text());
    }
}

fn s3_backup_keys(w: &World) -> Vec<String> {
    w.s3_keys()
        .into_iter()
        .filter(|k| k.contains("/backups/"))
        .collect()
}

/// Every manifest in the fs region points at artifacts present with their stored size.
fn every_fs_manifest_is_whole(root: &Path) {
    for m in files_under(&root.join("backups"))
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
    {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        for a in v["artifacts"].as_array().unwrap() {
            let p = m.with_file_name(a["path"].as_str().unwrap());
            let len = std::fs::metadata(&p).map(|m| m.len()).ok();
            assert_eq!(
                len,
                a["stored_size"].as_u64(),
                "{} lists {} but it is missing or short",
                m.display(),
                p.display()
            );
        }
    }
}

#[test]
fn prune_racing_a_running_backup_removes_nothing_and_the_backup_is_whole() {
    let w = World::new("race");
    // 20 MB streams out (an S3 multipart upload is under way, the fs file exists), then the
    // "dump" pauses with its output open while prune runs, then finishes.
    Setup::new(&w).write("head -c 20000000 /dev/urandom\nsleep 6\nhead -c 1000 /dev/urandom");
    let mut child = spawn(&w, &["-o", "json", "backup", "run", "app"]);
    wait_for_run(&mut child, "the run streams to both regions", 30, || {
        !w.fs_files().is_empty() && !w.s3_uploads().is_empty()
    });
    let p = w.drctl(&["-o", "json", "prune", "--grace", "0s"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&p.stdout).unwrap();
    assert!(!rows.is_empty(), "prune saw nothing of the running run");
    for r in &rows {
        assert_eq!(r["action"], "keep", "prune touched the running run: {r}");
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut regions: Vec<&str> = report[0]["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    regions.sort();
    assert_eq!(regions, ["garage", "local"]);
    every_fs_manifest_is_whole(&w.fs_root);
    // Both regions' copies hash to the manifest: the backup listed is the backup stored.
    let v = w.drctl(&["verify", "app", "--level", "checksum"]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
}

#[test]
fn an_artifact_removed_during_the_run_gets_no_manifest_in_that_region() {
    let w = World::new("vanish");
    Setup {
        min_copies: 1,
        ..Setup::new(&w)
    }
    .write("head -c 3000000 /dev/urandom\nsleep 3\nhead -c 1000 /dev/urandom");
    let mut child = spawn(&w, &["-o", "json", "backup", "run", "app"]);
    wait_for_run(&mut child, "the fs artifact exists", 30, || {
        !w.fs_files().is_empty()
    });
    // An operator (or a lifecycle rule) removes the object while the run still streams.
    for f in w.fs_files() {
        std::fs::remove_file(f).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report[0]["regions"], serde_json::json!(["garage"]));
    let why = report[0]["failed_regions"][0]["error"].as_str().unwrap();
    assert!(why.contains("is gone after it was stored"), "{why}");
    assert!(w.fs_files().is_empty(), "{:?}", w.fs_files());
    let l = w.drctl(&["-o", "json", "backup", "list"]);
    assert!(
        stdout(&l).contains("garage") && !stdout(&l).contains("\"local\""),
        "{}",
        stdout(&l)
    );
}

#[test]
fn drctl_sigkilled_mid_run_leaves_partials_that_prune_removes_once_the_lease_expires() {
    let w = World::new("killed");
    Setup {
        top_extra: "lease_ttl: 10s",
        ..Setup::new(&w)
    }
    .write("head -c 20000000 /dev/urandom\nsleep 60");
    let mut child = spawn(&w, &["backup", "run", "app"]);
    wait_for_run(&mut child, "the run streams to both regions", 30, || {
        !w.fs_files().is_empty() && !w.s3_uploads().is_empty()
    });
    child.kill().unwrap(); // SIGKILL: no cleanup can run
    child.wait().unwrap();
    kill_fake_dump(&w);
    // Nothing of it looks like a backup.
    let l = w.drctl(&["-o", "json", "backup", "list"]);
    assert!(l.status.success(), "{}", stderr(&l));
    assert!(!stdout(&l).contains("\"id\""), "{}", stdout(&l));
    // While its lease lives, prune keeps the partial objects whatever the grace.
    let p = w.drctl(&["-o", "json", "prune", "--grace", "0s"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&p.stdout).unwrap();
    assert!(rows.iter().all(|r| r["action"] == "keep"), "{rows:#?}");
    assert!(!w.fs_files().is_empty());
    // Once it expired: partials removed, the unfinished upload aborted, the lease gone.
    std::thread::sleep(Duration::from_secs(11));
    let p = w.drctl(&["-o", "json", "prune", "--grace", "0s"]);
    assert!(p.status.success(), "{}", stderr(&p));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&p.stdout).unwrap();
    assert!(
        rows.iter().any(|r| r["action"] == "remove-partial"),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r["action"] == "abort-upload"),
        "{rows:#?}"
    );
    w.assert_nothing_left();
    assert!(
        files_under(&w.fs_root.join("locks")).is_empty(),
        "{:?}",
        files_under(&w.fs_root.join("locks"))
    );
    let locks: Vec<_> = w
        .s3_keys()
        .into_iter()
        .filter(|k| k.contains("/locks/"))
        .collect();
    assert!(locks.is_empty(), "{locks:?}");
}

#[test]
fn a_stalled_store_ends_the_run_by_its_timeout_never_a_hang() {
    let w = World::new("stall");
    let g = garage();
    let proxy = Proxy::start(g.endpoint.trim_start_matches("http://"));
    Setup {
        endpoint: proxy.url().to_string(),
        region_extra: ", timeout: 2s",
        ..Setup::new(&w)
    }
    .write("head -c 20000000 /dev/urandom\nsleep 5\nhead -c 12000000 /dev/urandom");
    let mut child = spawn(&w, &["backup", "run", "app"]);
    wait_for_run(&mut child, "an upload is under way", 30, || {
        !w.s3_uploads().is_empty()
    });
    proxy.stall();
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("region garage") && e.contains("fewer than min_copies"),
        "{e}"
    );
    assert!(
        e.to_lowercase().contains("timed out") || e.contains("timeout"),
        "{e}"
    );
    assert!(took < Duration::from_secs(150), "took {took:?}");
    kill_fake_dump(&w);
    assert!(w.fs_files().is_empty(), "{:?}", w.fs_files());
    assert!(s3_backup_keys(&w).is_empty(), "{:?}", s3_backup_keys(&w));
}

#[test]
fn a_full_fs_region_is_dropped_and_leaves_nothing() {
    let w = World::new("full");
    let mnt = Tmpfs::mount(&w.dir.join("small-mount"), "4m");
    let root = mnt.at.join("repo");
    for min in [1, 2] {
        Setup {
            fs_root: root.to_path_buf(),
            min_copies: min,
            ..Setup::new(&w)
        }
        .write("head -c 12000000 /dev/urandom");
        let o = w.drctl(&["-o", "json", "backup", "run", "app"]);
        let e = stderr(&o);
        if min == 1 {
            assert!(o.status.success(), "{e}");
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(r[0]["regions"], serde_json::json!(["garage"]));
            let why = r[0]["failed_regions"][0]["error"].as_str().unwrap();
            assert!(why.contains("space") || why.contains("full"), "{why}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{e}");
            assert!(
                e.contains("region local") && e.contains("nothing was committed"),
                "{e}"
            );
        }
        let left = files_under(&root.join("backups"));
        assert!(left.is_empty(), "the full region kept {left:?}");
    }
    drop(mnt);
    // min_copies 1 committed once to garage; min_copies 2 left nothing there.
    let keys = s3_backup_keys(&w);
    assert_eq!(
        keys.iter().filter(|k| k.ends_with("manifest.json")).count(),
        1,
        "{keys:?}"
    );
    assert!(w.s3_uploads().is_empty(), "{:?}", w.s3_uploads());
}

#[test]
fn regions_that_cannot_be_written_are_out_before_the_dump_starts() {
    let w = World::new("readonly");
    let g = garage();
    let (ro_id, ro_secret) = g.read_only_key();
    let dump = "head -c 1000 /dev/urandom";
    // S3 with a read-only key beside a writable fs region: with min_copies 2 the run fails
    // before pg_dump starts, naming the region; with min_copies 1 it commits to fs alone.
    Setup {
        keys: (ro_id.to_string(), ro_secret.to_string()),
        ..Setup::new(&w)
    }
    .write(dump);
    let o = w.drctl(&["backup", "run", "app"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("region garage: cannot be written") && e.contains("AccessDenied"),
        "{e}"
    );
    assert!(
        !w.dir.join("fake.pid").exists(),
        "pg_dump ran although the run could not succeed"
    );
    Setup {
        keys: (ro_id.to_string(), ro_secret.to_string()),
        min_copies: 1,
        ..Setup::new(&w)
    }
    .write(dump);
    let o = w.drctl(&["-o", "json", "backup", "run", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["regions"], serde_json::json!(["local"]));
    assert_eq!(r[0]["failed_regions"][0]["region"], "garage");
    // Both unwritable (the fs region on a read-only mount).
    let ro = Tmpfs::read_only(&w.dir.join("ro-mount"), "1m");
    let _ = std::fs::remove_file(w.dir.join("fake.pid"));
    Setup {
        fs_root: ro.at.to_path_buf(),
        keys: (ro_id.to_string(), ro_secret.to_string()),
        min_copies: 1,
        ..Setup::new(&w)
    }
    .write(dump);
    let o = w.drctl(&["backup", "run", "app"]);
    drop(ro);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("no region can be written") && e.contains("Read-only file system"),
        "{e}"
    );
    assert!(!w.dir.join("fake.pid").exists());
}

#[test]
fn a_failed_manifest_write_in_one_region_leaves_no_manifest_and_nothing_there() {
    let w = World::new("manifestfail");
    let g = garage();
    let proxy = Proxy::start(g.endpoint.trim_start_matches("http://"));
    proxy.cut_requests_containing("manifest.json");
    Setup {
        endpoint: proxy.url().to_string(),
        min_copies: 1,
        region_extra: ", timeout: 5s",
        ..Setup::new(&w)
    }
    .write("head -c 12000000 /dev/urandom");
    let o = w.drctl(&["-o", "json", "backup", "run", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["regions"], serde_json::json!(["local"]));
    assert_eq!(r[0]["failed_regions"][0]["region"], "garage");
    // The fs copy is a whole backup; the S3 region holds nothing of the run.
    every_fs_manifest_is_whole(&w.fs_root);
    assert!(s3_backup_keys(&w).is_empty(), "{:?}", s3_backup_keys(&w));
    assert!(w.s3_uploads().is_empty(), "{:?}", w.s3_uploads());
}

#[test]
fn the_store_sigkilled_mid_upload_fails_the_run_and_prune_cleans_up_after_it_returns() {
    let w = World::new("storekill");
    let store = Garage::start();
    Setup {
        endpoint: store.endpoint.to_string(),
        keys: (store.key_id.to_string(), store.secret.to_string()),
        region_extra: ", timeout: 3s",
        top_extra: "lease_ttl: 10s",
        ..Setup::new(&w)
    }
    .write("head -c 20000000 /dev/urandom\nsleep 5\nhead -c 12000000 /dev/urandom");
    let mut child = spawn(&w, &["backup", "run", "app"]);
    let uploads = |g: &Garage| g.multipart_uploads(w.s3_root.trim_start_matches('/'));
    wait_for_run(&mut child, "an upload is under way", 30, || {
        !uploads(&store).is_empty()
    });
    store.kill();
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("region garage") && e.contains("nothing was committed"),
        "{e}"
    );
    kill_fake_dump(&w);
    assert!(w.fs_files().is_empty(), "{:?}", w.fs_files());
    // Back up again: what the dead store kept (an unfinished upload) is prune's to remove.
    store.restart();
    std::thread::sleep(Duration::from_secs(11));
    let p = w.drctl(&["prune", "--grace", "0s"]);
    assert!(p.status.success(), "{}", stderr(&p));
    assert!(uploads(&store).is_empty(), "{:?}", uploads(&store));
    let keys: Vec<_> = store
        .keys(w.s3_root.trim_start_matches('/'))
        .into_iter()
        .filter(|k| k.contains("/backups/") || k.contains("/locks/"))
        .collect();
    assert!(keys.is_empty(), "{keys:?}");
}
