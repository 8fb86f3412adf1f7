//! Chroma: a real `chroma run` server (pip `chromadb`, pinned in scripts/deps.sh). Several
//! collections with metadata and documents are exported, one artifact each, to fs + Garage,
//! and restored into an empty server; Chroma's own Python client then reads both servers and
//! the ids, embeddings (bit for bit), metadatas and documents must be identical.

use crate::common::*;

fn manifest(w: &World, id: &str) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(
            w.fs_root
                .join(format!("backups/vectors/{id}/manifest.json")),
        )
        .unwrap(),
    )
    .unwrap()
}

/// Compare two `chroma_tool.py dump` outputs, reporting the first difference briefly.
fn assert_same(want: &str, got: &str) {
    let (w, g): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(want).unwrap(),
        serde_json::from_str(got).unwrap(),
    );
    let names = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&g), names(&w), "collections");
    for n in names(&w) {
        assert_eq!(g[&n]["metadata"], w[&n]["metadata"], "{n}: metadata");
        assert_eq!(g[&n]["space"], w[&n]["space"], "{n}: distance space");
        let (wr, gr) = (
            w[&n]["records"].as_array().unwrap(),
            g[&n]["records"].as_array().unwrap(),
        );
        assert_eq!(gr.len(), wr.len(), "{n}: record count");
        let cosine = w[&n]["space"] == "cosine";
        for (a, b) in wr.iter().zip(gr) {
            if cosine {
                // Observed with Chroma 1.5.9: a cosine collection's vectors come back up to
                // 1 ULP off even though drctl sends the exported f32 bits unchanged (base64);
                // l2 and ip collections come back bit-exact.
                assert_eq!((&b[0], &b[2], &b[3]), (&a[0], &a[2], &a[3]), "{n}: record");
                let f = |v: &serde_json::Value| -> Vec<i64> {
                    hex::decode(v.as_str().unwrap())
                        .unwrap()
                        .chunks(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                        .collect()
                };
                let (x, y) = (f(&a[1]), f(&b[1]));
                assert_eq!(x.len(), y.len());
                assert!(
                    x.iter().zip(&y).all(|(p, q)| (p - q).abs() <= 1),
                    "{n}: {} beyond 1 ULP",
                    a[0]
                );
            } else {
                assert_eq!(b, a, "{n}: first differing record (bit-exact)");
            }
        }
    }
}

#[test]
fn chroma_collections_round_trip_bit_exact() {
    let dir = tempdir("chroma-");
    let src = Chroma::start(&dir.join("src"));
    src.tool("seed");
    let w = World::with_job(
        "chroma-rt",
        "vectors",
        &format!("{{ kind: chroma, url: \"{}\", page_size: 200 }}", src.url()),
    );
    let report = w.backup_ok_job("vectors");
    let id = report["id"].as_str().unwrap();
    let m = manifest(&w, id);
    assert_eq!(m["source"]["kind"], "chroma");
    // One artifact per collection, one manifest for all of them.
    let mut arts: Vec<(String, u64)> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["facts"]["records"].as_u64().unwrap(),
            )
        })
        .collect();
    arts.sort();
    assert_eq!(
        arts,
        vec![
            ("docs.chroma.jsonl.zst".to_string(), 1234),
            ("empty-one.chroma.jsonl.zst".to_string(), 0),
            ("images.chroma.jsonl.zst".to_string(), 300),
        ]
    );

    // verify --level restore on the job's own server: each collection restored under a
    // scratch name, counted, dropped; the live collections are untouched.
    let before = src.tool("dump");
    let o = w.drctl(&["-o", "json", "verify", "vectors", "--level", "restore"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], true, "{v}");
    assert!(
        v["restore"]["detail"]
            .as_str()
            .unwrap()
            .contains("1534 records"),
        "{v}"
    );
    assert!(v["restore_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        src.tool("dump"),
        before,
        "no scratch collection left, live ones unchanged"
    );

    // Restore from the S3 region into an empty server.
    let dst = Chroma::start(&dir.join("dst"));
    w.restore_job_ok("vectors", "garage", &dst.url(), &[]);
    assert!(before.contains("docs-1233"), "{}", &before[..200]);
    assert_same(&before, &dst.tool("dump"));

    // Restoring again over the same collections is refused; --rename restores beside them.
    let o = w.drctl(&["restore", "vectors", "--to", &dst.url()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already has collection"),
        "{}",
        stderr(&o)
    );
    w.restore_job_ok(
        "vectors",
        "local",
        &dst.url(),
        &[
            "--rename",
            "images=images-restored",
            "--rename",
            "docs=docs-2",
            "--rename",
            "empty-one=empty-2",
        ],
    );
    let dump: serde_json::Value = serde_json::from_str(&dst.tool("dump")).unwrap();
    assert_eq!(dump["images-restored"], dump["images"]);
    assert_eq!(dump["docs-2"]["records"], dump["docs"]["records"]);
}

#[test]
fn chroma_truncated_export_fails_restore_and_leaves_no_collection() {
    let dir = tempdir("chroma-trunc-");
    let src = Chroma::start(&dir.join("src"));
    src.tool("seed");
    let w = World::with_job(
        "chroma-trunc",
        "vectors",
        &format!(
            "{{ kind: chroma, url: \"{}\", collections: [images] }}\n    compression: none",
            src.url()
        ),
    );
    let report = w.backup_ok_job("vectors");
    let id = report["id"].as_str().unwrap().to_string();
    let m = manifest(&w, &id);
    assert_eq!(m["artifacts"].as_array().unwrap().len(), 1);

    // Cut the fs copy's last lines (the trailer) and rewrite its checksum, as a writer that
    // died mid-artifact would have left it if it had been committed.
    let art = w
        .fs_root
        .join(format!("backups/vectors/{id}/images.chroma.jsonl"));
    let text = std::fs::read_to_string(&art).unwrap();
    let cut: String = text.lines().take(100).map(|l| format!("{l}\n")).collect();
    std::fs::write(&art, &cut).unwrap();
    let mut mm = m.clone();
    use sha2::Digest;
    mm["artifacts"][0]["sha256"] = hex::encode(sha2::Sha256::digest(cut.as_bytes())).into();
    mm["artifacts"][0]["stored_size"] = (cut.len() as u64).into();
    std::fs::write(
        w.fs_root
            .join(format!("backups/vectors/{id}/manifest.json")),
        serde_json::to_vec(&mm).unwrap(),
    )
    .unwrap();

    let dst = Chroma::start(&dir.join("dst"));
    let o = w.drctl(&[
        "restore",
        "vectors",
        "--region",
        "local",
        "--backup",
        &id,
        "--to",
        &dst.url(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    assert_eq!(dst.tool("dump").trim(), "{}", "no half-restored collection");
}

#[test]
fn chroma_verify_restore_fails_on_a_count_mismatch_and_drops_scratch_collections() {
    let dir = tempdir("chroma-verify-");
    let src = Chroma::start(&dir.join("src"));
    src.tool("seed");
    let w = World::with_job(
        "chroma-verify",
        "vectors",
        &format!(
            "{{ kind: chroma, url: \"{}\", collections: [images, docs] }}",
            src.url()
        ),
    );
    let id = w.backup_ok_job("vectors")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A manifest that claims one record more than `images` holds, in both regions.
    let mut m = manifest(&w, &id);
    let i = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["name"] == "images")
        .unwrap();
    m["artifacts"][i]["facts"]["records"] = 301.into();
    w.put_both(
        &format!("backups/vectors/{id}/manifest.json"),
        m.to_string().as_bytes(),
    );
    // The scratch target is a second, empty server: nothing but scratch names may appear there.
    let scratch = Chroma::start(&dir.join("scratch"));
    let cfg = std::fs::read_to_string(&w.config).unwrap().replace(
        "collections: [images, docs] }",
        &format!(
            "collections: [images, docs] }}\n    verify: {{ level: restore, scratch: \"{}\" }}",
            scratch.url()
        ),
    );
    std::fs::write(&w.config, cfg).unwrap();
    let o = w.drctl(&["-o", "json", "verify", "vectors"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("counts differ: images: 300 restored, 301 in the manifest"),
        "{err}"
    );
    assert_eq!(
        scratch.tool("dump").trim(),
        "{}",
        "scratch collections dropped"
    );
}
