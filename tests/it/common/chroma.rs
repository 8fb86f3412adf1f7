//! A real Chroma server from the venv `scripts/deps.sh` installs.

use super::*;

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
        // Listening is not ready: under load the port opens before the API answers.
        wait_for("chroma", Duration::from_secs(60), || heartbeat(port));
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

/// Whether Chroma's `/api/v2/heartbeat` answers 200.
fn heartbeat(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /api/v2/heartbeat HTTP/1.0\r\nHost: localhost\r\n\r\n"
    );
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200")
}
