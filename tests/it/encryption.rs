//! Client-side encryption (age): the stored bytes in every region hold none of the source's
//! plaintext; restore and `verify --level structure` read them with the configured identity,
//! refuse before touching the target without one, and refuse a tampered ciphertext even when
//! its checksums were rewritten to match.

use crate::common::*;
use sha2::Digest;

// Throwaway keys made for these tests only.
const KEY_A: &str = "AGE-SECRET-KEY-1QA9F6J5L38VXJQXCXS6M7JEER6SY8TZE87T8U9TQXCJT9R0W4YSQXFEPV4";
const PUB_A: &str = "age1sdypvgqexfhseucq2stq4lt5az5jsjexk7wwqhs83s7ckdrkl5msuskr0e";
const KEY_B: &str = "AGE-SECRET-KEY-1C6F0MDPY8RL7AMPCZW3MCJ8LTLSP80TWPV0DZ4MHY3UCSVQSH4XSN3PSYN";
const PUB_B: &str = "age1te8cqsmw7q9g0mv45l5jpz403knsnlwy3h37j3hr7tfcxjj7yf6qyhjjnq";
const MARKER: &str = "PLAINTEXT-MARKER-91f2";

fn config(w: &World, tree: &std::path::Path, identity: &std::path::Path) {
    config_to(w, tree, PUB_A, &[identity]);
}

/// The job `etc` backing up `tree`, encrypted to `recipient`, read with `identities`.
fn config_to(w: &World, tree: &std::path::Path, recipient: &str, identities: &[&std::path::Path]) {
    let files: Vec<String> = identities
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    let enc = format!(
        "encryption: {{ recipients: [{recipient}], identity_files: [{}] }}",
        files.join(", ")
    );
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    w.write_config(&w.regions().top(&enc).job("etc", &source, &[]).text());
}

fn stored(w: &World) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = w
        .fs_files()
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let g = garage();
    for k in w.s3_keys().iter().filter(|k| k.contains("/backups/")) {
        let o = g.aws(&["s3", "cp", &format!("s3://{}/{k}", g.bucket), "-"]);
        out.push((k.clone(), o.stdout));
    }
    out
}

#[test]
fn an_encrypted_backup_holds_no_plaintext_and_reads_only_with_its_identity() {
    let w = World::new("encryption");
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(tree.join("conf")).unwrap();
    std::fs::write(tree.join("conf/app.yaml"), MARKER.repeat(20_000)).unwrap();
    std::fs::write(tree.join("secret.txt"), format!("{MARKER} db password")).unwrap();
    let (a, b) = (w.dir.join("a.key"), w.dir.join("b.key"));
    std::fs::write(&a, format!("# test key\n{KEY_A}\n")).unwrap();
    std::fs::write(&b, format!("{KEY_B}\n")).unwrap();
    config(&w, &tree, &a);
    let id = w.backup_ok_job("etc")["id"].as_str().unwrap().to_string();

    let all = stored(&w);
    assert!(
        all.len() >= 4,
        "two artifacts' worth in two regions: {}",
        all.len()
    );
    for (name, bytes) in &all {
        assert!(
            !bytes.windows(MARKER.len()).any(|x| x == MARKER.as_bytes()),
            "plaintext in {name}"
        );
    }
    let mpath = format!("backups/etc/{id}/manifest.json");
    let text = std::fs::read_to_string(w.fs_root.join(&mpath)).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fp = m["encryption"]["recipients"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fp.starts_with("sha256:"), "{m:#}");
    assert!(
        !text.contains("age1") && !text.contains("AGE-SECRET"),
        "keys in the manifest"
    );

    // The right identity: restore equals the source, structure passes.
    let to = w.dir.join("restored");
    w.restore_job_ok("etc", "garage", &format!("dir:{}", to.display()), &[]);
    let restored = to.join(tree.strip_prefix("/").unwrap());
    assert_eq!(
        tree_digest(&restored, &|_| false),
        tree_digest(&tree, &|_| false)
    );
    let o = w.drctl(&["verify", "etc", "--level", "structure"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The scratch restore goes through the same path.
    let o = w.drctl(&["verify", "etc", "--level", "restore"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Another identity: refused before the target is touched, naming what it needs.
    config(&w, &tree, &b);
    let other = w.dir.join("other");
    let o = w.drctl(&[
        "restore",
        "etc",
        "--to",
        &format!("dir:{}", other.display()),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&fp) && err.contains("none of the configured identities"),
        "{err}"
    );
    assert!(
        !err.contains(KEY_B) && !err.contains(KEY_A),
        "a key in the output: {err}"
    );
    assert!(!other.exists(), "the target was touched");

    // Tampered ciphertext with its checksums rewritten to match: checksum passes, the
    // decryption refuses it in verify and in restore.
    config(&w, &tree, &a);
    let mut m2 = m.clone();
    for (i, art) in m["artifacts"].as_array().unwrap().iter().enumerate() {
        let path = art["path"].as_str().unwrap();
        assert!(path.ends_with(".age"), "{path}");
        let mut bytes = std::fs::read(w.fs_root.join(format!("backups/etc/{id}/{path}"))).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        m2["artifacts"][i]["sha256"] = hex::encode(sha2::Sha256::digest(&bytes)).into();
        w.put_both(&format!("backups/etc/{id}/{path}"), &bytes);
    }
    w.put_both(&mpath, m2.to_string().as_bytes());
    let o = w.drctl(&["-o", "json", "verify", "etc", "--level", "structure"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["structure"]["ok"], false, "{r:#}");
    let o = w.drctl(&[
        "restore",
        "etc",
        "--to",
        &format!("dir:{}", w.dir.join("t2").display()),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn a_recipient_that_is_not_an_age_key_is_named_at_its_line() {
    let w = World::new("encryption-config");
    let source = "{ kind: files, paths: [\"/etc/hostname\"] }";
    let text = w
        .regions()
        .top("encryption: { recipients: [age1notakey] }")
        .job("etc", source, &[])
        .text();
    w.write_config(&text);
    let o = w.drctl(&["config", "validate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("encryption.recipients[0]") && err.contains("not an age X25519 recipient"),
        "{err}"
    );
}

#[test]
fn after_a_key_rotation_old_backups_read_with_the_old_identity_and_new_ones_with_the_new() {
    let w = World::new("encryption-rotation");
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("app.yaml"), "v: 1\n").unwrap();
    let (a, b) = (w.dir.join("a.key"), w.dir.join("b.key"));
    std::fs::write(&a, format!("{KEY_A}\n")).unwrap();
    std::fs::write(&b, format!("{KEY_B}\n")).unwrap();
    config_to(&w, &tree, PUB_A, &[&a]);
    let old = w.backup_ok_job("etc")["id"].as_str().unwrap().to_string();
    // Rotate: new backups to B; both identities kept for reading.
    std::fs::write(tree.join("app.yaml"), "v: 2\n").unwrap();
    config_to(&w, &tree, PUB_B, &[&a, &b]);
    let new = w.backup_ok_job("etc")["id"].as_str().unwrap().to_string();
    let fp = |id: &str| -> String {
        let p = w.fs_root.join(format!("backups/etc/{id}/manifest.json"));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        m["encryption"]["recipients"][0]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(
        fp(&old),
        fp(&new),
        "the new backup is encrypted to the new recipient"
    );
    let restore = |id: &str, tag: &str| {
        let to = w.dir.join(tag);
        let o = w.drctl(&[
            "restore",
            "etc",
            "--backup",
            id,
            "--to",
            &format!("dir:{}", to.display()),
        ]);
        (o, to.join(tree.strip_prefix("/").unwrap()).join("app.yaml"))
    };
    for (id, tag, want) in [(&old, "old", "v: 1\n"), (&new, "new", "v: 2\n")] {
        let (o, file) = restore(id, tag);
        assert!(o.status.success(), "{tag}: {}", stderr(&o));
        assert_eq!(std::fs::read_to_string(file).unwrap(), want);
    }
    // With the old identity retired, the old backup says which key it needs.
    config_to(&w, &tree, PUB_B, &[&b]);
    let (o, _) = restore(&old, "old-again");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&fp(&old)), "{}", stderr(&o));
}

#[test]
fn a_job_with_its_own_recipients_is_encrypted_to_them_and_read_with_its_own_identity() {
    let w = World::new("encryption-per-job");
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("team.yaml"), "owner: payments\n").unwrap();
    let b = w.dir.join("b.key");
    std::fs::write(&b, format!("{KEY_B}\n")).unwrap();
    // The repository's recipient is A (its identity is not even here); the job's is B.
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    let own = format!(
        "encryption: {{ recipients: [{PUB_B}], identity_files: [\"{}\"] }}",
        b.display()
    );
    let text = w
        .regions()
        .top(&format!("encryption: {{ recipients: [{PUB_A}] }}"))
        .job("etc", &source, &[&own])
        .text();
    w.write_config(&text);
    let id = w.backup_ok_job("etc")["id"].as_str().unwrap().to_string();
    let p = w.fs_root.join(format!("backups/etc/{id}/manifest.json"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    assert_eq!(
        m["encryption"]["recipients"].as_array().unwrap().len(),
        1,
        "{m:#}"
    );
    let to = w.dir.join("restored");
    w.restore_job_ok("etc", "local", &format!("dir:{}", to.display()), &[]);
    let file = to.join(tree.strip_prefix("/").unwrap()).join("team.yaml");
    assert_eq!(std::fs::read_to_string(file).unwrap(), "owner: payments\n");
}

/// The job `etc` backing up `tree`, encrypted with the passphrase in `$TEST_PASSPHRASE`.
fn config_passphrase(w: &World, tree: &std::path::Path) {
    let enc = "encryption: { passphrase: \"${TEST_PASSPHRASE}\" }";
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    w.write_config(&w.regions().top(enc).job("etc", &source, &[]).text());
}

#[test]
fn a_passphrase_backup_holds_no_plaintext_reads_with_its_passphrase_and_refuses_a_wrong_one_early()
{
    const PASS: &str = "correct-horse-battery-staple-7f3c9a1e";
    let w = World::new("passphrase");
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("app.yaml"), MARKER.repeat(5_000)).unwrap();
    config_passphrase(&w, &tree);
    let with =
        |pass: &str, args: &[&str]| w.cmd(args).env("TEST_PASSPHRASE", pass).output().unwrap();

    let o = with(PASS, &["-o", "json", "backup", "run", "etc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (name, bytes) in &stored(&w) {
        for needle in [MARKER, PASS] {
            assert!(
                !bytes.windows(needle.len()).any(|x| x == needle.as_bytes()),
                "{needle} in {name}"
            );
        }
    }
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/etc/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["encryption"]["scheme"], "age-scrypt", "{m:#}");

    let to = w.dir.join("restored");
    let o = with(
        PASS,
        &[
            "restore",
            "etc",
            "--region",
            "garage",
            "--to",
            &format!("dir:{}", to.display()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let restored = to.join(tree.strip_prefix("/").unwrap());
    assert_eq!(
        tree_digest(&restored, &|_| false),
        tree_digest(&tree, &|_| false)
    );
    let o = with(PASS, &["verify", "etc", "--level", "structure"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A wrong passphrase: refused before the target exists, the passphrase never printed.
    let other = w.dir.join("other");
    let o = with(
        "not-the-passphrase-0000",
        &[
            "restore",
            "etc",
            "--to",
            &format!("dir:{}", other.display()),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("does not open backup"), "{err}");
    assert!(
        !err.contains("not-the-passphrase-0000") && !err.contains(PASS),
        "{err}"
    );
    assert!(!other.exists(), "the target was touched");
    let o = with(
        "not-the-passphrase-0000",
        &["verify", "etc", "--level", "structure"],
    );
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));

    // Recipients configured later: new backups go to them, the passphrase still reads this one.
    let enc =
        format!("encryption: {{ recipients: [{PUB_A}], passphrase: \"${{TEST_PASSPHRASE}}\" }}");
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    w.write_config(&w.regions().top(&enc).job("etc", &source, &[]).text());
    let again = w.dir.join("again");
    let o = with(
        PASS,
        &[
            "restore",
            "etc",
            "--backup",
            &id,
            "--to",
            &format!("dir:{}", again.display()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // No passphrase configured at all: said so, with what to set.
    w.write_config(&w.regions().job("etc", &source, &[]).text());
    let none = w.dir.join("none");
    let o = w.drctl(&[
        "restore",
        "etc",
        "--backup",
        &id,
        "--to",
        &format!("dir:{}", none.display()),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("encrypted with a passphrase, and none is configured"),
        "{}",
        stderr(&o)
    );
    assert!(!none.exists());
}

/// The manifest's fingerprint of an age recipient, as drctl records it.
fn fingerprint_of(recipient: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(sha2::Sha256::digest(recipient.as_bytes()))[..16]
    )
}

#[test]
fn an_encrypted_postgres_copy_with_a_damaged_header_comes_from_the_next_region_and_a_key_that_fits_no_copy_says_so(
) {
    let pg = pg();
    let src = db_name("enc_pg_src");
    seed(pg, &src);
    let w = World::new("encryption-pg");
    let key = w.dir.join("a.key");
    std::fs::write(&key, format!("{KEY_A}\n")).unwrap();
    let enc = format!(
        "encryption: {{ recipients: [{PUB_A}], identity_files: [\"{}\"] }}",
        key.display()
    );
    let config = |enc: &str| {
        w.regions()
            .top("min_copies: 2")
            .top(enc)
            .job("app", &pg_source(&pg.url(&src), &[]), &[])
            .text()
    };
    w.write_config(&config(&enc));
    let id = w.backup_ok()["id"].as_str().unwrap().to_string();
    let dir = format!("backups/app/{id}");
    let mpath = format!("{dir}/manifest.json");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    let art = m["artifacts"][0]["path"].as_str().unwrap().to_string();
    assert!(art.ends_with(".age"), "{m:#}");

    // The local copy's age header is damaged (its version line): decryption refuses it before
    // any byte reaches pg_restore, and the copy comes from the next region.
    let payload = w.fs_root.join(format!("{dir}/{art}"));
    let good = std::fs::read(&payload).unwrap();
    let mut bad = good.clone();
    bad[5] ^= 0x20;
    std::fs::write(&payload, &bad).unwrap();
    let dst = db_name("enc_pg_dst");
    let r = w.restore_ok("local", &pg.url(&dst));
    assert_eq!(r["region"], "garage", "fell back to the intact copy: {r}");
    assert!(
        r["skipped_regions"][0]
            .as_str()
            .unwrap()
            .starts_with("local:"),
        "{r}"
    );
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));
    std::fs::write(&payload, &good).unwrap();

    // Every copy intact, but sealed to a key other than the one the manifest names (and the
    // configuration holds): no region is to blame, and the error says what failed.
    let key_b = w.dir.join("b.key");
    std::fs::write(&key_b, format!("{KEY_B}\n")).unwrap();
    let mut m2 = m.clone();
    m2["encryption"]["recipients"] = serde_json::json!([fingerprint_of(PUB_B)]);
    w.put_both(&mpath, m2.to_string().as_bytes());
    w.write_config(&config(&format!(
        "encryption: {{ recipients: [{PUB_B}], identity_files: [\"{}\"] }}",
        key_b.display()
    )));
    let dst2 = db_name("enc_pg_dst2");
    let o = w.drctl(&["restore", "app", "--to", &pg.url(&dst2)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cannot decrypt") && !e.contains("no region holds an intact copy"),
        "{e}"
    );
    assert!(
        !e.contains(KEY_A) && !e.contains(KEY_B),
        "a key in the output: {e}"
    );
}
