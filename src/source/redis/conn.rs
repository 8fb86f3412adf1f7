//! A minimal RESP2 client: what a replica handshake, a SCAN+DUMP export and a pipelined
//! RESTORE replay need, over one TCP connection split into halves so a writer and a reply
//! reader can run at once.

use super::Target;
use crate::error::{Error, Result};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::net::TcpStream;

/// One half of a plain or TLS connection. Boxed so every user of `Conn` is the same for
/// both; the 256 KiB buffers make the virtual call per read or write negligible.
pub type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

pub struct Conn {
    pub r: BufReader<ReadHalf>,
    pub w: BufWriter<WriteHalf>,
    pub redacted: String,
}

/// A decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn into_bulk(self) -> Option<Vec<u8>> {
        match self {
            Reply::Bulk(b) => b,
            _ => None,
        }
    }
}

/// Append one command, RESP-encoded, to `out`. Arguments are binary-safe.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl Conn {
    pub async fn open(t: &Target) -> Result<Conn> {
        let tcp = TcpStream::connect(&t.addr).await.map_err(|e| {
            Error::failed(format!("cannot connect to Redis at {}: {e}", t.redacted))
                .hint("check the url and that the server is up")
        })?;
        let _ = tcp.set_nodelay(true);
        let (r, w): (ReadHalf, WriteHalf) = match &t.tls {
            None => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let (r, w) = tokio::io::split(tls.connect(&t.host, tcp, &t.redacted).await?);
                (Box::new(r), Box::new(w))
            }
        };
        let mut c = Conn {
            r: BufReader::with_capacity(256 * 1024, r),
            w: BufWriter::with_capacity(256 * 1024, w),
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
                    .hint("check the user and password in the url")
            })?;
        }
        Ok(c)
    }

    /// Queue a command without flushing (pipelining).
    pub async fn queue(&mut self, args: &[&[u8]]) -> Result<()> {
        let mut out = Vec::new();
        encode(args, &mut out);
        self.w
            .write_all(&out)
            .await
            .map_err(|e| io_err(&self.redacted, e))
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.w.flush().await.map_err(|e| io_err(&self.redacted, e))
    }

    pub async fn send(&mut self, args: &[&str]) -> Result<()> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.queue(&args).await?;
        self.flush().await
    }

    /// Next reply line, skipping the bare newlines a master sends as keep-alives.
    pub async fn line(&mut self) -> Result<String> {
        read_line(&mut self.r, &self.redacted).await
    }

    /// Send a command and read its reply; a Redis error becomes an `Error` naming the command.
    pub async fn call(&mut self, args: &[&str]) -> Result<Reply> {
        self.send(args).await?;
        match self.reply().await? {
            Reply::Error(e) => Err(Error::failed(format!("Redis {}: {e}", args[0]))),
            r => Ok(r),
        }
    }

    /// Send a command expecting a simple (+) reply.
    pub async fn simple(&mut self, args: &[&str]) -> Result<String> {
        match self.call(args).await? {
            Reply::Simple(s) => Ok(s),
            r => Err(Error::failed(format!(
                "Redis {}: unexpected reply {r:?}",
                args[0]
            ))),
        }
    }

    /// Send a command expecting a bulk string reply, as text.
    pub async fn bulk(&mut self, args: &[&str]) -> Result<String> {
        match self.call(args).await? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            r => Err(Error::failed(format!(
                "Redis {}: unexpected reply {r:?}",
                args[0]
            ))),
        }
    }

    pub async fn reply(&mut self) -> Result<Reply> {
        read_reply(&mut self.r, &self.redacted).await
    }
}

pub fn io_err(redacted: &str, e: std::io::Error) -> Error {
    let err = Error::failed(format!("Redis at {redacted}: {e}"));
    // TLS 1.3 finishes the client's side of the handshake before the server checks the
    // client's certificate, so a missing one surfaces here, on the first read.
    if e.to_string().contains("CertificateRequired") {
        return err.hint("the server wants a client certificate: add cert_file and key_file to the rediss:// URL");
    }
    err
}

async fn read_line(r: &mut BufReader<ReadHalf>, redacted: &str) -> Result<String> {
    loop {
        let mut l = Vec::new();
        let n = r
            .read_until(b'\n', &mut l)
            .await
            .map_err(|e| io_err(redacted, e))?;
        if n == 0 {
            return Err(Error::failed(format!(
                "Redis at {redacted} closed the connection"
            )));
        }
        let l = String::from_utf8_lossy(&l)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if !l.is_empty() {
            return Ok(l);
        }
    }
}

/// Read one reply. Arrays are read iteratively (a stack of open arrays), so no recursion.
pub async fn read_reply(r: &mut BufReader<ReadHalf>, redacted: &str) -> Result<Reply> {
    let mut open: Vec<(usize, Vec<Reply>)> = Vec::new();
    loop {
        let l = read_line(r, redacted).await?;
        let (tag, rest) = l.split_at(1);
        let bad = || Error::failed(format!("Redis at {redacted}: unexpected reply line {l:?}"));
        let mut item = match tag {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0; n as usize + 2];
                    r.read_exact(&mut buf)
                        .await
                        .map_err(|e| io_err(redacted, e))?;
                    buf.truncate(n as usize);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n <= 0 {
                    Reply::Array((n == 0).then(Vec::new))
                } else {
                    open.push((n as usize, Vec::with_capacity(n as usize)));
                    continue;
                }
            }
            _ => return Err(bad()),
        };
        // Close every array this item completes.
        loop {
            match open.last_mut() {
                None => return Ok(item),
                Some((want, items)) => {
                    items.push(item);
                    if items.len() < *want {
                        break;
                    }
                    let (_, done) = open.pop().unwrap_or_default();
                    item = Reply::Array(Some(done));
                }
            }
        }
    }
}
