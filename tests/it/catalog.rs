//! The PostgreSQL catalog against a real server: migrations apply once and refuse a newer
//! schema; `catalog sync` from two jobs in fs + Garage (with a verification) gives the same
//! history as the repository itself, is idempotent, follows a prune, fails whole when a
//! region cannot be read (the catalog left as it was), and converges on the next run.

use crate::common::*;
use serde_json::Value;

fn history(w: &World, cfg: &str) -> Value {
    w.write_config(cfg);
    let o = w.drctl(&["-o", "json", "history", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice::<Value>(&o.stdout).unwrap()["backups"].clone()
}

fn ok(w: &World, args: &[&str]) -> Value {
    let mut a = vec!["-o", "json"];
    a.extend_from_slice(args);
    let o = w.drctl(&a);
    assert!(o.status.success(), "drctl {args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn catalog_migrates_once_syncs_to_what_the_regions_hold_and_gives_the_same_history() {
    let (pg, _src, w) = seeded_world("catalog", 2);
    let catalog = db_name("catalog");
    pg.create_db(&catalog);
    let tree = w.dir.join("etc");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("app.yaml"), "listen: 8080\n").unwrap();
    let plain = format!(
        "{}    verify: {{ level: restore, scratch: \"{}\" }}\n  - name: etc\n    source: {{ kind: files, paths: [\"{t}\"] }}\n  - name: etc2\n    source: {{ kind: files, paths: [\"{t}\"] }}\n",
        std::fs::read_to_string(&w.config).unwrap(),
        pg.url("postgres"),
        t = tree.display()
    );
    let with_catalog = format!("{plain}catalog: {{ url: \"{}\" }}\n", pg.url(&catalog));
    w.write_config(&with_catalog);

    let m = ok(&w, &["catalog", "migrate"]);
    assert_eq!(m["applied"].as_array().unwrap().len(), 2, "{m}");
    let m = ok(&w, &["catalog", "migrate"]);
    assert_eq!(
        m["applied"],
        serde_json::json!([]),
        "a second migrate applies nothing: {m}"
    );

    for _ in 0..3 {
        w.backup_ok();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    w.backup_ok_job("etc");
    w.backup_ok_job("etc2");
    ok(&w, &["verify", "app"]);
    let s = ok(&w, &["catalog", "sync"]);
    assert_eq!(
        (
            s["jobs"].as_u64(),
            s["backups"].as_u64(),
            s["copies"].as_u64()
        ),
        (Some(3), Some(5), Some(10)),
        "{s}"
    );
    assert_eq!(
        s["verifications"].as_u64(),
        Some(2),
        "one record per region: {s}"
    );
    let from_catalog = history(&w, &with_catalog);
    let from_repo = history(&w, &plain);
    assert_eq!(
        from_catalog, from_repo,
        "the catalog and the repository disagree"
    );
    assert_eq!(from_catalog.as_array().unwrap().len(), 3);
    assert_eq!(from_catalog[2]["verification"]["passed"], true);
    let rows = |t: &str| pg.psql(&catalog, &format!("SELECT count(*) FROM {t}"));
    let before = (rows("backups"), rows("copies"), rows("verifications"));
    w.write_config(&with_catalog);
    ok(&w, &["catalog", "sync"]);
    assert_eq!(
        (rows("backups"), rows("copies"), rows("verifications")),
        before,
        "sync is idempotent"
    );

    // The regions read in the other order: the same rows.
    let dump = || {
        pg.psql(&catalog, "SELECT string_agg(job || id || manifest::text, ',' ORDER BY job, id) FROM backups")
            + &pg.psql(&catalog, "SELECT string_agg(job || id || region, ',' ORDER BY job, id, region) FROM copies")
            + &pg.psql(&catalog, "SELECT string_agg(job || id || region || record::text, ',' ORDER BY job, id, region) FROM verifications")
    };
    let rows_before = dump();
    let lines: Vec<&str> = with_catalog.lines().collect();
    let (i, j) = (
        lines
            .iter()
            .position(|l| l.contains("name: local"))
            .unwrap(),
        lines
            .iter()
            .position(|l| l.contains("name: garage"))
            .unwrap(),
    );
    let mut swapped = lines.clone();
    swapped.swap(i, j);
    w.write_config(&(swapped.join("\n") + "\n"));
    ok(&w, &["catalog", "sync"]);
    assert_eq!(dump(), rows_before, "the region order changed the catalog");

    // The repository changes (a prune): the next sync follows it.
    let keep_one = |cfg: &str| {
        cfg.replace(
            "    verify:",
            "    retention: { keep_last: 1 }\n    verify:",
        )
    };
    w.write_config(&keep_one(&with_catalog));
    ok(&w, &["prune"]);
    ok(&w, &["catalog", "sync"]);
    let synced = history(&w, &keep_one(&with_catalog));
    let repo = history(&w, &keep_one(&plain));
    assert_eq!(repo.as_array().unwrap().len(), 1, "{repo:#}");
    assert_eq!(synced, repo);

    // A region that cannot be read: the sync fails and changes nothing; once it is back, the
    // sync converges.
    let before = (rows("backups"), rows("copies"));
    let dead = with_catalog.replace(
        &format!("endpoint: \"{}\"", garage().endpoint),
        &format!(
            "endpoint: \"http://127.0.0.1:{}\", timeout: 1s",
            free_port()
        ),
    );
    assert_ne!(
        dead, with_catalog,
        "the Garage region's endpoint was not found in the config"
    );
    w.write_config(&dead);
    let o = w.drctl(&["catalog", "sync"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        (rows("backups"), rows("copies")),
        before,
        "a failed sync changed the catalog"
    );

    // A catalog migrated by a newer drctl is refused, untouched.
    w.write_config(&with_catalog);
    pg.psql(&catalog, "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (99, 'future', '2030-01-01T00:00:00Z', '0')");
    let o = w.drctl(&["catalog", "migrate"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("newer drctl"), "{}", stderr(&o));
}

#[test]
fn backups_verifications_drills_and_prunes_update_the_catalog_as_they_commit_and_an_outage_or_a_cut_sync_loses_nothing(
) {
    let (pg, _src, w) = seeded_world("catalog_live", 2);
    let catalog = db_name("catalog_live");
    pg.create_db(&catalog);
    let base = format!(
        "{}    verify: {{ level: checksum }}\n",
        std::fs::read_to_string(&w.config).unwrap()
    );
    let cfg = format!("{base}catalog: {{ url: \"{}\" }}\n", pg.url(&catalog));
    w.write_config(&cfg);
    ok(&w, &["catalog", "migrate"]);
    let table = |sql: &str| pg.psql(&catalog, sql);
    let snapshot = || {
        (
            table("SELECT string_agg(id, ',' ORDER BY id) FROM backups"),
            table("SELECT string_agg(id || '@' || region, ',' ORDER BY id, region) FROM copies"),
            table("SELECT string_agg(id || '@' || region || ':' || passed, ',' ORDER BY id, region) FROM verifications"),
            table("SELECT string_agg(d.playbook || '/' || d.run_id || '@' || c.region, ',' ORDER BY d.run_id, c.region) FROM drills d JOIN drill_copies c USING (playbook, run_id)"),
        )
    };

    // Live: no sync in between.
    let first = w.backup_ok()["id"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = w.backup_ok()["id"].as_str().unwrap().to_string();
    ok(&w, &["verify", "app"]);
    let pb = w.dir.join("catalog-drill.yaml");
    std::fs::write(
        &pb,
        "name: catalog-drill\nsteps:\n  - { id: hello, owner: SRE, timeout: 10s, kind: shell, run: \"true\" }\n",
    )
    .unwrap();
    let o = w
        .cmd(&["-o", "json", "drill", "run", pb.to_str().unwrap()])
        .env("DRCTL_EVIDENCE_DIR", w.dir.join("ev"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let run_id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let live = snapshot();
    assert_eq!(
        live.3,
        format!("catalog-drill/{run_id}@garage,catalog-drill/{run_id}@local"),
        "{live:?}"
    );
    assert_eq!(live.0, format!("{first},{second}"), "{live:?}");
    assert_eq!(
        live.1,
        format!("{first}@garage,{first}@local,{second}@garage,{second}@local")
    );
    assert_eq!(live.2, format!("{second}@garage:true,{second}@local:true"));
    w.write_config(&cfg.replace(
        "    verify:",
        "    retention: { keep_last: 1 }\n    verify:",
    ));
    ok(&w, &["prune"]);
    let live = snapshot();
    assert_eq!(
        live.0, second,
        "the pruned backup is still in the catalog: {live:?}"
    );
    // What was written live is what a sync from the repositories writes.
    ok(&w, &["catalog", "sync"]);
    assert_eq!(snapshot(), live, "live updates and a sync disagree");

    // The catalog down: the backup commits all the same, says so, and exits 0.
    let down = cfg.replace(
        &pg.url(&catalog),
        &format!("postgres://postgres@127.0.0.1:{}/x", free_port()),
    );
    w.write_config(&down);
    let o = w.drctl(&["-o", "json", "backup", "run", "app"]);
    assert!(
        o.status.success(),
        "a catalog outage failed a backup: {}",
        stderr(&o)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = r[0]["id"].as_str().unwrap();
    assert!(
        r[0]["catalog_error"].as_str().unwrap().contains("catalog"),
        "{r:#}"
    );
    assert!(stderr(&o).contains("catalog sync"), "{}", stderr(&o));
    assert!(w.backup_ids("app").iter().any(|b| b.starts_with(id)));
    // A sync cut off mid-transaction (its connection dropped after the deletes, as when the
    // process is killed): PostgreSQL rolls it back, the catalog is as it was.
    let before = snapshot();
    assert!(!before.0.contains(id), "{before:?}");
    let port = pg
        .url("x")
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let proxy = crate::proxy::Proxy::start(&format!("127.0.0.1:{port}"));
    proxy.cut_requests_containing("INSERT INTO copies");
    w.write_config(&cfg.replace(
        &pg.url(&catalog),
        &format!("postgres://postgres@{}/{catalog}", proxy.addr),
    ));
    let o = w.drctl(&["catalog", "sync"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        snapshot(),
        before,
        "a sync cut off mid-way changed the catalog"
    );
    // The next sync catches the catalog up.
    w.write_config(&cfg);
    ok(&w, &["catalog", "sync"]);
    assert!(snapshot().0.contains(id), "{:?}", snapshot());
}
