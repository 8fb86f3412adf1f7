//! redis-server on a random loopback port.

use super::*;

/// A redis-server on a random loopback port, stopped with the test process group.
pub struct Redis {
    pub port: u16,
    pub pid: u32,
}

impl Redis {
    /// A redis-server on a random loopback port; `extra` are more `--name value` settings.
    pub fn start(dir: &Path, extra: &[&str]) -> Redis {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::null());
        let pid = spawn_server(cmd);
        let r = Redis { port, pid };
        let start = Instant::now();
        while r.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let o = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli (apt: redis-tools)");
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Feed commands (one per line) through redis-cli.
    pub fn feed(&self, db: u32, commands: &str) {
        let mut c = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-n", &db.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success());
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}
