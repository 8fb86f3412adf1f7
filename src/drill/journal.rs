//! The drill's journal: JSON lines, each written and flushed to disk as it happens, so a
//! crash or a killed run still leaves the evidence up to that instant.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn create(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::failed(format!(
                    "cannot create the evidence folder {}: {e}",
                    dir.display()
                ))
                .hint("pass --evidence-dir DIR with a writable folder")
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                Error::failed(format!("cannot open the journal {}: {e}", path.display()))
            })?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event (`{"at": ..., "event": kind, ...fields}`) and flush it to disk. A
    /// journal that cannot be written is logged, never fatal to the drill itself.
    pub fn event(&self, kind: &str, fields: Value) {
        let mut v = json!({ "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "event": kind });
        if let (Some(o), Value::Object(f)) = (v.as_object_mut(), fields) {
            o.extend(f);
        }
        let mut line = v.to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f
            .write_all(line.as_bytes())
            .and_then(|_| f.flush())
            .and_then(|_| f.sync_data())
        {
            tracing::error!(journal = %self.path.display(), error = %e, "cannot write the drill journal");
        }
    }
}
