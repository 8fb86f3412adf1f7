//! The fallback for servers that refuse replication (managed Redis often does): walk every
//! database with `SCAN`, fetch each key with `PTTL` + `DUMP` (pipelined per SCAN batch), and
//! write the payloads as an ordinary RDB file — the same artifact format as a replication
//! snapshot, so restore, verification and a cold start treat both alike.
//!
//! Not a point-in-time snapshot: each key is read at its own instant between the start and
//! the end of the export. `consistent_at` is the start (RPO is never understated), and the
//! manifest's facts say `"method": "scan-dump"`.

use super::conn::{Conn, Reply};
use super::stream::CRC;
use crate::error::{Error, Result};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Keys asked for per SCAN call (and so per pipelined PTTL/DUMP batch).
const SCAN_COUNT: &str = "1000";
/// Bytes gathered before a chunk goes into the pipeline.
const CHUNK: usize = 1024 * 1024;

/// Export every key; the RDB's bytes go to `tx` in chunks. Returns the number of keys written.
pub async fn export(mut c: Conn, tx: mpsc::Sender<std::io::Result<Bytes>>) -> Result<u64> {
    let keyspace = c.bulk(&["INFO", "keyspace"]).await?;
    let mut out = RdbWriter::default();
    let mut written = 0u64;
    for db in dbs_with_keys(&keyspace) {
        c.simple(&["SELECT", &db.to_string()]).await?;
        let mut cursor = "0".to_string();
        loop {
            let (next, keys) = scan(&mut c, &cursor).await?;
            for k in &keys {
                c.queue(&[b"PTTL", k]).await?;
                c.queue(&[b"DUMP", k]).await?;
            }
            c.flush().await?;
            for k in keys {
                let pttl = c.reply().await?;
                let dump = c.reply().await?;
                let (Reply::Int(pttl), Reply::Bulk(Some(payload))) = (pttl, dump) else {
                    continue; // deleted or expired between SCAN and DUMP
                };
                out.key(db, &k, pttl, &payload).map_err(|e| {
                    Error::failed(format!(
                        "Redis at {}: DUMP of a key in db {db}: {e}",
                        c.redacted
                    ))
                })?;
                written += 1;
                if out.buf.len() >= CHUNK {
                    send(&tx, out.take()).await?;
                }
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    send(&tx, out.finish()).await?;
    Ok(written)
}

async fn send(tx: &mpsc::Sender<std::io::Result<Bytes>>, b: Bytes) -> Result<()> {
    tx.send(Ok(b))
        .await
        .map_err(|_| Error::failed("the backup pipeline stopped reading the Redis export"))
}

async fn scan(c: &mut Conn, cursor: &str) -> Result<(String, Vec<Vec<u8>>)> {
    let r = c.call(&["SCAN", cursor, "COUNT", SCAN_COUNT]).await?;
    if let Reply::Array(Some(mut parts)) = r {
        if parts.len() == 2 {
            let keys = parts.pop();
            let next = parts.pop().and_then(Reply::into_bulk);
            if let (Some(next), Some(Reply::Array(Some(keys)))) = (next, keys) {
                let keys = keys.into_iter().filter_map(Reply::into_bulk).collect();
                return Ok((String::from_utf8_lossy(&next).into_owned(), keys));
            }
        }
    }
    Err(Error::failed(format!(
        "Redis at {}: SCAN gave an unexpected reply",
        c.redacted
    )))
}

/// Database numbers listed in `INFO keyspace` (`db3:keys=10,expires=0,avg_ttl=0`).
fn dbs_with_keys(info: &str) -> Vec<u32> {
    info.lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect()
}

/// Writes an RDB file from DUMP payloads. The header waits for the first payload, whose footer
/// carries the server's RDB version.
#[derive(Default)]
struct RdbWriter {
    buf: Vec<u8>,
    version: Option<u16>,
    db: Option<u32>,
    crc: Option<crc::Digest<'static, u64>>,
}

impl RdbWriter {
    fn header(&mut self, version: u16) {
        self.version = Some(version);
        self.buf
            .extend_from_slice(format!("REDIS{version:04}").as_bytes());
        // An aux field tells anyone reading the file how it was made; Redis ignores it.
        self.buf.push(0xFA);
        put_string(&mut self.buf, b"drctl-method");
        put_string(&mut self.buf, b"scan-dump");
    }

    /// One key: `pttl` as PTTL returned it (-1 = no expiry), `payload` as DUMP returned it.
    fn key(
        &mut self,
        db: u32,
        key: &[u8],
        pttl: i64,
        payload: &[u8],
    ) -> std::result::Result<(), String> {
        if payload.len() < 11 {
            return Err("payload shorter than its footer".into());
        }
        let (body, footer) = payload.split_at(payload.len() - 10);
        let version = u16::from_le_bytes([footer[0], footer[1]]);
        if self.version.is_none() {
            self.header(version);
        }
        if self.db != Some(db) {
            self.buf.push(0xFE);
            put_len(&mut self.buf, db as u64);
            self.db = Some(db);
        }
        if pttl >= 0 {
            let at = chrono::Utc::now().timestamp_millis() + pttl;
            self.buf.push(0xFC);
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        self.buf.push(body[0]);
        put_string(&mut self.buf, key);
        self.buf.extend_from_slice(&body[1..]);
        Ok(())
    }

    /// The bytes so far, folded into the running CRC64.
    fn take(&mut self) -> Bytes {
        self.crc
            .get_or_insert_with(|| CRC.digest())
            .update(&self.buf);
        std::mem::take(&mut self.buf).into()
    }

    /// EOF opcode and CRC64 trailer. An empty export is still a valid (empty) RDB.
    fn finish(mut self) -> Bytes {
        if self.version.is_none() {
            self.header(9);
        }
        self.buf.push(0xFF);
        let mut digest = self.crc.take().unwrap_or_else(|| CRC.digest());
        digest.update(&self.buf);
        self.buf.extend_from_slice(&digest.finalize().to_le_bytes());
        self.buf.into()
    }
}

fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::super::rdb::Walker;
    use super::*;

    #[test]
    fn written_rdb_parses_and_checks_out() {
        let mut w = RdbWriter::default();
        // DUMP of a string "v": type 0, "v", version 10, CRC (not checked here).
        let mut p = vec![0u8, 1, b'v', 10, 0];
        p.extend_from_slice(&[0; 8]);
        w.key(0, b"k", -1, &p).unwrap();
        w.key(3, &vec![b'x'; 300], 5000, &p).unwrap();
        let mut all = w.take().to_vec();
        all.extend_from_slice(&w.finish());
        assert!(all.starts_with(b"REDIS0010"));
        let (body, trailer) = all.split_at(all.len() - 8);
        assert_eq!(trailer, CRC.checksum(body).to_le_bytes());
        let facts = Walker::new(&all[..]).walk().unwrap();
        assert_eq!((facts.dbs[&0].keys, facts.dbs[&3].expiring), (1, 1));
        assert_eq!(
            dbs_with_keys("# Keyspace\r\ndb0:keys=1,expires=0\r\ndb3:keys=2"),
            vec![0, 3]
        );
    }
}
