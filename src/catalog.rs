//! The optional PostgreSQL catalog (`catalog: { url }`): an index of every backup, its copies
//! per region, its verifications and every drill run, for history queries and dashboards. Never the system of
//! record — the repository in each region is — so drctl works with the catalog gone, and
//! `drctl catalog sync` rebuilds it from the regions.
//!
//! - `migrate`: the SQL files of `migrations/`, embedded in the binary and applied by
//!   refinery (versioned, each once); a catalog with migrations this binary does not know
//!   (a newer drctl migrated it) is refused, never touched.
//! - `sync`: every configured job read from every region, then written in one transaction per
//!   job: what the regions hold is upserted, what they no longer hold is removed, and rows of
//!   jobs no longer configured go. The rows depend only on the union of what the regions
//!   hold, so the result is the same whatever order regions answer in, and a killed sync
//!   (its transaction rolled back) converges on the next run.
//! - Drill runs published to `drills/<playbook>/<run-id>/` are synced likewise (in one
//!   transaction for all), and a drill records its run as it publishes it.
//! - History reads the manifests and verification records back exactly as stored (jsonb),
//!   through the same `history::assemble` as the repository path, so both give the same rows.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::{HistoryRow, RegionHolding};
use crate::manifest::Manifest;
use crate::store::Region;
use serde::Serialize;
use tokio_postgres::{Client, NoTls};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A catalog query's error (tokio-postgres never includes the URL or its password).
fn db(e: tokio_postgres::Error) -> Error {
    Error::failed(format!("catalog: {e}"))
}

/// Connect to the catalog; the URL is never printed.
pub async fn connect(cfg: &Config) -> Result<Client> {
    let Some(c) = &cfg.catalog else {
        return Err(Error::usage("no catalog is configured")
            .hint("add `catalog: { url: postgres://… }` to the config (docs/config.md)"));
    };
    let (client, conn) = tokio_postgres::connect(c.url.expose(), NoTls)
        .await
        .map_err(|e| {
            Error::failed(format!("cannot connect to the catalog: {e}")).hint(
                "check catalog.url and that the server accepts connections; backups do not need it",
            )
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "catalog connection closed");
        }
    });
    Ok(client)
}

#[derive(Debug, Serialize)]
pub struct MigrateReport {
    pub applied: Vec<String>,
    pub current_version: Option<i32>,
}

/// Apply the migrations this binary carries that the catalog lacks.
pub async fn migrate(cfg: &Config) -> Result<MigrateReport> {
    let mut client = connect(cfg).await?;
    let report = embedded::migrations::runner()
        .set_abort_missing(true)
        .set_abort_divergent(true)
        .run_async(&mut client)
        .await
        .map_err(|e| {
            Error::failed(format!("catalog migration failed: {e}")).hint(
                "a catalog migrated by a newer drctl is refused: upgrade this drctl, or point catalog.url at another database",
            )
        })?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    let row = client
        .query_opt("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .map_err(db)?;
    Ok(MigrateReport {
        applied,
        current_version: row.and_then(|r| r.get::<_, Option<i32>>(0)),
    })
}

#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub jobs: usize,
    pub backups: usize,
    pub copies: usize,
    pub verifications: usize,
    pub drills: usize,
}

/// Rebuild the catalog's rows from every region. Every region must answer: a sync that
/// cannot see a region would remove what only that region holds.
pub async fn sync(cfg: &Config, regions: &[Region]) -> Result<SyncReport> {
    let mut client = connect(cfg).await?;
    let mut report = SyncReport::default();
    for job in &cfg.jobs {
        let job = &job.name.0;
        let held = crate::history::read_holdings(regions, job)
            .await
            .into_iter()
            .zip(regions)
            .map(|(h, r)| {
                h.map_err(|e| {
                    e.context(format!("region {}", r.name))
                        .hint("bring the region back and sync again: the catalog was not changed for this job")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let n = write_job(&mut client, job, &held).await?;
        report.jobs += 1;
        report.backups += n.0;
        report.copies += n.1;
        report.verifications += n.2;
    }
    report.drills = sync_drills(&mut client, regions).await?;
    let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.0.as_str()).collect();
    client
        .execute("DELETE FROM verifications WHERE job <> ALL($1)", &[&names])
        .await
        .map_err(db)?;
    client
        .execute("DELETE FROM backups WHERE job <> ALL($1)", &[&names])
        .await
        .map_err(db)?;
    Ok(report)
}

/// Every drill run published to any region, replaced in one transaction; every region must
/// answer.
async fn sync_drills(client: &mut Client, regions: &[Region]) -> Result<usize> {
    use crate::drill::record::RunRecord;
    let mut runs: std::collections::BTreeMap<(String, String), (RunRecord, Vec<String>)> =
        Default::default();
    for r in regions {
        let recs = crate::drill::evidence::region_records(r)
            .await
            .map_err(|e| {
                e.context(format!("region {}", r.name)).hint(
                    "bring the region back and sync again: the catalog's drills were not changed",
                )
            })?;
        for rec in recs {
            runs.entry((rec.playbook.clone(), rec.run_id.clone()))
                .or_insert_with(|| (rec, Vec::new()))
                .1
                .push(r.name.clone());
        }
    }
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("DELETE FROM drills", &[]).await.map_err(db)?;
    for (rec, held) in runs.values() {
        upsert_drill(&tx, rec, held).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(runs.len())
}

async fn upsert_drill(
    c: &impl tokio_postgres::GenericClient,
    rec: &crate::drill::record::RunRecord,
    regions: &[String],
) -> Result<()> {
    c.execute(
        "INSERT INTO drills (playbook, run_id, started_at, finished_at, rto_seconds, rpo_seconds, aborted, report)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (playbook, run_id) DO UPDATE SET started_at = $3, finished_at = $4,
           rto_seconds = $5, rpo_seconds = $6, aborted = $7, report = $8",
        &[
            &rec.playbook,
            &rec.run_id,
            &rec.started_at,
            &rec.finished_at,
            &rec.rto.seconds,
            &rec.rpo.seconds,
            &rec.aborted,
            &serde_json::to_value(rec)?,
        ],
    )
    .await
    .map_err(db)?;
    for r in regions {
        c.execute(
            "INSERT INTO drill_copies (playbook, run_id, region) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&rec.playbook, &rec.run_id, r],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// After a drill's evidence was published to `regions`: its run.
pub async fn record_drill(
    cfg: &Config,
    rec: &crate::drill::record::RunRecord,
    regions: &[String],
) -> Option<String> {
    live(cfg, "drill", async {
        let client = connect(cfg).await?;
        upsert_drill(&client, rec, regions).await
    })
    .await
}

/// One job's rows, replaced in one transaction: (backups, copies, verifications).
async fn write_job(
    client: &mut Client,
    job: &str,
    held: &[RegionHolding],
) -> Result<(usize, usize, usize)> {
    let tx = client.transaction().await.map_err(db)?;
    let mut manifests: std::collections::BTreeMap<&str, &Manifest> = Default::default();
    for h in held {
        for m in &h.manifests {
            manifests.entry(m.id.as_str()).or_insert(m);
        }
    }
    let ids: Vec<&str> = manifests.keys().copied().collect();
    tx.execute("DELETE FROM copies WHERE job = $1", &[&job])
        .await
        .map_err(db)?;
    tx.execute("DELETE FROM verifications WHERE job = $1", &[&job])
        .await
        .map_err(db)?;
    tx.execute(
        "DELETE FROM backups WHERE job = $1 AND id <> ALL($2)",
        &[&job, &ids],
    )
    .await
    .map_err(db)?;
    for m in manifests.values() {
        upsert_backup(&tx, m).await?;
    }
    let (mut copies, mut verifications) = (0, 0);
    for h in held {
        for m in &h.manifests {
            tx.execute(
                "INSERT INTO copies (job, id, region) VALUES ($1, $2, $3)",
                &[&job, &m.id, &h.region],
            )
            .await
            .map_err(db)?;
            copies += 1;
        }
        for (id, rec) in &h.verifications {
            if !manifests.contains_key(id.as_str()) {
                continue;
            }
            upsert_verification(&tx, job, id, &h.region, rec).await?;
            verifications += 1;
        }
    }
    tx.commit().await.map_err(db)?;
    Ok((manifests.len(), copies, verifications))
}

async fn upsert_backup(c: &impl tokio_postgres::GenericClient, m: &Manifest) -> Result<()> {
    let doc = serde_json::to_value(m)?;
    c.execute(
        "INSERT INTO backups (job, id, consistent_at, started_at, finished_at, raw_bytes, stored_bytes, source_kind, manifest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (job, id) DO UPDATE SET consistent_at = $3, started_at = $4, finished_at = $5,
           raw_bytes = $6, stored_bytes = $7, source_kind = $8, manifest = $9",
        &[
            &m.job,
            &m.id,
            &m.consistent_at,
            &m.started_at,
            &m.finished_at,
            &(m.raw_size() as i64),
            &(m.stored_size() as i64),
            &m.source.kind,
            &doc,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// The newest record of a backup in a region (a record without `finished_at` is skipped).
async fn upsert_verification(
    c: &impl tokio_postgres::GenericClient,
    job: &str,
    id: &str,
    region: &str,
    rec: &serde_json::Value,
) -> Result<()> {
    let Some(at) = rec
        .get("finished_at")
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
    else {
        return Ok(());
    };
    c.execute(
        "INSERT INTO verifications (job, id, region, finished_at, level, passed, restore_seconds, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (job, id, region) DO UPDATE SET finished_at = $4, level = $5, passed = $6,
           restore_seconds = $7, record = $8 WHERE verifications.finished_at <= $4",
        &[
            &job,
            &id,
            &region,
            &at,
            &rec.get("level").and_then(|l| l.as_str()).unwrap_or(""),
            &crate::verify::passed(rec),
            &rec.get("restore_seconds").and_then(|s| s.as_f64()),
            rec,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// A job's history from the catalog: the same rows `history::from_repository` gives.
pub async fn history(cfg: &Config, job: &str) -> Result<Vec<HistoryRow>> {
    let client = connect(cfg).await?;
    let mut held = Vec::new();
    for r in &cfg.regions {
        let region = r.name.0.clone();
        let rows = client
            .query(
                "SELECT b.manifest FROM copies c JOIN backups b USING (job, id)
                 WHERE c.job = $1 AND c.region = $2 ORDER BY b.id",
                &[&job, &region],
            )
            .await
            .map_err(db)?;
        let manifests = rows
            .iter()
            .map(|row| serde_json::from_value(row.get::<_, serde_json::Value>(0)))
            .collect::<std::result::Result<Vec<Manifest>, _>>()?;
        let rows = client
            .query(
                "SELECT id, record FROM verifications WHERE job = $1 AND region = $2 ORDER BY id",
                &[&job, &region],
            )
            .await
            .map_err(db)?;
        let verifications = rows
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, serde_json::Value>(1)))
            .collect();
        held.push(RegionHolding {
            region,
            manifests,
            verifications,
        });
    }
    Ok(crate::history::assemble(&held))
}

/// How long a command waits for the catalog when it records what it did: a catalog that does
/// not answer costs at most this, never the command's result.
const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Failed live updates in this process, exported as `drctl_catalog_errors_total`.
pub static ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Run one live update: bounded, logged and counted when it fails, never an error: the
/// repository already holds the truth, and the next `catalog sync` catches the catalog up.
async fn live<F>(cfg: &Config, what: &str, f: F) -> Option<String>
where
    F: std::future::Future<Output = Result<()>>,
{
    cfg.catalog.as_ref()?;
    let r = match tokio::time::timeout(LIVE_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::failed(format!(
            "the catalog did not answer within {}s",
            LIVE_TIMEOUT.as_secs()
        ))),
    };
    let e = r.err()?;
    ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let msg = format!("catalog not updated ({what}): {}", e.message());
    tracing::warn!(error = %msg, "the catalog is behind the repository; `drctl catalog sync` catches it up");
    Some(msg)
}

/// After a commit: the backup (its manifest as written) and its copies.
pub async fn record_backup(cfg: &Config, m: &Manifest, regions: &[String]) -> Option<String> {
    live(cfg, "backup", async {
        let mut client = connect(cfg).await?;
        let tx = client.transaction().await.map_err(db)?;
        upsert_backup(&tx, m).await?;
        for r in regions {
            tx.execute(
                "INSERT INTO copies (job, id, region) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&m.job, &m.id, r],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    })
    .await
}

/// After a verification was recorded in `regions`: its record, as stored there.
pub async fn record_verification(
    cfg: &Config,
    job: &str,
    id: &str,
    regions: &[String],
    rec: &serde_json::Value,
) -> Option<String> {
    live(cfg, "verification", async {
        let client = connect(cfg).await?;
        for r in regions {
            upsert_verification(&client, job, id, r, rec).await?;
        }
        Ok(())
    })
    .await
}

/// After a prune deleted copies `(job, id, region)`: those copies, and backups left with none.
pub async fn record_prune(cfg: &Config, deleted: &[(String, String, String)]) -> Option<String> {
    if deleted.is_empty() {
        return None;
    }
    live(cfg, "prune", async {
        let client = connect(cfg).await?;
        for (job, id, region) in deleted {
            client
                .execute(
                    "DELETE FROM copies WHERE job = $1 AND id = $2 AND region = $3",
                    &[job, id, region],
                )
                .await
                .map_err(db)?;
            client
                .execute(
                    "DELETE FROM verifications WHERE job = $1 AND id = $2 AND region = $3",
                    &[job, id, region],
                )
                .await
                .map_err(db)?;
            client
                .execute(
                    "DELETE FROM backups b WHERE job = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM copies c WHERE c.job = b.job AND c.id = b.id)",
                    &[job, id],
                )
                .await
                .map_err(db)?;
        }
        Ok(())
    })
    .await
}
