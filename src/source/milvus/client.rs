//! A thin wrapper over the generated client: one place for the connection (TLS, timeouts,
//! message size), the auth and database headers, and turning both a transport error and a
//! Milvus `Status` that is not success into an `Error` that names the call and the server.

use super::proto::common::{ConsistencyLevel, Status};
use super::proto::milvus::milvus_service_client::MilvusServiceClient;
use super::proto::milvus::*;
use super::proto::schema::{field_data, scalar_field, CollectionSchema, FieldData};
use crate::error::{Error, ErrorKind, Result};
use std::time::Duration;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Replies can carry a page of vectors; tonic's 4 MiB default is too small for a page
/// of 768-dimension vectors at the batch sizes drctl reads.
const MAX_MESSAGE: usize = 256 << 20;

/// The headers Milvus reads on every call: `authorization` (base64 of `user:password` or of
/// the token, as pymilvus sends it) and `dbname`.
#[derive(Clone)]
pub struct Headers {
    auth: Option<AsciiMetadataValue>,
    db: AsciiMetadataValue,
}

impl tonic::service::Interceptor for Headers {
    fn call(&mut self, mut req: tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(a) = &self.auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        req.metadata_mut().insert("dbname", self.db.clone());
        Ok(req)
    }
}

type Inner = MilvusServiceClient<InterceptedService<Channel, Headers>>;

/// How to reach one Milvus server.
#[derive(Clone)]
pub struct Conn {
    pub url: String,
    pub db: String,
    /// `user:password` or a token, sent base64-encoded.
    pub credential: Option<String>,
    /// The CA bundle for `https://` (the system's roots without it).
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Clone)]
pub struct Client {
    inner: Inner,
    base: String,
    db: String,
}

/// Calls one rpc on a clone of the client and checks both the transport and the reply's
/// status: `call!(client, "DescribeCollection", describe_collection, request)`.
macro_rules! call {
    ($client:expr, $what:expr, $method:ident, $req:expr) => {{
        let mut inner = $client.inner.clone();
        let reply = inner
            .$method($req)
            .await
            .map_err(|e| $client.transport($what, e))?
            .into_inner();
        reply
    }};
}

/// A request about one collection: `on!(client, DescribeCollectionRequest, name)`.
macro_rules! on {
    ($client:expr, $ty:ident, $name:expr) => {
        $ty {
            db_name: $client.db.clone(),
            collection_name: $name.into(),
            ..Default::default()
        }
    };
}

impl Client {
    pub async fn connect(conn: &Conn) -> Result<Client> {
        let base = conn.url.trim_end_matches('/').to_string();
        let bad = |e: &dyn std::fmt::Display| {
            Error::usage(format!("Milvus url {base:?}: {e}"))
                .hint("write it as http://host:19530, or https:// for TLS")
        };
        let mut ep = Endpoint::from_shared(base.clone())
            .map_err(|e| bad(&e))?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .tcp_keepalive(Some(Duration::from_secs(30)));
        if base.starts_with("https://") {
            let tls = match &conn.ca_file {
                None => ClientTlsConfig::new().with_native_roots(),
                Some(f) => {
                    let pem = std::fs::read(f).map_err(|e| {
                        Error::usage(format!("Milvus ca_file {}: {e}", f.display()))
                            .hint("point source.ca_file at a readable PEM file")
                    })?;
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                }
            };
            ep = ep.tls_config(tls).map_err(|e| bad(&e))?;
        }
        let channel = ep.connect().await.map_err(|e| {
            Error::new(
                ErrorKind::Temporary,
                format!("Milvus: cannot reach {base}: {}", source_chain(&e)),
            )
            .hint("check the url and that the server is up")
        })?;
        let header = |v: String| {
            MetadataValue::try_from(v).map_err(|_| Error::usage("Milvus credentials must be ASCII"))
        };
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let headers = Headers {
            auth: conn.credential.as_deref().map(|c| header(b64(c))).transpose()?,
            db: header(conn.db.clone())?,
        };
        let inner = MilvusServiceClient::with_interceptor(channel, headers)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Ok(Client {
            inner,
            base,
            db: conn.db.clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn transport(&self, what: &str, e: tonic::Status) -> Error {
        use tonic::Code;
        let msg = format!("Milvus {what} at {}: {}", self.base, e.message());
        match e.code() {
            Code::Unavailable | Code::DeadlineExceeded => Error::new(ErrorKind::Temporary, msg)
                .hint("check the url and that the server is up"),
            Code::Unauthenticated | Code::PermissionDenied => {
                Error::failed(msg).hint("check the token or user/password in the source config")
            }
            _ => Error::failed(msg),
        }
    }

    /// A reply's status: success, or an error naming the call and what the server said.
    /// Servers before 2.3 set only the deprecated `error_code`, so both are read.
    #[allow(deprecated)]
    fn check(&self, what: &str, status: Option<Status>) -> Result<()> {
        let s = status.unwrap_or_default();
        if s.code == 0 && s.error_code == 0 {
            return Ok(());
        }
        let err = Error::failed(format!("Milvus {what} at {}: {}", self.base, s.reason));
        Err(match s.code {
            // 1800: auth failure; 2: the older "unexpected error" used for bad credentials.
            1800 | 2 if s.reason.contains("auth") => {
                err.hint("check the token or user/password in the source config")
            }
            _ => err,
        })
    }

    pub async fn version(&self) -> Result<String> {
        let r = call!(self, "GetVersion", get_version, GetVersionRequest::default());
        self.check("GetVersion", r.status)?;
        Ok(r.version)
    }

    pub async fn collections(&self) -> Result<Vec<String>> {
        let req = ShowCollectionsRequest {
            db_name: self.db.clone(),
            ..Default::default()
        };
        let r = call!(self, "ShowCollections", show_collections, req);
        self.check("ShowCollections", r.status)?;
        Ok(r.collection_names)
    }

    pub async fn has(&self, name: &str) -> Result<bool> {
        let req = on!(self, HasCollectionRequest, name);
        let r = call!(self, "HasCollection", has_collection, req);
        self.check("HasCollection", r.status)?;
        Ok(r.value)
    }

    pub async fn describe(&self, name: &str) -> Result<DescribeCollectionResponse> {
        let req = on!(self, DescribeCollectionRequest, name);
        let r = call!(self, "DescribeCollection", describe_collection, req);
        self.check(&format!("DescribeCollection {name}"), r.status.clone())?;
        Ok(r)
    }

    pub async fn partitions(&self, name: &str) -> Result<Vec<String>> {
        let req = on!(self, ShowPartitionsRequest, name);
        let r = call!(self, "ShowPartitions", show_partitions, req);
        self.check(&format!("ShowPartitions {name}"), r.status)?;
        Ok(r.partition_names)
    }

    /// The collection's index definitions; none is not an error.
    #[allow(deprecated)]
    pub async fn indexes(&self, name: &str) -> Result<Vec<IndexDescription>> {
        let req = on!(self, DescribeIndexRequest, name);
        let r = call!(self, "DescribeIndex", describe_index, req);
        let s = r.status.clone().unwrap_or_default();
        // 700 (IndexNotExist), or the legacy error code 25 with it.
        if s.code == 700 || s.error_code == 25 {
            return Ok(Vec::new());
        }
        self.check(&format!("DescribeIndex {name}"), r.status)?;
        Ok(r.index_descriptions)
    }

    pub async fn load_state(&self, name: &str) -> Result<i32> {
        let req = on!(self, GetLoadStateRequest, name);
        let r = call!(self, "GetLoadState", get_load_state, req);
        self.check(&format!("GetLoadState {name}"), r.status)?;
        Ok(r.state)
    }

    /// A query at strong consistency, or at `guarantee` (a hybrid timestamp) when given.
    pub async fn query(
        &self,
        name: &str,
        expr: String,
        partitions: Vec<String>,
        limit: Option<usize>,
        guarantee: Option<u64>,
    ) -> Result<QueryResults> {
        let mut params = vec![kv("iterator", "True"), kv("reduce_stop_for_best", "False")];
        if let Some(l) = limit {
            params.push(kv("limit", &l.to_string()));
        }
        let req = QueryRequest {
            expr,
            partition_names: partitions,
            query_params: params,
            ..self.read(name, "*", guarantee)
        };
        let r = call!(self, "Query", query, req);
        self.check(&format!("Query {name}"), r.status.clone())?;
        Ok(r)
    }

    /// A query of `output` at `guarantee` (a hybrid timestamp), or at strong consistency.
    fn read(&self, name: &str, output: &str, guarantee: Option<u64>) -> QueryRequest {
        let level = match guarantee {
            Some(_) => ConsistencyLevel::Customized,
            None => ConsistencyLevel::Strong,
        };
        QueryRequest {
            output_fields: vec![output.into()],
            guarantee_timestamp: guarantee.unwrap_or(0),
            consistency_level: level as i32,
            ..on!(self, QueryRequest, name)
        }
    }

    /// A fresh hybrid timestamp from the server's oracle, to read every page at; `None`
    /// when the server predates `AllocTimestamp` (then every page is read at strong
    /// consistency, which waits for the server to catch up each time).
    pub async fn now(&self) -> Option<u64> {
        let mut inner = self.inner.clone();
        let r = inner.alloc_timestamp(AllocTimestampRequest::default()).await.ok()?.into_inner();
        self.check("AllocTimestamp", r.status).ok()?;
        (r.timestamp > 0).then_some(r.timestamp)
    }

    /// `count(*)` of the collection, at strong consistency or at `guarantee`.
    pub async fn count(&self, name: &str, guarantee: Option<u64>) -> Result<u64> {
        let req = self.read(name, "count(*)", guarantee);
        let r = call!(self, "Query count(*)", query, req);
        self.check(&format!("Query count(*) {name}"), r.status.clone())?;
        let n = r.fields_data.iter().find_map(|f| match &f.field {
            Some(field_data::Field::Scalars(s)) => match &s.data {
                Some(scalar_field::Data::LongData(l)) => l.data.first().copied(),
                _ => None,
            },
            _ => None,
        });
        n.map(|n| n.max(0) as u64)
            .ok_or_else(|| Error::failed(format!("Milvus count(*) of {name}: no count in the reply")))
    }

    pub async fn create(&self, req: CreateCollectionRequest) -> Result<()> {
        let what = format!("CreateCollection {}", req.collection_name);
        let req = CreateCollectionRequest {
            db_name: self.db.clone(),
            ..req
        };
        let s = call!(self, "CreateCollection", create_collection, req);
        self.check(&what, Some(s))
    }

    pub async fn drop(&self, name: &str) -> Result<()> {
        let req = on!(self, DropCollectionRequest, name);
        let s = call!(self, "DropCollection", drop_collection, req);
        self.check(&format!("DropCollection {name}"), Some(s))
    }

    pub async fn create_partition(&self, name: &str, partition: &str) -> Result<()> {
        let req = CreatePartitionRequest {
            db_name: self.db.clone(),
            collection_name: name.into(),
            partition_name: partition.into(),
            ..Default::default()
        };
        let s = call!(self, "CreatePartition", create_partition, req);
        self.check(&format!("CreatePartition {name}/{partition}"), Some(s))
    }

    pub async fn insert(&self, req: InsertRequest) -> Result<u64> {
        let what = format!("Insert into {}", req.collection_name);
        let req = InsertRequest {
            db_name: self.db.clone(),
            ..req
        };
        let r = call!(self, "Insert", insert, req);
        self.check(&what, r.status)?;
        Ok(r.insert_cnt.max(0) as u64)
    }

    pub async fn create_index(&self, name: &str, ix: &IndexDescription) -> Result<()> {
        let req = CreateIndexRequest {
            db_name: self.db.clone(),
            collection_name: name.into(),
            field_name: ix.field_name.clone(),
            index_name: ix.index_name.clone(),
            extra_params: ix.params.clone(),
            ..Default::default()
        };
        let s = call!(self, "CreateIndex", create_index, req);
        self.check(&format!("CreateIndex {name}.{}", ix.field_name), Some(s))
    }

    pub async fn flush(&self, name: &str) -> Result<()> {
        let req = FlushRequest {
            db_name: self.db.clone(),
            collection_names: vec![name.into()],
            ..Default::default()
        };
        let r = call!(self, "Flush", flush, req);
        self.check(&format!("Flush {name}"), r.status)
    }

    /// Load the collection and wait until it serves queries (at most `wait`).
    pub async fn load(&self, name: &str, wait: Duration) -> Result<()> {
        let req = on!(self, LoadCollectionRequest, name);
        let s = call!(self, "LoadCollection", load_collection, req);
        self.check(&format!("LoadCollection {name}"), Some(s))?;
        let until = std::time::Instant::now() + wait;
        loop {
            if self.load_state(name).await? == super::proto::common::LoadState::Loaded as i32 {
                return Ok(());
            }
            if std::time::Instant::now() > until {
                return Err(Error::failed(format!(
                    "Milvus at {}: collection {name} is not loaded after {}s",
                    self.base,
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

pub fn kv(key: &str, value: &str) -> super::proto::common::KeyValuePair {
    super::proto::common::KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

/// The schema as `CreateCollection` takes it: renamed, without the ids and states the server
/// assigned to the original.
pub fn schema_for_create(mut schema: CollectionSchema, name: &str) -> CollectionSchema {
    schema.name = name.into();
    schema.db_name.clear();
    for f in &mut schema.fields {
        f.field_id = 0;
        f.state = 0;
    }
    schema
}

/// Rows in one page of field data (the length of its primary-key, or first, column).
pub fn rows_in(fields: &[FieldData]) -> usize {
    fields.iter().map(super::format::column_len).max().unwrap_or(0)
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
