//! `manifest.json`: the commit point of a backup, and everything needed to list, verify and
//! restore it without any other database.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the repository format (layout + manifest). Bumped on incompatible change.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub drctl_version: String,
    pub id: String,
    pub job: String,
    pub source: SourceInfo,
    pub started_at: DateTime<Utc>,
    /// The instant the data reflects (e.g. the dump's snapshot). RPO counts from here.
    pub consistent_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub artifacts: Vec<Artifact>,
    /// Regions that held every artifact when the backup was committed.
    pub regions: Vec<String>,
    /// Set when the artifacts are encrypted: to whom (absent in older manifests: plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// How a backup's artifacts were encrypted: age, to these recipients' fingerprints (never
/// the keys themselves), after compression; `sha256` and `stored_size` are the ciphertext's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encryption {
    /// `age-x25519` (to `recipients`) or `age-scrypt` (a passphrase).
    pub scheme: String,
    pub recipients: Vec<String>,
    /// age-scrypt: a small ciphertext of a known text, sealed with the same passphrase, so a
    /// wrong passphrase is told before any target is touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    pub kind: String,
    pub server_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    /// Logical name, e.g. `db`.
    pub name: String,
    /// File name inside the backup directory, e.g. `db.pgdump.zst`.
    pub path: String,
    /// zstd | gzip | none
    pub codec: String,
    pub raw_size: u64,
    pub stored_size: u64,
    /// SHA-256 of the stored (compressed) bytes, hex.
    pub sha256: String,
    /// Facts verification compares against, e.g. `{"row_counts": {"public.t": 12}}`.
    #[serde(default)]
    pub facts: serde_json::Value,
}

/// The order of "newest": by `consistent_at` (the instant the data reflects), then by id, so
/// two backups of the same second still have one newest. Every command that picks "latest"
/// uses this one order.
pub fn newness(m: &Manifest) -> (DateTime<Utc>, &str) {
    (m.consistent_at, m.id.as_str())
}

/// The newest of `ms` (see `newness`).
pub fn newest<'a>(ms: impl IntoIterator<Item = &'a Manifest>) -> Option<&'a Manifest> {
    ms.into_iter().max_by(|a, b| newness(a).cmp(&newness(b)))
}

impl Manifest {
    pub fn stored_size(&self) -> u64 {
        self.artifacts.iter().map(|a| a.stored_size).sum()
    }
    pub fn raw_size(&self) -> u64 {
        self.artifacts.iter().map(|a| a.raw_size).sum()
    }
}

/// A backup id: `YYYYMMDDTHHMMSSZ-<6 hex>`, so lexical order is time order.
pub fn new_backup_id(at: DateTime<Utc>) -> String {
    format!(
        "{}-{:06x}",
        at.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Whether `s` has the shape of a backup id (used when listing).
pub fn is_backup_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[16] == b'-'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && b[17..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_parse() {
        let a = new_backup_id("2026-11-23T01:02:03Z".parse().unwrap());
        let b = new_backup_id("2026-11-23T10:00:00Z".parse().unwrap());
        assert!(a < b);
        assert!(a.starts_with("20261123T010203Z-"));
        assert!(is_backup_id(&a) && is_backup_id(&b));
        assert!(!is_backup_id("20261123T010203Z"));
        assert!(!is_backup_id("latest"));
    }
}
