//! Milvus, through its gRPC API (issue 15, under construction: not registered as a source
//! kind yet). The client is generated from the pinned protos in `proto/milvus/` rather than
//! taken from `milvus-sdk-rust`: the SDK brings a second HTTP and TLS stack (reqwest 0.12,
//! rustls with ring) and converts rows into its own types, while a backup wants the server's
//! own `FieldData` batches — stored as they arrive (vectors as bytes, bit for bit) and inserted
//! back unchanged.

pub mod proto;
