//! Stores: one OpenDAL `Operator` per region, behind the repository layout in `repo.rs`.
//!
//! Every region kind goes through the same path: the region's fields become OpenDAL service
//! options, and the operator gets retry (temporary errors only, with jitter) and timeout layers.

pub mod aws;
pub mod index;
pub mod lease;
pub mod multipart;
pub mod object_lock;
pub mod repo;

use crate::config::{RegionKind, RegionSpec};
use crate::error::{Error, Result};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::Operator;
use std::time::Duration;

/// A region, ready to use.
#[derive(Clone, Debug)]
pub struct Region {
    pub name: String,
    pub kind: RegionKind,
    pub op: Operator,
    /// Multipart part size in bytes (object stores); 0 = write through (fs).
    pub part_size: usize,
    /// `part_size_mib` was set in the config: used as is, never sized down to an estimate.
    pub part_size_set: bool,
    pub concurrency: usize,
    /// S3 regions: for multipart-upload housekeeping and Object Lock, which OpenDAL cannot do.
    pub s3: Option<multipart::S3Access>,
    /// S3 Object Lock retention for new backups (`object_lock.rs`).
    pub lock: Option<crate::config::ObjectLockSpec>,
    /// Set once `check_format` passed for this region.
    format_checked: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

/// How long a store request may make no progress, unless the region says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default multipart part size: 8 MiB parts allow artifacts up to 80 GiB (10,000 parts).
pub const DEFAULT_PART_MIB: u32 = 8;
/// The smallest part S3 accepts (and a multiple of GCS's 256 KiB chunks).
const MIN_PART: u64 = 5 * 1024 * 1024;
/// The most parts one upload may have (S3's limit; Azure and GCS allow more).
const MAX_PARTS: u64 = 10_000;
/// How many times its source's size estimate an artifact is assumed to reach, at worst:
/// COPY text of TOAST-compressed values, or bytea as hex, can be several times its on-disk
/// size when the job stores it uncompressed.
const ESTIMATE_MARGIN: u64 = 10;

impl Region {
    pub fn open(spec: &RegionSpec) -> Result<Region> {
        let opts = service_options(spec);
        let io_timeout = spec.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let op = build(spec, opts)
            .map_err(|e| {
                Error::usage(format!(
                    "region {}: cannot configure the {} store: {e}",
                    spec.name,
                    spec.kind.scheme()
                ))
                .hint(
                    "check the region's fields in the config (docs/config.md lists them per kind)",
                )
            })?
            .layer(
                TimeoutLayer::new()
                    .with_timeout(io_timeout * 2)
                    .with_io_timeout(io_timeout),
            )
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_max_times(3)
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5)),
            );
        let part_size = match spec.kind {
            RegionKind::Fs => 0,
            _ => spec.part_size_mib.unwrap_or(DEFAULT_PART_MIB) as usize * 1024 * 1024,
        };
        Ok(Region {
            name: spec.name.0.clone(),
            kind: spec.kind,
            op,
            part_size,
            part_size_set: spec.part_size_mib.is_some(),
            concurrency: spec.upload_concurrency.unwrap_or(2) as usize,
            s3: multipart::S3Access::from_spec(spec),
            lock: spec.object_lock,
            format_checked: Default::default(),
        })
    }

    /// Open a writer for one object, with the region's multipart settings; `estimate` is
    /// the source's estimate of the artifact's size, when it has one (`part_size_for`).
    pub async fn writer(&self, path: &str, estimate: Option<u64>) -> Result<opendal::Writer> {
        let mut w = self.op.writer_with(path);
        let part = self.part_size_for(estimate);
        if part > 0 {
            w = w.chunk(part).concurrent(self.concurrency);
        }
        w.await
            .map_err(|e| Error::from(e).context(format!("region {}: open {path}", self.name)))
    }

    /// The part size for an artifact of about `estimate` bytes: a part is held in memory per
    /// region and per artifact being written, so artifacts streamed side by side (`parallel:`)
    /// would take a default part each. With an estimate and no `part_size_mib` in the config,
    /// the part is the smallest that still fits `ESTIMATE_MARGIN` × the estimate in
    /// `MAX_PARTS` parts, between S3's 5 MiB and the default; otherwise the region's own.
    pub fn part_size_for(&self, estimate: Option<u64>) -> usize {
        match estimate {
            Some(est) if self.part_size > 0 && !self.part_size_set => {
                let need = est.saturating_mul(ESTIMATE_MARGIN).div_ceil(MAX_PARTS);
                let need = need.div_ceil(1024 * 1024).saturating_mul(1024 * 1024);
                let most = (self.part_size as u64).max(MIN_PART);
                need.clamp(MIN_PART, most) as usize
            }
            _ => self.part_size,
        }
    }
}

/// The region's operator. S3 gets drctl's credential chain (`aws::chain`), so that its
/// requests, its web identity and drctl's own signed calls share one identity.
fn build(spec: &RegionSpec, opts: Vec<(String, String)>) -> opendal::Result<Operator> {
    if spec.kind != RegionKind::S3 {
        return Operator::via_iter(spec.kind.scheme(), opts);
    }
    use opendal::Configurator;
    let builder = opendal::services::S3Config::from_iter(opts)?
        .into_builder()
        .credential_provider_chain(aws::chain(&multipart::keys(spec)));
    Operator::new(builder)
}

/// Translate the config's region fields into the service's OpenDAL option names.
fn service_options(spec: &RegionSpec) -> Vec<(String, String)> {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            o.push((k.to_string(), v.to_string()));
        }
    };
    let key = spec.access_key_id.as_ref().map(|s| s.expose());
    let secret = spec.secret_access_key.as_ref().map(|s| s.expose());
    put("root", spec.root.as_deref());
    put("endpoint", spec.endpoint.as_deref());
    match spec.kind {
        RegionKind::Fs => {}
        RegionKind::S3 => {
            put("bucket", spec.bucket.as_deref());
            put("region", spec.region.as_deref());
            put("default_storage_class", spec.storage_class.as_deref());
            put(
                "server_side_encryption",
                spec.server_side_encryption.as_deref(),
            );
            put(
                "server_side_encryption_aws_kms_key_id",
                spec.kms_key_id.as_deref(),
            );
            if spec.object_lock.is_some() {
                // A bucket with a default retention refuses uploads without a checksum.
                put("checksum_algorithm", Some("crc32c"));
            }
            // Credentials come from `aws::chain` (static keys first), not from options.
        }
        RegionKind::Oss => {
            put("bucket", spec.bucket.as_deref());
            put("access_key_id", key);
            put("access_key_secret", secret);
        }
        RegionKind::Cos => {
            put("bucket", spec.bucket.as_deref());
            put("secret_id", key);
            put("secret_key", secret);
        }
        RegionKind::Gcs => {
            put("bucket", spec.bucket.as_deref());
        }
        RegionKind::Azblob => {
            put("container", spec.bucket.as_deref());
            put("account_name", key);
            put("account_key", secret);
        }
    }
    for (k, v) in &spec.options.0 {
        o.push((k.clone(), v.to_string()));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(part_size_mib: Option<u32>) -> Region {
        let mut spec = serde_json::json!({
            "name": "r", "kind": "s3", "bucket": "b", "region": "x",
            "endpoint": "http://127.0.0.1:9",
        });
        if let Some(p) = part_size_mib {
            spec["part_size_mib"] = p.into();
        }
        Region::open(&serde_json::from_value(spec).unwrap()).unwrap()
    }

    const MIB: usize = 1024 * 1024;

    #[test]
    fn parts_shrink_to_an_estimate_only_when_the_config_leaves_them_open() {
        let r = s3(None);
        assert_eq!(r.part_size_for(None), 8 * MIB, "no estimate: the default");
        // A bucket of a few hundred MB, as in the benchmark: S3's smallest part.
        assert_eq!(r.part_size_for(Some(360_000_000)), 5 * MIB);
        // 6 GiB might grow to 60 GiB: 10,000 parts of 7 MiB hold it (6 MiB would not).
        assert_eq!(r.part_size_for(Some(6 << 30)), 7 * MIB);
        // Never above the default, so memory stays what it was for the largest.
        assert_eq!(r.part_size_for(Some(1 << 40)), 8 * MIB);
        // Set in the config: used as is, either way.
        let set = s3(Some(16));
        assert_eq!(set.part_size_for(Some(1000)), 16 * MIB);
        assert_eq!(s3(Some(6)).part_size_for(Some(1 << 40)), 6 * MIB);
    }
}
