//! Milvus, through its gRPC API: one artifact per collection (`<collection>.milvus.bin`, see
//! `format`), holding what recreating the collection needs — schema, partitions, index
//! definitions, consistency level, properties — and every row, read by primary-key paging
//! in bounded pages and streamed.
//!
//! The client is generated from the pinned protos in `proto/milvus/` rather than taken from
//! `milvus-sdk-rust`: the SDK brings a second HTTP and TLS stack (reqwest 0.12, rustls with
//! ring) and converts rows into its own types, while a backup wants the server's own
//! `FieldData` pages — stored as they arrive (vectors as bytes, bit for bit) and inserted back
//! unchanged.
//!
//! Consistency: Milvus has no snapshot across collections, nor (before 2.4) a read pinned to
//! a past instant. Each collection is counted at strong consistency and every page is read
//! with that count's guarantee timestamp, so every write acknowledged before the collection's
//! read began is in the backup; writes that land during it may be, in part. `consistent_at`
//! is the instant before the first collection was read: RPO is never understated.

mod client;
mod format;
mod kind;
pub mod proto;
mod restore;

pub use kind::MilvusSpec;
pub use restore::MilvusTarget;

use super::spawned::{send, Chunks, Spawned};
use super::{ArtifactStream, BackupSource, SnapshotInfo, SourceRun};
use crate::error::{Error, Result};
use client::Client;
use format::{frame, Header, Index, Trailer, END, HEADER, MAGIC};
use prost::Message;
use proto::common::LoadState;
use proto::milvus::InsertRequest;
use proto::schema::{field_data, scalar_field, CollectionSchema, DataType, FieldData};
use serde_json::Value;
use std::collections::VecDeque;

/// The partition name under which a partition-key collection's rows are read and counted.
pub(crate) const BY_KEY: &str = "(by partition key)";
/// Milvus refuses a query whose offset + limit exceeds this.
const MAX_PAGE_ROWS: usize = 16_384;
/// The size a page aims at when `batch_rows` is not set: well under the server's 64 MiB
/// request limit when it is inserted back, and small enough that the pages in flight (the
/// reply being decoded, the frame being encoded, four queued for the pipeline) keep peak
/// memory flat and low.
const PAGE_BYTES: usize = 2 << 20;

pub struct MilvusSource {
    spec: MilvusSpec,
}

#[async_trait::async_trait]
impl BackupSource for MilvusSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        let client = Client::connect(&self.spec.conn(&self.spec.url)).await?;
        let version = client.version().await?;
        let all = client.collections().await?;
        let chosen = super::http::pick_collections(
            "Milvus",
            client.base(),
            all,
            |c| c.as_str(),
            &self.spec.collections,
        )?;
        let mut unloaded = Vec::new();
        for c in &chosen {
            if client.load_state(c).await? != LoadState::Loaded as i32 {
                unloaded.push(c.as_str());
            }
        }
        if !unloaded.is_empty() {
            return Err(Error::failed(format!(
                "Milvus at {}: collection(s) {} are not loaded, and Milvus serves reads only from loaded collections",
                client.base(),
                unloaded.join(", ")
            ))
            .hint("load them (pymilvus: client.load_collection(name)), or list only loaded ones in source.collections"));
        }
        let consistent_at = chrono::Utc::now();
        tracing::info!(server = %client.base(), %version, collections = chosen.len(), "Milvus export starting");
        Ok(Box::new(MilvusRun {
            client,
            batch_rows: self.spec.batch_rows,
            info: SnapshotInfo {
                server_version: version,
                consistent_at,
            },
            todo: chosen.into(),
            current: Spawned::default(),
        }))
    }
}

struct MilvusRun {
    client: Client,
    batch_rows: Option<u32>,
    info: SnapshotInfo,
    todo: VecDeque<String>,
    current: Spawned,
}

#[async_trait::async_trait]
impl SourceRun for MilvusRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        let Some(name) = self.todo.pop_front() else {
            return Ok(None);
        };
        let (client, version) = (self.client.clone(), self.info.server_version.clone());
        let (batch_rows, coll) = (self.batch_rows, name.clone());
        let file_name = format!("{name}.milvus.bin");
        Ok(Some(self.current.start(name, file_name, move |tx| {
            Exporter {
                client,
                name: coll,
                version,
                batch_rows,
                tx,
            }
            .run()
        })))
    }

    async fn finish_artifact(&mut self) -> Result<Value> {
        self.current.finish("Milvus").await
    }

    async fn abort(&mut self) {
        self.current.abort();
    }
}

/// Reads one collection into the artifact's frames.
struct Exporter {
    client: Client,
    name: String,
    version: String,
    batch_rows: Option<u32>,
    tx: Chunks,
}

impl Exporter {
    async fn send(&self, b: Vec<u8>) -> Result<()> {
        send(&self.tx, b).await
    }

    async fn run(self) -> Result<Value> {
        let c = &self.client;
        let desc = c.describe(&self.name).await?;
        let schema = desc.schema.clone().unwrap_or_default();
        let pk = schema
            .fields
            .iter()
            .find(|f| f.is_primary_key)
            .cloned()
            .ok_or_else(|| Error::failed("the schema has no primary key"))?;
        let partition_key = schema.fields.iter().any(|f| f.is_partition_key);
        let partitions = c.partitions(&self.name).await?;
        let indexes = c.indexes(&self.name).await?;
        let guarantee = c.now().await;
        let count = c.count(&self.name, guarantee).await?;
        let header = Header {
            collection: self.name.clone(),
            server_version: self.version.clone(),
            schema: b64(&schema.encode_to_vec()),
            shards_num: desc.shards_num,
            consistency_level: desc.consistency_level,
            num_partitions: desc.num_partitions,
            properties: desc.properties.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
            partitions: partitions.clone(),
            partition_key,
            indexes: indexes
                .iter()
                .map(|i| Index {
                    field: i.field_name.clone(),
                    name: i.index_name.clone(),
                    params: i.params.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
                })
                .collect(),
            guarantee_ts: guarantee.unwrap_or(0),
        };
        let mut out = MAGIC.to_vec();
        out.extend(frame(HEADER, &serde_json::to_vec(&header)?));
        self.send(out).await?;
        let page = page_rows(&schema, self.batch_rows);
        let mut seen = Trailer::default();
        // A partition-key collection cannot be read partition by partition (Milvus refuses
        // to name one): it is read whole, its rows counted under `BY_KEY`.
        let reads = if partition_key {
            vec![BY_KEY.to_string()]
        } else {
            partitions.clone()
        };
        for p in &reads {
            let n = self.partition(p, &pk.name, pk.data_type, page, guarantee).await?;
            seen.rows += n;
            seen.partitions.insert(p.clone(), n);
        }
        self.send(frame(END, &serde_json::to_vec(&seen)?)).await?;
        if seen.rows != count {
            tracing::warn!(collection = %self.name, read = seen.rows, counted = count,
                "the rows read differ from count(*) at the start: the collection changed during the backup");
        }
        tracing::info!(collection = %self.name, rows = seen.rows, partitions = partitions.len(), "Milvus collection exported");
        Ok(serde_json::json!({
            "collection": self.name,
            "rows": seen.rows,
            "partitions": seen.partitions,
            "count_at_start": count,
            "guarantee_ts": guarantee,
            "indexes": indexes.len(),
            "point_in_time": false,
        }))
    }

    /// Page through one partition in primary-key order. Returns its row count.
    async fn partition(
        &self,
        partition: &str,
        pk: &str,
        pk_type: i32,
        page: usize,
        guarantee: Option<u64>,
    ) -> Result<u64> {
        let mut cursor: Option<String> = None;
        let mut n = 0u64;
        loop {
            let expr = match &cursor {
                None => String::new(),
                Some(c) => format!("{pk} > {c}"),
            };
            let named = match partition {
                BY_KEY => Vec::new(),
                p => vec![p.to_string()],
            };
            let r = self
                .client
                .query(&self.name, expr, named, Some(page), guarantee)
                .await?;
            let rows = client::rows_in(&r.fields_data);
            if rows == 0 {
                return Ok(n);
            }
            cursor = Some(last_key(&r.fields_data, pk, pk_type)?);
            n += rows as u64;
            let batch = InsertRequest {
                partition_name: partition.into(),
                fields_data: r.fields_data,
                num_rows: rows as u32,
                ..Default::default()
            };
            self.send(format::batch_frame(&batch)).await?;
            if rows < page {
                return Ok(n);
            }
        }
    }
}

/// The page's largest primary key, as an expression literal: the next page starts after it.
fn last_key(fields: &[FieldData], pk: &str, pk_type: i32) -> Result<String> {
    let col = fields
        .iter()
        .find(|f| f.field_name == pk)
        .and_then(|f| match &f.field {
            Some(field_data::Field::Scalars(s)) => s.data.as_ref(),
            _ => None,
        });
    match col {
        Some(scalar_field::Data::LongData(l)) if pk_type == DataType::Int64 as i32 => l
            .data
            .iter()
            .max()
            .map(|m| m.to_string())
            .ok_or_else(|| Error::failed("an empty primary-key column")),
        Some(scalar_field::Data::StringData(s)) => s
            .data
            .iter()
            .max()
            .map(|m| quote(m))
            .ok_or_else(|| Error::failed("an empty primary-key column")),
        _ => Err(Error::failed(format!(
            "the query did not return the primary key {pk}"
        ))),
    }
}

/// A string literal of Milvus's expression language.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Rows per page: `batch_rows` when set, otherwise as many as fit `PAGE_BYTES` by the
/// schema's widths (vectors exactly, text and JSON by a generous guess); never above the
/// server's cap.
fn page_rows(schema: &CollectionSchema, batch_rows: Option<u32>) -> usize {
    if let Some(b) = batch_rows {
        return (b as usize).clamp(1, MAX_PAGE_ROWS);
    }
    let dim = |f: &proto::schema::FieldSchema| {
        f.type_params
            .iter()
            .find(|p| p.key == "dim")
            .and_then(|p| p.value.parse::<usize>().ok())
            .unwrap_or(1)
    };
    let mut row = if schema.enable_dynamic_field { 256 } else { 0 };
    for f in &schema.fields {
        row += match DataType::try_from(f.data_type).unwrap_or(DataType::None) {
            DataType::FloatVector => 4 * dim(f),
            DataType::BinaryVector => dim(f).div_ceil(8),
            DataType::Float16Vector | DataType::BFloat16Vector => 2 * dim(f),
            DataType::Int8Vector => dim(f),
            DataType::VarChar | DataType::String | DataType::Json | DataType::Array => 512,
            DataType::SparseFloatVector => 1024,
            _ => 8,
        };
    }
    (PAGE_BYTES / row.max(1)).clamp(1, MAX_PAGE_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_keys_are_quoted_for_the_expression_language() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn pages_fit_the_byte_budget_and_the_servers_cap() {
        let field = |t: DataType, dim: Option<&str>| proto::schema::FieldSchema {
            data_type: t as i32,
            type_params: dim.map(|d| vec![client::kv("dim", d)]).unwrap_or_default(),
            ..Default::default()
        };
        let schema = |fields| CollectionSchema {
            fields,
            ..Default::default()
        };
        let wide = schema(vec![field(DataType::Int64, None), field(DataType::FloatVector, Some("768"))]);
        assert_eq!(page_rows(&wide, None), PAGE_BYTES / (8 + 3072));
        let narrow = schema(vec![field(DataType::Int64, None), field(DataType::BinaryVector, Some("16"))]);
        assert_eq!(page_rows(&narrow, None), MAX_PAGE_ROWS);
        assert_eq!(page_rows(&wide, Some(100_000)), MAX_PAGE_ROWS);
        assert_eq!(page_rows(&wide, Some(7)), 7);
    }
}
