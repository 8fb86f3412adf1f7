//! `drctl schedule`: the daemon. Runs each job's backup on its `schedule`, its verification on
//! `verify.schedule`, and prunes on `scheduler.prune`; serves `/healthz`, `/readyz` and
//! `/metrics`.
//!
//! - Never two runs of one task at once: an in-process guard per task, and for backups the
//!   job's repository lease (so a CronJob or a second daemon elsewhere is excluded too). A tick
//!   that finds its task still running is skipped, logged and counted
//!   (`drctl_schedule_overlaps_total`).
//! - At most `scheduler.max_concurrent` runs at once.
//! - Missed ticks (the daemon was down) run once at start: see `plan.rs`.
//! - SIGTERM/SIGINT: stop starting runs, give in-flight ones `shutdown_grace` to finish, then
//!   cancel them — a cancelled backup aborts its uploads and removes its partial objects — and
//!   exit 0. A second signal cancels at once.
//! - SIGHUP: re-read and validate the config; on error keep the old one and say why.
//!   `listen` and `max_concurrent` need a restart.

mod http;
pub mod plan;
mod runner;

use crate::backup::open_regions;
use crate::config::daemon::EventKind;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::{unix, Registry};
use crate::notify::{Event, Notifiers};
use chrono::{DateTime, Utc};
use plan::{Task, TaskKind};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9477";
/// How often RPO exposure is re-read from the repository between runs.
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// The served page reloads itself this often (seconds): once per status refresh.
const PAGE_REFRESH: u32 = 60;

/// What the runs, the HTTP side and the loop share.
pub struct State {
    pub metrics: Registry,
    pub ready: AtomicBool,
    running: Mutex<HashSet<String>>,
    notifiers: RwLock<Arc<Notifiers>>,
    breached: Mutex<HashSet<(EventKind, String)>>,
    /// The console page, rendered by the periodic status refresh; served at `/`.
    pub page: RwLock<Option<String>>,
}

impl State {
    fn notifiers(&self) -> Arc<Notifiers> {
        self.notifiers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub async fn run(path: &Path, listen: Option<SocketAddr>) -> Result<()> {
    let mut cfg = Arc::new(Config::load(path)?);
    let addr = listen
        .or(cfg.scheduler.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::usage(format!("cannot listen on {addr}: {e}"))
            .hint("choose another address with --listen or scheduler.listen")
    })?;
    let state = Arc::new(State {
        metrics: Registry::default(),
        ready: AtomicBool::new(false),
        running: Mutex::new(HashSet::new()),
        notifiers: RwLock::new(Arc::new(Notifiers::new(&cfg.notifications))),
        breached: Mutex::new(HashSet::new()),
        page: RwLock::new(None),
    });
    let http_stop = CancellationToken::new();
    tokio::spawn(http::serve(listener, state.clone(), http_stop.clone()));
    tracing::info!(listen = %addr, "serving /healthz, /readyz, /metrics");

    let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
    let mut hup = signals(stop.clone(), abort.clone());
    let sem = Arc::new(Semaphore::new(cfg.scheduler.max_concurrent));

    open_regions(&cfg)?;
    refresh_status(&state, &cfg, None).await;
    let mut next = plan_ticks(&cfg, Utc::now(), true).await;
    state.ready.store(true, Ordering::SeqCst);
    tracing::info!(tasks = next.len(), "scheduler started");

    let mut runs: JoinSet<()> = JoinSet::new();
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    status_tick.tick().await;
    loop {
        export_next(&state, &next);
        let now = Utc::now();
        let wait = next
            .iter()
            .map(|(_, t)| *t)
            .min()
            .map_or(Duration::from_secs(3600), |t| {
                (t - now).to_std().unwrap_or(Duration::ZERO)
            });
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {
                let now = Utc::now();
                for (task, at) in next.iter_mut() {
                    if *at <= now {
                        fire(&state, &cfg, task, &sem, &stop, &abort, &mut runs);
                        *at = plan::next_tick(&task.schedule, &cfg.scheduler.timezone.0, now)
                            .unwrap_or(now + chrono::Duration::days(3650));
                    }
                }
            }
            Some(()) = hup.recv() => {
                match Config::load(path) {
                    Ok(new) => {
                        if new.scheduler.listen != cfg.scheduler.listen
                            || new.scheduler.max_concurrent != cfg.scheduler.max_concurrent {
                            tracing::warn!("scheduler.listen and scheduler.max_concurrent changes take effect after a restart");
                        }
                        cfg = Arc::new(new);
                        *state.notifiers.write().unwrap_or_else(|p| p.into_inner()) =
                            Arc::new(Notifiers::new(&cfg.notifications));
                        next = plan_ticks(&cfg, Utc::now(), false).await;
                        state.metrics.clear("drctl_schedule_next_run_timestamp_seconds");
                        tracing::info!(tasks = next.len(), "SIGHUP: config re-read and applied");
                    }
                    Err(e) => tracing::error!(error = %e, "SIGHUP: the new config is invalid; still running the previous one"),
                }
            }
            _ = status_tick.tick() => refresh_status(&state, &cfg, None).await,
            Some(_) = runs.join_next(), if !runs.is_empty() => {}
        }
    }

    state.ready.store(false, Ordering::SeqCst);
    let grace = cfg.scheduler.shutdown_grace;
    if !runs.is_empty() {
        tracing::warn!(runs = runs.len(), grace = %humantime::format_duration(grace),
            "stopping: no new runs; waiting for the running ones");
        let drained = tokio::select! {
            _ = drain(&mut runs) => true,
            _ = tokio::time::sleep(grace) => false,
            _ = abort.cancelled() => false,
        };
        if !drained {
            tracing::warn!(
                runs = runs.len(),
                "grace period over: aborting the running ones (they clean up)"
            );
            abort.cancel();
            drain(&mut runs).await;
        }
    }
    http_stop.cancel();
    tracing::info!("scheduler stopped");
    Ok(())
}

async fn drain(runs: &mut JoinSet<()>) {
    while runs.join_next().await.is_some() {}
}

/// First signal (TERM or INT) stops new runs; the second aborts the running ones. SIGHUP is
/// passed on for a reload.
fn signals(stop: CancellationToken, abort: CancellationToken) -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => { let _ = tx.try_send(()); continue; }
            }
            if stop.is_cancelled() {
                tracing::warn!("second signal: aborting running runs now");
                abort.cancel();
            } else {
                tracing::warn!("signal received: stopping");
                stop.cancel();
            }
        }
    });
    rx
}

/// Each task's next tick; at start, a task that missed its last tick is due now.
async fn plan_ticks(cfg: &Config, now: DateTime<Utc>, startup: bool) -> Vec<(Task, DateTime<Utc>)> {
    let tz = &cfg.scheduler.timezone.0;
    let mut out = Vec::new();
    for task in plan::tasks(cfg) {
        let due = if startup && task.kind != TaskKind::Prune {
            let last = last_run(cfg, &task).await;
            plan::missed(&task.schedule, tz, now, last)
        } else {
            false
        };
        if due {
            tracing::info!(task = %task.id(), "missed its last tick while the daemon was down: running once now");
        }
        let at = if due {
            now
        } else {
            plan::next_tick(&task.schedule, tz, now).unwrap_or(now + chrono::Duration::days(3650))
        };
        out.push((task, at));
    }
    out
}

/// When the task last ran, from the repository: the newest backup's start, or the newest
/// verification's start. Unreadable regions are skipped.
async fn last_run(cfg: &Config, task: &Task) -> Option<DateTime<Utc>> {
    let job = task.job.as_deref()?;
    let regions = open_regions(cfg).ok()?;
    let mut last = None;
    for r in &regions {
        let times: Vec<DateTime<Utc>> = match task.kind {
            TaskKind::Backup => match r.list_manifests(job).await {
                Ok(ms) => ms.iter().map(|m| m.started_at).collect(),
                Err(_) => continue,
            },
            TaskKind::Verify => match r.latest_verifications(job).await {
                Ok(vs) => vs
                    .iter()
                    .filter_map(|(_, v)| serde_json::from_value(v["started_at"].clone()).ok())
                    .collect(),
                Err(_) => continue,
            },
            TaskKind::Prune => return None,
        };
        last = last.max(times.into_iter().max());
    }
    last
}

fn export_next(state: &State, next: &[(Task, DateTime<Utc>)]) {
    for (t, at) in next {
        let job = t.job.as_deref().unwrap_or("");
        state.metrics.set(
            "drctl_schedule_next_run_timestamp_seconds",
            &[("job", job), ("task", t.kind.name())],
            unix(*at),
        );
    }
}

/// Start a run of `task` unless one is still going (then the tick is skipped and counted).
fn fire(
    state: &Arc<State>,
    cfg: &Arc<Config>,
    task: &Task,
    sem: &Arc<Semaphore>,
    stop: &CancellationToken,
    abort: &CancellationToken,
    runs: &mut JoinSet<()>,
) {
    let id = task.id();
    let job = task.job.clone().unwrap_or_default();
    if !state
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone())
    {
        tracing::warn!(task = %id, "the previous run is still going: this tick is skipped");
        state.metrics.add(
            "drctl_schedule_overlaps_total",
            &[("job", &job), ("task", task.kind.name())],
            1.0,
        );
        return;
    }
    let jitter = cfg
        .scheduler
        .jitter
        .filter(|j| !j.is_zero())
        .map_or(Duration::ZERO, |j| j.mul_f64(rand::random::<f64>()));
    let (state, cfg, task, sem, stop, abort) = (
        state.clone(),
        cfg.clone(),
        task.clone(),
        sem.clone(),
        stop.clone(),
        abort.clone(),
    );
    runs.spawn(async move {
        let started = async {
            tokio::time::sleep(jitter).await;
            sem.acquire_owned().await.ok()
        };
        let permit = tokio::select! {
            p = started => p,
            _ = stop.cancelled() => None,
        };
        if permit.is_some() && !stop.is_cancelled() {
            tracing::info!(task = %id, "run starting");
            state.metrics.add("drctl_runs_in_progress", &[], 1.0);
            runner::execute(&state, &cfg, &task, &abort).await;
            state.metrics.add("drctl_runs_in_progress", &[], -1.0);
        }
        drop(permit);
        state
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    });
}

/// Re-read the status of every job (`only: None`, the periodic refresh, which also renders
/// the console page served at `/`) or of the one job that just ran: RPO and RTO metrics, and
/// one notification when a job goes into breach (none while it stays there).
pub async fn refresh_status(state: &Arc<State>, cfg: &Config, only: Option<&str>) {
    let Ok(regions) = open_regions(cfg) else {
        return;
    };
    let now = Utc::now();
    let all = match only {
        None => match crate::console::gather(cfg, &regions, now).await {
            Ok(page) => {
                export_console(state, &regions, &page);
                page.jobs.into_iter().map(|j| j.status).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the status");
                return;
            }
        },
        Some(o) => {
            let (drills, _) = crate::status::drill_restores(&regions).await;
            let mut all = Vec::new();
            for job in cfg.jobs.iter().filter(|j| j.name.0 == o) {
                match crate::status::job_status(cfg, &regions, job, &drills, now).await {
                    Ok(s) => all.push(s),
                    Err(e) => {
                        tracing::warn!(job = %job.name, error = %e, "cannot read the job's status")
                    }
                }
            }
            all
        }
    };
    crate::metrics::record_status(&state.metrics, &all);
    if cfg.catalog.is_some() {
        state.metrics.set(
            "drctl_catalog_errors_total",
            &[],
            crate::catalog::ERRORS.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
    }
    let mut newly = Vec::new();
    {
        let mut breached = state.breached.lock().unwrap_or_else(|p| p.into_inner());
        for s in &all {
            for (kind, now_breached) in [
                (EventKind::RpoBreach, s.rpo_breached),
                (EventKind::RtoBreach, s.rto_breached),
            ] {
                let key = (kind, s.job.clone());
                if !now_breached {
                    breached.remove(&key);
                } else if breached.insert(key) {
                    newly.push((kind, s));
                }
            }
        }
    }
    let notifiers = state.notifiers();
    for (kind, s) in newly {
        let msg = breach_message(kind, s);
        tracing::warn!(job = %s.job, "{msg}");
        notifiers.notify(&Event::new(kind, &s.job, msg)).await;
    }
}

fn breach_message(kind: EventKind, s: &crate::status::JobStatus) -> String {
    let d = |t: f64| humantime::format_duration(Duration::from_secs(t.max(0.0) as u64)).to_string();
    if kind == EventKind::RtoBreach {
        let target = s.rto_target_seconds.map_or("-".to_string(), d);
        return match &s.rto_measured {
            Some(m) => format!(
                "RTO: the newest timed restore ({}, {}) took {}, over the target {target}",
                m.by,
                m.backup,
                crate::drill::measure::fmt_secs(m.seconds)
            ),
            None => format!(
                "RTO not measured: the job's target is {target} and no restore of it was ever timed (run `drctl verify JOB --level restore`)"
            ),
        };
    }
    let exposed = s
        .rpo_exposure_seconds
        .map_or("unbounded (no backup counts)".to_string(), d);
    let target = s.rpo_target_seconds.map_or("-".to_string(), d);
    format!("RPO exposure {exposed} exceeds the target {target}")
}

/// What only the full refresh knows: the page, which regions answered, when drills are due.
fn export_console(state: &State, regions: &[crate::store::Region], page: &crate::console::Page) {
    *state.page.write().unwrap_or_else(|p| p.into_inner()) =
        Some(crate::console::html::render(page, Some(PAGE_REFRESH)));
    for r in regions {
        let up = !page.unreadable_regions.contains(&r.name);
        state.metrics.set(
            "drctl_region_readable",
            &[("region", &r.name)],
            if up { 1.0 } else { 0.0 },
        );
    }
    state
        .metrics
        .clear("drctl_drill_next_due_timestamp_seconds");
    for d in page.drills.iter().filter_map(|d| d.due.as_ref()) {
        state.metrics.set(
            "drctl_drill_next_due_timestamp_seconds",
            &[("playbook", &d.playbook)],
            d.at.map_or(0.0, |t| t.timestamp() as f64),
        );
    }
    for d in &page.drills {
        if let Some(last) = d
            .runs
            .iter()
            .filter(|r| r.passed)
            .map(|r| r.finished_at)
            .max()
        {
            state.metrics.set(
                "drctl_drill_last_passed_timestamp_seconds",
                &[("playbook", &d.playbook)],
                last.timestamp() as f64,
            );
        }
    }
}
