//! DR drills: YAML playbooks run step by step with owners and hard timeouts, measuring RTO
//! and RPO exactly as DESIGN.md defines them, with a journal and reports as evidence.
//!
//! parse (text → validated `plan::Playbook`, every problem at file:line:column) → engine
//! (runs it, journaling each event) → record (what happened) → measure (RTO/RPO, pure) →
//! report (JSON, Markdown, HTML) → evidence (local folder and the repository).

pub mod checklist;
pub mod engine;
pub mod evidence;
pub mod journal;
pub mod measure;
pub mod parse;
pub mod plan;
pub mod record;
pub mod report;
pub mod steps;
pub mod vars;

use crate::error::{Error, Result};
use std::path::Path;

/// Playbooks built into the binary, so `drctl drill run region-failure` works anywhere.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "pg-primary-failure",
        include_str!("../../playbooks/pg-primary-failure.yaml"),
    ),
    (
        "region-failure",
        include_str!("../../playbooks/region-failure.yaml"),
    ),
    (
        "redis-failover",
        include_str!("../../playbooks/redis-failover.yaml"),
    ),
    (
        "restore-from-backup",
        include_str!("../../playbooks/restore-from-backup.yaml"),
    ),
];

/// A playbook's text and where it came from.
pub struct Located {
    pub display: String,
    pub stem: String,
    pub text: String,
}

/// A path to a file; else `./playbooks/<name>.yaml`; else a shipped playbook by name.
pub fn locate(arg: &str) -> Result<Located> {
    let read = |p: &Path| -> Result<Located> {
        let bytes = std::fs::read(p)
            .map_err(|e| Error::usage(format!("cannot read playbook {}: {e}", p.display())))?;
        let text = crate::yamlscan::decode(&bytes, &crate::yamlscan::LIMITS).map_err(|e| {
            invalid(parse::Problems {
                file: p.display().to_string(),
                list: vec![parse::Problem {
                    line: e.line,
                    column: e.column,
                    step: None,
                    message: e.message,
                }],
            })
        })?;
        Ok(Located {
            display: p.display().to_string(),
            stem: p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            text,
        })
    };
    let p = Path::new(arg);
    if p.is_file() {
        return read(p);
    }
    for ext in ["yaml", "yml"] {
        let local = Path::new("playbooks").join(format!("{arg}.{ext}"));
        if local.is_file() {
            return read(&local);
        }
    }
    if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == arg) {
        return Ok(Located {
            display: format!("shipped:{name}"),
            stem: name.to_string(),
            text: text.to_string(),
        });
    }
    Err(Error::usage(format!(
        "no playbook {arg:?}: not a file, not in ./playbooks, not shipped"
    ))
    .hint(format!(
        "shipped playbooks: {}; `drctl drill list` shows local ones too",
        SHIPPED
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Locate, parse and validate. Problems become one usage error (exit 2) listing them all.
/// Every problem of a playbook as one usage error (exit 2).
fn invalid(p: parse::Problems) -> Error {
    let n = p.list.len();
    Error::usage(format!(
        "playbook {} is invalid ({n} problem{}):\n{p}",
        p.file,
        if n == 1 { "" } else { "s" }
    ))
    .hint("fix it and check with `drctl drill validate`; nothing was run")
}

/// The playbook files in `./playbooks` (`.yaml`, `.yml`), sorted.
pub fn local_playbooks() -> Vec<std::path::PathBuf> {
    let Ok(dir) = std::fs::read_dir("playbooks") else {
        return Vec::new();
    };
    let mut files: Vec<_> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

pub fn load(arg: &str, opts: &parse::Options) -> Result<plan::Playbook> {
    let l = locate(arg)?;
    let pb = parse::parse(&l.display, &l.text, &l.stem, opts).map_err(invalid)?;
    if !pb.metadata.is_empty() {
        let fields: Vec<&str> = pb.metadata.keys().map(String::as_str).collect();
        tracing::warn!(
            checklist = %l.display,
            fields = %fields.join(", "),
            "the checklist has fields drctl does not use: kept as written and shown in the report"
        );
    }
    if let Some(due) = checklist::next_due(&pb.metadata).filter(|d| *d < chrono::Utc::now()) {
        tracing::warn!(checklist = %l.display, due = %due.to_rfc3339(), "the checklist's next drill is overdue");
    }
    Ok(pb)
}

/// A UTC run id, lexically ordered like backup ids: `YYYYMMDDTHHMMSSZ-<6 hex>`.
pub fn new_run_id() -> String {
    crate::manifest::new_backup_id(chrono::Utc::now())
}

/// The next-drill due dates of the checklists in `./playbooks` (file stem, due instant).
pub fn next_drills() -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let mut out = Vec::new();
    for p in local_playbooks() {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        if let Some(due) = checklist::next_due(&checklist::metadata_of(&text)) {
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
            out.push((stem.unwrap_or_default(), due));
        }
    }
    out.sort();
    out
}
