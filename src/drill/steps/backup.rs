//! `backup`, `restore`, `verify`: drive drctl's own engine on a job of the config, so a
//! drill exercises exactly what production runs. A restore step reports the restored
//! backup's `consistent_at` as the newest surviving data (T_d, for the RPO).

use super::{Ctx, Outcome, StepKind};
use crate::config::VerifyLevel;
use crate::error::{Error, Result};
use crate::restore::Selector;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub job: String,
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub job: String,
    #[serde(default = "latest")]
    pub backup: String,
    #[serde(default)]
    pub level: Option<VerifyLevel>,
}

fn latest() -> String {
    "latest".into()
}

fn selector(ctx: &Ctx, b: &str) -> Result<Selector> {
    let b = ctx.expand("backup", b)?;
    Ok(if b == "latest" { Selector::Latest } else { Selector::Id(b) })
}

#[async_trait::async_trait]
impl StepKind for Backup {
    fn describe(&self) -> String {
        format!("drctl backup run {}", self.job)
    }
    fn needs_config(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let cfg = ctx.config()?;
        let job = cfg.job(&ctx.expand("job", &self.job)?)?;
        let regions = crate::backup::open_regions(cfg)?;
        // Dropping this future (timeout, abort) drops the upload; the cancel token makes the
        // run clean up its partial objects first when the drill is cancelled in time.
        let cancel = CancellationToken::new();
        let _guard = cancel.clone().drop_guard();
        match crate::backup::run_leased(cfg, &regions, job, &cancel, false).await? {
            crate::backup::Leased::Done(r) => Ok(Outcome {
                excerpt: format!(
                    "backup {} in {} ({:.1}s)",
                    r.id,
                    r.regions.join(", "),
                    r.duration_seconds
                ),
                ..Default::default()
            }
            .with("backup", r.id.clone())
            .with("value", r.id)
            .with("consistent_at", r.consistent_at.to_rfc3339())),
            crate::backup::Leased::Held(h) => Err(Error::failed(format!(
                "job {} is being backed up by {} (lease held)",
                job.name, h.host
            ))),
        }
    }
}

#[async_trait::async_trait]
impl StepKind for Restore {
    fn describe(&self) -> String {
        let to = super::postgres::redact(&self.to);
        format!("drctl restore {} --backup {} --to {to}", self.job, self.backup)
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
            no_owner: false,
            jobs: 1,
            renames: Vec::new(),
        };
        let sel = selector(ctx, &self.backup)?;
        let r = crate::restore::run(cfg, job, &sel, region.as_deref(), &to, opts).await?;
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
            ..Default::default()
        }
        .with("backup", r.backup.clone())
        .with("value", r.backup)
        .with("region", r.region)
        .with("consistent_at", r.consistent_at.to_rfc3339()))
    }
}

#[async_trait::async_trait]
impl StepKind for Verify {
    fn describe(&self) -> String {
        let level = self
            .level
            .map(|l| format!(" --level {}", crate::verify::level_name(l)))
            .unwrap_or_default();
        format!("drctl verify {} --backup {}{level}", self.job, self.backup)
    }
    fn needs_config(&self) -> bool {
        true
    }
    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        let cfg = ctx.config()?;
        let job = cfg.job(&ctx.expand("job", &self.job)?)?;
        let level = self
            .level
            .or(job.verify.as_ref().map(|v| v.level))
            .unwrap_or(VerifyLevel::Structure);
        let sel = selector(ctx, &self.backup)?;
        let r = crate::verify::run(cfg, job, &sel, level).await?;
        if !r.passed {
            return Err(crate::verify::failure(&r));
        }
        Ok(Outcome {
            excerpt: format!(
                "backup {} passed {} verification",
                r.backup,
                crate::verify::level_name(level)
            ),
            ..Default::default()
        }
        .with("backup", r.backup.clone())
        .with("value", r.backup))
    }
}
