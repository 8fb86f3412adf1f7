//! Cloud identities — *contract tests* against moto's server (S3, STS, Route53 with SigV4
//! enforced): a pod under IRSA has no keys, only `AWS_ROLE_ARN` and a projected token file.
//! drctl must exchange the token at STS (`AssumeRoleWithWebIdentity`) and sign every request
//! with the temporary credentials: OpenDAL's S3 traffic, its own multipart housekeeping in
//! `prune`, and Route53 drill steps. moto refuses anything unsigned or signed by an unknown key.

use crate::common::*;
use crate::drill::{drill_cmd, report, runs, step};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A token file as Kubernetes projects it; the token is unique to the test.
fn token_file(dir: &Path, name: &str) -> (PathBuf, String) {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{name}-{}.sig", std::process::id());
    let p = dir.join("token");
    std::fs::write(&p, &token).unwrap();
    (p, token)
}

fn assert_secret_free(o: &Output, token: &str) {
    for text in [stdout(o), stderr(o)] {
        assert!(
            !text.contains(token),
            "the web identity token leaked: {text}"
        );
    }
}

#[test]
fn web_identity_signs_backup_restore_and_stale_upload_cleanup() {
    let m = moto();
    let pg = pg();
    let src = db_name("irsa_src");
    seed(pg, &src);
    let w = World::new("irsa");
    let root = w.s3_root.trim_start_matches('/').to_string();
    w.write_config(
        &ConfigText::default()
            .region(&format!(
                "{{ name: aws, kind: s3, bucket: plain, root: {root}, region: us-east-1, endpoint: \"{}\" }}",
                m.endpoint
            ))
            .top("min_copies: 1")
            .job("app", &pg_source(&pg.url(&src), &[]), &[])
            .text(),
    );
    let (token, secret) = token_file(&w.dir, "irsa");
    let drctl = |args: &[&str]| {
        let mut c = w.cmd(args);
        m.web_identity(&mut c, &token);
        let o = c.output().unwrap();
        assert_secret_free(&o, &secret);
        o
    };

    // Without the token file there is no identity: moto refuses, and drctl says what to do.
    let mut c = w.cmd(&["backup", "run", "app"]);
    m.web_identity(&mut c, &token);
    let o = c
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let keys = m.s3api(&["list-objects-v2", "--bucket", "plain", "--prefix", &root]);
    assert!(keys["Contents"].is_null(), "{keys}");

    let o = drctl(&["-o", "json", "backup", "run", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = std::fs::read_to_string(&m.seen_tokens).unwrap();
    assert!(
        seen.lines().any(|l| l == secret),
        "STS never saw the token file's token: {seen}"
    );
    let manifest = format!("{root}/backups/app/{id}/manifest.json");
    m.s3api(&["head-object", "--bucket", "plain", "--key", &manifest]);

    let dst = db_name("irsa_dst");
    pg.create_db(&dst);
    let o = drctl(&[
        "-o",
        "json",
        "restore",
        "app",
        "--region",
        "aws",
        "--to",
        &pg.url(&dst),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(table_digests(pg, &dst), table_digests(pg, &src));

    // A killed run's unfinished upload: prune's own signed calls list and abort it.
    let stale = format!("{root}/backups/app/20200101T000000Z-dead0000/db.pgdump.zst");
    m.s3api(&[
        "create-multipart-upload",
        "--bucket",
        "plain",
        "--key",
        &stale,
    ]);
    let o = drctl(&["-o", "json", "prune", "--grace", "0s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "abort-upload"),
        "{rows:#}"
    );
    let ups = m.s3api(&[
        "list-multipart-uploads",
        "--bucket",
        "plain",
        "--prefix",
        &root,
    ]);
    assert!(
        ups["Uploads"].is_null(),
        "the stale upload is still open: {ups}"
    );
}

#[test]
fn web_identity_signs_route53_drill_steps() {
    let m = moto();
    let dir = tempdir("irsa-r53-");
    std::fs::write(
        dir.join("r53.yaml"),
        format!(
            r#"name: r53
steps:
  - id: cutover
    owner: Network on-call
    timeout: 30s
    kind: dns
    route53:
      hosted_zone_id: /hostedzone/{zone}
      endpoint: {endpoint}
      poll_every: 200ms
    update: {{ name: app.example.test, type: A, ttl: 30, data: [10.0.2.10] }}
"#,
            zone = m.zone_id,
            endpoint = m.endpoint
        ),
    )
    .unwrap();
    let (token, secret) = token_file(&dir, "irsa-r53");
    let mut c = drill_cmd(&dir, &["run", "r53.yaml"]);
    m.web_identity(&mut c, &token);
    let o = c.output().unwrap();
    assert_secret_free(&o, &secret);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let r = report(&runs(&dir.join("ev"))[0]);
    assert!(
        step(&r, "cutover")["output"]
            .as_str()
            .unwrap()
            .contains("INSYNC"),
        "{r:#}"
    );
    let o = m.aws(&[
        "route53",
        "list-resource-record-sets",
        "--hosted-zone-id",
        &m.zone_id,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sets: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = sets["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"] == "app.example.test." && s["Type"] == "A")
        .unwrap_or_else(|| panic!("no A record: {sets:#}"));
    assert_eq!(a["ResourceRecords"][0]["Value"], "10.0.2.10");

    // A token for a role that does not exist gets no credentials, and the step fails.
    let mut c = drill_cmd(&dir, &["run", "r53.yaml"]);
    m.web_identity(&mut c, &token);
    let o = c
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/nobody")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
}
