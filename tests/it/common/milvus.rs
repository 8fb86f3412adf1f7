//! Real Milvus servers from the venvs `scripts/deps.sh` installs: the embedded standalone
//! server (PyPI `milvus` 2.3.5) inside a network namespace the harness creates, since it binds
//! every interface; and `milvus-lite` 3.2.2 on loopback. pymilvus, through
//! `tests/tools/milvus_observe.py`, is the independent observer.

use super::*;

fn venv(name: &str, var: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap())
            .join(".cache/drctl")
            .join(name)
    })
}

/// The venv of the embedded Milvus server (`DRCTL_MILVUS_VENV` overrides).
pub fn milvus_venv() -> PathBuf {
    venv("milvus-venv", "DRCTL_MILVUS_VENV")
}

/// The venv of milvus-lite (`DRCTL_MILVUS_LITE_VENV` overrides).
pub fn milvus_lite_venv() -> PathBuf {
    venv("milvus-lite-venv", "DRCTL_MILVUS_LITE_VENV")
}

/// A Milvus server and the pymilvus that observes it.
#[derive(Clone)]
pub struct Milvus {
    /// `http://host:port`, without a database.
    pub url: String,
    venv: PathBuf,
    /// Where the gRPC port is, for a proxy in front of it.
    pub addr: String,
    /// The observer's connection options (`--token`, `--ca`), before its command.
    observer: Vec<String>,
}

impl Milvus {
    /// The embedded standalone server, one per test process, in its own network namespace.
    pub fn embedded() -> &'static Milvus {
        static M: OnceLock<Milvus> = OnceLock::new();
        M.get_or_init(|| Milvus::in_namespace(|_, _| (Vec::new(), Vec::new())))
    }

    /// A second embedded server with authentication on (user `root`, password `Milvus`, the
    /// server's default) and one-way TLS from a throwaway CA (its file: `ca_file()`).
    pub fn secured() -> &'static Milvus {
        static M: OnceLock<Milvus> = OnceLock::new();
        M.get_or_init(|| {
            Milvus::in_namespace(|dir, ip| {
                let pki = Pki::for_ip(&dir.join("pki"), "drctl-milvus-ca", ip);
                let server = vec![
                    "--authorization-enabled".into(),
                    "true".into(),
                    "--tls-mode".into(),
                    "1".into(),
                    "--server-pem-path".into(),
                    pki.file("server.crt"),
                    "--server-key-path".into(),
                    pki.file("server.key"),
                ];
                let observer = vec![
                    "--token".into(),
                    "root:Milvus".into(),
                    "--ca".into(),
                    pki.file("ca.crt"),
                ];
                (server, observer)
            })
        })
    }

    /// The CA file the secured server's certificate chains to.
    pub fn ca_file(&self) -> String {
        self.observer[3].clone()
    }

    /// Start `milvus-server` in a fresh namespace; `args(dir, ip)` gives the server's extra
    /// arguments and the observer's connection options (TLS when there are any).
    fn in_namespace(args: impl FnOnce(&Path, &str) -> (Vec<String>, Vec<String>)) -> Milvus {
        let idx = (1..250)
            .map(|i| (std::process::id() as usize + i) % 250 + 1)
            .find(|i| !Path::new(&format!("/run/netns/drctl-mv{i}")).exists())
            .expect("a free network namespace index");
        let dir = tempdir("milvus-");
        let host = format!("10.231.{idx}.2");
        let (server_args, observer) = args(&dir, &host);
        // Not tied to this process by PDEATHSIG: the script outlives it on purpose, to
        // remove the namespace once this process is gone.
        let mut script = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/milvus_netns.sh"
        ))
        .arg(idx.to_string())
        .arg(dir.join("data"))
        .arg(std::process::id().to_string())
        .arg(milvus_venv())
        .args(&server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tests/tools/milvus_netns.sh");
        std::thread::spawn(move || script.wait());
        // The gRPC port opens before the server is ready: wait for its health endpoint.
        wait_for(
            "milvus (embedded, in its namespace)",
            Duration::from_secs(180),
            || http_ok(&host, 9091, "/healthz"),
        );
        let scheme = if observer.is_empty() { "http" } else { "https" };
        Milvus {
            url: format!("{scheme}://{host}:19530"),
            venv: milvus_venv(),
            addr: format!("{host}:19530"),
            observer,
        }
    }

    /// milvus-lite on a random loopback port, with its own data directory.
    pub fn lite(dir: &Path) -> Milvus {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut cmd = Command::new(milvus_lite_venv().join("bin/milvus-lite"));
        cmd.args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        spawn_server(cmd);
        let m = Milvus {
            url: format!("http://127.0.0.1:{port}"),
            venv: milvus_lite_venv(),
            addr: format!("127.0.0.1:{port}"),
            observer: Vec::new(),
        };
        wait_for("milvus-lite", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && m.try_tool(&["list"]).is_some()
        });
        m
    }

    /// `URL/db`: where a restore into database `db` goes (`--to`).
    pub fn db_url(&self, db: &str) -> String {
        format!("{}/{db}", self.url)
    }

    fn try_tool(&self, args: &[&str]) -> Option<String> {
        let o = Command::new(self.venv.join("bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tools/milvus_observe.py"
            ))
            .arg(&self.url)
            .args(&self.observer)
            .args(args)
            .output()
            .ok()?;
        o.status.success().then(|| stdout(&o))
    }

    /// Run the observer (`tests/tools/milvus_observe.py URL ARGS…`).
    pub fn tool(&self, args: &[&str]) -> String {
        let o = run(Command::new(self.venv.join("bin/python"))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tools/milvus_observe.py"
            ))
            .arg(&self.url)
            .args(&self.observer)
            .args(args));
        stdout(&o)
    }

    /// Create database `db` and the collections `spec` (the observer's seed JSON) describes.
    pub fn seed(&self, db: &str, spec: &serde_json::Value) {
        let file = tempdir("milvus-seed-").join("spec.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        self.tool(&["--db", db, "seed", file.to_str().unwrap()]);
    }

    /// The observer's canonical dump of every collection of `db`.
    pub fn digest(&self, db: &str, extra: &[&str]) -> String {
        let mut args = vec!["--db", db, "digest"];
        args.extend_from_slice(extra);
        self.tool(&args)
    }

    /// The collections of `db`, one per line.
    pub fn list(&self, db: &str) -> String {
        self.tool(&["--db", db, "list"])
    }
}

/// Whether `GET path` on `host:port` answers 200.
fn http_ok(host: &str, port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let addr = format!("{host}:{port}");
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200")
}
