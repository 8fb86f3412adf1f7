//! The config of the long-running side: `scheduler:` (how `drctl schedule` runs the jobs'
//! schedules) and `notifications:` (webhooks on failure, RPO breach, failed verification,
//! optionally success — used by the daemon and by `backup run` alike).

use super::spec::Schedule;
use crate::interp::{parse_scalar, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::time::Duration;

/// `scheduler:` — every field has a default, so the section may be left out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSpec {
    /// IANA time zone the cron fields are read in (`Europe/Berlin`); default UTC.
    #[serde(default)]
    pub timezone: TimeZone,
    /// Each tick starts after a random delay in `[0, jitter)`, so many daemons sharing a
    /// repository do not all start at :00. Default 0s.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Duration>,
    /// Runs (backups, verifications, prunes) at once across all jobs. Default 2.
    #[serde(default = "default_concurrency")]
    pub max_concurrent: usize,
    /// When the daemon prunes every job that has `retention`. Default: never (prune by hand
    /// or from a CronJob).
    #[serde(default)]
    pub prune: Option<Schedule>,
    /// Address of `/healthz`, `/readyz` and `/metrics`; `--listen` overrides. Default
    /// 127.0.0.1:9477.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub listen: Option<SocketAddr>,
    /// Attempts per run when the error is temporary (network, 5xx); 1 = no retry. Default 3.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second attempt, doubled for each further one. Default 30s.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub backoff: Duration,
    /// On SIGTERM/SIGINT, how long in-flight runs may take to finish before they are aborted
    /// (and clean up). Default 60s.
    #[serde(default = "default_grace", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub shutdown_grace: Duration,
}

impl Default for SchedulerSpec {
    fn default() -> Self {
        SchedulerSpec {
            timezone: TimeZone::default(),
            jitter: None,
            max_concurrent: default_concurrency(),
            prune: None,
            listen: None,
            attempts: default_attempts(),
            backoff: default_backoff(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_concurrency() -> usize {
    2
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_secs(30)
}
fn default_grace() -> Duration {
    Duration::from_secs(60)
}

/// An IANA time zone, checked while parsing so a typo names its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub struct TimeZone(pub chrono_tz::Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(chrono_tz::UTC)
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "an IANA time zone", |s| {
            s.parse::<chrono_tz::Tz>().map(TimeZone).map_err(|_| {
                format!("unknown time zone {s:?}: use an IANA name such as UTC or Europe/Berlin")
            })
        })
    }
}

/// What a notifier is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A backup run failed (after its retries).
    Failure,
    /// A job's RPO exposure went past its `rpo` (told once per breach, not on every check).
    RpoBreach,
    /// A job's newest timed restore went past its `rto`, or it has an `rto` and no restore
    /// was ever timed (told once per breach).
    RtoBreach,
    /// A verification failed.
    VerifyFailure,
    /// A backup committed. Off unless listed.
    Success,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// POST of drctl's event as JSON.
    Webhook,
    /// POST of `{"text": …}` to a Slack (or Slack-compatible: Mattermost, Rocket.Chat)
    /// incoming webhook.
    Slack,
}

/// One entry of `notifications:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifierSpec {
    pub kind: NotifierKind,
    /// The webhook URL; it usually embeds a token, so it is never printed.
    pub url: Secret,
    /// Events sent; default `[failure, rpo_breach, rto_breach, verify_failure]`.
    #[serde(default = "default_events")]
    pub on: Vec<EventKind>,
    /// Per-request timeout. Default 10s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
}

fn default_events() -> Vec<EventKind> {
    vec![
        EventKind::Failure,
        EventKind::RpoBreach,
        EventKind::RtoBreach,
        EventKind::VerifyFailure,
    ]
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
