//! Fan-out of one artifact to several regions, each with its own writer task.
//!
//! A region task writes what it receives; on `Finish` it closes its writer (completing the
//! multipart upload), and if its channel closes without `Finish` — the run failed or was
//! interrupted — it aborts the writer, so no multipart upload is left behind.

use crate::error::{Error, Result};
use crate::store::Region;
use bytes::Bytes;
use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

enum Msg {
    Data(Bytes),
    Finish,
}

struct Lane {
    region: String,
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<JoinHandle<Result<()>>>,
    error: Option<Error>,
}

pub struct Fanout {
    lanes: Vec<Lane>,
    min_alive: usize,
}

/// Per-region outcome of an artifact.
pub struct LaneResult {
    pub region: String,
    pub result: Result<()>,
}

impl Fanout {
    /// Start one writer task per region for `path`. The fan-out fails as soon as fewer than
    /// `min_alive` regions are still writing.
    pub fn start(
        regions: &[Region],
        path: &str,
        min_alive: usize,
        bars: &[Option<ProgressBar>],
        estimate: Option<u64>,
    ) -> Fanout {
        let lanes = regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (tx, rx) = mpsc::channel(super::QUEUE);
                let task = tokio::spawn(region_task(
                    r.clone(),
                    path.to_string(),
                    rx,
                    bars.get(i).cloned().flatten(),
                    estimate,
                ));
                Lane {
                    region: r.name.clone(),
                    tx: Some(tx),
                    task: Some(task),
                    error: None,
                }
            })
            .collect();
        Fanout { lanes, min_alive }
    }

    fn alive(&self) -> usize {
        self.lanes.iter().filter(|l| l.tx.is_some()).count()
    }

    /// Hand a chunk to every live region (waiting for room: backpressure).
    pub async fn send(&mut self, chunk: Bytes) -> Result<()> {
        for i in 0..self.lanes.len() {
            let Some(tx) = self.lanes[i].tx.as_ref() else {
                continue;
            };
            if tx.send(Msg::Data(chunk.clone())).await.is_err() {
                // The region's task ended early: collect its error and drop the lane.
                self.retire(i).await;
            }
        }
        if self.alive() < self.min_alive {
            let why: Vec<String> = self
                .lanes
                .iter()
                .filter_map(|l| l.error.as_ref().map(|e| e.to_string()))
                .collect();
            return Err(Error::failed(format!(
                "only {} of {} regions still writing, fewer than min_copies ({}): {}",
                self.alive(),
                self.lanes.len(),
                self.min_alive,
                why.join("; ")
            ))
            .hint("bring the failed region(s) back or lower min_copies; nothing was committed"));
        }
        Ok(())
    }

    async fn retire(&mut self, i: usize) {
        let lane = &mut self.lanes[i];
        lane.tx = None;
        if let Some(t) = lane.task.take() {
            let e = match t.await {
                Ok(Ok(())) => Error::failed("writer stopped early"),
                Ok(Err(e)) => e,
                Err(j) => Error::failed(format!("writer task failed: {j}")),
            };
            tracing::warn!(region = %lane.region, error = %e, "region dropped out of the backup");
            lane.error = Some(e);
        }
    }

    /// Complete the artifact in every live region; returns per-region outcomes.
    pub async fn finish(mut self) -> Vec<LaneResult> {
        for lane in &mut self.lanes {
            if let Some(tx) = lane.tx.take() {
                let _ = tx.send(Msg::Finish).await;
            }
        }
        self.collect().await
    }

    /// Abort every region's upload (no multipart upload left behind) and wait for them.
    pub async fn abort(mut self) -> Vec<LaneResult> {
        for lane in &mut self.lanes {
            lane.tx = None;
        }
        self.collect().await
    }

    async fn collect(&mut self) -> Vec<LaneResult> {
        let mut out = Vec::new();
        for lane in &mut self.lanes {
            let result = match (lane.task.take(), lane.error.take()) {
                (_, Some(e)) => Err(e),
                (Some(t), None) => match t.await {
                    Ok(r) => r,
                    Err(j) => Err(Error::failed(format!("writer task failed: {j}"))),
                },
                (None, None) => Err(Error::failed("writer already gone")),
            };
            out.push(LaneResult {
                region: lane.region.clone(),
                result,
            });
        }
        out
    }
}

/// One region's writer; on a TTY its bar says so as soon as the region fails, while the
/// others keep going.
async fn region_task(
    region: Region,
    path: String,
    rx: mpsc::Receiver<Msg>,
    bar: Option<ProgressBar>,
    estimate: Option<u64>,
) -> Result<()> {
    let result = write_region(&region, &path, rx, bar.as_ref(), estimate).await;
    if let (Err(_), Some(bar)) = (&result, &bar) {
        bar.abandon_with_message("failed");
    }
    result
}

async fn write_region(
    region: &Region,
    path: &str,
    mut rx: mpsc::Receiver<Msg>,
    bar: Option<&ProgressBar>,
    estimate: Option<u64>,
) -> Result<()> {
    let mut w = region.writer(path, estimate).await?;
    loop {
        match rx.recv().await {
            Some(Msg::Data(b)) => {
                let n = b.len() as u64;
                if let Err(e) = w.write(b).await {
                    let _ = w.abort().await;
                    return Err(region.err(e, path));
                }
                if let Some(bar) = bar {
                    bar.inc(n);
                }
            }
            Some(Msg::Finish) => {
                return match w.close().await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let _ = w.abort().await;
                        Err(region.err(e, path))
                    }
                };
            }
            None => {
                match w.abort().await {
                    Ok(()) => {}
                    // An fs region cannot abort a write; the run's cleanup deletes the file.
                    Err(e) if e.kind() == opendal::ErrorKind::Unsupported => {
                        tracing::debug!(region = %region.name, "no abort here; the partial object is deleted by the cleanup")
                    }
                    Err(e) => {
                        tracing::warn!(region = %region.name, error = %e, "aborting the upload failed")
                    }
                }
                return Err(Error::failed("upload aborted"));
            }
        }
    }
}
