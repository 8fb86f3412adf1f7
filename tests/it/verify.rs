//! `drctl verify` at every level and `drctl status`, against fs + Garage and a real
//! PostgreSQL scratch server: a good backup passes; each kind of damage fails at the level
//! that can see it, in the region where it is; the scratch database never outlives the run.

use crate::common::*;

fn verify_world(name: &str) -> World {
    let (pg, _src, w) = seeded_world(name, 2);
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&format!(
        "{cfg}    rpo: 1h\n    verify: {{ level: restore, scratch: \"{}\" }}\n",
        pg.url("postgres")
    ));
    w
}

fn verify_json(w: &World, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut a = vec!["-o", "json", "verify", "app"];
    a.extend_from_slice(args);
    let o = w.drctl(&a);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    // Under -o json the error is one JSON object on stderr: read its message back.
    let err = stderr(&o);
    let err = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|j| j["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(err);
    (o.status.code(), v, err)
}

fn scratch_dbs() -> String {
    pg().psql(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'drctl_verify_%'",
    )
}

/// No scratch database outlives its run. Other tests verify against the same server at the
/// same time, so a name seen now may be theirs, still running: every name seen now must be
/// gone within 30 s (a leaked one never goes).
fn assert_no_scratch_left() {
    let seen: Vec<String> = scratch_dbs().lines().map(str::to_string).collect();
    let start = std::time::Instant::now();
    loop {
        let now = scratch_dbs();
        let left: Vec<&String> = seen
            .iter()
            .filter(|d| now.lines().any(|n| n == *d))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "scratch database left behind: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn artifact_path(w: &World, id: &str) -> std::path::PathBuf {
    w.fs_root.join(format!("backups/app/{id}/db.pgdump.zst"))
}

#[test]
fn a_good_backup_passes_every_level_and_status_reports_it() {
    let w = verify_world("verify_good");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();

    let (code, r, err) = verify_json(&w, &[]);
    assert_eq!(code, Some(0), "{err}\n{r:#}");
    assert_eq!(r["passed"], true);
    assert_eq!(r["level"], "restore");
    for c in r["regions"].as_array().unwrap() {
        assert_eq!(c["copy"], "ok", "{r:#}");
    }
    assert_eq!(r["structure"]["ok"], true, "{r:#}");
    assert!(r["structure"]["detail"]
        .as_str()
        .unwrap()
        .contains("tables in the archive's TOC"));
    assert_eq!(r["restore"]["ok"], true, "{r:#}");
    assert!(r["restore_seconds"].as_f64().unwrap() > 0.0);
    assert_no_scratch_left();
    // The record is in the repository, in both regions.
    assert!(
        w.fs_root
            .join(format!("verifications/app/{id}"))
            .read_dir()
            .unwrap()
            .count()
            == 1
    );
    assert!(w
        .s3_keys()
        .iter()
        .any(|k| k.contains(&format!("verifications/app/{id}/"))));

    let o = w.drctl(&["-o", "json", "status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &s[0];
    assert_eq!(s["newest_complete"], id.as_str());
    assert_eq!(s["newest_verified"], id.as_str());
    assert_eq!(s["covering_backup"], id.as_str());
    assert_eq!(s["rpo_breached"], false);
    assert!(s["rpo_exposure_seconds"].as_f64().unwrap() < 600.0);
    assert!(s["last_restore_test_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        s["newest_copies"],
        serde_json::json!({"local": true, "garage": true})
    );

    // An unverified newer backup does not move the RPO point of a verifying job...
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let newer = w.backup_ok()["id"].as_str().unwrap().to_string();
    let o = w.drctl(&["-o", "json", "status"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s[0]["newest_complete"], newer.as_str());
    assert_eq!(s[0]["covering_backup"], id.as_str());
    // ...and a tight RPO is breached: exit 1, naming the job.
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    w.write_config(&cfg.replace("rpo: 1h", "rpo: 1s"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let o = w.drctl(&["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("RPO BREACHED"), "{}", stdout(&o));
    assert!(stderr(&o).contains("RPO breached: app"), "{}", stderr(&o));
}

#[test]
fn damage_fails_the_level_that_can_see_it_in_the_region_where_it_is() {
    let w = verify_world("verify_bad");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();

    // A flipped byte in the fs copy: checksum fails there, and only there.
    let p = artifact_path(&w, &id);
    let good = std::fs::read(&p).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&p, &bad).unwrap();
    let (code, r, err) = verify_json(&w, &["--level", "checksum"]);
    assert_eq!(code, Some(1), "{err}");
    let copy = |r: &serde_json::Value, region: &str| {
        r["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["region"] == region)
            .unwrap()["copy"]
            .clone()
    };
    assert_eq!(copy(&r, "local"), "corrupt");
    assert_eq!(copy(&r, "garage"), "ok");
    assert!(err.contains("region local"), "{err}");
    assert!(!err.contains("region garage"), "{err}");
    std::fs::write(&p, &good).unwrap();

    // Truncated, with the checksum and size rewritten to match (in both regions): every
    // checksum passes, the structure check does not.
    let cut = &good[..good.len() * 2 / 3];
    let mpath = format!("backups/app/{id}/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    use sha2::Digest;
    m["artifacts"][0]["sha256"] = hex::encode(sha2::Sha256::digest(cut)).into();
    m["artifacts"][0]["stored_size"] = cut.len().into();
    w.put_both(&format!("backups/app/{id}/db.pgdump.zst"), cut);
    w.put_both(&mpath, m.to_string().as_bytes());
    let (code, r, err) = verify_json(&w, &["--level", "structure"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(copy(&r, "local"), "ok");
    assert_eq!(copy(&r, "garage"), "ok");
    assert_eq!(r["structure"]["ok"], false, "{r:#}");
    assert!(err.contains("structure:"), "{err}");

    // Intact bytes, but facts that disagree with them: only a real restore sees it.
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    m["artifacts"][0]["sha256"] = hex::encode(sha2::Sha256::digest(&good)).into();
    m["artifacts"][0]["stored_size"] = good.len().into();
    let counts = m["artifacts"][0]["facts"]["row_counts"]
        .as_object_mut()
        .unwrap();
    let table = counts.keys().next().unwrap().clone();
    let n = counts[&table].as_i64().unwrap();
    counts.insert(table.clone(), (n + 1).into());
    w.put_both(&format!("backups/app/{id}/db.pgdump.zst"), &good);
    w.put_both(&mpath, m.to_string().as_bytes());
    let (code, r, err) = verify_json(&w, &["--level", "structure"]);
    assert_eq!(
        code,
        Some(0),
        "structure cannot see row counts: {err}\n{r:#}"
    );
    let (code, r, err) = verify_json(&w, &["--level", "restore"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(r["restore"]["ok"], false, "{r:#}");
    assert!(err.contains("row counts differ"), "{err}");
    assert!(err.contains(&table), "{err}");
    assert_no_scratch_left();

    // The newest verification of this backup failed: status does not count it as verified.
    let o = w.drctl(&["-o", "json", "status"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s[0]["newest_verified"], serde_json::Value::Null, "{s:#}");
    assert_eq!(s[0]["rpo_breached"], true);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn sql_assertions_run_on_the_scratch_copy_and_one_that_does_not_hold_fails() {
    let (pg, _src, w) = seeded_world("verify_sql", 2);
    let base = std::fs::read_to_string(&w.config).unwrap();
    let scratch = pg.url("postgres");
    let with = |assertions: &str| {
        w.write_config(&format!(
            "{base}    verify:\n      level: restore\n      scratch: \"{scratch}\"\n      assertions:\n{assertions}"
        ));
    };
    with(
        r#"        - name: every order has its customer
          sql: SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL
          expect: 0
        - sql: SELECT sum(v) > 30000 FROM billing."Invoice Lines"
          expect: true
"#,
    );
    w.backup_ok();
    let (code, r, err) = verify_json(&w, &[]);
    assert_eq!(code, Some(0), "{err}\n{r:#}");
    assert!(
        r["restore"]["detail"]
            .as_str()
            .unwrap()
            .contains("2 assertion(s) held"),
        "{r:#}"
    );

    with(
        r#"        - name: orders total
          sql: SELECT count(*) FROM orders
          expect: 4999
"#,
    );
    let (code, r, err) = verify_json(&w, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(r["restore"]["ok"], false, "{r:#}");
    assert!(
        err.contains(r#""orders total" (verify.assertions[0]) does not hold: `SELECT count(*) FROM orders` returned 5000, expected 4999"#),
        "{err}"
    );
    assert_no_scratch_left();
}

/// A scratch server that does not answer says nothing about the backup: `verify --level
/// restore` exits 1 saying the backup was not judged, records no verdict, and `status` still
/// counts the backup as it did; with the server back, the same backup verifies.
#[test]
fn a_scratch_server_that_does_not_answer_judges_nothing_and_records_nothing() {
    let (pg, _src, w) = seeded_world("verify_noscratch", 2);
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    let with_scratch =
        |url: &str| format!("{cfg}    verify: {{ level: restore, scratch: \"{url}\" }}\n");
    let dead = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    w.write_config(&with_scratch(&dead));
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();

    let (code, _, err) = verify_json(&w, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the scratch restore could not run, so the backup was not judged"),
        "{err}"
    );
    assert!(
        err.contains("the scratch server does not take connections"),
        "{err}"
    );
    assert!(!err.contains("failed verification"), "{err}");
    let records = files_under(&w.fs_root.join("verifications"));
    assert!(records.is_empty(), "a verdict was recorded: {records:?}");
    assert!(
        !w.s3_keys().iter().any(|k| k.contains("verifications/")),
        "{:?}",
        w.s3_keys()
    );

    w.write_config(&with_scratch(&pg.url("postgres")));
    let (code, r, err) = verify_json(&w, &[]);
    assert_eq!(code, Some(0), "{err}\n{r:#}");
    assert_eq!(r["backup"], id.as_str());
    assert_no_scratch_left();
}
