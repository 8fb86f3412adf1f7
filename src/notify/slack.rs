//! Slack incoming webhook (and the compatible ones: Mattermost, Rocket.Chat): `{"text": …}`
//! with one line saying what happened, to which job, on which host.

use super::{post_json, Event, Notifier};
use crate::config::daemon::{EventKind, NotifierSpec};
use crate::error::Result;
use async_trait::async_trait;

pub struct Slack {
    url: String,
}

impl Slack {
    pub fn new(spec: &NotifierSpec) -> Slack {
        Slack {
            url: spec.url.expose().to_string(),
        }
    }
}

pub fn text(e: &Event) -> String {
    let what = match e.event {
        EventKind::Failure => ":red_circle: backup FAILED",
        EventKind::RpoBreach => ":warning: RPO BREACHED",
        EventKind::RtoBreach => ":warning: RTO BREACHED",
        EventKind::VerifyFailure => ":red_circle: verification FAILED",
        EventKind::Success => ":white_check_mark: backup committed",
    };
    format!("drctl {what}: job *{}* on {}: {}", e.job, e.host, e.message)
}

#[async_trait]
impl Notifier for Slack {
    async fn send(&self, http: &reqwest::Client, event: &Event) -> Result<()> {
        post_json(http, &self.url, &serde_json::json!({ "text": text(event) })).await
    }
}
