//! `parallel: N`: one exported snapshot, dumped by N + 2 `pg_dump --snapshot` processes at
//! once — the pre-data section, the table data in N buckets balanced by table size, the
//! post-data section — each its own custom-format artifact through the usual pipeline.
//!
//! Every process imports the same snapshot, so the artifacts together are the database at
//! one instant (`consistent_at`), exactly as one archive would be. Bucket 1 ("the rest")
//! dumps the data section minus the tables of the other buckets (`--exclude-table-data`), so
//! sequences' values, large objects and anything drctl does not list are dumped exactly once;
//! buckets 2..N name their tables (`--table`). Restore (`mod.rs`, `PostgresTarget`): pre-data,
//! then the buckets side by side, then post-data — or, with `--jobs N > 1`, each bucket's own
//! indexes and keys as soon as its data is in (`post_data.rs`, from the entries recorded here).

use super::{ConnInfo, Counts, PostgresSpec};
use crate::error::{Error, Result};
use crate::source::process::Proc;
use crate::source::{ArtifactStream, ByteReader, SnapshotInfo, SourceRun};
use async_trait::async_trait;
use std::process::Stdio;
use std::sync::Arc;
use tokio_postgres::Client;

/// The most processes a job may ask for: each holds a server connection and a pipeline.
pub const MAX_PARALLEL: u32 = 16;

/// The `facts.section` of each artifact of a parallel backup; an archive without one is a
/// whole single-archive dump.
pub const PRE: &str = "pre-data";
pub const DATA: &str = "data";
pub const POST: &str = "post-data";
/// The fact of a data bucket listing its post-data entries (`post_data_entries`).
pub const POST_DATA_ENTRIES: &str = "post_data_entries";

/// A table whose data pg_dump dumps, and its on-disk size (heap and TOAST).
#[derive(Debug, Clone)]
pub struct Table {
    /// As pg_dump's `--table` takes it: quoted, so no character is a wildcard.
    pub pattern: String,
    pub bytes: i64,
    pub oid: u32,
}

/// Ordinary tables outside the system schemas and extensions (whose data pg_dump leaves to
/// the extension), largest first. Run inside the exported snapshot's transaction.
pub async fn tables(client: &Client) -> Result<Vec<Table>> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, pg_table_size(c.oid), c.oid FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                             AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 3 DESC, 1, 2",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let (n, t): (String, String) = (r.get(0), r.get(1));
            Table {
                pattern: format!("\"{}\".\"{}\"", n.replace('"', "\"\""), t.replace('"', "\"\"")),
                bytes: r.get(2),
                oid: r.get(3),
            }
        })
        .collect())
}

/// The post-data entries that belong to each bucket's tables alone — their indexes and their
/// primary-key, unique and exclusion constraints — as the archive's table of contents names
/// them (`catalog oid`, `object oid`), so a restore can build them as soon as that bucket's
/// data is in. Foreign keys (they need another table's data and key), triggers and whatever
/// else the post-data holds are left to the end. Run inside the exported snapshot's transaction.
async fn post_data_entries(
    client: &Client,
    tables: &[Table],
    plan: &[Vec<usize>],
) -> Result<Vec<Vec<[u32; 2]>>> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = client
        .query(
            "SELECT indrelid, 'pg_class'::regclass::oid, indexrelid FROM pg_index \
             WHERE indrelid = ANY($1) \
             UNION ALL SELECT conrelid, 'pg_constraint'::regclass::oid, oid FROM pg_constraint \
             WHERE conrelid = ANY($1) AND contype IN ('p', 'u', 'x') ORDER BY 1, 2, 3",
            &[&oids],
        )
        .await?;
    let mut bucket_of = std::collections::HashMap::new();
    for (k, b) in plan.iter().enumerate() {
        for &i in b {
            bucket_of.insert(tables[i].oid, k);
        }
    }
    let mut out = vec![Vec::new(); plan.len()];
    for r in rows {
        if let Some(&k) = bucket_of.get(&r.get::<_, u32>(0)) {
            out[k].push([r.get(1), r.get(2)]);
        }
    }
    Ok(out)
}

/// The on-disk size of the database's large objects, which pg_dump puts in the data section
/// (bucket 1 dumps them). Run inside the exported snapshot's transaction.
async fn large_object_bytes(client: &Client) -> Result<u64> {
    let row = client
        .query_one("SELECT pg_table_size('pg_catalog.pg_largeobject')", &[])
        .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// Split tables (largest first) into at most `n` buckets of near-equal size: each table goes
/// to the bucket with the fewest bytes so far, so the largest tables sit alone. Bucket 0 is
/// always there (it also carries the data that is not a listed table); empty others are
/// dropped.
pub fn buckets(bytes: &[i64], n: usize) -> Vec<Vec<usize>> {
    let n = n.max(1);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut load = vec![0i64; n];
    let mut order: Vec<usize> = (0..bytes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(bytes[i]));
    for i in order {
        // Ties go to the emptiest-by-count, then the lowest index, so the result is stable.
        let b = (0..n)
            .min_by_key(|&b| (load[b], out[b].len(), b))
            .unwrap_or(0);
        load[b] += bytes[i].max(1);
        out[b].push(i);
    }
    let mut kept = vec![out.remove(0)];
    kept.extend(out.into_iter().filter(|b| !b.is_empty()));
    kept
}

/// What `begin` hands over once the snapshot is exported.
pub struct Start<'a> {
    pub spec: &'a PostgresSpec,
    pub conn: &'a ConnInfo,
    pub pg_dump: &'a str,
    pub snapshot: &'a str,
    pub client: Arc<Client>,
    pub info: SnapshotInfo,
}

/// Start every pg_dump of a parallel backup, and the row counts beside them.
pub async fn begin(s: Start<'_>) -> Result<Box<dyn SourceRun>> {
    let tables = tables(&s.client).await?;
    let sizes: Vec<i64> = tables.iter().map(|t| t.bytes).collect();
    let plan = buckets(&sizes, s.spec.parallel as usize);
    let listed = |b: &Vec<usize>| -> Vec<String> { b.iter().map(|&i| tables[i].pattern.clone()).collect() };
    // Every process first: if one cannot start, the others die with their dropped `Proc`
    // (`kill_on_drop`) and no row count is left running.
    // Each artifact's size estimate sizes its upload parts: the schema sections are small,
    // a bucket is about its tables' on-disk size, the rest also carries the large objects.
    let lo_bytes = large_object_bytes(&s.client).await?;
    let entries = post_data_entries(&s.client, &tables, &plan).await?;
    let bucket_bytes = |k: usize, b: &Vec<usize>| -> u64 {
        let t: i64 = b.iter().map(|&i| tables[i].bytes.max(0)).sum();
        t as u64 + if k == 0 { lo_bytes } else { 0 }
    };
    let section = |name: &str| serde_json::json!({ "section": name });
    let mut procs = vec![(dump(&s, "pre", PRE, &[])?, "pre".into(), section(PRE), 0)];
    let mut entries = entries.into_iter();
    for (k, bucket) in plan.iter().enumerate() {
        let name = format!("data-{}", k + 1);
        let args: Vec<String> = if k == 0 {
            // The rest: everything of the data section but the other buckets' tables.
            plan[1..]
                .iter()
                .flat_map(listed)
                .map(|p| format!("--exclude-table-data={p}"))
                .collect()
        } else {
            listed(bucket)
                .into_iter()
                .map(|p| format!("--table={p}"))
                .collect()
        };
        let bytes = bucket_bytes(k, bucket);
        let facts = serde_json::json!({
            "section": DATA,
            "tables": bucket.len(),
            POST_DATA_ENTRIES: entries.next().unwrap_or_default(),
        });
        procs.push((dump(&s, &name, DATA, &args)?, name, facts, bytes));
    }
    procs.push((dump(&s, "post", POST, &[])?, "post".into(), section(POST), 0));

    // The row counts run in the snapshot beside the dumps and ride with pre-data.
    let mut counts = s.spec.row_counts.then(|| {
        let c = s.client.clone();
        tokio::spawn(async move { super::row_counts(&c).await })
    });
    let counts_abort = counts.as_ref().map(|t| t.abort_handle());
    let group: Vec<ArtifactStream> = procs
        .into_iter()
        .map(|(proc, name, facts, bytes)| stream(proc, &name, facts, bytes, counts.take()))
        .collect();
    tracing::info!(buckets = plan.len(), tables = tables.len(), snapshot = %s.snapshot, "parallel pg_dump started");

    Ok(Box::new(SectionedRun {
        info: s.info,
        client: Some(s.client),
        group: Some(group),
        counts: counts_abort,
    }))
}

/// One `pg_dump --section=… --snapshot=…`, and the reader of its output.
fn dump(s: &Start<'_>, name: &str, section: &str, args: &[String]) -> Result<(Proc, ByteReader)> {
    let mut cmd = s.conn.command(s.pg_dump);
    cmd.args([
        "--format=custom",
        "--compress=0",
        &format!("--section={section}"),
        &format!("--snapshot={}", s.snapshot),
    ])
    .args(args)
    .args(&s.spec.extra_args)
    .stdin(Stdio::null());
    let (out, stdout) = super::pipe_out()?;
    cmd.stdout(out);
    Ok((Proc::spawn(&format!("pg_dump ({name})"), cmd)?, stdout))
}

/// The artifact of one pg_dump with the facts known before it ran, confirmed by its exit
/// status; the pre-data artifact also carries the row counts taken in the snapshot.
fn stream(
    (mut proc, stdout): (Proc, ByteReader),
    name: &str,
    mut facts: serde_json::Value,
    size_hint: u64,
    counts: Option<Counts>,
) -> ArtifactStream {
    let confirm = Box::pin(async move {
        if let Err(e) = proc.wait_success().await {
            return Err(super::dump_failed(e, counts).await);
        }
        if let Some(task) = counts {
            let counts = task
                .await
                .map_err(|e| Error::failed(format!("row count task failed: {e}")))??;
            facts["row_counts"] = serde_json::to_value(counts)?;
        }
        Ok(facts)
    });
    ArtifactStream {
        name: name.to_string(),
        file_name: format!("{name}.pgdump"),
        reader: stdout,
        size_hint: Some(size_hint),
        confirm: Some(confirm),
    }
}

/// A parallel backup in progress: one group of artifacts, then the snapshot's end.
struct SectionedRun {
    info: SnapshotInfo,
    /// Holds the exporting transaction open until every dump is done.
    client: Option<Arc<Client>>,
    group: Option<Vec<ArtifactStream>>,
    counts: Option<tokio::task::AbortHandle>,
}

#[async_trait]
impl SourceRun for SectionedRun {
    fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    async fn next_group(&mut self) -> Result<Vec<ArtifactStream>> {
        if let Some(g) = self.group.take() {
            return Ok(g);
        }
        if let Some(c) = self.client.take() {
            let _ = c.batch_execute("COMMIT").await;
        }
        Ok(Vec::new())
    }

    async fn next_artifact(&mut self) -> Result<Option<ArtifactStream>> {
        Err(Error::failed(
            "a parallel PostgreSQL backup streams its artifacts as one group",
        ))
    }

    async fn finish_artifact(&mut self) -> Result<serde_json::Value> {
        Err(Error::failed(
            "a parallel PostgreSQL backup's artifacts confirm themselves",
        ))
    }

    /// Each pg_dump belongs to its artifact's confirmation, which is dropped (and the process
    /// killed, `kill_on_drop`) when the run fails; what is left is the counts and the
    /// snapshot's connection.
    async fn abort(&mut self) {
        if let Some(c) = self.counts.take() {
            c.abort();
        }
        self.group.take();
        self.client.take();
    }
}

#[cfg(test)]
mod tests {
    use super::buckets;

    #[test]
    fn the_largest_tables_sit_alone_and_the_rest_balance() {
        // 100 alone; 60 + 30 + 10 = 100 beside it.
        let b = buckets(&[100, 60, 30, 10], 2);
        assert_eq!(b, vec![vec![0], vec![1, 2, 3]]);
        // Three buckets: 100 | 60 | 30 + 10.
        let b = buckets(&[10, 100, 30, 60], 3);
        assert_eq!(b, vec![vec![1], vec![3], vec![2, 0]]);
    }

    #[test]
    fn bucket_zero_exists_even_without_tables_and_empty_others_go() {
        assert_eq!(buckets(&[], 4), vec![Vec::<usize>::new()]);
        assert_eq!(buckets(&[5], 4), vec![vec![0]]);
        // Empty tables still spread instead of piling on one bucket.
        assert_eq!(buckets(&[0, 0], 2), vec![vec![0], vec![1]]);
    }
}
