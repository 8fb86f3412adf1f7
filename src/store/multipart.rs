//! Unfinished S3 multipart uploads: `ListMultipartUploads` and `AbortMultipartUpload`, which
//! OpenDAL does not expose. A SIGKILLed run leaves its upload open; its parts cost storage
//! until aborted, and no listing of objects shows them. `prune` aborts stale ones.
//!
//! Signed by `aws::Aws` with the region's identity (static keys or the standard chain), on
//! path-style URLs, which S3 and the S3-compatible stores accept.

use super::aws::{element, elements, uri_encode, Answer, Aws, StaticKeys};
use crate::config::{RegionKind, RegionSpec};
use crate::error::{Error, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// The S3 REST API of one region's bucket, for what OpenDAL does not do.
#[derive(Clone, Debug)]
pub struct S3Access {
    endpoint: String,
    bucket: String,
    /// The repository root as a key prefix, `""` or `prod/`.
    root: String,
    aws: Aws,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Upload {
    /// Key relative to the repository root.
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<DateTime<Utc>>,
}

impl S3Access {
    pub fn from_spec(s: &RegionSpec) -> Option<S3Access> {
        if s.kind != RegionKind::S3 {
            return None;
        }
        let region = s.region.as_deref().unwrap_or("us-east-1").to_string();
        let root = s.root.as_deref().unwrap_or("").trim_matches('/');
        Some(S3Access {
            endpoint: s
                .endpoint
                .as_deref()
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com")),
            bucket: s.bucket.as_deref()?.to_string(),
            root: if root.is_empty() {
                String::new()
            } else {
                format!("{root}/")
            },
            aws: Aws::new("s3", &region, &keys(s)),
        })
    }

    /// Unfinished uploads whose key starts with `prefix` (relative to the root), all pages.
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        loop {
            let mut q = vec![
                ("prefix".to_string(), format!("{}{prefix}", self.root)),
                ("uploads".to_string(), String::new()),
            ];
            if !key_marker.is_empty() {
                q.push(("key-marker".into(), key_marker.clone()));
                q.push(("upload-id-marker".into(), id_marker.clone()));
            }
            let body = self
                .call(reqwest::Method::GET, "", &q, &[], Bytes::new())
                .await?;
            for u in elements(&body, "Upload") {
                let (Some(k), Some(id)) = (element(u, "Key"), element(u, "UploadId")) else {
                    continue;
                };
                out.push(Upload {
                    key: k.strip_prefix(&self.root).unwrap_or(&k).to_string(),
                    upload_id: id,
                    initiated: element(u, "Initiated").and_then(|t| t.parse().ok()),
                });
            }
            if element(&body, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            key_marker = element(&body, "NextKeyMarker").unwrap_or_default();
            id_marker = element(&body, "NextUploadIdMarker").unwrap_or_default();
            if key_marker.is_empty() {
                return Ok(out);
            }
        }
    }

    pub async fn abort(&self, u: &Upload) -> Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &self.key(&u.key),
            &[("uploadId".into(), u.upload_id.clone())],
            &[],
            Bytes::new(),
        )
        .await
        .map(|_| ())
    }

    /// One signed call on the bucket (`key` empty) or on an object; the body of a 2xx answer.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &[(String, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<String> {
        let (a, what) = self.answer(method, key, query, headers, body).await?;
        failed_unless_ok(a, &what)
    }

    /// One signed call, whatever its status; with a description for messages.
    pub(super) async fn answer(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &[(String, String)],
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<(Answer, String)> {
        let mut path = format!("/{}", uri_encode(&self.bucket, false));
        if !key.is_empty() {
            path = format!("{path}/{}", uri_encode(key, true));
        }
        let query_string = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    uri_encode(k, false)
                } else {
                    format!("{}={}", uri_encode(k, false), uri_encode(v, false))
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        let url = format!(
            "{}{path}{}{query_string}",
            self.endpoint,
            if query_string.is_empty() { "" } else { "?" }
        );
        let what = format!("S3 {method} {path}?{query_string}");
        let a = self
            .aws
            .send(
                method,
                &url,
                headers,
                body,
                std::time::Duration::from_secs(60),
            )
            .await?;
        Ok((a, what))
    }

    /// The key of `rel` (relative to the repository root) in the bucket.
    pub(super) fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.root)
    }
}

/// The body of a 2xx answer, or an error with S3's code and message.
pub(super) fn failed_unless_ok(a: Answer, what: &str) -> Result<String> {
    if a.status.is_success() {
        return Ok(a.body);
    }
    let code = element(&a.body, "Code").unwrap_or_default();
    let msg = element(&a.body, "Message").unwrap_or_else(|| a.body.chars().take(300).collect());
    Err(Error::failed(format!("{what}: {} {code}: {msg}", a.status)))
}

/// The static keys a region's config gives, if any.
pub fn keys(s: &RegionSpec) -> StaticKeys {
    StaticKeys::from_secrets(
        s.access_key_id.as_ref(),
        s.secret_access_key.as_ref(),
        s.session_token.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_multipart_uploads_response() {
        let xml = "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated>\
            <Upload><Key>prod/backups/app/x/db.pgdump.zst</Key><UploadId>abc</UploadId>\
            <Initiated>2026-11-20T01:02:03.000Z</Initiated></Upload>\
            <Upload><Key>prod/a&amp;b</Key><UploadId>def</UploadId></Upload></ListMultipartUploadsResult>";
        let ups = elements(xml, "Upload");
        assert_eq!(ups.len(), 2);
        assert_eq!(element(ups[0], "UploadId").as_deref(), Some("abc"));
        assert_eq!(element(ups[1], "Key").as_deref(), Some("prod/a&b"));
    }
}
