//! `drctl verify`: prove a backup restores, at three cumulative levels.
//!
//! - `checksum`: every region's copy is read end to end and its SHA-256 and size compared with
//!   the manifest. A bad copy fails in its region only; the others are still reported.
//! - `structure` (+ checksum): one good copy is decompressed and its format checked by the
//!   source kind (`structure.rs`), and its facts compared with the manifest's.
//! - `restore` (+ both): restored into the job's `verify.scratch`, counted, compared, and
//!   always cleaned up (`scratch.rs`); the time the restore took is the job's measured
//!   data-restore time, the evidence behind an RTO.
//!
//! The result is printed and written to `verifications/<job>/<id>/<time>.json` in every
//! region that holds the backup, so `status` and `prune` see it wherever they look.

mod scratch;
mod structure;

use crate::config::{Config, JobSpec, VerifyLevel};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::restore::{check_copy, select, Selector};
use crate::store::Region;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegionCheck {
    pub region: String,
    /// `ok`, `corrupt`, `absent` (no manifest there), `unreachable`, or `unlocked` (intact,
    /// but an Object Lock region's objects lack the configured retention).
    pub copy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    pub job: String,
    pub backup: String,
    pub consistent_at: DateTime<Utc>,
    pub level: String,
    pub passed: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub regions: Vec<RegionCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structure: Option<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Check>,
    /// Wall time of the scratch restore: the measured data-restore time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
}

pub fn level_name(l: VerifyLevel) -> &'static str {
    match l {
        VerifyLevel::Checksum => "checksum",
        VerifyLevel::Structure => "structure",
        VerifyLevel::Restore => "restore",
    }
}

pub async fn run(
    cfg: &Config,
    job: &JobSpec,
    sel: &Selector,
    level: VerifyLevel,
    show_progress: bool,
) -> Result<VerifyReport> {
    let started_at = Utc::now();
    let regions = crate::backup::open_regions(cfg)?;
    let m = select(&regions, &job.name.0, sel).await?;
    tracing::info!(job = %job.name, backup = %m.id, level = level_name(level), "verifying");

    let mut checks = Vec::new();
    let mut good: Option<&Region> = None;
    // On a terminal, each copy's read is drawn; the board ends before a scratch restore.
    let board = crate::progress::Board::start(show_progress);
    for r in &regions {
        let (copy, error) = match r.read_manifest(&m.job, &m.id).await {
            Err(e) => ("unreachable", Some(e.to_string())),
            Ok(None) => ("absent", None),
            Ok(Some(theirs)) if theirs != m => (
                "corrupt",
                Some("its manifest differs from the other regions'".into()),
            ),
            Ok(Some(_)) => match check_copy(r, &m, board.as_ref()).await {
                Ok(()) => {
                    good.get_or_insert(r);
                    match r.lock {
                        Some(_) => match r.check_locks(&m).await {
                            Ok(()) => ("ok", None),
                            Err(e) => ("unlocked", Some(e.to_string())),
                        },
                        None => ("ok", None),
                    }
                }
                Err(e) => ("corrupt", Some(e.to_string())),
            },
        };
        checks.push(RegionCheck {
            region: r.name.clone(),
            copy: copy.into(),
            error,
        });
    }
    drop(board);
    let copies_ok = checks
        .iter()
        .all(|c| c.copy != "corrupt" && c.copy != "unlocked")
        && good.is_some();

    let mut report = VerifyReport {
        job: job.name.0.clone(),
        backup: m.id.clone(),
        consistent_at: m.consistent_at,
        level: level_name(level).into(),
        passed: false,
        started_at,
        finished_at: started_at,
        regions: checks,
        structure: None,
        restore: None,
        restore_seconds: None,
    };
    if level != VerifyLevel::Checksum {
        report.structure = Some(match good {
            Some(r) => outcome(structure::check(cfg, job, r, &m).await),
            None => Check {
                ok: false,
                detail: "no intact copy to check".into(),
            },
        });
    }
    if level == VerifyLevel::Restore && good.is_some() {
        let t = Instant::now();
        let res = scratch::check(cfg, job, &m).await;
        // Copies and structure that checked out leave the scratch's own failure unjudged; a
        // backup already found bad stays failed whatever the scratch did.
        let sound_so_far = copies_ok && report.structure.as_ref().is_none_or(|c| c.ok);
        if let Err(e) = &res {
            if sound_so_far && e.caused_by::<crate::source::TargetRefused>() {
                return Err(inconclusive(e));
            }
        }
        report.restore_seconds = res.as_ref().ok().map(|(secs, _)| *secs);
        tracing::info!(
            seconds = t.elapsed().as_secs_f64(),
            "scratch restore checked"
        );
        report.restore = Some(outcome(res.map(|(_, d)| d)));
    }
    report.passed = copies_ok
        && report.structure.as_ref().is_none_or(|c| c.ok)
        && report.restore.as_ref().is_none_or(|c| c.ok);
    report.finished_at = Utc::now();
    record(&regions, &m, &report).await;
    if let Ok(rec) = serde_json::to_value(&report) {
        let written: Vec<String> = report
            .regions
            .iter()
            .filter(|c| c.copy != "absent" && c.copy != "unreachable")
            .map(|c| c.region.clone())
            .collect();
        crate::catalog::record_verification(cfg, &m.job, &m.id, &written, &rec).await;
    }
    Ok(report)
}

/// A scratch restore that the scratch target itself stopped (its disk full or read-only, its
/// server not answering) proves nothing either way: no verdict is recorded, and the user is
/// told to fix the scratch, not to distrust a backup whose copies and structure checked out.
fn inconclusive(e: &Error) -> Error {
    Error::failed(format!(
        "the scratch restore could not run, so the backup was not judged: {}",
        e.message()
    ))
    .hint("fix verify.scratch (room, a writable place, a server that answers) and verify again; the backup's copies and structure checked out, and no verification was recorded")
}

/// Whether a stored verification record says the backup passed.
pub fn passed(rec: &serde_json::Value) -> bool {
    rec.get("passed").and_then(|v| v.as_bool()) == Some(true)
}

fn outcome(r: Result<String>) -> Check {
    match r {
        Ok(detail) => Check { ok: true, detail },
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// Write the result into every region holding the backup; a failed write is logged, not
/// fatal: the verification itself happened.
async fn record(regions: &[Region], m: &Manifest, report: &VerifyReport) {
    let Ok(v) = serde_json::to_value(report) else {
        return;
    };
    for (r, c) in regions.iter().zip(&report.regions) {
        if c.copy == "absent" || c.copy == "unreachable" {
            continue;
        }
        if let Err(e) = r
            .write_verification(&m.job, &m.id, report.finished_at, &v)
            .await
        {
            tracing::warn!(region = %r.name, error = %e, "cannot record the verification");
        }
    }
}

/// The error a failed verification exits with: what failed, where.
pub fn failure(report: &VerifyReport) -> Error {
    let mut why: Vec<String> = report
        .regions
        .iter()
        .filter(|c| c.copy == "corrupt" || c.copy == "unlocked")
        .map(|c| {
            format!(
                "region {}: {}",
                c.region,
                c.error.as_deref().unwrap_or(&c.copy)
            )
        })
        .collect();
    if !report.regions.iter().any(|c| c.copy == "ok") {
        why.push("no region holds an intact copy".into());
    }
    for (name, c) in [
        ("structure", &report.structure),
        ("restore", &report.restore),
    ] {
        if let Some(c) = c.as_ref().filter(|c| !c.ok) {
            why.push(format!("{name}: {}", c.detail));
        }
    }
    Error::failed(format!(
        "backup {} of job {} failed verification ({}): {}",
        report.backup,
        report.job,
        report.level,
        why.join("; ")
    ))
    .hint("do not count on this backup: take a new one (`drctl backup run JOB`) and verify it; a bad copy in one region can be restored from the others")
}
