use super::{is_text, print_json};
use crate::backup::open_regions;
use crate::cli::Output;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::status::job_status;

pub async fn run(cfg: &Config, out: Output) -> Result<()> {
    let regions = open_regions(cfg)?;
    let now = chrono::Utc::now();
    let mut all = Vec::new();
    for job in &cfg.jobs {
        all.push(job_status(cfg, &regions, job, now).await?);
    }
    if is_text(out) {
        println!(
            "{:<14} {:<24} {:<24} {:<12} {:<12} {:<10} COPIES",
            "JOB", "NEWEST", "NEWEST VERIFIED", "RPO EXPOSED", "RPO TARGET", "RESTORE"
        );
        let dur = |s: Option<f64>| {
            s.map_or("-".to_string(), |s| {
                humantime::format_duration(std::time::Duration::from_secs(s.max(0.0) as u64))
                    .to_string()
            })
        };
        for s in &all {
            println!(
                "{:<14} {:<24} {:<24} {:<12} {:<12} {:<10} {}{}",
                s.job,
                s.newest_complete.as_deref().unwrap_or("-"),
                s.newest_verified.as_deref().unwrap_or("-"),
                s.rpo_exposure_seconds
                    .map_or("unbounded".into(), |e| dur(Some(e))),
                dur(s.rpo_target_seconds),
                s.last_restore_test_seconds
                    .map_or("-".into(), |t| format!("{t:.1}s")),
                s.newest_copies
                    .iter()
                    .map(|(r, h)| format!("{r}:{}", if *h { "yes" } else { "no" }))
                    .collect::<Vec<_>>()
                    .join(" "),
                if s.rpo_breached { "  RPO BREACHED" } else { "" }
            );
        }
    } else {
        print_json(&all)?;
    }
    let breached: Vec<&str> = all
        .iter()
        .filter(|s| s.rpo_breached)
        .map(|s| s.job.as_str())
        .collect();
    let mut unread: Vec<&str> = all
        .iter()
        .flat_map(|s| s.unreachable_regions.iter().map(String::as_str))
        .collect();
    unread.sort();
    unread.dedup();
    if is_text(out) {
        for r in &unread {
            println!("(region {r} could not be read: the figures above leave it out)");
        }
    }
    if breached.is_empty() && !unread.is_empty() {
        return Err(Error::failed(format!(
            "the status is incomplete: region(s) {} could not be read",
            unread.join(", ")
        ))
        .hint("bring the region back (the warning above says why it could not be read)"));
    }
    if breached.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(format!("RPO breached: {}", breached.join(", ")))
            .hint("run `drctl backup run JOB` (and `drctl verify JOB` where the job verifies), then check the schedule"))
    }
}
