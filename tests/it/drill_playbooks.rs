//! The shipped playbooks, each run for real on loopback: a PostgreSQL primary with a streaming
//! standby (pg_basebackup), a Redis master with a replica, knot as the authoritative DNS server
//! (RFC 2136 + TSIG), and a backup restored from the surviving region. Each test checks the
//! measured RTO and RPO against what the harness itself observed.

use crate::common::*;
use crate::drill::{at, drill_cmd, report, runs, step};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn secs(a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>) -> f64 {
    (a - b).num_microseconds().unwrap() as f64 / 1e6
}

/// PostgreSQL's text form of a timestamptz, as psql prints it.
fn pg_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f%#z")
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
        .to_utc()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pg_primary_failure_promotes_the_standby_and_measures_rpo_from_the_heartbeat() {
    let primary = Pg::start();
    let standby = primary.start_standby();
    let dir = tempdir("drill-pg-");
    // An earlier drill left heartbeats behind, replicated: they must not count as ready.
    primary.psql("postgres", "CREATE TABLE drill_heartbeat (at timestamptz NOT NULL); INSERT INTO drill_heartbeat SELECT now() - interval '1 hour' - g * interval '1 second' FROM generate_series(1, 10) g");
    wait_until("stale heartbeats replicated", || {
        standby.psql(
            "postgres",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'drill_heartbeat'",
        ) == "1"
            && standby.psql("postgres", "SELECT count(*) FROM drill_heartbeat") == "10"
    });
    let log = dir.join("heartbeat.log");
    let clients = dir.join("database.env");
    let out = drill_cmd(
        &dir,
        &[
            "run",
            "pg-primary-failure",
            "--var",
            &format!("primary={}", primary.url("postgres")),
            "--var",
            &format!("standby={}", standby.url("postgres")),
            "--var",
            &format!("primary_data={}", primary.dir.join("data").display()),
            "--var",
            &format!("pg_ctl={}", Pg::pg_ctl()),
            "--var",
            &format!("heartbeat_log={}", log.display()),
            "--var",
            "heartbeat_every=0.2",
            "--var",
            &format!("clients_file={}", clients.display()),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let r = report(&runs(&dir.join("ev"))[0]);
    assert_eq!(r["passed"], true);

    // Independent observations: the standby is a primary now, and clients point at it.
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()"), "f");
    assert!(std::fs::read_to_string(&clients)
        .unwrap()
        .contains(&standby.url("postgres")));

    // T_d is the newest heartbeat on the promoted side, exactly; the recovery check wrote
    // into its own table, not into the heartbeats.
    let newest = pg_time(&standby.psql("postgres", "SELECT max(at) FROM drill_heartbeat"));
    assert_eq!(
        standby.psql("postgres", "SELECT count(*) FROM drill_write_check"),
        "1"
    );
    let durable = at(&r["durable_at"]);
    assert_eq!(durable, newest);

    // The writer's acknowledged commits are the truth. A commit may still land while the
    // stop is under way (after T_f): then nothing was lost and RPO is 0, never negative.
    // Otherwise RPO is at least fault − last ack, and at most one heartbeat interval (the
    // largest gap between two acks, psql's own latency included) more.
    let fault = at(&r["fault_at"]);
    let mut acked: Vec<_> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(pg_time)
        .collect();
    acked.sort();
    let last_ack = *acked.last().expect("the heartbeat writer wrote nothing");
    // Readiness waited for this run's own writer: it committed before the primary stopped,
    // and the data RPO counts back to is this run's, not the earlier drill's.
    assert!(
        acked[0] < fault,
        "the primary stopped before the writer committed anything"
    );
    assert!(
        secs(fault, durable) < 2.0,
        "RPO measured against stale data: {durable}"
    );
    let interval = acked
        .windows(2)
        .map(|w| secs(w[1], w[0]))
        .fold(0.0, f64::max);
    let truth = secs(fault, last_ack).max(0.0);
    let rpo = r["rpo"]["seconds"].as_f64().unwrap();
    assert!(
        rpo >= truth - 0.002 && rpo <= truth + interval + 0.01,
        "RPO {rpo} vs truth {truth} (interval {interval})"
    );
    assert!((rpo - secs(fault, durable).max(0.0)).abs() < 0.002);

    // RTO from the stop's start to the end of the first write on the new primary.
    assert_eq!(at(&step(&r, "stop-primary")["started_at"]), fault);
    let recovered = at(&step(&r, "takes-writes")["finished_at"]);
    let rto = r["rto"]["seconds"].as_f64().unwrap();
    assert!((rto - secs(recovered, fault)).abs() < 0.002, "{rto}");
    assert_eq!(r["rto"]["met"], true);
    assert_eq!(step(&r, "stop-primary")["owner"], "SRE");
    assert_eq!(step(&r, "promote")["owner"], "DBA");
    assert!(step(&r, "replay-received")["output"]
        .as_str()
        .unwrap()
        .starts_with("replayed up to "));
}

/// A minimal RESP client: SET key value, true on +OK.
fn redis_set(conn: &mut std::net::TcpStream, key: &str, value: &str) -> bool {
    let cmd = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    );
    if conn.write_all(cmd.as_bytes()).is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(&mut *conn).read_line(&mut line).is_ok() && line.starts_with("+OK")
}

/// A master and a replica in sync with it.
fn redis_pair(dir: &Path) -> (Redis, Redis) {
    let master = Redis::start(&dir.join("m"), &[]);
    let port = master.port.to_string();
    let replica = Redis::start(&dir.join("r"), &["--replicaof", "127.0.0.1", &port]);
    wait_until("replica in sync", || {
        replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
    });
    (master, replica)
}

#[test]
fn redis_failover_promotes_the_replica_and_checks_writes() {
    let dir = tempdir("drill-redis-");
    let (master, replica) = redis_pair(&dir);

    // The harness is the application: a heartbeat every 100 ms, remembering each ack.
    let acked: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, port) = (acked.clone(), stop.clone(), master.port);
        std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
                if !redis_set(&mut c, "drill:heartbeat", &format!("{now:.6}")) {
                    break;
                }
                acked.lock().unwrap().push(now);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(800));
    let out = drill_cmd(
        &dir,
        &[
            "run",
            "redis-failover",
            "--var",
            &format!("master={}", master.url()),
            "--var",
            &format!("replica={}", replica.url()),
        ],
    )
    .output()
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let r = report(&runs(&dir.join("ev"))[0]);

    assert!(replica
        .cli(&["INFO", "replication"])
        .contains("role:master"));
    assert!(
        master.cli(&["PING"]).trim().is_empty(),
        "the master still answers"
    );
    let newest = replica.cli(&["GET", "drill:heartbeat"]).trim().to_string();
    assert_eq!(replica.cli(&["GET", "drill:write-check"]).trim(), newest);

    let fault = at(&r["fault_at"]);
    let f = fault.timestamp_micros() as f64 / 1e6;
    let acked = acked.lock().unwrap().clone();
    let last_ack = acked.iter().cloned().fold(0.0, f64::max);
    let interval = acked.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let truth = (f - last_ack).max(0.0);
    let rpo = r["rpo"]["seconds"].as_f64().unwrap();
    assert!(
        rpo >= truth - 0.002 && rpo <= truth + interval + 0.01,
        "RPO {rpo} vs truth {truth} (interval {interval})"
    );
    assert!((rpo - (f - newest.parse::<f64>().unwrap()).max(0.0)).abs() < 0.002);
    let rto = r["rto"]["seconds"].as_f64().unwrap();
    assert!((rto - secs(at(&step(&r, "write-check")["finished_at"]), fault)).abs() < 0.002);
}

#[test]
fn restore_from_backup_uses_the_surviving_region_and_stores_evidence_in_both() {
    let (pg, src, w) = seeded_world("drill_restore", 2);
    let before = table_digests(pg, &src);
    let b = w.backup_ok();
    // Region `local` lost its copy: the restore has to come from Garage.
    std::fs::remove_dir_all(w.fs_root.join("backups")).unwrap();
    let ev = w.dir.join("ev");
    let out = w
        .cmd(&[
            "drill",
            "run",
            "restore-from-backup",
            "--var",
            "job=app",
            "--var",
            &format!("admin={}", pg.url("postgres")),
            "--var",
            &format!("database={src}"),
            "--var",
            &format!("target={}", pg.url(&src)),
            "--var",
            "check_query=SELECT count(*) FROM orders",
        ])
        .env("DRCTL_EVIDENCE_DIR", &ev)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        table_digests(pg, &src),
        before,
        "restored rows differ from the originals"
    );
    let run = &runs(&ev)[0];
    let r = report(run);
    let restore = step(&r, "restore");
    assert!(
        restore["output"]
            .as_str()
            .unwrap()
            .contains("from region garage"),
        "{restore}"
    );
    assert_eq!(
        step(&r, "data-back")["output"],
        "1 row(s); first value: 5000"
    );
    // RPO = fault − the restored backup's consistent_at, to the millisecond.
    let consistent: chrono::DateTime<chrono::Utc> =
        b["consistent_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at(&r["durable_at"]), consistent);
    let rpo = r["rpo"]["seconds"].as_f64().unwrap();
    assert!(
        (rpo - secs(at(&r["fault_at"]), consistent)).abs() < 0.002,
        "{rpo}"
    );
    assert_eq!(r["rpo"]["met"], true);

    // Evidence: the local folder and drills/<playbook>/<run>/ in both regions.
    let run_id = r["run_id"].as_str().unwrap();
    for f in ["journal.jsonl", "report.json", "report.md", "report.html"] {
        assert!(
            w.fs_root
                .join(format!("drills/restore-from-backup/{run_id}/{f}"))
                .is_file(),
            "{f} not in region local"
        );
        assert!(
            w.s3_keys()
                .iter()
                .any(|k| k.ends_with(&format!("drills/restore-from-backup/{run_id}/{f}"))),
            "{f} not in region garage"
        );
    }
    // `drill report` and `drill history` read them back, from the repository alone.
    std::fs::remove_dir_all(&ev).unwrap();
    let o = w
        .cmd(&["drill", "report", &run_id[..12], "--format", "json"])
        .env("DRCTL_EVIDENCE_DIR", &ev)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let back: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(back["rpo"], r["rpo"]);
    let o = w
        .cmd(&["-o", "json", "drill", "history"])
        .env("DRCTL_EVIDENCE_DIR", &ev)
        .output()
        .unwrap();
    let h: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h[0]["run_id"], run_id);
    assert_eq!(h[0]["rpo"]["seconds"], r["rpo"]["seconds"]);

    // A `backup` step drives the real engine: a new backup, in both regions.
    std::fs::write(w.dir.join("b.yaml"), "name: b\nsteps:\n  - { id: snap, owner: SRE, timeout: 2m, kind: backup, job: app }\n  - { id: show, owner: SRE, timeout: 10s, kind: shell, run: \"echo ${steps.snap.backup}\" }\n").unwrap();
    let o = w
        .cmd(&["drill", "run", w.dir.join("b.yaml").to_str().unwrap()])
        .env("DRCTL_EVIDENCE_DIR", &ev)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(
        &runs(&ev)
            .into_iter()
            .find(|p| p.parent().unwrap().ends_with("b"))
            .unwrap(),
    );
    let id = step(&r, "show")["output"].as_str().unwrap().to_string();
    assert!(
        w.backup_ids("app").contains(&format!("{id}@garage,local")),
        "{id} {:?}",
        w.backup_ids("app")
    );
}

struct Knot {
    port: u16,
    secret: String,
}

impl Knot {
    fn start(dir: &Path) -> Knot {
        use base64::Engine as _;
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let port = free_port();
        let secret = base64::engine::general_purpose::STANDARD.encode(rand_bytes());
        std::fs::write(
            dir.join("knot.conf"),
            format!(
                "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\ndatabase:\n    storage: \"{d}/db\"\nkey:\n  - id: drctl\n    algorithm: hmac-sha256\n    secret: {secret}\nacl:\n  - id: drctl-update\n    key: drctl\n    action: update\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\nzone:\n  - domain: example.internal\n    file: example.internal.zone\n    acl: drctl-update\nlog:\n  - target: stderr\n    any: info\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("example.internal.zone"),
            "$ORIGIN example.internal.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 127.0.0.1\napp A 10.0.1.10\n",
        )
        .unwrap();
        let mut cmd = Command::new("knotd");
        cmd.args(["-c", dir.join("knot.conf").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("knot.log")).unwrap());
        spawn_server(cmd);
        let k = Knot { port, secret };
        wait_until("knotd answers", || {
            k.dig("app.example.internal") == "10.0.1.10"
        });
        k
    }

    /// What knot answers for an A query (independent of drctl).
    fn dig(&self, name: &str) -> String {
        let o = Command::new("kdig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+short",
                name,
                "A",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn serial(&self) -> u64 {
        let o = Command::new("kdig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+short",
                "example.internal",
                "SOA",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap_or("0")
            .parse()
            .unwrap_or(0)
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut f, &mut b).unwrap();
    b
}

#[test]
fn region_failure_cuts_dns_over_with_tsig_promotes_and_rolls_back() {
    let dir = tempdir("drill-region-");
    let knot = Knot::start(&dir.join("knot"));
    let primary = Pg::start();
    let standby = primary.start_standby();
    // Stale rows from an earlier drill, then the application's heartbeat every 200 ms.
    primary.psql("postgres", "CREATE TABLE drill_heartbeat (at timestamptz NOT NULL); INSERT INTO drill_heartbeat SELECT now() - interval '1 hour' - g * interval '1 second' FROM generate_series(0, 4) g");
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (writing, url) = (writing.clone(), primary.url("postgres"));
        std::thread::spawn(move || {
            while writing.load(Ordering::SeqCst) {
                let ok = Command::new("psql")
                    .args([
                        "-X",
                        "-q",
                        "-d",
                        &url,
                        "-c",
                        "INSERT INTO drill_heartbeat VALUES (clock_timestamp())",
                    ])
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !ok {
                    break; // the primary is gone
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // The service's health endpoint in region B.
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("healthz"), "ok").unwrap();
    let http_port = free_port();
    let mut py = Command::new("python3");
    py.args([
        "-m",
        "http.server",
        &http_port.to_string(),
        "--bind",
        "127.0.0.1",
        "--directory",
        www.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    spawn_server(py);
    let dns = format!("127.0.0.1:{}", knot.port);
    let common = |secret: &str| -> Vec<String> {
        [
            format!("dns_server={dns}"),
            format!("tsig_secret={secret}"),
            format!("standby={}", standby.url("postgres")),
            format!(
                "stop_region_a={} -D {} stop -m immediate",
                Pg::pg_ctl(),
                primary.dir.join("data").display()
            ),
            format!("health_url=http://127.0.0.1:{http_port}/healthz"),
        ]
        .into_iter()
        .flat_map(|v| ["--var".to_string(), v])
        .collect()
    };

    // A wrong TSIG secret: the update is refused, with the cause, and DNS is unchanged.
    std::fs::write(
        dir.join("cutover.yaml"),
        "name: cutover\nsteps:\n  - { id: cut, owner: NetOps, timeout: 10s, kind: dns, server: \"${dns_server}\", zone: example.internal, tsig: { name: drctl, secret: \"${tsig_secret}\" }, update: { name: app.example.internal, data: [10.0.2.10] } }\n",
    )
    .unwrap();
    let mut args = vec![
        "run".to_string(),
        "cutover.yaml".into(),
        "--var".into(),
        format!("dns_server={dns}"),
        "--var".into(),
        "tsig_secret=d3Jvbmcgc2VjcmV0".into(),
    ];
    let o = drill_cmd(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("refused the update"), "{}", stdout(&o));
    assert_eq!(knot.dig("app.example.internal"), "10.0.1.10");
    let serial0 = knot.serial();

    // The drill, with rollback at the end so the game day leaves DNS as it found it.
    args = vec![
        "run".into(),
        "region-failure".into(),
        "--yes".into(),
        "--rollback".into(),
    ];
    args.extend(common(&knot.secret));
    let o = drill_cmd(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    writing.store(false, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let newest = pg_time(&standby.psql("postgres", "SELECT max(at) FROM drill_heartbeat"));
    let run = runs(&dir.join("ev"))
        .into_iter()
        .find(|p| p.parent().unwrap().ends_with("region-failure"))
        .unwrap();
    let r = report(&run);
    assert_eq!(step(&r, "dns-cutover")["status"], "passed");
    assert_eq!(step(&r, "dns-cutover")["group"], "failover");
    assert!(step(&r, "dns-answers-b")["output"]
        .as_str()
        .unwrap()
        .contains("10.0.2.10"));
    assert_eq!(step(&r, "dns-back-to-a")["status"], "passed");
    // Knot itself: two signed updates applied (cutover and rollback), name back on region A.
    assert_eq!(knot.dig("app.example.internal"), "10.0.1.10");
    assert_eq!(knot.serial(), serial0 + 2);
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()"), "f");
    // RPO from the newest row that survived in region B; RTO to the health check.
    assert_eq!(at(&r["durable_at"]), newest);
    let fault = at(&r["fault_at"]);
    assert!((r["rpo"]["seconds"].as_f64().unwrap() - secs(fault, newest)).abs() < 0.002);
    assert!(
        (r["rto"]["seconds"].as_f64().unwrap()
            - secs(at(&step(&r, "healthy")["finished_at"]), fault))
        .abs()
            < 0.002
    );
    assert_eq!(step(&r, "announce")["owner"], "Incident commander");
    // The report names every owner and marks the fault, recovery and target on the timeline.
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for want in [
        "Network on-call",
        "DBA on-call",
        "Service owner",
        ">fault<",
        ">recovered<",
        "RTO target 15m00s (beyond this scale)",
    ] {
        assert!(html.contains(want), "{want} missing from the HTML report");
    }
}

#[test]
fn redis_sentinel_failover_step_waits_for_the_new_master() {
    let dir = tempdir("drill-sentinel-");
    let (master, replica) = redis_pair(&dir);
    let port = master.port.to_string();
    let sport = free_port();
    let sdir = dir.join("s");
    std::fs::create_dir_all(&sdir).unwrap();
    let conf = sdir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!("port {sport}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {port} 1\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 10000\n", sdir.display()),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel").stdout(Stdio::null());
    spawn_server(cmd);
    let sentinel = |args: &[&str]| {
        let o = Command::new("redis-cli")
            .args(["-p", &sport.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    wait_until("sentinel knows the replica", || {
        sentinel(&["SENTINEL", "replicas", "mymaster"]).contains(&replica.port.to_string())
    });
    std::fs::write(
        dir.join("s.yaml"),
        "name: sentinel\nsteps:\n  - { id: failover, owner: SRE, timeout: 30s, kind: redis, url: \"${sentinel}\", sentinel_failover: mymaster, until_success: { every: 1s }, recovered: true }\n  - { id: writes, owner: QA, timeout: 10s, kind: redis, url: \"${replica}\", command: [SET, k, v], expect: OK, until_success: { every: 200ms } }\n",
    )
    .unwrap();
    let out = drill_cmd(
        &dir,
        &[
            "run",
            "s.yaml",
            "--var",
            &format!("sentinel=redis://127.0.0.1:{sport}"),
            "--var",
            &format!("replica={}", replica.url()),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let r = report(&runs(&dir.join("ev"))[0]);
    let got = step(&r, "failover")["output"].as_str().unwrap().to_string();
    assert!(
        got.contains(&format!("127.0.0.1:{port} → 127.0.0.1:{}", replica.port)),
        "{got}"
    );
    // Sentinel itself and the promoted server agree.
    assert!(
        sentinel(&["SENTINEL", "get-master-addr-by-name", "mymaster"])
            .contains(&replica.port.to_string())
    );
    assert!(replica
        .cli(&["INFO", "replication"])
        .contains("role:master"));
}
