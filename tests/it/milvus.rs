//! Milvus beyond the behaviour suite: schemas the suite's seed does not have (auto_id keys,
//! a partition key), a target that already holds the collection, an unloaded collection,
//! and the config rules. pymilvus (`tests/tools/milvus_observe.py`) observes every server.

use crate::common::*;

fn job(w: &World, m: &Milvus, db: &str) {
    let source = format!("{{ kind: milvus, url: \"{}\", database: {db} }}", m.url);
    w.write_config(&w.regions().job("vec", &source, &[]).text());
}

fn facts(w: &World, id: &str) -> serde_json::Value {
    let path = w.fs_root.join(format!("backups/vec/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["facts"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn auto_id_and_partition_key_collections_come_back() {
    let m = Milvus::embedded();
    let spec = serde_json::json!({ "collections": [
        { "name": "auto", "auto_id": true, "consistency": "Strong", "rows": 800, "batch": 300, "flush_each": true,
          "fields": [
            {"name": "id", "type": "int64", "primary": true},
            {"name": "v", "type": "float_vector", "dim": 8},
            {"name": "label", "type": "varchar", "max_length": 40},
          ],
          "index": {"field": "v", "index_type": "HNSW", "metric_type": "IP", "params": {"M": 8, "efConstruction": 32}} },
        { "name": "keyed", "num_partitions": 4, "rows": 900, "batch": 400, "dynamic": true,
          "fields": [
            {"name": "id", "type": "int64", "primary": true},
            {"name": "tenant", "type": "varchar", "max_length": 16, "partition_key": true},
            {"name": "v", "type": "float_vector", "dim": 8},
          ],
          "index": {"field": "v", "index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 4}} },
    ]});
    m.seed("mv_kinds", &spec);
    let w = World::new("milvus-kinds");
    job(&w, m, "mv_kinds");
    let id = w.backup_ok_job("vec")["id"].as_str().unwrap().to_string();
    let f = facts(&w, &id);
    assert_eq!(f["auto"]["rows"], 800, "{f:#}");
    // Milvus will not name one partition of a partition-key collection in a query: it is read
    // (and counted) whole.
    assert_eq!(
        f["keyed"]["partitions"],
        serde_json::json!({ "(by partition key)": 900 }),
        "{f:#}"
    );

    m.seed("mv_kinds_r", &serde_json::json!({ "collections": [] }));
    w.restore_job_ok("vec", "garage", &m.db_url("mv_kinds_r"), &[]);
    // The partition-key collection comes back whole: schema, key, partitions, rows, indexes.
    assert_eq!(
        m.digest("mv_kinds_r", &["keyed"]),
        m.digest("mv_kinds", &["keyed"])
    );
    // Milvus refuses values for an auto_id key: new ids, every other value and the schema equal.
    assert_eq!(
        m.digest("mv_kinds_r", &["auto", "--no-ids"]),
        m.digest("mv_kinds", &["auto", "--no-ids"])
    );
}

#[test]
fn a_target_that_holds_the_collection_is_refused_and_clean_replaces_it() {
    let m = Milvus::lite(&tempdir("milvus-clean-"));
    let seed = crate::behaviour::milvus_seed(1200, false, false);
    m.seed("app", &seed);
    let want = m.digest("app", &[]);
    let w = World::new("milvus-clean");
    job(&w, &m, "app");
    w.backup_ok_job("vec");

    // Someone recreated `docs` since: a restore must not touch it without --clean.
    m.tool(&["--db", "app", "drop", "docs"]);
    let mut small = seed.clone();
    small["collections"][0]["rows"] = 10.into();
    m.seed("app", &small);
    let changed = m.digest("app", &[]);
    let o = w.drctl(&["restore", "vec", "--to", &m.db_url("app")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("already has collection(s) docs"), "{err}");
    assert!(err.contains("--clean"), "{err}");
    assert_eq!(
        m.digest("app", &[]),
        changed,
        "the refused restore wrote nothing"
    );

    w.restore_job_ok("vec", "local", &m.db_url("app"), &["--clean"]);
    assert_eq!(m.digest("app", &[]), want);
}

#[test]
fn an_unloaded_collection_fails_the_backup_naming_it() {
    let m = Milvus::embedded();
    let mut seed = crate::behaviour::milvus_seed(600, false, false);
    seed["collections"][0]["name"] = "cold".into();
    seed["collections"][0]["release"] = true.into();
    m.seed("mv_cold", &seed);
    let w = World::new("milvus-cold");
    job(&w, m, "mv_cold");
    let o = w.drctl(&["backup", "run", "vec"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("collection(s) cold are not loaded"), "{err}");
    assert!(err.contains("load_collection"), "says what to do: {err}");
    w.assert_nothing_left();
}

#[test]
fn the_source_block_rules_name_the_field() {
    let w = World::new("milvus-config");
    let source = "{ kind: milvus, url: \"http://127.0.0.1:1\", batch_rows: 0, token: t, user: u }";
    w.write_config(&w.regions().job("vec", source, &[]).text());
    let o = w.drctl(&["config", "validate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        "jobs[0].source.batch_rows: batch_rows must be between 1 and 16384",
        "jobs[0].source.token: give either token or user and password, not both",
        "jobs[0].source.password: user and password go together",
    ] {
        assert!(err.contains(want), "{want:?} in {err}");
    }
}

#[test]
fn a_server_with_authentication_and_tls_is_backed_up_with_its_credentials_only() {
    let m = Milvus::secured();
    m.seed("sec", &crate::behaviour::milvus_seed(600, false, false));
    let w = World::new("milvus-secured");
    let src = format!(
        "{{ kind: milvus, url: \"{}\", database: sec, user: root, password: \"${{MILVUS_PASSWORD}}\", ca_file: \"{}\" }}",
        m.url,
        m.ca_file()
    );
    w.write_config(&w.regions().job("vec", &src, &[]).text());
    let run = |args: &[&str], pw: &str| w.cmd(args).env("MILVUS_PASSWORD", pw).output().unwrap();
    let o = run(&["-o", "json", "backup", "run", "vec"], "Milvus");
    assert!(o.status.success(), "{}", stderr(&o));
    m.seed("sec_r", &serde_json::json!({ "collections": [] }));
    let o = run(&["restore", "vec", "--to", &m.db_url("sec_r")], "Milvus");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(m.digest("sec_r", &[]), m.digest("sec", &[]));

    // A wrong password: refused, the hint names the credentials, the password is never shown.
    let w2 = World::new("milvus-secured-wrong");
    let wrong = "not-the-password-7f3a";
    let src = format!(
        "{{ kind: milvus, url: \"{}\", database: sec, user: root, password: \"{wrong}\", ca_file: \"{}\" }}",
        m.url,
        m.ca_file()
    );
    w2.write_config(&w2.regions().job("vec", &src, &[]).text());
    let o = w2.drctl(&["backup", "run", "vec"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(err.contains("check the token or user/password"), "{err}");
    assert!(!out.contains(wrong) && !err.contains(wrong), "{out}{err}");
    w2.assert_nothing_left();

    // Without the CA the server's certificate is not trusted: a TLS failure, nothing stored.
    let w3 = World::new("milvus-secured-noca");
    let src = format!(
        "{{ kind: milvus, url: \"{}\", database: sec, user: root, password: Milvus }}",
        m.url
    );
    w3.write_config(&w3.regions().job("vec", &src, &[]).text());
    let o = w3.drctl(&["backup", "run", "vec"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));
    w3.assert_nothing_left();
}
