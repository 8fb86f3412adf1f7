//! The retention decision, pure: given every complete backup of one job (when its data is
//! from, which regions hold it, whether it passed verification) it says keep or delete, and
//! why. No I/O, no clock: `prune` gathers the facts, this decides, tests prove it.
//!
//! `keep_*` follow restic's `forget` semantics, computed on each backup's `consistent_at` in
//! UTC (never on listing order or object times):
//! - `keep_last n`: the n newest backups.
//! - `keep_hourly|daily|weekly|monthly|yearly n`: walking newest to oldest, the newest backup
//!   of each of the n most recent hours / days / ISO weeks / months / years that have one.
//!   If the history has fewer such periods than n, the oldest backup is kept too (restic ≥
//!   0.16: it keeps the history as long as the counts allow).
//! - `keep_within d`: every backup within d of the newest backup's `consistent_at`.
//!
//! Safety rules no policy overrides (each shows up as a reason):
//! - the newest complete backup, and the newest backup that passed verification;
//! - the newest backup held by at least `min_copies` regions (what RPO counts from);
//! - every backup at or after the oldest live lease (a run in progress may depend on it);
//! - coverage: when a kept backup is missing from a region, that region's newest older copy
//!   is kept too, so no region loses its last restorable copy at or before a kept point.

use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
    pub keep_within: Option<Duration>,
}

/// One complete backup, as seen across all regions.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub consistent_at: DateTime<Utc>,
    /// Regions whose copy is complete (has a manifest).
    pub regions: BTreeSet<String>,
    pub verified: bool,
}

#[derive(Debug, Clone)]
pub struct Context {
    pub regions: Vec<String>,
    pub min_copies: usize,
    /// Start of the oldest live lease: nothing at or after it is touched.
    pub lease_floor: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: String,
    /// Empty = delete.
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    pub const ALL: [Period; 5] = [
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
        Period::Yearly,
    ];

    /// The period a time falls in, as it appears in reasons ("daily 2026-11-20").
    pub fn bucket(self, t: DateTime<Utc>) -> String {
        match self {
            Period::Hourly => t.format("hourly %Y-%m-%d %H:00").to_string(),
            Period::Daily => t.format("daily %Y-%m-%d").to_string(),
            Period::Weekly => {
                let w = t.iso_week();
                format!("weekly {}-W{:02}", w.year(), w.week())
            }
            Period::Monthly => t.format("monthly %Y-%m").to_string(),
            Period::Yearly => t.format("yearly %Y").to_string(),
        }
    }

    pub fn count(self, p: &Policy) -> u32 {
        match self {
            Period::Hourly => p.keep_hourly,
            Period::Daily => p.keep_daily,
            Period::Weekly => p.keep_weekly,
            Period::Monthly => p.keep_monthly,
            Period::Yearly => p.keep_yearly,
        }
    }
}

/// Decide for every backup. `policy: None` (the job has no retention) keeps everything.
/// The result is newest first.
pub fn plan(policy: Option<&Policy>, backups: &[Candidate], ctx: &Context) -> Vec<Decision> {
    let mut list: Vec<&Candidate> = backups.iter().collect();
    // Newest first; the id breaks ties so the result never depends on listing order.
    list.sort_by(|a, b| (b.consistent_at, &b.id).cmp(&(a.consistent_at, &a.id)));
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); list.len()];

    match policy {
        None => reasons
            .iter_mut()
            .for_each(|r| r.push("no retention policy".into())),
        Some(p) => apply_policy(p, &list, &mut reasons),
    }
    if let Some(i) = list.iter().position(|_| true) {
        reasons[i].push("newest complete".into());
    }
    if let Some(i) = list.iter().position(|c| c.verified) {
        reasons[i].push("newest verified".into());
    }
    if let Some(i) = list.iter().position(|c| c.regions.len() >= ctx.min_copies) {
        reasons[i].push(format!("newest in {} regions", ctx.min_copies));
    }
    if let Some(floor) = ctx.lease_floor {
        for (i, c) in list.iter().enumerate() {
            if c.consistent_at >= floor {
                reasons[i].push("newer than a running job's lease".into());
            }
        }
    }
    // Coverage, newest to oldest: a kept backup missing from a region makes that region keep
    // its next older copy (which may itself be missing elsewhere, and so on).
    let mut owed: Vec<Option<String>> = vec![None; ctx.regions.len()];
    for (i, c) in list.iter().enumerate() {
        for (r, region) in ctx.regions.iter().enumerate() {
            if c.regions.contains(region) {
                if let Some(k) = owed[r].take() {
                    reasons[i].push(format!("{region}'s copy covering {k}"));
                }
            }
        }
        if !reasons[i].is_empty() {
            for (r, region) in ctx.regions.iter().enumerate() {
                if !c.regions.contains(region) && owed[r].is_none() {
                    owed[r] = Some(c.id.clone());
                }
            }
        }
    }
    list.iter()
        .zip(reasons)
        .map(|(c, reasons)| Decision {
            id: c.id.clone(),
            reasons,
        })
        .collect()
}

fn apply_policy(p: &Policy, list: &[&Candidate], reasons: &mut [Vec<String>]) {
    for (i, r) in reasons.iter_mut().enumerate().take(p.keep_last as usize) {
        r.push(format!("last {}", i + 1));
    }
    for period in Period::ALL {
        let mut left = period.count(p);
        let mut last: Option<String> = None;
        for (i, c) in list.iter().enumerate() {
            if left == 0 {
                break;
            }
            let b = period.bucket(c.consistent_at);
            let oldest = i == list.len() - 1;
            if last.as_ref() != Some(&b) || oldest {
                reasons[i].push(if last.as_ref() == Some(&b) {
                    format!("{b} (oldest, count left)")
                } else {
                    b.clone()
                });
                last = Some(b);
                left -= 1;
            }
        }
    }
    if let (Some(within), Some(newest)) = (p.keep_within, list.first()) {
        let since = chrono::Duration::from_std(within)
            .ok()
            .and_then(|d| newest.consistent_at.checked_sub_signed(d));
        for (i, c) in list.iter().enumerate() {
            if since.is_none_or(|s| c.consistent_at > s) {
                reasons[i].push(format!("within {}", humantime::format_duration(within)));
            }
        }
    }
}
