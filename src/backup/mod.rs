//! One backup run of one job: snapshot → stream every artifact to every region → commit.
//!
//! Commit protocol: artifacts first; then, only if at least `min_copies` regions hold every
//! artifact and the source confirmed success, `manifest.json` in each of those regions. A
//! failed or interrupted run aborts its uploads and deletes its objects in every region.

mod stream;

use crate::config::{Config, JobSpec};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{new_backup_id, Manifest, SourceInfo, FORMAT_VERSION};
use crate::pipeline;
use crate::store::repo::backup_dir;
use crate::store::Region;
use chrono::Utc;
use futures::future::join_all;
use serde::Serialize;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What `backup run` reports per job.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub job: String,
    pub id: String,
    pub regions: Vec<String>,
    pub failed_regions: Vec<RegionFailure>,
    pub consistent_at: chrono::DateTime<Utc>,
    pub duration_seconds: f64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Peak resident memory of this drctl process so far (VmHWM), for sizing memory limits.
    pub peak_rss_bytes: Option<u64>,
    /// Set when the catalog could not be told (the backup is committed all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RegionFailure {
    pub region: String,
    pub error: String,
}

/// Open every region of the config. A region whose config is wrong fails the whole command.
pub fn open_regions(cfg: &Config) -> Result<Vec<Region>> {
    cfg.regions.iter().map(Region::open).collect()
}

/// The outcome of a run that first took the job's lease.
pub enum Leased {
    Done(BackupReport),
    /// Another run (here or on another host) holds the job's lease; nothing was done.
    Held(crate::store::lease::LeaseInfo),
}

/// One run per job at a time, across hosts: take the job's lease in the repository, back up,
/// release. Shared by `backup run` and the daemon.
pub async fn run_leased(
    cfg: &Config,
    regions: &[Region],
    job: &JobSpec,
    cancel: &CancellationToken,
    show_progress: bool,
) -> Result<Leased> {
    use crate::store::lease::{self, Refused};
    let started_at = Utc::now();
    let id = new_backup_id(started_at);
    // The lease names the folder this run writes, so a concurrent prune keeps it whatever its
    // grace period; and writing the lease is the proof that a region accepts writes.
    let lease = match lease::acquire_writing(
        regions,
        &format!("backup-{}", job.name),
        &format!("backup {}", job.name),
        cfg.lease_ttl,
        Some(backup_dir(&job.name.0, &id)),
    )
    .await
    {
        Ok(l) => l,
        Err(Refused::Held(h)) => return Ok(Leased::Held(h)),
        Err(Refused::Error(e)) => {
            return Err(e.context(format!("job {}: cannot take its lease", job.name)))
        }
    };
    let span = tracing::info_span!("backup", job = %job.name, id = %id);
    let result = run_inner(
        cfg,
        regions,
        job,
        id,
        started_at,
        &lease,
        cancel,
        show_progress,
    )
    .instrument(span)
    .await;
    lease.release().await;
    result.map(Leased::Done)
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    cfg: &Config,
    regions: &[Region],
    job: &JobSpec,
    id: String,
    started_at: chrono::DateTime<Utc>,
    lease: &crate::store::lease::Lease,
    cancel: &CancellationToken,
    show_progress: bool,
) -> Result<BackupReport> {
    let started = Instant::now();

    // Regions that cannot be written (they refused the lease) or reached are out before any
    // byte is dumped.
    let mut failed: Vec<RegionFailure> = lease
        .refused
        .iter()
        .map(|(region, error)| {
            tracing::warn!(%region, %error, "region cannot be written; skipped");
            RegionFailure {
                region: region.clone(),
                error: format!("cannot be written: {error}"),
            }
        })
        .collect();
    let writable = lease.regions();
    let checks = join_all(writable.iter().map(|r| r.ensure_repository())).await;
    let mut live = succeeded(writable, checks, &mut failed, "region unavailable");
    if live.len() < cfg.min_copies {
        return Err(below_min(cfg, &failed));
    }

    let src = job.source.backup_source()?;
    let mut run = src
        .begin()
        .await
        .map_err(|e| e.context(format!("job {}", job.name)))?;
    let outcome = stream::stream_all(
        cfg,
        job,
        &id,
        run.as_mut(),
        &mut live,
        &mut failed,
        cancel,
        show_progress,
    )
    .await;

    let artifacts = match outcome {
        Ok(a) => a,
        Err(e) => {
            abort_source(run.as_mut(), &job.name.0).await;
            cleanup(regions, &job.name.0, &id).await;
            return Err(e.context(format!("job {}: backup {id} failed", job.name)));
        }
    };

    let info = run.info().clone();
    let mut manifest = Manifest {
        format_version: FORMAT_VERSION,
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        id: id.clone(),
        job: job.name.0.clone(),
        source: SourceInfo {
            kind: job.source.kind().to_string(),
            server_version: info.server_version,
        },
        started_at,
        consistent_at: info.consistent_at,
        finished_at: Utc::now(),
        artifacts,
        regions: live.iter().map(|r| r.name.clone()).collect(),
        encryption: crate::pipeline::crypt::manifest_entry(cfg, job)?,
    };
    let as_written = manifest.clone();
    commit(cfg, regions, &live, &mut failed, &mut manifest, cancel).await?;
    let catalog_error = crate::catalog::record_backup(cfg, &as_written, &manifest.regions).await;

    Ok(BackupReport {
        job: job.name.0.clone(),
        id,
        regions: manifest.regions.clone(),
        failed_regions: failed,
        consistent_at: manifest.consistent_at,
        duration_seconds: started.elapsed().as_secs_f64(),
        raw_bytes: manifest.raw_size(),
        stored_bytes: manifest.stored_size(),
        peak_rss_bytes: peak_rss_bytes(),
        catalog_error,
    })
}

/// Write the manifest to every region that holds all artifacts; if fewer than `min_copies`
/// succeed, take the written manifests back so nothing looks like a backup.
async fn commit(
    cfg: &Config,
    all: &[Region],
    live: &[Region],
    failed: &mut Vec<RegionFailure>,
    m: &mut Manifest,
    cancel: &CancellationToken,
) -> Result<()> {
    if cancel.is_cancelled() {
        cleanup(all, &m.job, &m.id).await;
        return Err(pipeline::interrupted());
    }
    // Prove, per region, that every artifact is there with the size streamed: something
    // (a prune, an operator, a lifecycle rule) may have removed objects since they completed.
    let proofs = join_all(live.iter().map(|r| artifacts_present(r, m))).await;
    let proven = succeeded(
        live,
        proofs,
        failed,
        "artifacts not all present: no manifest there",
    );
    // Object Lock regions: the artifacts are locked before the manifest exists, the manifest
    // right after it is written; a region that cannot lock does not commit.
    let at = chrono::Utc::now();
    let mr: &Manifest = m;
    let locks = join_all(proven.iter().map(|r| async move {
        match r.lock_until(at) {
            Some(until) => r.lock_artifacts(mr, until).await,
            None => Ok(()),
        }
    }))
    .await;
    let locked = succeeded(
        &proven,
        locks,
        failed,
        "artifacts not locked: no manifest there",
    );
    let writes = join_all(locked.iter().map(|r| async move {
        r.write_manifest(mr).await?;
        match r.lock_until(at) {
            Some(until) => r.lock_manifest(mr, until).await,
            None => Ok(()),
        }
    }))
    .await;
    let committed = succeeded(
        &locked,
        writes,
        failed,
        "manifest not written or not locked",
    );
    if committed.len() < cfg.min_copies {
        cleanup(all, &m.job, &m.id).await;
        return Err(
            below_min(cfg, failed).context(format!("job {}: backup {} not committed", m.job, m.id))
        );
    }
    // Regions that failed hold partial objects of this id: remove them (best effort).
    for r in all
        .iter()
        .filter(|r| !committed.iter().any(|c| c.name == r.name))
    {
        if let Err(e) = r.remove_backup(&m.job, &m.id).await {
            tracing::warn!(region = %r.name, error = %e, "could not remove partial objects; `drctl prune` removes them later");
        }
    }
    // The index learns the manifest exactly as written (a cache: failures only warn).
    join_all(committed.iter().map(|r| r.index_add(mr))).await;
    m.regions = committed.iter().map(|r| r.name.clone()).collect();
    Ok(())
}

/// The regions whose step succeeded; each failure is logged as `what` and recorded.
fn succeeded(
    regions: &[Region],
    results: Vec<Result<()>>,
    failed: &mut Vec<RegionFailure>,
    what: &str,
) -> Vec<Region> {
    let mut ok = Vec::new();
    for (r, res) in regions.iter().zip(results) {
        match res {
            Ok(()) => ok.push(r.clone()),
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "{what}");
                failed.push(RegionFailure {
                    region: r.name.clone(),
                    error: e.to_string(),
                });
            }
        }
    }
    ok
}

/// One stat per artifact: present, with exactly the stored size the run streamed.
async fn artifacts_present(r: &Region, m: &Manifest) -> Result<()> {
    for a in &m.artifacts {
        let path = format!("{}{}", backup_dir(&m.job, &m.id), a.path);
        let len = match r.op.stat(&path).await {
            Ok(meta) => meta.content_length(),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {
                return Err(Error::failed(format!(
                    "region {}: artifact {path} is gone after it was stored",
                    r.name
                ))
                .hint("something removed it during the run (a `drctl prune`, a lifecycle rule, a person); run the backup again"));
            }
            Err(e) => return Err(r.err(e, &path)),
        };
        if len != a.stored_size {
            return Err(Error::failed(format!(
                "region {}: artifact {path} holds {len} bytes, the run stored {}",
                r.name, a.stored_size
            ))
            .hint("the object changed during the run; run the backup again"));
        }
    }
    Ok(())
}

fn below_min(cfg: &Config, failed: &[RegionFailure]) -> Error {
    let why: Vec<String> = failed
        .iter()
        .map(|f| format!("region {}: {}", f.region, f.error))
        .collect();
    Error::new(
        ErrorKind::Failed,
        format!(
            "fewer than min_copies ({}) of {} regions could store the backup: {}",
            cfg.min_copies,
            cfg.regions.len(),
            why.join("; ")
        ),
    )
    .hint("bring the failed region(s) back, or lower min_copies if fewer copies are acceptable; nothing was committed")
}

/// Remove a failed run's objects from every region (best effort, each region independently).
async fn cleanup(regions: &[Region], job: &str, id: &str) {
    let results = join_all(regions.iter().map(|r| r.remove_backup(job, id))).await;
    for (r, res) in regions.iter().zip(results) {
        if let Err(e) = res {
            tracing::warn!(region = %r.name, error = %e, "could not remove partial objects; `drctl prune` removes them later");
        }
    }
}

/// Peak resident set size of this process, from /proc (Linux); `None` elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// How long a failed or interrupted run waits for its source to clean up (a server-side
/// snapshot to delete, say). A source that hangs must not hold the exit past Kubernetes'
/// default 30 s termination grace, after which the pod is killed before the regions are
/// cleaned.
const SOURCE_CLEANUP: std::time::Duration = std::time::Duration::from_secs(10);

async fn abort_source(run: &mut dyn crate::source::SourceRun, job: &str) {
    if tokio::time::timeout(SOURCE_CLEANUP, run.abort())
        .await
        .is_err()
    {
        tracing::warn!(
            job,
            seconds = SOURCE_CLEANUP.as_secs(),
            "the source did not finish cleaning up in time; check it for a leftover server-side snapshot or export"
        );
    }
}
