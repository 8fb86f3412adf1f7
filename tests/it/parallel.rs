//! `parallel: N` PostgreSQL backups: one snapshot dumped by several pg_dump processes, each
//! section and bucket its own artifact, restored side by side.

use crate::common::*;

/// Indexes and constraints of a database, as one comparable text (post-data restored).
fn definitions(pg: &Pg, db: &str) -> String {
    pg.psql(
        db,
        "SELECT string_agg(x, '|' ORDER BY x) FROM ( \
           SELECT indexdef AS x FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog','information_schema') \
           UNION ALL SELECT conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint \
           WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)) d",
    )
}

pub(crate) fn parallel_world(name: &str) -> (&'static Pg, String, World) {
    let pg = pg();
    let src = db_name(&format!("{name}_src"));
    seed(pg, &src);
    let w = World::new(name);
    w.two_regions(2, &pg.url(&src), &["parallel: 2"]);
    (pg, src, w)
}

/// Point the world's job (source `src`) at a pg_restore that is the shell `script`.
pub(crate) fn use_pg_restore(w: &World, pg: &Pg, src: &str, script: &str) {
    let fake = w.dir.join("pg_restore");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let field = format!("pg_restore: \"{}\"", fake.display());
    w.two_regions(2, &pg.url(src), &["parallel: 2", &field]);
}

/// Flip the last byte of `file` of backup `id` in the fs region `local`.
fn corrupt_local(w: &World, id: &str, file: &str) {
    let payload = w.fs_root.join(format!("backups/app/{id}/{file}"));
    let mut bytes = std::fs::read(&payload).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(&payload, bytes).unwrap();
}

#[test]
fn a_parallel_backup_restores_equal_to_the_source_table_by_table() {
    let (pg, src, w) = parallel_world("par_rt");
    let report = w.backup_ok();
    let id = report["id"].as_str().unwrap().to_string();
    let manifest = w.fs_root.join(format!("backups/app/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let arts = m["artifacts"].as_array().unwrap();
    let names: Vec<&str> = arts.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pre", "data-1", "data-2", "post"]);
    let sections: Vec<&str> = arts
        .iter()
        .map(|a| a["facts"]["section"].as_str().unwrap())
        .collect();
    assert_eq!(sections, ["pre-data", "data", "data", "post-data"]);
    // Three tables in two buckets; the row counts of the one snapshot ride with pre-data.
    let tables: u64 = arts
        .iter()
        .filter_map(|a| a["facts"]["tables"].as_u64())
        .sum();
    assert_eq!(tables, 3);
    assert_eq!(arts[0]["facts"]["row_counts"]["public.orders"], 5000);
    assert_eq!(
        arts[0]["facts"]["row_counts"]["billing.\"Invoice Lines\""],
        250
    );

    let want = table_digests(pg, &src);
    assert_eq!(want.len(), 3);
    for (region, jobs) in [("garage", "2"), ("local", "1")] {
        let dst = db_name("par_dst");
        w.restore_job_ok("app", region, &pg.url(&dst), &["--jobs", jobs]);
        assert_eq!(
            table_digests(pg, &dst),
            want,
            "from {region} with --jobs {jobs}"
        );
        assert_eq!(definitions(pg, &dst), definitions(pg, &src));
        assert_eq!(
            pg.psql(&dst, "SELECT count(*) FROM active_customers"),
            "1500"
        );
        // Sequences continue where the source's stood.
        assert_eq!(
            pg.psql(&dst, "SELECT last_value FROM customers_id_seq"),
            pg.psql(&src, "SELECT last_value FROM customers_id_seq")
        );
    }

    // Each artifact's archive holds what the manifest says (TABLE DATA entries per bucket).
    let o = w.drctl(&["verify", "app", "--level", "structure"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // --clean cannot drop tables whose constraints live in another artifact: refused, named.
    let dst = db_name("par_clean");
    w.restore_job_ok("app", "local", &pg.url(&dst), &[]);
    let o = w.drctl(&["restore", "app", "--to", &pg.url(&dst), "--clean"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("parallel backup") && err.contains("new database"),
        "{err}"
    );
}

#[test]
fn a_bucket_failing_mid_stream_fails_the_run_and_commits_nothing() {
    let pg = pg();
    let src = db_name("par_fail_src");
    seed(pg, &src);
    let w = World::new("par_fail");
    // The bucket that names its tables dies after some bytes; the other dumps are real.
    let body = "case \"$*\" in *--table=*) pg_dump \"$@\" | head -c 3000; \
                echo 'pg_dump: error: connection to server lost' >&2; exit 1;; esac\nexec pg_dump \"$@\"";
    let fake = format!("pg_dump: \"{}\"", fake_pg_dump(&w.dir, body).display());
    w.two_regions(2, &pg.url(&src), &[&fake, "parallel: 2"]);
    let o = w.drctl(&["backup", "run", "app"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("pg_dump (data-2)") && err.contains("connection to server lost"),
        "{err}"
    );
    w.assert_nothing_left();
    let o = w.drctl(&["-o", "json", "backup", "list", "app"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["backups"], serde_json::json!([]), "{list}");
}

#[test]
fn a_single_archive_backup_restores_with_jobs_2() {
    let (pg, src, w) = seeded_world("par_old", 2);
    let report = w.backup_ok();
    let id = report["id"].as_str().unwrap();
    let manifest = w.fs_root.join(format!("backups/app/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    assert_eq!(m["artifacts"].as_array().unwrap().len(), 1);
    let dst = db_name("par_old_dst");
    w.restore_job_ok("app", "garage", &pg.url(&dst), &["--jobs", "2"]);
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
    assert_eq!(definitions(pg, &dst), definitions(pg, &src));
}

#[test]
fn parallel_is_checked_where_it_is_written() {
    let w = World::new("par_cfg");
    let url = "postgres://u@localhost:1/db";
    w.write_config(
        &w.regions()
            .job("zero", &pg_source(url, &["parallel: 0"]), &[])
            .job(
                "picky",
                &pg_source(url, &["parallel: 2", "extra_args: [\"--table=orders\"]"]),
                &[],
            )
            .text(),
    );
    let o = w.drctl(&["config", "validate"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("jobs[0].source.parallel") && err.contains("1 to 16"),
        "{err}"
    );
    assert!(
        err.contains("jobs[1].source.parallel") && err.contains("--table"),
        "{err}"
    );
}

/// A parallel backup whose bucket is corrupt in the first region: that bucket alone comes from
/// the next region (its failed transaction rolled back), the rest from the first, and the
/// restored tables equal the source's (nothing twice).
#[test]
fn a_corrupt_bucket_comes_from_the_next_region_alone() {
    let (pg, src, w) = parallel_world("par_fb");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();
    corrupt_local(&w, &id, "data-2.pgdump.zst");

    let dst = db_name("par_fb_dst");
    let r = w.restore_job_ok("app", "local", &pg.url(&dst), &["--jobs", "2"]);
    assert_eq!(r["region"], "local,garage", "{r}");
    let skipped = r["skipped_regions"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r}");
    let why = skipped[0].as_str().unwrap();
    assert!(
        why.starts_with("local: restoring data-2 from region local"),
        "{r}"
    );
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
    assert_eq!(definitions(pg, &dst), definitions(pg, &src));
}

/// Both buckets corrupt in the first region, the first bucket made to end last: the report
/// lists the regions given up on in the manifest's order (data-1, then data-2), not in the
/// order the buckets happened to finish, and every table still equals the source's.
#[test]
fn regions_given_up_on_are_reported_in_the_manifests_order() {
    let (pg, src, w) = parallel_world("par_fb2");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();
    corrupt_local(&w, &id, "data-1.pgdump.zst");
    corrupt_local(&w, &id, "data-2.pgdump.zst");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/app/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["artifacts"][1]["facts"]["tables"], 1, "{m}");
    assert_eq!(m["artifacts"][2]["facts"]["tables"], 2, "{m}");
    // data-1 is the bucket of one table: its every run starts 2 s late.
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--single-transaction*)\n  f={dir}/stdin.$$; cat > \"$f\"\n  \
         [ \"$(pg_restore -l \"$f\" | grep -c 'TABLE DATA')\" = 1 ] && sleep 2\n  \
         pg_restore \"$@\" < \"$f\"; rc=$?; rm -f \"$f\"; exit $rc;;\nesac\nexec pg_restore \"$@\"\n",
        dir = w.dir.display()
    );
    use_pg_restore(&w, pg, &src, &script);

    let dst = db_name("par_fb2_dst");
    let r = w.restore_job_ok("app", "local", &pg.url(&dst), &["--jobs", "2"]);
    let skipped: Vec<&str> = r["skipped_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{r}");
    assert!(
        skipped[0].starts_with("local: restoring data-1 from region local"),
        "{r}"
    );
    assert!(
        skipped[1].starts_with("local: restoring data-2 from region local"),
        "{r}"
    );
    assert_eq!(r["region"], "local,garage", "{r}");
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
}

#[test]
fn a_bucket_the_target_refuses_fails_the_restore_naming_it_and_says_the_target_is_partial() {
    let (pg, src, w) = parallel_world("par_tgt");
    w.backup_ok();

    // The target fails on the bucket that holds `orders` (as a full disk would); the copies
    // are intact, so no other region is tried and the target's own error is the cause.
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in *--single-transaction*) ;; *) exec pg_restore \"$@\";; esac\n\
         f={dir}/stdin.$$\ncat > \"$f\"\n\
         if pg_restore -l \"$f\" | grep -q 'TABLE DATA public orders'; then\n\
         echo 'pg_restore: error: could not extend file: No space left on device' >&2; rm -f \"$f\"; exit 1; fi\n\
         pg_restore \"$@\" < \"$f\"; rc=$?; rm -f \"$f\"; exit $rc\n",
        dir = w.dir.display()
    );
    use_pg_restore(&w, pg, &src, &script);

    let dst = db_name("par_tgt_dst");
    let o = w.drctl(&["restore", "app", "--jobs", "2", "--to", &pg.url(&dst)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("restoring data-") && e.contains("No space left on device"),
        "{e}"
    );
    assert!(
        !e.contains("no region holds an intact copy") && !e.contains("trying the next region"),
        "{e}"
    );
    // Pre-data (and perhaps the other bucket) is in: the user is told, with what to do.
    assert!(
        pg.psql(
            &dst,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ) != "0",
        "pre-data restored"
    );
    assert!(
        e.contains("part of this backup") && e.contains("drop it"),
        "{e}"
    );
}

/// A pg_restore that logs what each run restores (`end pre`, `end data`, `end orders-data`,
/// `list jobs=N: <entries>`) into `pg_restore.log`, then runs the real one. The data bucket
/// holding `orders` is slow: it ends 2 s after its data is in. `fail_list` makes a
/// `--use-list` run whose entries contain it fail as a target error would.
fn logging_pg_restore(w: &World, fail_list: &str) -> String {
    format!(
            "#!/bin/sh\nlog={dir}/pg_restore.log\n\
             case \"$*\" in\n\
             *--single-transaction*)\n\
               f={dir}/stdin.$$; cat > \"$f\"; toc=$(pg_restore -l \"$f\")\n\
               what=pre; echo \"$toc\" | grep -q 'TABLE DATA' && what=data\n\
               echo \"$toc\" | grep -q 'TABLE DATA public orders' && what=orders-data\n\
               pg_restore \"$@\" < \"$f\"; rc=$?; rm -f \"$f\"\n\
               [ $what = orders-data ] && sleep 2\n\
               echo \"end $what\" >> $log; exit $rc;;\n\
             *--use-list=*)\n\
               for a in \"$@\"; do case \"$a\" in --use-list=*) l=${{a#--use-list=}};; --jobs=*) j=${{a#--jobs=}};; esac; done\n\
               echo \"list jobs=$j: $(tr '\\n' '|' < \"$l\")\" >> $log\n\
               if [ -n '{fail_list}' ] && grep -q '{fail_list}' \"$l\"; then\n\
                 echo 'pg_restore: error: could not create unique index: No space left on device' >&2; exit 1; fi\n\
               exec pg_restore \"$@\";;\n\
             *) exec pg_restore \"$@\";;\n\
             esac\n",
        dir = w.dir.display()
    )
}

/// `restore --jobs 2` of a parallel backup builds a bucket's own indexes and keys as soon as
/// its data is in, while another bucket still loads (as `pg_restore -j` does from a file),
/// and the foreign key, which needs both tables, only after every bucket.
#[test]
fn a_bucket_builds_its_indexes_while_another_still_loads() {
    let (pg, src, w) = parallel_world("par_early");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();
    let manifest = w.fs_root.join(format!("backups/app/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    for a in &m["artifacts"].as_array().unwrap()[1..3] {
        let entries = a["facts"]["post_data_entries"].as_array().unwrap();
        assert!(!entries.is_empty(), "each bucket's tables have keys: {a}");
    }

    use_pg_restore(&w, pg, &src, &logging_pg_restore(&w, ""));
    let dst = db_name("par_early_dst");
    w.restore_job_ok("app", "local", &pg.url(&dst), &["--jobs", "2"]);
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
    assert_eq!(definitions(pg, &dst), definitions(pg, &src));

    let log = std::fs::read_to_string(w.dir.join("pg_restore.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let at = |what: &str| {
        lines
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what} not in the log:\n{log}"))
    };
    let orders_in = at("end orders-data");
    // customers sits in the other bucket: its keys were built while orders still loaded, on
    // one job (orders' load held the other).
    let customers_keys = at("customers_pkey");
    assert!(customers_keys < orders_in, "{log}");
    assert!(lines[customers_keys].starts_with("list jobs=1:"), "{log}");
    assert!(!lines[customers_keys].contains("fkey"), "{log}");
    // The bucket that finished last built its own on every job; the foreign key came after.
    let orders_keys = at("orders_pkey");
    assert!(orders_in < orders_keys, "{log}");
    assert!(lines[orders_keys].starts_with("list jobs=2:"), "{log}");
    assert!(orders_keys < at("orders_customer_id_fkey"), "{log}");
    assert_eq!(
        log.matches("customers_pkey").count(),
        1,
        "restored once: {log}"
    );
}

/// A bucket whose index build fails fails the restore naming the bucket and the cause, and
/// says the target holds part of the backup.
#[test]
fn a_bucket_whose_indexes_fail_fails_the_restore_and_says_the_target_is_partial() {
    let (pg, src, w) = parallel_world("par_idx");
    w.backup_ok();
    use_pg_restore(&w, pg, &src, &logging_pg_restore(&w, "customers_pkey"));
    let dst = db_name("par_idx_dst");
    let o = w.drctl(&["restore", "app", "--jobs", "2", "--to", &pg.url(&dst)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("building the indexes and keys of data-") && e.contains("No space left"),
        "{e}"
    );
    assert!(!e.contains("trying the next region"), "{e}");
    assert!(
        e.contains("part of this backup") && e.contains("drop it"),
        "{e}"
    );
}

/// With `--jobs 2` the post-data is spooled before the buckets build their indexes from it: a
/// post-data copy corrupt in the first region is spooled again from the next one, and every
/// index, key and foreign key is built once, from the intact copy. The pre-data (read from the
/// first region beside it) is made to end last, and the report still names the regions in the
/// order they were tried.
#[test]
fn a_corrupt_post_data_copy_is_spooled_from_the_next_region() {
    let (pg, src, w) = parallel_world("par_post");
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();
    let slow = "#!/bin/sh\ncase \"$*\" in *--single-transaction*) sleep 1;; esac\nexec pg_restore \"$@\"\n";
    use_pg_restore(&w, pg, &src, slow);
    corrupt_local(&w, &id, "post.pgdump.zst");

    let dst = db_name("par_post_dst");
    let r = w.restore_job_ok("app", "local", &pg.url(&dst), &["--jobs", "2"]);
    assert_eq!(r["region"], "local,garage", "{r}");
    let why = r["skipped_regions"][0].as_str().unwrap();
    assert!(
        why.starts_with("local: restoring post from region local"),
        "{r}"
    );
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
    assert_eq!(definitions(pg, &dst), definitions(pg, &src));
}

/// `restore --jobs 2` of a single archive spools it to `$TMPDIR` for pg_restore: a TMPDIR too
/// small for it fails the restore saying so, not as a damaged copy (no other region is tried,
/// since every region's copy would meet the same full TMPDIR) nor as a bare "I/O error".
#[test]
fn a_tmpdir_too_small_for_the_spool_is_named_and_no_copy_is_blamed() {
    let (pg, _src, w) = seeded_world("par_spool", 2);
    w.backup_ok();
    let tmp = Tmpfs::mount(&w.dir.join("tmp"), "64k");
    let dst = db_name("par_spool_dst");
    let o = w
        .cmd(&["restore", "app", "--to", &pg.url(&dst), "--jobs", "2"])
        .env("TMPDIR", &tmp.at)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!("cannot spool the archive to {}", tmp.at.display())),
        "{e}"
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(
        e.contains("set TMPDIR") && e.contains("without --jobs"),
        "{e}"
    );
    assert!(!e.contains("copy unusable"), "{e}");
    assert!(!e.contains("intact copy"), "{e}");
}
