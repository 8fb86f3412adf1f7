//! `drctl history JOB`: every backup of a job over time — sizes, durations, compression ratio,
//! copies per region, the newest verification and its measured restore time — read from the
//! repository in every region (through each region's index).

use crate::error::Result;
use crate::store::Region;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryRow {
    pub id: String,
    pub consistent_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_seconds: f64,
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// raw ÷ stored; `None` for an empty backup.
    pub compression_ratio: Option<f64>,
    /// Regions holding the backup, in config order.
    pub regions: Vec<String>,
    /// The newest verification of the backup, in any region.
    pub verification: Option<Verification>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verification {
    pub level: String,
    pub passed: bool,
    pub finished_at: DateTime<Utc>,
    /// Wall time of the scratch restore (`--level restore`): the measured data-restore time.
    pub restore_seconds: Option<f64>,
}

/// What one region holds of a job: its manifests, and the newest verification record of
/// each backup.
pub struct RegionHolding {
    pub region: String,
    pub manifests: Vec<crate::manifest::Manifest>,
    pub verifications: Vec<(String, serde_json::Value)>,
}

/// What each region holds of `job`, every region at once, in config order.
pub async fn read_holdings(regions: &[Region], job: &str) -> Vec<Result<RegionHolding>> {
    futures::future::join_all(regions.iter().map(|r| async move {
        Ok(RegionHolding {
            region: r.name.clone(),
            manifests: r.list_manifests(job).await?,
            verifications: r.latest_verifications(job).await?,
        })
    }))
    .await
}

/// The job's history, oldest first, and the regions that could not be read.
pub async fn from_repository(
    regions: &[Region],
    job: &str,
) -> Result<(Vec<HistoryRow>, Vec<String>)> {
    let reads = read_holdings(regions, job).await;
    let mut held = Vec::new();
    let mut unreachable = Vec::new();
    for (r, read) in regions.iter().zip(reads) {
        match read {
            Ok(h) => held.push(h),
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "cannot read region");
                unreachable.push(r.name.clone());
            }
        }
    }
    Ok((assemble(&held), unreachable))
}

/// Rows from what each region holds (given in config order), oldest first: the same
/// function whether the holdings were read from the regions or from the catalog.
pub fn assemble(held: &[RegionHolding]) -> Vec<HistoryRow> {
    let mut rows: BTreeMap<String, HistoryRow> = BTreeMap::new();
    for h in held {
        for m in &h.manifests {
            let (raw, stored) = (m.raw_size(), m.stored_size());
            rows.entry(m.id.clone())
                .or_insert_with(|| HistoryRow {
                    id: m.id.clone(),
                    consistent_at: m.consistent_at,
                    started_at: m.started_at,
                    finished_at: m.finished_at,
                    duration_seconds: (m.finished_at - m.started_at).num_milliseconds() as f64
                        / 1000.0,
                    raw_bytes: raw,
                    stored_bytes: stored,
                    compression_ratio: (stored > 0).then(|| raw as f64 / stored as f64),
                    regions: Vec::new(),
                    verification: None,
                })
                .regions
                .push(h.region.clone());
        }
        for (id, rec) in &h.verifications {
            let (Some(row), Some(v)) = (rows.get_mut(id), verification(rec)) else {
                continue;
            };
            if row
                .verification
                .as_ref()
                .is_none_or(|o| v.finished_at > o.finished_at)
            {
                row.verification = Some(v);
            }
        }
    }
    let mut out: Vec<HistoryRow> = rows.into_values().collect();
    out.sort_by(|a, b| (a.consistent_at, &a.id).cmp(&(b.consistent_at, &b.id)));
    out
}

fn verification(rec: &serde_json::Value) -> Option<Verification> {
    Some(Verification {
        level: rec.get("level")?.as_str()?.to_string(),
        passed: crate::verify::passed(rec),
        finished_at: rec.get("finished_at")?.as_str()?.parse().ok()?,
        restore_seconds: rec.get("restore_seconds").and_then(|s| s.as_f64()),
    })
}
