//! Azurite (npm `azurite`, Microsoft's Azure Storage emulator; installed by `scripts/deps.sh`)
//! for the azblob store, and the GCS emulator (PyPI `gcp-storage-emulator`). Each on a free
//! loopback port, with its own data; observed by `tests/tools/azure_blob.py` (Shared Key from
//! the documented algorithm, standard library only) and by the GCS JSON API over plain HTTP.

use super::*;

/// Azurite's well-known development account, the same in every installation.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const AZURITE_CONTAINER: &str = "drctl";

pub struct Azurite {
    pub endpoint: String,
}

fn cache_dir(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap())
            .join(".cache/drctl")
            .join(default)
    })
}

impl Azurite {
    fn start() -> Azurite {
        let dir = tempdir("azurite-");
        let port = free_port();
        let mut cmd = Command::new(
            cache_dir("DRCTL_AZURITE_DIR", "azurite").join("node_modules/.bin/azurite-blob"),
        );
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
        ])
        .arg(&dir)
        .args(["--silent", "--skipApiVersionCheck"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("azurite.log")).unwrap());
        spawn_server(cmd);
        wait_for("azurite", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let a = Azurite {
            endpoint: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        };
        a.tool(&["create-container", AZURITE_CONTAINER]);
        a
    }

    /// Run the observer; its stdout.
    pub fn tool(&self, args: &[&str]) -> String {
        let o = run(Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/tools/azure_blob.py"
            ))
            .args([&self.endpoint, AZURITE_ACCOUNT, AZURITE_KEY])
            .args(args));
        stdout(&o)
    }

    /// Blobs under `prefix`: (name, size, committed), uncommitted uploads included.
    pub fn blobs(&self, prefix: &str) -> Vec<(String, u64, bool)> {
        self.tool(&["list", AZURITE_CONTAINER, prefix])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), f[1].parse().unwrap(), f[2] == "committed")
            })
            .collect()
    }

    /// An azblob region flow map for this Azurite, under `root`, with more fields.
    pub fn region(&self, name: &str, root: &str, extra: &str) -> String {
        format!(
            "{{ name: {name}, kind: azblob, container: {AZURITE_CONTAINER}, root: {root}, endpoint: \"{}\", access_key_id: {AZURITE_ACCOUNT}, secret_access_key: \"${{TEST_AZURE_KEY}}\"{extra} }}",
            self.endpoint
        )
    }
}

pub static AZURITE: OnceLock<Azurite> = OnceLock::new();

pub fn azurite() -> &'static Azurite {
    AZURITE.get_or_init(Azurite::start)
}

pub struct GcsEmulator {
    pub endpoint: String,
    pub bucket: String,
}

impl GcsEmulator {
    fn start() -> GcsEmulator {
        let port = free_port();
        let mut cmd =
            Command::new(cache_dir("DRCTL_GCS_VENV", "gcs-venv").join("bin/gcp-storage-emulator"));
        cmd.args([
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--in-memory",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        spawn_server(cmd);
        wait_for("gcp-storage-emulator", Duration::from_secs(60), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let g = GcsEmulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "drctl".into(),
        };
        let url = format!("{}/storage/v1/b?project=drctl-tests", g.endpoint);
        let made = http_json("POST", &url, &format!("{{\"name\":\"{}\"}}", g.bucket));
        assert_eq!(made["kind"], "storage#bucket", "{made}");
        g
    }

    /// Object names under `prefix`, from the JSON API (an observer outside OpenDAL).
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let url = format!(
            "{}/storage/v1/b/{}/o?prefix={prefix}",
            self.endpoint, self.bucket
        );
        let v = http_json("GET", &url, "");
        let mut out: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    /// A gcs region flow map for the emulator: anonymous (it checks no credentials), and with
    /// a storage class so that OpenDAL sends each object's metadata (the emulator records no
    /// content type for bare media uploads, and OpenDAL refuses to list such objects).
    pub fn region(&self, name: &str, root: &str) -> String {
        format!(
            "{{ name: {name}, kind: gcs, bucket: {}, root: {root}, endpoint: \"{}\", options: {{ allow_anonymous: \"true\", disable_vm_metadata: \"true\", disable_config_load: \"true\", default_storage_class: STANDARD }} }}",
            self.bucket, self.endpoint
        )
    }
}

pub static GCS: OnceLock<GcsEmulator> = OnceLock::new();

pub fn gcs() -> &'static GcsEmulator {
    GCS.get_or_init(GcsEmulator::start)
}

/// One JSON API call with Python's standard library (no HTTP client is assumed on the machine).
fn http_json(method: &str, url: &str, body: &str) -> serde_json::Value {
    const SCRIPT: &str = "import sys, urllib.request\n\
        m, u, b = sys.argv[1:4]\n\
        r = urllib.request.Request(u, data=b.encode() if b else None, method=m, headers={'Content-Type': 'application/json'})\n\
        sys.stdout.write(urllib.request.urlopen(r).read().decode())";
    let o = run(Command::new("python3").args(["-c", SCRIPT, method, url, body]));
    serde_json::from_slice(&o.stdout).unwrap()
}
