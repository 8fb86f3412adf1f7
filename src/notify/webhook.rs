//! Generic webhook: the event itself as JSON, e.g.
//! `{"event":"failure","job":"app-db","message":"…","host":"…","at":"2026-11-23T04:00:03Z"}`.

use super::{post_json, Event, Notifier};
use crate::config::daemon::NotifierSpec;
use crate::error::Result;
use async_trait::async_trait;

pub struct Webhook {
    url: String,
}

impl Webhook {
    pub fn new(spec: &NotifierSpec) -> Webhook {
        Webhook {
            url: spec.url.expose().to_string(),
        }
    }
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, http: &reqwest::Client, event: &Event) -> Result<()> {
        post_json(http, &self.url, &serde_json::to_value(event)?).await
    }
}
