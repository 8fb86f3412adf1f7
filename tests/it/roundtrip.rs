//! Backups to two regions (fs + Garage S3) and restores whose data equals the source.

use crate::common::*;

#[test]
fn backup_to_two_regions_and_restore_equals_source() {
    let (pg, src, w) = seeded_world("roundtrip", 2);
    let report = w.backup_ok();
    let id = report["id"].as_str().unwrap().to_string();
    assert_eq!(report["regions"], serde_json::json!(["local", "garage"]));

    // Committed in both regions, manifest last: both hold the payload and the manifest.
    let manifest_fs = w.fs_root.join(format!("backups/app/{id}/manifest.json"));
    assert!(manifest_fs.exists());
    let keys = w.s3_keys();
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("backups/app/{id}/manifest.json"))),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("backups/app/{id}/db.pgdump.zst"))),
        "{keys:?}"
    );
    assert!(w.s3_uploads().is_empty());

    // The manifest records the snapshot's row counts, equal to the source's.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_fs).unwrap()).unwrap();
    let counts = &m["artifacts"][0]["facts"]["row_counts"];
    assert_eq!(counts["public.customers"], 3000);
    assert_eq!(counts["public.orders"], 5000);
    assert_eq!(counts["billing.\"Invoice Lines\""], 250);
    assert!(m["consistent_at"].as_str().unwrap() <= m["finished_at"].as_str().unwrap());

    // `backup list` shows it in both regions.
    let o = w.drctl(&["-o", "json", "backup", "list", "app"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["backups"][0]["id"], id.as_str());
    assert_eq!(
        list["backups"][0]["regions"],
        serde_json::json!(["local", "garage"])
    );

    // Restore from each region into a new database: every table's contents equal the source.
    let want = table_digests(pg, &src);
    assert_eq!(want.len(), 3);
    for region in ["garage", "local"] {
        let dst = db_name("rt_dst");
        let r = w.restore_ok(region, &pg.url(&dst));
        assert_eq!(r["region"], region);
        assert_eq!(r["backup"], id.as_str());
        assert_eq!(table_digests(pg, &dst), want, "restored from {region}");
        assert_eq!(
            pg.psql(&dst, "SELECT count(*) FROM active_customers"),
            "1500"
        );
    }
}

#[test]
fn restore_refuses_non_empty_target_unless_told() {
    let (pg, _src, w) = seeded_world("nonempty", 1);
    w.backup_ok();

    let dst = db_name("ne_dst");
    pg.create_db(&dst);
    pg.psql(
        &dst,
        "CREATE TABLE keep_me(x int); INSERT INTO keep_me VALUES (42)",
    );
    let o = w.drctl(&["restore", "app", "--to", &pg.url(&dst)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--clean"), "{}", stderr(&o));
    assert_eq!(
        pg.psql(
            &dst,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "1",
        "target untouched"
    );

    // With --clean the backup's objects are replaced; other objects stay.
    pg.psql(
        &dst,
        "CREATE TABLE customers(id int); INSERT INTO customers VALUES (-1)",
    );
    let o = w.drctl(&["restore", "app", "--clean", "--to", &pg.url(&dst)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(pg.psql(&dst, "SELECT count(*) FROM customers"), "3000");
    assert_eq!(pg.psql(&dst, "SELECT x FROM keep_me"), "42");
}

#[test]
fn restore_falls_back_when_first_region_copy_is_corrupted() {
    let (pg, src, w) = seeded_world("fallback", 2);
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();

    // Flip one byte in the middle of the fs copy (size unchanged).
    let payload = w.fs_root.join(format!("backups/app/{id}/db.pgdump.zst"));
    let mut bytes = std::fs::read(&payload).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&payload, bytes).unwrap();

    // PostgreSQL restores stream each copy once, checked on the way: the corrupt copy fails
    // inside pg_restore's transaction, which rolls back, and the artifact comes again from
    // the next region (no row twice: the digests are the source's).
    let dst = db_name("fb_dst");
    let r = w.restore_ok("local", &pg.url(&dst));
    assert_eq!(r["region"], "garage", "fell back to the intact copy");
    let why = r["skipped_regions"][0].as_str().unwrap();
    assert!(
        why.starts_with("local: restoring db from region local"),
        "{r}"
    );
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));

    // A corrupt last byte (inside zstd's frame checksum, after every row): every row reaches
    // the decoder before anything can tell, so only the checksum's held-back tail keeps
    // pg_restore from committing them before the fallback restores them again.
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes[mid] ^= 0x5a;
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(&payload, bytes).unwrap();
    let dst1 = db_name("fb_dst1");
    let r = w.restore_ok("local", &pg.url(&dst1));
    assert_eq!(r["region"], "garage", "fell back to the intact copy: {r}");
    assert_eq!(table_digests(pg, &dst1), table_digests(pg, &src));

    // With every copy corrupt the restore fails and names both regions.
    let s3_key = format!(
        "{}/backups/app/{id}/db.pgdump.zst",
        w.s3_root.trim_start_matches('/')
    );
    let g = garage();
    let tmp = w.dir.join("junk");
    std::fs::write(&tmp, b"not a backup").unwrap();
    let put = g.aws(&[
        "s3",
        "cp",
        tmp.to_str().unwrap(),
        &format!("s3://{}/{s3_key}", g.bucket),
    ]);
    assert!(put.status.success(), "{}", stderr(&put));
    let dst2 = db_name("fb_dst2");
    let o = w.drctl(&["restore", "app", "--to", &pg.url(&dst2)]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no region holds an intact copy")
            && e.contains("local:")
            && e.contains("garage:"),
        "{e}"
    );
}

/// `zstd` (the CLI) over `input` with `args`.
fn zstd(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = std::process::Command::new("zstd")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let o = c.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(o.status.success());
    o.stdout
}

#[test]
fn a_copy_the_target_refuses_before_its_checksum_can_tell_comes_from_the_next_region() {
    let (pg, src, w) = seeded_world("target_first", 2);
    // Several MiB that compress poorly, so the copy is far larger than every buffer between
    // the store and pg_restore (its stdin pipe holds 1 MiB): when pg_restore fails, most of
    // the copy is still unread and its checksum cannot have failed yet.
    pg.psql(
        &src,
        "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS h \
         FROM generate_series(1, 200000) g",
    );
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();

    // A damaged copy that still decompresses: the archive's magic is wrong, so pg_restore
    // fails on its first bytes while nearly all of the copy is still unread — the checksum
    // has not had its say when the target's error arrives.
    let payload = w.fs_root.join(format!("backups/app/{id}/db.pgdump.zst"));
    let mut raw = zstd(&["-dc"], &std::fs::read(&payload).unwrap());
    assert_eq!(&raw[..5], b"PGDMP");
    raw[0] = b'X';
    std::fs::write(&payload, zstd(&["-1", "-c"], &raw)).unwrap();

    let dst = db_name("tf_dst");
    let r = w.restore_ok("local", &pg.url(&dst));
    assert_eq!(r["region"], "garage", "fell back to the intact copy: {r}");
    let why = r["skipped_regions"][0].as_str().unwrap();
    assert!(
        why.starts_with("local: restoring db from region local")
            && why.contains("does not match the manifest"),
        "{r}"
    );
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
}
