//! The streaming pipeline: source bytes → compression → SHA-256 and counts → every region at
//! once. One pass over the source whatever the number of regions: each chunk is read, compressed
//! and hashed once, and the same reference-counted buffer is handed to every region's writer.
//!
//! Memory is bounded: a region's channel holds at most `QUEUE` chunks of `CHUNK` bytes, and its
//! OpenDAL writer at most `part_size × (upload_concurrency + 1)`. A slow region slows the source
//! (backpressure); it never makes a buffer grow.

pub mod codec;
pub mod crypt;
pub mod fanout;
pub mod hash;

use crate::error::{Error, Result};
use crate::source::ByteReader;
use bytes::BytesMut;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Bytes handed to regions at a time.
pub const CHUNK: usize = 1024 * 1024;
/// Chunks queued per region before the source waits.
pub const QUEUE: usize = 4;

/// What streaming one artifact produced.
#[derive(Debug)]
pub struct Streamed {
    pub stored_size: u64,
    pub sha256: String,
}

/// Stream `reader` (already compressed) to every live region of `fan`, hashing as it goes.
/// Returns when the reader hits EOF; the caller decides whether to finish or abort the fan-out.
pub async fn pump(
    mut reader: ByteReader,
    fan: &mut fanout::Fanout,
    cancel: &CancellationToken,
    on_chunk: &(dyn Fn(u64) + Sync),
) -> Result<Streamed> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            let n = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(interrupted()),
                r = reader.read_buf(&mut buf) => r.map_err(|e| Error::failed(format!("reading the source failed: {e}")))?,
            };
            if n == 0 {
                break;
            }
        }
        if buf.is_empty() {
            break;
        }
        let chunk = buf.freeze();
        hasher.update(&chunk);
        total += chunk.len() as u64;
        on_chunk(total);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(interrupted()),
            r = fan.send(chunk) => r?,
        }
    }
    Ok(Streamed {
        stored_size: total,
        sha256: hex::encode(hasher.finalize()),
    })
}

pub fn interrupted() -> Error {
    Error::interrupted("interrupted by signal: the run was aborted and its partial objects removed")
        .hint("nothing was committed; run the backup again")
}
