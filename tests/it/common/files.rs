//! Real file trees for the files kind: one with every shape a config directory has, and a
//! digest that sees what users care about (names, types, modes, owners, mtimes, contents,
//! link targets).

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// Nested directories, relative, absolute and dangling symlinks, a 0-byte file, unicode
/// names, other modes and owners, and files the job's `exclude: ["*.swp"]` leaves out.
pub fn config_tree(root: &Path) {
    let sub = root.join("conf.d/nested/deeper");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::fs::write(root.join("app.yaml"), "listen: 0.0.0.0:8080\nreplicas: 3\n").unwrap();
    std::fs::write(root.join("empty"), "").unwrap();
    std::fs::write(root.join("conf.d/ünïcödé 名前.conf"), "ключ = значение\n").unwrap();
    std::fs::write(
        sub.join("big.bin"),
        (0..300_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(root.join("conf.d/.app.yaml.swp"), "editor swap").unwrap();
    std::fs::write(root.join("secret.key"), "-----BEGIN KEY-----\n").unwrap();
    std::fs::set_permissions(
        root.join("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("secret.key"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(
        root.join("conf.d/nested"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("../app.yaml", root.join("conf.d/current")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("hostname")).unwrap();
    std::os::unix::fs::symlink("does-not-exist", root.join("dangling")).unwrap();
    // An mtime far from now, so "kept" cannot mean "touched at restore time".
    let old = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    filetime::set_file_mtime(root.join("app.yaml"), old).unwrap();
}

/// One line per entry under `root`, sorted: name, type, mode, owner, mtime (seconds, as tar
/// keeps it), and the SHA-256 of a file or the target of a link. `skip` names are left out.
pub fn tree_digest(root: &Path, skip: &dyn Fn(&str) -> bool) -> String {
    use sha2::Digest;
    let mut lines = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip(&rel) {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()))
            };
            // A symlink's own mode and mtime are not restorable everywhere; its target is.
            let attrs = if m.file_type().is_symlink() {
                format!("{}:{}", m.uid(), m.gid())
            } else {
                format!("{:o} {}:{} {}", m.mode(), m.uid(), m.gid(), m.mtime())
            };
            lines.push(format!("{rel} {attrs} {what}"));
        }
    }
    lines.sort();
    lines.join("\n")
}

/// A small tmpfs mounted at `at`: a disk that fills up. Unmounted when dropped (declare it
/// after the `World` whose directory holds it, so it goes first).
pub struct Tmpfs {
    pub at: PathBuf,
}

impl Tmpfs {
    /// `size` as mount(8) takes it: `64k`, `4m`.
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_with(at, &format!("size={size}"))
    }

    /// A read-only one: a region or target nothing can be written to.
    pub fn read_only(at: &Path, size: &str) -> Tmpfs {
        Tmpfs::mount_with(at, &format!("size={size},ro"))
    }

    fn mount_with(at: &Path, opts: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mounting a tmpfs ({opts}) needs root: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs {
            at: at.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// `n` files of `mib` MiB of random bytes (nothing to compress) under `root`.
pub fn random_files(root: &Path, n: usize, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..n {
        let mut buf = vec![0u8; mib << 20];
        let mut f = std::fs::File::open("/dev/urandom").unwrap();
        std::io::Read::read_exact(&mut f, &mut buf).unwrap();
        std::fs::write(root.join(format!("blob-{i}.bin")), buf).unwrap();
    }
}
