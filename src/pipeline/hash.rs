//! Readers that count and hash the bytes passing through them.

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

/// Hashes everything read through it; at EOF compares with the expected SHA-256 and fails the
/// read instead of returning EOF when they differ, so a consumer never sees a clean end of a
/// corrupted stream.
pub struct Verifying<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    what: String,
    done: bool,
}

impl<R> Verifying<R> {
    pub fn new(inner: R, expected_sha256: &str, what: impl Into<String>) -> Self {
        Verifying {
            inner,
            hasher: Sha256::new(),
            expected: expected_sha256.to_string(),
            what: what.into(),
            done: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Verifying<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n > 0 {
                    this.hasher.update(&buf.filled()[before..]);
                } else if !this.done {
                    this.done = true;
                    let got = hex::encode(this.hasher.clone().finalize());
                    if got != this.expected {
                        return Poll::Ready(Err(std::io::Error::other(format!(
                            "checksum mismatch in {}: expected sha256 {}, read {}",
                            this.what, this.expected, got
                        ))));
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}
