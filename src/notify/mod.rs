//! Notifications: webhooks told about failed backups, RPO breaches, failed verifications and
//! (when asked) successes. One trait, one file per kind. A notifier that fails is logged and
//! never fails the run it reports on: the backup's outcome is the repository's, not the
//! webhook's.

mod slack;
mod webhook;

use crate::config::daemon::{EventKind, NotifierKind, NotifierSpec};
use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What happened, as every notifier receives it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: EventKind,
    pub job: String,
    /// One line a person can act on (the error with its hint, or what committed where).
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    pub host: String,
    pub at: DateTime<Utc>,
}

impl Event {
    pub fn new(event: EventKind, job: &str, message: impl Into<String>) -> Event {
        Event {
            event,
            job: job.to_string(),
            message: message.into(),
            backup: None,
            host: crate::store::lease::hostname(),
            at: Utc::now(),
        }
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, http: &reqwest::Client, event: &Event) -> Result<()>;
}

/// Every configured notifier, with the events it wants.
pub struct Notifiers {
    http: reqwest::Client,
    list: Vec<(NotifierSpec, Box<dyn Notifier>)>,
}

impl Notifiers {
    pub fn new(specs: &[NotifierSpec]) -> Notifiers {
        let list = specs
            .iter()
            .map(|s| {
                let n: Box<dyn Notifier> = match s.kind {
                    NotifierKind::Webhook => Box::new(webhook::Webhook::new(s)),
                    NotifierKind::Slack => Box::new(slack::Slack::new(s)),
                };
                (s.clone(), n)
            })
            .collect();
        Notifiers {
            http: reqwest::Client::new(),
            list,
        }
    }

    /// Send `event` to every notifier that listens for its kind; failures are logged.
    pub async fn notify(&self, event: &Event) {
        for (i, (spec, n)) in self.list.iter().enumerate() {
            if !spec.on.contains(&event.event) {
                continue;
            }
            let sent = tokio::time::timeout(spec.timeout, n.send(&self.http, event)).await;
            let err = match sent {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!(
                    "no answer within {}",
                    humantime::format_duration(spec.timeout)
                ),
            };
            tracing::warn!(notifier = i, kind = ?spec.kind, event = ?event.event, job = %event.job, error = %err,
                "notification not delivered (the run's outcome is unaffected)");
        }
    }
}

/// Tell the notifiers how a backup run ended (`failure`, or `success` where asked). A run cut
/// short by SIGTERM/SIGINT cleaned up after itself and is not reported as a failure.
pub async fn backup_outcome(
    notifiers: &Notifiers,
    job: &str,
    result: &Result<crate::backup::BackupReport>,
) {
    let e = match result {
        Ok(r) => {
            let mut e = Event::new(
                EventKind::Success,
                job,
                format!(
                    "backup {} committed to {} in {:.1}s",
                    r.id,
                    r.regions.join(", "),
                    r.duration_seconds
                ),
            );
            e.backup = Some(r.id.clone());
            e
        }
        Err(err) if err.kind() == crate::ErrorKind::Interrupted => return,
        Err(err) => Event::new(
            EventKind::Failure,
            job,
            match err.hint_text() {
                Some(h) => format!("{}; {h}", err.message()),
                None => err.message().to_string(),
            },
        ),
    };
    notifiers.notify(&e).await;
}

/// POST `body` as JSON; anything but 2xx is an error naming the status (never the URL,
/// which usually carries a token).
async fn post_json(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> Result<()> {
    let resp = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| crate::Error::failed(format!("webhook: {}", e.without_url())))?;
    if !resp.status().is_success() {
        return Err(crate::Error::failed(format!(
            "webhook answered {}",
            resp.status()
        )));
    }
    Ok(())
}
