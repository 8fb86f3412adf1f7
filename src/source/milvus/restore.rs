//! `drctl restore --to http://milvus:19530`: recreate each collection from its header
//! (schema, partitions, consistency level, properties), insert its batches as they were
//! read, rebuild the indexes, load it, and check that the server counts the backup's rows.
//! A collection that exists is refused unless `--clean`; a restore that fails drops the
//! collection it was creating, so no half-restored collection is left looking complete.

use super::client::{kv, schema_for_create, Client, Conn};
use super::format::{Batches, Header, Trailer};
use super::proto::milvus::{CreateCollectionRequest, IndexDescription};
use super::proto::schema::CollectionSchema;
use super::MilvusSpec;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use crate::source::{ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use prost::Message;
use std::time::Duration;

/// How long a restored collection may take to load before the restore fails.
const LOAD_WAIT: Duration = Duration::from_secs(600);

pub struct MilvusTarget {
    conn: Conn,
    opts: RestoreOptions,
}

impl MilvusTarget {
    /// `to` is `http(s)://host:port`, or `http(s)://host:port/DB` to restore into database
    /// `DB` (which must exist) instead of the job's own.
    pub fn new(spec: &MilvusSpec, to: &str, opts: RestoreOptions) -> Result<Self> {
        let hint = "add /DB to restore into another database; the credentials come from the job's source config";
        crate::source::http::check_target(to, "Milvus", "http(s)://host:19530[/DB]", hint)?;
        let url = url::Url::parse(to)
            .map_err(|e| Error::usage(format!("--to {to:?}: not a URL: {e}")))?;
        let mut conn = spec.conn(url.origin().ascii_serialization().as_str());
        match url.path().trim_matches('/') {
            "" => {}
            db if db.contains('/') => {
                return Err(Error::usage(format!(
                    "--to {to:?}: the path names one Milvus database, e.g. http://host:19530/restored"
                )))
            }
            db => conn.db = crate::source::percent_decode(db),
        }
        Ok(MilvusTarget { conn, opts })
    }

    async fn client(&self) -> Result<Client> {
        Client::connect(&self.conn).await
    }
}

#[async_trait]
impl RestoreTarget for MilvusTarget {
    fn describe(&self) -> String {
        format!("{} (database {})", self.conn.url, self.conn.db)
    }

    async fn prepare(&self, artifacts: &[Artifact]) -> Result<()> {
        let c = self.client().await?;
        let mut existing = Vec::new();
        for a in artifacts {
            let name = self.opts.renamed(&a.name);
            if c.has(name).await? {
                existing.push(name.to_string());
            }
        }
        crate::source::http::refuse_existing("Milvus", c.base(), &existing, self.opts.clean)
    }

    async fn restore(&self, a: &Artifact, reader: ByteReader) -> Result<()> {
        let c = self.client().await?;
        let name = self.opts.renamed(&a.name).to_string();
        let (header, mut batches) = Batches::open(reader)
            .await
            .map_err(|e| e.context(&a.path))?;
        if c.has(&name).await? {
            c.drop(&name).await?;
        }
        let schema = create(&c, &name, &header).await?;
        match fill(&c, &name, &header, &schema, &mut batches).await {
            Ok(t) => {
                tracing::info!(collection = %name, rows = t.rows, partitions = t.partitions.len(), "Milvus collection restored");
                Ok(())
            }
            Err(e) => {
                if let Err(d) = c.drop(&name).await {
                    tracing::warn!(collection = %name, error = %d, "could not drop the half-restored collection");
                }
                Err(e.context(format!("collection {name} (dropped again)")))
            }
        }
    }
}

/// Create the collection and its partitions as the header describes them. Returns the schema.
async fn create(c: &Client, name: &str, h: &Header) -> Result<CollectionSchema> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&h.schema)
        .map_err(|e| Error::failed(format!("the export's schema is not base64: {e}")))?;
    let schema = CollectionSchema::decode(&raw[..])
        .map_err(|e| Error::failed(format!("the export's schema does not decode: {e}")))?;
    let req = CreateCollectionRequest {
        collection_name: name.into(),
        schema: schema_for_create(schema.clone(), name).encode_to_vec(),
        shards_num: h.shards_num,
        consistency_level: h.consistency_level,
        properties: h.properties.iter().map(|(k, v)| kv(k, v)).collect(),
        num_partitions: if h.partition_key { h.num_partitions } else { 0 },
        ..Default::default()
    };
    c.create(req).await?;
    if !h.partition_key {
        for p in h.partitions.iter().filter(|p| *p != "_default") {
            c.create_partition(name, p).await?;
        }
    }
    Ok(schema)
}

/// Insert every batch, check the trailer, rebuild the indexes, load.
async fn fill(
    c: &Client,
    name: &str,
    h: &Header,
    schema: &CollectionSchema,
    batches: &mut Batches,
) -> Result<Trailer> {
    // Milvus refuses values for an auto_id primary key: the server assigns new ones.
    let auto_pk = schema
        .fields
        .iter()
        .find(|f| f.is_primary_key && f.auto_id)
        .map(|f| f.name.clone());
    if let Some(pk) = &auto_pk {
        tracing::warn!(collection = %name, field = %pk, "the primary key is auto_id: Milvus assigns the restored rows new ids");
    }
    while let Some(mut b) = batches.next().await? {
        b.collection_name = name.into();
        if h.partition_key {
            b.partition_name.clear();
        }
        if let Some(pk) = &auto_pk {
            b.fields_data.retain(|f| &f.field_name != pk);
        }
        c.insert(b).await?;
    }
    let seen = batches.counts().clone();
    if finish(c, name, h).await? {
        let got = c.count(name, None).await?;
        if got != seen.rows {
            return Err(Error::failed(format!(
                "the server counts {got} rows after the restore, the backup holds {}",
                seen.rows
            )));
        }
    }
    Ok(seen)
}

/// Flush what was inserted, rebuild every index the backup recorded, and load. Returns
/// whether the collection is loaded (so it can be counted).
async fn finish(c: &Client, name: &str, h: &Header) -> Result<bool> {
    c.flush(name).await?;
    for ix in &h.indexes {
        let desc = IndexDescription {
            field_name: ix.field.clone(),
            index_name: ix.name.clone(),
            params: ix.params.iter().map(|(k, v)| kv(k, v)).collect(),
            ..Default::default()
        };
        c.create_index(name, &desc).await?;
    }
    if h.indexes.is_empty() {
        tracing::warn!(collection = %name, "the backup recorded no index: the collection is restored unloaded (Milvus loads only indexed collections)");
        return Ok(false);
    }
    c.load(name, LOAD_WAIT).await?;
    Ok(true)
}

#[async_trait]
impl crate::source::vector::ScratchCollections for MilvusTarget {
    async fn count(&self, collection: &str) -> Result<u64> {
        let c = self.client().await?;
        c.count(collection, None).await
    }

    async fn drop_collection(&self, collection: &str) -> Result<()> {
        let c = self.client().await?;
        if c.has(collection).await? {
            c.drop(collection).await?;
        }
        Ok(())
    }
}
