//! The repository layout, the same in every region:
//!
//! ```text
//! <root>/drctl-repository.json              format version; written once
//! <root>/backups/<job>/<id>/<artifact>...   payloads
//! <root>/backups/<job>/<id>/manifest.json   written LAST: the commit point
//! <root>/verifications/<job>/<id>/<time>.json  verification results (`verify`)
//! <root>/locks/<name>/<nonce>.json           leases (`lease.rs`)
//! <root>/indexes/<job>.json.zst              every manifest of the job: a cache (`index.rs`)
//! ```

use super::Region;
use crate::error::{Error, Result};
use crate::manifest::{is_backup_id, Manifest, FORMAT_VERSION};
use serde::{Deserialize, Serialize};

pub const REPO_FILE: &str = "drctl-repository.json";

#[derive(Serialize, Deserialize)]
struct RepoInfo {
    format_version: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    created_by: String,
}

/// A repository (or manifest) written by a newer drctl: never read, let alone deleted, by
/// code that does not know what it means.
fn newer_format(region: &str, what: &str, v: u64) -> Error {
    Error::failed(format!(
        "region {region}: {what} is format {v}, newer than this drctl understands ({FORMAT_VERSION}); nothing was read or changed"
    ))
    .hint(format!("upgrade drctl (this is {}) to one that reads format {v}", env!("CARGO_PKG_VERSION")))
}

pub fn backup_dir(job: &str, id: &str) -> String {
    format!("backups/{job}/{id}/")
}

pub fn manifest_path(job: &str, id: &str) -> String {
    format!("backups/{job}/{id}/manifest.json")
}

impl Region {
    /// Create `drctl-repository.json` if absent; refuse a repository of a newer format.
    pub async fn ensure_repository(&self) -> Result<()> {
        if self.repo_info().await?.is_some() {
            return Ok(());
        }
        let info = RepoInfo {
            format_version: FORMAT_VERSION,
            created_at: chrono::Utc::now(),
            created_by: format!("drctl {}", env!("CARGO_PKG_VERSION")),
        };
        let body = serde_json::to_vec_pretty(&info)?;
        self.op
            .write(REPO_FILE, body)
            .await
            .map_err(|e| self.err(e, REPO_FILE))?;
        Ok(())
    }

    /// The repository file, refused when it is not one or is of a newer format; `None` when
    /// absent (an empty or new repository).
    async fn repo_info(&self) -> Result<Option<RepoInfo>> {
        let buf = match self.op.read(REPO_FILE).await {
            Ok(buf) => buf,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err(e, REPO_FILE)),
        };
        let info: RepoInfo = serde_json::from_slice(&buf.to_vec()).map_err(|e| {
            Error::failed(format!(
                "region {}: {REPO_FILE} is not a drctl repository file: {e}",
                self.name
            ))
            .hint("check the region's root in the config: it must point at a drctl repository")
        })?;
        if info.format_version > FORMAT_VERSION {
            return Err(newer_format(
                &self.name,
                REPO_FILE,
                info.format_version.into(),
            ));
        }
        Ok(Some(info))
    }

    pub fn err(&self, e: opendal::Error, what: &str) -> Error {
        Error::from(e).context(format!("region {} ({})", self.name, what))
    }

    pub async fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let path = manifest_path(&m.job, &m.id);
        let body = serde_json::to_vec_pretty(m)?;
        self.op
            .write(&path, body)
            .await
            .map_err(|e| self.err(e, &path))?;
        Ok(())
    }

    /// Read one backup's manifest; `Ok(None)` when it does not exist (incomplete or absent).
    pub async fn read_manifest(&self, job: &str, id: &str) -> Result<Option<Manifest>> {
        let path = manifest_path(job, id);
        match self.op.read(&path).await {
            Ok(buf) => {
                // The version first: a newer format may not even parse as this one.
                let invalid = |e: serde_json::Error| {
                    Error::failed(format!(
                        "region {}: {path} is not a valid manifest: {e}",
                        self.name
                    ))
                    .hint("the copy in this region is damaged; restore from another region")
                };
                let v: serde_json::Value =
                    serde_json::from_slice(&buf.to_vec()).map_err(invalid)?;
                if let Some(n) = v.get("format_version").and_then(|n| n.as_u64()) {
                    if n > u64::from(FORMAT_VERSION) {
                        return Err(newer_format(&self.name, &path, n));
                    }
                }
                Ok(Some(serde_json::from_value(v).map_err(invalid)?))
            }
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(e, &path)),
        }
    }

    /// Jobs that have a `backups/<job>/` folder in this region.
    pub async fn list_jobs(&self) -> Result<Vec<String>> {
        self.list_dirs("backups/").await
    }

    /// Refuse a repository of a newer format than this drctl understands; read-only. Every
    /// reader passes here (listing goes through `list_backup_ids`), once per region and process.
    pub async fn check_format(&self) -> Result<()> {
        self.format_checked
            .get_or_try_init(|| async { self.repo_info().await.map(|_| ()) })
            .await
            .map(|_| ())
    }

    /// Backup ids under `backups/<job>/`, complete or not, oldest first.
    pub async fn list_backup_ids(&self, job: &str) -> Result<Vec<String>> {
        self.check_format().await?;
        let mut ids = self.list_dirs(&format!("backups/{job}/")).await?;
        ids.retain(|i| is_backup_id(i));
        ids.sort();
        Ok(ids)
    }

    /// Complete backups (those with a manifest) of one job, oldest first (through the
    /// job's index, `index.rs`).
    pub async fn list_manifests(&self, job: &str) -> Result<Vec<Manifest>> {
        Ok(self.scan(job).await?.committed)
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let entries = match self.op.list(prefix).await {
            Ok(e) => e,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e, prefix)),
        };
        let mut names: Vec<String> = entries
            .iter()
            .filter(|e| e.path() != prefix && e.path().ends_with('/'))
            .map(|e| e.name().trim_end_matches('/').to_string())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Record a verification result at `verifications/<job>/<id>/<time>.json`.
    pub async fn write_verification(
        &self,
        job: &str,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
        rec: &serde_json::Value,
    ) -> Result<()> {
        let path = format!(
            "verifications/{job}/{id}/{}.json",
            at.format("%Y%m%dT%H%M%S%.3fZ")
        );
        let body = serde_json::to_vec_pretty(rec)?;
        self.op
            .write(&path, body)
            .await
            .map_err(|e| self.err(e, &path))?;
        Ok(())
    }

    /// The newest verification record of each backup of `job` in this region (32 backups'
    /// records read at once).
    pub async fn latest_verifications(
        &self,
        job: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        use futures::StreamExt;
        let ids = self.list_dirs(&format!("verifications/{job}/")).await?;
        let found: Vec<Option<(String, serde_json::Value)>> =
            futures::stream::iter(ids.into_iter().map(|id| self.newest_verification(job, id)))
                .buffer_unordered(32)
                .collect::<Vec<Result<_>>>()
                .await
                .into_iter()
                .collect::<Result<_>>()?;
        let mut out: Vec<_> = found.into_iter().flatten().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn newest_verification(
        &self,
        job: &str,
        id: String,
    ) -> Result<Option<(String, serde_json::Value)>> {
        let dir = format!("verifications/{job}/{id}/");
        let entries = self.op.list(&dir).await.map_err(|e| self.err(e, &dir))?;
        let Some(newest) = entries
            .iter()
            .map(|e| e.path())
            .filter(|p| p.ends_with(".json"))
            .max()
        else {
            return Ok(None);
        };
        let buf = self
            .op
            .read(newest)
            .await
            .map_err(|e| self.err(e, newest))?;
        match serde_json::from_slice(&buf.to_vec()) {
            Ok(v) => Ok(Some((id, v))),
            Err(e) => {
                tracing::warn!(region = %self.name, path = newest, error = %e, "ignoring an unreadable verification record");
                Ok(None)
            }
        }
    }

    /// Remove everything under a backup's folder (a failed run's partial objects); in an
    /// Object Lock region, every version of it.
    pub async fn remove_backup(&self, job: &str, id: &str) -> Result<()> {
        let dir = backup_dir(job, id);
        if self.lock.is_some() {
            return self.remove_versions(&dir).await;
        }
        self.op
            .delete_with(&dir)
            .recursive(true)
            .await
            .map_err(|e| self.err(e, &dir))
    }
}
