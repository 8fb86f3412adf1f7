//! The Redis plug-in: its `source:` block, and its answers to the per-kind questions
//! (`source::SourceKind`).

use super::{check_rdb, check_url, RedisSource};
use crate::error::{Error, Result};
use crate::interp::{expand, parse_scalar, Interp, Secret};
use crate::manifest::Artifact;
use crate::source::kind::{About, Scratch, SourceKind};
use crate::source::{BackupSource, ByteReader, RestoreOptions, RestoreTarget};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Redis: one point-in-time RDB over the replication protocol, streamed.
pub struct RedisSpec {
    /// `redis://[user:password@]host:6379`, or `rediss://…:6380/?ca_file=…&cert_file=…&key_file=…`
    /// for TLS (system trust store without `ca_file`; `cert_file` + `key_file` when the server
    /// wants client certificates). With `method: replication` the user needs the replication
    /// commands (`PSYNC`, `REPLCONF`).
    #[serde(deserialize_with = "redis_url")]
    #[schemars(with = "String")]
    pub url: Secret,
    /// How the snapshot is taken. `replication` (default): one point-in-time RDB over the
    /// replication protocol. `dump`: SCAN + PTTL + DUMP per key, for servers that refuse
    /// replication commands (managed Redis); not point-in-time, stated in the manifest.
    #[serde(default)]
    pub method: RedisMethod,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisMethod {
    #[default]
    Replication,
    Dump,
}

fn redis_url<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
    parse_scalar(d, "a redis:// URL", |raw| {
        let url = expand(raw, |k| std::env::var(k).ok())?;
        check_url(&url)?;
        Ok(Secret(Interp(url)))
    })
}

#[async_trait]
impl SourceKind for RedisSpec {
    fn about() -> About {
        About::new(
            "Redis: one point-in-time RDB over the replication protocol (or SCAN + DUMP), CRC-checked while it streams",
            "redis://host:6379 (every key replayed) or file:/path/dump.rdb (for a cold start)",
        )
    }

    fn backup_source(&self) -> Result<Box<dyn BackupSource>> {
        Ok(Box::new(RedisSource::new(self.clone())))
    }

    fn restore_target(&self, to: &str, opts: RestoreOptions) -> Result<Box<dyn RestoreTarget>> {
        super::restore::target(to, opts)
    }

    async fn check_structure(&self, raw: ByteReader, a: &Artifact) -> Result<String> {
        let facts = check_rdb(raw).await?;
        if facts["dbs"] != a.facts["dbs"] {
            return Err(Error::failed(format!(
                "the RDB holds {} per db, the manifest says {}",
                facts["dbs"], a.facts["dbs"]
            )));
        }
        Ok(format!("RDB parsed, CRC64 ok, {} keys", facts["keys"]))
    }

    /// A temporary `redis-server` (`verify.scratch` names the binary) on a free loopback
    /// port; see `scratch.rs`.
    async fn scratch_check(&self, scratch: &dyn Scratch) -> Result<(f64, String)> {
        super::scratch::check(scratch).await
    }
}
