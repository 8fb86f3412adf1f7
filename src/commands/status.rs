use super::{is_text, print_json};
use crate::backup::open_regions;
use crate::cli::Output;
use crate::config::Config;
use crate::drill::measure::fmt_secs;
use crate::error::{Error, Result};
use crate::status::{drill_restores, job_status, JobStatus};

pub async fn run(cfg: &Config, out: Output) -> Result<()> {
    let regions = open_regions(cfg)?;
    let now = chrono::Utc::now();
    let (drills, drills_unread) = drill_restores(&regions).await;
    let mut all = Vec::new();
    for job in &cfg.jobs {
        all.push(job_status(cfg, &regions, job, &drills, now).await?);
    }
    if is_text(out) {
        print_table(&all);
    } else {
        print_json(&all)?;
    }
    let rpo: Vec<&str> = all
        .iter()
        .filter(|s| s.rpo_breached)
        .map(|s| s.job.as_str())
        .collect();
    let rto: Vec<&str> = all
        .iter()
        .filter(|s| s.rto_breached)
        .map(|s| s.job.as_str())
        .collect();
    let mut unread: Vec<&str> = all
        .iter()
        .flat_map(|s| s.unreachable_regions.iter().map(String::as_str))
        .chain(drills_unread.iter().map(String::as_str))
        .collect();
    unread.sort();
    unread.dedup();
    if is_text(out) {
        for r in &unread {
            println!("(region {r} could not be read: the figures above leave it out)");
        }
        for s in all.iter().filter(|s| s.rto_note.is_some()) {
            println!("({}: {})", s.job, s.rto_note.as_deref().unwrap_or_default());
        }
    }
    let mut breaches = Vec::new();
    if !rpo.is_empty() {
        breaches.push(format!("RPO breached: {}", rpo.join(", ")));
    }
    if !rto.is_empty() {
        breaches.push(format!("RTO breached or not measured: {}", rto.join(", ")));
    }
    if breaches.is_empty() && !unread.is_empty() {
        return Err(Error::failed(format!(
            "the status is incomplete: region(s) {} could not be read",
            unread.join(", ")
        ))
        .hint("bring the region back (the warning above says why it could not be read)"));
    }
    if breaches.is_empty() {
        return Ok(());
    }
    let hint = match (rpo.is_empty(), rto.is_empty()) {
        (false, true) => "run `drctl backup run JOB` (and `drctl verify JOB` where the job verifies), then check the schedule",
        (true, false) => "time a restore with `drctl verify JOB --level restore` (or a drill's restore step); if it stays over the target, restore faster (`--jobs N`) or revise the job's rto",
        _ => "RPO: run `drctl backup run JOB` and check the schedule; RTO: time a restore with `drctl verify JOB --level restore`",
    };
    Err(Error::failed(breaches.join("; ")).hint(hint))
}

fn print_table(all: &[JobStatus]) {
    println!(
        "{:<14} {:<24} {:<24} {:<12} {:<12} {:<14} {:<10} COPIES",
        "JOB",
        "NEWEST",
        "NEWEST VERIFIED",
        "RPO EXPOSED",
        "RPO TARGET",
        "RTO MEASURED",
        "RTO TARGET"
    );
    let dur = |s: Option<f64>| {
        s.map_or("-".to_string(), |s| {
            humantime::format_duration(std::time::Duration::from_secs(s.max(0.0) as u64))
                .to_string()
        })
    };
    for s in all {
        let measured = match (&s.rto_measured, s.rto_state) {
            (Some(m), _) => fmt_secs(m.seconds),
            (None, crate::status::RtoState::NotMeasured) => "not measured".into(),
            (None, _) => "-".into(),
        };
        let mut flags = String::new();
        if s.rpo_breached {
            flags.push_str("  RPO BREACHED");
        }
        match s.rto_state {
            crate::status::RtoState::Breached => flags.push_str("  RTO BREACHED"),
            crate::status::RtoState::NotMeasured => flags.push_str("  RTO NOT MEASURED"),
            _ => {}
        }
        println!(
            "{:<14} {:<24} {:<24} {:<12} {:<12} {:<14} {:<10} {}{}",
            s.job,
            s.newest_complete.as_deref().unwrap_or("-"),
            s.newest_verified.as_deref().unwrap_or("-"),
            s.rpo_exposure_seconds
                .map_or("unbounded".into(), |e| dur(Some(e))),
            dur(s.rpo_target_seconds),
            measured,
            dur(s.rto_target_seconds),
            s.newest_copies
                .iter()
                .map(|(r, h)| format!("{r}:{}", if *h { "yes" } else { "no" }))
                .collect::<Vec<_>>()
                .join(" "),
            flags
        );
    }
}
