//! Route53 — a *contract test* against a stub of the documented API (no Route53 here):
//! `ChangeResourceRecordSets` (POST /2013-04-01/hostedzone/{Id}/rrset/) then `GetChange`
//! (GET /2013-04-01/change/{Id}) until `INSYNC`. The stub checks each request's SigV4
//! signature with its own implementation (over the headers the request says it signed, which
//! must include host, x-amz-date and the payload hash) and answers like Route53, including
//! its errors. The same step signed through the standard credential chain (web identity) is
//! tested against moto in `cloud_identity.rs`.

use crate::common::*;
use crate::drill::{drill_cmd, report, runs, step};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

const KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

fn hmac(k: &[u8], d: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(k).unwrap();
    m.update(d.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The signature AWS would compute for this request, from the documented algorithm.
fn expected_signature(
    method: &str,
    path: &str,
    h: &HashMap<String, String>,
    body: &str,
) -> Option<String> {
    let auth = h.get("authorization")?;
    let scope = auth
        .split("Credential=")
        .nth(1)?
        .split(',')
        .next()?
        .split_once('/')?
        .1
        .to_string();
    let (date, region, service) = {
        let p: Vec<&str> = scope.split('/').collect();
        (p[0].to_string(), p[1].to_string(), p[2].to_string())
    };
    assert_eq!(
        (region.as_str(), service.as_str()),
        ("us-east-1", "route53"),
        "{auth}"
    );
    let payload = hex::encode(Sha256::digest(body.as_bytes()));
    assert_eq!(h.get("x-amz-content-sha256"), Some(&payload));
    let signed = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
    for must in ["host", "x-amz-content-sha256", "x-amz-date"] {
        assert!(
            signed.split(';').any(|n| n == must),
            "{must} unsigned: {auth}"
        );
    }
    let headers: String = signed
        .split(';')
        .map(|n| format!("{n}:{}\n", h[n].trim()))
        .collect();
    let canonical = format!("{method}\n{path}\n\n{headers}\n{signed}\n{payload}");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        h["x-amz-date"],
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{SECRET}").as_bytes(), &date);
    for p in [region.as_str(), service.as_str(), "aws4_request"] {
        k = hmac(&k, p);
    }
    Some(hex::encode(hmac(&k, &to_sign)))
}

/// A Route53 stub: one change, PENDING on the first GetChange, INSYNC on the second.
fn stub() -> (u16, Seen) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        let mut gets = 0;
        for conn in l.incoming().flatten() {
            let mut r = BufReader::new(conn);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut it = line.split_whitespace();
            let (method, path) = (
                it.next().unwrap_or("").to_string(),
                it.next().unwrap_or("").to_string(),
            );
            let mut h = HashMap::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).is_err() || l.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    h.insert(k.trim().to_lowercase(), v.trim().to_string());
                }
            }
            let mut body = vec![
                0;
                h.get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            ];
            let _ = r.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body).into_owned();
            let sig_ok = expected_signature(&method, &path, &h, &body).is_some_and(|sig| {
                h["authorization"].ends_with(&format!("Signature={sig}"))
                    && h["authorization"].contains(&format!("Credential={KEY_ID}/"))
            });
            s.lock()
                .unwrap()
                .push((method.clone(), path.clone(), body.clone()));
            let (status, reply) = if !sig_ok {
                ("403 Forbidden", "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error></ErrorResponse>".to_string())
            } else if method == "POST" && path == "/2013-04-01/hostedzone/Z0123456789ABC/rrset/" {
                ("200 OK", "<?xml version=\"1.0\"?><ChangeResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id><Status>PENDING</Status><SubmittedAt>2026-11-23T10:00:00.000Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>".to_string())
            } else if method == "GET" && path == "/2013-04-01/change/C2682N5HXP0BZ4" {
                gets += 1;
                let st = if gets >= 2 { "INSYNC" } else { "PENDING" };
                ("200 OK", format!("<?xml version=\"1.0\"?><GetChangeResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C2682N5HXP0BZ4</Id><Status>{st}</Status><SubmittedAt>2026-11-23T10:00:00.000Z</SubmittedAt></ChangeInfo></GetChangeResponse>"))
            } else {
                ("404 Not Found", "<ErrorResponse><Error><Code>NoSuchHostedZone</Code><Message>No hosted zone found</Message></Error></ErrorResponse>".to_string())
            };
            let _ = r.get_mut().write_all(format!("HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}", reply.len()).as_bytes());
        }
    });
    (port, seen)
}

const PLAYBOOK: &str = r#"name: r53
steps:
  - id: cutover
    owner: Network on-call
    timeout: 20s
    kind: dns
    route53:
      hosted_zone_id: /hostedzone/Z0123456789ABC
      endpoint: ${endpoint}
      access_key_id: ${R53_KEY_ID}
      secret_access_key: ${R53_SECRET}
      poll_every: 200ms
    update: { name: app.example.com, type: A, ttl: 30, data: [10.0.2.10] }
"#;

#[test]
fn route53_change_is_signed_and_polled_until_insync() {
    let (port, seen) = stub();
    let dir = tempdir("drill-r53-");
    std::fs::write(dir.join("r53.yaml"), PLAYBOOK).unwrap();
    let endpoint = format!("--var=endpoint=http://127.0.0.1:{port}");
    let out = drill_cmd(&dir, &["run", "r53.yaml", &endpoint])
        .env("R53_KEY_ID", KEY_ID)
        .env("R53_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let calls = seen.lock().unwrap().clone();
    let shape: Vec<(&str, &str)> = calls
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("POST", "/2013-04-01/hostedzone/Z0123456789ABC/rrset/"),
            ("GET", "/2013-04-01/change/C2682N5HXP0BZ4"),
            ("GET", "/2013-04-01/change/C2682N5HXP0BZ4"),
        ]
    );
    let body = &calls[0].2;
    for want in [
        "<Action>UPSERT</Action>",
        "<Name>app.example.com.</Name>",
        "<Type>A</Type>",
        "<TTL>30</TTL>",
        "<Value>10.0.2.10</Value>",
    ] {
        assert!(body.contains(want), "{want} not in {body}");
    }
    let r = report(&runs(&dir.join("ev"))[0]);
    assert!(step(&r, "cutover")["output"]
        .as_str()
        .unwrap()
        .contains("INSYNC after 2 poll(s)"));

    // A wrong secret: Route53's 403 and its code reach the user, with what to check.
    seen.lock().unwrap().clear();
    let out = drill_cmd(&dir, &["run", "r53.yaml", &endpoint])
        .env("R53_KEY_ID", KEY_ID)
        .env("R53_SECRET", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("403 Forbidden SignatureDoesNotMatch"),
        "{text}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing is polled after a refused change"
    );
}
