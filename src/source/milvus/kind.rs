//! The Milvus plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`).

use super::client::Conn;
use super::{format, MilvusSource, MilvusTarget};
use crate::error::{Error, Result};
use crate::interp::Secret;
use crate::manifest::Artifact;
use crate::source::http::HttpUrl;
use crate::source::kind::{About, FieldProblem, Scratch, SourceKind};
use crate::source::vector::{scratch_check, Collections, ScratchCollections};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Milvus, through its gRPC API: one artifact per collection with its schema, partitions,
/// index definitions and every row, read in primary-key pages.
pub struct MilvusSpec {
    /// `http://host:19530` (or https:// for TLS).
    pub url: HttpUrl,
    /// The Milvus database the collections live in.
    #[serde(default = "default_database")]
    pub database: String,
    /// Collections to back up; every collection of the database when empty.
    #[serde(default)]
    pub collections: Vec<String>,
    /// An API token (Zilliz Cloud, or `user:password`), when the server requires auth.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A user, with `password`, instead of `token`.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// A PEM file of the CA(s) to trust for `https://`, instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Rows per page read (at most 16384, the server's cap). By default, as many as fit
    /// 4 MiB by the schema's widths.
    #[serde(default)]
    pub batch_rows: Option<u32>,
}

fn default_database() -> String {
    "default".into()
}

impl MilvusSpec {
    pub(super) fn conn(&self, url: &str) -> Conn {
        let credential = match (&self.token, &self.user, &self.password) {
            (Some(t), _, _) => Some(t.expose().to_string()),
            (None, Some(u), Some(p)) => Some(format!("{u}:{}", p.expose())),
            _ => None,
        };
        Conn {
            url: url.to_string(),
            db: self.database.clone(),
            credential,
            ca_file: self.ca_file.clone(),
        }
    }
}

#[async_trait]
impl SourceKind for MilvusSpec {
    fn about() -> About {
        About::new(
            "Milvus: every collection's schema, partitions, indexes and rows through the gRPC API, vectors bit-exact",
            "http://host:19530[/DB] (each collection recreated, indexes rebuilt, loaded; --rename FROM=TO, --clean)",
        )
        .with_collections()
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if self.token.is_some() && (self.user.is_some() || self.password.is_some()) {
            out.push(FieldProblem {
                field: "token",
                message: "give either token or user and password, not both".into(),
            });
        }
        if self.user.is_some() != self.password.is_some() {
            out.push(FieldProblem {
                field: if self.user.is_some() { "password" } else { "user" },
                message: "user and password go together".into(),
            });
        }
        if let Some(b) = self.batch_rows {
            if b == 0 || b as usize > super::MAX_PAGE_ROWS {
                out.push(FieldProblem {
                    field: "batch_rows",
                    message: format!(
                        "batch_rows must be between 1 and {} (Milvus's cap on a query's offset + limit)",
                        super::MAX_PAGE_ROWS
                    ),
                });
            }
        }
        out
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(MilvusSource { spec: self.clone() }))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        Ok(Box::new(MilvusTarget::new(self, to, opts)?))
    }

    async fn check_structure(&self, raw: ByteReader, a: &Artifact) -> Result<String> {
        let (_, t) = format::check(raw).await?;
        if let Some(want) = a.facts.get("rows").and_then(|r| r.as_u64()) {
            if want != t.rows {
                return Err(Error::failed(format!(
                    "the export holds {} rows, the manifest says {want}",
                    t.rows
                )));
            }
        }
        if let Some(want) = a.facts.get("partitions") {
            if *want != serde_json::json!(t.partitions) {
                return Err(Error::failed(format!(
                    "rows per partition {:?} differ from the manifest's {want}",
                    t.partitions
                )));
            }
        }
        Ok(format!(
            "{} rows in {} partition(s), every batch decoded",
            t.rows,
            t.partitions.len()
        ))
    }

    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        let open = |url: &str| -> Result<Box<dyn ScratchCollections>> {
            Ok(Box::new(MilvusTarget::new(self, url, RestoreOptions::default())?))
        };
        let kind = Collections {
            own_url: &self.url,
            open: &open,
            count_fact: "rows",
        };
        scratch_check(scratch, kind).await
    }
}
