//! Sources: what produces backup bytes, and how they go back. Each source kind is a plug-in:
//! one module that owns its `source:` spec and implements `kind::SourceKind` (the contract
//! in docs/architecture.md), registered with one line in `registry!` below. Nothing outside
//! a kind's module matches on the kind: the rest of drctl asks `SourceSpec::plugin()`.

pub mod http;
pub mod kind;
pub mod pipe;
pub mod process;
pub mod spawned;
pub mod to_file;
pub mod vector;

pub use kind::{About, AssertionSpec, Scalar, Scratch, SourceKind};

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

/// Resolves once an artifact's producer has confirmed success (exit status, trailer...),
/// with the facts to record; see `ArtifactStream::confirm`.
pub type Confirm = futures::future::BoxFuture<'static, Result<serde_json::Value>>;

/// One artifact's byte stream, before compression.
pub struct ArtifactStream {
    /// Logical name, e.g. `db`.
    pub name: String,
    /// File name before the codec's extension, e.g. `db.pgdump`.
    pub file_name: String,
    pub reader: ByteReader,
    /// The source's estimate of the artifact's raw size in bytes, when it knows one cheaply:
    /// object stores size their multipart parts by it (`Region::part_size_for`), so
    /// artifacts streamed side by side do not each hold a default-sized part per region.
    pub size_hint: Option<u64>,
    /// For artifacts streamed side by side (`SourceRun::next_group`): the producer's own
    /// confirmation, awaited after the stream's EOF. `None`: `SourceRun::finish_artifact`
    /// confirms it (only a group of one may leave it out).
    pub confirm: Option<Confirm>,
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
    /// The next artifacts to stream at the same time (each through its own pipeline, all
    /// before any of the next group); empty when all have been produced. Default: one at a
    /// time from `next_artifact`. A group of more than one must carry `confirm` on each.
    async fn next_group(&mut self) -> Result<Vec<ArtifactStream>> {
        Ok(self.next_artifact().await?.into_iter().collect())
    }
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
    /// Parallel restore jobs: artifacts of one stage restored at once (`RestoreTarget::stages`),
    /// and what a target's own tool may use (pg_restore `--jobs`).
    pub jobs: u32,
    /// Collection renames `(from, to)` for vector databases.
    pub renames: Vec<(String, String)>,
    /// Members to restore alone (`--path`), for kinds whose backup holds named members.
    pub members: Vec<String>,
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
    /// The order of restore: stages one after the other, the artifacts of a stage (indexes
    /// into `artifacts`) restored at once, at most `at_once` together. Default: one at a
    /// time in manifest order.
    fn stages(&self, artifacts: &[Artifact]) -> Vec<Stage> {
        Stage::one_at_a_time(artifacts.len())
    }
    /// Whether restoring one artifact is all or nothing, even when its stream fails at its
    /// very end (PostgreSQL: one transaction per artifact). Restore then checks each copy
    /// while streaming it (`Verifying` withholds the tail until the checksum matched) and
    /// falls back to the next region per artifact, instead of reading every copy in full
    /// before restoring: half the transfer, which is most of a large restore's time. A target
    /// that kept part of an artifact whose stream then failed says so with `TargetChanged`.
    fn atomic(&self) -> bool {
        false
    }
    /// After the last stage: what the target restores once every artifact is in (PostgreSQL:
    /// the post-data its buckets did not restore). Default: nothing.
    async fn finish(&self) -> Result<()> {
        Ok(())
    }
}

/// The cause of a restore error after which an atomic target kept part of the artifact (a
/// tool committed before its input failed): no other region's copy may be restored over it.
#[derive(Debug)]
pub struct TargetChanged;

impl std::fmt::Display for TargetChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the target kept part of an artifact whose copy then failed")
    }
}

impl std::error::Error for TargetChanged {}

/// The cause of a restore error that is the target's own side: its disk full, over quota,
/// read-only or not permitted, or its server not answering. It says nothing about the
/// backup, so a verification that meets it in its scratch target judges nothing (`verify`
/// records no verdict and says what to fix).
#[derive(Debug)]
pub struct TargetRefused(pub Box<dyn std::error::Error + Send + Sync>);

impl TargetRefused {
    /// Whether an OS error number is the disk's refusal, not the data's fault.
    pub fn is_refusal(e: &std::io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EACCES)
        )
    }

    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> TargetRefused {
        TargetRefused(Box::new(e))
    }
}

impl std::fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the target refused: {}", self.0)
    }
}

impl std::error::Error for TargetRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// One stage of a restore (`RestoreTarget::stages`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub artifacts: Vec<usize>,
    pub at_once: usize,
}

impl Stage {
    /// `n` artifacts, one after the other in manifest order.
    pub fn one_at_a_time(n: usize) -> Vec<Stage> {
        (0..n)
            .map(|i| Stage {
                artifacts: vec![i],
                at_once: 1,
            })
            .collect()
    }
}

/// Declares the registered source kinds: `"name" => Variant(module::Spec)`, one line each.
/// It generates `SourceSpec` (the config's `source:` block, tagged by `kind`), the dispatch
/// to each kind's `SourceKind` impl, and the parser the config loader calls per kind.
macro_rules! registry {
    ($($name:literal => $variant:ident($module:ident::$spec:ident)),* $(,)?) => {
        $(pub mod $module;)*

        /// What to back up: one variant per registered source kind, picked by `kind`.
        #[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
        #[serde(tag = "kind", deny_unknown_fields)]
        pub enum SourceSpec {
            $(#[serde(rename = $name)] $variant($module::$spec),)*
        }

        impl SourceSpec {
            /// The kind's answers to every per-kind question.
            pub fn plugin(&self) -> &dyn SourceKind {
                match self {
                    $(SourceSpec::$variant(s) => s,)*
                }
            }

            /// The kind's help text and static traits.
            pub fn about(&self) -> About {
                match self {
                    $(SourceSpec::$variant(_) => <$module::$spec as SourceKind>::about(),)*
                }
            }

            /// The `kind:` value.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(SourceSpec::$variant(_) => $name,)*
                }
            }
        }

        /// Every registered kind, by name, in registry order (for help, docs and errors).
        pub fn kinds() -> Vec<(&'static str, About)> {
            vec![$(($name, <$module::$spec as SourceKind>::about()),)*]
        }

        /// Deserialize a `source:` block, its `kind` removed, as kind `name`; `None` when no
        /// kind of that name is registered.
        pub fn parse_source(
            name: &str,
            node: &marked_yaml::Node,
        ) -> Option<std::result::Result<SourceSpec, marked_yaml::FromNodeError>> {
            $(if name == $name {
                return Some(marked_yaml::from_node::<$module::$spec>(node).map(SourceSpec::$variant));
            })*
            None
        }
    };
}

registry! {
    "postgres" => Postgres(postgres::PostgresSpec),
    "redis" => Redis(redis::RedisSpec),
    "chroma" => Chroma(chroma::ChromaSpec),
    "qdrant" => Qdrant(qdrant::QdrantSpec),
    "files" => Files(files::FilesSpec),
    "milvus" => Milvus(milvus::MilvusSpec),
}

impl SourceSpec {
    pub fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        self.plugin().backup_source()
    }

    /// The restore side at `to`; `--rename` is refused for kinds without collections, `--path`
    /// for kinds without members.
    pub fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        if !opts.renames.is_empty() && !self.about().collections {
            return Err(crate::error::Error::usage(format!(
                "--rename applies to vector-database collections, not to a {} backup",
                self.kind()
            )));
        }
        if !opts.members.is_empty() && !self.about().members {
            return Err(crate::error::Error::usage(format!(
                "--path picks members of a files backup, not of a {} backup",
                self.kind()
            )));
        }
        self.plugin().restore_target(to, opts)
    }
}

/// Decode a URL part (user, password, path) as RFC 3986 percent-encoding: `%2B` is `+` and a
/// raw `+` stays `+` (form decoding would make it a space), and `&` is just a character.
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}
