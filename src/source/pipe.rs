//! Data pipes to and from pg_dump and pg_restore, read and written by a thread of their own in
//! batches instead of by the async runtime one wakeup at a time.
//!
//! Why: pg_dump writes its stdout, and pg_restore reads its stdin, through stdio's 4 KiB
//! buffer. A pipe the runtime polls wakes the runtime on every one of those writes (a pipe that
//! was ever polled wakes its poller on each write), and a reader that keeps up drains it 4 KiB
//! at a time: for a 730 MB dump that was ~120,000 futex calls, ~117,000 `epoll_wait`s and
//! ~90,000 reads — about 1.4 CPU-seconds of drctl and its pg_dump, on a host whose cores the
//! database and the uploads share. Here the pipe is never polled: a thread reads it with
//! blocking reads and, after a short read, sleeps `PAUSE` so the next read finds a batch
//! (the pipe is widened so that batch fits); on the way out a thread keeps pg_restore's pipe
//! between half full and full, writing only when there is room, so neither side waits on the
//! other 4 KiB at a time. Memory stays bounded: `CHUNK`-sized buffers, `IN_FLIGHT` of them
//! queued, plus the kernel's pipe.

use super::ByteReader;
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

/// Pipe capacity asked for (Linux's default ceiling for unprivileged processes).
const CAPACITY: i32 = 1 << 20;
/// Bytes gathered before they are handed on.
const CHUNK: usize = 256 * 1024;
/// A read shorter than this means the writer is slower than the reader: wait for a batch.
const SHORT: usize = 64 * 1024;
/// How long to let a batch gather. At 1 GB/s a widened pipe holds 1 ms of data, so a pause
/// of half that never makes the writer wait on a full pipe; a slower writer fills it less.
const PAUSE: Duration = Duration::from_micros(500);
/// Chunks queued between the thread and the async side.
const IN_FLIGHT: usize = 2;

/// A pipe with its read and write ends, widened to `CAPACITY` where the kernel allows.
/// Returns the ends and the capacity the kernel granted.
fn pipe() -> io::Result<(File, File, usize)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success; each is owned exactly once below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2, owned by nothing else.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own; a refusal leaves the default size, which works.
    let granted = unsafe {
        libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, CAPACITY);
        libc::fcntl(r.as_raw_fd(), libc::F_GETPIPE_SZ)
    };
    Ok((r, w, granted.max(4096) as usize))
}

/// A child's stdout: the `Stdio` to give the command, and the reader of what it writes.
/// The command must be dropped after it is spawned (it holds the write end until then), or
/// the reader never sees the end of the output.
pub fn from_child() -> io::Result<(Stdio, ByteReader)> {
    let (r, w, _) = pipe()?;
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    std::thread::Builder::new()
        .name("drctl-pipe-in".into())
        .spawn(move || gather(r, tx))?;
    let chunks =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let reader = tokio_util::io::StreamReader::new(Box::pin(chunks));
    Ok((Stdio::from(OwnedFd::from(w)), Box::new(reader)))
}

/// Read `r` to its end in `CHUNK`s, pausing after short reads, until the receiver goes away.
fn gather(mut r: File, tx: mpsc::Sender<io::Result<Bytes>>) {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let filled = fill(&mut r, &mut buf);
        let (len, end) = match &filled {
            Ok(f) => (f.len, f.end),
            Err(_) => (0, true),
        };
        buf.truncate(len);
        if len > 0 && tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return;
        }
        if let Err(e) = filled {
            let _ = tx.blocking_send(Err(e));
        }
        if end {
            return;
        }
    }
}

/// What one `fill` read.
#[derive(Debug)]
struct Filled {
    len: usize,
    /// How many reads it took (the tests' measure of batching).
    #[cfg_attr(not(test), allow(dead_code))]
    reads: usize,
    end: bool,
}

/// Fill `buf` from `r`, or stop at the end; after a short read, let a batch gather first.
fn fill(r: &mut File, buf: &mut [u8]) -> io::Result<Filled> {
    let (mut len, mut reads) = (0, 0);
    while len < buf.len() {
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                return Ok(Filled {
                    len,
                    reads,
                    end: true,
                })
            }
            Ok(n) => {
                len += n;
                reads += 1;
                if n < SHORT && len < buf.len() {
                    std::thread::sleep(PAUSE);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Filled {
        len,
        reads,
        end: false,
    })
}

/// A child's stdin: the `Stdio` to give the command, and the sink that feeds it.
pub fn to_child() -> io::Result<(Stdio, Sink)> {
    let (r, w, capacity) = pipe()?;
    Ok((Stdio::from(OwnedFd::from(r)), Sink { w, capacity }))
}

/// The write end of a child's stdin, not yet fed.
pub struct Sink {
    w: File,
    capacity: usize,
}

impl Sink {
    /// Copy `reader` to its end into the child, then close the child's stdin. Errors as
    /// `tokio::io::copy`'s: the reader's own, or the write's (`BrokenPipe` when the child
    /// stopped reading). Returns the bytes copied.
    pub async fn feed(self, reader: &mut (dyn AsyncRead + Send + Unpin)) -> io::Result<u64> {
        let (tx, rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let (done_tx, done) = oneshot::channel();
        let Sink { w, capacity } = self;
        std::thread::Builder::new()
            .name("drctl-pipe-out".into())
            .spawn(move || {
                let _ = done_tx.send(pace(w, capacity, rx));
            })?;
        let mut total = 0u64;
        loop {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            while buf.len() < CHUNK {
                if reader.read_buf(&mut buf).await? == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            total += buf.len() as u64;
            if tx.send(buf.freeze()).await.is_err() {
                break; // the writer stopped: its error is below
            }
        }
        drop(tx);
        done.await
            .unwrap_or_else(|_| Err(io::Error::other("the pipe writer thread died")))?;
        Ok(total)
    }
}

/// Write every chunk of `rx` into `w`, only while the pipe is at most half full, so the
/// reader always finds data and the writer is never woken for a page at a time.
fn pace(mut w: File, capacity: usize, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    while let Some(chunk) = rx.blocking_recv() {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let queued = queued(&w)?;
            if queued > capacity / 2 {
                // A reader that exited leaves its unread bytes behind: the pipe never drains,
                // so ask whether anyone still reads instead of waiting for room forever.
                if reader_gone(&w)? {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                std::thread::sleep(PAUSE);
                continue;
            }
            match w.write(&rest[..rest.len().min(capacity - queued)]) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Whether the read end of the pipe whose write end is `w` is closed (poll says POLLERR).
fn reader_gone(w: &File) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: w.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd, timeout 0: poll only reports, never waits.
    if unsafe { libc::poll(&mut p, 1, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(p.revents & libc::POLLERR != 0)
}

/// Bytes waiting in the pipe of `f` (either end).
fn queued(f: &File) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer we pass.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a child writes in 4 KiB pieces, slowly, arrives whole and in order, and in
    /// batches: far fewer reads than writes.
    #[tokio::test]
    async fn a_slow_writer_is_read_whole_in_batches() {
        let (mut r, mut w, _) = pipe().unwrap();
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            for piece in sent.chunks(4096) {
                w.write_all(piece).unwrap();
                std::thread::sleep(Duration::from_micros(20));
            }
        });
        let (mut got, mut reads) = (Vec::new(), 0);
        loop {
            let mut buf = vec![0u8; CHUNK];
            let f = fill(&mut r, &mut buf).unwrap();
            got.extend_from_slice(&buf[..f.len]);
            reads += f.reads;
            if f.end {
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(got, data);
        let writes = data.len() / 4096;
        assert!(
            reads < writes / 4,
            "{reads} reads for {writes} writes: not batched"
        );

        // And through the thread and the channel, the same bytes.
        let (r, mut w, _) = pipe().unwrap();
        let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
        std::thread::spawn(move || gather(r, tx));
        let sent = data.clone();
        std::thread::spawn(move || w.write_all(&sent).unwrap());
        let mut got = Vec::new();
        while let Some(c) = rx.recv().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, data);
    }

    /// The sink delivers every byte and reports a reader that went away as a broken pipe.
    #[tokio::test]
    async fn the_sink_feeds_a_child_whole_and_reports_one_that_stops_reading() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let (r, w, capacity) = pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut r = r;
            r.read_to_end(&mut got).unwrap();
            got
        });
        let sink = Sink { w, capacity };
        assert_eq!(sink.feed(&mut &data[..]).await.unwrap(), data.len() as u64);
        assert_eq!(reader.join().unwrap(), data);

        let (r, w, capacity) = pipe().unwrap();
        drop(r);
        let err = Sink { w, capacity }.feed(&mut &data[..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        // A reader that takes a little and exits leaves the pipe full behind it.
        let (mut r, w, capacity) = pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut first = [0u8; 10];
            r.read_exact(&mut first).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        });
        let mut rest = &data[..];
        let fed = tokio::time::timeout(
            Duration::from_secs(10),
            Sink { w, capacity }.feed(&mut rest),
        );
        let err = fed
            .await
            .expect("the sink waited for a reader that is gone")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        reader.join().unwrap();
    }
}
