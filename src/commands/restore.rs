use super::{is_text, print_json};
use crate::cli::{Output, RestoreArgs};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::restore::{self, Selector};
use crate::source::RestoreOptions;

pub async fn run(cfg: &Config, args: RestoreArgs, out: Output) -> Result<()> {
    let job = cfg.job(&args.job)?;
    let sel = match (&args.before, args.backup.as_str()) {
        (Some(t), _) => Selector::Before(parse_time(t)?),
        (None, "latest") => Selector::Latest,
        (None, id) if crate::manifest::is_backup_id(id) => Selector::Id(id.to_string()),
        (None, id) => {
            return Err(Error::usage(format!(
                "--backup {id:?} is neither `latest` nor a backup id"
            ))
            .hint("ids look like 20261123T040000Z-3fa2c1; see `drctl backup list`"))
        }
    };
    let opts = RestoreOptions {
        clean: args.clean || args.yes,
        no_owner: args.no_owner,
        jobs: args.jobs.max(1),
        renames: args
            .rename
            .iter()
            .map(|r| match r.split_once('=') {
                Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                    Ok((from.to_string(), to.to_string()))
                }
                _ => Err(Error::usage(format!("--rename {r:?} is not FROM=TO"))
                    .hint("e.g. --rename docs=docs-restored")),
            })
            .collect::<Result<_>>()?,
        members: args.path.clone(),
    };
    let bars = super::progress_bars(out);
    let r = restore::run(cfg, job, &sel, args.region.as_deref(), &args.to, opts, bars).await?;
    if is_text(out) {
        println!(
            "{}: restored backup {} (consistent at {}) from region {} into {} in {:.1}s",
            r.job,
            r.backup,
            r.consistent_at.to_rfc3339(),
            r.region,
            r.target,
            r.duration_seconds
        );
        for s in &r.skipped_regions {
            println!("  skipped {s}");
        }
        Ok(())
    } else {
        print_json(&r)
    }
}

/// RFC 3339 instant, or a humantime duration meaning "that long ago".
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let d = chrono::Duration::from_std(d)
            .map_err(|e| Error::usage(format!("--before {s:?}: {e}")))?;
        return Ok(chrono::Utc::now() - d);
    }
    Err(Error::usage(format!(
        "--before {s:?} is neither an RFC 3339 time nor a duration"
    ))
    .hint("e.g. --before 2026-11-23T03:00:00Z or --before 2h"))
}
