//! The behaviour every source kind owes its users, as one suite that each kind runs
//! through a `Fixture` (the way OpenDAL runs one suite against every service):
//! - a backup restores from each of the two regions to what the source held;
//! - with the first region's copy corrupted, a restore falls back to the other region;
//! - `verify --level restore` passes and leaves no scratch target behind;
//! - every artifact truncated, with checksums and sizes rewritten to match in both regions:
//!   every checksum passes and `verify --level structure` fails;
//! - a run interrupted (SIGTERM) while its source streams or stalls exits 130 within
//!   Kubernetes' 30 s termination grace and leaves nothing in either region: no object, no
//!   manifest, no unfinished multipart upload.
//!
//! A new kind adds a fixture (a source, a stalling source, a fresh target, a digest of each)
//! and one `#[test]`.

use crate::common::*;

trait Fixture {
    /// The job's `source:` as a flow map.
    fn source(&self) -> String;
    /// More job fields (e.g. the `verify` block), one per line.
    fn job_fields(&self) -> Vec<String>;
    /// A fresh, empty target to restore into (a `--to` value).
    fn fresh_target(&self, tag: &str) -> String;
    /// What the source holds, in a form compared with `digest(target)`.
    fn digest_source(&self) -> String;
    fn digest(&self, to: &str) -> String;
    /// A source whose stream starts and then stalls (flow map), for the interrupted run.
    fn stalling_source(&self, dir: &std::path::Path) -> String;
    /// Whether the run against `stalling_source` is in flight, `since` it started.
    fn in_flight(&self, w: &World, since: std::time::Duration) -> bool;
    /// Scratch targets `verify --level restore` would leave if it did not clean up; `None`
    /// when the kind's scratch is not visible from outside (its own test checks it).
    fn scratch_left(&self) -> Option<String>;
}

fn suite(name: &str, f: &dyn Fixture) {
    let w = World::new(name);
    let fields = f.job_fields();
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    w.write_config(&w.regions().job("sut", &f.source(), &refs).text());
    let want = f.digest_source();
    let id = w.backup_ok_job("sut")["id"].as_str().unwrap().to_string();

    // Round trip through each region.
    for region in ["local", "garage"] {
        let to = f.fresh_target(region);
        let r = w.restore_job_ok("sut", region, &to, &[]);
        assert_eq!(r["region"], region, "{r}");
        assert_eq!(f.digest(&to), want, "restored from {region}");
    }

    // verify --level restore passes and leaves nothing behind.
    let o = w.drctl(&["-o", "json", "verify", "sut", "--level", "restore"]);
    assert!(o.status.success(), "{}", stderr(&o));
    if let Some(left) = f.scratch_left() {
        assert_eq!(left.trim(), "", "scratch left behind");
    }

    // Fallback: the first region's copy corrupted (size unchanged), the other one used.
    let dir = w.fs_root.join(format!("backups/sut/{id}"));
    let mpath = format!("backups/sut/{id}/manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    let good: Vec<(String, Vec<u8>)> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let path = a["path"].as_str().unwrap().to_string();
            (path.clone(), std::fs::read(dir.join(&path)).unwrap())
        })
        .collect();
    for file in files_under(&dir)
        .iter()
        .filter(|p| !p.ends_with("manifest.json"))
    {
        let mut bytes = std::fs::read(file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
        std::fs::write(file, bytes).unwrap();
    }
    let to = f.fresh_target("fallback");
    let r = w.restore_job_ok("sut", "local", &to, &[]);
    assert_eq!(r["region"], "garage", "fell back to the intact copy: {r}");
    assert_eq!(f.digest(&to), want, "restored after the fallback");

    // Truncated everywhere, the manifest rewritten to match: checksums pass, structure fails.
    use sha2::Digest;
    let mut m = manifest.clone();
    for (i, (path, bytes)) in good.iter().enumerate() {
        let cut = &bytes[..bytes.len() * 2 / 3];
        m["artifacts"][i]["sha256"] = hex::encode(sha2::Sha256::digest(cut)).into();
        m["artifacts"][i]["stored_size"] = cut.len().into();
        w.put_both(&format!("backups/sut/{id}/{path}"), cut);
    }
    w.put_both(&mpath, m.to_string().as_bytes());
    let o = w.drctl(&["-o", "json", "verify", "sut", "--level", "structure"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for c in r["regions"].as_array().unwrap() {
        assert_eq!(c["copy"], "ok", "the rewritten checksums match: {r:#}");
    }
    assert_eq!(r["structure"]["ok"], false, "{r:#}");

    interrupted(name, f);
}

/// SIGTERM while the source streams: exit 130, nothing left in either region.
fn interrupted(name: &str, f: &dyn Fixture) {
    use std::time::{Duration, Instant};
    let w = World::new(&format!("{name}-killed"));
    let source = f.stalling_source(&w.dir);
    w.write_config(&w.regions().job("sut", &source, &[]).text());
    let child = w
        .cmd(&["backup", "run", "sut"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !f.in_flight(&w, start.elapsed()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run never got under way"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let termed = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    // Kubernetes kills a pod 30 s after SIGTERM by default: the cleanup must be done by then,
    // even when the source hangs.
    assert!(
        termed.elapsed() < Duration::from_secs(30),
        "exited {:?} after SIGTERM",
        termed.elapsed()
    );
    w.assert_nothing_left();
}

struct Postgres {
    pg: &'static Pg,
    db: String,
}

impl Fixture for Postgres {
    fn source(&self) -> String {
        format!("{{ kind: postgres, url: \"{}\" }}", self.pg.url(&self.db))
    }
    fn job_fields(&self) -> Vec<String> {
        vec![format!(
            "verify: {{ level: restore, scratch: \"{}\" }}",
            self.pg.url("postgres")
        )]
    }
    fn fresh_target(&self, tag: &str) -> String {
        self.pg.url(&db_name(&format!("bh_{tag}")))
    }
    fn digest_source(&self) -> String {
        format!("{:?}", table_digests(self.pg, &self.db))
    }
    fn digest(&self, to: &str) -> String {
        let db = to.rsplit('/').next().unwrap();
        format!("{:?}", table_digests(self.pg, db))
    }
    fn stalling_source(&self, dir: &std::path::Path) -> String {
        // 20 MB out (a multipart upload under way), then the "dump" hangs, stdout open.
        let fake = fake_pg_dump(dir, "head -c 20000000 /dev/urandom\nsleep 120");
        format!(
            "{{ kind: postgres, url: \"{}\", pg_dump: \"{}\" }}",
            self.pg.url(&self.db),
            fake.display()
        )
    }
    fn in_flight(&self, w: &World, _: std::time::Duration) -> bool {
        !w.s3_uploads().is_empty()
    }
    fn scratch_left(&self) -> Option<String> {
        let q = "SELECT datname FROM pg_database WHERE datname LIKE 'drctl_verify_%'";
        Some(self.pg.psql("postgres", q))
    }
}

#[test]
fn postgres_behaves() {
    let pg = pg();
    let db = db_name("bh_src");
    seed(pg, &db);
    suite("bh-postgres", &Postgres { pg, db });
}

struct RedisFixture {
    dir: std::path::PathBuf,
    source: Redis,
    targets: std::sync::Mutex<Vec<Redis>>,
}

impl Fixture for RedisFixture {
    fn source(&self) -> String {
        format!("{{ kind: redis, url: \"{}\" }}", self.source.url())
    }
    fn job_fields(&self) -> Vec<String> {
        vec!["verify: { level: restore }".into()]
    }
    fn fresh_target(&self, tag: &str) -> String {
        let r = Redis::start(&self.dir.join(tag), &[]);
        let url = r.url();
        self.targets.lock().unwrap().push(r);
        url
    }
    fn digest_source(&self) -> String {
        digest(&self.source)
    }
    fn digest(&self, to: &str) -> String {
        let targets = self.targets.lock().unwrap();
        let r = targets
            .iter()
            .find(|r| r.url() == to)
            .expect("a target we started");
        digest(r)
    }
    fn stalling_source(&self, dir: &std::path::Path) -> String {
        // The server waits 6 s before it sends its snapshot.
        let r = Redis::start(&dir.join("slow"), &["--repl-diskless-sync-delay", "6"]);
        assert!(r.cli(&["DEBUG", "POPULATE", "2000"]).contains("OK"));
        let source = format!("{{ kind: redis, url: \"{}\" }}", r.url());
        self.targets.lock().unwrap().push(r);
        source
    }
    fn in_flight(&self, _: &World, since: std::time::Duration) -> bool {
        since > std::time::Duration::from_secs(2)
    }
    fn scratch_left(&self) -> Option<String> {
        None
    }
}

/// Every db's `DEBUG DIGEST` and key count: types, values and expiries alike.
fn digest(r: &Redis) -> String {
    (0..2)
        .map(|db| {
            let n = db.to_string();
            let d = r.cli(&["-n", &n, "DEBUG", "DIGEST"]);
            let k = r.cli(&["-n", &n, "DBSIZE"]);
            format!("db{db}: {} {}", d.trim(), k.trim())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn redis_behaves() {
    let dir = tempdir("bh-redis-");
    let source = Redis::start(&dir.join("src"), &[]);
    let mut cmds = String::new();
    for i in 0..500 {
        cmds.push_str(&format!(
            "SET k{i} v{i}\nHSET h{i} f {i}\nRPUSH l{i} a b c\n"
        ));
    }
    source.feed(0, &cmds);
    source.feed(1, "SET other 1\nSADD s a b c\n");
    let f = RedisFixture {
        dir,
        source,
        targets: std::sync::Mutex::new(Vec::new()),
    };
    suite("bh-redis", &f);
}

/// A source behind a proxy that stalls once it has answered `bytes`: the export starts,
/// then the server hangs with every connection open.
fn stalling(upstream_port: u16, bytes: usize) -> crate::proxy::Proxy {
    stalling_at(&format!("127.0.0.1:{upstream_port}"), bytes)
}

fn stalling_at(upstream: &str, bytes: usize) -> crate::proxy::Proxy {
    let p = crate::proxy::Proxy::start(upstream);
    p.stall_after_answering(bytes);
    p
}

struct ChromaFixture {
    dir: std::path::PathBuf,
    source: Chroma,
    targets: std::sync::Mutex<Vec<Chroma>>,
    proxies: std::sync::Mutex<Vec<crate::proxy::Proxy>>,
}

impl Fixture for ChromaFixture {
    fn source(&self) -> String {
        format!(
            "{{ kind: chroma, url: \"{}\", page_size: 200 }}",
            self.source.url()
        )
    }
    fn job_fields(&self) -> Vec<String> {
        Vec::new()
    }
    fn fresh_target(&self, tag: &str) -> String {
        let c = Chroma::start(&self.dir.join(tag));
        let url = c.url();
        self.targets.lock().unwrap().push(c);
        url
    }
    fn digest_source(&self) -> String {
        self.source.tool("dump")
    }
    fn digest(&self, to: &str) -> String {
        let targets = self.targets.lock().unwrap();
        let c = targets.iter().find(|c| c.url() == to).unwrap();
        c.tool("dump")
    }
    fn stalling_source(&self, _: &std::path::Path) -> String {
        let p = stalling(self.source.port, 20_000);
        let source = format!("{{ kind: chroma, url: \"{}\", page_size: 200 }}", p.url());
        self.proxies.lock().unwrap().push(p);
        source
    }
    fn in_flight(&self, _: &World, _: std::time::Duration) -> bool {
        self.proxies.lock().unwrap()[0].answered() >= 20_000
    }
    fn scratch_left(&self) -> Option<String> {
        let dump: serde_json::Value = serde_json::from_str(&self.source.tool("dump")).unwrap();
        let names = dump.as_object().unwrap().keys();
        Some(
            names
                .filter(|n| n.starts_with("drctl_verify"))
                .cloned()
                .collect(),
        )
    }
}

#[test]
fn chroma_behaves() {
    let dir = tempdir("bh-chroma-");
    let source = Chroma::start(&dir.join("src"));
    source.tool("seed-exact");
    let f = ChromaFixture {
        dir,
        source,
        targets: Default::default(),
        proxies: Default::default(),
    };
    suite("bh-chroma", &f);
}

/// Qdrant is a contract test: the stub of its REST API stands in for the server.
struct QdrantFixture {
    source: QdrantStub,
    targets: std::sync::Mutex<Vec<QdrantStub>>,
    proxies: std::sync::Mutex<Vec<crate::proxy::Proxy>>,
}

impl QdrantFixture {
    fn source_at(url: &str) -> String {
        format!("{{ kind: qdrant, url: \"{url}\", api_key: \"{QDRANT_KEY}\" }}")
    }
}

/// Every collection's name and points, as the stub holds them.
fn qdrant_digest(stub: &QdrantStub) -> String {
    let cols = stub.get("/collections")["collections"].clone();
    let mut names: Vec<String> = cols
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| format!("{n}: {}", stub.get(&format!("/_stub/points/{n}"))))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Fixture for QdrantFixture {
    fn source(&self) -> String {
        Self::source_at(&self.source.url())
    }
    fn job_fields(&self) -> Vec<String> {
        Vec::new()
    }
    fn fresh_target(&self, _: &str) -> String {
        let s = QdrantStub::start(&["--empty"]);
        let url = s.url();
        self.targets.lock().unwrap().push(s);
        url
    }
    fn digest_source(&self) -> String {
        qdrant_digest(&self.source)
    }
    fn digest(&self, to: &str) -> String {
        let targets = self.targets.lock().unwrap();
        qdrant_digest(targets.iter().find(|s| s.url() == to).unwrap())
    }
    fn stalling_source(&self, _: &std::path::Path) -> String {
        let p = stalling(self.source.port, 100_000);
        let source = Self::source_at(&p.url());
        self.proxies.lock().unwrap().push(p);
        source
    }
    fn in_flight(&self, _: &World, _: std::time::Duration) -> bool {
        self.proxies.lock().unwrap()[0].answered() >= 100_000
    }
    fn scratch_left(&self) -> Option<String> {
        let d = qdrant_digest(&self.source);
        let left = d.lines().filter(|l| l.starts_with("drctl_verify"));
        Some(left.map(|l| l.split(':').next().unwrap()).collect())
    }
}

#[test]
fn qdrant_contract_behaves() {
    let f = QdrantFixture {
        source: QdrantStub::start(&[]),
        targets: Default::default(),
        proxies: Default::default(),
    };
    suite("bh-qdrant", &f);
}

struct FilesFixture {
    dir: std::path::PathBuf,
}

impl FilesFixture {
    fn tree(&self) -> std::path::PathBuf {
        self.dir.join("tree")
    }
    /// Where a restore into `dir:X` puts the tree: its absolute path under X.
    fn restored(&self, to: &str) -> std::path::PathBuf {
        let base = std::path::Path::new(to.strip_prefix("dir:").unwrap());
        base.join(self.tree().strip_prefix("/").unwrap())
    }
    fn skip(name: &str) -> bool {
        name.ends_with(".swp")
    }
}

impl Fixture for FilesFixture {
    fn source(&self) -> String {
        format!(
            "{{ kind: files, paths: [\"{}\"], exclude: [\"*.swp\"] }}",
            self.tree().display()
        )
    }
    fn job_fields(&self) -> Vec<String> {
        let scratch = self.dir.join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        vec![format!(
            "verify: {{ level: restore, scratch: \"dir:{}\" }}",
            scratch.display()
        )]
    }
    fn fresh_target(&self, tag: &str) -> String {
        format!("dir:{}", self.dir.join(format!("restored-{tag}")).display())
    }
    fn digest_source(&self) -> String {
        tree_digest(&self.tree(), &Self::skip)
    }
    fn digest(&self, to: &str) -> String {
        tree_digest(&self.restored(to), &|_| false)
    }
    fn stalling_source(&self, dir: &std::path::Path) -> String {
        // A 64 GiB sparse file: reading it takes far longer than the test waits.
        let tree = dir.join("huge");
        std::fs::create_dir_all(&tree).unwrap();
        let f = std::fs::File::create(tree.join("sparse.img")).unwrap();
        f.set_len(64 << 30).unwrap();
        format!("{{ kind: files, paths: [\"{}\"] }}", tree.display())
    }
    fn in_flight(&self, _: &World, since: std::time::Duration) -> bool {
        since > std::time::Duration::from_secs(2)
    }
    fn scratch_left(&self) -> Option<String> {
        let left = std::fs::read_dir(self.dir.join("scratch")).unwrap();
        Some(
            left.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

#[test]
fn files_behave() {
    let f = FilesFixture {
        dir: tempdir("bh-files-"),
    };
    config_tree(&f.tree());
    suite("bh-files", &f);
}

/// Milvus: each backup reads database `db` of a server; each restore goes to a fresh database
/// of the same server (`--to URL/DB`).
struct MilvusFixture {
    m: Milvus,
    db: String,
    proxies: std::sync::Mutex<Vec<crate::proxy::Proxy>>,
}

impl MilvusFixture {
    fn source_at(&self, url: &str) -> String {
        format!(
            "{{ kind: milvus, url: \"{url}\", database: {}, batch_rows: 256 }}",
            self.db
        )
    }
}

impl Fixture for MilvusFixture {
    fn source(&self) -> String {
        self.source_at(&self.m.url)
    }
    fn job_fields(&self) -> Vec<String> {
        vec!["verify: { level: restore }".into()]
    }
    fn fresh_target(&self, tag: &str) -> String {
        let db = format!("{}_{tag}", self.db);
        self.m.seed(&db, &serde_json::json!({ "collections": [] }));
        self.m.db_url(&db)
    }
    fn digest_source(&self) -> String {
        self.m.digest(&self.db, &[])
    }
    fn digest(&self, to: &str) -> String {
        self.m.digest(to.rsplit('/').next().unwrap(), &[])
    }
    fn stalling_source(&self, _: &std::path::Path) -> String {
        let p = stalling_at(&self.m.addr, 50_000);
        let source = self.source_at(&p.url());
        self.proxies.lock().unwrap().push(p);
        source
    }
    fn in_flight(&self, _: &World, _: std::time::Duration) -> bool {
        self.proxies.lock().unwrap()[0].answered() >= 50_000
    }
    fn scratch_left(&self) -> Option<String> {
        let list = self.m.list(&self.db);
        Some(
            list.lines()
                .filter(|l| l.starts_with("drctl_verify"))
                .collect(),
        )
    }
}

/// The observer's seed for the behaviour suite: rows inserted in shuffled key order, a flush
/// after every batch (so pages cross segments), two partitions, a dynamic field, JSON; with
/// `binary`, a collection keyed by strings holding quotes, with binary vectors (Milvus); with
/// `sparse`, one of sparse float vectors (milvus-lite: Milvus 2.3 has none).
pub fn milvus_seed(rows: u32, binary: bool, sparse: bool) -> serde_json::Value {
    let mut cols = vec![serde_json::json!({
        "name": "docs", "description": "documents", "dynamic": true,
        "fields": [
            {"name": "id", "type": "int64", "primary": true},
            {"name": "v", "type": "float_vector", "dim": 16},
            {"name": "title", "type": "varchar", "max_length": 64},
            {"name": "meta", "type": "json"},
            {"name": "score", "type": "double"},
        ],
        "partitions": ["p1", "p2"], "rows": rows, "batch": 500, "flush_each": true,
        "index": {"field": "v", "index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 16}},
    })];
    if binary {
        cols.push(serde_json::json!({
            "name": "bins", "consistency": "Strong",
            "fields": [
                {"name": "key", "type": "varchar", "primary": true, "max_length": 32},
                {"name": "b", "type": "binary_vector", "dim": 64},
            ],
            "rows": 700, "batch": 300, "flush_each": true,
            "index": {"field": "b", "index_type": "BIN_FLAT", "metric_type": "HAMMING"},
        }));
    }
    if sparse {
        cols.push(serde_json::json!({
            "name": "sparse",
            "fields": [
                {"name": "id", "type": "int64", "primary": true},
                {"name": "sp", "type": "sparse_float_vector"},
            ],
            "rows": 900, "batch": 400, "flush_each": true,
            "index": {"field": "sp", "index_type": "SPARSE_INVERTED_INDEX", "metric_type": "IP"},
        }));
    }
    serde_json::json!({ "collections": cols })
}

#[test]
fn milvus_behaves() {
    let f = MilvusFixture {
        m: Milvus::embedded().clone(),
        db: "bh_milvus".into(),
        proxies: Default::default(),
    };
    f.m.seed(&f.db, &milvus_seed(3000, true, false));
    suite("bh-milvus", &f);
}

#[test]
fn milvus_lite_behaves() {
    let f = MilvusFixture {
        m: Milvus::lite(&tempdir("bh-milvus-lite-")),
        db: "bh_lite".into(),
        proxies: Default::default(),
    };
    // milvus-lite has no binary vectors, but sparse ones.
    f.m.seed(&f.db, &milvus_seed(3000, false, true));
    suite("bh-milvus-lite", &f);
}
