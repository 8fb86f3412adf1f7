//! Structured logs on stderr: human text on a terminal, JSON lines otherwise.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

pub fn init(format: Option<LogFormat>, verbose: u8, quiet: bool) {
    let default = match verbose {
        _ if quiet => "drctl=error",
        0 => "drctl=info",
        1 => "drctl=debug",
        _ => "drctl=trace,info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::progress::AboveBars(crate::redact::Scrubbing(std::io::stderr())));
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}
