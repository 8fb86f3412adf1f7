//! Client-side encryption with age (X25519 recipients, or a passphrase), after compression and before the
//! hash: the stored bytes are ciphertext, so `verify --level checksum` needs no key, and the
//! object store's operator reads nothing. Streaming both ways: age's STREAM construction
//! seals 64 KiB chunks, each authenticated, and the last one marked, so a flipped byte or a
//! truncated object fails the read instead of yielding wrong plaintext.
//!
//! The manifest records which recipients a backup was encrypted to as fingerprints
//! (`sha256:` and 16 hex digits of the recipient's text), never keys, so a restore can say
//! which identity it needs before it touches any target.

use crate::config::{Config, EncryptionSpec, JobSpec};
use crate::error::{Error, Result};
use crate::source::ByteReader;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;
use tokio_util::compat::{
    FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt,
};

/// Bytes of ciphertext buffered between the encrypting task and the pipeline.
const PIPE: usize = 256 * 1024;

/// An X25519 recipient (`age1…`), parsed.
#[derive(Clone)]
pub struct Recipient(pub age::x25519::Recipient);

impl Recipient {
    pub fn parse(s: &str) -> std::result::Result<Recipient, String> {
        age::x25519::Recipient::from_str(s.trim())
            .map(Recipient)
            .map_err(|e| format!("{s:?} is not an age X25519 recipient (age1…): {e}"))
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0.to_string())
    }
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn fingerprint(recipient: &str) -> String {
    let h = Sha256::digest(recipient.as_bytes());
    format!("sha256:{}", &hex::encode(h)[..16])
}

/// The identities of `files` (age-keygen's format: one `AGE-SECRET-KEY-1…` per line, `#`
/// comments). An unreadable file or a line that is not a key is an error naming the file and
/// line — never the line's text.
pub fn load_identities(files: &[impl AsRef<Path>]) -> Result<Vec<age::x25519::Identity>> {
    let mut out = Vec::new();
    for f in files {
        let f = f.as_ref();
        let text = std::fs::read_to_string(f).map_err(|e| {
            Error::usage(format!("encryption identity file {}: {e}", f.display()))
                .hint("point encryption.identity_files at files age-keygen wrote")
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| {
                Error::usage(format!(
                    "encryption identity file {} line {}: not an age X25519 secret key",
                    f.display(),
                    i + 1
                ))
            })?;
            out.push(id);
        }
    }
    Ok(out)
}

/// What new backups of a job are sealed with.
pub enum Sealing {
    /// X25519 recipients (several, for key escrow).
    To(Vec<Recipient>),
    /// age's passphrase mode (scrypt).
    Passphrase(String),
}

/// scrypt's work factor for passphrase-sealed backups: N = 2^13 takes 8 MiB and a few tens
/// of milliseconds, inside the 64 MiB memory budget (age's own default, tuned to one second,
/// takes 256 MiB or more; 2^14 measured +14 MiB of peak RSS). The passphrase must carry the
/// strength: a long random value from a secret store, not a word a person remembers.
const SCRYPT_LOG_N: u8 = 13;
/// The most a reader accepts: a forged header cannot make a restore spend minutes and GiBs.
const SCRYPT_MAX_LOG_N: u8 = 18;

fn scrypt_recipient(passphrase: &str) -> age::scrypt::Recipient {
    let mut r =
        age::scrypt::Recipient::new(age::secrecy::SecretString::from(passphrase.to_string()));
    r.set_work_factor(SCRYPT_LOG_N);
    r
}

fn scrypt_identity(passphrase: &str) -> age::scrypt::Identity {
    let mut i =
        age::scrypt::Identity::new(age::secrecy::SecretString::from(passphrase.to_string()));
    i.set_max_work_factor(SCRYPT_MAX_LOG_N);
    i
}

fn encryptor(sealing: &Sealing) -> Result<age::Encryptor> {
    let enc = match sealing {
        Sealing::To(recipients) => {
            age::Encryptor::with_recipients(recipients.iter().map(|r| &r.0 as &dyn age::Recipient))
        }
        Sealing::Passphrase(p) => {
            let r = scrypt_recipient(p);
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
        }
    };
    enc.map_err(|e| {
        Error::usage(format!(
            "cannot encrypt with the configured encryption: {e}"
        ))
    })
}

/// Encrypt `plain` as it is read: a task seals it into a pipe, whose other end is the
/// returned reader. An error of the task surfaces as a read error at the end, so a failed
/// seal can never look like a short, complete ciphertext.
pub fn seal(plain: ByteReader, sealing: &Sealing) -> Result<ByteReader> {
    let enc = encryptor(sealing)?;
    let (near, far) = tokio::io::duplex(PIPE);
    let task = tokio::spawn(async move {
        use futures::AsyncWriteExt;
        let mut w = enc.wrap_async_output(far.compat_write()).await?;
        futures::io::copy(plain.compat(), &mut w).await?;
        w.close().await
    });
    Ok(Box::new(Sealed {
        pipe: near,
        task: Some(task),
    }))
}

struct Sealed {
    pipe: DuplexStream,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl AsyncRead for Sealed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.pipe).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            return Poll::Ready(Ok(()));
        }
        // End of the pipe: the ciphertext is whole only if the task finished cleanly.
        if let Some(t) = self.task.as_mut() {
            let r = ready!(Pin::new(t).poll(cx));
            self.task = None;
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(e) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// The identities among `ids` whose public keys are among `fingerprints` (a backup's
/// recipients); an error naming the fingerprints when none is.
pub fn matching<'a>(
    ids: &'a [age::x25519::Identity],
    fingerprints: &[String],
) -> Result<Vec<&'a age::x25519::Identity>> {
    let found: Vec<_> = ids
        .iter()
        .filter(|i| fingerprints.contains(&fingerprint(&i.to_public().to_string())))
        .collect();
    if found.is_empty() {
        let why = if ids.is_empty() {
            "no identity is configured"
        } else {
            "none of the configured identities is among them"
        };
        return Err(Error::usage(format!(
            "the backup is encrypted to {}; {why}",
            fingerprints.join(", ")
        ))
        .hint("add the identity file of one of those recipients to encryption.identity_files"));
    }
    Ok(found)
}

/// An identity that async readers may hold across await points.
pub type SyncIdentity = dyn age::Identity + Sync;

/// Decrypt `sealed` with `ids` as it is read. A wrong key fails at the header; a tampered or
/// truncated ciphertext fails when its chunk is read.
pub async fn open(sealed: ByteReader, ids: &[&SyncIdentity]) -> Result<ByteReader> {
    let input = tokio::io::BufReader::new(sealed).compat();
    let d = age::Decryptor::new_async_buffered(input)
        .await
        .map_err(|e| Error::failed(format!("not an age ciphertext, or a damaged one: {e}")))?;
    let plain = d
        .decrypt_async(ids.iter().map(|i| *i as &dyn age::Identity))
        .map_err(|e| Error::failed(format!("cannot decrypt: {e}")))?;
    Ok(Box::new(plain.compat()))
}

/// The encryption a job's new backups get: its own block, else the top-level one.
pub fn for_job<'a>(cfg: &'a Config, job: &'a JobSpec) -> Option<&'a EncryptionSpec> {
    job.encryption.as_ref().or(cfg.encryption.as_ref())
}

/// What a job's new backups are sealed with (`None`: plaintext): the recipients when there
/// are any, else the passphrase.
pub fn sealing(cfg: &Config, job: &JobSpec) -> Option<Sealing> {
    let e = for_job(cfg, job)?;
    if !e.recipients.is_empty() {
        return Some(Sealing::To(
            e.recipients.iter().map(|r| r.0.clone()).collect(),
        ));
    }
    e.passphrase
        .as_ref()
        .map(|p| Sealing::Passphrase(p.expose().to_string()))
}

/// The plaintext of a passphrase backup's check, sealed into its manifest.
const CHECK: &[u8] = b"drctl passphrase check";

/// What a new backup records about its encryption (`None`: plaintext). A passphrase
/// backup carries a small ciphertext of its own (`check`), so a reader can tell a wrong
/// passphrase before it touches any target; it offers an attacker nothing the artifacts'
/// own age headers do not.
pub fn manifest_entry(cfg: &Config, job: &JobSpec) -> Result<Option<crate::manifest::Encryption>> {
    Ok(match sealing(cfg, job) {
        None => None,
        Some(Sealing::To(rs)) => Some(crate::manifest::Encryption {
            scheme: "age-x25519".into(),
            recipients: rs.iter().map(|r| r.fingerprint()).collect(),
            check: None,
        }),
        Some(Sealing::Passphrase(p)) => {
            let sealed = age::encrypt(&scrypt_recipient(&p), CHECK)
                .map_err(|e| Error::failed(format!("cannot seal the passphrase check: {e}")))?;
            use base64::Engine;
            Some(crate::manifest::Encryption {
                scheme: "age-scrypt".into(),
                recipients: Vec::new(),
                check: Some(base64::engine::general_purpose::STANDARD.encode(sealed)),
            })
        }
    })
}

/// The identities that read backup `m` of `job` (from the job's and the top-level
/// `identity_files`): `None` when it is not encrypted; an error naming the recipients it
/// needs when no configured identity is one of them — before any target is touched.
pub fn keys_for(
    cfg: &Config,
    job: &JobSpec,
    m: &crate::manifest::Manifest,
) -> Result<Option<Keys>> {
    let Some(enc) = &m.encryption else {
        return Ok(None);
    };
    let blocks = [job.encryption.as_ref(), cfg.encryption.as_ref()];
    if enc.scheme == "age-scrypt" {
        let Some(p) = blocks.iter().flatten().find_map(|e| e.passphrase.as_ref()) else {
            return Err(Error::usage(format!(
                "backup {} is encrypted with a passphrase, and none is configured",
                m.id
            ))
            .hint(
                "set encryption.passphrase (with ${VAR}) to the passphrase it was written with",
            ));
        };
        let id = scrypt_identity(p.expose());
        check_passphrase(&id, enc, &m.id)?;
        return Ok(Some(Keys::Passphrase(Box::new(id))));
    }
    let files: Vec<std::path::PathBuf> = blocks
        .into_iter()
        .flatten()
        .flat_map(|e| e.identity_files.clone())
        .collect();
    let all = load_identities(&files)?;
    let found: Vec<age::x25519::Identity> = matching(&all, &enc.recipients)?
        .into_iter()
        .cloned()
        .collect();
    Ok(Some(Keys::X25519(found)))
}

/// The configured passphrase opens the manifest's check, or the error says it is wrong.
fn check_passphrase(
    id: &age::scrypt::Identity,
    enc: &crate::manifest::Encryption,
    backup: &str,
) -> Result<()> {
    use base64::Engine;
    let Some(sealed) = enc
        .check
        .as_deref()
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
    else {
        return Ok(()); // nothing to check against: a wrong one fails at the first artifact
    };
    match age::decrypt(id, &sealed) {
        Ok(p) if p == CHECK => Ok(()),
        _ => Err(Error::usage(format!(
            "the configured encryption.passphrase does not open backup {backup}"
        ))
        .hint("set encryption.passphrase to the passphrase the backup was written with (old backups keep theirs after a change)")),
    }
}

/// What reads a backup: identities that match its recipients, or its passphrase.
pub enum Keys {
    X25519(Vec<age::x25519::Identity>),
    Passphrase(Box<age::scrypt::Identity>),
}

/// `stored` as it was before encryption (unchanged when `keys` is `None`).
pub async fn unseal(stored: ByteReader, keys: Option<&Keys>) -> Result<ByteReader> {
    match keys {
        None => Ok(stored),
        Some(Keys::X25519(ids)) => {
            open(
                stored,
                &ids.iter().map(|i| i as &SyncIdentity).collect::<Vec<_>>(),
            )
            .await
        }
        Some(Keys::Passphrase(id)) => open(stored, &[id.as_ref() as &SyncIdentity]).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn key() -> (age::x25519::Identity, Recipient) {
        let id = age::x25519::Identity::generate();
        let r = Recipient(id.to_public());
        (id, r)
    }

    async fn read_all(mut r: ByteReader) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn round_trip_hides_the_plaintext_and_any_change_is_refused() {
        let (id, r) = key();
        let plain: Vec<u8> = b"MARKER-42 "
            .iter()
            .cycle()
            .take(300_000)
            .copied()
            .collect();
        let sealed = read_all(
            seal(
                Box::new(std::io::Cursor::new(plain.clone())),
                &Sealing::To(vec![r.clone()]),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        assert!(
            !sealed.windows(9).any(|w| w == b"MARKER-42"),
            "plaintext in the ciphertext"
        );
        let ids = [&id as &SyncIdentity];
        let back = read_all(
            open(Box::new(std::io::Cursor::new(sealed.clone())), &ids)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(back, plain);

        let mut flipped = sealed.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        let r = open(Box::new(std::io::Cursor::new(flipped)), &ids)
            .await
            .unwrap();
        assert!(
            read_all(r).await.is_err(),
            "a flipped byte must fail the read"
        );
        let cut = sealed[..sealed.len() - 100].to_vec();
        let r = open(Box::new(std::io::Cursor::new(cut)), &ids)
            .await
            .unwrap();
        assert!(
            read_all(r).await.is_err(),
            "a truncated ciphertext must fail the read"
        );
    }

    #[tokio::test]
    async fn the_wrong_identity_is_named_by_fingerprint_before_any_byte_is_read() {
        let (_, r) = key();
        let (other, _) = key();
        let ids = [other];
        let e = matching(&ids, &[r.fingerprint()]).err().unwrap();
        assert!(e.message().contains(&r.fingerprint()), "{}", e.message());
        assert!(
            e.message().contains("none of the configured identities"),
            "{}",
            e.message()
        );
        let e = matching(&[], &[r.fingerprint()]).err().unwrap();
        assert!(
            e.message().contains("no identity is configured"),
            "{}",
            e.message()
        );
    }
}
