//! The Chroma plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`).

use super::{check_export, source, ChromaTarget};
use crate::error::{Error, Result};
use crate::interp::Secret;
use crate::source::http::HttpUrl;
use crate::manifest::Artifact;
use crate::source::kind::{About, FieldProblem, Scratch, SourceKind};
use crate::source::vector::{scratch_check, Collections, ScratchCollections};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Chroma, exported through its HTTP API (v2): one line-oriented artifact per collection.
pub struct ChromaSpec {
    /// `http://host:8000` (or https).
    pub url: HttpUrl,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default = "default_database")]
    pub database: String,
    /// Collections to back up; every collection when empty.
    #[serde(default)]
    pub collections: Vec<String>,
    /// Token sent as `x-chroma-token`, when the server requires one.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Records per page when exporting, and per `add` batch when restoring. Default 500.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_tenant() -> String {
    "default_tenant".into()
}
fn default_database() -> String {
    "default_database".into()
}
fn default_page_size() -> u32 {
    500
}

#[async_trait]
impl SourceKind for ChromaSpec {
    fn about() -> About {
        About::new(
            "Chroma: every collection exported page by page through the HTTP API (v2), embeddings bit-exact",
            "http://host:8000 (each collection recreated; --rename FROM=TO, --clean)",
        )
        .with_collections()
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if self.page_size == 0 {
            out.push(FieldProblem {
                field: "page_size",
                message: "page_size must be at least 1 (records per page)".into(),
            });
        }
        out
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(source(self.clone())?))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        Ok(Box::new(ChromaTarget::new(self, to, opts)?))
    }

    async fn check_structure(&self, raw: ByteReader, a: &Artifact) -> Result<String> {
        let n = check_export(raw).await?;
        if a.facts
            .get("records")
            .and_then(|r| r.as_u64())
            .is_some_and(|want| want != n)
        {
            return Err(Error::failed(format!(
                "the export holds {n} records, the manifest says {}",
                a.facts["records"]
            )));
        }
        Ok(format!("{n} records"))
    }

    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        let open = |url: &str| -> Result<Box<dyn ScratchCollections>> {
            Ok(Box::new(ChromaTarget::new(self, url, RestoreOptions::default())?))
        };
        let kind = Collections {
            own_url: &self.url,
            open: &open,
            count_fact: "records",
        };
        scratch_check(scratch, kind).await
    }
}
