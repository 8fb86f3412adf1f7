//! Leases: at most one run per name (`backup-<job>`, `verify-<job>`, `prune`) at a time,
//! coordinated through the repository alone.
//!
//! Conditional create (`If-None-Match: *`) is not something every store honours — Garage
//! 2.5 accepts the header and ignores it — so the protocol does not depend on it. Each
//! contender writes its own object `locks/<name>/<nonce>.json`, then lists `locks/<name>/`:
//! - another live lease marked `held` ⇒ the name is taken: remove ours, report who holds it;
//! - another live contender ⇒ remove ours, back off a random while, try again;
//! - nobody else ⇒ ours; rewrite it as `held` and renew it until released.
//!
//! Two contenders cannot both win on a store whose listings show completed writes (S3, GCS,
//! Azure and fs do): each lists after its own write completed, so whichever lists second sees
//! the other. Both may lose a round; the random backoff makes a later round decide.
//! A lease past `expires_at` is dead (its holder crashed): it is deleted and ignored, so a
//! crashed run blocks its job for at most one TTL. Expiry compares wall clocks of different
//! hosts: keep them in NTP sync, well within the TTL.
//!
//! With several regions the lease is taken in every region that answers; a region that
//! fails is skipped with a warning (a dead region must not stop backups to the others).

use super::Region;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
const ROUNDS: u32 = 8;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseInfo {
    pub name: String,
    /// What holds it, e.g. `backup app-db`.
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub nonce: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// false while still contending.
    pub held: bool,
    /// The backup folder (`backups/<job>/<id>/`) this run is writing, if any: `prune` never
    /// removes it while the lease lives, whatever its grace period says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<String>,
}

impl LeaseInfo {
    pub fn describe(&self) -> String {
        format!(
            "{} (host {}, pid {}, since {}, expires {})",
            self.owner,
            self.host,
            self.pid,
            self.acquired_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

fn dir(name: &str) -> String {
    format!("locks/{name}/")
}

/// A lease this process holds; renewed in the background until `release`.
pub struct Lease {
    pub info: LeaseInfo,
    regions: Vec<Region>,
    /// Regions that would not take the lease, with the store's answer: they cannot be
    /// written, so a run skips them before it starts.
    pub refused: Vec<(String, String)>,
    stop: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

/// Why a lease was not granted.
pub enum Refused {
    /// Another run holds it.
    Held(LeaseInfo),
    /// Store errors in every region, or contention that did not settle.
    Error(Error),
}

pub async fn acquire(
    regions: &[Region],
    name: &str,
    owner: &str,
    ttl: Duration,
) -> std::result::Result<Lease, Refused> {
    acquire_writing(regions, name, owner, ttl, None).await
}

/// `acquire`, recording the backup folder the holder writes (see `LeaseInfo::writes`).
pub async fn acquire_writing(
    regions: &[Region],
    name: &str,
    owner: &str,
    ttl: Duration,
    writes: Option<String>,
) -> std::result::Result<Lease, Refused> {
    let nonce = format!("{:016x}", rand::random::<u64>());
    let mut info = LeaseInfo {
        name: name.to_string(),
        owner: owner.to_string(),
        host: hostname(),
        pid: std::process::id(),
        nonce,
        acquired_at: Utc::now(),
        expires_at: Utc::now(),
        held: false,
        writes,
    };
    for round in 0..ROUNDS {
        info.acquired_at = Utc::now();
        info.expires_at = info.acquired_at + chrono::Duration::from_std(ttl).unwrap_or_default();
        let (live, refused) = write_each(regions, &info).await.map_err(Refused::Error)?;
        let mut others = Vec::new();
        let mut listed = 0;
        let mut last_err = None;
        for r in &live {
            match live_leases(r, name, true).await {
                Ok(ls) => {
                    listed += 1;
                    others.extend(ls.into_iter().filter(|l| l.nonce != info.nonce));
                }
                Err(e) => {
                    tracing::warn!(region = %r.name, error = %e, "cannot list leases");
                    last_err = Some(e);
                }
            }
        }
        // Winning needs evidence: at least one region listed without seeing anyone else.
        if listed == 0 {
            remove_all(&live, &info).await;
            let e = last_err.unwrap_or_else(|| Error::failed("no region to list"));
            return Err(Refused::Error(
                e.context(format!("lease {name}: no region could list its leases")),
            ));
        }
        if others.is_empty() {
            info.held = true;
            if let Err(e) = write_all(&live, &info).await {
                remove_all(&live, &info).await;
                return Err(Refused::Error(e));
            }
            let stop = CancellationToken::new();
            let renewer = tokio::spawn(renew(live.clone(), info.clone(), ttl, stop.clone()));
            return Ok(Lease {
                info,
                regions: live,
                refused: refused
                    .into_iter()
                    .map(|(r, e)| (r, e.to_string()))
                    .collect(),
                stop,
                renewer,
            });
        }
        remove_all(&live, &info).await;
        if let Some(h) = others.iter().find(|l| l.held) {
            return Err(Refused::Held(h.clone()));
        }
        let pause = 100 + rand::random::<u64>() % (200 << round.min(3));
        tracing::debug!(%name, round, pause_ms = pause, "lease contended; backing off");
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Err(Refused::Error(Error::failed(format!(
        "lease {name}: still contended after {ROUNDS} rounds"
    ))))
}

impl Lease {
    /// The regions that accepted the lease: written to just now, so known writable.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Stop renewing and delete the lease everywhere.
    pub async fn release(self) {
        self.stop.cancel();
        let _ = self.renewer.await;
        remove_all(&self.regions, &self.info).await;
    }
}

/// Live leases under a name in one region. With `reap`, dead ones (past expiry: a crashed
/// holder) are deleted on the way; readers that promise to change nothing pass `false`.
async fn live_leases(r: &Region, name: &str, reap: bool) -> Result<Vec<LeaseInfo>> {
    let d = dir(name);
    let entries = match r.op.list(&d).await {
        Ok(e) => e,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(r.err(e, &d)),
    };
    let now = Utc::now();
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.path().ends_with(".json")) {
        let buf = match r.op.read(e.path()).await {
            Ok(b) => b,
            Err(err) if err.kind() == opendal::ErrorKind::NotFound => continue,
            Err(err) => return Err(r.err(err, e.path())),
        };
        match serde_json::from_slice::<LeaseInfo>(&buf.to_vec()) {
            Ok(l) if l.expires_at > now => out.push(l),
            Ok(l) if reap => {
                tracing::warn!(region = %r.name, lease = %l.describe(), "taking over an expired lease");
                let _ = r.op.delete(e.path()).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(region = %r.name, path = e.path(), error = %err, "ignoring an unreadable lease")
            }
        }
    }
    Ok(out)
}

/// Every live lease in the repository (all names), for `prune`'s "never touch what a running
/// job may depend on". With `reap`, expired ones (crashed holders) are deleted on the way:
/// only a contender passes it (`prune`, holding its own lease), so a dry run changes nothing.
pub async fn all_live_leases(r: &Region, reap: bool) -> Result<Vec<LeaseInfo>> {
    let mut out = Vec::new();
    for name in lease_names(r).await? {
        out.extend(live_leases(r, &name, reap).await?);
    }
    Ok(out)
}

/// The lease names present in a region (the folders under `locks/`).
async fn lease_names(r: &Region) -> Result<Vec<String>> {
    let entries = match r.op.list("locks/").await {
        Ok(e) => e,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(r.err(e, "locks/")),
    };
    Ok(entries
        .iter()
        .filter(|e| e.path() != "locks/" && e.path().ends_with('/'))
        .map(|e| e.name().trim_end_matches('/').to_string())
        .collect())
}

async fn write_all(regions: &[Region], info: &LeaseInfo) -> Result<Vec<Region>> {
    let (ok, _) = write_each(regions, info).await?;
    Ok(ok)
}

/// Write the lease in every region: those that took it, and why the others did not.
async fn write_each(
    regions: &[Region],
    info: &LeaseInfo,
) -> Result<(Vec<Region>, Vec<(String, Error)>)> {
    let path = format!("{}{}.json", dir(&info.name), info.nonce);
    let body = serde_json::to_vec_pretty(info)?;
    let results = join_all(regions.iter().map(|r| r.op.write(&path, body.clone()))).await;
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for (r, res) in regions.iter().zip(results) {
        match res {
            Ok(_) => ok.push(r.clone()),
            Err(e) => {
                tracing::warn!(region = %r.name, error = %e, "cannot write lease");
                refused.push((r.name.clone(), r.err(e, &path)));
            }
        }
    }
    if ok.is_empty() && !refused.is_empty() {
        let why: Vec<String> = refused.iter().map(|(_, e)| e.to_string()).collect();
        return Err(Error::failed(format!(
            "lease {}: no region accepted it, so no region can be written: {}",
            info.name,
            why.join("; ")
        ))
        .hint("check each region's write access (a read-only bucket, mount or directory, a key without write permission)"));
    }
    Ok((ok, refused))
}

async fn remove_all(regions: &[Region], info: &LeaseInfo) {
    let path = format!("{}{}.json", dir(&info.name), info.nonce);
    for r in regions {
        if let Err(e) = r.op.delete(&path).await {
            tracing::warn!(region = %r.name, error = %e, "cannot remove lease; it expires by itself");
        }
    }
}

async fn renew(regions: Vec<Region>, mut info: LeaseInfo, ttl: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(ttl / 3) => {}
        }
        info.expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
        if let Err(e) = write_all(&regions, &info).await {
            tracing::error!(lease = %info.name, error = %e, "cannot renew lease");
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
