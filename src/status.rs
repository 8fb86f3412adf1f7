//! `drctl status`: per job, what the repository proves right now, and the RPO exposure:
//! now − `consistent_at` of the newest backup held by at least `min_copies` regions (and,
//! when the job verifies, whose newest verification passed). No such backup ⇒ unbounded
//! exposure, reported as such, and a breach whenever the job has an `rpo`.

use crate::config::{Config, JobSpec};
use crate::error::Result;
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
    pub unreachable_regions: Vec<String>,
}

pub struct Seen {
    pub id: String,
    pub consistent_at: DateTime<Utc>,
    pub regions: BTreeSet<String>,
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

pub async fn job_status(
    cfg: &Config,
    regions: &[Region],
    job: &JobSpec,
    now: DateTime<Utc>,
) -> Result<JobStatus> {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut unreachable = Vec::new();
    let mut last_restore: Option<(DateTime<Utc>, f64)> = None;
    let mut verified = BTreeSet::new();
    // Every region at once: a slow region costs its own latency, not the sum.
    let reads = futures::future::join_all(regions.iter().map(|r| async move {
        let ms = r.list_manifests(&job.name.0).await;
        let recs = match &ms {
            Ok(_) => r.latest_verifications(&job.name.0).await.ok(),
            Err(_) => None,
        };
        (ms, recs)
    }))
    .await;
    for (r, (ms, recs)) in regions.iter().zip(reads) {
        match ms {
            Ok(ms) => {
                for m in ms {
                    seen.entry(m.id.clone())
                        .or_insert_with(|| Seen {
                            id: m.id.clone(),
                            consistent_at: m.consistent_at,
                            regions: BTreeSet::new(),
                        })
                        .regions
                        .insert(r.name.clone());
                }
            }
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "cannot list region");
                unreachable.push(r.name.clone());
                continue;
            }
        }
        if let Some(recs) = recs {
            for (id, rec) in recs {
                if crate::verify::passed(&rec) {
                    verified.insert(id);
                }
                let at = rec
                    .get("finished_at")
                    .and_then(|t| t.as_str())
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok());
                let secs = rec.get("restore_seconds").and_then(|s| s.as_f64());
                if let (Some(at), Some(secs)) = (at, secs) {
                    if last_restore.is_none_or(|(t, _)| at > t) {
                        last_restore = Some((at, secs));
                    }
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
    Ok(JobStatus {
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
        last_restore_test_seconds: last_restore.map(|(_, s)| s),
        unreachable_regions: unreachable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, at: &str, regions: &[&str]) -> Seen {
        Seen {
            id: id.into(),
            consistent_at: at.parse().unwrap(),
            regions: regions.iter().map(|s| s.to_string()).collect(),
        }
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
