//! `--level structure`: decompress one intact copy and check the format itself, per source
//! kind, then compare what the format says with the manifest's facts and sizes.

use crate::config::{JobSpec, SourceSpec};
use crate::error::{Error, Result};
use crate::manifest::{Artifact, Manifest};
use crate::pipeline::{
    codec,
    hash::{Counting, Verifying},
};
use crate::restore::open;
use crate::source::{chroma, postgres, redis};
use crate::store::{repo::backup_dir, Region};
use std::sync::atomic::Ordering;

/// Check every artifact; the detail names what was found, e.g. "db: 12 tables in the TOC".
pub async fn check(job: &JobSpec, region: &Region, m: &Manifest) -> Result<String> {
    let mut found = Vec::new();
    for a in &m.artifacts {
        let d = artifact(job, region, m, a)
            .await
            .map_err(|e| e.context(format!("artifact {}", a.name)))?;
        found.push(format!("{}: {d}", a.name));
    }
    Ok(found.join("; "))
}

async fn artifact(job: &JobSpec, region: &Region, m: &Manifest, a: &Artifact) -> Result<String> {
    let path = format!("{}{}", backup_dir(&m.job, &m.id), a.path);
    let stored = open(region, &path).await?;
    let verified = Verifying::new(stored, &a.sha256, format!("region {} {path}", region.name));
    let raw = Counting::new(codec::decoder(Box::new(verified), &a.codec)?);
    let count = raw.count.clone();
    let raw: crate::source::ByteReader = Box::new(raw);
    let detail = match &job.source {
        SourceSpec::Postgres(spec) => {
            let tables =
                postgres::check_archive(raw, spec.pg_restore.as_deref().unwrap_or("pg_restore"))
                    .await?;
            if let Some(want) = a.facts.get("tables").and_then(|t| t.as_u64()) {
                if tables as u64 != want {
                    return Err(Error::failed(format!(
                        "the archive's table of contents has data for {tables} tables, the manifest says {want}"
                    )));
                }
            }
            format!("{tables} tables in the archive's TOC")
        }
        SourceSpec::Redis(_) => {
            let facts = redis::check_rdb(raw).await?;
            if facts["dbs"] != a.facts["dbs"] {
                return Err(Error::failed(format!(
                    "the RDB holds {} per db, the manifest says {}",
                    facts["dbs"], a.facts["dbs"]
                )));
            }
            format!("RDB parsed, CRC64 ok, {} keys", facts["keys"])
        }
        SourceSpec::Chroma(_) => {
            let n = chroma::check_export(raw).await?;
            if a.facts
                .get("records")
                .and_then(|r| r.as_u64())
                .is_some_and(|want| want != n)
            {
                return Err(Error::failed(format!(
                    "the export holds {n} records, the manifest says {}",
                    a.facts["records"]
                )));
            }
            format!("{n} records")
        }
        // A Qdrant snapshot is the server's own archive: decompressed end to end and sized.
        SourceSpec::Qdrant(_) => {
            drain(raw).await?;
            "snapshot decompressed".to_string()
        }
    };
    let raw_bytes = count.load(Ordering::Relaxed);
    if raw_bytes != a.raw_size {
        return Err(Error::failed(format!(
            "decompressed to {raw_bytes} bytes, the manifest says {}",
            a.raw_size
        )));
    }
    Ok(detail)
}

async fn drain(mut r: crate::source::ByteReader) -> Result<()> {
    tokio::io::copy(&mut r, &mut tokio::io::sink())
        .await
        .map_err(|e| Error::failed(format!("reading: {e}")))?;
    Ok(())
}
