//! `drctl history JOB` from the repository: every backup with its sizes, duration,
//! compression ratio, copies per region, and its newest verification with the measured
//! restore time — as the manifests and verification records say.

use crate::common::*;
use serde_json::Value;

#[test]
fn history_lists_every_backup_with_its_sizes_copies_and_measured_restore() {
    let (pg, _src, w) = seeded_world("history", 1);
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!(
        "{cfg}    verify: {{ level: restore, scratch: \"{}\" }}\n",
        pg.url("postgres")
    ));
    let first = w.backup_ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = w.backup_ok();
    let o = w.drctl(&[
        "-o",
        "json",
        "verify",
        "app",
        "--backup",
        first["id"].as_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let verified: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The second backup's copy in Garage goes: history says where each one is.
    let second_id = second["id"].as_str().unwrap();
    let g = garage();
    let prefix = format!(
        "{}/backups/app/{second_id}/",
        w.s3_root.trim_start_matches('/')
    );
    for k in g.keys(&prefix) {
        let o = g.aws(&["s3api", "delete-object", "--bucket", &g.bucket, "--key", &k]);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    let o = w.drctl(&["-o", "json", "history", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = h["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{h:#}");
    let (a, b) = (&rows[0], &rows[1]);
    assert_eq!(a["id"], first["id"], "oldest first: {h:#}");
    assert_eq!(b["id"], second["id"]);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!(
            "backups/app/{}/manifest.json",
            first["id"].as_str().unwrap()
        )))
        .unwrap(),
    )
    .unwrap();
    let raw: u64 = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["raw_size"].as_u64().unwrap())
        .sum();
    let stored: u64 = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["stored_size"].as_u64().unwrap())
        .sum();
    assert_eq!(a["raw_bytes"], raw);
    assert_eq!(a["stored_bytes"], stored);
    let ratio = a["compression_ratio"].as_f64().unwrap();
    assert!(
        (ratio - raw as f64 / stored as f64).abs() < 1e-9 && ratio > 1.0,
        "{ratio}"
    );
    assert!(a["duration_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(a["regions"], serde_json::json!(["local", "garage"]));
    assert_eq!(b["regions"], serde_json::json!(["local"]), "{h:#}");
    assert_eq!(a["verification"]["level"], "restore");
    assert_eq!(a["verification"]["passed"], true);
    assert_eq!(
        a["verification"]["restore_seconds"],
        verified["restore_seconds"]
    );
    assert!(b["verification"].is_null(), "{h:#}");

    let o = w.drctl(&["history", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains(first["id"].as_str().unwrap()) && text.contains("restore ok"),
        "{text}"
    );
    let o = w.drctl(&["history", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
