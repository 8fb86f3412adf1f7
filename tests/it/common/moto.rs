//! moto's server (`tests/tools/moto_server.py`, from the venv `scripts/deps.sh` installs) for
//! the *contract tests* of what Garage lacks: S3 Object Lock, STS web identity, Route53. It
//! enforces SigV4 against its IAM: only its `observer` user's keys and credentials its STS
//! issued for the role `drctl-backup` are accepted.

use super::*;

pub struct Moto {
    pub endpoint: String,
    pub role_arn: String,
    pub zone_id: String,
    observer: (String, String),
    /// Every WebIdentityToken moto's STS was given, one per line.
    pub seen_tokens: PathBuf,
}

fn moto_venv() -> PathBuf {
    std::env::var_os("DRCTL_MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/drctl/moto-venv")
        })
}

impl Moto {
    fn start() -> Moto {
        let dir = tempdir("moto-");
        let (facts, seen) = (dir.join("facts.json"), dir.join("seen-tokens"));
        let mut cmd = Command::new(moto_venv().join("bin/python"));
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/moto_server.py"
        ))
        .args([&facts, &seen])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("moto.log")).unwrap());
        spawn_server(cmd);
        wait_for("moto", Duration::from_secs(60), || facts.exists());
        let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&facts).unwrap()).unwrap();
        let s = |k: &str| f[k].as_str().unwrap().to_string();
        Moto {
            endpoint: format!("http://127.0.0.1:{}", f["port"]),
            role_arn: s("role_arn"),
            zone_id: s("zone_id"),
            observer: (s("observer_key_id"), s("observer_secret")),
            seen_tokens: seen,
        }
    }

    /// The aws CLI as moto's `observer` user, independent of drctl's signing.
    pub fn aws(&self, args: &[&str]) -> Output {
        aws_cli(
            &self.endpoint,
            "us-east-1",
            (&self.observer.0, &self.observer.1),
        )
        .args(args)
        .output()
        .expect("aws CLI (pip install awscli)")
    }

    /// `aws s3api …` that must succeed, its JSON answer (`null` when it printed nothing).
    pub fn s3api(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["s3api"];
        a.extend_from_slice(args);
        let o = self.aws(&a);
        assert!(o.status.success(), "s3api {args:?}: {}", stderr(&o));
        if o.stdout.iter().all(|b| b.is_ascii_whitespace()) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Every version and delete marker under `prefix` of `bucket`: (key, version id).
    pub fn versions(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let v = self.s3api(&[
            "list-object-versions",
            "--bucket",
            bucket,
            "--prefix",
            prefix,
        ]);
        let mut out = Vec::new();
        for field in ["Versions", "DeleteMarkers"] {
            for o in v[field].as_array().into_iter().flatten() {
                out.push((
                    o["Key"].as_str().unwrap().to_string(),
                    o["VersionId"].as_str().unwrap_or("null").to_string(),
                ));
            }
        }
        out.sort();
        out
    }

    /// The identity a pod gets under IRSA: a role and a projected token file, nothing else.
    /// Applied to a drctl command, with `HOME` an empty directory (no shared profile).
    pub fn web_identity(&self, cmd: &mut Command, token_file: &Path) {
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ] {
            cmd.env_remove(k);
        }
        let home = token_file.with_file_name("home");
        std::fs::create_dir_all(&home).unwrap();
        cmd.env("HOME", home)
            .env("AWS_ROLE_ARN", &self.role_arn)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", token_file)
            .env("AWS_ROLE_SESSION_NAME", "drctl-test")
            .env("AWS_ENDPOINT_URL_STS", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

pub static MOTO: OnceLock<Moto> = OnceLock::new();

pub fn moto() -> &'static Moto {
    MOTO.get_or_init(Moto::start)
}
