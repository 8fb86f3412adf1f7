//! Command handlers: load what they need, call the library, print results.

mod backup;
mod config_cmd;
mod drill;
mod k8s;
mod prune;
mod restore;
mod status;
mod verify;

use crate::cli::{Cli, Command, Output};
use crate::config::Config;
use crate::error::Result;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub async fn dispatch(cli: Cli) -> Result<()> {
    let out = cli.output;
    let cfg_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("drctl.yaml"));
    match cli.command {
        Command::Backup(cmd) => backup::run(&Config::load(&cfg_path)?, cmd, out).await,
        Command::Restore(args) => restore::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Verify(args) => verify::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Status => status::run(&Config::load(&cfg_path)?, out).await,
        Command::Prune(args) => prune::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Schedule(args) => crate::schedule::run(&cfg_path, args.listen).await,
        Command::Drill(cmd) => drill::run(cli.config.as_deref(), &cfg_path, cmd, out).await,
        Command::K8s(crate::cli::K8sCmd::Render(args)) => k8s::run(&cfg_path, args),
        Command::Config(cmd) => config_cmd::run(&cfg_path, cmd, out),
    }
}

/// Cancelled on SIGINT or SIGTERM, so a run can abort its uploads and clean up before exit.
pub fn shutdown_token() -> CancellationToken {
    interrupt_tokens("aborting the run and cleaning up").0
}

/// Two tokens: the first is cancelled on the first SIGINT/SIGTERM (`first_does` says what
/// that does, in the log), the second on the next one (stop even the cleanup).
pub fn interrupt_tokens(first_does: &'static str) -> (CancellationToken, CancellationToken) {
    let (first, second) = (CancellationToken::new(), CancellationToken::new());
    let tokens = [first.clone(), second.clone()];
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        for (i, token) in tokens.into_iter().enumerate() {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            match i {
                0 => tracing::warn!("{name} received: {first_does}"),
                _ => tracing::warn!("{name} received again: stopping at once"),
            }
            token.cancel();
        }
    });
    (first, second)
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    println!("{}", crate::redact::scrub(&text));
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn is_text(out: Output) -> bool {
    out == Output::Text
}
