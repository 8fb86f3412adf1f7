//! `restore`: drctl's restore of a job's backup (from whichever region holds an intact copy).
//! The restored backup's `consistent_at` is the newest surviving data (T_d, for the RPO).

use super::backup::{latest, selector};
use super::{Ctx, Outcome, StepKind};
use crate::error::Result;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    pub job: String,
    /// A backup id, or `latest` (default).
    #[serde(default = "latest")]
    pub backup: String,
    /// Region to read first (the others are tried next).
    #[serde(default)]
    pub region: Option<String>,
    /// The restore target, as for `drctl restore --to`.
    pub to: String,
    /// Replace what the target already holds.
    #[serde(default)]
    pub clean: bool,
}

#[async_trait::async_trait]
impl StepKind for Restore {
    fn describe(&self) -> String {
        let to = super::postgres::redact(&self.to);
        format!(
            "drctl restore {} --backup {} --to {to}",
            self.job, self.backup
        )
    }
    fn needs_config(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let cfg = ctx.config()?;
        let job = cfg.job(&ctx.expand("job", &self.job)?)?;
        let to = ctx.expand("to", &self.to)?;
        let region = match &self.region {
            Some(r) => Some(ctx.expand("region", r)?),
            None => None,
        };
        let opts = crate::source::RestoreOptions {
            clean: self.clean,
            jobs: 1,
            ..Default::default()
        };
        let sel = selector(ctx, &self.backup)?;
        let r = crate::restore::run(cfg, job, &sel, region.as_deref(), &to, opts, false).await?;
        let skipped = if r.skipped_regions.is_empty() {
            String::new()
        } else {
            format!("; skipped: {}", r.skipped_regions.join("; "))
        };
        Ok(Outcome {
            excerpt: format!(
                "restored {} (consistent at {}) from region {} in {:.1}s{skipped}",
                r.backup,
                r.consistent_at.to_rfc3339(),
                r.region,
                r.duration_seconds
            ),
            durable_at: Some(r.consistent_at),
            restored: Some(crate::drill::record::Restored {
                job: r.job.clone(),
                backup: r.backup.clone(),
                seconds: r.duration_seconds,
                raw_bytes: r.raw_bytes,
            }),
            ..Default::default()
        }
        .with("backup", r.backup.clone())
        .with("value", r.backup)
        .with("region", r.region)
        .with("consistent_at", r.consistent_at.to_rfc3339()))
    }
}
