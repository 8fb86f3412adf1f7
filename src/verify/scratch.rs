//! `--level restore`: a real restore into a throwaway target, counted and compared with the
//! manifest's facts, then removed whatever happened. The source kind does the work
//! (`SourceKind::scratch_check`); this module hands it the backup, the job's `verify`
//! settings and the restore code path of `drctl restore`.

use crate::config::{Config, JobSpec};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::restore::{self, Selector};
use crate::source::{AssertionSpec, RestoreOptions, Scratch};
use async_trait::async_trait;

struct Run<'a> {
    cfg: &'a Config,
    job: &'a JobSpec,
    m: &'a Manifest,
}

#[async_trait]
impl Scratch for Run<'_> {
    fn manifest(&self) -> &Manifest {
        self.m
    }

    fn target(&self) -> Option<&str> {
        self.job
            .verify
            .as_ref()
            .and_then(|v| v.scratch.as_ref())
            .map(|s| s.expose())
    }

    fn assertions(&self) -> &[AssertionSpec] {
        self.job.verify.as_ref().map_or(&[], |v| &v.assertions[..])
    }

    async fn restore(&self, to: &str, opts: RestoreOptions) -> Result<()> {
        let pick = Selector::Id(self.m.id.clone());
        restore::run(self.cfg, self.job, &pick, None, to, opts, false).await?;
        Ok(())
    }
}

/// Returns the restore's wall time in seconds and what was compared.
pub async fn check(cfg: &Config, job: &JobSpec, m: &Manifest) -> Result<(f64, String)> {
    let run = Run { cfg, job, m };
    job.source.plugin().scratch_check(&run).await
}
