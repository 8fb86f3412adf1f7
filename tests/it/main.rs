//! Integration tests against real services (see common.rs). Run with `cargo test`.

mod bad_input;
mod behaviour;
mod chroma;
mod cli;
mod cloud_identity;
mod common;
mod config_errors;
mod drill;
mod drill_playbooks;
mod encryption;
mod failures;
mod faults;
mod files;
mod k8s;
mod lease;
mod milvus;
mod proxy;
mod prune;
mod qdrant;
mod readers;
mod redis;
mod roundtrip;
mod route53;
mod schedule;
mod secrets;
mod verify;
