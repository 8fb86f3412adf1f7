//! The operator's console: one page with every job's standing (newest and newest verified
//! backup, RPO and RTO against their targets, copies per region, verification history, size
//! and duration over time), the drills' RTO and RPO per run, the next scheduled runs, the
//! overdue drills and the regions that could not be read.
//!
//! gather (the repository, or the catalog for history) → `Page` (data, also `-o json`) →
//! `html::render` (server-rendered HTML with inline SVG: no script, no CDN, so it reads in an
//! air-gapped cluster and on a phone). The daemon serves it at `/`; `drctl report --html`
//! writes it for CronJob users.

pub mod html;
mod svg;

use crate::config::Config;
use crate::drill::record::{Metric, RunRecord};
use crate::error::Result;
use crate::history::HistoryRow;
use crate::status::JobStatus;
use crate::store::Region;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Per chart, at most this many of the newest points (the page stays small and bounded).
pub const CHART_POINTS: usize = 60;

#[derive(Debug, Serialize)]
pub struct Page {
    pub generated_at: DateTime<Utc>,
    pub jobs: Vec<JobView>,
    pub drills: Vec<DrillView>,
    pub next_runs: Vec<NextRun>,
    /// Regions some read failed on (backups, verifications or drill reports).
    pub unreadable_regions: Vec<String>,
    /// `catalog` or `repository`: where the backup history came from.
    pub history_source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct JobView {
    pub status: JobStatus,
    /// Oldest first.
    pub history: Vec<HistoryRow>,
}

#[derive(Debug, Serialize)]
pub struct DrillView {
    pub playbook: String,
    pub title: String,
    /// Oldest first.
    pub runs: Vec<DrillRun>,
    pub due: Option<Due>,
}

#[derive(Debug, Serialize)]
pub struct DrillRun {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub passed: bool,
    pub rehearsal: bool,
    pub rto: Metric,
    pub rpo: Metric,
}

/// When a playbook must next be drilled, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Due {
    pub playbook: String,
    /// None: a cadence and no passed run ever — due now.
    pub at: Option<DateTime<Utc>>,
    /// `checklist next_drill`, or `cadence 30days`.
    pub from: String,
    pub overdue: bool,
}

#[derive(Debug, Serialize)]
pub struct NextRun {
    pub task: String,
    pub at: DateTime<Utc>,
}

/// Everything the page shows, read now.
pub async fn gather(cfg: &Config, regions: &[Region], now: DateTime<Utc>) -> Result<Page> {
    let (runs, mut unread) = crate::drill::evidence::published_runs(regions).await;
    let timed = crate::status::drill_restores_of(&runs);
    let mut jobs = Vec::new();
    for job in &cfg.jobs {
        // One read of each region serves both the status and (without a catalog) the history.
        let held = crate::history::read_holdings(regions, &job.name.0).await;
        let status = crate::status::job_status_of(cfg, regions, job, &held, &timed, now);
        unread.extend(status.unreachable_regions.iter().cloned());
        let history = match cfg.catalog {
            Some(_) => crate::catalog::history(cfg, &job.name.0).await,
            None => {
                let ok: Vec<_> = held.into_iter().filter_map(|h| h.ok()).collect();
                Ok(crate::history::assemble(&ok))
            }
        };
        let history = history.unwrap_or_else(|e| {
            tracing::warn!(job = %job.name, error = %e, "cannot read the job's history for the page");
            Vec::new()
        });
        jobs.push(JobView { status, history });
    }
    unread.sort();
    unread.dedup();
    Ok(Page {
        generated_at: now,
        jobs,
        drills: drill_views(&runs, &dues(cfg, &runs, now)),
        next_runs: next_runs(cfg, now),
        unreadable_regions: unread,
        history_source: if cfg.catalog.is_some() {
            "catalog"
        } else {
            "repository"
        },
    })
}

/// Every playbook's next due drill: checklists' `next_drill` (files in ./playbooks) and
/// `drills.cadence` (the newest passed run plus the cadence; never passed ⇒ due now).
pub fn dues(cfg: &Config, runs: &[RunRecord], now: DateTime<Utc>) -> Vec<Due> {
    let mut out: BTreeMap<String, Due> = BTreeMap::new();
    for (name, at) in crate::drill::next_drills() {
        out.insert(
            name.clone(),
            Due {
                playbook: name,
                at: Some(at),
                from: "checklist next_drill".into(),
                overdue: at < now,
            },
        );
    }
    for (name, every) in &cfg.drills.cadence {
        let last = runs
            .iter()
            .filter(|r| &r.playbook == name && r.passed)
            .map(|r| r.finished_at)
            .max();
        let at =
            last.map(|l| l + chrono::Duration::from_std(*every).unwrap_or(chrono::Duration::MAX));
        let due = Due {
            playbook: name.clone(),
            at,
            from: format!(
                "cadence {}",
                crate::drill::measure::fmt_secs(every.as_secs_f64())
            ),
            overdue: at.is_none_or(|a| a < now),
        };
        // The earlier of the two due dates wins.
        let keep = out.get(name).is_none_or(|o| match (o.at, due.at) {
            (Some(a), Some(b)) => b < a,
            (_, None) => true,
            (None, Some(_)) => false,
        });
        if keep {
            out.insert(name.clone(), due);
        }
    }
    out.into_values().collect()
}

impl DrillView {
    fn empty(playbook: &str) -> DrillView {
        DrillView {
            playbook: playbook.to_string(),
            title: String::new(),
            runs: Vec::new(),
            due: None,
        }
    }
}

fn drill_views(runs: &[RunRecord], dues: &[Due]) -> Vec<DrillView> {
    let mut by: BTreeMap<String, DrillView> = BTreeMap::new();
    for r in runs {
        let v = by
            .entry(r.playbook.clone())
            .or_insert_with(|| DrillView::empty(&r.playbook));
        if !r.title.is_empty() {
            v.title = r.title.clone();
        }
        v.runs.push(DrillRun {
            run_id: r.run_id.clone(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            passed: r.passed,
            rehearsal: r.rehearsal,
            rto: r.rto.clone(),
            rpo: r.rpo.clone(),
        });
    }
    for d in dues {
        by.entry(d.playbook.clone())
            .or_insert_with(|| DrillView::empty(&d.playbook))
            .due = Some(d.clone());
    }
    by.into_values().collect()
}

fn next_runs(cfg: &Config, now: DateTime<Utc>) -> Vec<NextRun> {
    let tz = &cfg.scheduler.timezone.0;
    let mut out: Vec<NextRun> = crate::schedule::plan::tasks(cfg)
        .into_iter()
        .filter_map(|t| {
            crate::schedule::plan::next_tick(&t.schedule, tz, now)
                .map(|at| NextRun { task: t.id(), at })
        })
        .collect();
    out.sort_by(|a, b| (a.at, &a.task).cmp(&(b.at, &b.task)));
    out
}
