//! A parallel backup's post-data, built bucket by bucket (`restore --jobs N`, N > 1, of a
//! backup whose data buckets list their post-data entries, `parallel::POST_DATA_ENTRIES`).
//!
//! One post-data stage after every bucket makes the largest table's indexes wait for the
//! slowest other bucket, while `pg_restore -j` from a file starts a table's indexes as soon
//! as its data is in. So: the post-data archive is spooled (definitions only, a few KB) beside
//! the pre-data; a bucket whose data is in builds its own indexes and primary-key, unique and
//! exclusion constraints at once — on one job while other buckets still load, on all `--jobs`
//! when it is the last; after every bucket, the rest (foreign keys, which need the referenced
//! table's data and key, triggers, and whatever else post-data holds) on all `--jobs`.
//! Entries are matched by the catalog ids that `pg_restore --list` prints and that the backup
//! recorded in the same snapshot, never by name.

use super::parallel::{DATA, POST, POST_DATA_ENTRIES};
use super::section;
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use crate::source::ByteReader;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// A catalog id as the archive's table of contents prints it: `[catalog oid, object oid]`.
type Key = [u32; 2];
/// The catalog id of the special entries (ENCODING, STDSTRINGS, SEARCHPATH).
const SPECIAL: Key = [0, 0];

/// Which post-data entries each data bucket brings, and how far the restore is.
pub struct Plan {
    buckets: BTreeMap<String, BTreeSet<Key>>,
    state: Mutex<State>,
}

struct State {
    /// Data buckets whose data is not in yet.
    loading: BTreeSet<String>,
    post: Option<Arc<Spooled>>,
}

/// The post-data archive, spooled, with its table of contents.
pub struct Spooled {
    pub file: tempfile::NamedTempFile,
    entries: Vec<Entry>,
    /// Entries handed out to be restored.
    taken: Mutex<Vec<bool>>,
}

struct Entry {
    /// The `pg_restore --list` line, as `--use-list` takes it back.
    line: String,
    key: Option<Key>,
}

/// What one `pg_restore --use-list` run restores from the spool.
pub struct Batch {
    pub post: Arc<Spooled>,
    /// The list file's text: one table-of-contents line per entry.
    pub list: String,
    pub jobs: u32,
}

impl Plan {
    /// The plan for these artifacts, or `None` when the post-data is restored in one stage
    /// after every bucket: one job, a single archive, or a backup whose buckets do not list
    /// their entries (made before they did).
    pub fn of(artifacts: &[Artifact], jobs: u32) -> Option<Plan> {
        if jobs <= 1 || !artifacts.iter().any(|a| section(a) == Some(POST)) {
            return None;
        }
        let mut buckets = BTreeMap::new();
        for a in artifacts.iter().filter(|a| section(a) == Some(DATA)) {
            let keys: Vec<Key> =
                serde_json::from_value(a.facts.get(POST_DATA_ENTRIES)?.clone()).ok()?;
            buckets.insert(a.name.clone(), keys.into_iter().collect());
        }
        if buckets.is_empty() {
            return None;
        }
        let state = State {
            loading: buckets.keys().cloned().collect(),
            post: None,
        };
        Some(Plan {
            buckets,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep the spooled post-data for the buckets (a copy read again from another region
    /// replaces the one before).
    pub fn set_post(&self, post: Spooled) {
        self.state().post = Some(Arc::new(post));
    }

    /// Bucket `name`'s data is in: its own entries, on one job while other buckets still
    /// load (they keep the other jobs busy), on all of them when it is the last.
    pub fn data_in(&self, name: &str, jobs: u32) -> Option<Batch> {
        let (post, others_loading) = {
            let mut st = self.state();
            st.loading.remove(name);
            (st.post.clone()?, !st.loading.is_empty())
        };
        let want = self.buckets.get(name)?;
        let list = post.take(|e| e.key.is_some_and(|k| want.contains(&k)))?;
        let jobs = if others_loading { 1 } else { jobs };
        Some(Batch { post, list, jobs })
    }

    /// After every bucket: whatever post-data no bucket restored; `None` when that is only
    /// the special entries (encoding, standard_conforming_strings, search_path), which
    /// pg_restore applies to every run whatever its list says.
    pub fn rest(&self, jobs: u32) -> Option<Batch> {
        let post = self.state().post.clone()?;
        let list = post.take(|e| e.key != Some(SPECIAL))?;
        Some(Batch { post, list, jobs })
    }
}

impl Spooled {
    /// `listing` is `pg_restore --list` of `file`.
    pub fn new(file: tempfile::NamedTempFile, listing: &str) -> Spooled {
        let entries: Vec<Entry> = listing
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .map(|l| Entry {
                line: l.to_string(),
                key: key_of(l),
            })
            .collect();
        let taken = Mutex::new(vec![false; entries.len()]);
        Spooled {
            file,
            entries,
            taken,
        }
    }

    /// Take the entries not taken yet that `want` picks, as a list file's text; `None` when
    /// there are none.
    fn take(&self, want: impl Fn(&Entry) -> bool) -> Option<String> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let mut list = String::new();
        for (e, t) in self.entries.iter().zip(taken.iter_mut()) {
            if !*t && want(e) {
                *t = true;
                list.push_str(&e.line);
                list.push('\n');
            }
        }
        (!list.is_empty()).then_some(list)
    }
}

/// The catalog id of a `pg_restore --list` entry line: `dumpId; tableoid oid desc …`.
fn key_of(line: &str) -> Option<Key> {
    let (_, rest) = line.split_once(';')?;
    let mut it = rest.split_whitespace();
    Some([it.next()?.parse().ok()?, it.next()?.parse().ok()?])
}

/// Spool `reader` whole into a temporary file (pg_restore `--jobs` and `--use-list` need a
/// seekable archive). No fsync: pg_restore reads it back through the page cache at once.
///
/// A read error is the copy's (the caller may try another region); a write error is the
/// spool's own and says so, naming `$TMPDIR`: a full or read-only TMPDIR must not read as a
/// damaged copy, nor as a bare "I/O error".
pub async fn spool(mut reader: ByteReader) -> Result<tempfile::NamedTempFile> {
    use crate::source::to_file::{into_temp_file, CopyFailed};
    let dir = std::env::temp_dir();
    match into_temp_file(&mut reader, &dir).await {
        Ok((spool, _)) => Ok(spool),
        Err(CopyFailed::Reading(e)) => Err(e.into()),
        Err(CopyFailed::Writing(e)) => Err(spool_err(&dir, e)),
    }
}

fn spool_err(at: &std::path::Path, e: std::io::Error) -> Error {
    Error::failed(format!(
        "cannot spool the archive to {} for pg_restore --jobs: {e}",
        at.display()
    ))
    .hint("set TMPDIR to a directory with room for the archive (`drctl history JOB` shows its raw size), or restore without --jobs: a streamed restore spools nothing")
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
;
; Archive created at 2026-12-06 10:22:25 UTC
;     TOC Entries: 9
;
3;  0 0 ENCODING - ENCODING
4;  0 0 STDSTRINGS - STDSTRINGS
3206; 2606 16401 CONSTRAINT public embeddings embeddings_pkey postgres
3203; 2606 16393 CONSTRAINT public messages messages_pkey postgres
3204; 1259 16394 INDEX public messages_session_id_idx postgres
3210; 2606 16420 FK CONSTRAINT public orders orders_customer_id_fkey postgres
3211; 2620 16430 TRIGGER public messages audit postgres
";

    fn artifact(name: &str, facts: serde_json::Value) -> Artifact {
        Artifact {
            name: name.into(),
            path: format!("{name}.pgdump.zst"),
            codec: "zstd".into(),
            raw_size: 1,
            stored_size: 1,
            sha256: String::new(),
            facts,
        }
    }

    fn backup(with_entries: bool) -> Vec<Artifact> {
        let data = |entries: serde_json::Value| {
            let mut f = serde_json::json!({ "section": DATA, "tables": 1 });
            if with_entries {
                f[POST_DATA_ENTRIES] = entries;
            }
            f
        };
        vec![
            artifact("pre", serde_json::json!({ "section": "pre-data" })),
            artifact("data-1", data(serde_json::json!([[2606, 16393], [1259, 16394]]))),
            artifact("data-2", data(serde_json::json!([[2606, 16401]]))),
            artifact("post", serde_json::json!({ "section": POST })),
        ]
    }

    fn spooled() -> Spooled {
        Spooled::new(tempfile::NamedTempFile::new().unwrap(), LISTING)
    }

    /// The object oids of a batch's entries, in order.
    fn oids(b: &Batch) -> Vec<u32> {
        b.list.lines().map(|l| key_of(l).unwrap()[1]).collect()
    }

    #[test]
    fn a_bucket_builds_its_own_keys_and_indexes_and_the_rest_comes_last() {
        let plan = Plan::of(&backup(true), 2).unwrap();
        plan.set_post(spooled());
        // data-1 first, while data-2 still loads: its key and index, on one job.
        let b = plan.data_in("data-1", 2).unwrap();
        assert_eq!(oids(&b), [16393, 16394]);
        assert_eq!(b.jobs, 1);
        // data-2 last: its key, on every job.
        let b = plan.data_in("data-2", 2).unwrap();
        assert_eq!(oids(&b), [16401]);
        assert_eq!(b.jobs, 2);
        // The foreign key and the trigger, once (pg_restore applies the special entries to
        // every run by itself).
        let rest = plan.rest(2).unwrap();
        assert_eq!(oids(&rest), [16420, 16430]);
        assert!(plan.rest(2).is_none(), "nothing is restored twice");
    }

    #[test]
    fn no_run_is_left_for_the_rest_when_the_buckets_took_every_entry() {
        let plan = Plan::of(&backup(true), 2).unwrap();
        plan.set_post(Spooled::new(
            tempfile::NamedTempFile::new().unwrap(),
            "3;  0 0 ENCODING - ENCODING\n3206; 2606 16401 CONSTRAINT public e e_pkey postgres\n",
        ));
        assert!(plan.data_in("data-1", 2).is_none(), "data-1 has no entry here");
        assert_eq!(oids(&plan.data_in("data-2", 2).unwrap()), [16401]);
        assert!(plan.rest(2).is_none());
    }

    #[test]
    fn without_recorded_entries_or_with_one_job_there_is_no_plan() {
        assert!(Plan::of(&backup(false), 2).is_none());
        assert!(Plan::of(&backup(true), 1).is_none());
        assert!(Plan::of(&backup(true)[..1], 2).is_none());
    }

    #[test]
    fn catalog_ids_are_read_from_list_lines_only() {
        assert_eq!(
            key_of("3204; 1259 16394 INDEX public a b postgres"),
            Some([1259, 16394])
        );
        assert_eq!(key_of("3;  0 0 ENCODING - ENCODING"), Some([0, 0]));
        assert_eq!(key_of("; Archive created at 2026"), None);
    }
}
