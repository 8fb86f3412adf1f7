//! Where a drill's evidence lives: a local folder (`<evidence-dir>/<playbook>/<run-id>/`,
//! written while the drill runs) and, when a config is at hand, `drills/<playbook>/<run-id>/`
//! in every region of the repository, the system of record.

use super::record::RunRecord;
use super::report;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::Region;
use std::path::{Path, PathBuf};

pub const FILES: &[&str] = &["journal.jsonl", "report.json", "report.md", "report.html"];

pub fn run_dir(base: &Path, playbook: &str, run_id: &str) -> PathBuf {
    base.join(playbook).join(run_id)
}

/// Write the three reports beside the journal.
pub fn write_local(dir: &Path, r: &RunRecord) -> Result<()> {
    let w = |name: &str, body: String| {
        std::fs::write(dir.join(name), body)
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", dir.join(name).display())))
    };
    w("report.json", report::json(r))?;
    w("report.md", report::markdown(r))?;
    w("report.html", report::html(r))?;
    Ok(())
}

/// Where a run's evidence went: the regions that hold it, and each one that does not, why.
#[derive(Debug, Default)]
pub struct Published {
    pub stored: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Copy the run's folder into every region. A region that cannot be opened, read or written
/// is in `failed` with its reason, never in `stored`.
pub async fn publish(cfg: &Config, dir: &Path, r: &RunRecord) -> Published {
    let mut out = Published::default();
    for spec in &cfg.regions {
        let name = spec.name.0.clone();
        let stored = match Region::open(spec) {
            Ok(region) => publish_to(&region, dir, r).await,
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => out.stored.push(name),
            Err(e) => out.failed.push((name, e)),
        }
    }
    out
}

async fn publish_to(region: &Region, dir: &Path, r: &RunRecord) -> std::result::Result<(), String> {
    for f in FILES {
        let path = format!("drills/{}/{}/{f}", r.playbook, r.run_id);
        let body = std::fs::read(dir.join(f)).map_err(|e| format!("cannot read {f}: {e}"))?;
        region
            .op
            .write(&path, body)
            .await
            .map_err(|e| region.err(e, &path).to_string())?;
    }
    Ok(())
}

/// Every drill report published to `region` (none when it holds no `drills/`).
pub async fn region_records(region: &Region) -> Result<Vec<RunRecord>> {
    let entries = match region.op.list_with("drills/").recursive(true).await {
        Ok(e) => e,
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(region.err(e, "drills/")),
    };
    let mut out = Vec::new();
    for e in entries {
        if e.path().ends_with("/report.json") {
            let body = region
                .op
                .read(e.path())
                .await
                .map_err(|x| region.err(x, e.path()))?;
            match serde_json::from_slice::<RunRecord>(&body.to_vec()) {
                Ok(r) => out.push(r),
                Err(err) => {
                    tracing::warn!(region = %region.name, path = e.path(), error = %err, "unreadable drill report skipped")
                }
            }
        }
    }
    Ok(out)
}

fn local_records(base: &Path) -> Vec<RunRecord> {
    let mut out = Vec::new();
    let Ok(playbooks) = std::fs::read_dir(base) else {
        return out;
    };
    for p in playbooks.flatten() {
        let Ok(runs) = std::fs::read_dir(p.path()) else {
            continue;
        };
        for run in runs.flatten() {
            if let Ok(b) = std::fs::read(run.path().join("report.json")) {
                if let Ok(r) = serde_json::from_slice::<RunRecord>(&b) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Every run known locally or in any region, oldest first, each once. A region that cannot
/// be read is reported, not fatal: history should show what it can.
pub async fn all(cfg: Option<&Config>, base: &Path) -> (Vec<RunRecord>, Vec<String>) {
    let mut runs = local_records(base);
    let mut warnings = Vec::new();
    if let Some(cfg) = cfg {
        match crate::backup::open_regions(cfg) {
            Ok(regions) => {
                let (mut published, failed) = read_published(&regions).await;
                runs.append(&mut published);
                warnings.extend(failed.into_iter().map(|(r, e)| format!("region {r}: {e}")));
            }
            Err(e) => warnings.push(e.to_string()),
        }
    }
    (oldest_first_once(runs), warnings)
}

/// Every run published to any of `regions` (read at once), oldest first, each once; and
/// the names of the regions whose `drills/` could not be read.
pub async fn published_runs(regions: &[Region]) -> (Vec<RunRecord>, Vec<String>) {
    let (runs, failed) = read_published(regions).await;
    let unread = failed
        .into_iter()
        .map(|(r, e)| {
            tracing::warn!(region = %r, error = %e, "cannot read the region's drill reports");
            r
        })
        .collect();
    (oldest_first_once(runs), unread)
}

/// Every region's `drills/` at once: the runs read, and each region that failed with why.
async fn read_published(regions: &[Region]) -> (Vec<RunRecord>, Vec<(String, Error)>) {
    let reads = futures::future::join_all(regions.iter().map(region_records)).await;
    let mut runs = Vec::new();
    let mut failed = Vec::new();
    for (r, read) in regions.iter().zip(reads) {
        match read {
            Ok(mut v) => runs.append(&mut v),
            Err(e) => failed.push((r.name.clone(), e)),
        }
    }
    (runs, failed)
}

fn oldest_first_once(mut runs: Vec<RunRecord>) -> Vec<RunRecord> {
    runs.sort_by(|a, b| {
        (a.started_at, &a.run_id, &a.playbook).cmp(&(b.started_at, &b.run_id, &b.playbook))
    });
    runs.dedup_by(|a, b| a.run_id == b.run_id && a.playbook == b.playbook);
    runs
}

/// One run by id (or a unique prefix), and where it was found.
pub async fn find(cfg: Option<&Config>, base: &Path, run: &str) -> Result<RunRecord> {
    let (runs, warnings) = all(cfg, base).await;
    let matches: Vec<&RunRecord> = runs.iter().filter(|r| r.run_id.starts_with(run)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::failed(format!(
            "no drill run {run:?} in {} or the repository{}",
            base.display(),
            if warnings.is_empty() {
                String::new()
            } else {
                format!(" ({})", warnings.join("; "))
            }
        ))
        .hint("list runs with `drctl drill history`")),
        many => Err(Error::usage(format!(
            "{run:?} matches {} runs: {}",
            many.len(),
            many.iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
