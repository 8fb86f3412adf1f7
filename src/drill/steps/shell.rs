//! `shell`: run a command with `sh -c` in its own process group. A timeout or an abort kills
//! the whole group, so nothing it started outlives the step; a normal exit leaves daemons it
//! started alone (e.g. `pg_ctl start`).

use super::{excerpt, same, Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

const KEEP: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shell {
    /// The command line, run by `sh -c`.
    pub run: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Exit status that counts as success.
    #[serde(default)]
    pub expect_exit: i32,
    /// When set, stdout (trimmed) must equal this.
    #[serde(default)]
    pub expect_stdout: Option<String>,
}

/// Kills the process group when dropped before the command finished.
struct GroupGuard {
    pid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

fn collect(
    r: Option<impl AsyncRead + Unpin + Send + 'static>,
) -> (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    let task = tokio::spawn(async move {
        let Some(mut r) = r else { return };
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut b = sink.lock().unwrap_or_else(|p| p.into_inner());
            let room = KEEP.saturating_sub(b.len());
            b.extend_from_slice(&chunk[..n.min(room)]);
        }
    });
    (buf, task)
}

#[async_trait::async_trait]
impl StepKind for Shell {
    fn describe(&self) -> String {
        format!("sh -c {:?}", self.run)
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let line = ctx.expand("run", &self.run)?;
        let mut cmd = tokio::process::Command::new("sh");
        // The base set and what the step declares (`env:`), never drctl's whole environment.
        crate::source::process::confine_env(&mut cmd, &[]);
        cmd.arg("-c")
            .arg(&line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .env("DRCTL_STEP_ID", &ctx.step_id);
        for (k, v) in &self.env {
            cmd.env(k, ctx.expand(&format!("env.{k}"), v)?);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::failed(format!("cannot start sh: {e}")))?;
        let mut guard = GroupGuard {
            pid: child.id().map(|p| p as i32),
        };
        let (out, out_task) = collect(child.stdout.take());
        let (err, err_task) = collect(child.stderr.take());
        let status = child.wait().await?;
        guard.pid = None;
        // A background process may hold the pipes open: take what came, do not wait for EOF.
        for t in [out_task, err_task] {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_millis(300), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        };
        let (stdout, stderr) = (text(&out), text(&err));
        let code = status.code().unwrap_or(-1);
        let shown = if stdout.trim().is_empty() {
            &stderr
        } else {
            &stdout
        };
        if code != self.expect_exit {
            let how = match status.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".to_string(),
            };
            let tail: String = stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(Error::failed(format!(
                "command {how} (expected {}){}",
                self.expect_exit,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            )));
        }
        let trimmed = stdout.trim().to_string();
        if let Some(want) = &self.expect_stdout {
            let want = ctx.expand("expect_stdout", want)?;
            if !same(&trimmed, &want) {
                return Err(Error::failed(format!(
                    "stdout was {:?}, expected {want:?}",
                    excerpt(&trimmed, 200)
                )));
            }
        }
        Ok(Outcome {
            excerpt: excerpt(shown.trim(), 2000),
            ..Default::default()
        }
        .with("stdout", trimmed.clone())
        .with("value", trimmed.lines().next().unwrap_or("").to_string())
        .with("exit_code", code.to_string()))
    }
}
