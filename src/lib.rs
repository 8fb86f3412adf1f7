//! drctl: a disaster-recovery and backup orchestrator.
//!
//! The library holds all the work; `main.rs` only parses arguments and maps errors to exit
//! codes, so integration tests drive the same code paths the binary does.

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod drill;
pub mod error;
pub mod history;
pub mod interp;
pub mod k8s;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod progress;
pub mod redact;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod source;
pub mod status;
pub mod store;
pub mod verify;
pub mod yamlscan;
pub mod yamltree;

pub use error::{Error, ErrorKind, Result};
