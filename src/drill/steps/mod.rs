//! Step kinds: one file each, behind `StepKind`. Adding a kind is one file plus one line in
//! `REGISTRY`.
//!
//! A kind's fields are deserialized (unknown fields refused) while the playbook is validated;
//! strings may hold `${...}` and are expanded only when the step runs, through `Ctx::expand`,
//! so later steps can use earlier steps' outputs.

mod backup;
mod dns;
mod http;
mod manual;
mod postgres;
mod redis;
mod restore;
mod route53;
mod shell;
mod sleep;
mod verify;

pub use manual::Prompter;

use super::vars::Scope;
use crate::config::Config;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use marked_yaml::Node;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every kind `kind:` may name.
/// Every step kind, by name: the outputs its steps produce (for `${steps.<id>.<output>}`,
/// checked while the playbook is validated) and how its fields are read. A new kind is one
/// file and one line here.
pub const REGISTRY: &[Registration] = &[
    reg::<manual::Manual>("manual", &["answer"]),
    reg::<shell::Shell>("shell", &["stdout", "exit_code", "value"]),
    reg::<http::Http>("http", &["status", "body", "value"]),
    reg::<postgres::Postgres>("postgres", &["rows", "value"]),
    reg::<redis::Redis>("redis", &["value"]),
    reg::<dns::Dns>("dns", &["value", "change_id"]),
    reg::<backup::Backup>("backup", &["backup", "consistent_at", "value"]),
    reg::<restore::Restore>("restore", &["backup", "consistent_at", "region", "value"]),
    reg::<verify::Verify>("verify", &["backup", "value"]),
    reg::<sleep::Sleep>("sleep", &[]),
];

/// One registered step kind.
pub struct Registration {
    pub name: &'static str,
    pub outputs: &'static [&'static str],
    build: fn(&Node) -> std::result::Result<Arc<dyn StepKind>, marked_yaml::FromNodeError>,
}

const fn reg<T>(name: &'static str, outputs: &'static [&'static str]) -> Registration
where
    T: StepKind + serde::de::DeserializeOwned + 'static,
{
    Registration {
        name,
        outputs,
        build: build_as::<T>,
    }
}

fn build_as<T>(node: &Node) -> std::result::Result<Arc<dyn StepKind>, marked_yaml::FromNodeError>
where
    T: StepKind + serde::de::DeserializeOwned + 'static,
{
    Ok(Arc::new(marked_yaml::from_node::<T>(node)?))
}

/// The registered kind called `name`.
pub fn kind(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}

/// Every kind's name, for messages.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name).collect()
}

#[async_trait::async_trait]
pub trait StepKind: Send + Sync + std::fmt::Debug {
    /// What the step acts on, for `--dry-run` and the report: references unexpanded,
    /// secrets redacted.
    fn describe(&self) -> String;
    /// Checks serde cannot express (one of two fields, ranges). Pure.
    fn check(&self) -> std::result::Result<(), String> {
        Ok(())
    }
    /// Backup, restore and verify steps drive drctl's own engine and need the config.
    fn needs_config(&self) -> bool {
        false
    }
    /// One attempt. Dropping the future cancels it (and kills what it started).
    async fn run(&self, ctx: &Ctx) -> Result<Outcome>;
}

/// What a step sees when it runs.
pub struct Ctx {
    pub step_id: String,
    pub step_name: String,
    pub owner: String,
    pub timeout: std::time::Duration,
    pub scope: Scope,
    pub config: Option<Arc<Config>>,
    pub prompter: Arc<Prompter>,
}

impl Ctx {
    /// Expand `${...}` in a field; an unresolved reference fails the step, naming it.
    pub fn expand(&self, field: &str, s: &str) -> Result<String> {
        self.scope
            .expand(s)
            .map_err(|e| Error::failed(format!("{field}: {e}")))
    }
    pub fn config(&self) -> Result<&Config> {
        self.config.as_deref().ok_or_else(|| {
            Error::usage("this step needs drctl's config (jobs and regions)")
                .hint("pass -c FILE or set DRCTL_CONFIG")
        })
    }
}

/// The result of a successful attempt.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Outputs later steps can use as `${steps.<id>.<name>}`.
    pub outputs: BTreeMap<String, String>,
    /// The first lines of what the step printed or received, for the journal and report.
    pub excerpt: String,
    /// The newest data instant this step proved survived (e.g. a restored backup's
    /// `consistent_at`).
    pub durable_at: Option<DateTime<Utc>>,
    /// A person chose `skip` on a manual step.
    pub skipped: bool,
    /// A manual step confirmed by `--yes`, not by a person: it proves nothing about time.
    pub confirmed_by_flag: bool,
    /// A restore step's measured restore.
    pub restored: Option<crate::drill::record::Restored>,
}

impl Outcome {
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.outputs.insert(key.to_string(), value.into());
        self
    }
}

/// At most `max` bytes of text, cut at a character boundary, marked when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &s[..end], s.len())
}

/// Build a kind from its fields (the step mapping without the common fields).
/// Read a step's kind-specific fields as the registered kind `reg`.
pub fn build(
    reg: &Registration,
    node: &Node,
) -> std::result::Result<Arc<dyn StepKind>, marked_yaml::FromNodeError> {
    (reg.build)(node)
}

/// A value that should compare equal to what a step observed: `expect: 0` and `expect: "0"`
/// are the same.
pub fn same(observed: &str, expected: &str) -> bool {
    observed.trim() == expected.trim()
}

/// A URL with its password replaced by `***`, for plans and reports.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
