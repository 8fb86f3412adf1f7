//! The files kind on a real tree: what is kept (modes, owners, mtimes, symlinks as links,
//! a 0-byte file, unicode names), what is refused (members that would land outside the
//! target), and what fails a backup (a file that changes while read, one drctl cannot read).

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A world whose job `cfg` backs up the tree `build` makes (at the returned path).
fn files_world(name: &str, build: impl FnOnce(&Path)) -> (World, std::path::PathBuf) {
    let w = World::new(name);
    let tree = w.dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    build(&tree);
    let source = format!(
        "{{ kind: files, paths: [\"{}\"], exclude: [\"*.swp\"] }}",
        tree.display()
    );
    w.write_config(&w.regions().job("cfg", &source, &[]).text());
    (w, tree)
}

/// The stored member name of `p`: its absolute path without the leading `/`.
fn member(p: &Path) -> String {
    p.strip_prefix("/").unwrap().display().to_string()
}

#[test]
fn a_config_tree_round_trips_and_one_member_restores_alone() {
    let (w, tree) = files_world("files-rt", config_tree);
    let id = w.backup_ok_job("cfg")["id"].as_str().unwrap().to_string();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/cfg/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    let facts = &m["artifacts"][0]["facts"];
    assert_eq!(m["artifacts"][0]["path"], "files.tar.zst");
    // app.yaml, empty, secret.key, the unicode file and big.bin; the .swp file excluded.
    assert_eq!(facts["files"], 5, "{facts}");
    assert_eq!(facts["symlinks"], 3, "{facts}");
    let shas = facts["sha256"].as_object().unwrap();
    assert!(shas.keys().all(|k| !k.ends_with(".swp")), "{facts}");
    assert_eq!(
        shas[&format!("{}/empty", member(&tree))],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    let to = w.dir.join("restored");
    w.restore_job_ok("cfg", "garage", &format!("dir:{}", to.display()), &[]);
    let back = to.join(member(&tree));
    assert_eq!(
        tree_digest(&back, &|_| false),
        tree_digest(&tree, &|n| n.ends_with(".swp")),
        "modes, owners, mtimes, contents and link targets"
    );

    // A second restore into the same, now non-empty, directory is refused.
    let o = w.drctl(&["restore", "cfg", "--to", &format!("dir:{}", to.display())]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--clean"), "{}", stderr(&o));

    // One member alone, over the original after it was damaged: only that file changes.
    let app = tree.join("app.yaml");
    let want = std::fs::read(&app).unwrap();
    std::fs::write(&app, "damaged").unwrap();
    std::fs::write(tree.join("empty"), "edited, not to be touched").unwrap();
    let o = w.drctl(&[
        "restore",
        "cfg",
        "--to",
        "dir:/",
        "--path",
        &member(&app),
        "--clean",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&app).unwrap(), want);
    assert_eq!(
        std::fs::read_to_string(tree.join("empty")).unwrap(),
        "edited, not to be touched"
    );

    // A member that is not there is named.
    let o = w.drctl(&[
        "restore",
        "cfg",
        "--to",
        "dir:/tmp",
        "--path",
        "etc/nope.yaml",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("no member etc/nope.yaml"),
        "{}",
        stderr(&o)
    );
}

/// Replace the backup's archive in both regions with `tar` (manifest rewritten to match, as
/// an attacker holding the bucket could), then restore into an empty directory.
fn restore_forged(name: &str, case: &str) {
    use sha2::Digest;
    let (w, _) = files_world(name, |t| std::fs::write(t.join("a"), "a").unwrap());
    let id = w.backup_ok_job("cfg")["id"].as_str().unwrap().to_string();
    let outside = w.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let tar = run(Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/evil_tar.py"
        ))
        .args([case, outside.to_str().unwrap()]));
    assert!(tar.status.success(), "{}", stderr(&tar));
    let raw = w.dir.join("forged.tar");
    std::fs::write(&raw, &tar.stdout).unwrap();
    let zst = run(Command::new("zstd").args(["-q", "-c"]).arg(&raw));
    assert!(zst.status.success(), "{}", stderr(&zst));
    let mpath = format!("backups/cfg/{id}/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    m["artifacts"][0]["sha256"] = hex::encode(sha2::Sha256::digest(&zst.stdout)).into();
    m["artifacts"][0]["stored_size"] = zst.stdout.len().into();
    m["artifacts"][0]["raw_size"] = tar.stdout.len().into();
    w.put_both(&format!("backups/cfg/{id}/files.tar.zst"), &zst.stdout);
    w.put_both(&mpath, m.to_string().as_bytes());

    let target = w.dir.join("target");
    let o = w.drctl(&[
        "restore",
        "cfg",
        "--to",
        &format!("dir:{}", target.display()),
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "{case}: the forged archive restored"
    );
    let e = stderr(&o);
    assert!(e.contains("refused"), "{case}: {e}");
    assert!(e.contains("escaped"), "{case}: names the member: {e}");
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "{case}: something was written outside the target"
    );
    assert!(
        !w.dir.join("escaped").exists() && !Path::new("/escaped").exists(),
        "{case}"
    );
}

#[test]
fn a_member_named_with_dotdot_is_refused() {
    restore_forged("files-dotdot", "dotdot");
}

#[test]
fn an_absolute_member_is_refused() {
    restore_forged("files-abs", "absolute");
}

#[test]
fn a_member_under_a_symlinked_parent_is_refused() {
    restore_forged("files-symlink", "symlink");
}

#[test]
fn a_file_that_changes_while_it_is_read_fails_the_backup_naming_it() {
    // 8 GiB sparse: seconds to read, so the append below lands while it is being read; the
    // source looks at the file every 64 MiB, so the run fails soon after, not at its end.
    let (w, tree) = files_world("files-changing", |t| {
        let f = std::fs::File::create(t.join("app.log")).unwrap();
        f.set_len(8 << 30).unwrap();
    });
    let log = tree.join("app.log");
    let child = w
        .cmd(&["backup", "run", "cfg"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"one more line\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{} changed while it was read", log.display())),
        "{e}"
    );
    assert!(e.contains("exclude"), "says what to do: {e}");
    w.assert_nothing_left();
}

#[test]
fn a_file_drctl_cannot_read_fails_the_backup_naming_it() {
    // Root reads everything, so drctl runs as `nobody` here, over a tree nobody owns except
    // one file it may not read.
    let w = World::new("files-unreadable");
    let tree = w.dir.join("t");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("ok.yaml"), "fine").unwrap();
    let locked = tree.join("locked.key");
    std::fs::write(&locked, "secret").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::chown(&locked, Some(12345), Some(12345)).unwrap();
    let text = ConfigText::default()
        .fs("local", &w.fs_root)
        .job(
            "cfg",
            &format!("{{ kind: files, paths: [\"{}\"] }}", tree.display()),
            &[],
        )
        .text();
    w.write_config(&text);
    std::fs::create_dir_all(&w.fs_root).unwrap();
    for p in [&w.dir, &w.fs_root] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut parent = w.dir.parent();
    while let Some(p) = parent {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o001)).unwrap();
        parent = p.parent();
    }
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_drctl"),
        ])
        .arg("-c")
        .arg(&w.config)
        .args(["backup", "run", "cfg"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("cannot read {}", locked.display())),
        "{e}"
    );
    assert!(e.contains("Permission denied"), "{e}");
    assert!(e.contains("exclude"), "says what to do: {e}");
    assert!(
        w.fs_files().iter().all(|f| !f.ends_with("manifest.json")),
        "{:?}",
        w.fs_files()
    );
}

#[test]
fn a_restore_that_fills_its_target_names_the_full_disk_and_what_the_target_holds() {
    let w = World::new("files-fulltarget");
    let tree = w.dir.join("t");
    random_files(&tree, 3, 8);
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    w.write_config(
        &ConfigText::default()
            .fs("local", &w.fs_root)
            .job("cfg", &source, &[])
            .text(),
    );
    w.backup_ok_job("cfg");
    let target = Tmpfs::mount(&w.dir.join("target"), "12m");
    let o = w.drctl(&[
        "restore",
        "cfg",
        "--to",
        &format!("dir:{}", target.at.display()),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    // The OS's reason, not only tar's "failed to unpack", and the member it stopped at.
    assert!(e.contains("No space left on device"), "{e}");
    assert!(
        e.contains(&format!(
            "cannot write {}",
            target.at.join(member(&tree)).display()
        )),
        "{e}"
    );
    assert!(e.contains("filesystem is full"), "{e}");
    assert!(e.contains("restore again with --clean"), "{e}");
}

/// `verify --level restore` whose scratch directory is too small: the scratch's full disk says
/// nothing about the backup, so no verdict is recorded and nothing says to distrust it; given
/// room, the same backup verifies.
#[test]
fn a_scratch_too_small_for_the_restore_judges_nothing_and_records_nothing() {
    let w = World::new("files-fullscratch");
    let tree = w.dir.join("t");
    random_files(&tree, 3, 8);
    let source = format!("{{ kind: files, paths: [\"{}\"] }}", tree.display());
    let with_scratch = |dir: &Path| {
        let verify = format!(
            "verify: {{ level: restore, scratch: \"dir:{}\" }}",
            dir.display()
        );
        ConfigText::default()
            .fs("local", &w.fs_root)
            .job("cfg", &source, &[&verify])
            .text()
    };
    let scratch = Tmpfs::mount(&w.dir.join("scratch"), "12m");
    w.write_config(&with_scratch(&scratch.at));
    w.backup_ok_job("cfg");

    let o = w.drctl(&["verify", "cfg", "--level", "restore"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("the scratch restore could not run, so the backup was not judged"),
        "{e}"
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(e.contains("fix verify.scratch"), "{e}");
    assert!(!e.contains("do not count on this backup"), "{e}");
    let records = files_under(&w.fs_root.join("verifications"));
    assert!(records.is_empty(), "a verdict was recorded: {records:?}");
    let left = files_under(&scratch.at);
    assert!(left.is_empty(), "the scratch kept {left:?}");

    drop(scratch);
    let roomy = w.dir.join("roomy");
    std::fs::create_dir_all(&roomy).unwrap();
    w.write_config(&with_scratch(&roomy));
    let o = w.drctl(&["verify", "cfg", "--level", "restore"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files_under(&w.fs_root.join("verifications")).len(), 1);
}
