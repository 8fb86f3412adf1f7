//! The plug-in contract of a source kind. Every per-kind question the rest of drctl asks —
//! how its config is checked, how a backup is taken and restored, how a stored artifact is
//! checked, how a scratch restore is proven — is a required method here, so a new kind that
//! forgets one does not compile, and no other module matches on the kind. The kind's spec
//! type (its `source:` block in the config) implements the trait; `source/mod.rs` registers
//! it with one line.

use super::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use crate::error::Result;
use crate::manifest::{Artifact, Manifest};
use async_trait::async_trait;

/// What a kind says about itself, for `--help` and the docs.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// One line: what is backed up and how.
    pub summary: &'static str,
    /// What `drctl restore --to` takes for this kind, e.g. `postgres://host:5432/db`.
    pub restore_to: &'static str,
    /// The backup holds named collections that `restore --rename` can rename.
    pub collections: bool,
    /// The backup holds named members (files) that `restore --path` can pick from.
    pub members: bool,
    /// What `verify` accepts for this kind.
    pub verify: VerifyRules,
}

impl About {
    /// A kind without collections or members whose `verify` takes the plain rules; the
    /// `with_` methods say otherwise.
    pub const fn new(summary: &'static str, restore_to: &'static str) -> About {
        About {
            summary,
            restore_to,
            collections: false,
            members: false,
            verify: VerifyRules::PLAIN,
        }
    }
    pub const fn with_collections(mut self) -> About {
        self.collections = true;
        self
    }
    pub const fn with_members(mut self) -> About {
        self.members = true;
        self
    }
    pub const fn with_verify(mut self, verify: VerifyRules) -> About {
        self.verify = verify;
        self
    }
}

/// How `verify` may be configured for a job of this kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyRules {
    /// `verify.assertions` (SQL run against the scratch restore) apply.
    pub assertions: bool,
    /// `level: restore` cannot run without `verify.scratch`.
    pub restore_needs_scratch: bool,
}

impl VerifyRules {
    /// No assertions; the scratch target has a default (a temporary server, the job's own).
    pub const PLAIN: VerifyRules = VerifyRules {
        assertions: false,
        restore_needs_scratch: false,
    };
}

/// A field rule broken inside the `source:` block: the field (relative to `source`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub message: String,
}

#[async_trait]
pub trait SourceKind: std::fmt::Debug + Send + Sync {
    /// The kind's help text and static traits (the registry reads it without an instance).
    fn about() -> About
    where
        Self: Sized;

    /// Rules on the spec's own fields that serde cannot express (syntax is checked while
    /// parsing). Pure: no I/O. Most kinds have none.
    fn problems(&self) -> Vec<FieldProblem> {
        Vec::new()
    }

    /// The backup side: take a consistent snapshot and stream its artifacts.
    fn backup_source(&self) -> Result<Box<dyn BackupSource>>;

    /// The restore side, for `drctl restore --to TO` (and every scratch restore).
    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>>;

    /// `verify --level structure`: read one artifact's decompressed bytes to the end, check
    /// the format, and compare what it holds with the facts recorded at backup time. Returns
    /// what was found, e.g. "12 tables in the archive's TOC".
    async fn check_structure(&self, raw: ByteReader, artifact: &Artifact) -> Result<String>;

    /// `verify --level restore`: restore the backup into a throwaway target, compare what
    /// arrived with the manifest's facts, and remove the target whatever happened. Returns
    /// the restore's wall time in seconds and what was compared.
    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)>;
}

/// What a kind's scratch check gets from `verify`: the backup under check, the job's
/// `verify` settings, and the restore itself (the code path of `drctl restore`).
#[async_trait]
pub trait Scratch: Send + Sync {
    fn manifest(&self) -> &Manifest;
    /// The job's `verify.scratch`, when set.
    fn target(&self) -> Option<&str>;
    /// The job's `verify.assertions` (only kinds whose rules accept them see any).
    fn assertions(&self) -> &[AssertionSpec];
    /// Restore the backup under check into `to`.
    async fn restore(&self, to: &str, opts: RestoreOptions) -> Result<()>;
}

/// `{ name: "no negative totals", sql: "SELECT count(*) FROM orders WHERE total < 0", expect: 0 }`:
/// a query run against a scratch restore, whose first column of its first row must equal
/// `expect`. Kinds whose `VerifyRules` accept assertions run them (PostgreSQL today).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertionSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub sql: String,
    /// Compared with the value as the database prints it (`t`/`f` for PostgreSQL booleans);
    /// a NULL is written `null`.
    pub expect: Scalar,
}

/// A YAML scalar kept as the text it reads as, so `expect: 0` and `expect: "0"` are the same.
#[derive(Debug, Clone, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(transparent)]
pub struct Scalar(pub String);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Any {
            S(String),
            I(i64),
            F(f64),
            B(bool),
            N(()),
        }
        Ok(Scalar(match Any::deserialize(d)? {
            // The config tree keeps every scalar as text: YAML's plain booleans and null
            // read as the values they are (a quoted "true" is indistinguishable here).
            Any::S(s) => match s.as_str() {
                "true" | "True" | "TRUE" => "t".into(),
                "false" | "False" | "FALSE" => "f".into(),
                "~" | "null" | "Null" | "NULL" => "null".into(),
                _ => s,
            },
            Any::I(i) => i.to_string(),
            Any::F(f) => f.to_string(),
            Any::B(b) => if b { "t" } else { "f" }.to_string(),
            Any::N(()) => "null".to_string(),
        }))
    }
}
