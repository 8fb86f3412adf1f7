//! Test harness: real services on loopback, started once per test binary and shared; each test
//! gets its own databases, fs directories and S3 prefix so tests run in parallel.
//!
//! PostgreSQL comes from the installed server binaries (initdb + postgres on a random port in a
//! temp dir; as `nobody` when the tests run as root, since PostgreSQL refuses root). Garage is
//! the S3-compatible store. The aws CLI is the independent observer of what is in the bucket,
//! including unfinished multipart uploads. Servers are started from a thread that never exits,
//! with PR_SET_PDEATHSIG, so they die with the test process.

#![allow(dead_code)]

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
pub fn spawn_server(mut cmd: Command) -> u32 {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn server");
        tx.send(child.id()).unwrap();
        let _keep: Child = child;
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap()
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

// ---------------------------------------------------------------- PostgreSQL

pub struct Pg {
    pub port: u16,
    pub dir: PathBuf,
}

pub fn pg_bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    if let Ok(o) = out {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (apt: postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    found.sort();
    found.pop().expect("no PostgreSQL server installed")
}

/// uid/gid to run PostgreSQL as: ourselves, or `nobody` when we are root.
pub fn pg_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let pw = unsafe { libc::getpwnam(c"nobody".as_ptr()) };
    assert!(
        !pw.is_null(),
        "running as root needs a `nobody` user for PostgreSQL"
    );
    unsafe { Some(((*pw).pw_uid, (*pw).pw_gid)) }
}

impl Pg {
    pub fn start() -> Pg {
        let dir = tempdir("pg-");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let user = pg_user();
        if let Some((uid, gid)) = user {
            for p in [&dir, &data] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let bin = pg_bindir();
        let as_user = |c: &mut Command| {
            if let Some((uid, gid)) = user {
                c.uid(uid).gid(gid);
            }
        };
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ])
            .stdout(Stdio::null());
        as_user(&mut initdb);
        run(&mut initdb);
        Pg::serve(dir, &data)
    }

    /// Start `postgres` on a data directory, on a free loopback port.
    fn serve(dir: PathBuf, data: &Path) -> Pg {
        let user = pg_user();
        let bin = pg_bindir();
        let port = free_port();
        let mut pg = Command::new(bin.join("postgres"));
        pg.args([
            "-D",
            data.to_str().unwrap(),
            "-p",
            &port.to_string(),
            "-k",
            dir.to_str().unwrap(),
        ])
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("postgres.log")).unwrap());
        if let Some((uid, gid)) = user {
            pg.uid(uid).gid(gid);
        }
        spawn_server(pg);
        let pg = Pg { port, dir };
        wait_for("postgres", Duration::from_secs(30), || {
            Command::new("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        pg
    }

    /// A streaming standby of this server (pg_basebackup -R), on its own port.
    pub fn start_standby(&self) -> Pg {
        let dir = tempdir("pg-standby-");
        let data = dir.join("data");
        let user = pg_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let mut bb = Command::new(pg_bindir().join("pg_basebackup"));
        bb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "--no-sync",
        ])
        .stdout(Stdio::null());
        if let Some((uid, gid)) = user {
            bb.uid(uid).gid(gid);
        }
        run(&mut bb);
        Pg::serve(dir, &data)
    }

    /// `pg_ctl` as the user owning the data directory, for playbooks that stop a server.
    pub fn pg_ctl() -> String {
        let bin = pg_bindir().join("pg_ctl").display().to_string();
        match pg_user() {
            Some(_) => format!("runuser -u nobody -- {bin}"),
            None => bin,
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Run SQL with psql, returning unaligned tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = run(Command::new("psql").args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-d",
            &self.url(db),
            "-c",
            sql,
        ]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    pub fn db_exists(&self, name: &str) -> bool {
        self.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
        ) == "1"
    }
}

pub fn pg() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(Pg::start)
}

// ---------------------------------------------------------------- Garage (S3)

pub struct Garage {
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
    conf: PathBuf,
    pid: std::sync::atomic::AtomicU32,
}

pub const GARAGE_REGION: &str = "garage";

impl Garage {
    pub fn start() -> Garage {
        let dir = tempdir("garage-");
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret_rpc: String = (0..64)
            .map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char)
            .collect();
        let conf = dir.join("garage.toml");
        std::fs::write(
            &conf,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret_rpc}\"\n\
                 [s3_api]\ns3_region = \"{GARAGE_REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\nadmin_token = \"drctl-test\"\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let pid = garage_server(&conf);
        let g = Garage {
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: "GK0123456789abcdef01234567".into(),
            secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            bucket: "drctl".into(),
            conf,
            pid: pid.into(),
        };
        wait_for("garage", Duration::from_secs(30), || {
            g.cli(&["status"]).status.success()
        });
        let node = String::from_utf8_lossy(&g.cli(&["node", "id", "-q"]).stdout)
            .trim()
            .split('@')
            .next()
            .unwrap()
            .to_string();
        g.ok(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        g.ok(&["layout", "apply", "--version", "1"]);
        g.ok(&["key", "import", "--yes", "-n", "test", &g.key_id, &g.secret]);
        g.ok(&["bucket", "create", &g.bucket]);
        g.ok(&[
            "bucket", "allow", "--read", "--write", "--owner", &g.bucket, "--key", "test",
        ]);
        wait_for("garage bucket", Duration::from_secs(30), || {
            g.aws(&["s3api", "list-objects-v2", "--bucket", &g.bucket])
                .status
                .success()
        });
        g
    }

    /// SIGKILL the server (a store that dies mid-upload).
    pub fn kill(&self) {
        let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Start the server again on its data, and wait until it answers.
    pub fn restart(&self) {
        let pid = garage_server(&self.conf);
        self.pid.store(pid, std::sync::atomic::Ordering::SeqCst);
        wait_for("garage restart", Duration::from_secs(30), || {
            self.aws(&["s3api", "list-objects-v2", "--bucket", &self.bucket])
                .status
                .success()
        });
    }

    /// A second access key that may read the bucket but not write it.
    pub fn read_only_key(&self) -> (String, String) {
        let (id, secret) = (
            "GK0123456789abcdef0123ffff".to_string(),
            "ffff456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string(),
        );
        if self.cli(&["key", "info", &id]).status.success() {
            return (id, secret);
        }
        self.ok(&["key", "import", "--yes", "-n", "ro", &id, &secret]);
        self.ok(&["bucket", "allow", "--read", &self.bucket, "--key", "ro"]);
        (id, secret)
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(garage_bin())
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The aws CLI against this Garage (an observer independent of drctl's OpenDAL client).
    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new("aws")
            .args([
                "--endpoint-url",
                &self.endpoint,
                "--region",
                GARAGE_REGION,
                "--output",
                "json",
            ])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .output()
            .expect("aws CLI (pip install awscli)")
    }

    /// Object keys under a prefix.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.s3api_list("list-objects-v2", prefix, "Contents")
    }

    /// Unfinished multipart uploads under a prefix.
    pub fn multipart_uploads(&self, prefix: &str) -> Vec<String> {
        self.s3api_list("list-multipart-uploads", prefix, "Uploads")
    }

    fn s3api_list(&self, op: &str, prefix: &str, field: &str) -> Vec<String> {
        let o = self.aws(&["s3api", op, "--bucket", &self.bucket, "--prefix", prefix]);
        assert!(
            o.status.success(),
            "{op}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        json_keys(&o.stdout, field)
    }
}

fn garage_server(conf: &Path) -> u32 {
    let log = conf.with_file_name("garage.log");
    let mut server = Command::new(garage_bin());
    server
        .args(["-c", conf.to_str().unwrap(), "server"])
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        );
    spawn_server(server)
}

fn json_keys(stdout: &[u8], field: &str) -> Vec<String> {
    if stdout.iter().all(|b| b.is_ascii_whitespace()) {
        return vec![];
    }
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    v.get(field)
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|o| o["Key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GARAGE_BIN") {
        return p.into();
    }
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/garage");
    if home.exists() {
        home
    } else {
        "garage".into()
    }
}

static GARAGE: OnceLock<Garage> = OnceLock::new();

pub fn garage() -> &'static Garage {
    GARAGE.get_or_init(Garage::start)
}

// ---------------------------------------------------------------- drctl

/// One test's world: a fs region directory, an S3 prefix, a config file.
pub struct World {
    pub dir: PathBuf,
    pub fs_root: PathBuf,
    pub s3_root: String,
    pub config: PathBuf,
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

    /// A config with a fs region (`local`) and a Garage region (`garage`), and one postgres job.
    pub fn two_regions(&self, min_copies: usize, source_db_url: &str, source_extra: &str) -> &Self {
        let g = garage();
        self.write_config(&format!(
            "regions:\n  - name: local\n    kind: fs\n    root: {fs}\n  - name: garage\n    kind: s3\n    bucket: {b}\n    root: {root}\n    region: {r}\n    endpoint: {e}\n    access_key_id: ${{TEST_S3_KEY}}\n    secret_access_key: ${{TEST_S3_SECRET}}\n\
             min_copies: {min_copies}\njobs:\n  - name: app\n    source:\n      kind: postgres\n      url: \"{source_db_url}\"\n{source_extra}",
            fs = self.fs_root.display(),
            b = g.bucket,
            root = self.s3_root,
            r = GARAGE_REGION,
            e = g.endpoint,
        ))
    }

    /// A world with the two regions and one job `job` whose `source:` is the flow map `source`
    /// (e.g. `{ kind: redis, url: "redis://..." }`).
    pub fn with_job(name: &str, job: &str, source: &str) -> World {
        let w = World::new(name);
        let g = garage();
        w.write_config(&format!(
            "regions:\n  - {{ name: local, kind: fs, root: {fs} }}\n  - {{ name: garage, kind: s3, bucket: {b}, root: {root}, region: {r}, endpoint: \"{e}\", access_key_id: \"${{TEST_S3_KEY}}\", secret_access_key: \"${{TEST_S3_SECRET}}\" }}\n\
             jobs:\n  - name: {job}\n    source: {source}\n",
            fs = w.fs_root.display(),
            b = g.bucket,
            root = w.s3_root,
            r = GARAGE_REGION,
            e = g.endpoint,
        ));
        w
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
    w.two_regions(min_copies, &pg.url(&src), "");
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

/// The Chroma venv `scripts/deps.sh` installs (`DRCTL_CHROMA_VENV` overrides).
pub fn chroma_venv() -> PathBuf {
    std::env::var_os("DRCTL_CHROMA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/drctl/chroma-venv")
        })
}

/// A `chroma run` server on a random loopback port, with its own data directory.
pub struct Chroma {
    pub port: u16,
}

impl Chroma {
    pub fn start(dir: &Path) -> Chroma {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut cmd = Command::new(chroma_venv().join("bin/chroma"));
        cmd.args([
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--path",
        ])
        .arg(dir)
        .env("ANONYMIZED_TELEMETRY", "False")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        spawn_server(cmd);
        let c = Chroma { port };
        wait_for("chroma", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        c
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Run the Python observer (`tests/tools/chroma_tool.py`) against this server.
    pub fn tool(&self, cmd: &str) -> String {
        let o = run(Command::new(chroma_venv().join("bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tools/chroma_tool.py"
            ))
            .args([cmd, &self.port.to_string()]));
        assert!(o.status.success(), "chroma_tool {cmd}: {}", stderr(&o));
        stdout(&o)
    }
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

/// A redis-server on a random loopback port, stopped with the test process group.
pub struct Redis {
    pub port: u16,
    pub pid: u32,
}

impl Redis {
    /// A redis-server on a random loopback port; `extra` are more `--name value` settings.
    pub fn start(dir: &Path, extra: &[&str]) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::null());
        let pid = spawn_server(cmd);
        let r = Redis { port, pid };
        let start = Instant::now();
        while r.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let o = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (apt: redis-tools)");
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Feed commands (one per line) through redis-cli.
    pub fn feed(&self, db: u32, commands: &str) {
        let mut c = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-n", &db.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success());
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// At most 2,000 characters of `s`, for assertion messages about huge outputs.
pub fn excerpt(s: &str) -> String {
    s.chars().take(2000).collect()
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
