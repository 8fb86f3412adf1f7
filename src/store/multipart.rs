//! Unfinished S3 multipart uploads: `ListMultipartUploads` and `AbortMultipartUpload`, which
//! OpenDAL does not expose. A SIGKILLed run leaves its upload open; its parts cost storage
//! until aborted, and no listing of objects shows them. `prune` aborts stale ones.
//!
//! Two REST calls do not justify the AWS SDK's build time, so they are signed here with
//! SigV4 (path-style URLs, which S3 and the S3-compatible stores accept). Only S3 regions
//! with static keys in the config are covered; others are skipped with a note in the plan.

use super::sigv4::{self, uri_encode};
use crate::config::{RegionKind, RegionSpec};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};

/// What signing needs, taken from an S3 region's config.
#[derive(Clone, Debug)]
pub struct S3Access {
    endpoint: String,
    bucket: String,
    region: String,
    /// The repository root as a key prefix, `""` or `prod/`.
    root: String,
    key: String,
    secret: String,
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
            region,
            root: if root.is_empty() {
                String::new()
            } else {
                format!("{root}/")
            },
            key: s.access_key_id.as_ref()?.expose().to_string(),
            secret: s.secret_access_key.as_ref()?.expose().to_string(),
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
            let body = self.call(reqwest::Method::GET, "", &q).await?;
            for u in elements(&body, "Upload") {
                let (Some(k), Some(id)) = (text(u, "Key"), text(u, "UploadId")) else {
                    continue;
                };
                out.push(Upload {
                    key: k.strip_prefix(&self.root).unwrap_or(&k).to_string(),
                    upload_id: id,
                    initiated: text(u, "Initiated").and_then(|t| t.parse().ok()),
                });
            }
            if text(&body, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            key_marker = text(&body, "NextKeyMarker").unwrap_or_default();
            id_marker = text(&body, "NextUploadIdMarker").unwrap_or_default();
            if key_marker.is_empty() {
                return Ok(out);
            }
        }
    }

    pub async fn abort(&self, u: &Upload) -> Result<()> {
        let key = format!("{}{}", self.root, u.key);
        self.call(
            reqwest::Method::DELETE,
            &key,
            &[("uploadId".into(), u.upload_id.clone())],
        )
        .await
        .map(|_| ())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        key: &str,
        query: &[(String, String)],
    ) -> Result<String> {
        let now = Utc::now();
        let path = format!(
            "/{}/{}",
            uri_encode(&self.bucket, false),
            uri_encode(key, true)
        );
        let path = if key.is_empty() {
            format!("/{}", uri_encode(&self.bucket, false))
        } else {
            path
        };
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        q.sort();
        let query_string = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let url = url::Url::parse(&self.endpoint)
            .map_err(|e| Error::usage(format!("endpoint {}: {e}", self.endpoint)))?;
        let keys = sigv4::Keys {
            id: self.key.clone(),
            secret: self.secret.clone(),
        };
        let signed = sigv4::sign(
            method.as_str(),
            &sigv4::host(&url),
            &path,
            &query_string,
            b"",
            &self.region,
            "s3",
            &keys,
            now,
        );
        let full = format!(
            "{}{path}{}{query_string}",
            self.endpoint,
            if query_string.is_empty() { "" } else { "?" }
        );
        let resp = reqwest::Client::new()
            .request(method.clone(), &full)
            .header("x-amz-date", &signed.amz_date)
            .header("x-amz-content-sha256", &signed.content_sha256)
            .header("authorization", signed.authorization)
            .timeout(std::time::Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| Error::failed(format!("S3 {method} {path}: {e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Error::failed(format!(
                "S3 {method} {path}?{query_string}: {status}: {}",
                body.chars().take(300).collect::<String>()
            )));
        }
        Ok(body)
    }
}

/// The bodies of every `<tag>…</tag>` in a flat S3 XML response.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn text(xml: &str, tag: &str) -> Option<String> {
    elements(xml, tag).first().map(|s| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    })
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
        assert_eq!(text(ups[0], "UploadId").as_deref(), Some("abc"));
        assert_eq!(text(ups[1], "Key").as_deref(), Some("prod/a&b"));
        assert_eq!(uri_encode("a b/c~", true), "a%20b/c~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
