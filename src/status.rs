//! `drctl status`: per job, what the repository proves right now, and the RPO exposure:
//! now − `consistent_at` of the newest backup held by at least `min_copies` regions (and,
//! when the job verifies, whose newest verification passed). No such backup ⇒ unbounded
//! exposure, reported as such, and a breach whenever the job has an `rpo`.
//!
//! RTO: the newest timed restore of the job — a `verify --level restore` scratch restore or
//! a drill's `restore` step, whichever finished last — against the job's `rto`. A target
//! with no timed restore is "not measured", which counts as a breach: an RTO nobody has
//! measured is a hope, not a fact. When the newest backup is much larger than the one whose
//! restore was timed, the status says so and gives a size-scaled estimate (the verdict
//! stays on the measurement).

use crate::config::{Config, JobSpec};
use crate::drill::measure::fmt_secs;
use crate::error::Result;
use crate::history::RegionHolding;
use crate::store::Region;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub newest_complete: Option<String>,
    pub newest_verified: Option<String>,
    /// Copies of the newest complete backup, per region (true = held).
    pub newest_copies: BTreeMap<String, bool>,
    /// The backup RPO exposure counts from.
    pub covering_backup: Option<String>,
    pub rpo_exposure_seconds: Option<f64>,
    pub rpo_target_seconds: Option<f64>,
    pub rpo_breached: bool,
    /// Wall time of the newest scratch restore done by `verify --level restore`.
    pub last_restore_test_seconds: Option<f64>,
    pub rto_target_seconds: Option<f64>,
    /// The newest timed restore (verification or drill), when there is one.
    pub rto_measured: Option<TimedRestore>,
    pub rto_state: RtoState,
    /// `breached` or `not_measured` with a target.
    pub rto_breached: bool,
    /// Newest backup's source size ÷ the timed backup's, when both are known.
    pub rto_size_ratio: Option<f64>,
    /// The measurement scaled by that ratio, when the newest backup is ≥ 1.5× larger.
    pub rto_estimated_seconds: Option<f64>,
    /// What a reader should know about the measurement (size scaling), as a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_note: Option<String>,
    pub unreachable_regions: Vec<String>,
}

/// How the job stands against its `rto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtoState {
    /// The job has no `rto`.
    NoTarget,
    Met,
    Breached,
    /// A target, and no restore was ever timed.
    NotMeasured,
}

impl RtoState {
    pub fn as_str(self) -> &'static str {
        match self {
            RtoState::NoTarget => "no target",
            RtoState::Met => "met",
            RtoState::Breached => "BREACHED",
            RtoState::NotMeasured => "not measured",
        }
    }
}

/// One timed restore of a job's backup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimedRestore {
    pub job: String,
    pub backup: String,
    pub finished_at: DateTime<Utc>,
    pub seconds: f64,
    /// Source size of the restored backup, when known.
    pub raw_bytes: Option<u64>,
    /// `verify`, or `drill <playbook>/<run-id>`.
    pub by: String,
}

/// Size ratio past which the status says a measurement is stale.
const SCALE_WARN: f64 = 1.5;

pub struct Seen {
    pub id: String,
    pub consistent_at: DateTime<Utc>,
    pub regions: BTreeSet<String>,
    pub raw_bytes: u64,
}

/// Every passed drill `restore` step published to the repository, deduplicated across
/// regions, and the regions whose `drills/` could not be read.
pub async fn drill_restores(regions: &[Region]) -> (Vec<TimedRestore>, Vec<String>) {
    let (runs, unread) = crate::drill::evidence::published_runs(regions).await;
    (drill_restores_of(&runs), unread)
}

/// The passed `restore` steps of these drill runs.
pub fn drill_restores_of(runs: &[crate::drill::record::RunRecord]) -> Vec<TimedRestore> {
    let mut out = Vec::new();
    for r in runs {
        for s in r.main_steps() {
            if let (Some(x), Some(at), true) = (&s.restored, s.finished_at, s.status.ok()) {
                out.push(TimedRestore {
                    job: x.job.clone(),
                    backup: x.backup.clone(),
                    finished_at: at,
                    seconds: x.seconds,
                    raw_bytes: Some(x.raw_bytes),
                    by: format!("drill {}/{}", r.playbook, r.run_id),
                });
            }
        }
    }
    out
}

/// The RTO verdict from the newest timed restore and the newest backup's size.
pub fn judge_rto(
    target: Option<f64>,
    measured: Option<&TimedRestore>,
    newest_raw: Option<u64>,
) -> (RtoState, Option<f64>, Option<f64>, Option<String>) {
    let ratio = match (measured.and_then(|m| m.raw_bytes), newest_raw) {
        (Some(t), Some(n)) if t > 0 => Some(n as f64 / t as f64),
        _ => None,
    };
    let estimate = match (measured, ratio) {
        (Some(m), Some(r)) if r >= SCALE_WARN => Some(m.seconds * r),
        _ => None,
    };
    let note = match (measured, ratio, estimate) {
        (Some(m), Some(r), Some(e)) => Some(format!(
            "the newest backup is {r:.1}× the size of {} whose restore was timed ({}): a restore of it may take about {}{}",
            m.backup,
            fmt_secs(m.seconds),
            fmt_secs(e),
            if target.is_some_and(|t| e > t) { ", over the target" } else { "" }
        )),
        _ => None,
    };
    let state = match (target, measured) {
        (None, _) => RtoState::NoTarget,
        (Some(_), None) => RtoState::NotMeasured,
        (Some(t), Some(m)) if m.seconds > t => RtoState::Breached,
        (Some(_), Some(_)) => RtoState::Met,
    };
    (state, ratio, estimate, note)
}

/// The backup RPO counts from: newest with enough copies (and verified when required).
pub fn covering<'a>(
    backups: &'a [Seen],
    min_copies: usize,
    verified: Option<&BTreeSet<String>>,
) -> Option<&'a Seen> {
    backups
        .iter()
        .filter(|b| b.regions.len() >= min_copies)
        .filter(|b| verified.is_none_or(|v| v.contains(&b.id)))
        .max_by_key(|b| (b.consistent_at, &b.id))
}

/// `drills`: the timed restores of `drill_restores` (any job's; this one's are picked).
pub async fn job_status(
    cfg: &Config,
    regions: &[Region],
    job: &JobSpec,
    drills: &[TimedRestore],
    now: DateTime<Utc>,
) -> Result<JobStatus> {
    let held = crate::history::read_holdings(regions, &job.name.0).await;
    Ok(job_status_of(cfg, regions, job, &held, drills, now))
}

/// The status from what each region holds (`held`, in `regions`' order; an `Err` is a region
/// that could not be read), so a caller that also needs the history reads the regions once.
pub fn job_status_of(
    cfg: &Config,
    regions: &[Region],
    job: &JobSpec,
    held: &[Result<RegionHolding>],
    drills: &[TimedRestore],
    now: DateTime<Utc>,
) -> JobStatus {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut unreachable = Vec::new();
    let mut last_restore: Option<TimedRestore> = None;
    let mut verified = BTreeSet::new();
    for (r, read) in regions.iter().zip(held) {
        let h = match read {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "cannot read region");
                unreachable.push(r.name.clone());
                continue;
            }
        };
        for m in &h.manifests {
            seen.entry(m.id.clone())
                .or_insert_with(|| Seen {
                    id: m.id.clone(),
                    consistent_at: m.consistent_at,
                    regions: BTreeSet::new(),
                    raw_bytes: m.raw_size(),
                })
                .regions
                .insert(r.name.clone());
        }
        for (id, rec) in &h.verifications {
            if crate::verify::passed(rec) {
                verified.insert(id.clone());
            }
            let at = rec
                .get("finished_at")
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse::<DateTime<Utc>>().ok());
            let secs = rec.get("restore_seconds").and_then(|s| s.as_f64());
            if let (Some(at), Some(secs)) = (at, secs) {
                if last_restore.as_ref().is_none_or(|t| at > t.finished_at) {
                    last_restore = Some(TimedRestore {
                        job: job.name.0.clone(),
                        raw_bytes: seen.get(id).map(|b| b.raw_bytes),
                        backup: id.clone(),
                        finished_at: at,
                        seconds: secs,
                        by: "verify".into(),
                    });
                }
            }
        }
    }
    let backups: Vec<Seen> = seen.into_values().collect();
    let newest = backups.iter().max_by_key(|b| (b.consistent_at, &b.id));
    let cover = covering(
        &backups,
        cfg.min_copies,
        job.verify.as_ref().map(|_| &verified),
    );
    let exposure = cover.map(|b| (now - b.consistent_at).num_milliseconds() as f64 / 1000.0);
    let target = job.rpo.map(|d| d.as_secs_f64());
    let size_of = |id: &str| backups.iter().find(|b| b.id == id).map(|b| b.raw_bytes);
    let measured = drills
        .iter()
        .filter(|d| d.job == job.name.0)
        .cloned()
        .map(|mut d| {
            d.raw_bytes = d.raw_bytes.or_else(|| size_of(&d.backup));
            d
        })
        .chain(last_restore.clone())
        .max_by_key(|d| d.finished_at);
    let rto_target = job.rto.map(|d| d.as_secs_f64());
    let (rto_state, ratio, estimate, note) =
        judge_rto(rto_target, measured.as_ref(), newest.map(|b| b.raw_bytes));
    JobStatus {
        job: job.name.0.clone(),
        newest_complete: newest.map(|b| b.id.clone()),
        newest_verified: backups
            .iter()
            .filter(|b| verified.contains(&b.id))
            .max_by_key(|b| (b.consistent_at, &b.id))
            .map(|b| b.id.clone()),
        newest_copies: regions
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    newest.is_some_and(|b| b.regions.contains(&r.name)),
                )
            })
            .collect(),
        covering_backup: cover.map(|b| b.id.clone()),
        rpo_exposure_seconds: exposure,
        rpo_target_seconds: target,
        rpo_breached: target.is_some_and(|t| exposure.is_none_or(|e| e > t)),
        last_restore_test_seconds: last_restore.map(|t| t.seconds),
        rto_target_seconds: rto_target,
        rto_measured: measured,
        rto_breached: matches!(rto_state, RtoState::Breached | RtoState::NotMeasured),
        rto_state,
        rto_size_ratio: ratio,
        rto_estimated_seconds: estimate,
        rto_note: note,
        unreachable_regions: unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, at: &str, regions: &[&str]) -> Seen {
        Seen {
            id: id.into(),
            consistent_at: at.parse().unwrap(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
            raw_bytes: 0,
        }
    }

    fn timed(seconds: f64, raw: u64) -> TimedRestore {
        TimedRestore {
            job: "db".into(),
            backup: "b1".into(),
            finished_at: "2026-11-23T01:00:00Z".parse().unwrap(),
            seconds,
            raw_bytes: Some(raw),
            by: "verify".into(),
        }
    }

    #[test]
    fn rto_is_not_measured_without_a_timed_restore_and_never_ok() {
        let (s, ..) = judge_rto(Some(60.0), None, Some(10));
        assert_eq!(s, RtoState::NotMeasured);
        assert_eq!(judge_rto(None, None, None).0, RtoState::NoTarget);
        assert_eq!(
            judge_rto(Some(60.0), Some(&timed(61.0, 10)), Some(10)).0,
            RtoState::Breached
        );
        assert_eq!(
            judge_rto(Some(60.0), Some(&timed(59.0, 10)), Some(10)).0,
            RtoState::Met
        );
    }

    #[test]
    fn a_much_larger_newest_backup_is_said_with_a_scaled_estimate() {
        let (s, ratio, est, note) = judge_rto(Some(60.0), Some(&timed(40.0, 100)), Some(300));
        assert_eq!(s, RtoState::Met, "the verdict stays on the measurement");
        assert_eq!(ratio, Some(3.0));
        assert_eq!(est, Some(120.0));
        let note = note.unwrap();
        assert!(
            note.contains("3.0×") && note.contains("over the target"),
            "{note}"
        );
        let (_, _, est, note) = judge_rto(Some(60.0), Some(&timed(40.0, 100)), Some(120));
        assert!(est.is_none() && note.is_none());
    }

    #[test]
    fn rpo_counts_from_the_newest_backup_with_enough_copies_and_verified_when_required() {
        let b = vec![
            seen("a", "2026-11-23T01:00:00Z", &["x", "y"]),
            seen("b", "2026-11-23T02:00:00Z", &["x", "y"]),
            seen("c", "2026-11-23T03:00:00Z", &["x"]),
        ];
        assert_eq!(covering(&b, 2, None).map(|s| s.id.as_str()), Some("b"));
        assert_eq!(covering(&b, 1, None).map(|s| s.id.as_str()), Some("c"));
        let v: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(covering(&b, 2, Some(&v)).map(|s| s.id.as_str()), Some("a"));
        assert!(covering(&b, 3, None).is_none());
    }
}
