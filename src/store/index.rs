//! The per-job index, `indexes/<job>.json.zst`: every committed manifest of the job in this
//! region, in one object, so that listing 10,000 backups costs a few requests instead of
//! 10,000 sequential ones.
//!
//! The manifest stays the commit point; the index is a cache and never the truth on its own:
//!
//! - **Which backups exist** comes from listing `backups/<job>/` (paged, a few requests); the
//!   index only answers "what does this id's manifest say". An index entry whose folder is
//!   gone is ignored (a stale index never invents a backup); a listed id the index does not
//!   know is read from its own manifest (a stale or lost index never hides one), with bounded
//!   concurrency.
//! - **Writers keep it ahead of deletions**: a backup adds its manifest after committing; a
//!   prune removes entries *before* it deletes their manifests, and when it cannot, it deletes
//!   the index (readers then rebuild it) or deletes nothing.
//! - **Readers repair it**: a listing that found it stale or absent writes it back, best
//!   effort (a read-only identity just leaves it stale; it costs one refused request).
//!
//! The contract: a manifest is never rewritten in place (drctl writes each once); whatever
//! does rewrite one — a newer drctl migrating manifests — drops the job's index. Destructive
//! paths do not rely on it: `prune` reads each manifest it is about to delete again, so a
//! changed one (a newer format) stops it.
//!
//! What an index cannot see: a manifest deleted by hand while its folder stays. Such a copy
//! stays listed until a prune deletes it or the index is rebuilt (deleting the index forces
//! that); `restore` and `verify` read the manifest itself and refuse the copy.

use super::Region;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Manifests read at once when the index does not know them (a rebuild, new backups).
const READ_CONCURRENCY: usize = 32;
const INDEX_VERSION: u32 = 1;

pub fn index_path(job: &str) -> String {
    format!("indexes/{job}.json.zst")
}

#[derive(Serialize, Deserialize)]
struct Index {
    index_version: u32,
    job: String,
    updated_at: DateTime<Utc>,
    manifests: Vec<Manifest>,
}

/// What one region holds of one job.
#[derive(Debug, Default)]
pub struct Scan {
    /// Committed backups, oldest id first.
    pub committed: Vec<Manifest>,
    /// Backup folders without a manifest (runs that never committed, or are running).
    pub partial: Vec<String>,
}

impl Region {
    /// The index's manifests by id; `None` when absent, unreadable or of a newer version (a
    /// warning, never an error: the manifests are the truth).
    async fn read_index(&self, job: &str) -> Option<BTreeMap<String, Manifest>> {
        let path = index_path(job);
        let buf = match self.op.read(&path).await {
            Ok(b) => b.to_vec(),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(region = %self.name, error = %e, "cannot read the index; reading manifests");
                return None;
            }
        };
        let parsed = zstd_decode(&buf).await.and_then(|json| {
            serde_json::from_slice::<Index>(&json).map_err(|e| Error::failed(e.to_string()))
        });
        match parsed {
            Ok(i) if i.index_version <= INDEX_VERSION && i.job == job => {
                Some(i.manifests.into_iter().map(|m| (m.id.clone(), m)).collect())
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(region = %self.name, path, error = %e, "ignoring a damaged index; reading manifests");
                None
            }
        }
    }

    async fn write_index(&self, job: &str, manifests: Vec<Manifest>) -> Result<()> {
        let path = index_path(job);
        let idx = Index {
            index_version: INDEX_VERSION,
            job: job.to_string(),
            updated_at: Utc::now(),
            manifests,
        };
        let body = zstd_encode(&serde_json::to_vec(&idx)?).await?;
        self.op
            .write(&path, body)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e, &path))
    }

    /// Committed and partial backups of `job` here: one listing of the job's folder, the
    /// index, and the manifests the index does not know.
    pub async fn scan(&self, job: &str) -> Result<Scan> {
        let (ids, index) = tokio::join!(self.list_backup_ids(job), self.read_index(job));
        let ids = ids?;
        let had_index = index.is_some();
        let mut index = index.unwrap_or_default();
        let listed: BTreeSet<&String> = ids.iter().collect();
        let forgotten = index.keys().any(|id| !listed.contains(id));
        index.retain(|id, _| listed.contains(id));
        let unknown: Vec<String> = ids
            .iter()
            .filter(|id| !index.contains_key(*id))
            .cloned()
            .collect();
        let read: Vec<(String, Option<Manifest>)> =
            futures::stream::iter(unknown.into_iter().map(|id| self.read_one(job, id)))
                .buffer_unordered(READ_CONCURRENCY)
                .collect::<Vec<Result<_>>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
        let mut partial = Vec::new();
        let mut learned = false;
        for (id, m) in read {
            match m {
                Some(m) => {
                    learned = true;
                    index.insert(id, m);
                }
                None => partial.push(id),
            }
        }
        partial.sort();
        let committed: Vec<Manifest> = index.into_values().collect();
        if learned || forgotten || (!had_index && !committed.is_empty()) {
            if let Err(e) = self.write_index(job, committed.clone()).await {
                tracing::debug!(region = %self.name, error = %e, "could not refresh the index");
            }
        }
        Ok(Scan { committed, partial })
    }

    async fn read_one(&self, job: &str, id: String) -> Result<(String, Option<Manifest>)> {
        let m = self.read_manifest(job, &id).await?;
        Ok((id, m))
    }

    /// After a commit: add `m` to its job's index (read, add, write). A failure is logged;
    /// the next listing repairs the index.
    pub async fn index_add(&self, m: &Manifest) {
        let mut all = self.read_index(&m.job).await.unwrap_or_default();
        all.insert(m.id.clone(), m.clone());
        if let Err(e) = self.write_index(&m.job, all.into_values().collect()).await {
            tracing::warn!(region = %self.name, error = %e, "could not update the index; the next listing repairs it");
        }
    }

    /// Before deleting manifests: take `ids` out of the index. When the index cannot be
    /// rewritten it is deleted (readers rebuild it from the manifests); when neither works,
    /// an error, and the caller must delete nothing.
    pub async fn index_remove(&self, job: &str, ids: &BTreeSet<String>) -> Result<()> {
        let Some(mut all) = self.read_index(job).await else {
            return self.drop_index(job).await;
        };
        all.retain(|id, _| !ids.contains(id));
        match self.write_index(job, all.into_values().collect()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(region = %self.name, error = %e, "could not rewrite the index; deleting it");
                self.drop_index(job).await
            }
        }
    }

    async fn drop_index(&self, job: &str) -> Result<()> {
        let path = index_path(job);
        match self.op.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e, &path).hint(
                "the index must not outlive the manifests it lists: fix the region's write access, then prune again",
            )),
        }
    }
}

async fn zstd_encode(b: &[u8]) -> Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::ZstdEncoder::with_quality(
        b,
        async_compression::Level::Default,
    )
    .read_to_end(&mut out)
    .await?;
    Ok(out)
}

async fn zstd_decode(b: &[u8]) -> Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    async_compression::tokio::bufread::ZstdDecoder::new(b)
        .read_to_end(&mut out)
        .await
        .map_err(|e| Error::failed(format!("not a zstd index: {e}")))?;
    Ok(out)
}
