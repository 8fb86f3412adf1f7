//! S3 Object Lock and the per-region S3 object options — *contract tests* against moto's S3
//! (Garage has no Object Lock). moto keeps every version of a lock bucket and refuses to
//! delete a version before its retain-until date, as S3 does; drctl signs with a web identity.

use crate::common::*;
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// A world whose only region is moto's bucket `bucket` (with more region fields `extra`), and
/// one files job `f` (`job_fields`, e.g. `retention: …`).
fn world(name: &str, bucket: &str, extra: &str, job_fields: &[&str]) -> (World, String) {
    let w = World::new(name);
    let data = w.dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("app.yaml"), "listen: 8080\n").unwrap();
    let root = w.s3_root.trim_start_matches('/').to_string();
    let cfg = |extra: &str| {
        ConfigText::default()
            .region(&format!(
                "{{ name: vault, kind: s3, bucket: {bucket}, root: {root}, region: us-east-1, endpoint: \"{}\"{extra} }}",
                moto().endpoint
            ))
            .job(
                "f",
                &format!("{{ kind: files, paths: [\"{}\"] }}", data.display()),
                job_fields,
            )
            .text()
    };
    w.write_config(&cfg(extra));
    std::fs::write(w.dir.join("token"), "eyJ.object-lock.sig").unwrap();
    (w, root)
}

fn drctl(w: &World, args: &[&str]) -> Output {
    let mut c = w.cmd(args);
    moto().web_identity(&mut c, &w.dir.join("token"));
    c.output().unwrap()
}

fn backup(w: &World) -> String {
    let o = drctl(w, &["-o", "json", "backup", "run", "f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice::<Value>(&o.stdout).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn prune(w: &World) -> Vec<Value> {
    let o = drctl(w, &["-o", "json", "prune"]);
    assert!(
        o.status.success(),
        "a prune never fails on locks: {}",
        stderr(&o)
    );
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn action(rows: &[Value], id: &str) -> String {
    rows.iter()
        .find(|r| r["backup"] == id)
        .unwrap_or_else(|| panic!("no row for {id}: {rows:#?}"))["action"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The object's retain-until date, asserting it is locked in governance mode (moto answers
/// `HeadObject` with the lock; it has no `GetObjectRetention`).
fn locked_until(m: &Moto, key: &str) -> chrono::DateTime<chrono::Utc> {
    let h = m.s3api(&["head-object", "--bucket", "locked", "--key", key]);
    assert_eq!(h["ObjectLockMode"], "GOVERNANCE", "{key}: {h}");
    h["ObjectLockRetainUntilDate"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn every_object_is_locked_and_prune_keeps_it_until_the_lock_ends_then_removes_every_version() {
    let m = moto();
    let (w, root) = world(
        "lock",
        "locked",
        // Long enough that a loaded machine finishes the checks inside it.
        ", object_lock: { mode: governance, retain: 30s }",
        &["retention: { keep_last: 1 }"],
    );
    let old = backup(&w);
    std::thread::sleep(Duration::from_millis(1100));
    let new = backup(&w);

    let dir = format!("{root}/backups/f/{old}/");
    let objects = m.versions("locked", &dir);
    assert!(
        objects.iter().any(|(k, _)| k.ends_with("/manifest.json")) && objects.len() >= 2,
        "{objects:?}"
    );
    for (key, version) in &objects {
        let until = locked_until(m, key);
        assert!(until > chrono::Utc::now(), "{key} is locked until {until}");
        // The store itself refuses, whoever asks: the lock is real.
        let o = m.aws(&[
            "s3api",
            "delete-object",
            "--bucket",
            "locked",
            "--key",
            key,
            "--version-id",
            version,
        ]);
        assert!(!o.status.success(), "a locked version was deleted: {key}");
    }

    let o = drctl(
        &w,
        &[
            "-o", "json", "verify", "f", "--backup", &new, "--level", "checksum",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // keep_last: 1 would delete the old backup; its lock keeps it, and the prune succeeds.
    let rows = prune(&w);
    assert_eq!(action(&rows, &old), "kept-because-locked", "{rows:#?}");
    assert_eq!(
        m.versions("locked", &dir),
        objects,
        "nothing of it was touched"
    );

    // After the lock ends, the first prune deletes it: every version, no delete marker left.
    let until = locked_until(m, &format!("{dir}manifest.json"));
    let wait = (until - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(500));
    let rows = prune(&w);
    assert_eq!(action(&rows, &old), "delete", "{rows:#?}");
    assert_eq!(
        m.versions("locked", &dir),
        vec![],
        "versions or markers left behind"
    );
    let kept = m.versions("locked", &format!("{root}/backups/f/{new}/"));
    assert!(!kept.is_empty(), "the newest backup went too");
}

#[test]
fn verify_fails_a_copy_whose_objects_lost_their_lock() {
    let (w, _root) = world("unlocked", "locked", "", &[]);
    let id = backup(&w);
    // The same bucket, now with object_lock: the backup taken before has no retention.
    let cfg = std::fs::read_to_string(&w.config).unwrap().replace(
        "endpoint:",
        "object_lock: { mode: compliance, retain: 30d }, endpoint:",
    );
    w.write_config(&cfg);
    let o = drctl(
        &w,
        &[
            "-o", "json", "verify", "f", "--backup", &id, "--level", "checksum",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no retention"), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["regions"][0]["copy"], "unlocked", "{report:#}");
    assert_eq!(report["passed"], false);
}

#[test]
fn storage_class_and_kms_encryption_reach_every_object() {
    let m = moto();
    let (w, root) = world(
        "sse",
        "plain",
        ", storage_class: STANDARD_IA, server_side_encryption: \"aws:kms\", kms_key_id: alias/drctl-backups",
        &[],
    );
    let id = backup(&w);
    for (key, _) in m.versions("plain", &format!("{root}/backups/f/{id}/")) {
        let h = m.s3api(&["head-object", "--bucket", "plain", "--key", &key]);
        assert_eq!(h["StorageClass"], "STANDARD_IA", "{key}: {h}");
        assert_eq!(h["ServerSideEncryption"], "aws:kms", "{key}: {h}");
        assert!(
            h["SSEKMSKeyId"]
                .as_str()
                .unwrap_or("")
                .contains("drctl-backups"),
            "{key}: {h}"
        );
    }
}

#[test]
fn s3_only_fields_on_other_kinds_are_refused_with_their_position() {
    let w = World::new("lock-fs");
    w.write_config(&format!(
        "regions:\n  - name: local\n    kind: fs\n    root: \"{}\"\n    object_lock: {{ mode: compliance, retain: 30d }}\njobs: []\n",
        w.fs_root.display()
    ));
    let o = w.drctl(&["config", "validate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(
        text.contains(":5:") && text.contains("regions[0].object_lock"),
        "{text}"
    );
    assert!(text.contains("only s3 regions"), "{text}");
}

#[test]
fn a_region_that_cannot_lock_commits_nothing_and_keeps_nothing() {
    let m = moto();
    // `plain` has no Object Lock: every PutObjectRetention is refused.
    let (w, root) = world(
        "nolock",
        "plain",
        ", object_lock: { mode: compliance, retain: 1d }",
        &[],
    );
    let o = drctl(&w, &["backup", "run", "f"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stderr(&o);
    assert!(
        text.contains("cannot lock") && text.contains("Object Lock"),
        "{text}"
    );
    let left = m.versions("plain", &format!("{root}/backups/"));
    assert_eq!(
        left,
        vec![],
        "a backup that could not be locked left objects"
    );
}

#[test]
fn while_kept_locks_a_backup_as_long_as_the_policy_keeps_it() {
    let m = moto();
    let (w, root) = world(
        "lock-kept",
        "locked",
        // Margins of several seconds between the instants compared, for a loaded machine.
        ", object_lock: { mode: governance, retain: 15s, while_kept: true }",
        &["retention: { keep_last: 1 }"],
    );
    let old = backup(&w);
    let manifest = format!("{root}/backups/f/{old}/manifest.json");
    let artifact = format!("{root}/backups/f/{old}/files.tar.zst");
    let first = locked_until(m, &manifest);
    // Kept by keep_last: a real prune extends the lock of every object of it.
    std::thread::sleep(Duration::from_secs(6));
    let rows = prune(&w);
    assert_eq!(action(&rows, &old), "keep", "{rows:#?}");
    let extended = locked_until(m, &manifest);
    assert!(extended > first, "{extended} is not past {first}");
    assert_eq!(locked_until(m, &artifact), extended);

    // A newer backup: the policy lets the old one go, and its last lock still holds it.
    std::thread::sleep(Duration::from_millis(1100));
    let new = backup(&w);
    let rows = prune(&w);
    assert_eq!(action(&rows, &new), "keep", "{rows:#?}");
    assert_eq!(action(&rows, &old), "kept-because-locked", "{rows:#?}");
    assert_eq!(
        locked_until(m, &manifest),
        extended,
        "a released backup is not extended"
    );

    // Past the commit-time lock, the extended one still refuses a delete.
    let wait = (first - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(300));
    let v = m.versions("locked", &artifact);
    let o = m.aws(&[
        "s3api",
        "delete-object",
        "--bucket",
        "locked",
        "--key",
        &artifact,
        "--version-id",
        &v[0].1,
    ]);
    assert!(
        !o.status.success(),
        "deleted before the extended lock ended"
    );

    let wait = (extended - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(wait + Duration::from_millis(500));
    let rows = prune(&w);
    assert_eq!(action(&rows, &old), "delete", "{rows:#?}");
    assert_eq!(
        m.versions("locked", &format!("{root}/backups/f/{old}/")),
        vec![]
    );
}
