//! Chroma: a logical export through the HTTP API (v2), one artifact per collection, in a
//! line-oriented format (JSON Lines, `<collection>.chroma.jsonl`):
//!
//! ```text
//! {"format":"drctl-chroma-export","version":1,"collection":{"name":…,"metadata":…,"configuration_json":…,"schema":…,…}}
//! {"id":"a","embedding":[0.1,…],"metadata":{…}|null,"document":"…"|null,"uri":"…"|null}
//! …one line per record…
//! {"end":{"records":N}}
//! ```
//!
//! Embeddings are f32, written in their shortest round-trip decimal form (as Chroma prints
//! them) and sent back as base64 of little-endian f32 — as Chroma's own Python client does —
//! because Chroma's parsing of long decimals is not always exact: so they come back bit-exact. The trailer makes a truncated artifact detectable. Records are read page by page
//! (`page_size`) and streamed; nothing holds a whole collection.
//!
//! Chroma has no snapshot: pages are read at their own instants, so a collection written
//! during the export may be seen mid-change. `consistent_at` is the export's start (RPO is never
//! understated), and the facts say `"point_in_time": false`.

use super::http::{seg, Api};
use super::{
    ArtifactStream, BackupSource, ByteReader, RestoreOptions, RestoreTarget, SnapshotInfo,
    SourceRun,
};
mod kind;
pub use kind::ChromaSpec;
use super::spawned::{send, Chunks, Spawned};
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use tokio::io::AsyncBufReadExt;

const FORMAT: &str = "drctl-chroma-export";

fn api(url: &str, spec: &ChromaSpec) -> Result<Api> {
    let auth = spec
        .token
        .as_ref()
        .map(|t| ("x-chroma-token", t.expose().to_string()));
    Api::new("Chroma", url, auth)
}

fn db_path(spec: &ChromaSpec) -> String {
    format!(
        "/api/v2/tenants/{}/databases/{}/collections",
        seg(&spec.tenant),
        seg(&spec.database)
    )
}

/// One record as exported and restored.
#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    embedding: Option<Vec<f32>>,
    metadata: Value,
    document: Option<String>,
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    ids: Vec<String>,
    #[serde(default)]
    embeddings: Option<Vec<Option<Vec<f32>>>>,
    #[serde(default)]
    metadatas: Option<Vec<Value>>,
    #[serde(default)]
    documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    uris: Option<Vec<Option<String>>>,
}

/// The backup side: the spec and its client.
pub type ChromaSource = super::http::RestSource<ChromaSpec>;

/// The backup side for `spec`, with its client.
pub fn source(spec: ChromaSpec) -> Result<ChromaSource> {
    let api = api(&spec.url, &spec)?;
    Ok(ChromaSource { spec, api })
}

#[async_trait]
impl BackupSource for ChromaSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        let version: String = self.api.get("/api/v2/version").await?;
        let consistent_at = chrono::Utc::now();
        // Every collection, paginated.
        let mut all: Vec<Value> = Vec::new();
        loop {
            let page: Vec<Value> = self
                .api
                .get(&format!(
                    "{}?limit=100&offset={}",
                    db_path(&self.spec),
                    all.len()
                ))
                .await?;
            let n = page.len();
            all.extend(page);
            if n < 100 {
                break;
            }
        }
        let chosen = self.api.pick_collections(
            all,
            |c| c["name"].as_str().unwrap_or_default(),
            &self.spec.collections,
        )?;
        tracing::info!(server = %self.api.base(), %version, collections = chosen.len(), "Chroma export starting");
        Ok(Box::new(ChromaRun {
            api: self.api.clone(),
            spec: self.spec.clone(),
            info: SnapshotInfo {
                server_version: version,
                consistent_at,
            },
            todo: chosen.into(),
            current: Spawned::default(),
        }))
    }
}

struct ChromaRun {
    api: Api,
    spec: ChromaSpec,
    info: SnapshotInfo,
    todo: VecDeque<Value>,
    current: Spawned,
}

#[async_trait]
impl SourceRun for ChromaRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        let Some(coll) = self.todo.pop_front() else {
            return Ok(None);
        };
        let name = coll["name"].as_str().unwrap_or_default().to_string();
        let (api, base, page) = (self.api.clone(), db_path(&self.spec), self.spec.page_size.max(1));
        let facts_name = name.clone();
        let file_name = format!("{name}.chroma.jsonl");
        Ok(Some(self.current.start(name, file_name, move |tx| async move {
            let records = export(api, base, coll, page, tx).await?;
            Ok(serde_json::json!({ "collection": facts_name, "records": records, "point_in_time": false }))
        })))
    }

    async fn finish_artifact(&mut self) -> Result<Value> {
        self.current.finish("Chroma").await
    }

    async fn abort(&mut self) {
        self.current.abort();
    }
}

/// Page through one collection, writing the export's lines to `tx`. Returns the record count.
async fn export(
    api: Api,
    base: String,
    coll: Value,
    page_size: u32,
    tx: Chunks,
) -> Result<u64> {
    let id = coll["id"].as_str().unwrap_or_default().to_string();
    let send = |b: Vec<u8>| {
        let tx = tx.clone();
        async move { send(&tx, b).await }
    };
    let mut out = serde_json::to_vec(&serde_json::json!({
        "format": FORMAT, "version": 1, "collection": coll,
    }))?;
    out.push(b'\n');
    let mut n = 0u64;
    loop {
        let page: Page = api
            .post(
                &format!("{base}/{}/get", seg(&id)),
                &serde_json::json!({
                    "limit": page_size, "offset": n,
                    "include": ["embeddings", "metadatas", "documents", "uris"],
                }),
            )
            .await?;
        let got = page.ids.len();
        for (i, id) in page.ids.into_iter().enumerate() {
            let line = Line {
                id,
                embedding: page
                    .embeddings
                    .as_ref()
                    .and_then(|e| e.get(i).cloned().flatten()),
                metadata: page
                    .metadatas
                    .as_ref()
                    .and_then(|m| m.get(i).cloned())
                    .unwrap_or(Value::Null),
                document: page
                    .documents
                    .as_ref()
                    .and_then(|d| d.get(i).cloned().flatten()),
                uri: page.uris.as_ref().and_then(|u| u.get(i).cloned().flatten()),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.push(b'\n');
        }
        n += got as u64;
        send(std::mem::take(&mut out)).await?;
        if got < page_size as usize {
            break;
        }
    }
    out = serde_json::to_vec(&serde_json::json!({ "end": { "records": n } }))?;
    out.push(b'\n');
    send(out).await?;
    Ok(n)
}

/// `drctl restore --to http://chroma:8000`: recreate each collection and add its records in
/// batches. A collection that exists is refused unless `--clean` (then it is replaced). If a
/// restore fails, the collection it was creating is deleted again: no half-restored collection
/// is left looking complete.
pub struct ChromaTarget {
    api: Api,
    spec: ChromaSpec,
    opts: RestoreOptions,
}

impl ChromaTarget {
    pub fn new(spec: &ChromaSpec, to: &str, opts: RestoreOptions) -> Result<Self> {
        let hint = "the tenant, database and token come from the job's source config";
        super::http::check_target(to, "Chroma", "http(s)://host:port", hint)?;
        Ok(ChromaTarget {
            api: api(to, spec)?,
            spec: spec.clone(),
            opts,
        })
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{}", db_path(&self.spec), seg(name))
    }
}

#[async_trait]
impl RestoreTarget for ChromaTarget {
    fn describe(&self) -> String {
        self.api.base().to_string()
    }

    async fn prepare(&self, artifacts: &[Artifact]) -> Result<()> {
        let targets: Vec<(String, String)> = artifacts
            .iter()
            .map(|a| self.opts.renamed(&a.name))
            .map(|n| (n.to_string(), self.path(n)))
            .collect();
        self.api.refuse_existing(&targets, self.opts.clean).await
    }

    async fn restore(&self, a: &Artifact, reader: ByteReader) -> Result<()> {
        let name = self.opts.renamed(&a.name).to_string();
        if self.api.exists(&self.path(&name)).await? {
            self.api.delete(&self.path(&name)).await?;
        }
        let mut lines = tokio::io::BufReader::new(reader).lines();
        let header: Value = match lines.next_line().await? {
            Some(l) => serde_json::from_str(&l)?,
            None => return Err(Error::failed(format!("{}: the export is empty", a.path))),
        };
        if header["format"] != FORMAT {
            return Err(Error::failed(format!(
                "{}: not a drctl Chroma export",
                a.path
            )));
        }
        let c = &header["collection"];
        let created: Value = self
            .api
            .post(
                &db_path(&self.spec),
                &serde_json::json!({
                    "name": name, "metadata": c["metadata"],
                    "configuration": c["configuration_json"],
                }),
            )
            .await?;
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let added = add_all(
            &self.api,
            &format!("{}/{}/add", db_path(&self.spec), seg(&id)),
            &mut lines,
            self.spec.page_size.max(1) as usize,
        )
        .await;
        match added {
            Ok(n) => {
                tracing::info!(collection = %name, records = n, "Chroma collection restored");
                Ok(())
            }
            Err(e) => {
                if let Err(d) = self.api.delete(&self.path(&name)).await {
                    tracing::warn!(collection = %name, error = %d, "could not delete the half-restored collection");
                }
                Err(e.context(format!("collection {name} (deleted again)")))
            }
        }
    }
}

#[async_trait]
impl super::vector::ScratchCollections for ChromaTarget {
    async fn count(&self, collection: &str) -> Result<u64> {
        let c: Value = self.api.get(&self.path(collection)).await?;
        let id = c["id"].as_str().unwrap_or_default();
        self.api
            .get(&format!("{}/{}/count", db_path(&self.spec), seg(id)))
            .await
    }

    async fn drop_collection(&self, collection: &str) -> Result<()> {
        if self.api.exists(&self.path(collection)).await? {
            self.api.delete(&self.path(collection)).await?;
        }
        Ok(())
    }
}

/// An embedding as Chroma's base64 form: the f32 values little-endian, base64-encoded.
fn pack(e: &[f32]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = e.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Add the records in batches; the trailer's count must match what was read.
async fn add_all(
    api: &Api,
    path: &str,
    lines: &mut tokio::io::Lines<tokio::io::BufReader<ByteReader>>,
    batch: usize,
) -> Result<u64> {
    let mut buf: Vec<Line> = Vec::with_capacity(batch);
    let mut n = 0u64;
    let flush = |buf: &mut Vec<Line>| {
        let recs = std::mem::take(buf);
        let body = serde_json::json!({
            "ids": recs.iter().map(|r| &r.id).collect::<Vec<_>>(),
            "embeddings": recs.iter().map(|r| r.embedding.as_deref().map(pack)).collect::<Vec<_>>(),
            "metadatas": recs.iter().map(|r| &r.metadata).collect::<Vec<_>>(),
            "documents": recs.iter().map(|r| &r.document).collect::<Vec<_>>(),
            "uris": recs.iter().map(|r| &r.uri).collect::<Vec<_>>(),
        });
        async move { api.post::<Value>(path, &body).await.map(drop) }
    };
    while let Some(l) = lines.next_line().await? {
        let v: Value = serde_json::from_str(&l)?;
        if let Some(end) = v.get("end") {
            if !buf.is_empty() {
                flush(&mut buf).await?;
            }
            let want = end["records"].as_u64().unwrap_or(u64::MAX);
            if want != n {
                return Err(Error::failed(format!(
                    "the export says {want} records but holds {n}"
                )));
            }
            return Ok(n);
        }
        buf.push(serde_json::from_value(v)?);
        n += 1;
        if buf.len() >= batch {
            flush(&mut buf).await?;
        }
    }
    Err(Error::failed(format!(
        "the export ends after {n} records without its trailer (truncated)"
    )))
}

/// `verify --level structure`: every line of an export is JSON, the trailer is there, and it
/// counts the records that precede it. Returns that count.
pub async fn check_export(reader: crate::source::ByteReader) -> Result<u64> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let (mut n, mut line_no, mut end) = (0u64, 0u64, None);
    while let Some(l) = lines
        .next_line()
        .await
        .map_err(|e| Error::failed(format!("reading the export: {e}")))?
    {
        line_no += 1;
        if end.is_some() {
            return Err(Error::failed(format!(
                "line {line_no}: data after the end trailer"
            )));
        }
        let v: serde_json::Value = serde_json::from_str(&l)
            .map_err(|e| Error::failed(format!("line {line_no}: not JSON: {e}")))?;
        if let Some(e) = v.get("end") {
            end = e.get("records").and_then(|r| r.as_u64());
        } else if line_no > 1 {
            n += 1;
        }
    }
    match end {
        Some(t) if t == n => Ok(n),
        Some(t) => Err(Error::failed(format!(
            "the trailer says {t} records, the export holds {n}"
        ))),
        None => Err(Error::failed(format!(
            "no end trailer after {line_no} lines: the export is truncated"
        ))),
    }
}
