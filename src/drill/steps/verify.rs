//! `verify`: drctl's verification of a job's backup at a level (checksum, structure, restore).

use super::backup::{latest, selector};
use super::{Ctx, Outcome, StepKind};
use crate::config::VerifyLevel;
use crate::error::Result;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub job: String,
    #[serde(default = "latest")]
    pub backup: String,
    #[serde(default)]
    pub level: Option<VerifyLevel>,
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
        let r = crate::verify::run(cfg, job, &sel, level, false).await?;
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
