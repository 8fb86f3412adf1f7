//! What the vector-database kinds share for `verify --level restore`: every collection is
//! restored under a scratch name, `drctl_verify_<random>_<collection>`, beside whatever the
//! target holds, on `verify.scratch` (a URL) or, when that is unset, on the job's own server.
//! Each scratch collection's count is compared with the manifest's facts, and every scratch
//! collection is dropped afterwards whatever happened. Live collections are never written:
//! the restore refuses to touch an existing name, and the scratch names are fresh.

use super::kind::Scratch;
use super::RestoreOptions;
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::time::Instant;

/// What `verify --level restore` needs from a vector database besides restoring: count what
/// a (renamed, scratch) collection holds, and drop it again.
#[async_trait]
pub trait ScratchCollections: Send + Sync {
    /// Records or points in the collection.
    async fn count(&self, collection: &str) -> Result<u64>;
    /// Delete the collection; one that does not exist is not an error.
    async fn drop_collection(&self, collection: &str) -> Result<()>;
}

/// A kind's side of the scratch check: its collections at a URL, and the fact that holds
/// each artifact's count (`null` when the server did not say, then not compared).
pub struct Collections<'a> {
    /// The job's own server, used when `verify.scratch` is unset.
    pub own_url: &'a str,
    pub open: &'a (dyn Fn(&str) -> Result<Box<dyn ScratchCollections>> + Send + Sync),
    pub count_fact: &'static str,
}

pub async fn scratch_check(scratch: &dyn Scratch, kind: Collections<'_>) -> Result<(f64, String)> {
    let url = scratch.target().unwrap_or(kind.own_url).to_string();
    let target = (kind.open)(&url)?;
    let tag = format!("drctl_verify_{:08x}", rand::random::<u32>());
    let renames: Vec<(String, String)> = scratch
        .manifest()
        .artifacts
        .iter()
        .map(|a| (a.name.clone(), format!("{tag}_{}", a.name)))
        .collect();
    let result = restore_and_count(scratch, &url, &renames, target.as_ref(), kind.count_fact).await;
    for (_, name) in &renames {
        if let Err(e) = target.drop_collection(name).await {
            tracing::error!(collection = %name, error = %e, "cannot drop the scratch collection; delete it by hand");
        }
    }
    result
}

async fn restore_and_count(
    scratch: &dyn Scratch,
    url: &str,
    renames: &[(String, String)],
    target: &dyn ScratchCollections,
    count_fact: &str,
) -> Result<(f64, String)> {
    let t = Instant::now();
    let opts = RestoreOptions {
        renames: renames.to_vec(),
        ..RestoreOptions::default()
    };
    scratch.restore(url, opts).await?;
    let secs = t.elapsed().as_secs_f64();
    let (mut diff, mut total) = (Vec::new(), 0u64);
    let m = scratch.manifest();
    for (a, (_, name)) in m.artifacts.iter().zip(renames) {
        let got = target.count(name).await?;
        total += got;
        match a.facts.get(count_fact).and_then(|w| w.as_u64()) {
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
