//! Cross-field checks that serde cannot express. Pure: no I/O, no network.

use super::load::{Parsed, Problems};
use super::{Config, RegionKind, VerifyLevel};
use marked_yaml::Node;
use std::collections::HashSet;
use std::path::Path;

/// Every rule is checked and every broken one recorded (at its field's position in `root`);
/// the `Config` comes back only when none is.
pub(super) fn validate(
    parsed: Parsed,
    root: &Node,
    path: &Path,
    p: &mut Problems,
) -> Option<Config> {
    let Parsed {
        spec,
        region_at,
        job_at,
        notification_at,
        complete,
    } = parsed;
    let before = p.list.len();
    let cell = std::cell::RefCell::new(&mut *p);
    let err = |field: String, msg: String| {
        cell.borrow_mut()
            .push(crate::yamltree::find(root, &field), &field, msg);
    };

    if complete && spec.regions.is_empty() {
        err("regions".into(), "at least one region is required".into());
    }
    let mut seen = HashSet::new();
    for (i, r) in spec.regions.iter().enumerate() {
        let field = |f: &str| format!("regions[{}].{f}", region_at[i]);
        if !seen.insert(&r.name) {
            err(
                field("name"),
                format!("duplicate region name {:?}", r.name.0),
            );
        }
        match r.kind {
            RegionKind::Fs if r.root.is_none() => {
                err(
                    field("root"),
                    "an fs region needs `root` (a directory)".into(),
                );
            }
            RegionKind::Fs => {}
            _ if r.bucket.is_none() => {
                err(
                    field("bucket"),
                    format!("a {} region needs `bucket`", r.kind.scheme()),
                );
            }
            _ => {}
        }
        if let Some(p) = r.part_size_mib {
            if !(5..=5120).contains(&p) {
                err(
                    field("part_size_mib"),
                    format!("{p} MiB is outside what S3 multipart accepts (5..=5120)"),
                );
            }
        }
        if let Some(e) = &r.endpoint {
            if let Err(why) = endpoint_ok(e) {
                err(field("endpoint"), why);
            }
        }
        if r.timeout
            .is_some_and(|t| t < std::time::Duration::from_secs(1))
        {
            err(
                field("timeout"),
                "must be at least 1s (how long a store request may make no progress)".into(),
            );
        }
        if r.upload_concurrency == Some(0) {
            err(field("upload_concurrency"), "must be at least 1".into());
        }
        s3_only(r, &mut |f, m| err(field(f), m));
    }

    let min_copies = spec.min_copies.unwrap_or(spec.regions.len());
    if complete && (min_copies == 0 || min_copies > spec.regions.len()) {
        err(
            "min_copies".into(),
            format!(
                "{min_copies} must be between 1 and the number of regions ({})",
                spec.regions.len()
            ),
        );
    }

    let mut seen = HashSet::new();
    for (i, j) in spec.jobs.iter().enumerate() {
        let field = |f: &str| format!("jobs[{}].{f}", job_at[i]);
        if !seen.insert(&j.name) {
            err(field("name"), format!("duplicate job name {:?}", j.name.0));
        }
        if j.encryption.as_ref().is_some_and(seals_nothing) {
            err(
                field("encryption.recipients"),
                "name at least one recipient (age1…) or a passphrase, or remove the job's encryption block".into(),
            );
        }
        if j.rpo == Some(std::time::Duration::ZERO) {
            err(field("rpo"),
                "`rpo: 0s` can never be met: a backup is always some time old; give the most data, in time, the job may lose (e.g. 15m)".into(),
            );
        }
        if j.rto == Some(std::time::Duration::ZERO) {
            err(field("rto"),
                "`rto: 0s` can never be met: a restore always takes some time; give the longest a restore may take (e.g. 30m)".into(),
            );
        }
        // URL syntax is checked while parsing.
        for p in j.source.plugin().problems() {
            err(field(&format!("source.{}", p.field)), p.message);
        }
        if let Some(r) = &j.retention {
            if r.is_empty() {
                err(field("retention"),
                    "no keep_* rule: this would keep only what the safety rules keep; remove `retention` to keep everything".into(),
                );
            }
        }
        if let Some(v) = &j.verify {
            let rules = j.source.about().verify;
            if !v.assertions.is_empty() && !rules.assertions {
                err(
                    field("verify.assertions"),
                    format!(
                        "SQL assertions apply to postgres jobs, not {}",
                        j.source.kind()
                    ),
                );
            }
            if let Some((i, _)) = v
                .assertions
                .iter()
                .enumerate()
                .find(|(_, a)| a.sql.trim().is_empty())
            {
                err(
                    field(&format!("verify.assertions[{i}].sql")),
                    "empty query".into(),
                );
            }
            if v.level == VerifyLevel::Restore && rules.restore_needs_scratch && v.scratch.is_none()
            {
                err(
                    field("verify.scratch"),
                    "`level: restore` needs `scratch`, a throwaway target to restore into".into(),
                );
            }
        }
    }

    let lease_ttl = spec.lease_ttl.unwrap_or(crate::store::lease::DEFAULT_TTL);
    if lease_ttl < std::time::Duration::from_secs(10) {
        err(
            "lease_ttl".into(),
            "must be at least 10s (it is renewed every third of it)".into(),
        );
    }

    let sch = &spec.scheduler;
    if sch.max_concurrent == 0 {
        err(
            "scheduler.max_concurrent".into(),
            "must be at least 1".into(),
        );
    }
    if sch.attempts == 0 {
        err(
            "scheduler.attempts".into(),
            "must be at least 1 (1 = no retry)".into(),
        );
    }
    if spec.encryption.as_ref().is_some_and(seals_nothing) {
        err(
            "encryption.recipients".into(),
            "name at least one recipient (age1…) or a passphrase, or remove the encryption block"
                .into(),
        );
    }
    for (name, every) in spec.drills.iter().flat_map(|d| &d.cadence) {
        if every.is_zero() {
            err(
                format!("drills.cadence.{name}"),
                "a cadence of 0s is overdue at once; give how often the playbook must pass a drill (e.g. 90d)".into(),
            );
        }
    }
    for (i, n) in spec.notifications.iter().enumerate() {
        let u = n.url.expose();
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            err(
                format!("notifications[{}].url", notification_at[i]),
                "not an http:// or https:// URL".into(),
            );
        }
    }

    if !complete || cell.into_inner().list.len() > before {
        return None;
    }
    Some(Config {
        path: path.to_path_buf(),
        regions: spec.regions,
        min_copies,
        lease_ttl,
        jobs: spec.jobs,
        scheduler: spec.scheduler,
        notifications: spec.notifications,
        encryption: spec.encryption,
        catalog: spec.catalog,
        drills: spec.drills.unwrap_or_default(),
    })
}

/// An object store endpoint: an absolute http(s) URL with a host.
fn endpoint_ok(e: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(e).map_err(|why| {
        format!(
            "{:?} is not a URL ({why}); write e.g. https://s3.example.internal",
            crate::yamlscan::clip(e, 80)
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "{:?}: the endpoint must be http:// or https://, not {}://",
            crate::yamlscan::clip(e, 80),
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{:?} has no host", crate::yamlscan::clip(e, 80)));
    }
    Ok(())
}

/// The S3-only region fields: refused on other kinds (where they would silently do nothing),
/// and checked for what S3 accepts.
fn s3_only(r: &super::RegionSpec, err: &mut dyn FnMut(&str, String)) {
    let set = [
        ("object_lock", r.object_lock.is_some()),
        ("storage_class", r.storage_class.is_some()),
        ("server_side_encryption", r.server_side_encryption.is_some()),
        ("kms_key_id", r.kms_key_id.is_some()),
    ];
    if r.kind != RegionKind::S3 {
        for (f, _) in set.iter().filter(|(_, on)| *on) {
            err(
                f,
                format!(
                    "only s3 regions have `{f}`; for {} see docs/security.md",
                    r.kind.scheme()
                ),
            );
        }
        return;
    }
    if let Some(l) = &r.object_lock {
        if l.retain < std::time::Duration::from_secs(1) {
            err("object_lock.retain", "must be at least 1s".into());
        }
    }
    if let Some(sse) = &r.server_side_encryption {
        if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse.as_str()) {
            err(
                "server_side_encryption",
                format!("{sse:?} is not one of AES256, aws:kms, aws:kms:dsse"),
            );
        }
    }
    if r.kms_key_id.is_some()
        && !r
            .server_side_encryption
            .as_deref()
            .is_some_and(|s| s.starts_with("aws:kms"))
    {
        err(
            "kms_key_id",
            "a KMS key needs `server_side_encryption: aws:kms` (or aws:kms:dsse)".into(),
        );
    }
}

/// An encryption block new backups could not be sealed with.
fn seals_nothing(e: &super::EncryptionSpec) -> bool {
    e.recipients.is_empty() && e.passphrase.is_none()
}
