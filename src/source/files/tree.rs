//! What a files backup records about its tree (the facts), the globs that pick its files, and
//! the hashing both sides of a comparison share.

use crate::error::{Error, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// A set of globs matched against member names (`etc/app/app.yaml`); `*` crosses `/`.
pub fn globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| Error::usage(format!("{p:?} is not a glob: {e}")))?;
        b.add(g);
    }
    b.build().map_err(|e| Error::usage(format!("globs: {e}")))
}

/// Counts and a SHA-256 per regular file, keyed by member name.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Facts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub sha256: BTreeMap<String, String>,
}

impl Facts {
    pub fn from_json(v: &serde_json::Value) -> Result<Facts> {
        serde_json::from_value(v.clone()).map_err(|e| {
            Error::failed(format!("the manifest's facts are not a files backup's: {e}"))
        })
    }

    /// What an archive holds against what the manifest recorded at backup time.
    pub fn compare(&self, want: &Facts) -> Result<()> {
        let counts = |f: &Facts| (f.files, f.dirs, f.symlinks, f.bytes);
        if counts(self) != counts(want) {
            return Err(Error::failed(format!(
                "the archive holds {} files ({} bytes), {} directories, {} symlinks; the manifest says {} ({} bytes), {}, {}",
                self.files, self.bytes, self.dirs, self.symlinks,
                want.files, want.bytes, want.dirs, want.symlinks
            )));
        }
        want.compare_files(&self.sha256)
    }

    /// Every file's hash in `got` equals the recorded one, and no file is missing or extra.
    pub fn compare_files(&self, got: &BTreeMap<String, String>) -> Result<()> {
        for (name, sha) in &self.sha256 {
            match got.get(name) {
                None => return Err(Error::failed(format!("{name}: missing"))),
                Some(g) if g != sha => {
                    return Err(Error::failed(format!(
                        "{name}: SHA-256 {g} differs from the backup's {sha}"
                    )))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = got.keys().find(|k| !self.sha256.contains_key(*k)) {
            return Err(Error::failed(format!("{extra}: not in the backup")));
        }
        Ok(())
    }
}

/// Read `r` to the end, hashing; the hex digest and the byte count.
pub fn hash_reader(mut r: impl Read) -> std::io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            return Ok((hex::encode(h.finalize()), n));
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
}

/// Every regular file under `root`, by its name relative to `root`, hashed.
pub fn hash_restored(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::failed(format!("cannot list {}: {e}", dir.display())))?;
        for e in entries {
            let e = e.map_err(|e| Error::failed(format!("{}: {e}", dir.display())))?;
            let path = e.path();
            let ft = e
                .file_type()
                .map_err(|x| Error::failed(format!("{}: {x}", path.display())))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let f = std::fs::File::open(&path)
                    .map_err(|x| Error::failed(format!("cannot read {}: {x}", path.display())))?;
                let (sha, _) = hash_reader(f)
                    .map_err(|x| Error::failed(format!("cannot read {}: {x}", path.display())))?;
                let name = path.strip_prefix(root).unwrap_or(&path);
                out.insert(name.to_string_lossy().into_owned(), sha);
            }
        }
    }
    Ok(out)
}
