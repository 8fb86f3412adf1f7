//! `drctl prune` against fs + Garage: the policy's deletions happen in both regions, and the
//! safety rules (newest verified, a running job's lease, partial runs in their grace period)
//! hold whatever the policy says.

use crate::common::*;

fn manifest(w: &World, id: &str) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/app/{id}/manifest.json"))).unwrap(),
    )
    .unwrap()
}

fn prune_json(w: &World, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["-o", "json", "prune"];
    args.extend_from_slice(extra);
    let o = w.drctl(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// (action, reasons) of one backup in one region.
fn row(rows: &[serde_json::Value], id: &str, region: &str) -> (String, String) {
    let r = rows
        .iter()
        .find(|r| r["backup"] == id && r["region"] == region)
        .unwrap_or_else(|| panic!("no row for {id} in {region}: {rows:#?}"));
    (
        r["action"].as_str().unwrap().to_string(),
        r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(", "),
    )
}

#[test]
fn prune_applies_keep_last_in_every_region_and_never_breaks_a_safety_rule() {
    let (_pg, _src, w) = seeded_world("prune", 2);
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!("{cfg}    retention: {{ keep_last: 2 }}\n"));
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let id = w.backup_ok()["id"].as_str().unwrap().to_string();
            std::thread::sleep(std::time::Duration::from_millis(1100));
            id
        })
        .collect();
    let both = |id: &str| format!("{id}@garage,local");

    // The oldest passed verification: it stays as "newest verified".
    w.put_both(
        &format!("verifications/app/{}/20260101T000000.000Z.json", ids[0]),
        br#"{"passed": true, "level": "checksum"}"#,
    );
    // A partial run from long ago (garbage) and one from just now (maybe still running).
    let old = "backups/app/20200101T000000Z-abcdef/db.pgdump.zst";
    let fresh_id = format!("{}-fedcba", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let fresh = format!("backups/app/{fresh_id}/db.pgdump.zst");
    w.put_both(old, b"partial");
    w.put_both(&fresh, b"partial");
    // A live lease taken just before the second backup: nothing from then on may go.
    let floor = manifest(&w, &ids[1])["consistent_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        - chrono::Duration::seconds(1);
    let lease = serde_json::json!({
        "name": "backup-app", "owner": "backup app", "host": "elsewhere", "pid": 1,
        "nonce": "00000000000000aa", "acquired_at": floor,
        "expires_at": chrono::Utc::now() + chrono::Duration::hours(1), "held": true
    });
    let lease_key = "locks/backup-app/00000000000000aa.json";
    w.put_both(lease_key, lease.to_string().as_bytes());

    let rows = prune_json(&w, &["--dry-run"]);
    for region in ["local", "garage"] {
        assert_eq!(row(&rows, &ids[0], region).1, "newest verified");
        let (a, why) = row(&rows, &ids[1], region);
        assert_eq!(
            (a.as_str(), why.as_str()),
            ("keep", "newer than a running job's lease")
        );
        assert_eq!(row(&rows, &ids[2], region).0, "keep");
        assert!(row(&rows, &ids[3], region).1.contains("newest complete"));
        assert_eq!(
            row(&rows, "20200101T000000Z-abcdef", region).0,
            "remove-partial"
        );
        assert_eq!(row(&rows, &fresh_id, region).0, "keep");
    }
    // A dry run changes nothing.
    assert_eq!(
        w.backup_ids("app"),
        ids.iter().map(|i| both(i)).collect::<Vec<_>>()
    );
    assert!(w.fs_root.join(old).exists());

    // The lease is released: now keep_last 2 drops the second backup, in both regions.
    std::fs::remove_file(w.fs_root.join(lease_key)).unwrap();
    let g = garage();
    let o = g.aws(&[
        "s3",
        "rm",
        &format!("s3://{}{}/{lease_key}", g.bucket, w.s3_root),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = w.drctl(&["prune"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("deleted"), "{text}");
    assert!(text.contains("removed 4 of"), "{text}");

    assert_eq!(
        w.backup_ids("app"),
        vec![both(&ids[0]), both(&ids[2]), both(&ids[3])]
    );
    assert!(!w.fs_root.join(format!("backups/app/{}", ids[1])).exists());
    let keys = w.s3_keys();
    assert!(keys.iter().all(|k| !k.contains(&ids[1])), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.contains("20200101T000000Z")),
        "{keys:?}"
    );
    assert!(!w.fs_root.join(old).exists());
    // The fresh partial is inside the 24h grace period.
    assert!(w.fs_root.join(&fresh).exists());
    assert!(keys.iter().any(|k| k.contains(&fresh_id)), "{keys:?}");
    // What is left still restores: the newest backup from the S3 region.
    let restored = db_name("prune_restored");
    w.restore_ok("garage", &pg().url(&restored));

    // An unfinished multipart upload (a SIGKILLed run's): kept while recent, aborted when
    // older than the grace period. No object listing shows it; ListMultipartUploads does.
    let key = format!(
        "{}/backups/app/20200102T000000Z-abcdef/db.pgdump.zst",
        w.s3_root.trim_start_matches('/')
    );
    let o = g.aws(&[
        "s3api",
        "create-multipart-upload",
        "--bucket",
        &g.bucket,
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(w.s3_uploads().len(), 1);
    let rows = prune_json(&w, &["--dry-run"]);
    let (a, why) = row(&rows, "20200102T000000Z-abcdef", "garage");
    assert_eq!(a, "keep", "{why}");
    assert!(why.contains("unfinished upload"), "{why}");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let rows = prune_json(&w, &["--dry-run", "--grace", "1s"]);
    assert_eq!(
        row(&rows, "20200102T000000Z-abcdef", "garage").0,
        "abort-upload"
    );
    assert_eq!(w.s3_uploads().len(), 1, "a dry run aborts nothing");
    let o = w.drctl(&["prune", "--grace", "1s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("aborted upload"), "{}", stdout(&o));
    assert!(w.s3_uploads().is_empty(), "{:?}", w.s3_uploads());
    assert_eq!(w.backup_ids("app").len(), 3, "complete backups untouched");
}

#[test]
fn prune_deletes_nothing_while_a_region_cannot_be_read() {
    let (_pg, _src, w) = seeded_world("prune_dead", 1);
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!("{cfg}    retention: {{ keep_last: 1 }}\n"));
    w.backup_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.backup_ok();
    let before = w.backup_ids("app");
    // Point the S3 region at a port nobody listens on.
    let dead = cfg.replace(
        &garage().endpoint,
        &format!("http://127.0.0.1:{}", free_port()),
    );
    assert_ne!(dead, cfg);
    w.write_config(&format!("{dead}    retention: {{ keep_last: 1 }}\n"));
    let o = w.drctl(&["prune"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("deletes nothing while a region cannot be read"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("garage"), "{}", stderr(&o));
    w.write_config(&format!("{cfg}    retention: {{ keep_last: 1 }}\n"));
    assert_eq!(w.backup_ids("app"), before);
}
