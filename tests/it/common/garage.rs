//! Garage, the S3-compatible store, with the aws CLI as the independent observer of what is
//! in the bucket (unfinished multipart uploads included).

use super::*;

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
        kill_server(pid);
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
        aws_cli(&self.endpoint, GARAGE_REGION, (&self.key_id, &self.secret))
            .args(args)
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

pub static GARAGE: OnceLock<Garage> = OnceLock::new();

pub fn garage() -> &'static Garage {
    GARAGE.get_or_init(Garage::start)
}
