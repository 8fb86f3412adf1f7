use super::{human_bytes, is_text, print_json};
use crate::backup::open_regions;
use crate::cli::Output;
use crate::config::Config;
use crate::error::{Error, Result};

pub async fn run(cfg: &Config, job: &str, out: Output) -> Result<()> {
    let job = &cfg.job(job)?.name.0;
    // From the catalog when there is one (the same rows, `history::assemble`), else from the
    // regions.
    let (rows, unreachable) = if cfg.catalog.is_some() {
        (crate::catalog::history(cfg, job).await?, Vec::new())
    } else {
        crate::history::from_repository(&open_regions(cfg)?, job).await?
    };
    if is_text(out) {
        println!(
            "{:<24} {:<20} {:>9} {:>10} {:>10} {:>6}  {:<16} {:<12} RESTORE",
            "BACKUP", "CONSISTENT AT", "DURATION", "RAW", "STORED", "RATIO", "COPIES", "VERIFIED"
        );
        for r in &rows {
            let v = r.verification.as_ref();
            println!(
                "{:<24} {:<20} {:>8.1}s {:>10} {:>10} {:>6}  {:<16} {:<12} {}",
                r.id,
                r.consistent_at.format("%Y-%m-%d %H:%M:%S"),
                r.duration_seconds,
                human_bytes(r.raw_bytes),
                human_bytes(r.stored_bytes),
                r.compression_ratio
                    .map_or("-".into(), |c| format!("{c:.2}")),
                r.regions.join(","),
                v.map_or("-".into(), |v| format!(
                    "{} {}",
                    v.level,
                    if v.passed { "ok" } else { "FAILED" }
                )),
                v.and_then(|v| v.restore_seconds)
                    .map_or("-".into(), |s| format!("{s:.1}s")),
            );
        }
    } else {
        print_json(
            &serde_json::json!({ "job": job, "backups": rows, "unreachable_regions": unreachable }),
        )?;
    }
    if unreachable.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "the history is incomplete: region(s) {} could not be read",
            unreachable.join(", ")
        ))
        .hint("bring the region back (its error is above), or pass -c with a config without it"))
    }
}
