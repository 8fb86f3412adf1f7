//! Route53 for the `dns` step: `ChangeResourceRecordSets` (an UPSERT of the record set), then
//! `GetChange` every `poll_every` until the change is `INSYNC` (bounded by the step's
//! timeout). Signed with SigV4 (service `route53`) by `store::aws`, with the step's keys or,
//! without them, the standard AWS credential chain (IRSA's web identity included); no SDK
//! for two calls.

use super::{Ctx, Outcome};
use crate::error::{Error, Result};
use crate::store::aws::{element, escape, uri_encode, Aws, StaticKeys};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route53 {
    pub hosted_zone_id: String,
    #[serde(default = "endpoint")]
    pub endpoint: String,
    /// Use `${VAR}`; never write keys into a playbook. Without them, the standard AWS
    /// credential chain is used (environment, profile, web identity, metadata).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
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

/// The step's client: its endpoint and its signer.
struct Client {
    endpoint: String,
    aws: Aws,
}

fn client(r: &Route53, ctx: &Ctx) -> Result<Client> {
    let endpoint = ctx.expand("route53.endpoint", &r.endpoint)?;
    url::Url::parse(&endpoint)
        .map_err(|e| Error::usage(format!("route53.endpoint {endpoint:?}: {e}")))?;
    let opt =
        |field: &str, v: &Option<String>| v.as_ref().map(|v| ctx.expand(field, v)).transpose();
    let keys = StaticKeys {
        id: opt("route53.access_key_id", &r.access_key_id)?,
        secret: opt("route53.secret_access_key", &r.secret_access_key)?,
        token: opt("route53.session_token", &r.session_token)?,
    };
    for k in [&keys.id, &keys.secret, &keys.token].into_iter().flatten() {
        crate::redact::register(k);
    }
    Ok(Client {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        aws: Aws::new("route53", &r.region, &keys),
    })
}

async fn call(c: &Client, ctx: &Ctx, method: &str, path: &str, body: &str) -> Result<String> {
    let m =
        reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| Error::usage("bad method"))?;
    let a = c
        .aws
        .send(
            m,
            &format!("{}{path}", c.endpoint),
            &[("content-type", "text/xml".to_string())],
            bytes::Bytes::from(body.to_string()),
            ctx.timeout,
        )
        .await
        .map_err(|e| e.context(format!("Route53 {method} {path}")))?;
    if !a.status.is_success() {
        let code = element(&a.body, "Code").unwrap_or_default();
        let msg = element(&a.body, "Message").unwrap_or_else(|| a.body.trim().to_string());
        let err = Error::failed(format!(
            "Route53 {method} {path}: {} {code}: {msg}",
            a.status
        ));
        return Err(if a.status.as_u16() == 403 {
            err.hint("check the identity (keys, or the role it assumes) and that it may change this hosted zone")
        } else {
            err
        });
    }
    Ok(a.body)
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
    let c = client(r, ctx)?;
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
    let path = format!("/2013-04-01/hostedzone/{}/rrset/", uri_encode(zone, false));
    let resp = call(&c, ctx, "POST", &path, &body).await?;
    let id = element(&resp, "Id")
        .ok_or_else(|| {
            Error::failed(format!(
                "Route53 answered without a change id: {}",
                super::excerpt(&resp, 200)
            ))
        })?
        .trim_start_matches("/change/")
        .to_string();
    let mut status = element(&resp, "Status").unwrap_or_else(|| "PENDING".into());
    let mut polls = 0;
    while status != "INSYNC" {
        tokio::time::sleep(r.poll_every).await;
        let resp = call(
            &c,
            ctx,
            "GET",
            &format!("/2013-04-01/change/{}", uri_encode(&id, false)),
            "",
        )
        .await?;
        status = element(&resp, "Status").unwrap_or_else(|| "PENDING".into());
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
