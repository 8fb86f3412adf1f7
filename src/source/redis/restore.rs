//! Restoring a Redis backup, two ways:
//! - `--to redis://host:port`: replay every key into a live server with pipelined
//!   `RESTORE key ttl payload REPLACE [ABSTTL]`, TTLs kept as absolute expiry times. The value
//!   bytes of each RDB record are a DUMP payload's body; the footer is the RDB version (2 bytes
//!   LE) and a CRC64 of both. Function libraries are replayed with `FUNCTION LOAD REPLACE`.
//! - `--to file:/path/dump.rdb`: the RDB file for a cold start, renamed into place whole.

use super::conn::{encode, io_err, read_reply, Conn, Reply};
use super::rdb::{Record, Walker};
use super::stream::CRC;
use super::Target;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use crate::source::{ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Commands gathered before a batch goes to the connection writer.
const BATCH: usize = 256 * 1024;

pub fn target(to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
    if let Some(p) = to.strip_prefix("file:").filter(|p| !p.is_empty()) {
        return Ok(Box::new(RdbFileTarget {
            path: p.into(),
            opts,
        }));
    }
    if to.starts_with("redis://") || to.starts_with("rediss://") {
        return Ok(Box::new(LiveTarget {
            t: Target::parse(to)?,
            opts,
        }));
    }
    Err(Error::usage(format!(
        "--to {to:?}: a Redis backup restores to redis://host:port or file:/path/dump.rdb"
    ))
    .hint(
        "redis:// replays every key into a running server; file: writes dump.rdb for a cold start",
    ))
}

/// Replay into a running server.
pub struct LiveTarget {
    t: Target,
    opts: RestoreOptions,
}

#[async_trait]
impl RestoreTarget for LiveTarget {
    fn describe(&self) -> String {
        self.t.redacted.clone()
    }

    async fn prepare(&self, _artifacts: &[Artifact]) -> Result<()> {
        let mut c = Conn::open(&self.t).await?;
        let ks = c.bulk(&["INFO", "keyspace"]).await?;
        let held: Vec<&str> = ks.lines().filter(|l| l.starts_with("db")).collect();
        if !held.is_empty() && !self.opts.clean {
            return Err(Error::usage(format!(
                "{} is not empty ({}): refusing to restore over it",
                self.t.redacted,
                held.join(", ")
            ))
            .hint("pass --clean to replace the keys the backup also has (keys it lacks stay), or FLUSHALL the target first for an exact copy"));
        }
        Ok(())
    }

    async fn restore(&self, _a: &Artifact, reader: ByteReader) -> Result<()> {
        let Conn {
            mut r,
            mut w,
            redacted,
        } = Conn::open(&self.t).await?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8);
        let end = format!("drctl-restore-end-{:016x}", rand::random::<u64>());
        // The parser runs on a blocking thread and hands encoded command batches over.
        let walker = tokio::task::spawn_blocking(move || {
            let input = tokio_util::io::SyncIoBridge::new(reader);
            let mut enc = Encoder::default();
            let facts = Walker::new(input).replay(|rec| {
                enc.record(rec);
                if enc.buf.len() >= BATCH {
                    tx.blocking_send(std::mem::take(&mut enc.buf))
                        .map_err(|_| "the Redis connection stopped".to_string())?;
                }
                Ok(())
            })?;
            if !enc.buf.is_empty() {
                let _ = tx.blocking_send(enc.buf);
            }
            Ok::<_, String>(facts)
        });
        let end_echo = end.clone();
        let writer = async move {
            while let Some(b) = rx.recv().await {
                w.write_all(&b).await?;
            }
            let mut tail = Vec::new();
            encode(&[b"ECHO", end_echo.as_bytes()], &mut tail);
            w.write_all(&tail).await?;
            w.flush().await
        };
        let replies = async {
            let mut n = 0u64;
            loop {
                match read_reply(&mut r, &redacted).await? {
                    Reply::Error(e) => return Err(refused(n + 1, &e)),
                    Reply::Bulk(Some(b)) if b == end.as_bytes() => return Ok(n),
                    _ => n += 1,
                }
            }
        };
        let sent = tokio::try_join!(
            async { writer.await.map_err(|e| io_err(&redacted, e).hint(PARTIAL)) },
            replies
        );
        // A refusal or a dead connection stops the parser too: report the cause, not that.
        let (_, commands) = sent?;
        let facts = walker
            .await
            .map_err(|e| Error::failed(format!("RDB parser failed: {e}")))?
            .map_err(|e| {
                Error::failed(format!("the backup's RDB could not be parsed: {e}")).hint(PARTIAL)
            })?;
        let keys: u64 = facts.dbs.values().map(|d| d.keys).sum();
        tracing::info!(target = %redacted, keys, commands, "Redis keys replayed");
        Ok(())
    }
}

const PARTIAL: &str =
    "keys replayed before the failure stay in the target; FLUSHALL it (or use a fresh server) and run the restore again";

fn refused(n: u64, e: &str) -> Error {
    let err = Error::failed(format!("Redis refused command #{n} of the replay: {e}"));
    if e.contains("payload version") {
        err.hint("the target Redis is older than the source (it cannot read the source's RDB version); restore into a server at least as new, or use --to file:")
    } else {
        err.hint(PARTIAL)
    }
}

/// Turns walker records into RESP commands.
#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
    version: u16,
    db: Option<u32>,
}

impl Encoder {
    fn record(&mut self, rec: Record<'_>) {
        match rec {
            Record::Header(v) => self.version = v as u16,
            Record::Function(code) => {
                encode(&[b"FUNCTION", b"LOAD", b"REPLACE", &code], &mut self.buf)
            }
            Record::Key {
                db,
                key,
                expire_ms,
                value,
            } => {
                if self.db != Some(db) {
                    encode(&[b"SELECT", db.to_string().as_bytes()], &mut self.buf);
                    self.db = Some(db);
                }
                let mut payload = Vec::with_capacity(value.len() + 10);
                payload.extend_from_slice(value);
                payload.extend_from_slice(&self.version.to_le_bytes());
                let crc = CRC.checksum(&payload);
                payload.extend_from_slice(&crc.to_le_bytes());
                match expire_ms {
                    Some(at) => encode(
                        &[
                            b"RESTORE",
                            &key,
                            at.to_string().as_bytes(),
                            &payload,
                            b"REPLACE",
                            b"ABSTTL",
                        ],
                        &mut self.buf,
                    ),
                    None => encode(
                        &[b"RESTORE", &key, b"0", &payload, b"REPLACE"],
                        &mut self.buf,
                    ),
                }
            }
        }
    }
}

/// The RDB file cannot be written in `dir` (full, read-only): the partial file is gone with
/// its temporary name, and nothing was put in place.
fn write_err(dir: &std::path::Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot write the RDB file in {}: {e}", dir.display()))
        .hint("free space there or restore to another file: nothing was put in place")
        .with_source(e)
}

/// `--to file:/path/dump.rdb`: the snapshot as an RDB file for a cold start.
/// Written to a temporary name and renamed, so a failed restore leaves no partial file.
pub struct RdbFileTarget {
    path: std::path::PathBuf,
    opts: RestoreOptions,
}

#[async_trait]
impl RestoreTarget for RdbFileTarget {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn prepare(&self, _artifacts: &[Artifact]) -> Result<()> {
        if self.path.exists() && !self.opts.clean {
            return Err(Error::usage(format!(
                "{} exists: refusing to overwrite it",
                self.path.display()
            ))
            .hint("pass --clean (or --yes) to replace it"));
        }
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    async fn restore(&self, _a: &Artifact, mut reader: ByteReader) -> Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        use crate::source::to_file::{into_temp_file, CopyFailed};
        let (tmp, f) = match into_temp_file(&mut reader, dir).await {
            Ok(written) => written,
            Err(CopyFailed::Reading(e)) => {
                return Err(Error::failed(format!("restoring the RDB file: {e}")).with_source(e))
            }
            Err(CopyFailed::Writing(e)) => return Err(write_err(dir, e)),
        };
        f.sync_all().await.map_err(|e| write_err(dir, e))?;
        tmp.persist(&self.path)
            .map_err(|e| Error::failed(format!("cannot move the RDB file into place: {e}")))?;
        Ok(())
    }
}
