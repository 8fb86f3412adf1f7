use super::{human_bytes, is_text, print_json, shutdown_token};
use crate::backup::{self, open_regions};
use crate::cli::{BackupCmd, IfRunning, Output};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use serde::Serialize;
use std::collections::BTreeMap;

pub async fn run(cfg: &Config, cmd: BackupCmd, out: Output) -> Result<()> {
    match cmd {
        BackupCmd::Run {
            jobs,
            all,
            if_running,
            pushgateway,
        } => run_jobs(cfg, jobs, all, if_running, pushgateway, out).await,
        BackupCmd::List { job } => list(cfg, job.as_deref(), out).await,
        BackupCmd::Show { id } => show(cfg, &id, out).await,
    }
}

async fn run_jobs(
    cfg: &Config,
    names: Vec<String>,
    all: bool,
    if_running: IfRunning,
    pushgateway: Option<String>,
    out: Output,
) -> Result<()> {
    let jobs: Vec<_> = if all {
        cfg.jobs.iter().collect()
    } else {
        names.iter().map(|n| cfg.job(n)).collect::<Result<_>>()?
    };
    let cancel = shutdown_token();
    let regions = open_regions(cfg)?;
    let bars = super::progress_bars(out);
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let notifiers = crate::notify::Notifiers::new(&cfg.notifications);
    for job in jobs {
        if cancel.is_cancelled() {
            break;
        }
        let result = match backup::run_leased(cfg, &regions, job, &cancel, bars).await {
            Ok(backup::Leased::Held(h)) if if_running == IfRunning::Skip => {
                tracing::warn!(job = %job.name, holder = %h.describe(), "already running; skipped");
                if is_text(out) {
                    println!("{}: skipped, already running: {}", job.name, h.describe());
                }
                reports.push(serde_json::json!({"job": job.name.0, "skipped": true, "held_by": h}));
                continue;
            }
            Ok(backup::Leased::Held(h)) => Err(Error::lease_held(format!("job {} is already running: {}", job.name, h.describe()))
                .hint("wait for that run to finish; in a CronJob, `--if-running skip` exits 0 instead. A crashed run's lease is taken over once it expires")),
            Ok(backup::Leased::Done(r)) => Ok(r),
            Err(e) => Err(e),
        };
        crate::notify::backup_outcome(&notifiers, &job.name.0, &result).await;
        if let Some(url) = &pushgateway {
            push_metrics(cfg, &regions, job, &result, url).await;
        }
        match result {
            Ok(r) => {
                if is_text(out) {
                    println!(
                        "{}: backup {} committed to {} ({} → {}, {:.1}s){}",
                        r.job,
                        r.id,
                        r.regions.join(", "),
                        human_bytes(r.raw_bytes),
                        human_bytes(r.stored_bytes),
                        r.duration_seconds,
                        if r.failed_regions.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; NOT in {}",
                                r.failed_regions
                                    .iter()
                                    .map(|f| f.region.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    );
                }
                reports.push(serde_json::to_value(&r)?);
            }
            Err(e) => {
                tracing::error!(job = %job.name, error = %e, "backup failed");
                reports.push(serde_json::json!({"job": job.name.0, "error": e.to_string()}));
                failures.push(e);
            }
        }
    }
    if out == Output::Json {
        print_json(&reports)?;
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        n => Err(Error::failed(format!(
            "{n} backups failed: {}",
            failures
                .iter()
                .map(|e| e.message().to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

/// CronJob mode: this run's metrics and the job's RPO exposure, pushed as the job's group.
async fn push_metrics(
    cfg: &Config,
    regions: &[crate::store::Region],
    job: &crate::config::JobSpec,
    result: &Result<backup::BackupReport>,
    url: &str,
) {
    let reg = crate::metrics::Registry::default();
    crate::metrics::record_backup(&reg, &job.name.0, result);
    let (drills, _) = crate::status::drill_restores(regions).await;
    if let Ok(s) = crate::status::job_status(cfg, regions, job, &drills, chrono::Utc::now()).await {
        crate::metrics::record_status(&reg, &[s]);
    }
    match crate::metrics::push(url, &job.name.0, &reg).await {
        Ok(()) => tracing::info!(job = %job.name, "metrics pushed to the Pushgateway"),
        Err(e) => {
            tracing::warn!(job = %job.name, error = %e, "cannot push metrics (the exit code is unaffected)")
        }
    }
}

#[derive(Serialize)]
struct Row {
    job: String,
    id: String,
    consistent_at: chrono::DateTime<chrono::Utc>,
    raw_bytes: u64,
    stored_bytes: u64,
    regions: Vec<String>,
}

async fn list(cfg: &Config, job: Option<&str>, out: Output) -> Result<()> {
    let jobs: Vec<String> = match job {
        Some(j) => vec![cfg.job(j)?.name.0.clone()],
        None => cfg.jobs.iter().map(|j| j.name.0.clone()).collect(),
    };
    let regions = open_regions(cfg)?;
    let mut rows: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut unreachable = Vec::new();
    // Regions at once, each job after the other within a region (it stops at its first error).
    let per_region = futures::future::join_all(regions.iter().map(|r| async {
        let mut got = Vec::new();
        for j in &jobs {
            let res = r.list_manifests(j).await;
            let failed = res.is_err();
            got.push(res);
            if failed {
                break;
            }
        }
        got
    }))
    .await;
    for (r, results) in regions.iter().zip(per_region) {
        for res in results {
            match res {
                Ok(ms) => {
                    for m in ms {
                        rows.entry((m.job.clone(), m.id.clone()))
                            .or_insert_with(|| Row {
                                job: m.job.clone(),
                                id: m.id.clone(),
                                consistent_at: m.consistent_at,
                                raw_bytes: m.raw_size(),
                                stored_bytes: m.stored_size(),
                                regions: vec![],
                            })
                            .regions
                            .push(r.name.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(region = %r.name, error = %e, "cannot list region");
                    unreachable.push(serde_json::json!({"region": r.name, "error": e.to_string()}));
                    break;
                }
            }
        }
    }
    let rows: Vec<Row> = rows.into_values().collect();
    // A listing that could not read every region is incomplete: it says which, and fails.
    let incomplete = || {
        let names: Vec<&str> = unreachable
            .iter()
            .filter_map(|u| u["region"].as_str())
            .collect();
        Error::failed(format!(
            "the listing is incomplete: region(s) {} could not be read",
            names.join(", ")
        ))
        .hint("bring the region back (its error is above), or pass -c with a config without it")
    };
    if out == Output::Json {
        print_json(&serde_json::json!({"backups": rows, "unreachable_regions": unreachable}))?;
        return if unreachable.is_empty() {
            Ok(())
        } else {
            Err(incomplete())
        };
    }
    println!(
        "{:<16} {:<24} {:<21} {:>10} {:>10}  REGIONS",
        "JOB", "ID", "CONSISTENT_AT", "RAW", "STORED"
    );
    for r in &rows {
        println!(
            "{:<16} {:<24} {:<21} {:>10} {:>10}  {}",
            r.job,
            r.id,
            r.consistent_at.format("%Y-%m-%dT%H:%M:%SZ"),
            human_bytes(r.raw_bytes),
            human_bytes(r.stored_bytes),
            r.regions.join(",")
        );
    }
    for u in &unreachable {
        println!(
            "(region {} could not be read: {})",
            u["region"].as_str().unwrap_or_default(),
            u["error"].as_str().unwrap_or_default()
        );
    }
    if !unreachable.is_empty() {
        return Err(incomplete());
    }
    if rows.is_empty() {
        println!("(no complete backups)");
    }
    Ok(())
}

async fn show(cfg: &Config, id: &str, out: Output) -> Result<()> {
    if !crate::manifest::is_backup_id(id) {
        return Err(Error::usage(format!("{id:?} is not a backup id"))
            .hint("ids look like 20261123T040000Z-3fa2c1; see `drctl backup list`"));
    }
    let regions = open_regions(cfg)?;
    let mut found: Option<Manifest> = None;
    let mut present = Vec::new();
    for r in &regions {
        for j in &cfg.jobs {
            if let Ok(Some(m)) = r.read_manifest(&j.name.0, id).await {
                present.push(r.name.clone());
                found.get_or_insert(m);
                break;
            }
        }
    }
    let m = found.ok_or_else(|| {
        Error::failed(format!("backup {id} not found in any region"))
            .hint("see `drctl backup list`")
    })?;
    if out == Output::Json {
        return print_json(&serde_json::json!({"manifest": m, "present_in": present}));
    }
    println!("backup        {}", m.id);
    println!(
        "job           {} ({} {})",
        m.job, m.source.kind, m.source.server_version
    );
    println!("consistent_at {}", m.consistent_at.to_rfc3339());
    println!("started_at    {}", m.started_at.to_rfc3339());
    println!("finished_at   {}", m.finished_at.to_rfc3339());
    println!("present in    {}", present.join(", "));
    for a in &m.artifacts {
        println!(
            "artifact      {} ({}, {} → {}, sha256 {})",
            a.path,
            a.codec,
            human_bytes(a.raw_size),
            human_bytes(a.stored_size),
            a.sha256
        );
        if let Some(counts) = a.facts.get("row_counts").and_then(|c| c.as_object()) {
            for (t, n) in counts {
                println!("  rows        {t}: {n}");
            }
        }
    }
    Ok(())
}
