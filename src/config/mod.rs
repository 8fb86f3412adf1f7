//! Config: parse (`spec`) → validate (`validate`, no I/O) → the `Config` the commands use.
//!
//! YAML is read with `serde_norway`, the maintained fork of `serde_yaml` (archived upstream):
//! same serde API, errors with line, column and field path, and libyaml's bound on alias
//! expansion, so a "billion laughs" file is an error rather than an out-of-memory.

pub mod daemon;
pub use crate::interp as env;
pub mod spec;
mod validate;

use crate::error::{Error, Result};
pub use spec::*;
use std::path::{Path, PathBuf};

/// A config that parsed and passed validation: every reference resolves, every value is in
/// range. Commands build runtime objects (stores, sources) from this.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    pub regions: Vec<RegionSpec>,
    pub min_copies: usize,
    pub lease_ttl: std::time::Duration,
    pub jobs: Vec<JobSpec>,
    pub scheduler: daemon::SchedulerSpec,
    pub notifications: Vec<daemon::NotifierSpec>,
}

impl Config {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = std::fs::read(path).map_err(|e| {
            let err = Error::usage(format!("cannot read config {}: {e}", path.display()));
            if e.kind() == std::io::ErrorKind::NotFound {
                err.hint(
                    "pass -c FILE, set DRCTL_CONFIG, or create ./drctl.yaml (see docs/config.md)",
                )
            } else {
                err.hint("check the file's permissions, or pass another one with -c FILE")
            }
        })?;
        let text = crate::yamlscan::decode(&bytes, &crate::yamlscan::LIMITS)
            .map_err(|p| scan_error(path, p))?;
        Self::from_str(&text, path)
    }

    /// Parse and validate config text; `path` is used in error messages only.
    pub fn from_str(text: &str, path: &Path) -> Result<Config> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let index = positions(text).map_err(|p| scan_error(path, p))?;
        let spec: ConfigSpec = serde_norway::from_str(text).map_err(|e| yaml_error(path, &e))?;
        validate::validate(spec, &index, path)
    }

    pub fn job(&self, name: &str) -> Result<&JobSpec> {
        self.jobs.iter().find(|j| j.name.0 == name).ok_or_else(|| {
            let known: Vec<_> = self.jobs.iter().map(|j| j.name.0.as_str()).collect();
            Error::usage(format!("no job named {name:?} in {}", self.path.display()))
                .hint(format!("jobs in this config: {}", known.join(", ")))
        })
    }

    pub fn region(&self, name: &str) -> Result<&RegionSpec> {
        self.regions
            .iter()
            .find(|r| r.name.0 == name)
            .ok_or_else(|| {
                let known: Vec<_> = self.regions.iter().map(|r| r.name.0.as_str()).collect();
                Error::usage(format!(
                    "no region named {name:?} in {}",
                    self.path.display()
                ))
                .hint(format!("regions in this config: {}", known.join(", ")))
            })
    }
}

const EXPECT: crate::yamlscan::Expect = crate::yamlscan::Expect {
    what: "a config",
    fields: "regions, min_copies, jobs, …",
};

/// Where each field of config text is (see `yamlscan`), for errors found after loading.
pub fn positions(
    text: &str,
) -> std::result::Result<crate::yamlscan::Index, crate::yamlscan::Problem> {
    crate::yamlscan::scan(
        text.trim_start_matches('\u{feff}'),
        &crate::yamlscan::LIMITS,
        &EXPECT,
    )
}

fn scan_error(path: &Path, p: crate::yamlscan::Problem) -> Error {
    Error::usage(format!(
        "{}:{}:{}: {}",
        path.display(),
        p.line,
        p.column,
        p.message
    ))
    .hint("fix the config and check it with `drctl config validate`")
}

/// Turn a serde_norway error into "file:line:column: field.path: message".
fn yaml_error(path: &Path, e: &serde_norway::Error) -> Error {
    let msg = e.to_string();
    // serde_norway appends " at line L column C"; we lead with the position instead.
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    // The deserializer quotes offending values whole; a huge one must not come back whole.
    let msg = crate::yamlscan::clip_quoted(&msg, 80);
    let pos = match e.location() {
        Some(l) => format!("{}:{}:{}", path.display(), l.line(), l.column()),
        None => path.display().to_string(),
    };
    Error::usage(format!("{pos}: {msg}"))
        .hint("fix the config and check it with `drctl config validate`")
}

/// The JSON Schema of the config file, for editors and CI linting.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigSpec)).unwrap_or_default()
}
