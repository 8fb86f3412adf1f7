//! Route53 for the `dns` step: `ChangeResourceRecordSets` (an UPSERT of the record set), then
//! `GetChange` every `poll_every` until the change is `INSYNC` (bounded by the step's
//! timeout). Signed with SigV4 (service `route53`); no SDK for two calls.

use super::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::store::sigv4;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53 {
    pub hosted_zone_id: String,
    #[serde(default = "endpoint")]
    pub endpoint: String,
    /// Use `${VAR}`; never write keys into a playbook.
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default = "region")]
    pub region: String,
    #[serde(default = "every", with = "humantime_serde")]
    pub poll_every: Duration,
}

fn endpoint() -> String {
    "https://route53.amazonaws.com".into()
}
fn region() -> String {
    "us-east-1".into()
}
fn every() -> Duration {
    Duration::from_secs(2)
}

fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + end])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn call(r: &Route53, ctx: &Ctx, method: &str, path: &str, body: &str) -> Result<String> {
    let endpoint = ctx.expand("route53.endpoint", &r.endpoint)?;
    let keys = sigv4::Keys {
        id: ctx.expand("route53.access_key_id", &r.access_key_id)?,
        secret: ctx.expand("route53.secret_access_key", &r.secret_access_key)?,
    };
    let base = url::Url::parse(&endpoint)
        .map_err(|e| Error::usage(format!("route53.endpoint {endpoint:?}: {e}")))?;
    let signed = sigv4::sign(
        method,
        &sigv4::host(&base),
        path,
        "",
        body.as_bytes(),
        &r.region,
        "route53",
        &keys,
        chrono::Utc::now(),
    );
    let url = format!("{}{path}", endpoint.trim_end_matches('/'));
    let m =
        reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| Error::usage("bad method"))?;
    let resp = reqwest::Client::new()
        .request(m, &url)
        .header("x-amz-date", &signed.amz_date)
        .header("x-amz-content-sha256", &signed.content_sha256)
        .header("authorization", signed.authorization)
        .header("content-type", "text/xml")
        .body(body.to_string())
        .timeout(ctx.timeout)
        .send()
        .await
        .map_err(|e| Error::failed(format!("Route53 {method} {path}: {}", e.without_url())))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let code = element(&text, "Code").unwrap_or("");
        let msg = element(&text, "Message").unwrap_or(text.trim());
        let err = Error::failed(format!("Route53 {method} {path}: {status} {code}: {msg}"));
        return Err(if status.as_u16() == 403 {
            err.hint("check the access key, its secret, and that it may change this hosted zone")
        } else {
            err
        });
    }
    Ok(text)
}

/// UPSERT `name` `rtype` to `values`, then wait for INSYNC.
pub async fn upsert(
    r: &Route53,
    ctx: &Ctx,
    name: &str,
    rtype: &str,
    ttl: u32,
    values: &[String],
) -> Result<Outcome> {
    let zone = ctx.expand("route53.hosted_zone_id", &r.hosted_zone_id)?;
    let zone = zone.trim_start_matches("/hostedzone/");
    let records: String = values
        .iter()
        .map(|v| {
            format!(
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                escape(v)
            )
        })
        .collect();
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>drctl drill step {}</Comment><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>{}</Name><Type>{rtype}</Type><TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#,
        escape(&ctx.step_id),
        escape(name)
    );
    let path = format!(
        "/2013-04-01/hostedzone/{}/rrset/",
        sigv4::uri_encode(zone, false)
    );
    let resp = call(r, ctx, "POST", &path, &body).await?;
    let id = element(&resp, "Id")
        .ok_or_else(|| {
            Error::failed(format!(
                "Route53 answered without a change id: {}",
                super::excerpt(&resp, 200)
            ))
        })?
        .trim_start_matches("/change/")
        .to_string();
    let mut status = element(&resp, "Status").unwrap_or("PENDING").to_string();
    let mut polls = 0;
    while status != "INSYNC" {
        tokio::time::sleep(r.poll_every).await;
        let resp = call(
            r,
            ctx,
            "GET",
            &format!("/2013-04-01/change/{}", sigv4::uri_encode(&id, false)),
            "",
        )
        .await?;
        status = element(&resp, "Status").unwrap_or("PENDING").to_string();
        polls += 1;
    }
    Ok(Outcome {
        excerpt: format!(
            "{name} {rtype} → {} (Route53 change {id} INSYNC after {polls} poll(s))",
            values.join(", ")
        ),
        ..Default::default()
    }
    .with("value", values.join(","))
    .with("change_id", id))
}
