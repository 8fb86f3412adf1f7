//! Streaming a run's artifacts, group by group (`SourceRun::next_group`): the artifacts of a
//! group side by side, each through its own pipeline (compression, encryption, hashing) and
//! its own fan-out to every live region. The first failure in a group stops its siblings, so
//! a failed run ends promptly with every upload aborted; nothing here commits anything.

use super::{below_min, RegionFailure};
use crate::config::{Config, JobSpec};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Artifact;
use crate::pipeline::{self, codec, fanout::Fanout, fanout::LaneResult, hash::Counting};
use crate::progress;
use crate::source::{ArtifactStream, Confirm, SourceRun};
use crate::store::repo::backup_dir;
use crate::store::Region;
use futures::future::join_all;
use indicatif::MultiProgress;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Who confirms an artifact once its stream reached EOF.
enum Confirmer<'a> {
    /// The stream's own confirmation (artifacts streamed side by side).
    Own(Confirm),
    /// `SourceRun::finish_artifact` (one artifact at a time).
    Run(&'a mut dyn SourceRun),
}

/// What the run shares with each artifact's pipeline.
struct Ctx<'a> {
    cfg: &'a Config,
    job: &'a JobSpec,
    id: &'a str,
    live: &'a [Region],
    board: Option<&'a MultiProgress>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn stream_all(
    cfg: &Config,
    job: &JobSpec,
    id: &str,
    run: &mut dyn SourceRun,
    live: &mut Vec<Region>,
    failed: &mut Vec<RegionFailure>,
    cancel: &CancellationToken,
    show_progress: bool,
) -> Result<Vec<Artifact>> {
    let mut artifacts = Vec::new();
    loop {
        let mut group = run.next_group().await?;
        if group.is_empty() {
            break;
        }
        let board = progress::Board::start(show_progress);
        let ctx = Ctx {
            cfg,
            job,
            id,
            live,
            board: board.as_deref(),
        };
        // A sibling's failure stops the others; SIGTERM stops them all.
        let stop = cancel.child_token();
        let outcomes = if group.len() == 1 {
            let mut s = group.remove(0);
            let by = match s.confirm.take() {
                Some(c) => Confirmer::Own(c),
                None => Confirmer::Run(&mut *run),
            };
            vec![one(&ctx, s, by, &stop).await]
        } else {
            let mut streams = Vec::new();
            for mut s in group {
                let c = s.confirm.take().ok_or_else(|| {
                    Error::failed(format!(
                        "artifact {} is streamed beside others without its own confirmation (a source kind's bug)",
                        s.name
                    ))
                })?;
                streams.push(one(&ctx, s, Confirmer::Own(c), &stop));
            }
            join_all(streams).await
        };
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for o in outcomes {
            match o {
                Ok(x) => done.push(x),
                Err(e) => errors.push(e),
            }
        }
        if let Some(e) = first_cause(errors, cancel) {
            return Err(e);
        }
        *live = surviving(live, &done, failed);
        if live.len() < cfg.min_copies {
            return Err(below_min(cfg, failed));
        }
        artifacts.extend(done.into_iter().map(|(a, _)| a));
    }
    Ok(artifacts)
}

/// The error to report: the first that was not only a sibling being stopped, unless the run
/// itself was interrupted.
fn first_cause(errors: Vec<Error>, cancel: &CancellationToken) -> Option<Error> {
    if errors.is_empty() {
        return None;
    }
    if cancel.is_cancelled() {
        return Some(pipeline::interrupted());
    }
    let i = errors
        .iter()
        .position(|e| e.kind() != ErrorKind::Interrupted)
        .unwrap_or(0);
    errors.into_iter().nth(i)
}

/// Regions that stored every artifact of the group; the others are recorded as failed.
fn surviving(
    live: &[Region],
    done: &[(Artifact, Vec<LaneResult>)],
    failed: &mut Vec<RegionFailure>,
) -> Vec<Region> {
    let mut still = Vec::new();
    for (i, region) in live.iter().enumerate() {
        let mut ok = true;
        for (a, lanes) in done {
            if let Some(Err(e)) = lanes.get(i).map(|l| &l.result) {
                tracing::warn!(region = %region.name, error = %e, "region failed to store {}", a.path);
                if ok {
                    failed.push(RegionFailure {
                        region: region.name.clone(),
                        error: e.to_string(),
                    });
                }
                ok = false;
            }
        }
        if ok {
            still.push(region.clone());
        }
    }
    still
}

/// One artifact: stream it to every live region, have its producer confirm it, complete its
/// uploads. On any failure its uploads are aborted and `stop` tells its siblings.
async fn one(
    ctx: &Ctx<'_>,
    stream: ArtifactStream,
    by: Confirmer<'_>,
    stop: &CancellationToken,
) -> Result<(Artifact, Vec<LaneResult>)> {
    let (cfg, job) = (ctx.cfg, ctx.job);
    let sealing = crate::pipeline::crypt::sealing(cfg, job);
    let file = format!(
        "{}{}{}",
        stream.file_name,
        codec::extension(job.compression.codec),
        if sealing.is_none() { "" } else { ".age" }
    );
    let path = format!("{}{file}", backup_dir(&job.name.0, ctx.id));
    let counting = Counting::new(stream.reader);
    let raw = counting.count.clone();
    let mut reader = codec::encoder(Box::new(counting), job.compression);
    if let Some(s) = &sealing {
        reader = crate::pipeline::crypt::seal(reader, s)?;
    }
    let bars = progress::Bars::new(ctx.board, &job.name.0, &stream.name, ctx.live);
    let estimate = stream.size_hint;
    let mut fan = Fanout::start(ctx.live, &path, cfg.min_copies, &bars.regions, estimate);
    let on_chunk = |_: u64| bars.source(raw.load(Ordering::Relaxed));
    let streamed = pipeline::pump(reader, &mut fan, stop, &on_chunk)
        .await
        .map_err(|e| e.context(format!("artifact {}", stream.name)));
    // The source must confirm success (exit status, trailer) before anything completes.
    let confirmed = match streamed {
        Ok(s) => {
            let fin = tokio::select! {
                biased;
                _ = stop.cancelled() => Err(pipeline::interrupted()),
                f = confirm(by) => f,
            };
            fin.map(|facts| (s, facts))
        }
        Err(e) => Err(e),
    };
    let (streamed, facts) = match confirmed {
        Ok(x) => x,
        Err(e) => {
            stop.cancel();
            fan.abort().await;
            bars.finish();
            return Err(e);
        }
    };
    let lanes = fan.finish().await;
    bars.finish();
    tracing::info!(artifact = %stream.name, raw = raw.load(Ordering::Relaxed), stored = streamed.stored_size, "artifact stored");
    let artifact = Artifact {
        name: stream.name,
        path: file,
        codec: codec::name(job.compression.codec).to_string(),
        raw_size: raw.load(Ordering::Relaxed),
        stored_size: streamed.stored_size,
        sha256: streamed.sha256,
        facts,
    };
    Ok((artifact, lanes))
}

async fn confirm(by: Confirmer<'_>) -> Result<serde_json::Value> {
    match by {
        Confirmer::Own(c) => c.await,
        Confirmer::Run(run) => run.finish_artifact().await,
    }
}
