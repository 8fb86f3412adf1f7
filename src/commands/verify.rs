use super::{is_text, print_json};
use crate::cli::{Level, Output, VerifyArgs};
use crate::config::{Config, VerifyLevel};
use crate::error::Result;
use crate::restore::Selector;
use crate::verify;

pub async fn run(cfg: &Config, args: VerifyArgs, out: Output) -> Result<()> {
    let job = cfg.job(&args.job)?;
    let level = match args.level {
        Some(Level::Checksum) => VerifyLevel::Checksum,
        Some(Level::Structure) => VerifyLevel::Structure,
        Some(Level::Restore) => VerifyLevel::Restore,
        None => job
            .verify
            .as_ref()
            .map_or(VerifyLevel::Structure, |v| v.level),
    };
    let sel = match args.backup.as_str() {
        "latest" => Selector::Latest,
        id => Selector::Id(id.to_string()),
    };
    let report = verify::run(cfg, job, &sel, level, super::progress_bars(out)).await?;
    if is_text(out) {
        println!(
            "{} backup {} (consistent at {}), level {}: {}",
            report.job,
            report.backup,
            report.consistent_at.format("%Y-%m-%dT%H:%M:%SZ"),
            report.level,
            if report.passed { "PASSED" } else { "FAILED" }
        );
        for c in &report.regions {
            println!(
                "  region {:<12} {}{}",
                c.region,
                c.copy,
                c.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        for (name, c) in [
            ("structure", &report.structure),
            ("restore", &report.restore),
        ] {
            if let Some(c) = c {
                println!(
                    "  {name:<19} {}: {}",
                    if c.ok { "ok" } else { "FAILED" },
                    c.detail
                );
            }
        }
    } else {
        print_json(&report)?;
    }
    if report.passed {
        Ok(())
    } else {
        Err(verify::failure(&report))
    }
}
