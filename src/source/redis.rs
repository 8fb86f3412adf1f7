//! Redis: the RDB snapshot taken over the replication protocol, streamed straight into the
//! pipeline (no temp file, no `redis-cli`, no waiting on BGSAVE files on the server's disk).
//!
//! drctl connects as a replica: `REPLCONF capa eof` (diskless transfer allowed),
//! `REPLCONF rdb-only 1` (Redis 7+: send the snapshot and nothing after it), `PSYNC ? -1`.
//! The payload arrives framed either as `$<len>` or, diskless, as `$EOF:<40-byte mark>` ...
//! `<mark>`. While it streams we check the RDB magic and its CRC64 trailer: a truncated or
//! corrupt stream, or a server that dies mid-transfer, fails the backup.
//!
//! `consistent_at` is the instant drctl sent `PSYNC`: the server forks its snapshot after that
//! (possibly `repl-diskless-sync-delay` later), so RPO measured from it is never understated.

use super::rdb::{ChannelReader, RdbFacts, Walker};
use super::{
    ArtifactStream, BackupSource, ByteReader, RestoreOptions, RestoreTarget, SnapshotInfo,
    SourceRun,
};
use crate::config::RedisSpec;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use async_trait::async_trait;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::PollSender;

const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Check a source URL at validation time (no I/O).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(url)
        .map_err(|e| format!("not a valid URL ({e}): use redis://[user:password@]host:6379"))?;
    match u.scheme() {
        "redis" => {}
        "rediss" => return Err("rediss:// (TLS) is not supported yet: use redis:// over a trusted network or a TLS tunnel".into()),
        s => return Err(format!("scheme {s:?} is not redis://")),
    }
    if u.host_str().is_none_or(|h| h.is_empty()) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

struct Target {
    addr: String,
    user: Option<String>,
    password: Option<String>,
    redacted: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        check_url(url).map_err(Error::usage)?;
        let u = url::Url::parse(url).map_err(|e| Error::usage(e.to_string()))?;
        let host = u.host_str().unwrap_or("localhost").to_string();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let password = u.password().and_then(decode);
        let user = Some(u.username())
            .filter(|s| !s.is_empty())
            .and_then(decode);
        let port = u.port().unwrap_or(6379);
        let redacted = format!(
            "redis://{}{host}:{port}",
            user.as_deref().map(|u| format!("{u}@")).unwrap_or_default()
        );
        Ok(Target {
            addr: format!("{host}:{port}"),
            user,
            password,
            redacted,
        })
    }
}

/// A minimal RESP client: just what a replica handshake needs.
struct Conn {
    io: BufReader<TcpStream>,
    redacted: String,
}

impl Conn {
    async fn open(t: &Target) -> Result<Conn> {
        let tcp = TcpStream::connect(&t.addr).await.map_err(|e| {
            Error::failed(format!("cannot connect to Redis at {}: {e}", t.redacted))
                .hint("check the source url and that the server is up")
        })?;
        let mut c = Conn {
            io: BufReader::with_capacity(256 * 1024, tcp),
            redacted: t.redacted.clone(),
        };
        if let Some(p) = &t.password {
            let mut args = vec!["AUTH"];
            if let Some(u) = &t.user {
                args.push(u);
            }
            args.push(p);
            c.simple(&args).await.map_err(|e| {
                e.context("Redis AUTH failed")
                    .hint("check the user and password in the source url")
            })?;
        }
        Ok(c)
    }

    async fn send(&mut self, args: &[&str]) -> Result<()> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.io
            .get_mut()
            .write_all(out.as_bytes())
            .await
            .map_err(|e| self.io_err(e))
    }

    /// Next reply line, skipping the bare newlines a master sends as keep-alives.
    async fn line(&mut self) -> Result<String> {
        loop {
            let mut l = String::new();
            let n = self
                .io
                .read_line(&mut l)
                .await
                .map_err(|e| self.io_err(e))?;
            if n == 0 {
                return Err(Error::failed(format!(
                    "Redis at {} closed the connection",
                    self.redacted
                )));
            }
            let l = l.trim_end_matches(['\r', '\n']).to_string();
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }

    /// Send a command expecting a simple (+) reply.
    async fn simple(&mut self, args: &[&str]) -> Result<String> {
        self.send(args).await?;
        let l = self.line().await?;
        match l.strip_prefix('+') {
            Some(ok) => Ok(ok.to_string()),
            None => Err(Error::failed(format!(
                "Redis {}: {}",
                args[0],
                l.trim_start_matches('-')
            ))),
        }
    }

    async fn bulk(&mut self, args: &[&str]) -> Result<String> {
        self.send(args).await?;
        let l = self.line().await?;
        let n: usize = l
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                Error::failed(format!("Redis {}: {}", args[0], l.trim_start_matches('-')))
            })?;
        let mut buf = vec![0; n + 2];
        self.io
            .read_exact(&mut buf)
            .await
            .map_err(|e| self.io_err(e))?;
        buf.truncate(n);
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        Error::failed(format!("Redis at {}: {e}", self.redacted))
    }
}

pub struct RedisSource {
    spec: RedisSpec,
}

impl RedisSource {
    pub fn new(spec: RedisSpec) -> Self {
        RedisSource { spec }
    }
}

#[async_trait]
impl BackupSource for RedisSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        let t = Target::parse(self.spec.url.expose())?;
        let mut c = Conn::open(&t).await?;
        let info = c.bulk(&["INFO", "server"]).await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        c.simple(&["REPLCONF", "capa", "eof"]).await?;
        // Redis 7+: send the snapshot only, no replication stream after it. Older: ignored.
        if let Err(e) = c.simple(&["REPLCONF", "rdb-only", "1"]).await {
            tracing::debug!(error = %e, "server does not know rdb-only");
        }
        let consistent_at = chrono::Utc::now();
        c.send(&["PSYNC", "?", "-1"]).await?;
        let reply = c.line().await?;
        if !reply.starts_with("+FULLRESYNC") {
            return Err(Error::failed(format!("Redis at {} refused replication: {reply}", t.redacted)).hint(
                "managed Redis often disables replication commands; the SCAN+DUMP fallback is not implemented yet",
            ));
        }
        let header = c.line().await?;
        let framing = if let Some(mark) = header.strip_prefix("$EOF:") {
            Framing::Mark {
                mark: mark.as_bytes().to_vec(),
                held: Vec::new(),
            }
        } else if let Some(n) = header.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
            Framing::Len(n)
        } else {
            return Err(Error::failed(format!(
                "Redis at {}: unexpected snapshot header {header:?}",
                t.redacted
            )));
        };
        tracing::info!(server = %t.redacted, %version, %consistent_at, diskless = matches!(framing, Framing::Mark { .. }), "Redis snapshot streaming");
        let check = Arc::new(Mutex::new(RdbCheck::default()));
        // The walker follows the same bytes on a blocking thread to count keys per db.
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let walker =
            tokio::task::spawn_blocking(move || Walker::new(ChannelReader::new(rx)).walk());
        let stream = RdbStream {
            io: c.io,
            framing,
            check: check.clone(),
            walker: Some(PollSender::new(tx)),
            done: false,
            redacted: t.redacted.clone(),
        };
        Ok(Box::new(RedisRun {
            info: SnapshotInfo {
                server_version: version,
                consistent_at,
            },
            stream: Some(stream),
            check,
            walker: Some(walker),
        }))
    }
}

struct RedisRun {
    info: SnapshotInfo,
    stream: Option<RdbStream>,
    check: Arc<Mutex<RdbCheck>>,
    walker: Option<tokio::task::JoinHandle<std::result::Result<RdbFacts, String>>>,
}

#[async_trait]
impl SourceRun for RedisRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        Ok(self.stream.take().map(|s| ArtifactStream {
            name: "rdb".into(),
            file_name: "dump.rdb".into(),
            reader: Box::new(s),
        }))
    }

    async fn finish_artifact(&mut self) -> Result<serde_json::Value> {
        let invalid = |m: String| {
            Error::failed(format!("the RDB snapshot is not valid: {m}"))
                .hint("the backup was not committed; run it again")
        };
        let total = {
            let c = self.check.lock().unwrap_or_else(|p| p.into_inner());
            c.verdict().map_err(invalid)?;
            c.total
        };
        let walker = self
            .walker
            .take()
            .ok_or_else(|| Error::failed("RDB walker already finished"))?;
        let facts = walker
            .await
            .map_err(|e| Error::failed(format!("RDB walker failed: {e}")))?
            .map_err(invalid)?;
        let keys: u64 = facts.dbs.values().map(|d| d.keys).sum();
        Ok(
            serde_json::json!({ "rdb_version": facts.version, "rdb_bytes": total, "keys": keys, "dbs": facts.dbs }),
        )
    }

    async fn abort(&mut self) {
        self.stream.take();
        if let Some(w) = self.walker.take() {
            w.abort();
        }
    }
}

enum Framing {
    /// `$<len>`: this many bytes remain.
    Len(u64),
    /// `$EOF:<mark>`: the payload ends with the 40-byte mark; the last 40 bytes are held back.
    Mark { mark: Vec<u8>, held: Vec<u8> },
}

/// RDB integrity as seen while streaming: magic, version, and the CRC64 trailer (the CRC of
/// everything before the last 8 bytes, little-endian).
struct RdbCheck {
    head: Vec<u8>,
    tail: Vec<u8>,
    digest: crc::Digest<'static, u64>,
    total: u64,
    complete: bool,
}

impl Default for RdbCheck {
    fn default() -> Self {
        RdbCheck {
            head: Vec::new(),
            tail: Vec::new(),
            digest: CRC.digest(),
            total: 0,
            complete: false,
        }
    }
}

impl RdbCheck {
    fn feed(&mut self, data: &[u8]) {
        if self.head.len() < 9 {
            let take = (9 - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.total += data.len() as u64;
        // Keep the last 8 bytes out of the CRC until we know they are not the trailer.
        self.tail.extend_from_slice(data);
        if self.tail.len() > 8 {
            let cut = self.tail.len() - 8;
            self.digest.update(&self.tail[..cut]);
            self.tail.drain(..cut);
        }
    }

    fn verdict(&self) -> std::result::Result<(), String> {
        if !self.complete {
            return Err("the transfer ended early".into());
        }
        if self.head.len() < 9 || &self.head[..5] != b"REDIS" {
            return Err("it does not start with the REDIS magic".into());
        }
        if self.tail.len() < 8 {
            return Err("it is shorter than its trailer".into());
        }
        let stored = u64::from_le_bytes(self.tail[..8].try_into().unwrap_or_default());
        let computed = self.digest.clone().finalize();
        // A zero checksum means the server runs with rdbchecksum no.
        if stored != 0 && stored != computed {
            return Err(format!(
                "CRC64 mismatch (trailer {stored:016x}, computed {computed:016x})"
            ));
        }
        Ok(())
    }
}

/// The snapshot payload as an `AsyncRead`, de-framed and checked on the way through.
struct RdbStream {
    io: BufReader<TcpStream>,
    framing: Framing,
    check: Arc<Mutex<RdbCheck>>,
    /// Feeds the key-counting walker; `None` once it has stopped listening.
    walker: Option<PollSender<bytes::Bytes>>,
    done: bool,
    redacted: String,
}

impl AsyncRead for RdbStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(Ok(()));
            }
            // Room for the walker first, so nothing read from the socket has to wait.
            if let Some(w) = this.walker.as_mut() {
                match w.poll_reserve(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => this.walker = None,
                }
            }
            let mut tmp = vec![0u8; buf.remaining().min(256 * 1024)];
            let want = match &this.framing {
                Framing::Len(n) => (*n).min(tmp.len() as u64) as usize,
                Framing::Mark { .. } => tmp.len(),
            };
            if want == 0 {
                this.finish();
                continue;
            }
            let mut rb = ReadBuf::new(&mut tmp[..want]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let got = rb.filled().to_vec();
            if got.is_empty() {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "Redis at {} closed the connection before the snapshot ended",
                        this.redacted
                    ),
                )));
            }
            let out: bytes::Bytes = match &mut this.framing {
                Framing::Len(n) => {
                    *n -= got.len() as u64;
                    if *n == 0 {
                        this.done = true;
                    }
                    got.into()
                }
                Framing::Mark { mark, held } => {
                    held.extend_from_slice(&got);
                    if let Some(pos) = held.windows(mark.len()).position(|w| w == mark.as_slice()) {
                        this.done = true;
                        bytes::Bytes::copy_from_slice(&held[..pos])
                    } else if held.len() > mark.len() {
                        let cut = held.len() - mark.len();
                        held.drain(..cut).collect::<Vec<u8>>().into()
                    } else {
                        bytes::Bytes::new()
                    }
                }
            };
            if let Some(w) = this.walker.as_mut() {
                // The same buffer, reference-counted: no second copy for the walker.
                if w.send_item(out.clone()).is_err() {
                    this.walker = None;
                }
            }
            {
                let mut c = this.check.lock().unwrap_or_else(|p| p.into_inner());
                c.feed(&out);
                c.complete = this.done;
            }
            if !out.is_empty() {
                buf.put_slice(&out);
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl RdbStream {
    fn finish(&mut self) {
        self.done = true;
        self.check
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .complete = true;
    }
}

/// `drctl restore --to file:/path/dump.rdb`: the snapshot as an RDB file for a cold start.
/// Written to a temporary name and renamed, so a failed restore leaves no partial file.
pub struct RdbFileTarget {
    path: std::path::PathBuf,
    opts: RestoreOptions,
}

impl RdbFileTarget {
    pub fn new(to: &str, opts: RestoreOptions) -> Result<Self> {
        match to.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(RdbFileTarget { path: p.into(), opts }),
            _ => Err(Error::usage(format!("--to {to:?}: a Redis backup restores to file:/path/dump.rdb"))
                .hint("restore into a live Redis (RESTORE replay) is not implemented yet: write the file, then start redis-server with --dir and --dbfilename pointing at it")),
        }
    }
}

#[async_trait]
impl RestoreTarget for RdbFileTarget {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn prepare(&self) -> Result<()> {
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
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::failed(format!("cannot write in {}: {e}", dir.display())))?;
        let mut f = tokio::fs::File::create(tmp.path()).await?;
        tokio::io::copy(&mut reader, &mut f)
            .await
            .map_err(|e| Error::failed(format!("restoring the RDB file: {e}")))?;
        f.sync_all().await?;
        tmp.persist(&self.path)
            .map_err(|e| Error::failed(format!("cannot move the RDB file into place: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdb(body: &[u8]) -> Vec<u8> {
        let mut v = body.to_vec();
        let crc = CRC.checksum(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v
    }

    #[test]
    fn crc_trailer_is_checked_across_chunk_boundaries() {
        let data = rdb(b"REDIS0010\xfa\x09redis-ver\x067.0.15\xff");
        for split in [1, 3, 9, data.len() - 8, data.len() - 3] {
            let mut c = RdbCheck::default();
            c.feed(&data[..split]);
            c.feed(&data[split..]);
            c.complete = true;
            assert_eq!(c.verdict(), Ok(()), "split at {split}");
        }
        let mut bad = data.clone();
        bad[12] ^= 1;
        let mut c = RdbCheck::default();
        c.feed(&bad);
        c.complete = true;
        assert!(c.verdict().unwrap_err().contains("CRC64 mismatch"));
        let mut c = RdbCheck::default();
        c.feed(&data[..data.len() - 4]);
        assert!(c.verdict().unwrap_err().contains("ended early"));
    }

    #[test]
    fn urls() {
        assert!(check_url("redis://cache:6379").is_ok());
        assert!(check_url("rediss://cache:6380")
            .unwrap_err()
            .contains("TLS"));
        let t = Target::parse("redis://backup:p%40ss@cache:6380").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref(), t.addr.as_str()),
            (Some("backup"), Some("p@ss"), "cache:6380")
        );
        assert!(!t.redacted.contains("p@ss"));
    }
}
