//! What every reader of a repository promises: one "newest" (by `consistent_at`, then id) in
//! restore, verify and status alike; a repository or manifest of a newer format is refused
//! by every command, and prune deletes nothing it does not understand; a listing that could
//! not read a region says so and fails.

use crate::common::*;
use serde_json::Value;

/// A world with one fs region (min_copies 1) backing up a seeded database.
fn fs_world(name: &str) -> (World, String) {
    let pg = pg();
    let db = db_name(&format!("{name}_src"));
    seed(pg, &db);
    let w = World::new(name);
    let text = ConfigText::default()
        .fs("local", &w.fs_root)
        .top("min_copies: 1")
        .job(
            "app",
            &pg_source(&pg.url(&db), &[]),
            &["retention: { keep_last: 1 }"],
        )
        .text();
    w.write_config(&text);
    (w, db)
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

#[test]
fn newest_is_chosen_by_consistent_at_then_id_everywhere() {
    let (w, _) = fs_world("newest");
    let b = w.backup_ok();
    let real = b["id"].as_str().unwrap().to_string();
    // A second backup of the same second whose id sorts after the real one, but whose data
    // is older: by id it would be "latest", by the instant its data reflects it is not.
    let twin = format!("{}-ffffff", &real[..16]);
    assert!(twin > real);
    let src = w.fs_root.join(format!("backups/app/{real}"));
    let dst = w.fs_root.join(format!("backups/app/{twin}"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(dst.join("manifest.json")).unwrap()).unwrap();
    let at: chrono::DateTime<chrono::Utc> = m["consistent_at"].as_str().unwrap().parse().unwrap();
    m["id"] = twin.clone().into();
    m["consistent_at"] = (at - chrono::Duration::milliseconds(500))
        .to_rfc3339()
        .into();
    std::fs::write(dst.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();

    let v = w.drctl(&["-o", "json", "verify", "app", "--backup", "latest"]);
    assert!(v.status.success(), "{}", stderr(&v));
    assert_eq!(json(&v)["backup"], real.as_str(), "verify picked by id");
    let db = db_name("newest_dst");
    let r = w.restore_job_ok("app", "local", &pg().url(&db), &["--backup", "latest"]);
    assert_eq!(r["backup"], real.as_str(), "restore picked by id");
    let s = w.drctl(&["-o", "json", "status"]);
    assert_eq!(
        json(&s)[0]["newest_complete"],
        real.as_str(),
        "{}",
        stdout(&s)
    );
}

#[test]
fn every_reader_refuses_a_newer_repository_format_and_prune_deletes_nothing() {
    let (w, _) = fs_world("newer");
    let b = w.backup_ok();
    let id = b["id"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.backup_ok(); // keep_last 1 would delete the first
    let repo = w.fs_root.join("drctl-repository.json");
    let mut info: Value = serde_json::from_slice(&std::fs::read(&repo).unwrap()).unwrap();
    info["format_version"] = 99.into();
    std::fs::write(&repo, serde_json::to_vec(&info).unwrap()).unwrap();
    let db = db_name("newer_dst");
    let url = pg().url(&db);
    for args in [
        vec!["backup", "list"],
        vec!["status"],
        vec!["verify", "app"],
        vec!["prune"],
        vec!["prune", "--dry-run"],
        vec!["restore", "app", "--to", url.as_str(), "--yes"],
        vec!["backup", "run", "app"],
    ] {
        let o = w.drctl(&args);
        let e = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "drctl {}: {e}", args.join(" "));
        assert!(
            e.contains("format 99, newer than this drctl understands")
                && e.contains("upgrade drctl"),
            "drctl {}: {e}",
            args.join(" ")
        );
    }
    assert!(
        w.fs_root
            .join(format!("backups/app/{id}/manifest.json"))
            .exists(),
        "prune deleted a backup of a format it does not know"
    );

    // A manifest of a newer format inside a known repository: refused too, not skipped.
    info["format_version"] = 1.into();
    std::fs::write(&repo, serde_json::to_vec(&info).unwrap()).unwrap();
    let mpath = w.fs_root.join(format!("backups/app/{id}/manifest.json"));
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["format_version"] = 99.into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    // Listings go through the job's index, which still holds the old copy; prune reads every
    // manifest it is about to delete again, and refuses.
    let o = w.drctl(&["prune"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("format 99"), "{}", stderr(&o));
    assert!(
        mpath.exists(),
        "prune deleted a manifest of a format it does not know"
    );
    // Whatever rewrites a manifest in place (a newer drctl migrating) drops the job's index,
    // as the index's contract says; then every reader sees the manifest itself.
    std::fs::remove_file(w.fs_root.join("indexes/app.json.zst")).unwrap();
    for args in [
        vec!["backup", "list"],
        vec!["prune"],
        vec!["verify", "app", "--backup", id.as_str()],
    ] {
        let o = w.drctl(&args);
        assert_ne!(o.status.code(), Some(0), "drctl {}", args.join(" "));
        assert!(
            stderr(&o).contains("format 99"),
            "drctl {}: {}",
            args.join(" "),
            stderr(&o)
        );
    }
    assert!(mpath.exists());
}

#[test]
fn a_listing_that_could_not_read_a_region_names_it_and_fails() {
    let (w, db) = fs_world("unreadable");
    w.backup_ok();
    let text = ConfigText::default()
        .fs("local", &w.fs_root)
        .dead_s3("dead", ", timeout: 1s")
        .top("min_copies: 1")
        .job("app", &pg_source(&pg().url(&db), &[]), &[])
        .text();
    w.write_config(&text);
    let o = w.drctl(&["backup", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("region dead could not be read"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("incomplete: region(s) dead"),
        "{}",
        stderr(&o)
    );
    let o = w.drctl(&["-o", "json", "backup", "list"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["unreachable_regions"][0]["region"], "dead");
    assert_eq!(
        v["backups"].as_array().unwrap().len(),
        1,
        "what could be read is still shown"
    );
}
