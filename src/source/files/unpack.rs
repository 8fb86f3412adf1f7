//! The read side of a files backup: `drctl restore --to dir:/path` and the structure check.
//! Nothing is ever written outside the target: a member with an absolute name or a `..`
//! component, or one whose parent inside the target is a symlink, is refused — the restore
//! fails naming it, before a byte of it is written.

use super::tree::{hash_reader, Facts};
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use crate::source::{ByteReader, RestoreOptions, RestoreTarget, TargetRefused};
use async_trait::async_trait;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The directory of a `dir:/path` target.
pub fn dir_of(to: &str) -> Result<PathBuf> {
    match to.strip_prefix("dir:") {
        Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
        _ => Err(Error::usage(format!("--to {to:?} is not dir:/absolute/path"))
            .hint("a files backup restores into a directory: --to dir:/srv/restore")),
    }
}

#[derive(Clone)]
pub struct DirTarget {
    dir: PathBuf,
    opts: RestoreOptions,
}

impl DirTarget {
    pub fn new(to: &str, opts: RestoreOptions) -> Result<DirTarget> {
        let members = opts.members.iter().map(|m| checked(Path::new(m)).map(|_| ()));
        members.collect::<Result<Vec<()>>>()?;
        Ok(DirTarget {
            dir: dir_of(to)?,
            opts,
        })
    }

    /// Whether `name` is restored: every member without `--path`, else a picked member or
    /// what is under a picked directory.
    fn picked(&self, name: &Path) -> bool {
        self.opts.members.is_empty()
            || self
                .opts
                .members
                .iter()
                .any(|m| name.starts_with(m.trim_end_matches('/')))
    }
}

#[async_trait]
impl RestoreTarget for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", self.dir.display())
    }

    async fn prepare(&self, _: &[Artifact]) -> Result<()> {
        let dir = &self.dir;
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
                .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display()))),
            Err(e) => Err(Error::failed(format!("cannot read {}: {e}", dir.display()))),
            Ok(m) if !m.is_dir() => Err(Error::usage(format!(
                "{} exists and is not a directory",
                dir.display()
            ))),
            Ok(_) => {
                let mut entries = std::fs::read_dir(dir)
                    .map_err(|e| Error::failed(format!("cannot list {}: {e}", dir.display())))?;
                // With --path only the picked members are replaced; each is checked as it comes.
                if entries.next().is_some() && !self.opts.clean && self.opts.members.is_empty() {
                    return Err(Error::usage(format!("{} is not empty", dir.display())).hint(
                        "restore into an empty directory, or pass --clean to write over what is there",
                    ));
                }
                Ok(())
            }
        }
    }

    async fn restore(&self, _: &Artifact, reader: ByteReader) -> Result<()> {
        let sync = tokio_util::io::SyncIoBridge::new(reader);
        let me = self.clone();
        let n = tokio::task::spawn_blocking(move || me.unpack(sync))
            .await
            .map_err(|e| Error::failed(format!("unpacking: {e}")))??;
        if n == 0 && !self.opts.members.is_empty() {
            return Err(Error::usage(format!(
                "no member {} in the backup",
                self.opts.members.join(", ")
            ))
            .hint("members are named as stored, without the leading /: etc/app/app.yaml"));
        }
        tracing::info!(target = %self.dir.display(), members = n, "files restored");
        Ok(())
    }
}

impl DirTarget {
    /// Write every picked member under the target; directories get their modes, owners and
    /// mtimes last, so a read-only directory does not stop its own children.
    fn unpack(&self, r: impl Read) -> Result<u64> {
        let clean = self.opts.clean;
        let mut archive = tar::Archive::new(r);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_preserve_ownerships(is_root() && !self.opts.no_owner);
        archive.set_overwrite(clean);
        let mut dirs: Vec<(PathBuf, tar::Header)> = Vec::new();
        let mut n = 0;
        for entry in archive.entries().map_err(bad_archive)? {
            let mut entry = entry.map_err(bad_archive)?;
            let name = entry.path().map_err(bad_archive)?.into_owned();
            let rel = checked(&name)?;
            if !self.picked(&rel) {
                continue;
            }
            let dest = self.dir.join(&rel);
            self.parents(&rel)?;
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Directory => {
                    match std::fs::symlink_metadata(&dest) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => return Err(refused(&rel, "exists in the target and is not a directory")),
                        Err(_) => std::fs::create_dir(&dest).map_err(|e| write_err(&dest, e))?,
                    }
                    dirs.push((dest, entry.header().clone()));
                }
                tar::EntryType::Regular | tar::EntryType::Symlink => {
                    if let Ok(m) = std::fs::symlink_metadata(&dest) {
                        if !clean {
                            return Err(Error::usage(format!("{} exists", dest.display()))
                                .hint("pass --clean to replace it"));
                        }
                        if m.is_dir() {
                            return Err(refused(&rel, "is a directory in the target"));
                        }
                        std::fs::remove_file(&dest).map_err(|e| write_err(&dest, e))?;
                    }
                    entry.unpack(&dest).map_err(|e| write_err(&dest, e))?;
                }
                other => return Err(refused(&rel, &format!("has entry type {other:?}, which drctl never stores"))),
            }
            n += 1;
        }
        for (dest, h) in dirs.iter().rev() {
            set_dir_attributes(dest, h, is_root() && !self.opts.no_owner)?;
        }
        drain(archive)?;
        Ok(n)
    }

    /// Create the member's missing parents; refuse one that is not a real directory.
    fn parents(&self, rel: &Path) -> Result<()> {
        let mut at = self.dir.clone();
        let comps: Vec<_> = rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(refused(rel, &format!("its parent {} is a symlink", at.display())))
                }
                Ok(m) if !m.is_dir() => {
                    return Err(refused(rel, &format!("its parent {} is not a directory", at.display())))
                }
                Ok(_) => {}
                Err(_) => std::fs::create_dir(&at).map_err(|e| write_err(&at, e))?,
            }
        }
        Ok(())
    }
}

/// A member name made of plain components only.
fn checked(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(refused(
                    name,
                    "is absolute or has a `..` component: it would be written outside the target",
                ))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refused(name, "is empty"));
    }
    Ok(out)
}

/// Read past the end-of-archive blocks to the stream's end, so the pipeline sees every byte
/// (and checks the count and checksum of all of them).
fn drain(archive: tar::Archive<impl Read>) -> Result<()> {
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .map(|_| ())
        .map_err(bad_archive)
}

fn refused(member: &Path, why: &str) -> Error {
    Error::failed(format!("member {} refused: it {why}", member.display()))
        .hint("nothing is written outside the target; restore into an empty directory")
}

/// A member that cannot be written: the OS's own reason (tar's "failed to unpack" wraps it and
/// prints only itself), and what the target holds now, since an unpack is not undone.
fn write_err(p: &Path, e: std::io::Error) -> Error {
    let cause = root_io_cause(&e);
    let full = matches!(cause.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
    let what = if full {
        "the target's filesystem is full: free space there (or pick a larger target)"
    } else {
        "fix the cause"
    };
    let refused = TargetRefused::is_refusal(cause);
    let err = Error::failed(format!("cannot write {}: {cause}", p.display())).hint(format!(
        "{what}; the target holds the members written before this one: restore again with --clean"
    ));
    // A read of the archive that failed inside tar's unpack is the copy's, not the disk's.
    if refused {
        err.with_source(TargetRefused::new(e))
    } else {
        err.with_source(e)
    }
}

/// The innermost `io::Error` under `e` (tar wraps the OS error in one of its own).
fn root_io_cause(e: &std::io::Error) -> &std::io::Error {
    let mut at = e;
    while let Some(inner) = at
        .get_ref()
        .and_then(|i| std::error::Error::source(i))
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .or_else(|| at.get_ref().and_then(|i| i.downcast_ref::<std::io::Error>()))
    {
        at = inner;
    }
    at
}

fn bad_archive(e: std::io::Error) -> Error {
    Error::failed(format!("the tar stream is unreadable: {e}"))
        .hint("run `drctl verify JOB --level structure`; restore another backup or region")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_dir_attributes(dest: &Path, h: &tar::Header, owners: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if owners {
        if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
            std::os::unix::fs::chown(dest, Some(uid as u32), Some(gid as u32))
                .map_err(|e| write_err(dest, e))?;
        }
    }
    if let Ok(mode) = h.mode() {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
            .map_err(|e| write_err(dest, e))?;
    }
    if let Ok(mtime) = h.mtime() {
        let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_file_mtime(dest, t).map_err(|e| write_err(dest, e))?;
    }
    Ok(())
}

/// `verify --level structure`: every entry read, names checked, files hashed.
pub async fn read_archive(raw: ByteReader) -> Result<Facts> {
    let sync = tokio_util::io::SyncIoBridge::new(raw);
    tokio::task::spawn_blocking(move || {
        let mut facts = Facts::default();
        let mut archive = tar::Archive::new(sync);
        for entry in archive.entries().map_err(bad_archive)? {
            let entry = entry.map_err(bad_archive)?;
            let name = entry.path().map_err(bad_archive)?.into_owned();
            checked(&name)?;
            match entry.header().entry_type() {
                tar::EntryType::Directory => facts.dirs += 1,
                tar::EntryType::Symlink => facts.symlinks += 1,
                tar::EntryType::Regular => {
                    let (sha, n) = hash_reader(entry).map_err(bad_archive)?;
                    facts.files += 1;
                    facts.bytes += n;
                    facts.sha256.insert(name.to_string_lossy().into_owned(), sha);
                }
                other => return Err(refused(&name, &format!("has entry type {other:?}"))),
            }
        }
        drain(archive)?;
        Ok(facts)
    })
    .await
    .map_err(|e| Error::failed(format!("reading the archive: {e}")))?
}
