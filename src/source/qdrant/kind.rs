//! The Qdrant plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`).

use super::{source, QdrantTarget};
use crate::error::{Error, Result};
use crate::interp::Secret;
use crate::source::http::HttpUrl;
use crate::manifest::Artifact;
use crate::source::kind::{About, Scratch, SourceKind};
use crate::source::vector::{scratch_check, Collections, ScratchCollections};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Qdrant, through its REST API: one server-side snapshot per collection, streamed down.
pub struct QdrantSpec {
    /// `http://host:6333` (or https).
    pub url: HttpUrl,
    /// Sent as the `api-key` header, when the server requires one.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Collections to back up; every collection when empty.
    #[serde(default)]
    pub collections: Vec<String>,
}

#[async_trait]
impl SourceKind for QdrantSpec {
    fn about() -> About {
        About::new(
            "Qdrant: one server-side snapshot per collection, streamed down and checksum-checked",
            "http://host:6333 (each snapshot uploaded; --rename FROM=TO, --clean)",
        )
        .with_collections()
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(source(self.clone())?))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        Ok(Box::new(QdrantTarget::new(self, to, opts)?))
    }

    /// A Qdrant snapshot is the server's own archive: decompressed end to end and sized
    /// (the caller compares the size with the manifest's).
    async fn check_structure(&self, mut raw: ByteReader, _: &Artifact) -> Result<String> {
        tokio::io::copy(&mut raw, &mut tokio::io::sink())
            .await
            .map_err(|e| Error::failed(format!("reading: {e}")))?;
        Ok("snapshot decompressed".to_string())
    }

    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        let open = |url: &str| -> Result<Box<dyn ScratchCollections>> {
            Ok(Box::new(QdrantTarget::new(self, url, RestoreOptions::default())?))
        };
        let kind = Collections {
            own_url: &self.url,
            open: &open,
            count_fact: "points_count",
        };
        scratch_check(scratch, kind).await
    }
}
