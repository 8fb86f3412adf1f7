//! The generated Milvus gRPC types and client (`build.rs`). The service has an rpc named
//! `Connect`, which shadows the generated client's own `connect`: build a client with
//! `MilvusServiceClient::new(channel)`.
#![allow(clippy::all, missing_docs)]

pub mod common {
    tonic::include_proto!("milvus.proto.common");
}
pub mod schema {
    tonic::include_proto!("milvus.proto.schema");
}
pub mod milvus {
    tonic::include_proto!("milvus.proto.milvus");
}
pub mod rg {
    tonic::include_proto!("milvus.proto.rg");
}
pub mod feder {
    tonic::include_proto!("milvus.proto.feder");
}
pub mod msg {
    tonic::include_proto!("milvus.proto.msg");
}
