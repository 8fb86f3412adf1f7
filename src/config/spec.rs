//! The config file as written: serde types with no behaviour. Field-level checks (names, cron,
//! durations, codecs, env vars) happen while deserializing so their errors carry the YAML
//! position; cross-field checks live in `validate.rs`.

use crate::interp::{parse_scalar, Interp, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
/// drctl.yaml: where backups go (regions) and what is backed up (jobs).
pub struct ConfigSpec {
    /// Every backup is written to every region, concurrently.
    pub regions: Vec<RegionSpec>,
    /// A run succeeds only when at least this many regions hold the backup. Default: all regions.
    #[serde(default)]
    pub min_copies: Option<usize>,
    /// How long a run's lease lives without renewal (renewed every third of it while the run
    /// lasts): a crashed run blocks its job at most this long. Default 5m.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub lease_ttl: Option<Duration>,
    pub jobs: Vec<JobSpec>,
    /// How `drctl schedule` runs the jobs' schedules (all optional).
    #[serde(default)]
    pub scheduler: super::daemon::SchedulerSpec,
    /// Webhooks told about failures, RPO breaches, failed verifications (and successes).
    #[serde(default)]
    pub notifications: Vec<super::daemon::NotifierSpec>,
    /// Client-side encryption of every new backup (age), and the identities that read them.
    #[serde(default)]
    pub encryption: Option<EncryptionSpec>,
    /// An optional PostgreSQL catalog of what the repositories hold (history, dashboards);
    /// never the system of record.
    #[serde(default)]
    pub catalog: Option<CatalogSpec>,
    /// How often each playbook must be drilled: the status page and the
    /// `drctl_drill_next_due_timestamp_seconds` metric mark a playbook overdue once its
    /// newest passed run is older than its cadence.
    #[serde(default)]
    pub drills: Option<DrillsSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// `drills: { cadence: { region-failure: 90d, restore-from-backup: 7d } }`.
pub struct DrillsSpec {
    /// Playbook name (as `drctl drill run` takes it) → the longest time between passed runs.
    #[serde(default, deserialize_with = "cadence_map::deserialize")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub cadence: BTreeMap<String, Duration>,
}

/// Each value is read as its own duration, so a bad one is reported at its own line and key.
mod cadence_map {
    use serde::{Deserialize, Deserializer};
    use std::collections::BTreeMap;
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        let raw = BTreeMap::<String, humantime_serde::Serde<Duration>>::deserialize(d)?;
        Ok(raw.into_iter().map(|(k, v)| (k, v.into_inner())).collect())
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// `catalog: { url: postgres://drctl@catalog:5432/drctl }`: migrated by `drctl catalog
/// migrate`, filled by `drctl catalog sync`.
pub struct CatalogSpec {
    /// A PostgreSQL URL (use `${VAR}` for its password).
    pub url: Secret,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// `encryption: { recipients: [age1…], identity_files: [/etc/drctl/backup.key] }`: new backups
/// are encrypted to every recipient (several, for key escrow); restore and verify read them
/// with whichever identity matches. Old backups stay readable with the old identities.
pub struct EncryptionSpec {
    /// age X25519 recipients, `age1…` (public keys: not secret).
    #[serde(default)]
    pub recipients: Vec<AgeRecipient>,
    /// Files of age identities (age-keygen's output), for restore and verify.
    #[serde(default)]
    pub identity_files: Vec<std::path::PathBuf>,
    /// age's passphrase mode (scrypt), for scripts without key files: use `${VAR}` and a long
    /// random value. New backups use it when no `recipients` are given (age cannot mix the
    /// two in one file); it always reads the backups sealed with it.
    #[serde(default)]
    pub passphrase: Option<Secret>,
}

/// An age X25519 recipient, checked when the config is read.
#[derive(Debug, Clone)]
pub struct AgeRecipient(pub crate::pipeline::crypt::Recipient);

impl<'de> Deserialize<'de> for AgeRecipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        crate::interp::parse_scalar(d, "an age recipient (age1…)", |s| {
            crate::pipeline::crypt::Recipient::parse(s).map(AgeRecipient)
        })
    }
}

impl JsonSchema for AgeRecipient {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AgeRecipient".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^age1" })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    Fs,
    S3,
    Oss,
    Cos,
    Gcs,
    Azblob,
}

impl RegionKind {
    pub fn scheme(self) -> &'static str {
        match self {
            RegionKind::Fs => "fs",
            RegionKind::S3 => "s3",
            RegionKind::Oss => "oss",
            RegionKind::Cos => "cos",
            RegionKind::Gcs => "gcs",
            RegionKind::Azblob => "azblob",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// One repository copy. `kind` picks the OpenDAL service.
pub struct RegionSpec {
    pub name: Name,
    pub kind: RegionKind,
    /// Directory (fs) or key prefix (object stores) of the repository.
    #[serde(default)]
    pub root: Option<Interp>,
    /// Bucket (s3, oss, cos, gcs) or container (azblob).
    #[serde(default, alias = "container")]
    pub bucket: Option<Interp>,
    /// The store's own region name, e.g. `us-east-1`.
    #[serde(default)]
    pub region: Option<Interp>,
    /// Endpoint URL for S3-compatible and other stores.
    #[serde(default)]
    pub endpoint: Option<Interp>,
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// s3: the session token that goes with temporary keys.
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// Multipart part size in MiB (object stores). Default 8. A single artifact can be at most
    /// 10,000 parts, so 8 MiB allows 80 GiB; raise it for larger databases. Unset, artifacts
    /// with a size estimate get smaller parts (`Region::part_size_for`).
    #[serde(default)]
    pub part_size_mib: Option<u32>,
    /// Parts uploaded concurrently per artifact. Default 2.
    #[serde(default)]
    pub upload_concurrency: Option<u32>,
    /// How long one store request may make no progress before it fails (and is retried, up
    /// to 3 times). Default 60s. A whole request may take at most twice this.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Duration>,
    /// s3: S3 Object Lock retention on every object of every new backup, manifest included.
    /// The bucket must have Object Lock enabled (and so versioning).
    #[serde(default)]
    pub object_lock: Option<ObjectLockSpec>,
    /// s3: the storage class of new objects, e.g. `STANDARD_IA`, `GLACIER_IR`. Default: the
    /// bucket's (STANDARD).
    #[serde(default)]
    pub storage_class: Option<String>,
    /// s3: server-side encryption of new objects: `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or
    /// `aws:kms:dsse`. Default: the bucket's.
    #[serde(default)]
    pub server_side_encryption: Option<String>,
    /// s3: the KMS key (id, ARN or alias) for `server_side_encryption: aws:kms`. Default: the
    /// account's `aws/s3` key.
    #[serde(default)]
    pub kms_key_id: Option<Interp>,
    /// Extra OpenDAL service options passed through unchanged (values may use `${VAR}`).
    /// Values of options whose name says credential (`sas_token`, `account_key`, …) are
    /// secrets; the others (`allow_anonymous: "true"`) are ordinary words.
    #[serde(default)]
    pub options: StoreOptions,
}

/// A region's pass-through options. Only credential-named ones are registered with the
/// redactor: registering every value made `"true"` a secret, and `-o json` then printed
/// `"passed": [redacted]`.
#[derive(Debug, Clone, Default, JsonSchema)]
#[schemars(transparent)]
pub struct StoreOptions(pub BTreeMap<String, Interp>);

/// Whether an OpenDAL option of this name holds a credential.
pub fn is_credential_option(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "credential",
        "sas",
        "signature",
        "external_id",
    ]
    .iter()
    .any(|w| n.contains(w))
}

impl<'de> Deserialize<'de> for StoreOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let map = BTreeMap::<String, Interp>::deserialize(d)?;
        for (k, v) in &map {
            if is_credential_option(k) {
                crate::redact::register(v);
            }
        }
        Ok(StoreOptions(map))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// `object_lock: { mode: compliance, retain: 30d }`: each object of a backup is locked for
/// `retain` from when the backup commits (with `while_kept`, until the retention policy
/// releases it and `retain` beyond). Until then no credential can delete or overwrite it
/// (compliance), or only one allowed to bypass governance retention can (governance).
pub struct ObjectLockSpec {
    pub mode: LockMode,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub retain: Duration,
    /// Locked for as long as the job's retention keeps the backup, and `retain` beyond: every
    /// real `prune` extends the lock of each copy it keeps to `retain` from then. Without
    /// it, a backup is locked for `retain` from its commit only.
    #[serde(default)]
    pub while_kept: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    /// As S3 spells it.
    pub fn s3(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// One job. The loader parses `source` on its own, through the source registry (so errors
/// inside it keep their positions): `S` is `Skip` for that first pass.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec<S = crate::source::SourceSpec> {
    pub name: Name,
    pub source: S,
    /// Standard 5-field cron, as in a Kubernetes CronJob, or @hourly, @daily, ...
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub compression: Compression,
    /// Recovery point objective: the most data, in time, this job may lose (`1h`, `15m`).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub rpo: Option<Duration>,
    /// Recovery time objective: the longest a restore of this job may take. `status` judges
    /// it against the newest timed restore (`verify --level restore`, drills' restore steps).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub rto: Option<Duration>,
    #[serde(default)]
    pub retention: Option<RetentionSpec>,
    #[serde(default)]
    pub verify: Option<VerifySpec>,
    /// This job's own encryption, instead of the top-level `encryption` (other recipients,
    /// say, for a team that holds its own keys).
    #[serde(default)]
    pub encryption: Option<EncryptionSpec>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// Retention policy (enforced by `drctl prune`).
pub struct RetentionSpec {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub keep_within: Option<Duration>,
}

impl RetentionSpec {
    pub fn is_empty(&self) -> bool {
        self.policy() == crate::retention::Policy::default()
    }

    pub fn policy(&self) -> crate::retention::Policy {
        crate::retention::Policy {
            keep_last: self.keep_last.unwrap_or(0),
            keep_hourly: self.keep_hourly.unwrap_or(0),
            keep_daily: self.keep_daily.unwrap_or(0),
            keep_weekly: self.keep_weekly.unwrap_or(0),
            keep_monthly: self.keep_monthly.unwrap_or(0),
            keep_yearly: self.keep_yearly.unwrap_or(0),
            keep_within: self.keep_within,
        }
    }
}

impl<S> JobSpec<S> {
    /// The same job with another `source`.
    pub fn with_source<T>(self, source: T) -> JobSpec<T> {
        JobSpec {
            name: self.name,
            source,
            schedule: self.schedule,
            compression: self.compression,
            rpo: self.rpo,
            rto: self.rto,
            retention: self.retention,
            verify: self.verify,
            encryption: self.encryption,
        }
    }
}

/// A value read and thrown away: the `source` of a job's first parsing pass.
#[derive(Debug, Clone, Copy, Default, JsonSchema)]
pub struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Skip)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyLevel {
    Checksum,
    Structure,
    Restore,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    pub level: VerifyLevel,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// Scratch target for `level: restore`, e.g. a PostgreSQL server URL.
    #[serde(default)]
    pub scratch: Option<Secret>,
    /// PostgreSQL only: queries run against the scratch database after a restore-level check;
    /// each one's first column of its first row must equal `expect`.
    #[serde(default)]
    pub assertions: Vec<crate::source::AssertionSpec>,
}

/// A job, region or playbook name: it becomes a path segment, so it is kept to
/// `[a-z0-9][a-z0-9_-]*`, at most 63 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[schemars(transparent)]
pub struct Name(pub String);

impl Name {
    pub fn parse(s: &str) -> Result<Name, String> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Name(s.to_string()))
        } else {
            Err(format!(
                "invalid name {s:?}: use lowercase letters, digits, '-' and '_' (starting with a letter or digit, at most 63 characters)"
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a name", Name::parse)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated cron schedule: standard 5 fields (minute hour day-of-month month day-of-week)
/// or one of @yearly, @monthly, @weekly, @daily, @hourly.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(transparent)]
pub struct Schedule(pub String);

/// `@daily` and friends as the 5-field expressions Kubernetes also expands them to.
pub fn expand_macro(s: &str) -> &str {
    match s.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    }
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let expr = expand_macro(s);
        let fields = expr.split_whitespace().count();
        // Six fields = a leading seconds field, for sub-minute schedules of the daemon only
        // (`k8s render` refuses them: a CronJob takes exactly five).
        if fields != 5 && fields != 6 {
            return Err(format!(
                "invalid schedule {s:?}: expected 5 cron fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly, found {fields} field(s)"
            ));
        }
        // croner follows POSIX/Vixie cron: day-of-week 0-7 with 0 and 7 = Sunday, as in a
        // Kubernetes CronJob. (The `cron` crate numbers weekdays 1-7 from Sunday and wants a
        // seconds field: `1-5` would silently mean Sunday-Thursday.)
        <croner::Cron as std::str::FromStr>::from_str(expr)
            .map_err(|e| format!("invalid schedule {s:?}: {e}"))?;
        Ok(Schedule(s.to_string()))
    }

    /// Whether it has a seconds field (six fields): the daemon runs it, a CronJob cannot.
    pub fn has_seconds(&self) -> bool {
        expand_macro(&self.0).split_whitespace().count() == 6
    }

    /// The parsed expression (it was checked when the config was read).
    pub fn cron(&self) -> croner::Cron {
        <croner::Cron as std::str::FromStr>::from_str(expand_macro(&self.0))
            .unwrap_or_else(|e| unreachable!("schedule {:?} was validated: {e}", self.0))
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a cron schedule", Schedule::parse)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    #[default]
    Zstd,
    Gzip,
    None,
}

/// `compression: zstd` or `compression: { codec: zstd, level: 3, threads: 2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
pub struct Compression {
    pub codec: Codec,
    pub level: Option<i32>,
    /// zstd worker threads (0 = compress on the pipeline's own thread).
    pub threads: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressionMap {
    codec: Codec,
    #[serde(default)]
    level: Option<i32>,
    #[serde(default)]
    threads: u32,
}

impl Compression {
    fn checked(self) -> Result<Self, String> {
        let range = match self.codec {
            Codec::Zstd => Some(1..=19),
            Codec::Gzip => Some(1..=9),
            Codec::None => None,
        };
        match (self.level, range) {
            (Some(l), Some(r)) if !r.contains(&l) => Err(format!(
                "compression level {l} is out of range for {:?}: use {}..={}",
                self.codec,
                r.start(),
                r.end()
            )),
            (Some(_), None) => Err("compression `none` takes no level".to_string()),
            _ if self.threads > 0 && self.codec != Codec::Zstd => {
                Err("`threads` applies to zstd only".to_string())
            }
            _ => Ok(self),
        }
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Compression;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("zstd, gzip, none, or a map {codec, level, threads}")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Compression, E> {
                let codec = Codec::deserialize(serde::de::value::StrDeserializer::<E>::new(s))?;
                Ok(Compression {
                    codec,
                    level: None,
                    threads: 0,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Compression, A::Error> {
                let m =
                    CompressionMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Compression {
                    codec: m.codec,
                    level: m.level,
                    threads: m.threads,
                }
                .checked()
                .map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_accept_standard_cron_and_macros() {
        for ok in [
            "0 * * * *",
            "*/15 2-5 * * 1-5",
            "30 4 1 */2 *",
            "0 3 * * 0",
            "0 3 * * 7",
            "0 3 * * 5-7",
            "@hourly",
            "@daily",
            "@weekly",
        ] {
            assert!(Schedule::parse(ok).is_ok(), "{ok}");
        }
        assert!(Schedule::parse("*/5 * * * * *").unwrap().has_seconds());
        assert!(!Schedule::parse("@daily").unwrap().has_seconds());
        assert!(Schedule::parse("0 0 * * * * *")
            .unwrap_err()
            .contains("found 7 field(s)"));
        assert!(Schedule::parse("61 * * * *")
            .unwrap_err()
            .contains("invalid schedule"));
        assert!(Schedule::parse("@fortnightly").is_err());
    }

    #[test]
    fn only_credential_options_become_secrets() {
        let o: StoreOptions = serde_norway::from_str(
            "{ allow_anonymous: \"true\", default_storage_class: STANDARD, sas_token: sv-2026-sig-Zm9vYmFy }",
        )
        .unwrap();
        assert_eq!(o.0["allow_anonymous"].to_string(), "true");
        let out =
            crate::redact::scrub("\"passed\": true, class STANDARD, token sv-2026-sig-Zm9vYmFy");
        assert_eq!(out, "\"passed\": true, class STANDARD, token [redacted]");
    }

    #[test]
    fn compression_forms() {
        let c: Compression = serde_norway::from_str("gzip").unwrap();
        assert_eq!(c.codec, Codec::Gzip);
        let c: Compression =
            serde_norway::from_str("{ codec: zstd, level: 9, threads: 2 }").unwrap();
        assert_eq!((c.codec, c.level, c.threads), (Codec::Zstd, Some(9), 2));
        assert!(serde_norway::from_str::<Compression>("{ codec: none, level: 3 }").is_err());
        assert!(serde_norway::from_str::<Compression>("{ codec: gzip, threads: 2 }").is_err());
        assert!(serde_norway::from_str::<Compression>("lz4").is_err());
    }

    #[test]
    fn names_are_path_safe() {
        assert!(Name::parse("app-db_2").is_ok());
        for bad in ["", "App", "../x", "a/b", "-x", &"a".repeat(64)] {
            assert!(Name::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret(Interp("hunter2".into()));
        assert_eq!(format!("{s:?}"), "\"[redacted]\"");
    }
}
