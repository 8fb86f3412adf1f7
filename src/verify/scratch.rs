//! `--level restore`: a real restore into a throwaway target, counted and compared with the
//! manifest's facts, then removed whatever happened.
//!
//! PostgreSQL: `verify.scratch` names a server (`postgres://verify@scratch:5432/postgres`);
//! drctl creates `drctl_verify_<random>` there, restores into it with the same code path as
//! `drctl restore`, compares every table's row count, and drops it (`WITH (FORCE)`).
//! Redis: `scratch_redis.rs`. Chroma and Qdrant: `scratch_vector.rs`.

use crate::config::{Config, JobSpec, SourceSpec};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::restore::{self, Selector};
use crate::source::postgres::{row_counts, ConnInfo};
use crate::source::RestoreOptions;
use std::collections::BTreeMap;
use std::time::Instant;

/// Returns the restore's wall time in seconds and what was compared.
pub async fn check(cfg: &Config, job: &JobSpec, m: &Manifest) -> Result<(f64, String)> {
    let scratch = job.verify.as_ref().and_then(|v| v.scratch.as_ref());
    if let SourceSpec::Redis(_) = &job.source {
        let server = scratch.map_or("redis-server", |s| s.expose());
        return super::scratch_redis::check(cfg, job, m, server).await;
    }
    if matches!(job.source, SourceSpec::Chroma(_) | SourceSpec::Qdrant(_)) {
        return super::scratch_vector::check(cfg, job, m).await;
    }
    let scratch = scratch.ok_or_else(|| {
        Error::usage(format!("job {}: verify.scratch is not set", job.name))
            .hint("set verify.scratch to a throwaway PostgreSQL server URL")
    })?;
    let server = ConnInfo::parse(scratch.expose())?;
    let db = format!("drctl_verify_{:08x}", rand::random::<u32>());
    let target = server.with_database(&db)?;
    let result = restore_and_count(cfg, job, m, &target).await;
    // Always clean up, and say so if that fails: a scratch database left behind costs space.
    let admin = server.connect().await?;
    if let Err(e) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
    {
        tracing::error!(database = %db, error = %e, "cannot drop the scratch database; drop it by hand");
    }
    result
}

async fn restore_and_count(
    cfg: &Config,
    job: &JobSpec,
    m: &Manifest,
    target: &ConnInfo,
) -> Result<(f64, String)> {
    let t = Instant::now();
    let opts = RestoreOptions {
        clean: false,
        no_owner: true,
        jobs: 1,
        renames: Vec::new(),
    };
    restore::run(
        cfg,
        job,
        &Selector::Id(m.id.clone()),
        None,
        &target.full,
        opts,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let client = target.connect().await?;
    let got = row_counts(&client).await?;
    let Some(want) = m.artifacts.first().and_then(|a| a.facts.get("row_counts")) else {
        return Ok((
            secs,
            format!(
                "restored {} tables in {secs:.1}s (no row counts in the manifest to compare)",
                got.len()
            ),
        ));
    };
    let want: BTreeMap<String, i64> = serde_json::from_value(want.clone())?;
    let diff: Vec<String> = want
        .iter()
        .filter(|(t, n)| got.get(*t) != Some(n))
        .map(|(t, n)| {
            format!(
                "{t}: {} restored, {n} in the manifest",
                got.get(t).map_or("none".into(), |g| g.to_string())
            )
        })
        .chain(
            got.keys()
                .filter(|t| !want.contains_key(*t))
                .map(|t| format!("{t}: restored, not in the manifest")),
        )
        .collect();
    if !diff.is_empty() {
        return Err(Error::failed(format!(
            "row counts differ: {}",
            diff.join(", ")
        )));
    }
    let asserted = assertions(job, &client).await?;
    let rows: i64 = got.values().sum();
    Ok((
        secs,
        format!(
            "restored {} tables, {rows} rows, every count equal to the manifest's{asserted}, in {secs:.1}s",
            got.len()
        ),
    ))
}

/// The job's `verify.assertions`, in order, against the restored scratch database. The first
/// that does not hold fails the check, naming it, its query, what came back and what was
/// expected.
async fn assertions(job: &JobSpec, client: &tokio_postgres::Client) -> Result<String> {
    use tokio_postgres::SimpleQueryMessage;
    let list = job.verify.as_ref().map_or(&[][..], |v| &v.assertions[..]);
    for (i, a) in list.iter().enumerate() {
        let label = a
            .name
            .as_deref()
            .map_or(format!("verify.assertions[{i}]"), |n| {
                format!("{n:?} (verify.assertions[{i}])")
            });
        let msgs = client.simple_query(&a.sql).await.map_err(|e| {
            Error::failed(format!("assertion {label}: the query failed: {e}"))
                .hint("the query runs against the restored scratch database; fix it in the config")
        })?;
        let first = msgs.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("null").to_string()),
            _ => None,
        });
        let got = first.as_deref().unwrap_or("no rows");
        if got != a.expect.0 {
            return Err(Error::failed(format!(
                "assertion {label} does not hold: `{}` returned {got}, expected {}",
                a.sql.trim(),
                a.expect.0
            )));
        }
    }
    Ok(match list.len() {
        0 => String::new(),
        n => format!(", {n} assertion(s) held"),
    })
}
