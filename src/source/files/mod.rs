//! Files: the configured paths as one tar stream (the `tar` crate), written by a blocking
//! thread into a bounded channel that the pipeline reads — memory stays a few chunks whatever
//! the tree's size. Symlinks are stored as links and never followed; special files (sockets,
//! FIFOs, devices) are skipped with a warning. A file whose size or mtime moves while it is
//! read fails the backup, naming it: a torn configuration file is not a backup of it.

pub mod kind;
mod tree;
mod unpack;

pub use kind::FilesSpec;

use super::{ArtifactStream, BackupSource, SnapshotInfo, SourceRun};
use crate::error::{Error, Result};
use async_trait::async_trait;
use bytes::Bytes;
use globset::GlobSet;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tree::Facts;

/// The channel's chunks: 256 KiB each, at most 8 in flight.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

pub struct FilesSource {
    roots: Vec<PathBuf>,
    include: GlobSet,
    exclude: GlobSet,
    any_include: bool,
}

impl FilesSource {
    fn new(spec: &FilesSpec) -> Result<FilesSource> {
        Ok(FilesSource {
            roots: spec.paths.iter().map(PathBuf::from).collect(),
            include: tree::globs(&spec.include)?,
            exclude: tree::globs(&spec.exclude)?,
            any_include: !spec.include.is_empty(),
        })
    }
}

#[async_trait]
impl BackupSource for FilesSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        for r in &self.roots {
            std::fs::symlink_metadata(r).map_err(|e| {
                Error::failed(format!("cannot read {}: {e}", r.display()))
                    .hint("check the job's source.paths")
            })?;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let stop = Arc::new(AtomicBool::new(false));
        Ok(Box::new(FilesRun {
            walk: Some(Walk {
                roots: self.roots.clone(),
                include: self.include.clone(),
                exclude: self.exclude.clone(),
                any_include: self.any_include,
                stop: stop.clone(),
            }),
            stop,
            task: None,
            // The tree is read from here on; a file changed while it is read fails the run.
            info: SnapshotInfo {
                server_version: format!("files on {}", host.trim()),
                consistent_at: chrono::Utc::now(),
            },
        }))
    }
}

struct FilesRun {
    walk: Option<Walk>,
    /// Shared with the walk: set on abort, so the blocking thread stops at its next read.
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<Result<Facts>>>,
    info: SnapshotInfo,
}

#[async_trait]
impl SourceRun for FilesRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        let Some(walk) = self.walk.take() else {
            return Ok(None);
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(CHUNKS_IN_FLIGHT);
        self.task = Some(tokio::task::spawn_blocking(move || walk.run(tx)));
        let stream = Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        Ok(Some(ArtifactStream {
            name: "files".into(),
            file_name: "files.tar".into(),
            reader: Box::new(tokio_util::io::StreamReader::new(stream)),
            size_hint: None,
            confirm: None,
        }))
    }

    async fn finish_artifact(&mut self) -> Result<serde_json::Value> {
        let task = self
            .task
            .take()
            .ok_or_else(|| Error::failed("no tar stream in progress"))?;
        let facts = task
            .await
            .map_err(|e| Error::failed(format!("the tar writer failed: {e}")))??;
        Ok(serde_json::to_value(facts).expect("facts serialize"))
    }

    async fn abort(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// `Write` into the channel, in chunks; a closed channel (the run was aborted) is an error.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the run stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The walk over the configured paths, on a blocking thread.
struct Walk {
    roots: Vec<PathBuf>,
    include: GlobSet,
    exclude: GlobSet,
    any_include: bool,
    stop: Arc<AtomicBool>,
}

impl Walk {
    fn run(self, tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>) -> Result<Facts> {
        let w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let mut tar = tar::Builder::new(w);
        tar.follow_symlinks(false);
        let mut facts = Facts::default();
        let walked = self
            .roots
            .iter()
            .try_for_each(|r| self.entry(&mut tar, r, &mut facts))
            .and_then(|()| {
                tar.into_inner()
                    .and_then(|mut w| w.flush())
                    .map_err(|e| Error::failed(format!("writing the tar stream: {e}")))
            });
        if let Err(e) = &walked {
            // The reader sees the failure instead of a clean end of stream.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
        walked.map(|()| facts)
    }

    fn entry(
        &self,
        tar: &mut tar::Builder<ChannelWriter>,
        path: &Path,
        facts: &mut Facts,
    ) -> Result<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(Error::interrupted("the files backup was stopped"));
        }
        let member = path.strip_prefix("/").unwrap_or(path);
        let name = member.to_string_lossy();
        if self.exclude.is_match(member) {
            return Ok(());
        }
        let meta = std::fs::symlink_metadata(path).map_err(|e| cannot_read(path, e))?;
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        let io = |e: std::io::Error| Error::failed(format!("writing {name} to the tar stream: {e}"));
        if ft.is_dir() {
            header.set_size(0);
            tar.append_data(&mut header, member, std::io::empty()).map_err(io)?;
            facts.dirs += 1;
            let mut children: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| cannot_read(path, e))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()
                .map_err(|e| cannot_read(path, e))?;
            children.sort();
            for c in children {
                self.entry(tar, &c, facts)?;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| cannot_read(path, e))?;
            header.set_size(0);
            tar.append_link(&mut header, member, &target).map_err(io)?;
            facts.symlinks += 1;
        } else if ft.is_file() {
            if self.any_include && !self.include.is_match(member) {
                return Ok(());
            }
            let (sha, n) = self.file(tar, path, member, &mut header)?;
            facts.files += 1;
            facts.bytes += n;
            facts.sha256.insert(name.into_owned(), sha);
        } else {
            tracing::warn!(path = %path.display(), "not a regular file, directory or symlink: skipped");
        }
        Ok(())
    }

    /// One regular file, hashed as it is stored; its size and mtime must not move meanwhile.
    fn file(
        &self,
        tar: &mut tar::Builder<ChannelWriter>,
        path: &Path,
        member: &Path,
        header: &mut tar::Header,
    ) -> Result<(String, u64)> {
        let f = std::fs::File::open(path).map_err(|e| cannot_read(path, e))?;
        let before = f.metadata().map_err(|e| cannot_read(path, e))?;
        header.set_metadata_in_mode(&before, tar::HeaderMode::Complete);
        let size = before.len();
        let mut hashing = Hashing {
            inner: (&f).take(size),
            file: &f,
            before: &before,
            sha: sha2::Sha256::default(),
            n: 0,
            stop: &self.stop,
        };
        let changed = |after: &std::fs::Metadata| changed(path, &before, after);
        tar.append_data(header, member, &mut hashing).map_err(|e| {
            if self.stop.load(Ordering::SeqCst) {
                Error::interrupted("the files backup was stopped")
            } else if e.kind() == std::io::ErrorKind::InvalidData {
                // `Hashing` saw the size or mtime move.
                f.metadata().map(|a| changed(&a)).unwrap_or_else(|e| cannot_read(path, e))
            } else {
                Error::failed(format!("{}: {e}", path.display()))
            }
        })?;
        let after = f.metadata().map_err(|e| cannot_read(path, e))?;
        if hashing.n != size || moved(&before, &after) {
            return Err(changed(&after));
        }
        use sha2::Digest;
        Ok((hex::encode(hashing.sha.finalize()), size))
    }
}

fn moved(before: &std::fs::Metadata, after: &std::fs::Metadata) -> bool {
    after.len() != before.len()
        || (after.mtime(), after.mtime_nsec()) != (before.mtime(), before.mtime_nsec())
}

fn changed(path: &Path, before: &std::fs::Metadata, after: &std::fs::Metadata) -> Error {
    Error::failed(format!(
        "{} changed while it was read (size {} → {}{})",
        path.display(),
        before.len(),
        after.len(),
        if after.mtime() != before.mtime() || after.mtime_nsec() != before.mtime_nsec() {
            ", mtime moved"
        } else {
            ""
        }
    ))
    .hint("the backup was not committed; run it again, or exclude the file if it is always being written (source.exclude)")
}

fn cannot_read(path: &Path, e: std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
        "run drctl as a user that can read it, or exclude it (source.exclude)"
    } else {
        "check the job's source.paths"
    };
    Error::failed(format!("cannot read {}: {e}", path.display())).hint(hint)
}

/// Bytes read between two looks at the file's size and mtime.
const RECHECK: u64 = 64 << 20;

/// A reader that hashes what passes through and counts it, and every `RECHECK` bytes looks
/// whether the file moved, so a large file written to meanwhile fails in seconds, not at
/// its end.
struct Hashing<'a, R> {
    inner: R,
    file: &'a std::fs::File,
    before: &'a std::fs::Metadata,
    sha: sha2::Sha256,
    n: u64,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        if self.stop.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("stopped"));
        }
        let k = self.inner.read(buf)?;
        self.sha.update(&buf[..k]);
        if (self.n + k as u64) / RECHECK != self.n / RECHECK && moved(self.before, &self.file.metadata()?) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "changed"));
        }
        self.n += k as u64;
        Ok(k)
    }
}
