//! `--level restore` for vector databases (Chroma, Qdrant): every collection is restored under
//! a scratch name, `drctl_verify_<random>_<collection>`, beside whatever the target holds, on
//! `verify.scratch` (a URL) or, when that is unset, on the job's own server. Each scratch
//! collection's record / point count is compared with the manifest's facts, and every scratch
//! collection is dropped afterwards whatever happened. Live collections are never written:
//! the restore refuses to touch an existing name, and the scratch names are fresh.

use crate::config::{Config, JobSpec, SourceSpec};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::restore::{self, Selector};
use crate::source::{scratch_collections, RestoreOptions};
use std::time::Instant;

pub async fn check(cfg: &Config, job: &JobSpec, m: &Manifest) -> Result<(f64, String)> {
    let url = match (
        job.verify.as_ref().and_then(|v| v.scratch.as_ref()),
        &job.source,
    ) {
        (Some(s), _) => s.expose().to_string(),
        (None, SourceSpec::Chroma(c)) => c.url.0.clone(),
        (None, SourceSpec::Qdrant(q)) => q.url.0.clone(),
        _ => return Err(Error::usage("not a vector-database job")),
    };
    let scratch = scratch_collections(&job.source, &url)?
        .ok_or_else(|| Error::usage("not a vector-database job"))?;
    let tag = format!("drctl_verify_{:08x}", rand::random::<u32>());
    let renames: Vec<(String, String)> = m
        .artifacts
        .iter()
        .map(|a| (a.name.clone(), format!("{tag}_{}", a.name)))
        .collect();
    let result = restore_and_count(cfg, job, m, &url, &renames, scratch.as_ref()).await;
    for (_, name) in &renames {
        if let Err(e) = scratch.drop_collection(name).await {
            tracing::error!(collection = %name, error = %e, "cannot drop the scratch collection; delete it by hand");
        }
    }
    result
}

async fn restore_and_count(
    cfg: &Config,
    job: &JobSpec,
    m: &Manifest,
    url: &str,
    renames: &[(String, String)],
    scratch: &dyn crate::source::ScratchCollections,
) -> Result<(f64, String)> {
    let t = Instant::now();
    let opts = RestoreOptions {
        renames: renames.to_vec(),
        ..RestoreOptions::default()
    };
    restore::run(cfg, job, &Selector::Id(m.id.clone()), None, url, opts).await?;
    let secs = t.elapsed().as_secs_f64();
    let (mut diff, mut total) = (Vec::new(), 0u64);
    for (a, (_, name)) in m.artifacts.iter().zip(renames) {
        let got = scratch.count(name).await?;
        total += got;
        // Chroma's facts say `records`, Qdrant's `points_count` (null when Qdrant did not say).
        let want = a
            .facts
            .get("records")
            .or_else(|| a.facts.get("points_count"));
        match want.and_then(|w| w.as_u64()) {
            Some(w) if w != got => {
                diff.push(format!("{}: {got} restored, {w} in the manifest", a.name))
            }
            _ => {}
        }
    }
    if !diff.is_empty() {
        return Err(Error::failed(format!("counts differ: {}", diff.join(", "))));
    }
    Ok((
        secs,
        format!(
            "restored {} collection(s) under scratch names, {total} records, every count equal to the manifest's, in {secs:.1}s",
            m.artifacts.len()
        ),
    ))
}
