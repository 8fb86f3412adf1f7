use super::{is_text, print_json};
use crate::backup::open_regions;
use crate::cli::{Output, PruneArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::retention::{self, Action, Options};
use crate::store::lease::{self, Refused};

pub async fn run(cfg: &Config, args: PruneArgs, out: Output) -> Result<()> {
    let jobs: Vec<_> = match &args.job {
        Some(n) => vec![cfg.job(n)?],
        None => cfg.jobs.iter().collect(),
    };
    let regions = open_regions(cfg)?;
    let opts = Options {
        dry_run: args.dry_run,
        grace: args.grace,
    };
    // A dry run changes nothing, so it takes no lease; a real one excludes other prunes.
    let held = if args.dry_run {
        None
    } else {
        match lease::acquire(&regions, "prune", "prune", cfg.lease_ttl).await {
            Ok(l) => Some(l),
            Err(Refused::Held(h)) => {
                return Err(Error::lease_held(format!(
                    "another prune is running: {}",
                    h.describe()
                ))
                .hint("wait for it to finish; its lease expires by itself if it crashed"))
            }
            Err(Refused::Error(e)) => return Err(e.context("cannot take the prune lease")),
        }
    };
    let result = retention::prune(cfg, &regions, &jobs, &opts).await;
    if let Some(l) = held {
        l.release().await;
    }
    let rows = result?;
    if !is_text(out) {
        return print_json(&rows);
    }
    for r in &rows {
        let why = if r.reasons.is_empty() {
            "no rule keeps it".to_string()
        } else {
            r.reasons.join(", ")
        };
        println!(
            "{:<12} {:<24} {:<10} {:<22} {why}",
            r.job,
            r.backup,
            r.region,
            r.action.verb(args.dry_run)
        );
    }
    let gone = rows
        .iter()
        .filter(|r| !matches!(r.action, Action::Keep | Action::KeptBecauseLocked))
        .count();
    println!(
        "{} {gone} of {} copies{}",
        if args.dry_run {
            "would remove"
        } else {
            "removed"
        },
        rows.len(),
        if args.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    let locked = rows
        .iter()
        .filter(|r| r.action == Action::KeptBecauseLocked)
        .count();
    if locked > 0 {
        println!("{locked} copies are kept because Object Lock retention still holds them; a later prune removes them once it ends");
    }
    Ok(())
}
