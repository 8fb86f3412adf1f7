//! `dns`: move a service name, and check what a server answers.
//!
//! - `update`: an RFC 2136 UPDATE signed with TSIG (hickory-dns) that replaces the record
//!   set of `name` with `data`, in one message (delete the set, add the new records), so no
//!   resolver ever sees the name without an address.
//!   With `route53:` instead of `server`/`zone`/`tsig`, the same update is a Route53 UPSERT
//!   followed by GetChange polling until INSYNC (`route53.rs`).
//! - `resolve`: ask `server` for `name` and compare the answer with `expect`; with
//!   `until_success` this is "wait until the cutover is visible".

use super::{Ctx, Outcome, StepKind};
use crate::error::{Error, Result};
use base64::Engine as _;
use futures::StreamExt;
use hickory_client::client::Client;
use hickory_client::proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_client::proto::dnssec::tsig::TSigner;
use hickory_client::proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_client::proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_client::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::udp::UdpClientStream;
use hickory_client::proto::xfer::DnsHandle;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// The server to send to, `host:port` (default port 53); an authoritative primary for
    /// `update`. Not with `route53`.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub route53: Option<super::route53::Route53>,
    #[serde(default)]
    pub zone: Option<String>,
    #[serde(default)]
    pub tsig: Option<Tsig>,
    #[serde(default)]
    pub update: Option<Update>,
    #[serde(default)]
    pub resolve: Option<Resolve>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tsig {
    pub name: String,
    #[serde(default = "sha256")]
    pub algorithm: String,
    /// Base64, as in `nsupdate -y` / a knot or bind key file. Use `${VAR}`.
    pub secret: String,
}

fn sha256() -> String {
    "hmac-sha256".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub name: String,
    #[serde(rename = "type", default = "a")]
    pub rtype: String,
    #[serde(default = "ttl")]
    pub ttl: u32,
    pub data: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub name: String,
    #[serde(rename = "type", default = "a")]
    pub rtype: String,
    /// The answer must be exactly these values (any order).
    pub expect: Vec<String>,
}

fn a() -> String {
    "A".into()
}
fn ttl() -> u32 {
    60
}

fn algorithm(s: &str) -> std::result::Result<TsigAlgorithm, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "hmac-sha256" => TsigAlgorithm::HmacSha256,
        "hmac-sha384" => TsigAlgorithm::HmacSha384,
        "hmac-sha512" => TsigAlgorithm::HmacSha512,
        other => {
            return Err(format!(
                "TSIG algorithm {other:?} is not supported: use hmac-sha256, hmac-sha384 or hmac-sha512"
            ))
        }
    })
}

fn rtype(s: &str) -> std::result::Result<RecordType, String> {
    match s.to_ascii_uppercase().as_str() {
        "A" => Ok(RecordType::A),
        "AAAA" => Ok(RecordType::AAAA),
        "CNAME" => Ok(RecordType::CNAME),
        "TXT" => Ok(RecordType::TXT),
        other => Err(format!(
            "record type {other:?} is not supported: use A, AAAA, CNAME or TXT"
        )),
    }
}

fn fqdn(s: &str) -> Result<Name> {
    let mut n =
        Name::from_utf8(s).map_err(|e| Error::failed(format!("{s:?} is not a DNS name: {e}")))?;
    n.set_fqdn(true);
    Ok(n)
}

fn rdata(t: RecordType, v: &str) -> Result<RData> {
    let bad = |e: String| Error::failed(format!("{v:?} is not {t} data: {e}"));
    Ok(match t {
        RecordType::A => RData::A(A(v
            .parse()
            .map_err(|e: std::net::AddrParseError| bad(e.to_string()))?)),
        RecordType::AAAA => RData::AAAA(AAAA(
            v.parse()
                .map_err(|e: std::net::AddrParseError| bad(e.to_string()))?,
        )),
        RecordType::CNAME => RData::CNAME(CNAME(fqdn(v)?)),
        _ => RData::TXT(TXT::new(vec![v.to_string()])),
    })
}

/// How an answer's record reads, to compare with `expect`.
fn show(r: &Record) -> String {
    match r.data() {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(c) => c.0.to_utf8(),
        RData::TXT(t) => t.to_string(),
        other => other.to_string(),
    }
}

fn server_addr(s: &str) -> Result<SocketAddr> {
    let with_port = if s.parse::<SocketAddr>().is_ok() {
        s.to_string()
    } else {
        format!("{s}:53")
    };
    with_port.parse().map_err(|_| {
        Error::failed(format!(
            "server {s:?} is not an address such as 127.0.0.1:53"
        ))
    })
}

async fn exchange(
    server: SocketAddr,
    signer: Option<TSigner>,
    msg: Message,
    timeout: Duration,
) -> Result<Message> {
    let mut b = UdpClientStream::builder(server, TokioRuntimeProvider::default())
        .with_timeout(Some(timeout));
    if let Some(s) = signer {
        b = b.with_signer(Some(Arc::new(s)));
    }
    let (client, bg) = Client::connect(b.build())
        .await
        .map_err(|e| Error::failed(format!("DNS server {server}: {e}")))?;
    let bg = tokio::spawn(bg);
    let resp = client.send(msg).next().await;
    bg.abort();
    match resp {
        Some(Ok(r)) => Ok(r.into_message()),
        Some(Err(e)) => Err(Error::failed(format!("DNS server {server}: {e}"))),
        None => Err(Error::failed(format!("DNS server {server}: no answer"))),
    }
}

#[async_trait::async_trait]
impl StepKind for Dns {
    fn describe(&self) -> String {
        let server = self.server.clone().unwrap_or_default();
        if let (Some(u), Some(r)) = (&self.update, &self.route53) {
            format!(
                "Route53 UPSERT in zone {}: {} {} → {}, until INSYNC",
                r.hosted_zone_id,
                u.name,
                u.rtype,
                u.data.join(", ")
            )
        } else if let Some(u) = &self.update {
            format!(
                "RFC 2136 update at {}: {} {} → {}{}",
                server,
                u.name,
                u.rtype,
                u.data.join(", "),
                self.tsig
                    .as_ref()
                    .map(|t| format!(" (TSIG key {})", t.name))
                    .unwrap_or_default()
            )
        } else if let Some(r) = &self.resolve {
            format!(
                "resolve {} {} at {server}, expect {}",
                r.name,
                r.rtype,
                r.expect.join(", ")
            )
        } else {
            "dns".into()
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        match (&self.update, &self.resolve) {
            (Some(u), None) => {
                rtype(&u.rtype)?;
                if self.route53.is_some() {
                    if self.server.is_some() || self.zone.is_some() || self.tsig.is_some() {
                        return Err("with `route53`, leave out `server`, `zone` and `tsig`".into());
                    }
                } else if self.zone.is_none() || self.server.is_none() {
                    return Err("`update` needs `server` (the primary) and `zone` (the zone the name is in), or `route53`".into());
                }
                if u.data.is_empty() {
                    return Err("`update.data` is empty: give the new address(es)".into());
                }
            }
            (None, Some(r)) => {
                rtype(&r.rtype)?;
                if self.server.is_none() || self.route53.is_some() {
                    return Err("`resolve` asks a named `server` (not `route53`)".into());
                }
            }
            _ => return Err("give exactly one of `update` and `resolve`".into()),
        }
        if let Some(t) = &self.tsig {
            algorithm(&t.algorithm)?;
        }
        Ok(())
    }

    async fn run(&self, ctx: &Ctx) -> Result<Outcome> {
        if let (Some(r53), Some(u)) = (&self.route53, &self.update) {
            let name = fqdn(&ctx.expand("update.name", &u.name)?)?.to_ascii();
            let t = rtype(&u.rtype).map_err(Error::usage)?;
            let mut values = Vec::new();
            for (i, d) in u.data.iter().enumerate() {
                values.push(ctx.expand(&format!("update.data[{i}]"), d)?);
            }
            return super::route53::upsert(r53, ctx, &name, &t.to_string(), u.ttl, &values).await;
        }
        let server =
            server_addr(&ctx.expand("server", self.server.as_deref().unwrap_or_default())?)?;
        let per_try = ctx.timeout.min(Duration::from_secs(5));
        if let Some(r) = &self.resolve {
            let name = fqdn(&ctx.expand("resolve.name", &r.name)?)?;
            let t = rtype(&r.rtype).map_err(Error::usage)?;
            let mut msg = Message::new();
            msg.set_id(rand::random())
                .set_message_type(MessageType::Query)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true)
                .add_query(Query::query(name.clone(), t));
            let resp = exchange(server, None, msg, per_try).await?;
            let mut got: Vec<String> = resp
                .answers()
                .iter()
                .filter(|a| a.record_type() == t)
                .map(show)
                .collect();
            got.sort();
            let mut want = Vec::new();
            for (i, e) in r.expect.iter().enumerate() {
                want.push(ctx.expand(&format!("resolve.expect[{i}]"), e)?);
            }
            want.sort();
            let shown = if got.is_empty() {
                format!("{} (no records)", resp.response_code())
            } else {
                got.join(", ")
            };
            if got != want {
                return Err(Error::failed(format!(
                    "{server} answers {name} {t} with {shown}, expected {}",
                    want.join(", ")
                )));
            }
            return Ok(Outcome {
                excerpt: format!("{name} {t} = {shown} at {server}"),
                ..Default::default()
            }
            .with("value", got.join(",")));
        }

        let u = self
            .update
            .as_ref()
            .ok_or_else(|| Error::usage("dns step without update or resolve"))?;
        let zone = fqdn(&ctx.expand("zone", self.zone.as_deref().unwrap_or_default())?)?;
        let name = fqdn(&ctx.expand("update.name", &u.name)?)?;
        if !zone.zone_of(&name) {
            return Err(Error::failed(format!("{name} is not in zone {zone}")));
        }
        let t = rtype(&u.rtype).map_err(Error::usage)?;
        let signer = match &self.tsig {
            None => None,
            Some(k) => {
                let secret = ctx.expand("tsig.secret", &k.secret)?;
                crate::redact::register(secret.trim());
                let key = base64::engine::general_purpose::STANDARD
                    .decode(secret.trim())
                    .map_err(|_| {
                        Error::failed(format!("tsig.secret of key {} is not base64", k.name))
                    })?;
                let alg = algorithm(&k.algorithm).map_err(Error::usage)?;
                Some(
                    TSigner::new(key, alg, fqdn(&ctx.expand("tsig.name", &k.name)?)?, 300)
                        .map_err(|e| Error::failed(format!("TSIG key {}: {e}", k.name)))?,
                )
            }
        };
        let mut zq = Query::new();
        zq.set_name(zone.clone())
            .set_query_class(DNSClass::IN)
            .set_query_type(RecordType::SOA);
        let mut msg = Message::new();
        msg.set_id(rand::random())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Update)
            .set_recursion_desired(false);
        msg.add_zone(zq);
        // RFC 2136 2.5.2: delete the RRset (class ANY, TTL 0, no data) ...
        let mut del = Record::update0(name.clone(), 0, t);
        del.set_dns_class(DNSClass::ANY);
        msg.add_update(del);
        // ... 2.5.1: and add the new records, in the same message.
        let mut values = Vec::new();
        for (i, d) in u.data.iter().enumerate() {
            let v = ctx.expand(&format!("update.data[{i}]"), d)?;
            let mut rec = Record::from_rdata(name.clone(), u.ttl, rdata(t, &v)?);
            rec.set_dns_class(DNSClass::IN);
            msg.add_update(rec);
            values.push(v);
        }
        let signed = signer.is_some();
        let resp = exchange(server, signer, msg, per_try).await.map_err(|e| {
            // A server rejecting the signature answers with a TSIG error record (BADSIG,
            // BADKEY) that the client cannot verify; say what that means.
            let text = e.to_string();
            if signed && (text.contains("HMAC") || text.contains("TSIG") || text.contains("tsig")) {
                Error::failed(format!(
                    "{server} refused the update of {name}: its answer is a TSIG error (wrong key name, secret or algorithm)"
                ))
                .hint(format!("check the TSIG key name, secret and algorithm, and that the server allows updates to {zone}"))
            } else {
                e
            }
        })?;
        match resp.response_code() {
            ResponseCode::NoError => Ok(Outcome {
                excerpt: format!("{name} {t} → {} (zone {zone}, server {server})", values.join(", ")),
                ..Default::default()
            }
            .with("value", values.join(","))),
            ResponseCode::NotAuth | ResponseCode::Refused => Err(Error::failed(format!(
                "{server} refused the update of {name} ({}): check the TSIG key name, secret and algorithm, and that the server allows updates to {zone}",
                resp.response_code()
            ))),
            rc => Err(Error::failed(format!("{server} answered the update of {name} with {rc}"))),
        }
    }
}
