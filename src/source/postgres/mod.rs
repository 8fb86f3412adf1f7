//! PostgreSQL: `pg_dump -Fc -Z0` of one exported snapshot, streamed; `pg_restore` back.
//!
//! Consistency: we open a REPEATABLE READ transaction, export its snapshot and hand it to
//! `pg_dump --snapshot`, so the dump, the row counts recorded as facts, and `consistent_at`
//! all describe the same instant. `consistent_at` is the `statement_timestamp()` of the
//! statement that took the snapshot: every transaction committed before it is in the dump,
//! so RPO measured from it is never understated.

use super::process::{major_version, Proc};
use super::{
    ArtifactStream, BackupSource, ByteReader, RestoreOptions, RestoreTarget, SnapshotInfo,
    SourceRun, Stage, TargetChanged,
};
mod kind;
pub mod parallel;
mod post_data;
pub use kind::PostgresSpec;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use tokio::process::Command;

use tokio_postgres::{Client, NoTls};

/// Check a source URL at validation time (no I/O).
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(url)
        .map_err(|e| format!("not a valid URL ({e}): use postgres://user@host:5432/dbname"))?;
    if u.scheme() != "postgres" && u.scheme() != "postgresql" {
        return Err(format!(
            "scheme {:?} is not postgres:// or postgresql://",
            u.scheme()
        ));
    }
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    Ok(())
}

/// A connection URL split into what may go on a command line and the password, which goes
/// to child processes through PGPASSWORD only.
pub struct ConnInfo {
    pub full: String,
    pub without_password: String,
    pub password: Option<String>,
    pub redacted: String,
}

impl ConnInfo {
    pub fn parse(url: &str) -> Result<ConnInfo> {
        let mut u = url::Url::parse(url).map_err(|e| {
            Error::usage(format!("invalid PostgreSQL URL: {e}"))
                .hint("use postgres://user@host:5432/dbname")
        })?;
        let mut password = u.password().map(percent_decode);
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, p)) = pairs.iter().find(|(k, _)| k == "password") {
            password = Some(p.clone());
        }
        if let Some(p) = &password {
            crate::redact::register(p);
        }
        let _ = u.set_password(None);
        let kept: Vec<_> = pairs.iter().filter(|(k, _)| k != "password").collect();
        if kept.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut()
                .clear()
                .extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let without_password = u.to_string();
        let redacted = if password.is_some() {
            let mut r = u.clone();
            let _ = r.set_password(Some("***"));
            r.to_string()
        } else {
            without_password.clone()
        };
        Ok(ConnInfo {
            full: url.to_string(),
            without_password,
            password,
            redacted,
        })
    }

    /// The same server, another database (e.g. `postgres` to CREATE DATABASE).
    pub(crate) fn with_database(&self, db: &str) -> Result<ConnInfo> {
        let mut u =
            url::Url::parse(&self.full).map_err(|e| Error::usage(format!("invalid URL: {e}")))?;
        u.set_path(&format!("/{db}"));
        ConnInfo::parse(u.as_str())
    }

    fn database(&self) -> String {
        url::Url::parse(&self.full)
            .ok()
            .map(|u| percent_decode(u.path().trim_start_matches('/')))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "postgres".to_string())
    }

    pub(crate) async fn connect(&self) -> Result<Client> {
        let (client, conn) = tokio_postgres::connect(&self.full, NoTls)
            .await
            .map_err(|e| Error::from(e).context(format!("cannot connect to {}", self.redacted)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "postgres connection closed");
            }
        });
        Ok(client)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = pg_tool(program);
        cmd.arg(format!("--dbname={}", self.without_password))
            .arg("--no-password");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }
}

use crate::source::percent_decode;

pub struct PostgresSource {
    spec: PostgresSpec,
}

impl PostgresSource {
    pub fn new(spec: PostgresSpec) -> Self {
        PostgresSource { spec }
    }
}

async fn tool_major(program: &str) -> Result<u32> {
    let out = pg_tool(program).arg("--version").output().await.map_err(|e| {
        Error::failed(format!("cannot run {program}: {e}"))
            .hint("install the PostgreSQL client tools (Debian: postgresql-client) or set the tool's path in the job's source")
    })?;
    let line = String::from_utf8_lossy(&out.stdout);
    major_version(&line).ok_or_else(|| {
        Error::failed(format!(
            "cannot read the version of {program} from {:?}",
            line.trim()
        ))
    })
}

#[async_trait]
impl BackupSource for PostgresSource {
    async fn begin(&self) -> Result<Box<dyn SourceRun>> {
        let conn = ConnInfo::parse(self.spec.url.expose())?;
        let pg_dump = self
            .spec
            .pg_dump
            .clone()
            .unwrap_or_else(|| "pg_dump".into());
        let dump_major = tool_major(&pg_dump).await?;
        let client = Arc::new(conn.connect().await?);

        let row = client.query_one("SELECT current_setting('server_version_num')::int, current_setting('server_version')", &[]).await?;
        let server_num: i32 = row.get(0);
        let server_version: String = row.get(1);
        let server_major = (server_num / 10000) as u32;
        if dump_major < server_major {
            return Err(Error::failed(format!(
                "{pg_dump} is version {dump_major}, older than the PostgreSQL {server_major} server at {}: pg_dump cannot dump a newer server",
                conn.redacted
            ))
            .hint(format!("install postgresql-client-{server_major} and set `pg_dump:` in the job's source to its pg_dump")));
        }

        if !filters_objects(&self.spec.extra_args) {
            readable(&client, &conn).await?;
        }
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let row = client
            .query_one("SELECT pg_export_snapshot(), statement_timestamp()", &[])
            .await?;
        let snapshot: String = row.get(0);
        let consistent_at: DateTime<Utc> = row.get(1);
        let info = SnapshotInfo {
            server_version,
            consistent_at,
        };
        if self.spec.parallel > 1 {
            return parallel::begin(parallel::Start {
                spec: &self.spec,
                conn: &conn,
                pg_dump: &pg_dump,
                snapshot: &snapshot,
                client,
                info,
            })
            .await;
        }

        let mut cmd = conn.command(&pg_dump);
        cmd.args([
            "--format=custom",
            "--compress=0",
            &format!("--snapshot={snapshot}"),
        ])
        .args(&self.spec.extra_args)
        .stdin(Stdio::null());
        let (out, stdout) = pipe_out()?;
        cmd.stdout(out);
        let proc = Proc::spawn("pg_dump", cmd)?;
        tracing::info!(server = %conn.redacted, snapshot = %snapshot, %consistent_at, "pg_dump started");

        // Row counts run in the exported snapshot while pg_dump streams.
        let counts = self.spec.row_counts.then(|| {
            let c = client.clone();
            tokio::spawn(async move { row_counts(&c).await })
        });

        Ok(Box::new(PostgresRun {
            info,
            client: Some(client),
            proc,
            stdout: Some(stdout),
            counts,
        }))
    }
}

struct PostgresRun {
    info: SnapshotInfo,
    /// Holds the exporting transaction open until the dump is done.
    client: Option<Arc<Client>>,
    proc: Proc,
    /// pg_dump's output, until the pipeline takes it.
    stdout: Option<ByteReader>,
    counts: Option<Counts>,
}

#[async_trait]
impl SourceRun for PostgresRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        // One archive: the first call hands out pg_dump's stdout, the next finds none.
        let Some(stdout) = self.stdout.take() else {
            return Ok(None);
        };
        Ok(Some(ArtifactStream {
            name: "db".into(),
            file_name: "db.pgdump".into(),
            reader: stdout,
            size_hint: None,
            confirm: None,
        }))
    }

    async fn finish_artifact(&mut self) -> Result<serde_json::Value> {
        if let Err(e) = self.proc.wait_success().await {
            return Err(dump_failed(e, self.counts.take()).await);
        }
        let mut facts = serde_json::json!({});
        if let Some(task) = self.counts.take() {
            let counts = task
                .await
                .map_err(|e| Error::failed(format!("row count task failed: {e}")))??;
            facts["tables"] = counts.len().into();
            facts["row_counts"] = serde_json::to_value(counts)?;
        }
        if let Some(c) = self.client.take() {
            let _ = c.batch_execute("COMMIT").await;
        }
        Ok(facts)
    }

    async fn abort(&mut self) {
        self.proc.kill().await;
        if let Some(t) = self.counts.take() {
            t.abort();
        }
        self.client.take();
    }
}

/// pg_dump's stdout, read in batches (see `source::pipe`).
fn pipe_out() -> Result<(Stdio, ByteReader)> {
    super::pipe::from_child()
        .map_err(|e| Error::failed(format!("cannot create a pipe for pg_dump: {e}")))
}

/// pg_restore's stdin, fed in batches (see `source::pipe`).
fn pipe_in() -> Result<(Stdio, super::pipe::Sink)> {
    super::pipe::to_child()
        .map_err(|e| Error::failed(format!("cannot create a pipe for pg_restore: {e}")))
}

type Counts = tokio::task::JoinHandle<Result<BTreeMap<String, i64>>>;

/// The error of a failed pg_dump. A row count that failed first aborted the exporting
/// transaction, and pg_dump's error ("could not import the requested snapshot") is only its
/// consequence: then the row count's error is the cause.
async fn dump_failed(e: Error, counts: Option<Counts>) -> Error {
    if let Some(task) = counts {
        if let Ok(Err(first)) = task.await {
            return first.context(format!(
                "the snapshot's transaction failed first, then {}",
                e.message()
            ));
        }
    }
    e.hint("the backup failed and was not committed; fix the cause above and run it again")
}

/// A PostgreSQL client tool with libpq's own variables (PGSSLMODE, PGPASSFILE, …) and the
/// base environment, nothing else of drctl's.
fn pg_tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    crate::source::process::confine_env(&mut cmd, &["PG"]);
    cmd
}

/// `pg_dump` arguments that choose which objects are dumped: then drctl cannot know which
/// tables must be readable, and leaves the check to pg_dump.
fn filters_objects(args: &[String]) -> bool {
    const LONG: &[&str] = &[
        "--table",
        "--exclude-table",
        "--schema",
        "--exclude-schema",
        "--exclude-table-data",
    ];
    const SHORT: &[&str] = &["-t", "-T", "-n", "-N"]; // also with the value attached: -tfoo
    args.iter().any(|a| match a.strip_prefix("--") {
        Some(_) => LONG
            .iter()
            .any(|f| a == f || a.starts_with(&format!("{f}="))),
        None => SHORT.iter().any(|f| a.starts_with(f)),
    })
}

/// Every table and sequence pg_dump will read must be readable by the backup role. Checked
/// before the snapshot: otherwise the first failure (a row count, or pg_dump's own read)
/// aborts the exporting transaction, and what the user sees is pg_dump's "could not import
/// the requested snapshot" while the real cause sits in the server log.
async fn readable(client: &Client, conn: &ConnInfo) -> Result<()> {
    let rows = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), current_user::text, n.nspname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
             AND (NOT has_schema_privilege(n.oid, 'USAGE') OR NOT CASE WHEN c.relkind = 'S' \
                  THEN has_sequence_privilege(c.oid, 'SELECT') ELSE has_table_privilege(c.oid, 'SELECT') END) \
             ORDER BY 1",
            &[],
        )
        .await?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let role: String = first.get(1);
    let names: Vec<String> = rows.iter().take(10).map(|r| r.get(0)).collect();
    let mut schemas: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    schemas.sort();
    schemas.dedup();
    let more = if rows.len() > names.len() {
        format!(" and {} more", rows.len() - names.len())
    } else {
        String::new()
    };
    let grants: Vec<String> = schemas
        .iter()
        .map(|s| format!("GRANT USAGE ON SCHEMA {s} TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {role}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {role};"))
        .collect();
    Err(Error::failed(format!(
        "role {role} may connect to {} but may not read {} object(s) pg_dump must dump: {}{more} (permission denied)",
        conn.redacted,
        rows.len(),
        names.join(", ")
    ))
    .hint(format!(
        "grant read access, e.g. {} — or, on PostgreSQL 14+, GRANT pg_read_all_data TO {role}; nothing was dumped",
        grants.join(" ")
    )))
}

/// Exact row counts of every ordinary table, in the current transaction's snapshot.
pub(crate) async fn row_counts(client: &Client) -> Result<BTreeMap<String, i64>> {
    let tables = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1",
            &[],
        )
        .await?;
    let mut out = BTreeMap::new();
    for t in tables {
        let name: String = t.get(0);
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await?
            .get(0);
        out.insert(name, n);
    }
    Ok(out)
}

/// `verify --level structure`: read the whole custom-format archive through
/// `pg_restore --list` and return how many `TABLE DATA` entries its table of contents holds.
pub async fn check_archive(mut reader: ByteReader, pg_restore: &str) -> Result<usize> {
    let mut cmd = pg_tool(pg_restore);
    cmd.arg("--list")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut proc = Proc::spawn("pg_restore", cmd)?;
    let mut stdin = proc
        .child
        .stdin
        .take()
        .ok_or_else(|| Error::failed("pg_restore has no stdin"))?;
    let mut stdout = proc
        .child
        .stdout
        .take()
        .ok_or_else(|| Error::failed("pg_restore has no stdout"))?;
    let listing = tokio::spawn(async move {
        let mut s = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut s)
            .await
            .map(|_| s)
    });
    // pg_restore stops reading after the TOC; the rest is still read (and decompressed, and
    // hashed) to the end so a damaged tail is found too.
    let mut buf = vec![0u8; 256 * 1024];
    let mut open = true;
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut reader, &mut buf)
            .await
            .map_err(|e| Error::failed(format!("reading the archive: {e}")))?;
        if n == 0 {
            break;
        }
        if open
            && tokio::io::AsyncWriteExt::write_all(&mut stdin, &buf[..n])
                .await
                .is_err()
        {
            open = false;
        }
    }
    drop(stdin);
    proc.wait_success().await?;
    let listing = listing
        .await
        .map_err(|e| Error::failed(format!("pg_restore --list: {e}")))?
        .map_err(|e| Error::failed(format!("pg_restore --list: {e}")))?;
    Ok(listing
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains(" TABLE DATA "))
        .count())
}

/// `drctl restore --to postgres://...`: pg_restore into a database, created if missing.
pub struct PostgresTarget {
    conn: ConnInfo,
    pg_restore: String,
    opts: RestoreOptions,
    /// Set by `prepare` when each bucket builds its own post-data (`post_data::Plan`).
    plan: std::sync::OnceLock<post_data::Plan>,
}

impl PostgresTarget {
    pub fn new(spec: &PostgresSpec, to: &str, opts: RestoreOptions) -> Result<Self> {
        check_url(to).map_err(|m| Error::usage(format!("--to {to:?}: {m}")))?;
        Ok(PostgresTarget {
            conn: ConnInfo::parse(to)?,
            pg_restore: spec
                .pg_restore
                .clone()
                .unwrap_or_else(|| "pg_restore".into()),
            opts,
            plan: std::sync::OnceLock::new(),
        })
    }

    async fn connect_or_create(&self) -> Result<Client> {
        match tokio_postgres::connect(&self.conn.full, NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                Ok(client)
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
                let db = self.conn.database();
                let admin = self.conn.with_database("postgres")?.connect().await?;
                let quoted: String = admin
                    .query_one("SELECT quote_ident($1)", &[&db])
                    .await?
                    .get(0);
                admin
                    .batch_execute(&format!("CREATE DATABASE {quoted}"))
                    .await?;
                tracing::info!(database = %db, "created target database");
                self.conn.connect().await
            }
            Err(e) => {
                Err(Error::from(e).context(format!("cannot connect to {}", self.conn.redacted)))
            }
        }
    }
}

#[async_trait]
impl RestoreTarget for PostgresTarget {
    fn describe(&self) -> String {
        self.conn.redacted.clone()
    }

    async fn prepare(&self, artifacts: &[Artifact]) -> Result<()> {
        if self.opts.clean && artifacts.iter().any(|a| section(a).is_some()) {
            return Err(Error::usage(format!(
                "--clean cannot replace objects from a parallel backup: its sections are restored one after the other, and the tables in {} cannot be dropped before their constraints",
                self.conn.redacted
            ))
            .hint("restore into a new database (drctl creates it), or drop the target database first and restore without --clean"));
        }
        let client = self.connect_or_create().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r','p','v','m','S','f') \
                 AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'",
                &[],
            )
            .await?
            .get(0);
        if n > 0 && !self.opts.clean {
            return Err(Error::usage(format!(
                "target {} is not empty ({n} tables, views or sequences): refusing to restore over it",
                self.conn.redacted
            ))
            .hint("restore into a new database, or pass --clean (or --yes) to drop and replace the objects in the backup"));
        }
        if let Some(plan) = post_data::Plan::of(artifacts, self.opts.jobs) {
            let _ = self.plan.set(plan);
        }
        Ok(())
    }

    /// A parallel backup: pre-data alone, the data buckets side by side (`--jobs` at once),
    /// post-data alone (its index builds in parallel, `restore_spooled`). With the per-bucket
    /// plan `prepare` made (`post_data`), the post-data is spooled beside the pre-data instead,
    /// each bucket builds its own indexes once its data is in, and `finish` the rest; `restore`
    /// reads the same plan, so the stages and what each artifact does always agree. A single
    /// archive: one.
    fn stages(&self, artifacts: &[Artifact]) -> Vec<Stage> {
        if artifacts.iter().all(|a| section(a).is_none()) {
            return Stage::one_at_a_time(artifacts.len());
        }
        let of = |want: &str| -> Vec<usize> {
            (0..artifacts.len())
                .filter(|&i| section(&artifacts[i]) == Some(want))
                .collect()
        };
        if self.plan.get().is_some() {
            let mut first = of(parallel::PRE);
            first.extend(of(parallel::POST));
            return vec![
                Stage {
                    at_once: first.len(),
                    artifacts: first,
                },
                Stage {
                    artifacts: of(parallel::DATA),
                    at_once: self.opts.jobs as usize,
                },
            ];
        }
        vec![
            Stage {
                artifacts: of(parallel::PRE),
                at_once: 1,
            },
            Stage {
                artifacts: of(parallel::DATA),
                at_once: self.opts.jobs.max(1) as usize,
            },
            Stage {
                artifacts: of(parallel::POST),
                at_once: 1,
            },
        ]
    }

    /// Every artifact goes in one transaction (`restore_streamed`) or is spooled whole before
    /// pg_restore starts (`restore_spooled`): a failed stream leaves nothing of it.
    fn atomic(&self) -> bool {
        true
    }

    /// With a per-bucket plan: the post-data no bucket restored (foreign keys, triggers, …).
    async fn finish(&self) -> Result<()> {
        let Some(batch) = self.plan.get().and_then(|p| p.rest(self.opts.jobs)) else {
            return Ok(());
        };
        self.restore_batch(batch)
            .await
            .map_err(|e| e.context("restoring the rest of post-data (foreign keys, triggers, …)"))
    }

    async fn restore(&self, artifact: &Artifact, reader: ByteReader) -> Result<()> {
        if let Some(plan) = self.plan.get() {
            match section(artifact) {
                Some(parallel::POST) => return self.spool_post(plan, reader).await,
                Some(parallel::DATA) => {
                    self.restore_streamed(reader).await?;
                    let Some(batch) = plan.data_in(&artifact.name, self.opts.jobs) else {
                        return Ok(());
                    };
                    return self.restore_batch(batch).await.map_err(|e| {
                        e.context(format!("building the indexes and keys of {}", artifact.name))
                    });
                }
                _ => {}
            }
        }
        match section(artifact) {
            None if self.opts.jobs > 1 => self.restore_spooled(reader).await,
            Some(parallel::POST) if self.opts.jobs > 1 => self.restore_spooled(reader).await,
            _ => self.restore_streamed(reader).await,
        }
    }
}

/// The section of a parallel backup's artifact; `None` for a whole archive.
fn section(a: &Artifact) -> Option<&str> {
    a.facts.get("section").and_then(|s| s.as_str())
}

impl PostgresTarget {
    fn pg_restore_cmd(&self) -> Command {
        let mut cmd = self.conn.command(&self.pg_restore);
        cmd.arg("--exit-on-error").stdout(Stdio::null());
        if self.opts.clean {
            cmd.args(["--clean", "--if-exists"]);
        }
        if self.opts.no_owner {
            cmd.args(["--no-owner", "--no-privileges"]);
        }
        cmd
    }

    /// `pg_restore --jobs N` needs a seekable file: the archive is spooled to `$TMPDIR` first.
    /// Used for a whole archive (`restore --jobs N` of a single-archive backup, as before
    /// parallel backups existed) and for a parallel backup's post-data, which holds only
    /// definitions (its index builds are what run in parallel), never table data.
    async fn restore_spooled(&self, reader: ByteReader) -> Result<()> {
        let spool = post_data::spool(reader).await?;
        let mut cmd = self.pg_restore_cmd();
        cmd.arg(format!("--jobs={}", self.opts.jobs))
            .arg(spool.path())
            .stdin(Stdio::null());
        let mut proc = Proc::spawn("pg_restore", cmd)?;
        proc.wait_success().await
    }

    /// Spool a parallel backup's post-data and read its table of contents, for the buckets to
    /// restore their part of it (`post_data::Plan`).
    async fn spool_post(&self, plan: &post_data::Plan, reader: ByteReader) -> Result<()> {
        let file = post_data::spool(reader).await?;
        let mut cmd = pg_tool(&self.pg_restore);
        cmd.arg("--list")
            .arg(file.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let listing = Proc::spawn("pg_restore --list", cmd)?.stdout_text().await?;
        plan.set_post(post_data::Spooled::new(file, &listing));
        Ok(())
    }

    /// Restore the entries of `batch` from the spooled post-data (`pg_restore --use-list`).
    async fn restore_batch(&self, batch: post_data::Batch) -> Result<()> {
        let list = tempfile::NamedTempFile::new()
            .map_err(|e| Error::failed(format!("cannot create a list file: {e}")))?;
        tokio::fs::write(list.path(), &batch.list).await?;
        let mut cmd = self.pg_restore_cmd();
        cmd.arg(format!("--jobs={}", batch.jobs))
            .arg(format!("--use-list={}", list.path().display()))
            .arg(batch.post.file.path())
            .stdin(Stdio::null());
        Proc::spawn("pg_restore", cmd)?.wait_success().await
    }

    /// Stream into pg_restore's stdin, in one transaction, so a failed restore of this
    /// archive leaves nothing of it behind.
    async fn restore_streamed(&self, mut reader: ByteReader) -> Result<()> {
        let mut cmd = self.pg_restore_cmd();
        let (input, stdin) = pipe_in()?;
        cmd.arg("--single-transaction").stdin(input);
        let mut proc = Proc::spawn("pg_restore", cmd)?;
        let copied = stdin.feed(&mut reader).await;
        let status = proc.wait_success().await;
        match (copied, status) {
            (Ok(_), Ok(())) => Ok(()),
            (Ok(_), Err(e)) => Err(e),
            // pg_restore stopped reading because it failed: its error is the cause.
            (Err(w), Err(e)) if w.kind() == std::io::ErrorKind::BrokenPipe => Err(e),
            // The stream failed and pg_restore, its input cut short, rolled back.
            (Err(r), Err(_)) => Err(Error::failed(format!(
                "streaming into pg_restore failed: {r}"
            ))),
            (Err(r), Ok(())) => Err(Error::failed(format!(
                "pg_restore committed before drctl had streamed the whole copy, then the stream failed: {r}"
            ))
            .hint("the target holds data from a copy that was not verified: drop the database and restore again")
            .with_source(TargetChanged)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{filters_objects, ConnInfo};

    #[test]
    fn object_filters_are_recognised_in_every_spelling() {
        let f = |a: &[&str]| filters_objects(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(
            f(&["--table=orders"]) && f(&["--schema", "app"]) && f(&["-tfoo"]) && f(&["-N", "x"])
        );
        assert!(!f(&["--no-owner", "--lock-wait-timeout=10s", "-Z0"]));
    }

    #[test]
    fn passwords_are_percent_decoded_not_form_decoded() {
        let c = ConnInfo::parse("postgres://backup:a+b&c%2Bd%40@db:5432/app").unwrap();
        assert_eq!(c.password.as_deref(), Some("a+b&c+d@"));
        assert!(!c.redacted.contains("a+b"), "{}", c.redacted);
    }
}
