//! Config: parse (`spec`) → validate (`validate`, no I/O) → the `Config` the commands use.
//!
//! The text is first scanned (`yamlscan`: size, depth and alias-expansion bounds, duplicate
//! keys), then built into a tree whose every node knows its line and column (`yamltree`), and
//! deserialized piece by piece (`load`), so every problem is reported, each where it is.

pub mod daemon;
pub use crate::interp as env;
pub mod load;
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
    pub encryption: Option<spec::EncryptionSpec>,
    pub catalog: Option<spec::CatalogSpec>,
    pub drills: spec::DrillsSpec,
}

impl Config {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = std::fs::read(path).map_err(|e| {
            let err = Error::usage(format!("cannot read config {}: {e}", path.display()));
            if e.kind() == std::io::ErrorKind::NotFound {
                err.hint(
                    "pass -c FILE, set DRCTL_CONFIG, or create ./drctl.yaml or /etc/drctl/drctl.yaml (see docs/config.md)",
                )
            } else {
                err.hint("check the file's permissions, or pass another one with -c FILE")
            }
        })?;
        let text = crate::yamlscan::decode(&bytes, &crate::yamlscan::LIMITS)
            .map_err(|p| scan_error(path, p))?;
        Self::from_str(&text, path)
    }

    /// Parse and validate config text; `path` is used in error messages only. Every problem
    /// is reported, each at its own position, not just the first.
    pub fn from_str(text: &str, path: &Path) -> Result<Config> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        scan(text).map_err(|p| scan_error(path, p))?;
        let root = crate::yamltree::tree(text).map_err(|(line, column, message)| {
            scan_error(
                path,
                crate::yamlscan::Problem {
                    line,
                    column,
                    message,
                },
            )
        })?;
        let mut problems = load::Problems::default();
        let config = load::parse(&root, &mut problems)
            .and_then(|spec| validate::validate(spec, &root, path, &mut problems));
        config.ok_or_else(|| problems.into_error(path))
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

/// The first look at config text (`yamlscan`): size, depth, alias expansion, duplicate keys.
pub fn scan(text: &str) -> std::result::Result<(), crate::yamlscan::Problem> {
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

/// The JSON Schema of the config file, for editors and CI linting.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigSpec)).unwrap_or_default()
}
