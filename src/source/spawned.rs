//! An artifact produced by a task of its own — the REST and gRPC kinds read a server page by
//! page — writing its bytes into a bounded channel (4 chunks) that the backup pipeline reads
//! as the artifact's stream. The task ends with the artifact's facts; `abort` stops it.

use super::ArtifactStream;
use crate::error::{Error, Result};
use bytes::Bytes;
use serde_json::Value;
use std::future::Future;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where a task writes its artifact's bytes.
pub type Chunks = mpsc::Sender<std::io::Result<Bytes>>;

/// Send one chunk; a closed channel means the pipeline stopped reading (it failed elsewhere).
pub async fn send(tx: &Chunks, chunk: Vec<u8>) -> Result<()> {
    tx.send(Ok(chunk.into()))
        .await
        .map_err(|_| Error::failed("the backup pipeline stopped reading the export"))
}

/// The artifact in progress, if any: its name and the task writing it.
#[derive(Default)]
pub struct Spawned {
    current: Option<(String, JoinHandle<Result<Value>>)>,
}

impl Spawned {
    /// Start the task `make(chunks)` writing artifact `name` (stored as `file_name`).
    pub fn start<F, Fut>(&mut self, name: String, file_name: String, make: F) -> ArtifactStream
    where
        F: FnOnce(Chunks) -> Fut,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel(4);
        self.current = Some((name.clone(), tokio::spawn(make(tx))));
        let chunks = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        ArtifactStream {
            file_name,
            name,
            reader: Box::new(tokio_util::io::StreamReader::new(chunks)),
            size_hint: None,
            confirm: None,
        }
    }

    /// The facts of the artifact whose stream just ended, or the task's error in the
    /// context of the collection.
    pub async fn finish(&mut self, service: &str) -> Result<Value> {
        let (name, task) = self
            .current
            .take()
            .ok_or_else(|| Error::failed(format!("no {service} export in progress")))?;
        task.await
            .map_err(|e| Error::failed(format!("{service} export of {name} failed: {e}")))?
            .map_err(|e| e.context(format!("collection {name}")))
    }

    pub fn abort(&mut self) {
        if let Some((_, t)) = self.current.take() {
            t.abort();
        }
    }
}
