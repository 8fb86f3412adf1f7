//! One scheduled run: a backup (under the job's repository lease), a verification or a
//! prune, with retries for temporary errors only, each attempt logged with its cause; then
//! metrics and notifications.

use super::plan::{backoff, Task, TaskKind};
use super::State;
use crate::backup::{self, open_regions, Leased};
use crate::config::daemon::EventKind;
use crate::config::{Config, VerifyLevel};
use crate::error::{ErrorKind, Result};
use crate::metrics::{self, unix};
use crate::notify::Event;
use crate::restore::Selector;
use crate::store::lease::{self, Refused};
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn execute(state: &Arc<State>, cfg: &Config, task: &Task, abort: &CancellationToken) {
    let job = task.job.as_deref().unwrap_or_default();
    match task.kind {
        TaskKind::Backup => run_backup(state, cfg, job, abort).await,
        TaskKind::Verify => run_verify(state, cfg, job, abort).await,
        TaskKind::Prune => run_prune(state, cfg, abort).await,
    }
}

/// Call `attempt` until it succeeds, fails for good, or attempts run out; only temporary
/// errors are retried, after `backoff` (interrupted by `abort`).
async fn with_retries<T, F, Fut>(
    cfg: &Config,
    what: &str,
    abort: &CancellationToken,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let attempts = cfg.scheduler.attempts.max(1);
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if e.is_temporary() && n < attempts && !abort.is_cancelled() => {
                n += 1;
                let wait = backoff(cfg.scheduler.backoff, n);
                tracing::warn!(task = what, attempt = n - 1, of = attempts, error = %e,
                    retry_in = %humantime::format_duration(wait), "attempt failed with a temporary error; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = abort.cancelled() => return Err(e),
                }
            }
            other => {
                if let Err(e) = &other {
                    tracing::error!(task = what, attempt = n, of = attempts, error = %e, "failed");
                }
                return other;
            }
        }
    }
}

async fn run_backup(state: &Arc<State>, cfg: &Config, job: &str, abort: &CancellationToken) {
    let Ok(spec) = cfg.job(job) else { return };
    let what = format!("backup/{job}");
    let result = with_retries(cfg, &what, abort, || async {
        let regions = open_regions(cfg)?;
        backup::run_leased(cfg, &regions, spec, abort, false).await
    })
    .await;
    let result = match result {
        Ok(Leased::Held(h)) => {
            tracing::warn!(job, holder = %h.describe(), "another run of the job holds its lease: tick skipped");
            state.metrics.add(
                "drctl_schedule_overlaps_total",
                &[("job", job), ("task", "backup")],
                1.0,
            );
            return;
        }
        Ok(Leased::Done(r)) => Ok(r),
        Err(e) => Err(e),
    };
    if matches!(&result, Err(e) if e.kind() == ErrorKind::Interrupted) {
        // Shutdown aborted it; it cleaned up. Not a failure of the job.
        state.metrics.set(
            "drctl_backup_last_attempt_timestamp_seconds",
            &[("job", job)],
            unix(chrono::Utc::now()),
        );
        return;
    }
    metrics::record_backup(&state.metrics, job, &result);
    if let Ok(r) = &result {
        tracing::info!(job, backup = %r.id, seconds = r.duration_seconds, "scheduled backup committed");
    }
    crate::notify::backup_outcome(&state.notifiers(), job, &result).await;
    super::refresh_status(state, cfg, Some(job)).await;
}

async fn run_verify(state: &Arc<State>, cfg: &Config, job: &str, abort: &CancellationToken) {
    let Ok(spec) = cfg.job(job) else { return };
    let level = spec
        .verify
        .as_ref()
        .map_or(VerifyLevel::Structure, |v| v.level);
    let what = format!("verify/{job}");
    let result = with_retries(cfg, &what, abort, || {
        crate::verify::run(cfg, spec, &Selector::Latest, level, false)
    })
    .await;
    let failure = match result {
        Ok(r) if r.passed => {
            state.metrics.set(
                "drctl_verify_last_success_timestamp_seconds",
                &[("job", job)],
                unix(r.finished_at),
            );
            if let Some(secs) = r.restore_seconds {
                state
                    .metrics
                    .set("drctl_restore_test_duration_seconds", &[("job", job)], secs);
            }
            state
                .metrics
                .add("drctl_verify_failures_total", &[("job", job)], 0.0);
            None
        }
        Ok(r) => Some(crate::verify::failure(&r)),
        Err(e) => Some(e),
    };
    if let Some(e) = failure {
        state
            .metrics
            .add("drctl_verify_failures_total", &[("job", job)], 1.0);
        state
            .notifiers()
            .notify(&Event::new(EventKind::VerifyFailure, job, e.message()))
            .await;
    }
    super::refresh_status(state, cfg, Some(job)).await;
}

async fn run_prune(state: &Arc<State>, cfg: &Config, abort: &CancellationToken) {
    let result = with_retries(cfg, "prune", abort, || async {
        let regions = open_regions(cfg)?;
        let held = match lease::acquire(&regions, "prune", "prune (daemon)", cfg.lease_ttl).await {
            Ok(l) => l,
            Err(Refused::Held(h)) => {
                tracing::warn!(holder = %h.describe(), "another prune is running: tick skipped");
                return Ok(None);
            }
            Err(Refused::Error(e)) => return Err(e.context("cannot take the prune lease")),
        };
        let jobs: Vec<_> = cfg.jobs.iter().filter(|j| j.retention.is_some()).collect();
        let opts = crate::retention::Options {
            dry_run: false,
            grace: std::time::Duration::from_secs(24 * 3600),
        };
        let rows = crate::retention::prune(cfg, &regions, &jobs, &opts).await;
        held.release().await;
        rows.map(Some)
    })
    .await;
    if let Ok(Some(rows)) = result {
        let deleted = rows
            .iter()
            .filter(|r| r.action == crate::retention::Action::Delete)
            .count();
        tracing::info!(deleted, "scheduled prune done");
        state
            .metrics
            .add("drctl_prune_deleted_total", &[], deleted as f64);
        state.metrics.set(
            "drctl_prune_last_success_timestamp_seconds",
            &[],
            unix(chrono::Utc::now()),
        );
    }
}
