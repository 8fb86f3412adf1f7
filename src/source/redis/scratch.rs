//! `--level restore` for Redis: a temporary `redis-server` (the `verify.scratch` binary,
//! default `redis-server` on PATH) on a free loopback port, no persistence, in a temporary
//! directory; every key replayed into it with the same code path as `drctl restore`; keys per
//! db compared with the manifest's facts; the server killed and its directory removed always.

use crate::error::{Error, Result};
use crate::source::kind::Scratch;
use crate::source::RestoreOptions;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub async fn check(scratch: &dyn Scratch) -> Result<(f64, String)> {
    let server = scratch.target().unwrap_or("redis-server");
    let dir = tempfile::tempdir().map_err(|e| Error::failed(format!("scratch directory: {e}")))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::failed(format!("no free loopback port: {e}")))?
        .port();
    let mut cmd = tokio::process::Command::new(server);
    crate::source::process::confine_env(&mut cmd, &[]);
    let mut child = cmd
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::usage(format!("cannot start the scratch Redis ({server}): {e}"))
                .hint("install redis-server, or set verify.scratch to its path")
        })?;
    let url = format!("redis://127.0.0.1:{port}");
    let result = async {
        let ready = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if ready.elapsed() > Duration::from_secs(15) {
                return Err(Error::failed(format!(
                    "the scratch Redis on port {port} did not start in 15 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        compare(scratch, &url).await
    }
    .await;
    let _ = child.kill().await;
    result
}

async fn compare(scratch: &dyn Scratch, url: &str) -> Result<(f64, String)> {
    let t = Instant::now();
    let opts = RestoreOptions {
        jobs: 1,
        ..RestoreOptions::default()
    };
    scratch.restore(url, opts).await?;
    let secs = t.elapsed().as_secs_f64();
    let got = super::keys_per_db(url).await?;
    let m = scratch.manifest();
    let facts = m.artifacts.first().map(|a| &a.facts["dbs"]);
    let want: std::collections::BTreeMap<String, u64> = facts
        .and_then(|d| d.as_object())
        .map(|o| {
            o.iter()
                .filter_map(|(db, f)| Some((db.clone(), f["keys"].as_u64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default();
    if got != want {
        return Err(Error::failed(format!(
            "keys per db differ: restored {got:?}, the manifest says {want:?}"
        )));
    }
    let keys: u64 = got.values().sum();
    Ok((secs, format!("replayed {keys} keys into a scratch redis-server at {url}, keys per db equal to the manifest's, in {secs:.1}s")))
}
