//! Store kinds beyond fs and S3, against their emulators: Azure Blob on Azurite (Microsoft's
//! own), GCS on `gcp-storage-emulator`. Observed outside drctl (`common/azurite.rs`).

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A tree for a files job: a 12 MiB random file (three 5 MiB blocks) and a small one.
fn tree(dir: &Path, big_mib: usize) -> std::path::PathBuf {
    let t = dir.join("data");
    std::fs::create_dir_all(&t).unwrap();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let big: Vec<u8> = (0..big_mib * 1024 * 1024)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    std::fs::write(t.join("big.bin"), big).unwrap();
    std::fs::write(t.join("app.yaml"), "listen: 8080\n").unwrap();
    t
}

fn files_job(t: &Path) -> String {
    format!("{{ kind: files, paths: [\"{}\"] }}", t.display())
}

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

/// The restored copy of `t` (under `into`) holds the same bytes.
fn same_tree(t: &Path, into: &Path) {
    let rel = t.strip_prefix("/").unwrap();
    for f in ["big.bin", "app.yaml"] {
        assert!(
            std::fs::read(t.join(f)).unwrap() == std::fs::read(into.join(rel).join(f)).unwrap(),
            "{f} differs after the restore"
        );
    }
}

#[test]
fn azure_blob_round_trip_with_multi_block_upload_fallback_and_prune() {
    let az = azurite();
    let w = World::new("azure");
    let t = tree(&w.dir, 12);
    let root = w.s3_root.trim_start_matches('/').to_string();
    w.write_config(
        &ConfigText::default()
            .region(&az.region("azure", &root, ", part_size_mib: 5"))
            .fs("local", &w.fs_root)
            .job("f", &files_job(&t), &["retention: { keep_last: 1 }"])
            .text(),
    );
    let first = json(&w.drctl(&["-o", "json", "backup", "run", "f"]))[0].clone();
    let id = first["id"].as_str().unwrap().to_string();
    let dir = format!("{root}/backups/f/{id}/");
    let blobs = az.blobs(&dir);
    let artifact = blobs
        .iter()
        .find(|b| b.0.ends_with("files.tar.zst"))
        .unwrap_or_else(|| panic!("{blobs:?}"));
    assert!(artifact.2, "the artifact is committed: {blobs:?}");
    assert!(
        artifact.1 > 10 * 1024 * 1024,
        "three 5 MiB blocks at least: {blobs:?}"
    );
    assert!(blobs.iter().any(|b| b.0.ends_with("manifest.json") && b.2));

    let into = w.dir.join("restored");
    let to = format!("dir:{}", into.display());
    let r = json(&w.drctl(&[
        "-o", "json", "restore", "f", "--region", "azure", "--to", &to,
    ]));
    assert_eq!(r["region"], "azure");
    same_tree(&t, &into);

    // The Azure copy damaged (same size, other bytes): a restore falls back to the fs region.
    let mut garbage = vec![0u8; artifact.1 as usize];
    garbage[0] = 1;
    let g = w.dir.join("garbage");
    std::fs::write(&g, garbage).unwrap();
    az.tool(&["put", AZURITE_CONTAINER, &artifact.0, g.to_str().unwrap()]);
    let into2 = w.dir.join("restored2");
    let to2 = format!("dir:{}", into2.display());
    let r = json(&w.drctl(&["-o", "json", "restore", "f", "--to", &to2]));
    assert_eq!(r["region"], "local", "{r}");
    same_tree(&t, &into2);

    // keep_last: 1 — the next backup lets prune delete the first in both regions.
    std::thread::sleep(Duration::from_millis(1100));
    json(&w.drctl(&["-o", "json", "backup", "run", "f"]));
    let rows = json(&w.drctl(&["-o", "json", "prune"]));
    let deleted: Vec<&Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backup"] == id.as_str())
        .collect();
    assert_eq!(deleted.len(), 2, "{rows:#}");
    assert!(deleted.iter().all(|r| r["action"] == "delete"), "{rows:#}");
    assert_eq!(
        az.blobs(&dir),
        vec![],
        "the pruned backup is still in Azure"
    );
    assert!(!w.fs_root.join(format!("backups/f/{id}")).exists());
}

#[test]
fn azure_blob_killed_mid_upload_leaves_nothing_that_counts() {
    let az = azurite();
    let pg = pg();
    let db = db_name("az_kill");
    pg.create_db(&db);
    let w = World::new("azure-kill");
    let root = w.s3_root.trim_start_matches('/').to_string();
    let fake = format!(
        "pg_dump: \"{}\"",
        fake_pg_dump(&w.dir, "head -c 20000000 /dev/urandom\nsleep 60").display()
    );
    w.write_config(
        &ConfigText::default()
            .region(&az.region("azure", &root, ", part_size_mib: 5"))
            .fs("local", &w.fs_root)
            .top("lease_ttl: 10s")
            .job(
                "app",
                &pg_source(&pg.url(&db), &[&fake, "row_counts: false"]),
                &[],
            )
            .text(),
    );
    let mut child = spawn(&w, &["backup", "run", "app"]);
    let backups = format!("{root}/backups/");
    wait_for_run(&mut child, "blocks are staged in Azure", 30, || {
        !az.blobs(&backups).is_empty() && !w.fs_files().is_empty()
    });
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    kill_fake_dump(&w);
    let l = json(&w.drctl(&["-o", "json", "backup", "list"]));
    assert_eq!(l["backups"], serde_json::json!([]), "{l}");
    // Once the lease expired, prune removes what was committed of it; Azure holds the rest
    // only as uncommitted blocks, which no listing shows and Azure discards within 7 days.
    std::thread::sleep(Duration::from_secs(11));
    json(&w.drctl(&["-o", "json", "prune", "--grace", "0s"]));
    let left: Vec<_> = az.blobs(&backups).into_iter().filter(|b| b.2).collect();
    assert_eq!(left, vec![], "committed blobs of the killed run are left");
    assert!(w.fs_files().is_empty(), "{:?}", w.fs_files());
    let l = json(&w.drctl(&["-o", "json", "backup", "list"]));
    assert_eq!(l["backups"], serde_json::json!([]), "{l}");
}

#[test]
fn gcs_round_trip_verify_and_prune_on_the_emulator() {
    let g = gcs();
    let w = World::new("gcs");
    // The emulator has no XML multipart API: artifacts stay below one part (8 MiB).
    let t = tree(&w.dir, 1);
    let root = w.s3_root.trim_start_matches('/').to_string();
    w.write_config(
        &ConfigText::default()
            .region(&g.region("gcs", &root))
            .fs("local", &w.fs_root)
            .job("f", &files_job(&t), &["retention: { keep_last: 1 }"])
            .text(),
    );
    let id = json(&w.drctl(&["-o", "json", "backup", "run", "f"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let names = g.names(&format!("{root}/backups/f/{id}/"));
    assert!(
        names.iter().any(|n| n.ends_with("manifest.json"))
            && names.iter().any(|n| n.ends_with("files.tar.zst")),
        "{names:?}"
    );
    let into = w.dir.join("restored");
    let to = format!("dir:{}", into.display());
    let r = json(&w.drctl(&["-o", "json", "restore", "f", "--region", "gcs", "--to", &to]));
    assert_eq!(r["region"], "gcs");
    same_tree(&t, &into);

    // keep_last: 1 and the newest backup verified: prune deletes the first one.
    std::thread::sleep(Duration::from_millis(1100));
    json(&w.drctl(&["-o", "json", "backup", "run", "f"]));
    let v = json(&w.drctl(&["-o", "json", "verify", "f", "--level", "structure"]));
    assert_eq!(v["passed"], true, "{v:#}");
    json(&w.drctl(&["-o", "json", "prune"]));
    assert_eq!(
        g.names(&format!("{root}/backups/f/{id}/")),
        Vec::<String>::new()
    );
}
