//! PostgreSQL from the installed server binaries: initdb + postgres on a random port in a
//! temp dir (as `nobody` when the tests run as root, since PostgreSQL refuses root).

use super::*;

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
