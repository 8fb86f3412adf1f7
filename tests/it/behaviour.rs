//! The behaviour every source kind owes its users, as one suite that each kind runs
//! through a `Fixture` (the way OpenDAL runs one suite against every service). So far:
//! - a backup restores from each of the two regions to what the source held;
//! - with the first region's copy corrupted, a restore falls back to the other region;
//! - `verify --level restore` passes and leaves no scratch target behind.
//!
//! A new kind adds a fixture (a source, a fresh target, a digest of each) and one `#[test]`.

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
