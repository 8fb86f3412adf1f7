//! `backup`: run a job's backup with drctl's own engine (lease, every region, commit last).
//! `restore.rs` and `verify.rs` are its siblings; all three need the config.

use super::{Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use crate::restore::Selector;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub job: String,
}

pub(super) fn latest() -> String {
    "latest".into()
}

pub(super) fn selector(ctx: &Ctx, b: &str) -> Result<Selector> {
    let b = ctx.expand("backup", b)?;
    Ok(if b == "latest" {
        Selector::Latest
    } else {
        Selector::Id(b)
    })
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
