//! Sources: what produces backup bytes, and how they go back. One file per source kind, each
//! implementing `BackupSource` (take a consistent snapshot and stream artifacts) and
//! `RestoreTarget` (feed artifacts back). Adding a kind = one file + one line in `backup_source`
//! and `restore_target`.

pub mod chroma;
pub mod http;
pub mod postgres;
pub mod process;
pub mod qdrant;
pub mod redis;

use crate::config::SourceSpec;
use crate::error::Result;
use crate::manifest::Artifact;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;

pub type ByteReader = Box<dyn AsyncRead + Send + Unpin>;

/// What a snapshot says about itself, recorded in the manifest.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub server_version: String,
    /// The instant the data reflects; RPO counts from here.
    pub consistent_at: DateTime<Utc>,
}

/// One artifact's byte stream, before compression.
pub struct ArtifactStream {
    /// Logical name, e.g. `db`.
    pub name: String,
    /// File name before the codec's extension, e.g. `db.pgdump`.
    pub file_name: String,
    pub reader: ByteReader,
}

#[async_trait]
pub trait BackupSource: Send + Sync {
    /// Take a consistent snapshot and start producing its artifacts.
    async fn begin(&self) -> Result<Box<dyn SourceRun>>;
}

/// A backup in progress on the source side.
#[async_trait]
pub trait SourceRun: Send {
    fn info(&self) -> &SnapshotInfo;
    /// The next artifact to stream, or `None` when all have been produced.
    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>>;
    /// Called after the current artifact's stream reached EOF: confirm the producer succeeded
    /// (exit status, trailer...) and return the facts to record for verification.
    async fn finish_artifact(&mut self) -> Result<serde_json::Value>;
    /// Stop producing (kill child processes) after a failure or an interruption.
    async fn abort(&mut self);
}

/// Options of `drctl restore` that targets may honour.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Drop and replace objects that exist in the target.
    pub clean: bool,
    /// Do not restore ownership (for targets without the source's roles).
    pub no_owner: bool,
    /// Parallel restore jobs; > 1 spools the artifact to a local file first.
    pub jobs: u32,
    /// Collection renames `(from, to)` for vector databases.
    pub renames: Vec<(String, String)>,
}

impl RestoreOptions {
    /// The name a collection is restored under.
    pub fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(from, _)| from == name)
            .map_or(name, |(_, to)| to.as_str())
    }
}

#[async_trait]
pub trait RestoreTarget: Send + Sync {
    /// Redacted description for messages.
    fn describe(&self) -> String;
    /// Check (and create, where it makes sense) the target before any byte is read, for
    /// every artifact about to be restored.
    async fn prepare(&self, artifacts: &[Artifact]) -> Result<()>;
    /// Restore one artifact from its decompressed bytes.
    async fn restore(&self, artifact: &Artifact, reader: ByteReader) -> Result<()>;
}

/// What `verify --level restore` needs from a vector database besides restoring: count what
/// a (renamed, scratch) collection holds, and drop it again.
#[async_trait]
pub trait ScratchCollections: Send + Sync {
    /// Records (Chroma) or points (Qdrant) in the collection.
    async fn count(&self, collection: &str) -> Result<u64>;
    /// Delete the collection; one that does not exist is not an error.
    async fn drop_collection(&self, collection: &str) -> Result<()>;
}

/// The scratch side of a vector-database job's source kind at `to`; `None` for other kinds.
pub fn scratch_collections(
    spec: &SourceSpec,
    to: &str,
) -> Result<Option<Box<dyn ScratchCollections>>> {
    let opts = RestoreOptions::default();
    Ok(match spec {
        SourceSpec::Chroma(c) => Some(Box::new(chroma::ChromaTarget::new(c, to, opts)?)),
        SourceSpec::Qdrant(q) => Some(Box::new(qdrant::QdrantTarget::new(q, to, opts)?)),
        _ => None,
    })
}

pub fn backup_source(spec: &SourceSpec) -> Result<Box<dyn BackupSource>> {
    Ok(match spec {
        SourceSpec::Postgres(pg) => Box::new(postgres::PostgresSource::new(pg.clone())),
        SourceSpec::Redis(r) => Box::new(redis::RedisSource::new(r.clone())),
        SourceSpec::Chroma(c) => Box::new(chroma::ChromaSource::new(c.clone())?),
        SourceSpec::Qdrant(q) => Box::new(qdrant::QdrantSource::new(q.clone())?),
    })
}

pub fn restore_target(
    spec: &SourceSpec,
    to: &str,
    opts: RestoreOptions,
) -> Result<Box<dyn RestoreTarget>> {
    let renames = !opts.renames.is_empty();
    Ok(match spec {
        SourceSpec::Chroma(c) => Box::new(chroma::ChromaTarget::new(c, to, opts)?),
        SourceSpec::Qdrant(q) => Box::new(qdrant::QdrantTarget::new(q, to, opts)?),
        _ if renames => {
            return Err(crate::error::Error::usage(format!(
                "--rename applies to vector-database collections, not to a {} backup",
                spec.kind()
            )))
        }
        SourceSpec::Postgres(pg) => Box::new(postgres::PostgresTarget::new(pg, to, opts)?),
        SourceSpec::Redis(_) => redis::restore_target(to, opts)?,
    })
}

/// Decode a URL part (user, password, path) as RFC 3986 percent-encoding: `%2B` is `+` and a
/// raw `+` stays `+` (form decoding would make it a space), and `&` is just a character.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
