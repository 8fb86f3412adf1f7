//! Child processes (pg_dump, pg_restore): own process group so a kill takes every child,
//! stderr kept as a bounded tail for error messages, exit status checked after EOF.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const STDERR_LINES: usize = 20;

/// What every child process inherits from drctl's environment, and nothing else: drctl's
/// own environment holds credentials for every region and job (`${VAR}`s), which no child
/// needs. Documented in docs/architecture.md (and docs/drills.md for shell steps).
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG", "LANGUAGE",
];

/// Clear `cmd`'s environment down to `BASE_ENV`, the locale (`LC_*`) and any variable that
/// starts with one of `prefixes` (e.g. `PG` for libpq's own settings); the caller then adds
/// what the child needs (e.g. `PGPASSWORD`).
pub fn confine_env(cmd: &mut Command, prefixes: &[&str]) {
    cmd.env_clear();
    for (k, v) in std::env::vars_os() {
        let Some(name) = k.to_str() else { continue };
        if BASE_ENV.contains(&name)
            || name.starts_with("LC_")
            || prefixes.iter().any(|p| name.starts_with(p))
        {
            cmd.env(&k, &v);
        }
    }
}

/// A spawned tool with its stderr being collected.
pub struct Proc {
    pub name: String,
    pub child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
}

impl Proc {
    /// Spawn `cmd` in its own process group with stderr captured; stdin/stdout as set by caller.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        cmd.stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            Error::failed(format!("cannot start {name}: {e}")).hint(format!(
                "install {name} (Debian: postgresql-client) or set its path in the job's source"
            ))
        })?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = child.stderr.take().map(|err| {
            let sink = stderr.clone();
            let tool = name.to_string();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(tool = %tool, "{line}");
                    let mut q = sink.lock().unwrap_or_else(|p| p.into_inner());
                    if q.len() == STDERR_LINES {
                        q.pop_front();
                    }
                    q.push_back(line);
                }
            })
        });
        Ok(Proc {
            name: name.to_string(),
            child,
            stderr,
            stderr_task,
        })
    }

    /// Wait for exit; a non-zero status becomes an error quoting the tool's last stderr lines.
    pub async fn wait_success(&mut self) -> Result<()> {
        let status = self.child.wait().await?;
        if let Some(t) = self.stderr_task.take() {
            let _ = t.await;
        }
        if status.success() {
            Ok(())
        } else {
            Err(Error::failed(format!(
                "{} {}{}",
                self.name,
                describe(status),
                self.stderr_tail()
            )))
        }
    }

    /// Read stdout to its end (the caller piped it) and wait, failing like `wait_success`.
    pub async fn stdout_text(mut self) -> Result<String> {
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out).await?;
        }
        self.wait_success().await?;
        Ok(out)
    }

    pub fn stderr_tail(&self) -> String {
        let q = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        if q.is_empty() {
            String::new()
        } else {
            format!(": {}", q.iter().cloned().collect::<Vec<_>>().join(" | "))
        }
    }

    /// Kill the whole process group and reap the child.
    pub async fn kill(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
        }
        let _ = self.child.kill().await;
        if let Some(t) = self.stderr_task.take() {
            t.abort();
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".to_string(),
    }
}

/// Major version from a `--version` line such as `pg_dump (PostgreSQL) 15.18 (Debian ...)`.
pub fn major_version(version_line: &str) -> Option<u32> {
    version_line.split_whitespace().find_map(|w| {
        w.split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .filter(|_| w.contains('.') || w.chars().all(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_tool_versions() {
        assert_eq!(
            super::major_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(super::major_version("pg_dump (PostgreSQL) 17beta1"), None);
        assert_eq!(
            super::major_version("pg_restore (PostgreSQL) 9.6.24"),
            Some(9)
        );
    }
}
