//! The Qdrant REST stub (`tests/tools/qdrant_stub.py`): no Qdrant server runs where drctl
//! is tested, so Qdrant's tests are contract tests against the documented API.

use super::*;
use std::io::{Read, Write};

pub const QDRANT_KEY: &str = "contract-test-key";

pub struct QdrantStub {
    pub port: u16,
}

impl QdrantStub {
    pub fn start(extra: &[&str]) -> QdrantStub {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/qdrant_stub.py"
        ))
        .args([&port.to_string(), QDRANT_KEY])
        .args(extra);
        spawn_server(cmd);
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "stub did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        QdrantStub { port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// GET with the API key; the JSON body's `result`.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\napi-key: {QDRANT_KEY}\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let body = resp.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str::<serde_json::Value>(body).unwrap()["result"].clone()
    }

    /// The requests drctl made (method, path, query, api-key), stub endpoints excluded.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        self.get("/_stub/log")
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c[1].as_str().unwrap().starts_with("/_stub"))
            .cloned()
            .collect()
    }

    pub fn snapshots_left(&self) -> usize {
        ["products", "reviews"]
            .iter()
            .map(|c| {
                self.get(&format!("/collections/{c}/snapshots"))
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum()
    }
}
