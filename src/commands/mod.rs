//! Command handlers: load what they need, call the library, print results.

mod backup;
mod catalog;
mod config_cmd;
mod drill;
mod history;
mod k8s;
mod prune;
mod report;
mod restore;
mod status;
mod verify;

use crate::cli::{Cli, Command, Output};
use crate::config::Config;
use crate::error::Result;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// `--no-progress` / `--quiet`: no progress bars, even on a terminal.
static NO_PROGRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether progress bars may be drawn (a terminal, and not turned off).
pub fn progress_bars(out: Output) -> bool {
    use std::io::IsTerminal;
    is_text(out)
        && !NO_PROGRESS.load(std::sync::atomic::Ordering::Relaxed)
        && std::io::stderr().is_terminal()
}

/// Where the config is: `-c FILE` (or `$DRCTL_CONFIG`, which clap folds into it), else
/// `./drctl.yaml`, else `/etc/drctl/drctl.yaml` when that exists. Errors about a missing
/// file name `./drctl.yaml`.
pub fn config_path(explicit: Option<&std::path::Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    let local = PathBuf::from("drctl.yaml");
    let system = PathBuf::from("/etc/drctl/drctl.yaml");
    if !local.exists() && system.exists() {
        system
    } else {
        local
    }
}

pub async fn dispatch(cli: Cli) -> Result<()> {
    let out = cli.output;
    NO_PROGRESS.store(
        cli.no_progress || cli.quiet,
        std::sync::atomic::Ordering::Relaxed,
    );
    let cfg_path = config_path(cli.config.as_deref());
    match cli.command {
        Command::Completion { shell } => {
            let mut cmd = crate::cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "drctl", &mut script);
            write_stdout(&script)
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::Backup(cmd) => backup::run(&Config::load(&cfg_path)?, cmd, out).await,
        Command::Restore(args) => restore::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Verify(args) => verify::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Status => status::run(&Config::load(&cfg_path)?, out).await,
        Command::Report(args) => report::run(&Config::load(&cfg_path)?, args, out).await,
        Command::Prune(args) => prune::run(&Config::load(&cfg_path)?, args, out).await,
        Command::History { job } => history::run(&Config::load(&cfg_path)?, &job, out).await,
        Command::Catalog(cmd) => catalog::run(&Config::load(&cfg_path)?, cmd, out).await,
        Command::Schedule(args) => crate::schedule::run(&cfg_path, args.listen).await,
        Command::Drill(cmd) => drill::run(cli.config.as_deref(), &cfg_path, cmd, out).await,
        Command::K8s(crate::cli::K8sCmd::Render(args)) => k8s::run(&cfg_path, args),
        Command::Config(cmd) => config_cmd::run(&cfg_path, cmd, out),
    }
}

/// `drctl man`: the top page on stdout, or every command's page into `dir`.
/// The pages carry the release version, not the git revision, so the copies kept in
/// `docs/man/` change only when the command line does.
fn man(dir: Option<&std::path::Path>) -> Result<()> {
    let cmd = crate::cli::command().version(env!("CARGO_PKG_VERSION"));
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            write_stdout(&page)
        }
        Some(d) => {
            std::fs::create_dir_all(d)?;
            clap_mangen::generate_to(cmd, d)?;
            Ok(())
        }
    }
}

/// Write to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
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
