//! Runs a validated playbook: steps in order, `parallel` groups concurrently, each attempt
//! under the step's hard timeout (dropping the attempt kills its process group or cancels
//! its request), retries with backoff, `until_success` polling, `on_failure`, outputs into
//! variables, an abort guard, Ctrl-C, and rollback. Every event goes to the journal first.

use super::journal::Journal;
use super::measure;
use super::plan::{Item, OnFailure, Playbook, Step};
use super::record::{Abort, Phase, RunRecord, Status, StepRecord};
use super::steps::{Ctx, Outcome, Prompter};
use super::vars::Scope;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct RunOptions {
    pub run_id: String,
    pub yes: bool,
    pub interactive: bool,
    /// Run the rollback steps at the end even when the drill passed.
    pub rollback: bool,
    pub config: Option<Arc<Config>>,
    /// Cancelled on the first Ctrl-C / SIGTERM: abort the drill, then roll back.
    pub interrupt: CancellationToken,
    /// Cancelled on a second one: stop the rollback too.
    pub hard_stop: CancellationToken,
}

/// Refuse to start what cannot finish: manual steps with nobody to answer, engine steps
/// without a config.
pub fn preflight(pb: &Playbook, opts: &RunOptions) -> Result<()> {
    if let Some(s) = pb
        .all_steps()
        .find(|s| s.kind_name == "manual" && !s.timeout.is_zero())
    {
        if !opts.yes && !opts.interactive {
            return Err(Error::usage(format!(
                "step `{}` is manual ({} must confirm it) and standard input is not a terminal; nothing was run",
                s.id, s.owner
            ))
            .hint("run the drill on a terminal to answer y / n / skip, or pass --yes to confirm every manual step"));
        }
    }
    if let Some(s) = pb.all_steps().find(|s| s.kind.needs_config()) {
        if opts.config.is_none() {
            return Err(Error::usage(format!(
                "step `{}` ({}) drives drctl's engine and needs its config; nothing was run",
                s.id, s.kind_name
            ))
            .hint("pass -c FILE or set DRCTL_CONFIG"));
        }
    }
    Ok(())
}

struct Shared {
    journal: Arc<Journal>,
    prompter: Arc<Prompter>,
    config: Option<Arc<Config>>,
    /// Why the drill was stopped from outside the step sequence (guard, interrupt).
    stop_reason: Mutex<Option<Abort>>,
    interrupt: CancellationToken,
}

impl Shared {
    fn reason(&self) -> Option<Abort> {
        let mut r = self.stop_reason.lock().unwrap();
        if self.interrupt.is_cancelled() && r.is_none() {
            *r = Some(Abort::Interrupted);
        }
        r.clone()
    }
}

pub async fn run(pb: &Playbook, opts: RunOptions, journal: Arc<Journal>) -> RunRecord {
    let started_at = Utc::now();
    let shared = Arc::new(Shared {
        journal: journal.clone(),
        prompter: Arc::new(Prompter::new(opts.yes, opts.interactive)),
        config: opts.config.clone(),
        stop_reason: Mutex::new(None),
        interrupt: opts.interrupt.clone(),
    });
    journal.event(
        "drill_started",
        json!({
            "playbook": pb.name, "scenario": pb.scenario, "run_id": opts.run_id, "source": pb.source,
            "targets": { "rto_seconds": pb.targets.rto.map(|d| d.as_secs_f64()), "rpo_seconds": pb.targets.rpo.map(|d| d.as_secs_f64()) },
            "steps": pb.items.iter().flat_map(|i| i.steps()).map(|s| json!({"id": s.id, "owner": s.owner, "kind": s.kind_name})).collect::<Vec<_>>(),
        }),
    );
    tracing::info!(playbook = %pb.name, run = %opts.run_id, "drill started");

    // `stop` ends the main sequence: a failed step, the guard, or an interrupt.
    let stop = opts.interrupt.child_token();
    {
        let (interrupt, stop2, sh) = (opts.interrupt.clone(), stop.clone(), shared.clone());
        tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = interrupt.cancelled() => {
                    sh.reason();
                    sh.journal.event("interrupted", json!({}));
                }
                _ = stop2.cancelled() => {}
            }
        });
    }
    let guard_task = pb.guard.clone().map(|g| {
        let (stop, sh, vars) = (stop.clone(), shared.clone(), pb.vars.clone());
        tokio::spawn(async move {
            let mut failures = 0;
            let scope = Scope {
                vars,
                ..Default::default()
            };
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(g.every) => {}
                }
                let ctx = ctx_for(&g.step, &scope, &sh);
                let r = tokio::time::timeout(g.step.timeout, g.step.kind.run(&ctx)).await;
                let err = match r {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!(
                        "no answer within {}",
                        humantime::format_duration(g.step.timeout)
                    )),
                };
                match err {
                    None => failures = 0,
                    Some(e) => {
                        failures += 1;
                        sh.journal.event(
                            "guard_failed",
                            json!({"failures": failures, "of": g.failures, "error": e}),
                        );
                        tracing::warn!(failures, of = g.failures, error = %e, "guard probe failed");
                        if failures >= g.failures {
                            let reason = Abort::Guard {
                                step: g.step.id.clone(),
                                failures,
                                error: e.to_string(),
                            };
                            sh.stop_reason.lock().unwrap().get_or_insert(reason);
                            stop.cancel();
                            return;
                        }
                    }
                }
            }
        })
    });

    let mut scope = Scope {
        vars: pb.vars.clone(),
        ..Default::default()
    };
    let mut records: Vec<StepRecord> = Vec::new();
    let mut aborted: Option<Abort> = None;
    for item in &pb.items {
        if aborted.is_none() && stop.is_cancelled() {
            aborted = shared.reason().or(Some(Abort::Stopped));
        }
        if aborted.is_some() {
            for s in item.steps() {
                records.push(not_run(s, Phase::Main, group_of(item)));
            }
            continue;
        }
        let results: Vec<(StepRecord, Option<Outcome>)> =
            match item {
                Item::Step(s) => vec![run_step(s, Phase::Main, None, &scope, &stop, &shared).await],
                Item::Parallel { id, .. } => {
                    futures::future::join_all(item.steps().into_iter().map(|s| {
                        run_step(s, Phase::Main, Some(id.clone()), &scope, &stop, &shared)
                    }))
                    .await
                }
            };
        for ((rec, outcome), step) in results.into_iter().zip(item.steps()) {
            if let Some(o) = outcome {
                for (k, v) in o.outputs {
                    scope.outputs.insert(format!("steps.{}.{k}", step.id), v);
                }
            }
            if !rec.status.ok() && aborted.is_none() {
                if rec.status == Status::Cancelled {
                    aborted = shared.reason().or(Some(Abort::Stopped));
                } else if step.on_failure == OnFailure::Abort {
                    aborted = Some(Abort::Step {
                        step: step.id.clone(),
                        status: rec.status.as_str().to_string(),
                        error: rec.error.clone().unwrap_or_default(),
                    });
                }
            }
            records.push(rec);
        }
        if aborted.is_some() {
            stop.cancel();
        }
    }
    stop.cancel();
    if let Some(t) = guard_task {
        let _ = t.await;
    }
    if let Some(a) = &aborted {
        journal.event("aborted", json!({ "reason": a.to_string(), "cause": a }));
        tracing::error!(reason = %a, "drill aborted");
    }

    if !pb.rollback.is_empty() && (aborted.is_some() || opts.rollback) {
        journal.event(
            "rollback_started",
            json!({ "because": if aborted.is_some() { "aborted" } else { "--rollback" } }),
        );
        tracing::info!(steps = pb.rollback.len(), "rolling back");
        for s in &pb.rollback {
            if opts.hard_stop.is_cancelled() {
                records.push(not_run(s, Phase::Rollback, None));
                continue;
            }
            let (rec, outcome) =
                run_step(s, Phase::Rollback, None, &scope, &opts.hard_stop, &shared).await;
            if let Some(o) = outcome {
                for (k, v) in o.outputs {
                    scope.outputs.insert(format!("steps.{}.{k}", s.id), v);
                }
            }
            records.push(rec);
        }
    }

    let finished_at = Utc::now();
    let m = measure::measure(&records, started_at, pb.targets.rto, pb.targets.rpo);
    let mut failures = Vec::new();
    for r in records
        .iter()
        .filter(|r| !r.status.ok() && r.status != Status::NotRun)
    {
        let phase = if r.phase == Phase::Rollback {
            "rollback step"
        } else {
            "step"
        };
        failures.push(format!(
            "{phase} `{}` ({}) {}: {}",
            r.id,
            r.owner,
            r.status.as_str(),
            r.error.clone().unwrap_or_default()
        ));
    }
    if let Some(a) = &aborted {
        // A failed step is listed already; a guard or an interrupt is not.
        if !matches!(a, Abort::Step { .. }) {
            failures.push(format!("aborted: {a}"));
        }
    }
    for (name, metric) in [("RTO", &m.rto), ("RPO", &m.rpo)] {
        if metric.met == Some(false) {
            failures.push(measure::describe(name, metric));
        }
    }
    let rec = RunRecord {
        format: 1,
        playbook: pb.name.clone(),
        title: pb.title.clone(),
        metadata: pb.metadata.clone(),
        rehearsal: m.rehearsal.is_some(),
        scenario: pb.scenario.clone(),
        description: pb.description.clone(),
        source: pb.source.clone(),
        run_id: opts.run_id.clone(),
        host: crate::store::lease::hostname(),
        drctl_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        finished_at,
        fault_at: m.fault_at,
        recovered_at: m.recovered_at,
        durable_at: m.durable_at,
        rto: m.rto,
        rpo: m.rpo,
        passed: failures.is_empty(),
        failures,
        steps: records,
        aborted: aborted.as_ref().map(|a| a.to_string()),
        cause: aborted,
    };
    journal.event(
        "drill_finished",
        json!({ "passed": rec.passed, "rto": rec.rto, "rpo": rec.rpo, "failures": rec.failures }),
    );
    rec
}

fn group_of(item: &Item) -> Option<String> {
    match item {
        Item::Parallel { id, .. } => Some(id.clone()),
        Item::Step(_) => None,
    }
}

fn ctx_for(s: &Step, scope: &Scope, sh: &Shared) -> Ctx {
    Ctx {
        step_id: s.id.clone(),
        step_name: s.name.clone(),
        owner: s.owner.clone(),
        timeout: s.timeout,
        scope: scope.clone(),
        config: sh.config.clone(),
        prompter: sh.prompter.clone(),
    }
}

fn blank(s: &Step, phase: Phase, group: Option<String>, status: Status) -> StepRecord {
    StepRecord {
        id: s.id.clone(),
        name: s.name.clone(),
        owner: s.owner.clone(),
        kind: s.kind_name.clone(),
        phase,
        group,
        status,
        started_at: None,
        finished_at: None,
        attempts: 0,
        timeout_seconds: s.timeout.as_secs_f64(),
        fault: s.fault,
        recovered: s.recovered,
        durable_at: None,
        error: None,
        output: String::new(),
        restored: None,
        confirmed_by_flag: false,
    }
}

fn not_run(s: &Step, phase: Phase, group: Option<String>) -> StepRecord {
    blank(s, phase, group, Status::NotRun)
}

/// Parse what an RPO probe returned: RFC 3339, PostgreSQL's text form, or Unix seconds.
pub fn parse_instant(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(t) = DateTime::parse_from_str(v, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let secs: f64 = v.parse().ok()?;
    DateTime::from_timestamp_millis((secs * 1000.0) as i64)
}

async fn run_step(
    s: &Step,
    phase: Phase,
    group: Option<String>,
    scope: &Scope,
    stop: &CancellationToken,
    sh: &Shared,
) -> (StepRecord, Option<Outcome>) {
    let mut rec = blank(s, phase, group, Status::Passed);
    let started = Utc::now();
    rec.started_at = Some(started);
    sh.journal.event(
        "step_started",
        json!({ "id": s.id, "name": s.name, "owner": s.owner, "kind": s.kind_name, "phase": phase,
                "timeout_seconds": s.timeout.as_secs_f64(), "fault": s.fault, "recovered": s.recovered,
                "target": s.kind.describe() }),
    );
    tracing::info!(step = %s.id, owner = %s.owner, kind = %s.kind_name, "▶ {}", s.name);
    if s.timeout.is_zero() {
        // `timeout: 0`: the playbook says this happens by itself; nobody is asked.
        rec.status = Status::Automatic;
        rec.output = "happens by itself (timeout 0): recorded, not waited for or confirmed".into();
        rec.finished_at = Some(Utc::now());
        sh.journal.event(
            "step_finished",
            serde_json::to_value(&rec).unwrap_or_default(),
        );
        tracing::info!(step = %s.id, owner = %s.owner, "∘ {} (automatic)", s.name);
        return (rec, Some(Outcome::default()));
    }
    let ctx = ctx_for(s, scope, sh);
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let last_error: Mutex<Option<String>> = Mutex::new(None);
    let attempt_loop = async {
        let mut delay = s.backoff;
        loop {
            let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            match s.kind.run(&ctx).await {
                Ok(o) => return Ok(o),
                Err(e) => {
                    *last_error.lock().unwrap() = Some(e.to_string());
                    if e.kind() == ErrorKind::Usage {
                        return Err(e);
                    }
                    if let Some(every) = s.until_success {
                        if n == 1 || n.is_multiple_of(10) {
                            sh.journal.event("attempt_failed", json!({"id": s.id, "attempt": n, "error": e.to_string(), "polling": true}));
                        }
                        tokio::time::sleep(every).await;
                        continue;
                    }
                    if n <= s.retries {
                        sh.journal.event("attempt_failed", json!({"id": s.id, "attempt": n, "error": e.to_string(), "retry_in_seconds": delay.as_secs_f64()}));
                        tracing::warn!(step = %s.id, attempt = n, error = %e, "attempt failed; retrying in {}", humantime::format_duration(delay));
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(300));
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    };
    let result = tokio::select! {
        r = tokio::time::timeout(s.timeout, attempt_loop) => Some(r),
        _ = stop.cancelled() => None,
    };
    rec.attempts = attempts.load(std::sync::atomic::Ordering::SeqCst);
    let mut outcome = None;
    match result {
        None => {
            rec.status = Status::Cancelled;
            rec.error = Some(
                sh.reason()
                    .map_or_else(|| "the drill was stopped".into(), |a| a.to_string()),
            );
        }
        Some(Err(_)) => {
            rec.status = Status::TimedOut;
            let last = last_error.lock().unwrap().clone();
            rec.error = Some(match last {
                Some(e) => format!(
                    "no success within {} ({} attempts); last error: {e}",
                    humantime::format_duration(s.timeout),
                    rec.attempts
                ),
                None => format!(
                    "did not finish within {}; it was stopped",
                    humantime::format_duration(s.timeout)
                ),
            });
        }
        Some(Ok(Err(e))) => {
            rec.status = Status::Failed;
            rec.error = Some(e.to_string());
        }
        Some(Ok(Ok(o))) => {
            rec.output = o.excerpt.clone();
            rec.durable_at = o.durable_at;
            rec.confirmed_by_flag = o.confirmed_by_flag;
            rec.restored = o.restored.clone();
            if o.skipped {
                rec.status = Status::Skipped;
            }
            if s.rpo_probe {
                let v = o.outputs.get("value").cloned().unwrap_or_default();
                match parse_instant(&v) {
                    Some(t) => rec.durable_at = Some(rec.durable_at.map_or(t, |d| d.max(t))),
                    None => {
                        rec.status = Status::Failed;
                        rec.error = Some(format!(
                            "rpo_probe: the step's value {v:?} is not a timestamp (RFC 3339, PostgreSQL timestamptz, or Unix seconds)"
                        ));
                    }
                }
            }
            outcome = Some(o);
        }
    }
    rec.finished_at = Some(Utc::now());
    let secs = rec.seconds().unwrap_or(0.0);
    sh.journal.event(
        "step_finished",
        serde_json::to_value(&rec).unwrap_or_default(),
    );
    match rec.status {
        Status::Passed | Status::Skipped => {
            tracing::info!(step = %s.id, owner = %s.owner, seconds = secs, status = rec.status.as_str(), "✓ {}", s.name)
        }
        _ => {
            tracing::error!(step = %s.id, owner = %s.owner, seconds = secs, status = rec.status.as_str(), error = rec.error.as_deref().unwrap_or(""), "✗ {}", s.name)
        }
    }
    (rec, outcome)
}
