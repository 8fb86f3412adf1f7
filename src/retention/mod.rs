//! `drctl prune`: gather what every region holds, let the pure policy (`policy.rs`) decide,
//! then delete — the manifest first, so an interrupted prune leaves a partial backup that no
//! listing counts as complete, never a manifest pointing at missing objects.

pub mod policy;
#[cfg(test)]
mod tests;

pub use policy::{Candidate, Context, Decision, Policy};

use crate::config::{Config, JobSpec};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::store::multipart::Upload;
use crate::store::{lease, repo, Region};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One line of the plan: a backup's copy in a region, and what prune does with it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub job: String,
    pub backup: String,
    pub region: String,
    pub action: Action,
    pub reasons: Vec<String>,
    /// Set for `abort-upload` rows (and unfinished uploads kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<Upload>,
    /// A committed backup's copy (not a partial run, not an upload).
    #[serde(skip)]
    pub committed: bool,
}

/// What prune does with one copy; serialized as `keep`, `delete`, `remove-partial`,
/// `abort-upload` or `kept-because-locked` in `-o json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Keep,
    /// A committed backup no rule keeps: its manifest goes first, then its objects.
    Delete,
    /// A run that never committed (no manifest).
    RemovePartial,
    /// An unfinished S3 multipart upload.
    AbortUpload,
    /// What would be deleted or removed, still under S3 Object Lock retention: left alone,
    /// and gone on the first prune after the lock ends.
    KeptBecauseLocked,
}

impl Action {
    /// The verb for the text table, e.g. "would delete" on a dry run.
    pub fn verb(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Action::Keep, _) => "keep",
            (Action::KeptBecauseLocked, _) => "kept (locked)",
            (Action::Delete, true) => "would delete",
            (Action::Delete, false) => "deleted",
            (Action::AbortUpload, true) => "would abort upload",
            (Action::AbortUpload, false) => "aborted upload",
            (Action::RemovePartial, true) => "would remove partial",
            (Action::RemovePartial, false) => "removed partial",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Delete => "delete",
            Action::RemovePartial => "remove-partial",
            Action::AbortUpload => "abort-upload",
            Action::KeptBecauseLocked => "kept-because-locked",
        }
    }
}

pub struct Options {
    pub dry_run: bool,
    /// Partial backups (no manifest) younger than this are left alone.
    pub grace: Duration,
}

/// Plan (and unless `dry_run`, carry out) retention for `jobs`.
pub async fn prune(
    cfg: &Config,
    regions: &[Region],
    jobs: &[&JobSpec],
    opts: &Options,
) -> Result<Vec<Row>> {
    let (floor, writing) = lease_floor(regions, !opts.dry_run).await?;
    let mut rows = Vec::new();
    for job in jobs {
        let (backups, partial) = gather(regions, &job.name.0).await?;
        let verified = verified_ids(regions, &job.name.0).await?;
        let candidates: Vec<Candidate> = backups
            .iter()
            .map(|(id, (m, held))| Candidate {
                id: id.clone(),
                consistent_at: m.consistent_at,
                regions: held.clone(),
                verified: verified.contains(id),
            })
            .collect();
        let ctx = Context {
            regions: regions.iter().map(|r| r.name.clone()).collect(),
            min_copies: cfg.min_copies,
            lease_floor: floor,
        };
        let policy = job.retention.as_ref().map(|r| r.policy());
        for d in policy::plan(policy.as_ref(), &candidates, &ctx) {
            for region in &backups[&d.id].1 {
                rows.push(Row {
                    job: job.name.0.clone(),
                    backup: d.id.clone(),
                    region: region.clone(),
                    action: if d.keep() {
                        Action::Keep
                    } else {
                        Action::Delete
                    },
                    reasons: d.reasons.clone(),
                    upload: None,
                    committed: true,
                });
            }
        }
        let cutoff = Utc::now() - chrono::Duration::from_std(opts.grace).unwrap_or_default();
        for (id, region) in partial {
            let at = id_time(&id);
            let written = writing.contains(&repo::backup_dir(&job.name.0, &id));
            let (action, why) = if written {
                (
                    Action::Keep,
                    "partial: a running job holds a live lease on it".to_string(),
                )
            } else if id_floor(floor).is_some_and(|f| at.is_none_or(|t| t >= f)) {
                (
                    Action::Keep,
                    "partial: a running job may still be writing it".to_string(),
                )
            } else if at.is_none_or(|t| t >= cutoff) {
                (
                    Action::Keep,
                    format!(
                        "partial, within the {} grace period",
                        humantime::format_duration(opts.grace)
                    ),
                )
            } else {
                (
                    Action::RemovePartial,
                    "partial: no manifest, the run never committed".to_string(),
                )
            };
            rows.push(Row {
                job: job.name.0.clone(),
                backup: id,
                region,
                action,
                reasons: vec![why],
                upload: None,
                committed: false,
            });
        }
        rows.extend(stale_uploads(regions, &job.name.0, floor, &writing, cutoff).await?);
    }
    rows.sort_by(|a, b| (&a.job, &b.backup, &a.region).cmp(&(&b.job, &a.backup, &b.region)));
    spare_locked(regions, &mut rows).await?;
    if !opts.dry_run {
        extend_locks(regions, &mut rows).await?;
        carry_out(regions, &rows).await?;
        let deleted: Vec<(String, String, String)> = rows
            .iter()
            .filter(|r| r.action == Action::Delete)
            .map(|r| (r.job.clone(), r.backup.clone(), r.region.clone()))
            .collect();
        crate::catalog::record_prune(cfg, &deleted).await;
    }
    Ok(rows)
}

/// Unfinished multipart uploads of `job` older than the grace period and every live lease.
async fn stale_uploads(
    regions: &[Region],
    job: &str,
    floor: Option<DateTime<Utc>>,
    writing: &BTreeSet<String>,
    cutoff: DateTime<Utc>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for r in regions {
        let Some(s3) = &r.s3 else { continue };
        let uploads = s3.list_uploads(&format!("backups/{job}/")).await;
        for u in uploads.map_err(unreadable(r))? {
            let backup = u.key.split('/').nth(2).unwrap_or_default().to_string();
            let at = u.initiated.or_else(|| id_time(&backup));
            let leased = writing.contains(&repo::backup_dir(job, &backup));
            let stale =
                !leased && at.is_some_and(|t| t < cutoff && id_floor(floor).is_none_or(|f| t < f));
            rows.push(Row {
                job: job.to_string(),
                backup,
                region: r.name.clone(),
                action: if stale {
                    Action::AbortUpload
                } else {
                    Action::Keep
                },
                reasons: vec![format!(
                    "unfinished upload {} ({})",
                    u.key,
                    if stale {
                        "stale"
                    } else {
                        "recent, or a run may still be writing it"
                    }
                )],
                upload: Some(u),
                committed: false,
            });
        }
    }
    Ok(rows)
}

/// Copies the plan would delete or remove whose objects are still under Object Lock
/// retention become `kept-because-locked`: the store would refuse, and a prune never fails on
/// what it may not delete yet.
async fn spare_locked(regions: &[Region], rows: &mut [Row]) -> Result<()> {
    for row in rows
        .iter_mut()
        .filter(|r| matches!(r.action, Action::Delete | Action::RemovePartial))
    {
        let r = region_of(regions, row);
        if r.lock.is_none() {
            continue;
        }
        let locked = r.locked_until(&row.job, &row.backup).await;
        if let Some(l) = locked.map_err(unreadable(r))? {
            row.reasons.push(format!(
                "locked until {} ({}): the store refuses to delete it before then",
                l.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                l.mode
            ));
            row.action = Action::KeptBecauseLocked;
        }
    }
    Ok(())
}

/// `object_lock.while_kept`: every committed copy the plan keeps is locked `retain` from now
/// (locks only ever grow: S3 refuses to shorten a compliance lock, and drctl never tries).
async fn extend_locks(regions: &[Region], rows: &mut [Row]) -> Result<()> {
    let now = Utc::now();
    for row in rows
        .iter_mut()
        .filter(|r| r.committed && r.action == Action::Keep)
    {
        let r = region_of(regions, row);
        let Some(until) = r.lock.filter(|l| l.while_kept).and(r.lock_until(now)) else {
            continue;
        };
        let extended = r
            .extend_lock(&row.job, &row.backup, until)
            .await
            .map_err(|e| e.context(format!("job {}: backup {}", row.job, row.backup)))?;
        if extended {
            row.reasons.push(format!(
                "lock extended until {}",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
    }
    Ok(())
}

fn region_of<'a>(regions: &'a [Region], row: &Row) -> &'a Region {
    find_region(regions, &row.region)
}

fn find_region<'a>(regions: &'a [Region], name: &str) -> &'a Region {
    regions
        .iter()
        .find(|r| r.name == name)
        .expect("a region of the plan")
}

async fn carry_out(regions: &[Region], rows: &[Row]) -> Result<()> {
    // The index first, in every region: it must never list a manifest that is gone.
    let mut doomed: BTreeMap<(&str, &str), BTreeSet<String>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.action == Action::Delete) {
        doomed
            .entry((row.region.as_str(), row.job.as_str()))
            .or_default()
            .insert(row.backup.clone());
    }
    // The plan came through the index: before anything is deleted, each doomed manifest is
    // read again, so that a manifest changed since (a newer format, say) stops the prune.
    for ((region, job), ids) in &doomed {
        let r = find_region(regions, region);
        for id in ids {
            r.read_manifest(job, id)
                .await
                .map_err(|e| e.context("prune deleted nothing"))?;
        }
    }
    for ((region, job), ids) in &doomed {
        let r = find_region(regions, region);
        r.index_remove(job, ids)
            .await
            .map_err(|e| e.context("prune deleted nothing"))?;
    }
    let acts = [Action::Delete, Action::RemovePartial, Action::AbortUpload];
    for row in rows.iter().filter(|r| acts.contains(&r.action)) {
        let r = region_of(regions, row);
        if let (Some(u), Some(s3)) = (&row.upload, &r.s3) {
            s3.abort(u)
                .await
                .map_err(|e| e.context(format!("region {}", r.name)))?;
            tracing::info!(job = %row.job, key = %u.key, region = %r.name, "aborted a stale multipart upload");
            continue;
        }
        if row.action == Action::Delete {
            // Uncommit first: from here on no listing counts it as a backup.
            let m = repo::manifest_path(&row.job, &row.backup);
            r.op.delete(&m).await.map_err(|e| r.err(e, &m))?;
        }
        r.remove_backup(&row.job, &row.backup).await?;
        tracing::info!(job = %row.job, backup = %row.backup, region = %r.name, action = row.action.as_str(), "pruned");
    }
    Ok(())
}

type Held = BTreeMap<String, (Manifest, BTreeSet<String>)>;

/// Complete backups with the regions holding them, and partial copies (id, region).
/// Any region that cannot be read fails the prune before anything is deleted: a copy that
/// cannot be seen could be the one a rule needs.
async fn gather(regions: &[Region], job: &str) -> Result<(Held, Vec<(String, String)>)> {
    let mut held: Held = BTreeMap::new();
    let mut partial = Vec::new();
    let scans = futures::future::join_all(regions.iter().map(|r| r.scan(job))).await;
    for (r, scan) in regions.iter().zip(scans) {
        let scan = scan.map_err(unreadable(r))?;
        for m in scan.committed {
            held.entry(m.id.clone())
                .or_insert_with(|| (m, BTreeSet::new()))
                .1
                .insert(r.name.clone());
        }
        partial.extend(scan.partial.into_iter().map(|id| (id, r.name.clone())));
    }
    Ok((held, partial))
}

fn unreadable(r: &Region) -> impl Fn(Error) -> Error + '_ {
    move |e| {
        e.context("prune deletes nothing while a region cannot be read")
            .hint_or(format!(
                "bring region {} back (or remove it from the config), then prune again",
                r.name
            ))
    }
}

/// Backups whose newest verification passed, in any region.
pub async fn verified_ids(regions: &[Region], job: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for r in regions {
        for (id, rec) in r.latest_verifications(job).await.map_err(unreadable(r))? {
            if crate::verify::passed(&rec) {
                out.insert(id);
            }
        }
    }
    Ok(out)
}

/// Start of the oldest live lease other than prune's own, and the backup folders that live
/// leases are writing. With `reap` (a real prune), expired leases are deleted on the way.
async fn lease_floor(
    regions: &[Region],
    reap: bool,
) -> Result<(Option<DateTime<Utc>>, BTreeSet<String>)> {
    let mut floor: Option<DateTime<Utc>> = None;
    let mut writing = BTreeSet::new();
    for r in regions {
        for l in lease::all_live_leases(r, reap)
            .await
            .map_err(unreadable(r))?
        {
            if l.name != "prune" {
                floor = Some(floor.map_or(l.acquired_at, |f| f.min(l.acquired_at)));
            }
            writing.extend(l.writes);
        }
    }
    Ok((floor, writing))
}

/// The floor as backup ids can be compared with it: ids carry whole seconds, so a run's id
/// may read up to a second earlier than its lease's exact instant.
fn id_floor(floor: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    use chrono::DurationRound;
    floor.map(|f| f.duration_trunc(chrono::Duration::seconds(1)).unwrap_or(f))
}

/// The instant a backup id was started (`YYYYMMDDTHHMMSSZ-…`).
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(id.get(..16)?, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}
