//! Readers that count and hash the bytes passing through them.

use bytes::{Buf, BytesMut};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Counts bytes read through it into a shared counter (raw size, progress).
pub struct Counting<R> {
    inner: R,
    pub count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    pub fn new(inner: R) -> Self {
        Counting {
            inner,
            count: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

/// The stored bytes `Verifying` withholds until the checksum matched. Every codec and the
/// encryption end with the last bytes of content inside their final 64 KiB (zstd's last block
/// and 4-byte checksum, gzip's 8-byte trailer, age's last 64 KiB chunk), so a consumer cannot
/// finish reading an artifact, and a tool cannot commit it, before the whole copy matched.
const HOLD: usize = 64 * 1024;
const READ: usize = 256 * 1024;

/// Hashes everything read through it; at EOF compares with the expected SHA-256 and fails the
/// read instead of returning EOF when they differ, so a consumer never sees a clean end of a
/// corrupted stream. The last `HOLD` bytes are handed on only after the comparison: a
/// transactional target (pg_restore `--single-transaction`) cannot reach its COMMIT on a
/// corrupted copy, so verifying while streaming is as safe as reading the copy twice.
pub struct Verifying<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    what: String,
    /// Read and hashed, not yet handed on.
    pending: BytesMut,
    state: Verdict,
    /// Set once the whole copy was read and matched (`matched`).
    matched: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(PartialEq)]
enum Verdict {
    Reading,
    Matched,
    /// The digest read instead: the error sticks.
    Mismatched(String),
}

impl<R> Verifying<R> {
    pub fn new(inner: R, expected_sha256: &str, what: impl Into<String>) -> Self {
        Verifying {
            inner,
            hasher: Sha256::new(),
            expected: expected_sha256.to_string(),
            what: what.into(),
            pending: BytesMut::new(),
            state: Verdict::Reading,
            matched: Arc::default(),
        }
    }

    /// True once the whole copy was read and its SHA-256 matched: whoever hands the stream on
    /// can tell an intact copy after the fact without reading it again.
    pub fn matched(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.matched.clone()
    }

    fn mismatch(&self, got: &str) -> std::io::Error {
        std::io::Error::other(format!(
            "checksum mismatch in {}: expected sha256 {}, read {got}",
            self.what, self.expected
        ))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Verifying<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Verdict::Mismatched(got) = &this.state {
                return Poll::Ready(Err(this.mismatch(got)));
            }
            let held = if this.state == Verdict::Matched {
                0
            } else {
                HOLD
            };
            let ready = this.pending.len().saturating_sub(held).min(buf.remaining());
            if ready > 0 || this.state == Verdict::Matched {
                buf.put_slice(&this.pending[..ready]);
                this.pending.advance(ready);
                return Poll::Ready(Ok(()));
            }
            let before = this.pending.len();
            this.pending.reserve(READ);
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.pending) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    let got = hex::encode(this.hasher.clone().finalize());
                    if got != this.expected {
                        let e = this.mismatch(&got);
                        this.state = Verdict::Mismatched(got);
                        return Poll::Ready(Err(e));
                    }
                    this.state = Verdict::Matched;
                    this.matched
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                Poll::Ready(Ok(_)) => this.hasher.update(&this.pending[before..]),
            }
        }
    }
}

/// Remembers the first error read through it, so whoever handed the stream to a target can
/// tell a failed copy (a region's read, the checksum, decryption, decompression) from a
/// failure of the target itself, whatever the target made of the error.
pub struct Tripwire<R> {
    inner: R,
    tripped: Arc<std::sync::Mutex<Option<String>>>,
}

impl<R> Tripwire<R> {
    pub fn new(inner: R) -> (Self, Arc<std::sync::Mutex<Option<String>>>) {
        let tripped = Arc::new(std::sync::Mutex::new(None));
        (
            Tripwire {
                inner,
                tripped: tripped.clone(),
            },
            tripped,
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Tripwire<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Err(e)) = &r {
            let mut t = self.tripped.lock().unwrap_or_else(|p| p.into_inner());
            t.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::{Verifying, HOLD};
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_matching_copy_reads_whole() {
        let d = data(3 * HOLD + 17);
        let sum = hex::encode(Sha256::digest(&d));
        let mut v = Verifying::new(&d[..], &sum, "x");
        let matched = v.matched();
        let mut out = vec![0u8; HOLD];
        v.read_exact(&mut out).await.unwrap();
        assert!(
            !matched.load(std::sync::atomic::Ordering::Acquire),
            "not yet read whole"
        );
        v.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, d);
        assert!(matched.load(std::sync::atomic::Ordering::Acquire));
    }

    /// The consumer of a corrupted copy never gets its last bytes: what it has read when the
    /// error arrives is short of the end by at least the held tail.
    #[tokio::test]
    async fn a_corrupted_copy_withholds_its_tail() {
        let d = data(3 * HOLD + 17);
        let mut got = Vec::new();
        let mut v = Verifying::new(&d[..], &"0".repeat(64), "region r a.zst");
        let matched = v.matched();
        let mut buf = [0u8; 4096];
        let err = loop {
            match v.read(&mut buf).await {
                Ok(0) => panic!("a corrupted copy reached a clean end"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert!(
            err.to_string()
                .contains("checksum mismatch in region r a.zst"),
            "{err}"
        );
        // A literal, not HOLD: the test must fail if the hold shrinks below what the codecs need.
        assert!(
            d.len() - got.len() >= 64 * 1024,
            "{} of {} bytes handed on",
            got.len(),
            d.len()
        );
        assert_eq!(got, d[..got.len()]);
        assert!(v.read(&mut buf).await.is_err(), "the error must stick");
        assert!(!matched.load(std::sync::atomic::Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_small_corrupted_copy_hands_on_nothing() {
        let d = data(100);
        let mut out = Vec::new();
        let r = Verifying::new(&d[..], &"0".repeat(64), "x")
            .read_to_end(&mut out)
            .await;
        assert!(r.is_err());
        assert!(out.is_empty());
    }
}
