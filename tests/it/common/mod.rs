//! Test harness: the shared world (temp dirs, ports, servers' lifetimes, `World`: a config,
//! its regions and the drctl binary), and one file per service (`pg`, `garage`, `chroma`,
//! `redis`). Real services on loopback, started once per test binary and shared; each test
//! gets its own databases, fs directories and S3 prefix so tests run in parallel.
//!
//! PostgreSQL comes from the installed server binaries (initdb + postgres on a random port in a
//! temp dir; as `nobody` when the tests run as root, since PostgreSQL refuses root). Garage is
//! the S3-compatible store. The aws CLI is the independent observer of what is in the bucket,
//! including unfinished multipart uploads. Servers are started from a thread that never exits,
//! with PR_SET_PDEATHSIG, so they die with the test process.

#![allow(dead_code)]

mod azurite;
mod chroma;
mod files;
mod garage;
mod milvus;
mod moto;
mod pg;
mod pki;
mod qdrant;
mod redis;

pub use azurite::*;
pub use chroma::*;
pub use files::*;
pub use garage::*;
pub use milvus::*;
pub use moto::*;
pub use pg::*;
pub use pki::*;
pub use qdrant::*;
pub use redis::*;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch_root() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("it");
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A fresh directory for one test (or one server).
pub fn tempdir(prefix: &str) -> PathBuf {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch_root())
        .unwrap();
    d.keep()
}

/// Spawn a long-lived server whose life is tied to this test process; returns its pid.
///
/// The thread that spawned it (PR_SET_PDEATHSIG follows the thread, not the process) waits for
/// it, so a server that dies mid-run is recorded with how it ended; every test that fails
/// afterwards says so (see `install_panic_note`) instead of only "error sending request".
pub fn spawn_server(mut cmd: Command) -> u32 {
    install_panic_note();
    let name = server_name(&cmd);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn server");
        let pid = child.id();
        tx.send(pid).unwrap();
        // An exit 0 is a shutdown someone asked for (`pg_ctl stop`, `SHUTDOWN`): no news.
        let how = match child.wait() {
            Ok(s) if s.success() => None,
            Ok(s) => Some(s.to_string()),
            Err(e) => Some(format!("cannot be waited for: {e}")),
        };
        if let Some(how) = how {
            ended().lock().unwrap().push(Ended { name, pid, how });
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
}

/// A server that died (a signal or a failing exit) while the tests ran.
struct Ended {
    name: String,
    pid: u32,
    how: String,
}

fn ended() -> &'static std::sync::Mutex<Vec<Ended>> {
    static ENDED: OnceLock<std::sync::Mutex<Vec<Ended>>> = OnceLock::new();
    ENDED.get_or_init(Default::default)
}

/// Servers whose end a test caused (`kill_server`, `expected_end`): no news.
fn expected_ends() -> &'static std::sync::Mutex<Vec<u32>> {
    static KILLED: OnceLock<std::sync::Mutex<Vec<u32>>> = OnceLock::new();
    KILLED.get_or_init(Default::default)
}

/// SIGKILL a server started by `spawn_server`, as a test's fault (a store or source that dies).
pub fn kill_server(pid: u32) {
    expected_end(pid);
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

/// A server's end (already seen or still to come) is the test's doing, not news.
pub fn expected_end(pid: u32) {
    expected_ends().lock().unwrap().push(pid);
}

fn server_name(cmd: &Command) -> String {
    let prog = Path::new(cmd.get_program())
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let first = cmd
        .get_args()
        .next()
        .map(|a| format!(" {}", a.to_string_lossy()))
        .unwrap_or_default();
    format!("{prog}{first}")
}

/// What every failing test should say first: which servers died unasked during the run, and
/// the free disk where the tests write (a full disk can kill them: in a reproduction Garage
/// went, and every later test failed on a refused connection).
pub fn run_health() -> Option<String> {
    let expected = expected_ends().lock().unwrap().clone();
    let died: Vec<String> = ended()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| !expected.contains(&e.pid))
        .map(|e| format!("{} (pid {}) {}", e.name, e.pid, e.how))
        .collect();
    let free = free_mib(&scratch_root());
    if died.is_empty() && free >= LOW_DISK_MIB {
        return None;
    }
    let died = if died.is_empty() {
        "no server died".to_string()
    } else {
        format!("servers that died during the run: {}", died.join("; "))
    };
    Some(format!(
        "test run health: {died}; {free} MiB free where the tests write ({})",
        scratch_root().display()
    ))
}

/// Below this, the disk is the first suspect for whatever failed.
pub const LOW_DISK_MIB: u64 = 1024;

pub fn free_mib(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.f_bavail as u64 * st.f_frsize as u64 / (1024 * 1024)
}

/// Put the run's health (`run_health`) before a failing test's panic message, where the first
/// lines of a CI log show it.
fn install_panic_note() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(note) = run_health() {
                eprintln!("{note}");
            }
            default(info);
        }));
    });
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "{what} did not come up within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The aws CLI against `endpoint` with a key `(id, secret)`, JSON out, no profile: the tests'
/// observer, independent of drctl's own signing.
pub fn aws_cli(endpoint: &str, region: &str, key: (&str, &str)) -> Command {
    let mut c = Command::new("aws");
    c.args([
        "--endpoint-url",
        endpoint,
        "--region",
        region,
        "--output",
        "json",
    ])
    .env("AWS_ACCESS_KEY_ID", key.0)
    .env("AWS_SECRET_ACCESS_KEY", key.1)
    .env_remove("AWS_SESSION_TOKEN")
    .env_remove("AWS_PROFILE");
    c
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------- drctl

/// A postgres `source:` flow map with more fields (`row_counts: false`).
pub fn pg_source(url: &str, fields: &[&str]) -> String {
    let mut src = format!("{{ kind: postgres, url: \"{url}\"");
    for f in fields {
        src.push_str(", ");
        src.push_str(f);
    }
    src + " }"
}

/// A test config built from parts, instead of `format!` with escaped newlines. Regions and
/// top-level lines first, jobs last, one block mapping each, so a test may still append
/// lines to the last job (`    schedule: …`).
#[derive(Default, Clone)]
pub struct ConfigText {
    regions: Vec<String>,
    top: Vec<String>,
    notifications: Vec<String>,
    jobs: Vec<String>,
}

impl ConfigText {
    pub fn fs(mut self, name: &str, root: &Path) -> Self {
        self.regions.push(format!(
            "{{ name: {name}, kind: fs, root: \"{}\" }}",
            root.display()
        ));
        self
    }

    /// The shared Garage, under `root`, with the key from `$TEST_S3_KEY` / `$TEST_S3_SECRET`.
    pub fn garage(self, name: &str, root: &str) -> Self {
        let key = ("${TEST_S3_KEY}", "${TEST_S3_SECRET}");
        self.garage_at(name, root, &garage().endpoint, key, "")
    }

    /// The shared Garage's bucket through `endpoint` (a proxy, say), with another key
    /// (`(id, secret)`) and more fields (`, timeout: 2s`).
    pub fn garage_at(
        self,
        name: &str,
        root: &str,
        endpoint: &str,
        key: (&str, &str),
        extra: &str,
    ) -> Self {
        let g = garage();
        self.region(&format!(
            "{{ name: {name}, kind: s3, bucket: {b}, root: {root}, region: {r}, endpoint: \"{e}\", access_key_id: \"{k}\", secret_access_key: \"{s}\"{extra} }}",
            b = g.bucket,
            r = GARAGE_REGION,
            e = endpoint,
            k = key.0,
            s = key.1,
        ))
    }

    /// An S3 region on a loopback port nothing listens on, with more fields (`, timeout: 1s`).
    pub fn dead_s3(self, name: &str, extra: &str) -> Self {
        let port = free_port();
        self.region(&format!(
            "{{ name: {name}, kind: s3, bucket: b, region: x, endpoint: \"http://127.0.0.1:{port}\", access_key_id: k, secret_access_key: s{extra} }}"
        ))
    }

    /// Any region, as a flow map.
    pub fn region(mut self, flow: &str) -> Self {
        self.regions.push(flow.to_string());
        self
    }

    /// A notification, as a flow map.
    pub fn notification(mut self, flow: &str) -> Self {
        self.notifications.push(flow.to_string());
        self
    }

    /// A top-level line, e.g. `min_copies: 1`.
    pub fn top(mut self, line: &str) -> Self {
        self.top.push(line.to_string());
        self
    }

    /// A job with its `source:` as a flow map and more fields (`rpo: 1h`), one per line.
    pub fn job(mut self, name: &str, source: &str, fields: &[&str]) -> Self {
        let mut job = format!("  - name: {name}\n    source: {source}\n");
        for f in fields {
            job.push_str(&format!("    {f}\n"));
        }
        self.jobs.push(job);
        self
    }

    pub fn text(&self) -> String {
        let mut out = String::from("regions:\n");
        for r in &self.regions {
            out.push_str(&format!("  - {r}\n"));
        }
        for t in &self.top {
            out.push_str(&format!("{t}\n"));
        }
        if !self.notifications.is_empty() {
            out.push_str("notifications:\n");
        }
        for n in &self.notifications {
            out.push_str(&format!("  - {n}\n"));
        }
        out.push_str(if self.jobs.is_empty() {
            "jobs: []\n"
        } else {
            "jobs:\n"
        });
        for j in &self.jobs {
            out.push_str(j);
        }
        out
    }
}

/// One test's world: a fs region directory, an S3 prefix, a config file.
pub struct World {
    pub dir: PathBuf,
    pub fs_root: PathBuf,
    pub s3_root: String,
    pub config: PathBuf,
}

/// A passed test's directory goes with it (a run writes gigabytes otherwise, and a full disk
/// fails every test after it); a failed test's stays for a look.
impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl World {
    pub fn new(name: &str) -> World {
        let dir = tempdir(&format!("{name}-"));
        let fs_root = dir.join("repo-fs");
        let s3_root = format!("/{}", dir.file_name().unwrap().to_string_lossy());
        World {
            config: dir.join("drctl.yaml"),
            dir,
            fs_root,
            s3_root,
        }
    }

    /// A config with a fs region (`local`) and a Garage region (`garage`), and one postgres
    /// job `app` whose source has more `source_fields` (`pg_dump: "/x"`).
    pub fn two_regions(
        &self,
        min_copies: usize,
        source_db_url: &str,
        source_fields: &[&str],
    ) -> &Self {
        self.write_config(
            &self
                .regions()
                .top(&format!("min_copies: {min_copies}"))
                .job("app", &pg_source(source_db_url, source_fields), &[])
                .text(),
        )
    }

    /// A world with the two regions and one job `job` whose `source:` is the flow map `source`
    /// (e.g. `{ kind: redis, url: "redis://..." }`).
    pub fn with_job(name: &str, job: &str, source: &str) -> World {
        let w = World::new(name);
        w.write_config(&w.regions().job(job, source, &[]).text());
        w
    }

    /// This world's regions, `local` (fs) and `garage` (S3), as the start of a config.
    pub fn regions(&self) -> ConfigText {
        ConfigText::default()
            .fs("local", &self.fs_root)
            .garage("garage", &self.s3_root)
    }

    /// A failed run left nothing behind: no file in the fs region, no backup object and no
    /// unfinished multipart upload in the S3 region.
    pub fn assert_nothing_left(&self) {
        assert!(self.fs_files().is_empty(), "{:?}", self.fs_files());
        let keys = self.s3_keys();
        assert!(keys.iter().all(|k| !k.contains("/backups/")), "{keys:?}");
        assert!(self.s3_uploads().is_empty(), "{:?}", self.s3_uploads());
    }

    pub fn write_config(&self, text: &str) -> &Self {
        std::fs::write(&self.config, text).unwrap();
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        c.arg("-c")
            .arg(&self.config)
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env_remove("RUST_LOG");
        c.env("TEST_AZURE_KEY", AZURITE_KEY);
        if let Some(g) = GARAGE.get() {
            c.env("TEST_S3_KEY", &g.key_id)
                .env("TEST_S3_SECRET", &g.secret);
        }
        c
    }

    pub fn drctl(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Objects under this world's S3 prefix (without the leading root).
    pub fn s3_keys(&self) -> Vec<String> {
        garage().keys(self.s3_root.trim_start_matches('/'))
    }

    pub fn s3_uploads(&self) -> Vec<String> {
        garage().multipart_uploads(self.s3_root.trim_start_matches('/'))
    }

    /// Files under the fs region's `backups/`.
    pub fn fs_files(&self) -> Vec<PathBuf> {
        let mut out = vec![];
        walk(&self.fs_root.join("backups"), &mut out);
        out
    }
}

/// Every file below `root`, at any depth (none when it does not exist).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    walk(root, &mut out);
    out
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A unique, valid database name for one test.
pub fn db_name(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A seeded source database and a world with fs + Garage regions backing it up.
pub fn seeded_world(name: &str, min_copies: usize) -> (&'static Pg, String, World) {
    let pg = pg();
    let src = db_name(&format!("{name}_src"));
    seed(pg, &src);
    let w = World::new(name);
    w.two_regions(min_copies, &pg.url(&src), &[]);
    (pg, src, w)
}

impl World {
    /// `backup run app`, asserting success; returns the JSON report of the job.
    pub fn backup_ok(&self) -> serde_json::Value {
        self.backup_ok_job("app")
    }

    /// `restore app --region R --to URL`, asserting success; returns the JSON report.
    pub fn restore_ok(&self, region: &str, to: &str) -> serde_json::Value {
        self.restore_job_ok("app", region, to, &[])
    }

    /// `restore JOB --region R --to URL [extra...]`, asserting success; returns the JSON report.
    pub fn restore_job_ok(
        &self,
        job: &str,
        region: &str,
        to: &str,
        extra: &[&str],
    ) -> serde_json::Value {
        let mut args = vec!["-o", "json", "restore", job, "--region", region, "--to", to];
        args.extend_from_slice(extra);
        let o = self.drctl(&args);
        assert!(
            o.status.success(),
            "restore from {region} failed: {}",
            stderr(&o)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    pub fn backup_ok_job(&self, job: &str) -> serde_json::Value {
        let o = self.drctl(&["-o", "json", "backup", "run", job]);
        assert!(o.status.success(), "backup failed: {}", stderr(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        report[0].clone()
    }
}

/// Create and fill a database with several tables, types and a few thousand rows.
pub fn seed(pg: &Pg, db: &str) {
    pg.create_db(db);
    pg.psql(
        db,
        "CREATE TABLE customers(id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz NOT NULL, balance numeric(12,2), tags text[], profile jsonb, avatar bytea, active boolean, ref uuid);
         INSERT INTO customers(name, email, created, balance, tags, profile, avatar, active, ref)
           SELECT 'name ' || g || ' ü€ \"quoted\" ''single''', 'c' || g || '@example.test', timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes',
                  (g * 13.37)::numeric(12,2), ARRAY['t' || (g % 5), 'x'], jsonb_build_object('g', g, 'nested', jsonb_build_object('a', g % 3)),
                  decode(md5(g::text), 'hex'), g % 2 = 0, md5(g::text)::uuid
           FROM generate_series(1, 3000) g;
         UPDATE customers SET email = NULL, profile = NULL, avatar = NULL WHERE id % 97 = 0;
         CREATE TABLE orders(id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), amount double precision, note text, placed date);
         INSERT INTO orders(customer_id, amount, note, placed)
           SELECT 1 + g % 3000, g / 7.0, CASE WHEN g % 10 = 0 THEN NULL ELSE repeat('n', g % 50) || E'\\t\\n' END, date '2025-06-01' + g % 365
           FROM generate_series(1, 5000) g;
         CREATE SCHEMA billing;
         CREATE TABLE billing.\"Invoice Lines\"(k text PRIMARY KEY, v int);
         INSERT INTO billing.\"Invoice Lines\" SELECT 'k' || g, g FROM generate_series(1, 250) g;
         CREATE VIEW active_customers AS SELECT id, name FROM customers WHERE active;",
    );
}

/// Every table's full contents as one digest per table (contents, not only counts).
pub fn table_digests(pg: &Pg, db: &str) -> Vec<(String, String)> {
    let tables = pg.psql(db, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1");
    tables
        .lines()
        .map(|t| {
            let d = pg.psql(db, &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"));
            (t.to_string(), d)
        })
        .collect()
}

impl World {
    /// Write one object at `key` (relative to the repository root) in both regions, as
    /// another host or an earlier crashed run would have left it.
    pub fn put_both(&self, key: &str, body: &[u8]) {
        let p = self.fs_root.join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        let g = garage();
        let o = g.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            &g.bucket,
            "--key",
            &format!("{}/{key}", self.s3_root.trim_start_matches('/')),
            "--body",
            p.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }

    /// `backup list JOB -o json`: complete backups as "id@region,region", oldest first.
    pub fn backup_ids(&self, job: &str) -> Vec<String> {
        let o = self.drctl(&["-o", "json", "backup", "list", job]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut ids: Vec<String> = v["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let mut regions: Vec<&str> = b["regions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                regions.sort();
                format!("{}@{}", b["id"].as_str().unwrap(), regions.join(","))
            })
            .collect();
        ids.sort();
        ids
    }
}

/// At most 2,000 characters of `s`, for assertion messages about huge outputs.
pub fn excerpt(s: &str) -> String {
    s.chars().take(2000).collect()
}

/// A drctl run in the background, its output piped.
pub fn spawn(w: &World, args: &[&str]) -> Child {
    w.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until `ok`, failing with the run's own output if it ended first.
pub fn wait_for_run(child: &mut Child, what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the run ended ({status}) before {what}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kill the stand-in `pg_dump` of `fake_pg_dump`, which a SIGKILLed drctl leaves behind.
pub fn kill_fake_dump(w: &World) {
    // A half-written file must not become kill(0): that is this whole process group.
    let pid = std::fs::read_to_string(w.dir.join("fake.pid"));
    if let Some(pid) = pid.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
        if pid > 1 {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A stand-in for pg_dump in `dir` that answers `--version` like the real one, records its
/// pid in `dir/fake.pid`, and otherwise runs `body`.
pub fn fake_pg_dump(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("pg_dump");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncase \"$1\" in --version) exec pg_dump --version;; esac\necho $$ > {}/fake.pid\n{body}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}
