//! A restore stream copied into a local file (the spool `pg_restore --jobs` needs, a Redis RDB
//! file), telling the stream's errors from the file's: a failed read is the copy's (another
//! region may hold a good one), a failed write is the local disk's (a full `$TMPDIR`, a
//! read-only target), and each needs its own words. Large writes: `tokio::io::copy`'s 8 KiB
//! buffer cost a spool of a 726 MB archive ~2.6 s (docs/benchmarks.md).

use super::ByteReader;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 256 * 1024;

/// Which side of the copy failed.
#[derive(Debug)]
pub enum CopyFailed {
    Reading(std::io::Error),
    Writing(std::io::Error),
}

/// Copy `reader` to its end into a new temporary file in `dir` (removed when the returned
/// handle drops, unless persisted); returns it and the open file, flushed, not synced. A file
/// that cannot be made counts as a failed write.
pub async fn into_temp_file(
    reader: &mut ByteReader,
    dir: &std::path::Path,
) -> Result<(tempfile::NamedTempFile, tokio::fs::File), CopyFailed> {
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(CopyFailed::Writing)?;
    let mut file = tokio::fs::File::create(tmp.path())
        .await
        .map_err(CopyFailed::Writing)?;
    copy_into(reader, &mut file).await?;
    Ok((tmp, file))
}

/// Copy `reader` to its end into `file`, flushed, and return the bytes written.
async fn copy_into(reader: &mut ByteReader, file: &mut tokio::fs::File) -> Result<u64, CopyFailed> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(CopyFailed::Reading)?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .await
            .map_err(CopyFailed::Writing)?;
        written += n as u64;
    }
    file.flush().await.map_err(CopyFailed::Writing)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields `ok` bytes, then fails.
    struct Failing(usize);

    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("copy cut")));
            }
            let n = self.0.min(buf.remaining());
            buf.put_slice(&vec![7u8; n]);
            self.0 -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_whole_stream_lands_and_each_side_names_its_own_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader: ByteReader = Box::new(std::io::Cursor::new(data.clone()));
        let mut f = tokio::fs::File::create(&path).await.unwrap();
        assert_eq!(copy_into(&mut reader, &mut f).await.unwrap(), 1_000_000);
        assert_eq!(std::fs::read(&path).unwrap(), data);

        let mut reader: ByteReader = Box::new(Failing(300_000));
        let mut f = tokio::fs::File::create(&path).await.unwrap();
        match copy_into(&mut reader, &mut f).await {
            Err(CopyFailed::Reading(e)) => assert_eq!(e.to_string(), "copy cut"),
            other => panic!("{other:?}"),
        }

        // A file opened read-only cannot be written: the write side is named.
        let mut reader: ByteReader = Box::new(std::io::Cursor::new(vec![1u8; 10]));
        let mut f = tokio::fs::File::open(&path).await.unwrap();
        assert!(matches!(
            copy_into(&mut reader, &mut f).await,
            Err(CopyFailed::Writing(_))
        ));
    }
}
