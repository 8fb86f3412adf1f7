//! The behaviour every source kind owes its users, as one suite that each kind runs
//! through a `Fixture` (the way OpenDAL runs one suite against every service):
//! - a backup restores from each of the two regions to what the source held;
//! - with the first region's copy corrupted, a restore falls back to the other region;
//! - `verify --level restore` passes and leaves no scratch target behind;
//! - every artifact truncated, with checksums and sizes rewritten to match in both regions:
//!   every checksum passes and `verify --level structure` fails;
//! - a run interrupted (SIGTERM) while its source streams or stalls exits 130 and leaves
//!   nothing in either region: no object, no manifest, no unfinished multipart upload.
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
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
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
