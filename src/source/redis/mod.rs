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
//!
//! `method: dump` is the fallback for servers that refuse replication (`scan.rs`); restore is
//! in `restore.rs`. Files: `conn` (RESP), `stream` (de-framing, CRC64, walker tee), `rdb`
//! (the RDB parser).

pub mod conn;
pub mod rdb;
mod kind;
mod restore;
mod scan;
mod scratch;
mod stream;
mod tls;

pub use kind::{RedisMethod, RedisSpec};

use super::{ArtifactStream, BackupSource, ByteReader, SnapshotInfo, SourceRun};
use crate::error::{Error, Result};
use async_trait::async_trait;
use conn::Conn;
use std::sync::{Arc, Mutex};
use stream::{Checked, Framed, Framing, RdbCheck, WalkerHandle};

/// Check a source URL at validation time (no I/O).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(url)
        .map_err(|e| format!("not a valid URL ({e}): use redis://[user:password@]host:6379"))?;
    match u.scheme() {
        "redis" => {
            if u.query().is_some() {
                return Err("redis:// takes no parameters; TLS options go with rediss://".into());
            }
        }
        "rediss" => {
            tls::TlsOpts::from_url(&u)?;
        }
        s => return Err(format!("scheme {s:?} is not redis:// or rediss://")),
    }
    if u.host_str().is_none_or(|h| h.is_empty()) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

pub struct Target {
    host: String,
    addr: String,
    /// Set for `rediss://`.
    tls: Option<tls::TlsOpts>,
    user: Option<String>,
    password: Option<String>,
    redacted: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        check_url(url).map_err(Error::usage)?;
        let u = url::Url::parse(url).map_err(|e| Error::usage(e.to_string()))?;
        let host = u.host_str().unwrap_or("localhost").to_string();
        let decode = |s: &str| Some(crate::source::percent_decode(s));
        let password = u.password().and_then(decode);
        if let Some(p) = &password {
            crate::redact::register(p);
        }
        let user = Some(u.username())
            .filter(|s| !s.is_empty())
            .and_then(decode);
        let port = u.port().unwrap_or(6379);
        let tls = match u.scheme() {
            "rediss" => Some(tls::TlsOpts::from_url(&u).map_err(Error::usage)?),
            _ => None,
        };
        let redacted = format!(
            "{}://{}{host}:{port}",
            u.scheme(),
            user.as_deref().map(|u| format!("{u}@")).unwrap_or_default()
        );
        Ok(Target {
            addr: format!("{host}:{port}"),
            host,
            tls,
            user,
            password,
            redacted,
        })
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
        let (reader, consistent_at, exporter): (ByteReader, _, _) = match self.spec.method {
            RedisMethod::Replication => {
                let consistent_at = chrono::Utc::now();
                (Box::new(replicate(c).await?), consistent_at, None)
            }
            RedisMethod::Dump => {
                let consistent_at = chrono::Utc::now();
                let (tx, mut rx) = tokio::sync::mpsc::channel(4);
                let task = tokio::spawn(scan::export(c, tx));
                let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
                let reader = tokio_util::io::StreamReader::new(chunks);
                (Box::new(reader), consistent_at, Some(task))
            }
        };
        tracing::info!(server = %t.redacted, %version, %consistent_at, method = ?self.spec.method, "Redis snapshot streaming");
        let (checked, check, walker) = Checked::start(reader);
        Ok(Box::new(RedisRun {
            info: SnapshotInfo {
                server_version: version,
                consistent_at,
            },
            method: self.spec.method,
            stream: Some(Box::new(checked)),
            check,
            walker: Some(walker),
            exporter,
        }))
    }
}

/// Become a replica for one snapshot: the handshake, then the payload's framing.
async fn replicate(mut c: Conn) -> Result<Framed> {
    c.simple(&["REPLCONF", "capa", "eof"])
        .await
        .map_err(refused)?;
    // Redis 7+: send the snapshot only, no replication stream after it. Older: ignored.
    if let Err(e) = c.simple(&["REPLCONF", "rdb-only", "1"]).await {
        tracing::debug!(error = %e, "server does not know rdb-only");
    }
    c.send(&["PSYNC", "?", "-1"]).await?;
    let reply = c.line().await?;
    if !reply.starts_with("+FULLRESYNC") {
        return Err(refused(Error::failed(format!(
            "Redis at {} refused replication: {}",
            c.redacted,
            reply.trim_start_matches('-')
        ))));
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
            c.redacted
        )));
    };
    Ok(Framed {
        conn: c,
        framing,
        done: false,
    })
}

fn refused(e: Error) -> Error {
    e.hint("managed Redis often disables replication commands (or the user lacks PSYNC/REPLCONF): set `method: dump` on the job's source to export with SCAN + DUMP")
}

struct RedisRun {
    info: SnapshotInfo,
    method: RedisMethod,
    stream: Option<ByteReader>,
    check: Arc<Mutex<RdbCheck>>,
    walker: Option<WalkerHandle>,
    /// The SCAN+DUMP task (`method: dump`); it must have succeeded for the backup to count.
    exporter: Option<tokio::task::JoinHandle<Result<u64>>>,
}

#[async_trait]
impl SourceRun for RedisRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        Ok(self.stream.take().map(|reader| ArtifactStream {
            name: "rdb".into(),
            file_name: "dump.rdb".into(),
            reader,
            size_hint: None,
            confirm: None,
        }))
    }

    async fn finish_artifact(&mut self) -> Result<serde_json::Value> {
        if let Some(task) = self.exporter.take() {
            task.await
                .map_err(|e| Error::failed(format!("the SCAN+DUMP export failed: {e}")))??;
        }
        let walker = self
            .walker
            .take()
            .ok_or_else(|| Error::failed("RDB walker already finished"))?;
        let mut facts = stream::finish(&self.check, walker).await.map_err(|m| {
            Error::failed(format!("the RDB snapshot is not valid: {m}"))
                .hint("the backup was not committed; run it again")
        })?;
        facts["method"] = match self.method {
            RedisMethod::Replication => "replication",
            RedisMethod::Dump => "scan-dump",
        }
        .into();
        Ok(facts)
    }

    async fn abort(&mut self) {
        self.stream.take();
        if let Some(w) = self.walker.take() {
            w.abort();
        }
        if let Some(t) = self.exporter.take() {
            t.abort();
        }
    }
}

/// Keys per db (`"0" → n`) as the server reports them in `INFO keyspace`.
pub async fn keys_per_db(url: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let mut c = Conn::open(&Target::parse(url)?).await?;
    let info = c.bulk(&["INFO", "keyspace"]).await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (db, rest) = l.strip_prefix("db")?.split_once(':')?;
            let keys = rest.split(',').find_map(|f| f.strip_prefix("keys="))?;
            Some((db.to_string(), keys.trim().parse().ok()?))
        })
        .collect())
}

/// `verify --level structure`: parse a stored RDB end to end (CRC64 trailer, every record)
/// and return the facts it yields, to compare with the manifest's.
pub async fn check_rdb(reader: crate::source::ByteReader) -> Result<serde_json::Value> {
    use tokio::io::AsyncReadExt;
    let (mut checked, check, walker) = Checked::start(reader);
    let mut buf = vec![0u8; 256 * 1024];
    while checked
        .read(&mut buf)
        .await
        .map_err(|e| Error::failed(format!("reading the RDB: {e}")))?
        > 0
    {}
    stream::finish(&check, walker).await.map_err(Error::failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("redis://cache:6379").is_ok());
        assert!(check_url("rediss://cache:6380").is_ok());
        assert!(check_url("redis://cache:6380/?ca_file=/x")
            .unwrap_err()
            .contains("rediss://"));
        let t = Target::parse("rediss://cache:6380/?ca_file=/x/ca.crt").unwrap();
        assert_eq!(t.redacted, "rediss://cache:6380");
        assert!(t.tls.unwrap().ca_file.is_some());
        let t = Target::parse("redis://backup:p%40ss@cache:6380").unwrap();
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref(), t.addr.as_str()),
            (Some("backup"), Some("p@ss"), "cache:6380")
        );
        assert!(!t.redacted.contains("p@ss"));
    }

    #[test]
    fn passwords_are_percent_decoded_not_form_decoded() {
        // A raw `+` is a plus (form decoding made it a space); `&` does not cut the password.
        let t = Target::parse("redis://:a+b&c%2Bd@cache:6379").unwrap();
        assert_eq!(t.password.as_deref(), Some("a+b&c+d"));
    }
}
