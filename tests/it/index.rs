//! The per-job index (`indexes/<job>.json.zst`) is a cache: listings through it see exactly
//! what the manifests say, whatever state the index is in — stale, lost, damaged, or
//! listing a backup that does not exist.

use crate::common::*;
use std::path::Path;
use std::process::Command;

fn index_file(w: &World) -> std::path::PathBuf {
    w.fs_root.join("indexes/app.json.zst")
}

/// The ids an index file lists (decoded with the zstd CLI, an observer outside drctl).
fn index_ids(p: &Path) -> Vec<String> {
    let o = run(Command::new("zstd").args(["-dc"]).arg(p));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut ids: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Rewrite an index file with `edit` applied to its JSON.
fn edit_index(p: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let o = run(Command::new("zstd").args(["-dc"]).arg(p));
    let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    edit(&mut v);
    let json = p.with_extension("edited.json");
    std::fs::write(&json, v.to_string()).unwrap();
    run(Command::new("zstd").args(["-qf", "-o"]).arg(p).arg(&json));
}

fn ids_in(w: &World) -> Vec<String> {
    w.backup_ids("app")
}

#[test]
fn a_stale_lost_damaged_or_lying_index_never_hides_or_invents_a_backup() {
    let (_pg, _src, w) = seeded_world("index", 2);
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(w.backup_ok()["id"].as_str().unwrap().to_string());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let both = |id: &String| format!("{id}@garage,local");
    assert_eq!(
        index_ids(&index_file(&w)),
        ids,
        "each commit adds to the index"
    );
    let stale = w.dir.join("stale.json.zst");
    std::fs::copy(index_file(&w), &stale).unwrap();

    // Stale: a backup committed after this index was written is still listed.
    ids.push(w.backup_ok()["id"].as_str().unwrap().to_string());
    std::fs::copy(&stale, index_file(&w)).unwrap();
    let want: Vec<String> = ids.iter().map(both).collect();
    assert_eq!(ids_in(&w), want, "a stale index hid a backup");
    assert_eq!(
        index_ids(&index_file(&w)),
        ids,
        "the listing repaired the index"
    );

    // Lying: an entry for a backup that does not exist is never listed.
    edit_index(&index_file(&w), |v| {
        let mut fake = v["manifests"][0].clone();
        fake["id"] = "20200101T000000Z-f00d00".into();
        v["manifests"].as_array_mut().unwrap().push(fake);
    });
    assert_eq!(ids_in(&w), want, "an index entry invented a backup");

    // Lost, or damaged: the manifests are read again, and the index rebuilt.
    std::fs::remove_file(index_file(&w)).unwrap();
    assert_eq!(ids_in(&w), want);
    assert_eq!(index_ids(&index_file(&w)), ids, "a lost index is rebuilt");
    std::fs::write(index_file(&w), b"not zstd at all").unwrap();
    assert_eq!(ids_in(&w), want, "a damaged index changed the listing");

    // Prune takes backups out of the index before it deletes their manifests.
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!("{cfg}    retention: {{ keep_last: 1 }}\n"));
    let o = w.drctl(&["prune"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids_in(&w), vec![both(&ids[2])]);
    assert_eq!(index_ids(&index_file(&w)), vec![ids[2].clone()]);
    let s3_index = garage().keys(w.s3_root.trim_start_matches('/'));
    assert!(
        s3_index.iter().any(|k| k.ends_with("indexes/app.json.zst")),
        "{s3_index:?}"
    );
}
