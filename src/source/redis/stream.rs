//! The snapshot's bytes on their way into the pipeline: de-framed from the replication
//! connection (`Framed`), then checked and followed by the key-counting walker (`Checked`).
//! The SCAN+DUMP export goes through the same `Checked`, so both methods are held to the same
//! proof: REDIS magic, CRC64 trailer, a full parse.

use super::conn::Conn;
use super::rdb::{ChannelReader, RdbFacts, Walker};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

pub const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

pub enum Framing {
    /// `$<len>`: this many bytes remain.
    Len(u64),
    /// `$EOF:<mark>`: the payload ends with the 40-byte mark; the last 40 bytes are held back.
    Mark { mark: Vec<u8>, held: Vec<u8> },
}

/// The replication payload as an `AsyncRead`. It returns EOF only at the framing's end; a
/// connection closed earlier is an error.
pub struct Framed {
    /// The whole connection: dropping the write half would end the replica session.
    pub conn: Conn,
    pub framing: Framing,
    pub done: bool,
}

impl AsyncRead for Framed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.done || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match &mut this.framing {
                Framing::Len(n) => {
                    if *n == 0 {
                        this.done = true;
                        continue;
                    }
                    let before = buf.filled().len();
                    if buf.remaining() as u64 <= *n {
                        std::task::ready!(Pin::new(&mut this.conn.r).poll_read(cx, buf))?;
                    } else {
                        // The payload's last bytes: read no further than its end.
                        let mut tmp = vec![0u8; *n as usize];
                        let mut rb = ReadBuf::new(&mut tmp);
                        std::task::ready!(Pin::new(&mut this.conn.r).poll_read(cx, &mut rb))?;
                        buf.put_slice(rb.filled());
                    }
                    let got = buf.filled().len() - before;
                    if got == 0 {
                        return Poll::Ready(Err(early_eof(&this.conn.redacted)));
                    }
                    *n -= got as u64;
                    return Poll::Ready(Ok(()));
                }
                Framing::Mark { mark, held } => {
                    let mut tmp = vec![0u8; buf.remaining().min(256 * 1024)];
                    let mut rb = ReadBuf::new(&mut tmp);
                    std::task::ready!(Pin::new(&mut this.conn.r).poll_read(cx, &mut rb))?;
                    let got = rb.filled();
                    if got.is_empty() {
                        return Poll::Ready(Err(early_eof(&this.conn.redacted)));
                    }
                    held.extend_from_slice(got);
                    if let Some(pos) = held.windows(mark.len()).position(|w| w == mark.as_slice()) {
                        this.done = true;
                        buf.put_slice(&held[..pos]);
                        held.clear();
                        return Poll::Ready(Ok(()));
                    }
                    if held.len() > mark.len() {
                        let cut = held.len() - mark.len();
                        buf.put_slice(&held[..cut]);
                        held.drain(..cut);
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

fn early_eof(redacted: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("Redis at {redacted} closed the connection before the snapshot ended"),
    )
}

/// RDB integrity as seen while streaming: magic, and the CRC64 trailer (the CRC of everything
/// before the last 8 bytes, little-endian).
pub struct RdbCheck {
    head: Vec<u8>,
    tail: Vec<u8>,
    digest: crc::Digest<'static, u64>,
    pub total: u64,
    pub complete: bool,
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
    pub fn feed(&mut self, data: &[u8]) {
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

    pub fn verdict(&self) -> std::result::Result<(), String> {
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

pub type WalkerHandle = JoinHandle<std::result::Result<RdbFacts, String>>;

/// Wraps an RDB byte stream: every byte is fed to the CRC check and, through a bounded
/// channel, to the walker running on a blocking thread.
pub struct Checked<R> {
    inner: R,
    check: Arc<Mutex<RdbCheck>>,
    /// `None` once the walker stopped listening (it failed; `finish` reports why).
    walker: Option<PollSender<bytes::Bytes>>,
}

impl<R: AsyncRead + Unpin> Checked<R> {
    pub fn start(inner: R) -> (Self, Arc<Mutex<RdbCheck>>, WalkerHandle) {
        let check = Arc::new(Mutex::new(RdbCheck::default()));
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let walker =
            tokio::task::spawn_blocking(move || Walker::new(ChannelReader::new(rx)).walk());
        let me = Checked {
            inner,
            check: check.clone(),
            walker: Some(PollSender::new(tx)),
        };
        (me, check, walker)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Checked<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        // Room for the walker first, so nothing read from the source has to wait.
        if let Some(w) = this.walker.as_mut() {
            match w.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => this.walker = None,
            }
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        let mut c = this.check.lock().unwrap_or_else(|p| p.into_inner());
        if new.is_empty() {
            c.complete = true;
            this.walker = None; // closes the channel: the walker sees EOF
            return Poll::Ready(Ok(()));
        }
        c.feed(new);
        if let Some(w) = this.walker.as_mut() {
            if w.send_item(bytes::Bytes::copy_from_slice(new)).is_err() {
                this.walker = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// After the stream's EOF: the check's verdict and the walker's facts, as manifest facts.
pub async fn finish(
    check: &Mutex<RdbCheck>,
    walker: WalkerHandle,
) -> std::result::Result<serde_json::Value, String> {
    let total = {
        let c = check.lock().unwrap_or_else(|p| p.into_inner());
        c.verdict()?;
        c.total
    };
    let facts = walker
        .await
        .map_err(|e| format!("RDB walker failed: {e}"))??;
    let keys: u64 = facts.dbs.values().map(|d| d.keys).sum();
    Ok(serde_json::json!({
        "rdb_version": facts.version, "rdb_bytes": total, "keys": keys, "dbs": facts.dbs,
    }))
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
}
