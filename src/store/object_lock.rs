//! S3 Object Lock, per region (`object_lock: { mode, retain }`): what makes a backup
//! survive an attacker who holds drctl's own credentials.
//!
//! - **Commit** (`lock_backup`): once every artifact is proven present, each is given its
//!   retention (`PutObjectRetention`), then the manifest is written and locked last, so a
//!   manifest is never locked for less time than the objects it points at. A region whose
//!   locks cannot be set does not commit.
//! - **Prune** (`locked_until`): a copy whose objects are still under retention is reported
//!   as kept-because-locked, never attempted; a lock is the store saying "not yet". With
//!   `while_kept`, each real prune raises the locks of the copies it keeps (`extend_lock`).
//! - **Delete** (`remove_versions`): a lock bucket is versioned, so a plain delete would only
//!   hide the objects behind a delete marker while they still cost storage: every version
//!   (and marker) is deleted by id, the manifest's first.
//! - **Verify** (`check_locks`): every object of the backup carries the configured mode and a
//!   retain-until date covering `retain` from the backup's consistent point.
//!
//! OpenDAL has no Object Lock calls; they are signed by `aws::Aws` like the multipart ones.

use super::multipart::failed_unless_ok;
use super::repo::{backup_dir, manifest_path};
use super::Region;
use crate::config::{LockMode, ObjectLockSpec};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::Digest;

/// An object's retention, as the store reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    pub mode: String,
    pub until: DateTime<Utc>,
}

impl Region {
    fn lock_parts(&self) -> Result<(&super::multipart::S3Access, ObjectLockSpec)> {
        match (&self.s3, self.lock) {
            (Some(s3), Some(l)) => Ok((s3, l)),
            _ => Err(Error::usage(format!(
                "region {} has no object_lock",
                self.name
            ))),
        }
    }

    /// Set `until` on the current version of `rel` (a path under the repository root).
    pub async fn put_retention(&self, rel: &str, until: DateTime<Utc>) -> Result<()> {
        let (s3, l) = self.lock_parts()?;
        let body = retention_xml(l.mode, until);
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let (a, what) = s3
            .answer(
                reqwest::Method::PUT,
                &s3.key(rel),
                &[("retention".into(), String::new())],
                &[
                    ("content-md5", md5),
                    ("content-type", "application/xml".into()),
                ],
                Bytes::from(body),
            )
            .await?;
        failed_unless_ok(a, &what).map(|_| ()).map_err(|e| {
            e.context(format!("region {}: cannot lock {rel}", self.name)).hint(
                "the bucket must have Object Lock enabled (it can only be enabled on a versioned bucket), \
                 and the identity needs s3:PutObjectRetention",
            )
        })
    }

    /// The retention of the current version of `rel`; `None` when it has none. Read from
    /// `HeadObject`'s `x-amz-object-lock-*` headers (which need s3:GetObjectRetention), the
    /// one answer S3 and its emulators agree on.
    pub async fn retention(&self, rel: &str) -> Result<Option<Retention>> {
        let (s3, _) = self.lock_parts()?;
        let (a, what) = s3
            .answer(reqwest::Method::HEAD, &s3.key(rel), &[], &[], Bytes::new())
            .await?;
        if !a.status.is_success() {
            return Err(
                Error::failed(format!("region {}: {what}: {}", self.name, a.status)).hint(
                    "the identity needs s3:GetObject and s3:GetObjectRetention on the bucket",
                ),
            );
        }
        let header = |h: &str| a.headers.get(h).and_then(|v| v.to_str().ok());
        let (Some(mode), Some(until)) = (
            header("x-amz-object-lock-mode"),
            header("x-amz-object-lock-retain-until-date"),
        ) else {
            return Ok(None);
        };
        let until = DateTime::parse_from_rfc3339(until)
            .map_err(|e| Error::failed(format!("{what}: retain-until {until:?}: {e}")))?
            .with_timezone(&Utc);
        Ok(Some(Retention {
            mode: mode.to_string(),
            until,
        }))
    }

    /// When a backup committing at `at` is locked until, in this region; `None` without a lock.
    pub fn lock_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.lock
            .map(|l| at + chrono::Duration::from_std(l.retain).unwrap_or_default())
    }

    /// Lock every artifact of `m` until `until`; the manifest is locked by `lock_manifest`
    /// once written.
    pub async fn lock_artifacts(&self, m: &Manifest, until: DateTime<Utc>) -> Result<()> {
        for a in &m.artifacts {
            self.put_retention(&format!("{}{}", backup_dir(&m.job, &m.id), a.path), until)
                .await?;
        }
        Ok(())
    }

    /// Lock the manifest as long as its artifacts (`until` from `lock_artifacts`).
    pub async fn lock_manifest(&self, m: &Manifest, until: DateTime<Utc>) -> Result<()> {
        self.put_retention(&manifest_path(&m.job, &m.id), until)
            .await
    }

    /// The current objects of one backup folder.
    async fn objects(&self, job: &str, id: &str) -> Result<Vec<String>> {
        let dir = backup_dir(job, id);
        let entries = self
            .op
            .list_with(&dir)
            .recursive(true)
            .await
            .map_err(|e| self.err(e, &dir))?;
        Ok(entries
            .iter()
            .map(|e| e.path().to_string())
            .filter(|p| !p.ends_with('/'))
            .collect())
    }

    /// The latest retain-until among the current objects of one backup folder, when it is
    /// still in the future: what keeps prune's hands off.
    pub async fn locked_until(&self, job: &str, id: &str) -> Result<Option<Retention>> {
        let mut latest: Option<Retention> = None;
        for p in self.objects(job, id).await? {
            if let Some(r) = self.retention(&p).await? {
                if latest.as_ref().is_none_or(|l| r.until > l.until) {
                    latest = Some(r);
                }
            }
        }
        Ok(latest.filter(|r| r.until > Utc::now()))
    }

    /// Raise the lock of every current object of one backup folder to `until` where it is
    /// shorter; whether any was raised.
    pub async fn extend_lock(&self, job: &str, id: &str, until: DateTime<Utc>) -> Result<bool> {
        let mut raised = false;
        for p in self.objects(job, id).await? {
            if self.retention(&p).await?.is_none_or(|r| r.until < until) {
                self.put_retention(&p, until).await?;
                raised = true;
            }
        }
        Ok(raised)
    }

    /// Every object of `m` (manifest included) is locked in the configured mode, at least
    /// `retain` past the backup's consistent point.
    pub async fn check_locks(&self, m: &Manifest) -> Result<()> {
        let (_, l) = self.lock_parts()?;
        let owed = m.consistent_at + chrono::Duration::from_std(l.retain).unwrap_or_default();
        let dir = backup_dir(&m.job, &m.id);
        let paths = m
            .artifacts
            .iter()
            .map(|a| format!("{dir}{}", a.path))
            .chain([manifest_path(&m.job, &m.id)]);
        for p in paths {
            let why = match self.retention(&p).await? {
                None => "has no retention".to_string(),
                Some(r) if r.mode != l.mode.s3() => {
                    format!("is locked in {} mode, not {}", r.mode, l.mode.s3())
                }
                Some(r) if r.until < owed => format!(
                    "is locked until {}, short of {} ({} after its consistent point)",
                    r.until.to_rfc3339_opts(SecondsFormat::Secs, true),
                    owed.to_rfc3339_opts(SecondsFormat::Secs, true),
                    humantime::format_duration(l.retain)
                ),
                Some(_) => continue,
            };
            return Err(Error::failed(format!("{p} {why}")).hint(
                "an object without the lock can be deleted by whoever holds the region's credentials; \
                 take a new backup (it is locked as it commits) and check the bucket's Object Lock settings",
            ));
        }
        Ok(())
    }

    /// Delete every version and delete marker under `dir`, the manifest's first.
    pub async fn remove_versions(&self, dir: &str) -> Result<()> {
        let mut entries = self
            .op
            .list_with(dir)
            .recursive(true)
            .versions(true)
            .deleted(true)
            .await
            .map_err(|e| self.err(e, dir))?;
        entries.retain(|e| !e.path().ends_with('/'));
        entries.sort_by_key(|e| !e.path().ends_with("/manifest.json"));
        for e in entries {
            let mut d = self.op.delete_with(e.path());
            if let Some(v) = e.metadata().version() {
                d = d.version(v);
            }
            d.await.map_err(|err| {
                self.err(err, e.path())
                    .hint("a locked version cannot be deleted before its retention ends")
            })?;
        }
        Ok(())
    }
}

fn retention_xml(mode: LockMode, until: DateTime<Utc>) -> Vec<u8> {
    format!(
        "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
         <RetainUntilDate>{}</RetainUntilDate></Retention>",
        mode.s3(),
        until.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_body_is_what_s3_documents() {
        let t = DateTime::parse_from_rfc3339("2027-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        let xml = String::from_utf8(retention_xml(LockMode::Compliance, t)).unwrap();
        assert!(xml.contains("<Mode>COMPLIANCE</Mode>"), "{xml}");
        assert!(
            xml.contains("<RetainUntilDate>2027-01-02T03:04:05.678Z</RetainUntilDate>"),
            "{xml}"
        );
    }
}
