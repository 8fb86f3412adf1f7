//! `sleep`: wait, e.g. for a TTL to expire or a cache to drain.

use super::{Ctx, Outcome, StepKind};
use crate::error::Result;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

#[async_trait::async_trait]
impl StepKind for Sleep {
    fn describe(&self) -> String {
        format!("sleep {}", humantime::format_duration(self.duration))
    }
    async fn run(&self, _ctx: &Ctx) -> Result<Outcome> {
        tokio::time::sleep(self.duration).await;
        Ok(Outcome::default())
    }
}
