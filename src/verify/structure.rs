//! `--level structure`: decompress one intact copy and let the source kind check the format
//! (`SourceKind::check_structure`), then compare what the format says with the manifest's facts and sizes.

use crate::config::{Config, JobSpec};
use crate::error::{Error, Result};
use crate::manifest::{Artifact, Manifest};
use crate::pipeline::{
    codec, crypt,
    hash::{Counting, Verifying},
};
use crate::restore::open;
use crate::store::{repo::backup_dir, Region};
use std::sync::atomic::Ordering;

/// Check every artifact; the detail names what was found, e.g. "db: 12 tables in the TOC".
/// An encrypted backup needs a configured identity of one of its recipients.
pub async fn check(cfg: &Config, job: &JobSpec, region: &Region, m: &Manifest) -> Result<String> {
    let keys = crypt::keys_for(cfg, job, m)?;
    let mut found = Vec::new();
    for a in &m.artifacts {
        let d = artifact(job, region, m, a, keys.as_ref())
            .await
            .map_err(|e| e.context(format!("artifact {}", a.name)))?;
        found.push(format!("{}: {d}", a.name));
    }
    Ok(found.join("; "))
}

async fn artifact(
    job: &JobSpec,
    region: &Region,
    m: &Manifest,
    a: &Artifact,
    keys: Option<&crypt::Keys>,
) -> Result<String> {
    let path = format!("{}{}", backup_dir(&m.job, &m.id), a.path);
    let stored = open(region, &path).await?;
    let verified = Verifying::new(stored, &a.sha256, format!("region {} {path}", region.name));
    let plain = crypt::unseal(Box::new(verified), keys).await?;
    let raw = Counting::new(codec::decoder(plain, &a.codec)?);
    let count = raw.count.clone();
    let raw: crate::source::ByteReader = Box::new(raw);
    let detail = job.source.plugin().check_structure(raw, a).await?;
    let raw_bytes = count.load(Ordering::Relaxed);
    if raw_bytes != a.raw_size {
        return Err(Error::failed(format!(
            "decompressed to {raw_bytes} bytes, the manifest says {}",
            a.raw_size
        )));
    }
    Ok(detail)
}
