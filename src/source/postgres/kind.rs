//! The PostgreSQL plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`). The dump and restore themselves are in `mod.rs`.

use super::parallel::MAX_PARALLEL;
use super::{
    check_archive, check_url, filters_objects, row_counts, ConnInfo, PostgresSource,
    PostgresTarget,
};
use crate::error::{Error, Result};
use crate::interp::{expand, parse_scalar, Interp, Secret};
use crate::manifest::Artifact;
use crate::source::kind::{About, FieldProblem, Scratch, SourceKind, VerifyRules};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// PostgreSQL: `pg_dump -Fc` of one exported snapshot, streamed; `pg_restore` back.
pub struct PostgresSpec {
    /// `postgres://user[:password]@host:port/db`. The password is handed to pg_dump through
    /// PGPASSWORD, never argv. Without one, libpq's usual PGPASSWORD / ~/.pgpass apply.
    #[serde(deserialize_with = "postgres_url")]
    #[schemars(with = "String")]
    pub url: Secret,
    /// pg_dump binary; its major version must be >= the server's. Default: `pg_dump` on PATH.
    #[serde(default)]
    pub pg_dump: Option<String>,
    /// pg_restore binary used by `drctl restore`. Default: `pg_restore` on PATH.
    #[serde(default)]
    pub pg_restore: Option<String>,
    /// Record exact row counts per table, taken in the dump's snapshot. Turn off for huge
    /// databases where `count(*)` of every table costs too much.
    #[serde(default = "yes")]
    pub row_counts: bool,
    /// Extra pg_dump arguments, e.g. `["--exclude-table=audit_log"]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// pg_dump processes for the table data, all in the one exported snapshot: `1` (the
    /// default) is one archive; `N` > 1 dumps pre-data, N buckets of tables balanced by size,
    /// and post-data as separate artifacts at once, restored side by side with
    /// `drctl restore --jobs N`. At most 16; not with `extra_args` that pick objects.
    #[serde(default = "one")]
    pub parallel: u32,
}

fn one() -> u32 {
    1
}

fn postgres_url<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
    parse_scalar(d, "a postgres:// URL", |raw| {
        let url = expand(raw, |k| std::env::var(k).ok())?;
        check_url(&url)?;
        Ok(Secret(Interp(url)))
    })
}

fn yes() -> bool {
    true
}

impl PostgresSpec {
    pub fn pg_restore(&self) -> &str {
        self.pg_restore.as_deref().unwrap_or("pg_restore")
    }
}

#[async_trait]
impl SourceKind for PostgresSpec {
    fn about() -> About {
        About::new(
            "PostgreSQL: pg_dump of one exported snapshot (row counts taken in it), pg_restore back",
            "postgres://user@host:5432/db (created when missing; --clean, --no-owner, --jobs N)",
        )
        .with_verify(VerifyRules {
            assertions: true,
            restore_needs_scratch: true,
        })
    }

    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if self.parallel == 0 || self.parallel > MAX_PARALLEL {
            out.push(FieldProblem {
                field: "parallel",
                message: format!(
                    "parallel must be 1 to {MAX_PARALLEL} (pg_dump processes), not {}",
                    self.parallel
                ),
            });
        } else if self.parallel > 1 && filters_objects(&self.extra_args) {
            out.push(FieldProblem {
                field: "parallel",
                message: "a parallel dump picks its own tables per process, so it cannot be combined with extra_args that pick objects (--table, --schema, --exclude-…): drop those, or use parallel: 1".into(),
            });
        }
        out
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(PostgresSource::new(self.clone())))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        Ok(Box::new(PostgresTarget::new(self, to, opts)?))
    }

    async fn check_structure(&self, raw: ByteReader, a: &Artifact) -> Result<String> {
        let tables = check_archive(raw, self.pg_restore()).await?;
        if let Some(want) = a.facts.get("tables").and_then(|t| t.as_u64()) {
            if tables as u64 != want {
                return Err(Error::failed(format!(
                    "the archive's table of contents has data for {tables} tables, the manifest says {want}"
                )));
            }
        }
        Ok(format!("{tables} tables in the archive's TOC"))
    }

    /// `verify.scratch` names a server (`postgres://verify@scratch:5432/postgres`); drctl
    /// creates `drctl_verify_<random>` there, restores into it, compares every table's row
    /// count and runs the assertions, then drops it (`WITH (FORCE)`).
    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        let url = scratch.target().ok_or_else(|| {
            Error::usage("verify.scratch is not set")
                .hint("set verify.scratch to a throwaway PostgreSQL server URL")
        })?;
        let server = ConnInfo::parse(url)?;
        // A scratch server that does not answer (or refuses this role) says nothing about the
        // backup: no restore is tried, and verify judges nothing.
        if let Err(e) = server.connect().await {
            return Err(Error::failed(format!(
                "the scratch server does not take connections: {}",
                e.message()
            ))
            .with_source(crate::source::TargetRefused::new(e)));
        }
        let db = format!("drctl_verify_{:08x}", rand::random::<u32>());
        let target = server.with_database(&db)?;
        let result = restore_and_count(scratch, &target).await;
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
}

async fn restore_and_count(scratch: &dyn Scratch, target: &ConnInfo) -> Result<(f64, String)> {
    let t = Instant::now();
    let opts = RestoreOptions {
        no_owner: true,
        jobs: 1,
        ..RestoreOptions::default()
    };
    scratch.restore(&target.full, opts).await?;
    let secs = t.elapsed().as_secs_f64();
    let client = target.connect().await?;
    let got = row_counts(&client).await?;
    let m = scratch.manifest();
    // A parallel backup records them with its pre-data artifact, a single archive with its one.
    let Some(want) = m.artifacts.iter().find_map(|a| a.facts.get("row_counts")) else {
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
    let asserted = assertions(scratch, &client).await?;
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
async fn assertions(scratch: &dyn Scratch, client: &tokio_postgres::Client) -> Result<String> {
    use tokio_postgres::SimpleQueryMessage;
    let list = scratch.assertions();
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
