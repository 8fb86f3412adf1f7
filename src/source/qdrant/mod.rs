//! Qdrant, through its REST API (v1.x), one artifact per collection:
//! `POST /collections/{name}/snapshots?wait=true` makes a server-side snapshot,
//! `GET /collections/{name}/snapshots/{snapshot}` streams it into the pipeline (its SHA-256 is
//! checked against the checksum Qdrant reported), and
//! `DELETE /collections/{name}/snapshots/{snapshot}` removes it afterwards — also when the
//! backup fails. Restore uploads it:
//! `POST /collections/{name}/snapshots/upload?priority=snapshot&checksum=…` (multipart field
//! `snapshot`), into the same or a renamed collection.
//!
//! No Qdrant server runs where drctl is tested: `tests/it/qdrant.rs` is a contract test
//! against a stub that implements exactly these documented endpoints.

use super::http::{seg, Api};
use super::{
    ArtifactStream, BackupSource, ByteReader, RestoreOptions, RestoreTarget, SnapshotInfo,
    SourceRun,
};
mod kind;
pub use kind::QdrantSpec;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use async_trait::async_trait;
use futures::TryStreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

fn api(url: &str, spec: &QdrantSpec) -> Result<Api> {
    let auth = spec
        .api_key
        .as_ref()
        .map(|k| ("api-key", k.expose().to_string()));
    Api::new("Qdrant", url, auth)
}

/// Qdrant wraps every answer as `{"result": …, "status": "ok", "time": …}`.
#[derive(Deserialize)]
struct Answer<T> {
    result: T,
}

#[derive(Deserialize)]
struct Snapshot {
    name: String,
    #[serde(default)]
    checksum: Option<String>,
}

/// The backup side: the spec and its client.
pub type QdrantSource = super::http::RestSource<QdrantSpec>;

/// The backup side for `spec`, with its client.
pub fn source(spec: QdrantSpec) -> Result<QdrantSource> {
    let api = api(&spec.url, &spec)?;
    Ok(QdrantSource { spec, api })
}

#[async_trait]
impl BackupSource for QdrantSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        let root: Value = self.api.get("/").await?;
        let version = root["version"].as_str().unwrap_or("unknown").to_string();
        let listed: Answer<Value> = self.api.get("/collections").await?;
        let all: Vec<String> = listed.result["collections"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let chosen = self
            .api
            .pick_collections(all, |c| c.as_str(), &self.spec.collections)?;
        Ok(Box::new(QdrantRun {
            api: self.api.clone(),
            info: SnapshotInfo {
                server_version: version,
                consistent_at: chrono::Utc::now(),
            },
            todo: chosen.into(),
            current: None,
        }))
    }
}

/// The snapshot being streamed.
struct Current {
    collection: String,
    snapshot: Snapshot,
    points: Option<u64>,
    sha: Arc<Mutex<Sha256>>,
}

struct QdrantRun {
    api: Api,
    info: SnapshotInfo,
    todo: VecDeque<String>,
    current: Option<Current>,
}

impl QdrantRun {
    fn snapshot_path(c: &Current) -> String {
        format!(
            "/collections/{}/snapshots/{}",
            seg(&c.collection),
            seg(&c.snapshot.name)
        )
    }

    /// Remove the server-side snapshot; failures are logged (the backup's outcome stands).
    async fn delete_snapshot(&self, c: &Current) {
        let path = format!("{}?wait=true", Self::snapshot_path(c));
        if let Err(e) = self.api.delete(&path).await {
            tracing::warn!(collection = %c.collection, snapshot = %c.snapshot.name, error = %e, "could not delete the server-side snapshot; delete it by hand");
        }
    }
}

#[async_trait]
impl SourceRun for QdrantRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        let Some(collection) = self.todo.pop_front() else {
            return Ok(None);
        };
        let cpath = format!("/collections/{}", seg(&collection));
        let described: Answer<Value> = self.api.get(&cpath).await?;
        let points = described.result["points_count"].as_u64();
        let made: Answer<Snapshot> = self
            .api
            .post(
                &format!("{cpath}/snapshots?wait=true"),
                &serde_json::json!({}),
            )
            .await?;
        let cur = Current {
            collection: collection.clone(),
            snapshot: made.result,
            points,
            sha: Arc::new(Mutex::new(Sha256::new())),
        };
        let path = Self::snapshot_path(&cur);
        let resp = self
            .api
            .send(Method::GET, &path, self.api.request(Method::GET, &path))
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.delete_snapshot(&cur).await;
                return Err(e);
            }
        };
        let sha = cur.sha.clone();
        let body = resp
            .bytes_stream()
            .map_err(std::io::Error::other)
            .inspect_ok(move |b| sha.lock().unwrap_or_else(|p| p.into_inner()).update(b));
        tracing::info!(%collection, snapshot = %cur.snapshot.name, "Qdrant snapshot streaming");
        self.current = Some(cur);
        Ok(Some(ArtifactStream {
            file_name: format!("{collection}.snapshot"),
            name: collection,
            reader: Box::new(tokio_util::io::StreamReader::new(body)),
            size_hint: None,
            confirm: None,
        }))
    }

    async fn finish_artifact(&mut self) -> Result<Value> {
        let c = self
            .current
            .take()
            .ok_or_else(|| Error::failed("no Qdrant snapshot in progress"))?;
        self.delete_snapshot(&c).await;
        let got = hex::encode(
            c.sha
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .finalize(),
        );
        if let Some(want) = c.snapshot.checksum.as_deref() {
            if want != got {
                return Err(Error::failed(format!(
                    "collection {}: the downloaded snapshot's SHA-256 {got} differs from the {want} Qdrant reported",
                    c.collection
                ))
                .hint("the backup was not committed; run it again"));
            }
        }
        Ok(serde_json::json!({
            "collection": c.collection, "points_count": c.points,
            "snapshot": c.snapshot.name, "snapshot_sha256": got,
        }))
    }

    async fn abort(&mut self) {
        if let Some(c) = self.current.take() {
            self.delete_snapshot(&c).await;
        }
    }
}

/// `drctl restore --to http://qdrant:6333`: upload each snapshot into its collection (or the
/// `--rename`d one). Qdrant replaces an existing collection on upload, so an existing one is
/// refused unless `--clean`.
pub struct QdrantTarget {
    api: Api,
    opts: RestoreOptions,
}

impl QdrantTarget {
    pub fn new(spec: &QdrantSpec, to: &str, opts: RestoreOptions) -> Result<Self> {
        let hint = "the API key comes from the job's source config";
        super::http::check_target(to, "Qdrant", "http(s)://host:6333", hint)?;
        Ok(QdrantTarget {
            api: api(to, spec)?,
            opts,
        })
    }
}

#[async_trait]
impl RestoreTarget for QdrantTarget {
    fn describe(&self) -> String {
        self.api.base().to_string()
    }

    async fn prepare(&self, artifacts: &[Artifact]) -> Result<()> {
        let targets: Vec<(String, String)> = artifacts
            .iter()
            .map(|a| self.opts.renamed(&a.name))
            .map(|n| (n.to_string(), format!("/collections/{}", seg(n))))
            .collect();
        self.api.refuse_existing(&targets, self.opts.clean).await
    }

    async fn restore(&self, a: &Artifact, reader: ByteReader) -> Result<()> {
        let name = self.opts.renamed(&a.name);
        let mut path = format!(
            "/collections/{}/snapshots/upload?wait=true&priority=snapshot",
            seg(name)
        );
        if let Some(sha) = a.facts["snapshot_sha256"].as_str() {
            path.push_str(&format!("&checksum={sha}"));
        }
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(reader));
        let part = reqwest::multipart::Part::stream(body)
            .file_name(format!("{name}.snapshot"))
            .mime_str("application/octet-stream")
            .map_err(|e| Error::failed(e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("snapshot", part);
        let rb = self.api.request(Method::POST, &path).multipart(form);
        self.api.send(Method::POST, &path, rb).await?;
        tracing::info!(collection = %name, "Qdrant snapshot uploaded");
        Ok(())
    }
}

#[derive(Deserialize)]
struct Counted {
    count: u64,
}

#[async_trait]
impl super::vector::ScratchCollections for QdrantTarget {
    /// `POST /collections/{name}/points/count` with `exact: true`.
    async fn count(&self, collection: &str) -> Result<u64> {
        let a: Answer<Counted> = self
            .api
            .post(
                &format!("/collections/{}/points/count", seg(collection)),
                &serde_json::json!({ "exact": true }),
            )
            .await?;
        Ok(a.result.count)
    }

    async fn drop_collection(&self, collection: &str) -> Result<()> {
        let path = format!("/collections/{}", seg(collection));
        if self.api.exists(&path).await? {
            self.api.delete(&path).await?;
        }
        Ok(())
    }
}
