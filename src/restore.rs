//! `drctl restore`: pick a backup, pick a region whose copy is intact, stream it back.
//!
//! Regions are tried in order (`--region` first, then the config's order). A corrupted or
//! unreachable copy costs a fallback, never a half-restored target: a target that restores
//! each artifact all or nothing (`RestoreTarget::atomic`, PostgreSQL) streams each copy once,
//! checked on the way, and retries an artifact whose copy failed from the next region; any
//! other target is given a region only after its copy's SHA-256 matched the manifest in full,
//! and the bytes are checked again while restoring.

use crate::config::{Config, JobSpec};
use crate::error::{Error, Result};
use crate::manifest::{Artifact, Manifest};
use crate::pipeline::{
    codec,
    hash::{Tripwire, Verifying},
};
use crate::progress::Board;
use crate::source::{ByteReader, RestoreOptions};
use crate::store::repo::backup_dir;
use crate::store::Region;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio_util::compat::FuturesAsyncReadCompatExt;

/// Which backup to restore.
#[derive(Debug, Clone)]
pub enum Selector {
    Latest,
    Id(String),
    /// Newest backup whose `consistent_at` is at or before this instant.
    Before(DateTime<Utc>),
}

#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub job: String,
    pub backup: String,
    pub region: String,
    pub consistent_at: DateTime<Utc>,
    pub target: String,
    pub duration_seconds: f64,
    /// The restored backup's source size: the status scales RTO by it.
    pub raw_bytes: u64,
    pub skipped_regions: Vec<String>,
}

/// Regions in restore preference order.
pub fn ordered_regions(cfg: &Config, preferred: Option<&str>) -> Result<Vec<Region>> {
    let mut regions = crate::backup::open_regions(cfg)?;
    if let Some(p) = preferred {
        cfg.region(p)?;
        regions.sort_by_key(|r| r.name != p);
    }
    Ok(regions)
}

/// Find the manifest the selector names, asking regions in order until one answers.
pub async fn select(regions: &[Region], job: &str, sel: &Selector) -> Result<Manifest> {
    let mut errors = Vec::new();
    let mut best: Option<Manifest> = None;
    for r in regions {
        let found = match sel {
            Selector::Id(id) => r.read_manifest(job, id).await,
            _ => match r.list_manifests(job).await.map(|ms| {
                crate::manifest::newest(ms.iter().filter(|m| match sel {
                    Selector::Before(t) => m.consistent_at <= *t,
                    _ => true,
                }))
                .map(|m| m.id.clone())
            }) {
                // The listing went through the index: what acts on the backup reads its
                // manifest as stored.
                Ok(Some(id)) => r.read_manifest(job, &id).await,
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            },
        };
        match found {
            Ok(Some(m)) => {
                use crate::manifest::newness;
                if best.as_ref().is_none_or(|b| newness(&m) > newness(b)) {
                    best = Some(m);
                }
                if matches!(sel, Selector::Id(_)) {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => errors.push(format!("region {}: {e}", r.name)),
        }
    }
    best.ok_or_else(|| {
        let what = match sel {
            Selector::Latest => format!("no complete backup of job {job}"),
            Selector::Id(id) => format!("backup {id} of job {job} not found"),
            Selector::Before(t) => {
                format!("no complete backup of job {job} consistent at or before {t}")
            }
        };
        let mut e = Error::failed(if errors.is_empty() {
            what
        } else {
            format!("{what} ({})", errors.join("; "))
        });
        e = e.hint("list what exists with `drctl backup list JOB`");
        e
    })
}

/// Read a region's copy of every artifact end to end and compare each SHA-256 with the manifest.
/// On a terminal (`board`) each artifact's read is drawn.
pub async fn check_copy(region: &Region, m: &Manifest, board: Option<&Board>) -> Result<()> {
    for a in &m.artifacts {
        let label = format!("{} check {}", a.name, region.name);
        let bar = Board::reading(board, label, a.stored_size);
        let checked = check_artifact(region, m, a, bar.as_ref()).await;
        Board::settle(bar, checked.is_ok());
        checked?;
    }
    Ok(())
}

/// Read a region's copy of one artifact end to end and compare its SHA-256 and size with the
/// manifest.
async fn check_artifact(
    region: &Region,
    m: &Manifest,
    a: &Artifact,
    bar: Option<&ProgressBar>,
) -> Result<()> {
    let path = format!("{}{}", backup_dir(&m.job, &m.id), a.path);
    let mut reader = shown(open(region, &path).await?, bar);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n_total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::failed(format!("region {}: reading {path}: {e}", region.name)))?;
        if n == 0 {
            break;
        }
        n_total += n as u64;
        hasher.update(&buf[..n]);
    }
    let got = hex::encode(hasher.finalize());
    if got != a.sha256 || n_total != a.stored_size {
        return Err(Error::failed(format!(
            "region {}: {path} does not match the manifest (sha256 {got}, {n_total} bytes; expected {}, {} bytes)",
            region.name, a.sha256, a.stored_size
        )));
    }
    Ok(())
}

/// `reader`, counted on `bar` when one is drawn.
fn shown(reader: ByteReader, bar: Option<&ProgressBar>) -> ByteReader {
    match bar {
        Some(bar) => Box::new(bar.wrap_async_read(reader)),
        None => reader,
    }
}

pub async fn open(region: &Region, path: &str) -> Result<ByteReader> {
    let r = region
        .op
        .reader_with(path)
        .chunk(4 * 1024 * 1024)
        .await
        .map_err(|e| region.err(e, path))?;
    let r = r
        .into_futures_async_read(..)
        .await
        .map_err(|e| region.err(e, path))?;
    Ok(Box::new(r.compat()))
}

pub async fn run(
    cfg: &Config,
    job: &JobSpec,
    sel: &Selector,
    preferred: Option<&str>,
    to: &str,
    opts: RestoreOptions,
    show_progress: bool,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let regions = ordered_regions(cfg, preferred)?;
    let target = job.source.restore_target(to, opts)?;
    let manifest = select(&regions, &job.name.0, sel).await?;
    tracing::info!(job = %job.name, backup = %manifest.id, consistent_at = %manifest.consistent_at, "restoring");
    let board = Board::start(show_progress);

    // Regions whose manifest is this backup's, in preference order.
    let mut skipped = Vec::new();
    let mut holding = Vec::new();
    for r in &regions {
        match r.read_manifest(&manifest.job, &manifest.id).await {
            Ok(Some(m)) if m == manifest => holding.push(r.clone()),
            Ok(_) => skipped.push(format!(
                "{}: no matching manifest for {}",
                r.name, manifest.id
            )),
            Err(e) => skipped.push(format!("{}: {e}", r.name)),
        }
    }
    // A target that cannot undo a half-read artifact gets a copy checked in full first.
    let sources = if target.atomic() {
        holding
    } else {
        first_intact(holding, &manifest, &mut skipped, board.as_ref())
            .await
            .into_iter()
            .collect()
    };
    if sources.is_empty() {
        return Err(no_intact_copy(&manifest, &skipped));
    }

    let keys = crate::pipeline::crypt::keys_for(cfg, job, &manifest)?;
    target.prepare(&manifest.artifacts).await?;
    let mut used: Vec<String> = Vec::new();
    let mut restored = 0usize;
    let reading = Reading {
        sources: &sources,
        manifest: &manifest,
        keys: keys.as_ref(),
        target: target.as_ref(),
        board: board.as_ref(),
    };
    for stage in target.stages(&manifest.artifacts) {
        let at_once = stage.artifacts.len();
        // The artifacts of a stage at once; the first failure drops (and so stops) the rest.
        let (r, before) = (&reading, &skipped[..]);
        let mut done = futures::stream::iter(stage.artifacts.into_iter().map(|i| async move {
            let a = &r.manifest.artifacts[i];
            restore_from_any(r, before, a).await.map(|done| (i, done))
        }))
        .buffer_unordered(stage.at_once.max(1))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| partly_restored(e, restored, at_once))?;
        restored += done.len();
        // In the manifest's order, whichever finished first: one restore reports the regions
        // it gave up on in the same order every time.
        done.sort_by_key(|(i, _)| *i);
        for (_, (region, fallbacks)) in done {
            skipped.extend(fallbacks);
            if !used.contains(&region) {
                used.push(region);
            }
        }
    }
    target
        .finish()
        .await
        .map_err(|e| partly_restored(e, restored, 1))?;
    if used.is_empty() {
        // A backup without artifacts: nothing was read, from the first region that holds it.
        used.push(sources[0].name.clone());
    }
    // Artifacts of a stage finish in any order: name the regions in the order they are tried,
    // so one restore always reports the same thing.
    used.sort_by_key(|r| sources.iter().position(|s| &s.name == r));
    Ok(RestoreReport {
        job: job.name.0.clone(),
        backup: manifest.id.clone(),
        region: used.join(","),
        consistent_at: manifest.consistent_at,
        target: target.describe(),
        duration_seconds: started.elapsed().as_secs_f64(),
        raw_bytes: manifest.raw_size(),
        skipped_regions: skipped,
    })
}

/// A failed restore after artifacts before it, or beside it, may have been restored: the
/// target then holds part of the backup, and the user must know before trusting it or
/// restoring into it again (a non-empty target is refused, and a parallel PostgreSQL backup
/// refuses `--clean`).
fn partly_restored(e: Error, restored: usize, at_once: usize) -> Error {
    if restored == 0 && at_once <= 1 {
        return e;
    }
    e.hint_or("the target may hold part of this backup (what was restored before the failure): drop it, then restore again into a new or empty target")
}

/// The first region whose copy reads whole and matches the manifest.
async fn first_intact(
    holding: Vec<Region>,
    manifest: &Manifest,
    skipped: &mut Vec<String>,
    board: Option<&Board>,
) -> Option<Region> {
    for r in holding {
        let checking = Instant::now();
        match check_copy(&r, manifest, board).await {
            Ok(()) => {
                tracing::info!(region = %r.name, seconds = checking.elapsed().as_secs_f64(), "copy checked against the manifest");
                return Some(r);
            }
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "copy unusable, trying the next region");
                skipped.push(format!("{}: {e}", r.name));
            }
        }
    }
    None
}

fn no_intact_copy(manifest: &Manifest, skipped: &[String]) -> Error {
    Error::failed(format!(
        "no region holds an intact copy of backup {}: {}",
        manifest.id,
        skipped.join("; ")
    ))
    .hint("try another backup with --backup ID or --before TIME")
}

/// What the artifacts of one restore are read from and written to.
struct Reading<'a> {
    /// Regions holding the backup, in the order they are tried.
    sources: &'a [Region],
    manifest: &'a Manifest,
    keys: Option<&'a crate::pipeline::crypt::Keys>,
    target: &'a dyn crate::source::RestoreTarget,
    /// On a terminal: a bar per copy read.
    board: Option<&'a Board>,
}

/// Restore one artifact from the first of `sources` whose copy streams whole; a copy that
/// fails (unreadable, checksum, decryption, decompression) while the target undid it moves on
/// to the next region. Returns the region used and a line per region given up on; `before`
/// are the regions given up on already, for the message when every copy failed.
async fn restore_from_any(
    r: &Reading<'_>,
    before: &[String],
    a: &Artifact,
) -> Result<(String, Vec<String>)> {
    let mut given_up = Vec::new();
    for region in r.sources {
        let label = format!("{} ← {}", a.name, region.name);
        let bar = Board::reading(r.board, label, a.stored_size);
        let (result, copy_failed) = restore_one(r, region, a, bar.as_ref()).await;
        Board::settle(bar, result.is_ok());
        let e = match result {
            Ok(()) => return Ok((region.name.clone(), given_up)),
            Err(e) => e,
        };
        if copy_failed.is_none() || e.caused_by::<crate::source::TargetChanged>() {
            return Err(e);
        }
        tracing::warn!(region = %region.name, artifact = %a.name, error = %e, "copy unusable, trying the next region");
        given_up.push(format!("{}: {}", region.name, e.message()));
    }
    let all: Vec<String> = before.iter().cloned().chain(given_up).collect();
    Err(no_intact_copy(r.manifest, &all))
}

/// Stream one artifact from `region` into the target: checked against its SHA-256 on the way,
/// decrypted, decompressed. Returns the outcome and, when the copy itself failed (unreadable,
/// or its bytes failed the checksum, decryption or decompression, while streaming or in the
/// whole read that follows a failure of the target), why. `bar` counts the stored bytes read.
async fn restore_one(
    r: &Reading<'_>,
    region: &Region,
    a: &Artifact,
    bar: Option<&ProgressBar>,
) -> (Result<()>, Option<String>) {
    let (manifest, keys, target) = (r.manifest, r.keys, r.target);
    let started = Instant::now();
    let path = format!("{}{}", backup_dir(&manifest.job, &manifest.id), a.path);
    // A copy that cannot be opened is this region's failure. A header that does not decrypt or
    // decode is either a damaged copy (the next region may hold a good one) or a key or codec
    // that fits no copy (its own error and hint must stand): reading the copy whole tells which.
    let stored = match open(region, &path).await {
        Ok(r) => shown(r, bar),
        Err(e) => {
            let why = e.to_string();
            return (Err(e), Some(why));
        }
    };
    let verified = Verifying::new(stored, &a.sha256, format!("region {} {path}", region.name));
    let intact = verified.matched();
    let raw = match crate::pipeline::crypt::unseal(Box::new(verified), keys)
        .await
        .and_then(|plain| codec::decoder(plain, &a.codec))
    {
        Ok(r) => r,
        Err(e) => {
            let damaged = check_artifact(region, manifest, a, None).await.err();
            return (Err(e), damaged.map(|d| d.to_string()));
        }
    };
    let (raw, tripped) = Tripwire::new(raw);
    let result = target
        .restore(a, Box::new(raw))
        .await
        .map_err(|e| e.context(format!("restoring {} from region {}", a.name, region.name)));
    let copy_failed = tripped.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match result {
        Ok(()) => {
            tracing::info!(artifact = %a.name, region = %region.name, seconds = started.elapsed().as_secs_f64(), "artifact restored");
            (Ok(()), None)
        }
        // The target failed before the stream did: damaged bytes that decompress without an
        // error (a length field pg_restore then cannot allocate, say) reach it before the
        // checksum can tell. Reading the copy whole tells a damaged copy from a target
        // problem — unless the stream already matched to its end.
        Err(e)
            if copy_failed.is_none()
                && !intact.load(std::sync::atomic::Ordering::Acquire)
                && !e.caused_by::<crate::source::TargetChanged>() =>
        {
            match check_artifact(region, manifest, a, None).await {
                Ok(()) => (Err(e), None),
                Err(damage) => {
                    tracing::warn!(region = %region.name, artifact = %a.name, target_error = %e, "the target failed on a damaged copy");
                    let why = damage.to_string();
                    let e =
                        damage.context(format!("restoring {} from region {}", a.name, region.name));
                    (Err(e), Some(why))
                }
            }
        }
        Err(e) => (Err(e), copy_failed),
    }
}
