//! Qdrant — a CONTRACT TEST: no Qdrant server can run where drctl is tested, so these tests
//! run against `tests/tools/qdrant_stub.py`, a stub of the documented REST API (v1.x) that
//! drctl calls: list collections, collection info, create / download / delete a snapshot,
//! upload a snapshot. What they show is that drctl speaks that API as documented (paths,
//! `api-key` header, `priority=snapshot`, checksums, cleanup) — not that a real Qdrant accepts
//! the result.

use crate::common::*;

fn world(name: &str, stub: &QdrantStub) -> World {
    World::with_job(
        name,
        "vectors",
        &format!(
            "{{ kind: qdrant, url: \"{}\", api_key: \"{QDRANT_KEY}\" }}",
            stub.url()
        ),
    )
}

#[test]
fn qdrant_contract_snapshots_back_up_and_restore_renamed() {
    let stub = QdrantStub::start(&[]);
    let w = world("qdrant-rt", &stub);
    let report = w.backup_ok_job("vectors");
    let id = report["id"].as_str().unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            w.fs_root
                .join(format!("backups/vectors/{id}/manifest.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let arts = m["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 2, "one artifact per collection, one manifest");
    assert_eq!(arts[0]["path"], "products.snapshot.zst");
    assert_eq!(arts[0]["facts"]["points_count"], 6000);
    assert_eq!(arts[1]["facts"]["points_count"], 1500);
    // Every call carried the API key, and the server-side snapshots are gone.
    let calls = stub.calls();
    assert!(calls.iter().all(|c| c[3] == QDRANT_KEY), "{calls:?}");
    assert!(calls.iter().any(|c| c[0] == "DELETE"));
    assert_eq!(stub.snapshots_left(), 0);

    // verify --level restore: both snapshots uploaded under scratch names, counted exactly,
    // deleted; the live collections are left as they were.
    let o = w.drctl(&["-o", "json", "verify", "vectors", "--level", "restore"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["restore"]["detail"]
            .as_str()
            .unwrap()
            .contains("7500 records"),
        "{v}"
    );
    let names: Vec<_> = stub.get("/collections")["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["products", "reviews"],
        "scratch collections deleted"
    );
    let calls = stub.calls();
    let scratch_calls = |m: &str, suffix: &str| {
        calls
            .iter()
            .filter(|c| c[0] == m)
            .filter(|c| {
                let p = c[1].as_str().unwrap();
                p.starts_with("/collections/drctl_verify_") && p.ends_with(suffix)
            })
            .count()
    };
    assert_eq!(scratch_calls("POST", "/snapshots/upload"), 2);
    assert_eq!(scratch_calls("POST", "/points/count"), 2);
    assert_eq!(scratch_calls("DELETE", ""), 2);

    // Restore from the S3 region beside the originals.
    w.restore_job_ok(
        "vectors",
        "garage",
        &stub.url(),
        &[
            "--rename",
            "products=products-restored",
            "--rename",
            "reviews=reviews-restored",
        ],
    );
    for c in ["products", "reviews"] {
        let (orig, back) = (
            stub.get(&format!("/_stub/points/{c}")),
            stub.get(&format!("/_stub/points/{c}-restored")),
        );
        assert!(orig.as_array().unwrap().len() > 1000);
        assert_eq!(back, orig, "{c}: restored points differ");
    }
    let uploads: Vec<_> = stub
        .calls()
        .into_iter()
        .filter(|c| {
            c[1].as_str()
                .unwrap()
                .ends_with("-restored/snapshots/upload")
        })
        .collect();
    assert_eq!(uploads.len(), 2);
    for u in &uploads {
        assert_eq!(u[2]["priority"], "snapshot");
        assert_eq!(u[2]["checksum"].as_str().unwrap().len(), 64);
    }

    // Over existing collections: refused without --clean.
    let o = w.drctl(&["restore", "vectors", "--to", &stub.url()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already has collection"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn qdrant_contract_failed_download_fails_the_whole_backup_and_deletes_snapshots() {
    // `products` streams fine; `reviews` is cut off halfway.
    let stub = QdrantStub::start(&["--fail-download", "reviews"]);
    let w = world("qdrant-fail", &stub);
    let o = w.drctl(&["backup", "run", "vectors"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    w.assert_nothing_left();
    let last = stderr(&o).lines().last().unwrap_or_default().to_string();
    assert!(last.contains("artifact reviews"), "{last}");
    assert_eq!(
        stub.snapshots_left(),
        0,
        "server-side snapshots deleted on failure too"
    );

    // A wrong API key: a clear error that points at the key.
    let w = World::with_job(
        "qdrant-key",
        "vectors",
        &format!(
            "{{ kind: qdrant, url: \"{}\", api_key: wrong }}",
            stub.url()
        ),
    );
    let o = w.drctl(&["backup", "run", "vectors"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    assert!(stderr(&o).contains("API key"), "{}", stderr(&o));
}
