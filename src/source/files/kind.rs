//! The files plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`).

use super::{tree, unpack, FilesSource};
use crate::error::{Error, Result};
use crate::manifest::Artifact;
use crate::source::kind::{About, FieldProblem, Scratch, SourceKind};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Instant;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Files: one tar stream of the paths — modes, owners, mtimes, symlinks stored as links — with
/// a SHA-256 per file.
pub struct FilesSpec {
    /// Absolute paths of directories (taken whole) or files. Each is stored under its path
    /// without the leading `/`: `/etc/app/app.yaml` is the member `etc/app/app.yaml`.
    pub paths: Vec<String>,
    /// Globs a file must match to be backed up (every file when empty), matched against its
    /// member name; `*` crosses `/`, so `*.yaml` matches at any depth.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of files and directories to leave out (a directory goes with what is under it).
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[async_trait]
impl SourceKind for FilesSpec {
    fn problems(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if self.paths.is_empty() {
            out.push(FieldProblem {
                field: "paths",
                message: "needs at least one path".into(),
            });
        }
        for p in &self.paths {
            if !p.starts_with('/') {
                out.push(FieldProblem {
                    field: "paths",
                    message: format!("{p:?} is not an absolute path"),
                });
            }
        }
        for (field, globs) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Err(e) = tree::globs(globs) {
                out.push(FieldProblem {
                    field,
                    message: e.to_string(),
                });
            }
        }
        out
    }

    fn about() -> About {
        About::new(
            "Files: one tar stream of the paths (modes, owners, mtimes; symlinks stored, never followed), a SHA-256 per file",
            "dir:/path (empty unless --clean); --path MEMBER restores one file or directory",
        )
        .with_members()
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(FilesSource::new(self)?))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        Ok(Box::new(unpack::DirTarget::new(to, opts)?))
    }

    async fn check_structure(&self, raw: ByteReader, a: &Artifact) -> Result<String> {
        let found = unpack::read_archive(raw).await?;
        let want = tree::Facts::from_json(&a.facts)?;
        found.compare(&want)?;
        Ok(format!(
            "{} files ({} bytes), {} directories, {} symlinks; every file's SHA-256 matches",
            found.files, found.bytes, found.dirs, found.symlinks
        ))
    }

    /// Restore into a fresh directory under `verify.scratch` (a `dir:` base) or $TMPDIR,
    /// hash every file there against the facts, and remove the directory.
    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        let base = match scratch.target() {
            Some(t) => unpack::dir_of(t)?,
            None => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix("drctl_verify_")
            .tempdir_in(&base)
            .map_err(|e| {
                Error::failed(format!("cannot create a scratch directory in {}: {e}", base.display()))
                    .hint("set verify.scratch to dir:/a/writable/place")
                    .with_source(crate::source::TargetRefused::new(e))
            })?;
        let to = format!("dir:{}", dir.path().display());
        let start = Instant::now();
        scratch.restore(&to, RestoreOptions::default()).await?;
        let seconds = start.elapsed().as_secs_f64();
        let artifact = scratch
            .manifest()
            .artifacts
            .first()
            .ok_or_else(|| Error::failed("the manifest lists no artifact"))?;
        let want = tree::Facts::from_json(&artifact.facts)?;
        let root = dir.path().to_path_buf();
        let got = tokio::task::spawn_blocking(move || tree::hash_restored(&root))
            .await
            .map_err(|e| Error::failed(format!("hashing the scratch restore: {e}")))??;
        want.compare_files(&got)?;
        Ok((
            seconds,
            format!(
                "{} files restored, every SHA-256 equal to the backup's",
                want.sha256.len()
            ),
        ))
    }
}
