//! Redis: snapshot over the replication protocol (or SCAN+DUMP) to fs + Garage, restored as an
//! RDB file that a fresh redis-server loads and by RESTORE replay into a live server; the whole
//! dataset (types, values, TTLs, dbs) must be identical.

use crate::common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn world(name: &str, redis_url: &str) -> World {
    world_with(name, redis_url, "")
}

/// `source_extra`: more fields of the job's source, e.g. `, method: dump`.
fn world_with(name: &str, redis_url: &str, source_extra: &str) -> World {
    World::with_job(
        name,
        "cache",
        &format!("{{ kind: redis, url: \"{redis_url}\"{source_extra} }}"),
    )
}

/// `restore cache --to file:DIR/dump.rdb` from `region`, then a fresh server started on it.
fn restore_cold(w: &World, region: &str, dir: &Path) -> Redis {
    let file = format!("file:{}", dir.join("dump.rdb").display());
    w.restore_job_ok("cache", region, &file, &[]);
    Redis::start(dir, &["--dbfilename", "dump.rdb"])
}

fn populate(r: &Redis) {
    let mut cmds = String::new();
    for i in 0..500 {
        cmds += &format!(
            "SET str:{i} \"value {i} with spaces\"\nHSET hash:{i} f1 {i} f2 \"x y\" f3 {}\n",
            i * 7
        );
        cmds += &format!("RPUSH list:{i} a b c {i}\nSADD set:{i} m1 m2 {i}\nZADD zset:{i} 1.5 one 2.25 two {i} n\n");
        cmds += &format!("SET ttl:{i} v EX {}\n", 3600 + i);
    }
    // Long repetitive keys and values are LZF-compressed in the RDB.
    cmds += &format!("SET {}:lzf {}\n", "k".repeat(80), "v".repeat(5000));
    cmds += "SADD intset 1 2 3 4 5\nRPUSH biglist ";
    cmds += &(0..2000)
        .map(|i| format!("element-{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    cmds += "\nXADD events * kind login user 1\nXADD events * kind logout user 1\nXGROUP CREATE events g1 0\nXREADGROUP GROUP g1 c1 COUNT 1 STREAMS events >\n";
    r.feed(0, &cmds);
    r.feed(
        5,
        "SET other-db yes\nHSET h a 1\nSET short-ttl v PX 900000\n",
    );
    assert!(r
        .cli(&["DEBUG", "POPULATE", "200000", "pop", "64"])
        .contains("OK"));
}

#[test]
fn redis_snapshot_round_trips_through_two_regions() {
    let dir = tempdir("redis-");
    let src = Redis::start(&dir.join("src"), &[]);
    populate(&src);
    let w = world("redis-rt", &src.url());

    let report = w.backup_ok_job("cache");
    let id = report["id"].as_str().unwrap().to_string();
    assert_eq!(report["regions"], serde_json::json!(["local", "garage"]));
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/cache/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["source"]["kind"], "redis");
    assert_eq!(m["artifacts"][0]["path"], "dump.rdb.zst");
    let facts = &m["artifacts"][0]["facts"];
    assert!(facts["rdb_version"].as_u64().unwrap() >= 9);
    // Facts counted from the stream equal what the server says it holds.
    for db in [0, 5] {
        let dbsize: u64 = src
            .cli(&["-n", &db.to_string(), "DBSIZE"])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            facts["dbs"][db.to_string()]["keys"],
            dbsize,
            "keys in db {db}: {facts}"
        );
    }
    let keyspace = src.cli(&["INFO", "keyspace"]);
    let expires = |db: &str| {
        keyspace
            .lines()
            .find(|l| l.starts_with(db))
            .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("expires=")))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(facts["dbs"]["0"]["expiring"], expires("db0:"));
    assert_eq!(facts["dbs"]["5"]["expiring"], expires("db5:"));

    // Restore from the S3 region to a file, cold-start a fresh server on it, compare.
    let restored = dir.join("restored");
    let dst = restore_cold(&w, "garage", &restored);
    // DEBUG DIGEST covers every key of every db: type, value and expiry.
    assert_eq!(dst.cli(&["DEBUG", "DIGEST"]), src.cli(&["DEBUG", "DIGEST"]));
    assert_eq!(
        dst.cli(&["-n", "0", "DBSIZE"]),
        src.cli(&["-n", "0", "DBSIZE"])
    );
    assert_eq!(dst.cli(&["-n", "5", "GET", "other-db"]).trim(), "yes");
    let ttl = |r: &Redis| r.cli(&["TTL", "ttl:42"]).trim().parse::<i64>().unwrap();
    assert!(
        (ttl(&src) - ttl(&dst)).abs() <= 1,
        "TTL kept within a second"
    );
    assert_eq!(
        dst.cli(&["XPENDING", "events", "g1"])
            .lines()
            .next()
            .map(str::trim),
        Some("1")
    );

    // Replay into a live, empty server: the same dataset, expiry instants included.
    let live = Redis::start(&dir.join("live"), &[]);
    w.restore_job_ok("cache", "local", &live.url(), &[]);
    assert_eq!(
        live.cli(&["DEBUG", "DIGEST"]),
        src.cli(&["DEBUG", "DIGEST"])
    );
    assert!((ttl(&src) - ttl(&live)).abs() <= 1);
    // Now it holds keys: a second replay needs --clean, which replaces them.
    let o = w.drctl(&["restore", "cache", "--to", &live.url()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    live.cli(&["SET", "str:1", "changed"]);
    w.restore_job_ok("cache", "local", &live.url(), &["--clean"]);
    assert_eq!(
        live.cli(&["DEBUG", "DIGEST"]),
        src.cli(&["DEBUG", "DIGEST"])
    );

    // Restoring over an existing file needs --clean.
    let o = w.drctl(&[
        "restore",
        "cache",
        "--to",
        &format!("file:{}", restored.join("dump.rdb").display()),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn redis_killed_mid_stream_fails_and_leaves_nothing() {
    let dir = tempdir("redis-kill-");
    // rdb-key-save-delay (microseconds per key) makes the snapshot slow enough to kill.
    let src = Redis::start(&dir.join("src"), &["--rdb-key-save-delay", "200"]);
    assert!(src
        .cli(&["DEBUG", "POPULATE", "50000", "k", "512"])
        .contains("OK"));
    let w = world("redis-kill", &src.url());
    let child = w
        .cmd(&["backup", "run", "cache"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill only once the snapshot is being produced for our replica connection.
    let start = Instant::now();
    while !src
        .cli(&["INFO", "persistence"])
        .contains("rdb_bgsave_in_progress:1")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "snapshot never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    kill_server(src.pid);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("closed the connection before the snapshot ended"),
        "{}",
        stderr(&o)
    );
    w.assert_nothing_left();
}

#[test]
fn redis_without_replication_rights_backs_up_with_scan_dump() {
    let dir = tempdir("redis-dump-");
    let src = Redis::start(&dir.join("src"), &[]);
    populate(&src);
    // A managed-Redis-like user: everything but the replication commands.
    assert!(src
        .cli(&[
            "ACL",
            "SETUSER",
            "backup",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
            "-psync",
            "-sync",
            "-replconf"
        ])
        .contains("OK"));
    let url = format!("redis://backup:s3cret@127.0.0.1:{}", src.port);

    let w = world("redis-norepl", &url);
    let o = w.drctl(&["backup", "run", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("method: dump"), "{}", stderr(&o));
    assert!(w.fs_files().is_empty(), "{:?}", w.fs_files());

    let w = world_with("redis-dump", &url, ", method: dump");
    let report = w.backup_ok_job("cache");
    let id = report["id"].as_str().unwrap().to_string();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/cache/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    let facts = &m["artifacts"][0]["facts"];
    assert_eq!(facts["method"], "scan-dump");
    for db in [0, 5] {
        let dbsize: u64 = src
            .cli(&["-n", &db.to_string(), "DBSIZE"])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(facts["dbs"][db.to_string()]["keys"], dbsize, "{facts}");
    }

    // The export is an ordinary RDB: a cold start loads it...
    let cold = restore_cold(&w, "local", &dir.join("cold"));
    // ...and a replay into a live server gives the same data.
    let live = Redis::start(&dir.join("live"), &[]);
    w.restore_job_ok("cache", "garage", &live.url(), &[]);
    for r in [&cold, &live] {
        let ttl = |r: &Redis| r.cli(&["PTTL", "ttl:7"]).trim().parse::<i64>().unwrap();
        assert!((ttl(&src) - ttl(r)).abs() <= 1000, "TTL within a second");
        assert_eq!(
            r.cli(&["-n", "5", "DBSIZE"]),
            src.cli(&["-n", "5", "DBSIZE"])
        );
    }
    // Expiry instants are re-derived from PTTL (milliseconds apart), so compare the data
    // after making every key persistent on each server.
    let persist = "for _,k in ipairs(redis.call('KEYS','*ttl*')) do redis.call('PERSIST',k) end";
    for r in [&src, &cold, &live] {
        for db in ["0", "5"] {
            r.cli(&["-n", db, "EVAL", persist, "0"]);
        }
    }
    let digest = src.cli(&["DEBUG", "DIGEST"]);
    assert_eq!(cold.cli(&["DEBUG", "DIGEST"]), digest);
    assert_eq!(live.cli(&["DEBUG", "DIGEST"]), digest);
}

impl Pki {
    /// A redis-server with a TLS port (client certificates required, Redis's default) beside
    /// the plain one the harness's redis-cli uses.
    fn server(&self, dir: &Path) -> (Redis, u16) {
        let tls_port = free_port();
        let r = Redis::start(
            dir,
            &[
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &self.file("server.crt"),
                "--tls-key-file",
                &self.file("server.key"),
                "--tls-ca-cert-file",
                &self.file("ca.crt"),
            ],
        );
        (r, tls_port)
    }

    fn url(&self, port: u16, client_cert: bool) -> String {
        let mut u = format!("rediss://127.0.0.1:{port}/?ca_file={}", self.file("ca.crt"));
        if client_cert {
            u += &format!(
                "&cert_file={}&key_file={}",
                self.file("client.crt"),
                self.file("client.key")
            );
        }
        u
    }
}

#[test]
fn redis_over_tls_backs_up_and_replays_with_client_certificates() {
    let dir = tempdir("redis-tls-");
    let pki = Pki::new(&dir.join("pki"), "drctl-test-ca");
    let (src, src_tls) = pki.server(&dir.join("src"));
    src.feed(0, "SET greeting hello\nHSET h a 1 b 2\nSET ttl v EX 3600\n");
    assert!(src
        .cli(&["DEBUG", "POPULATE", "20000", "pop", "64"])
        .contains("OK"));

    let w = world("redis-tls", &pki.url(src_tls, true));
    let report = w.backup_ok_job("cache");
    let id = report["id"].as_str().unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.fs_root.join(format!("backups/cache/{id}/manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["artifacts"][0]["facts"]["dbs"]["0"]["keys"],
        src.cli(&["DBSIZE"]).trim().parse::<u64>().unwrap()
    );
    // Nothing secret or local in the manifest: the URL is recorded without its query.
    assert!(!m.to_string().contains("client.key"), "{m}");

    // Replay over TLS into a second TLS server: the same dataset.
    let (dst, dst_tls) = pki.server(&dir.join("dst"));
    w.restore_job_ok("cache", "garage", &pki.url(dst_tls, true), &[]);
    assert_eq!(dst.cli(&["DEBUG", "DIGEST"]), src.cli(&["DEBUG", "DIGEST"]));

    // A CA that did not sign the server's certificate: refused at the handshake, said so.
    let other = Pki::new(&dir.join("other-pki"), "someone-else");
    let w = world("redis-tls-wrong-ca", &other.url(src_tls, false));
    let o = w.drctl(&["backup", "run", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("TLS handshake"), "{}", stderr(&o));
    assert!(stderr(&o).contains("ca_file"), "{}", stderr(&o));
    w.assert_nothing_left();

    // No client certificate for a server that demands one: fails, nothing committed.
    let w = world("redis-tls-no-cert", &pki.url(src_tls, false));
    let o = w.drctl(&["backup", "run", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    w.assert_nothing_left();

    assert!(
        stderr(&o).contains("cert_file and key_file"),
        "{}",
        stderr(&o)
    );
    // Plain redis:// against the TLS port does not silently work either.
    let w = world("redis-tls-plain", &format!("redis://127.0.0.1:{src_tls}"));
    let o = w.drctl(&["backup", "run", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    w.assert_nothing_left();
}

#[test]
fn redis_restore_level_verification_replays_into_a_scratch_server_that_goes_away() {
    let dir = tempdir("redis-verify-");
    let src = Redis::start(&dir.join("src"), &[]);
    src.feed(3, "SET a 1\nSET b 2 EX 3600\n");
    assert!(src.cli(&["DEBUG", "POPULATE", "5000"]).contains("OK"));
    let w = world("redis-verify", &src.url());
    let id = w.backup_ok_job("cache")["id"].as_str().unwrap().to_string();

    let verify = |w: &World| {
        let o = w.drctl(&["-o", "json", "verify", "cache", "--level", "restore"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v, stderr(&o))
    };
    let (code, r, err) = verify(&w);
    assert_eq!(code, Some(0), "{err}\n{r:#}");
    let detail = r["restore"]["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("replayed 5002 keys"), "{detail}");
    // The scratch server is gone afterwards.
    let port: u16 = detail
        .split("127.0.0.1:")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "scratch redis still listening"
    );

    // A manifest claiming one key more than the snapshot holds fails the replay check.
    let mpath = format!("backups/cache/{id}/manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fs_root.join(&mpath)).unwrap()).unwrap();
    let k = m["artifacts"][0]["facts"]["dbs"]["3"]["keys"]
        .as_u64()
        .unwrap();
    m["artifacts"][0]["facts"]["dbs"]["3"]["keys"] = (k + 1).into();
    w.put_both(&mpath, m.to_string().as_bytes());
    let (code, r, err) = verify(&w);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(r["restore"]["ok"], false, "{r:#}");
    assert!(err.contains("keys per db differ"), "{err}");
}

/// A restore to an RDB file on a disk too small for it: the error names the directory and the
/// OS's reason, and nothing is left there (no partial file under its temporary name, no
/// `dump.rdb` a later cold start would load).
#[test]
fn an_rdb_file_that_does_not_fit_names_its_directory_and_leaves_nothing() {
    let dir = tempdir("redis-full-");
    let src = Redis::start(&dir.join("src"), &[]);
    assert!(src
        .cli(&["DEBUG", "POPULATE", "100000", "pop", "64"])
        .contains("OK"));
    let w = world("redis-full", &src.url());
    w.backup_ok_job("cache");
    let small = Tmpfs::mount(&w.dir.join("small"), "1m");
    let o = w.drctl(&[
        "restore",
        "cache",
        "--to",
        &format!("file:{}", small.at.join("dump.rdb").display()),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "cannot write the RDB file in {}",
            small.at.display()
        )),
        "{e}"
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(e.contains("nothing was put in place"), "{e}");
    let left = files_under(&small.at);
    assert!(left.is_empty(), "{left:?}");
}
