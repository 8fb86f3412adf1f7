//! `drctl k8s render`: golden files — the example in `deploy/kubernetes/`, so the shipped
//! example is always what drctl renders — and each rendered document read back into its
//! Kubernetes type (k8s-openapi) and written out again unchanged — so no field is misspelled,
//! misplaced or unknown to the API, which comparing strings alone would not show.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use std::path::Path;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

fn render(extra: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    c.arg("-c")
        .arg(Path::new(GOLDEN).join("drctl.yaml"))
        .args([
            "k8s",
            "render",
            "--image",
            "registry.example/drctl:0.1.0",
            "--namespace",
            "backups",
        ])
        .args([
            "--sa-annotation",
            "eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/drctl",
        ])
        .args(extra)
        // Placeholders: the rendering must never contain a value.
        .env("DR_ACCESS_KEY_ID", "placeholder-key")
        .env("DR_SECRET_ACCESS_KEY", "placeholder-secret")
        .env("APP_DB_PASSWORD", "placeholder-password");
    c.output().unwrap()
}

/// Round-trip one document through its typed form; returns its kind.
fn typed(doc: &str) -> String {
    let v: serde_json::Value = serde_norway::from_str(doc).unwrap();
    fn again<T: serde::de::DeserializeOwned + serde::Serialize>(
        v: &serde_json::Value,
    ) -> serde_json::Value {
        serde_json::to_value(serde_json::from_value::<T>(v.clone()).unwrap()).unwrap()
    }
    let kind = v["kind"].as_str().unwrap().to_string();
    let back = match kind.as_str() {
        "CronJob" => again::<CronJob>(&v),
        "Deployment" => again::<Deployment>(&v),
        "ConfigMap" => again::<ConfigMap>(&v),
        "Service" => again::<Service>(&v),
        "ServiceAccount" => again::<ServiceAccount>(&v),
        k => panic!("unexpected kind {k}"),
    };
    assert_eq!(back, v, "{kind}: a field the Kubernetes type does not have");
    kind
}

fn check(extra: &[&str], golden: &str) -> Vec<String> {
    let o = render(extra);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let path = Path::new(GOLDEN).join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        out, want,
        "rendering differs from {golden} (UPDATE_GOLDEN=1 rewrites it)"
    );
    assert!(!out.contains("placeholder-"), "a secret value was rendered");
    out.split("---\n").map(typed).collect()
}

#[test]
fn cronjobs_render_as_golden_and_as_valid_kubernetes_objects() {
    let kinds = check(
        &["--pushgateway", "http://pushgateway.monitoring:9091"],
        "cronjobs.yaml",
    );
    // app-db backup + verify, sessions backup, prune; embeddings has no schedule.
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "CronJob",
            "CronJob",
            "CronJob",
            "CronJob"
        ]
    );
    let text = std::fs::read_to_string(Path::new(GOLDEN).join("cronjobs.yaml")).unwrap();
    let jobs: Vec<CronJob> = text
        .split("---\n")
        .filter(|d| d.contains("kind: CronJob"))
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    let by_name = |n: &str| {
        jobs.iter()
            .find(|j| j.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let backup = by_name("drctl-backup-app-db").spec.as_ref().unwrap();
    assert_eq!(backup.schedule, "0 * * * *");
    assert_eq!(backup.time_zone.as_deref(), Some("Asia/Shanghai"));
    assert_eq!(backup.concurrency_policy.as_deref(), Some("Forbid"));
    let job = backup.job_template.spec.as_ref().unwrap();
    assert_eq!(job.active_deadline_seconds, Some(6 * 3600));
    let pod = job.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    assert_eq!(
        c.args.as_ref().unwrap()[4..],
        [
            "backup",
            "run",
            "app-db",
            "--if-running",
            "skip",
            "--pushgateway",
            "http://pushgateway.monitoring:9091"
        ]
    );
    let env: Vec<_> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        env,
        [
            "APP_DB_PASSWORD",
            "DR_ACCESS_KEY_ID",
            "DR_SECRET_ACCESS_KEY"
        ]
    );
    assert_eq!(pod.termination_grace_period_seconds, Some(150));
    assert_eq!(
        by_name("drctl-backup-sessions")
            .spec
            .as_ref()
            .unwrap()
            .schedule,
        "0 0 * * *"
    );
    assert_eq!(
        by_name("drctl-prune").spec.as_ref().unwrap().schedule,
        "15 3 * * *"
    );
}

#[test]
fn the_daemon_renders_as_a_deployment_with_probes() {
    let kinds = check(&["--daemon"], "daemon.yaml");
    assert_eq!(
        kinds,
        ["ServiceAccount", "ConfigMap", "Deployment", "Service"]
    );
}

#[test]
fn a_seconds_field_cannot_become_a_cronjob() {
    let w = World::new("k8s_seconds");
    w.write_config("regions:\n  - { name: a, kind: fs, root: /tmp/a }\njobs:\n  - name: c\n    source: { kind: redis, url: \"redis://h\" }\n    schedule: \"*/10 * * * * *\"\n");
    let o = w.drctl(&["k8s", "render"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("has a seconds field"), "{}", stderr(&o));
}

#[test]
fn k8s_render_refuses_inline_secrets_naming_the_field() {
    let w = World::new("k8s-inline");
    let cases = [
        (
            "regions:\n  - { name: a, kind: fs, root: /r }\njobs:\n  - name: app\n    source: { kind: postgres, url: \"postgres://backup:hunter2inline@db:5432/app\" }\n",
            "drctl.yaml:5:31: jobs[0].source.url: the password in the URL",
        ),
        (
            "regions:\n  - name: s\n    kind: s3\n    bucket: b\n    secret_access_key: hunter2inline\njobs: []\n",
            "drctl.yaml:5:5: regions[0].secret_access_key: `secret_access_key`",
        ),
        (
            "regions:\n  - { name: a, kind: fs, root: /r }\njobs: []\nnotifications:\n  - { kind: webhook, url: \"https://hooks.example/T0/hunter2inline\" }\n",
            "notifications[0].url: the webhook URL",
        ),
    ];
    for (config, expected) in cases {
        w.write_config(config);
        let o = w.drctl(&["k8s", "render", "--image", "x/drctl:1"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(expected) && e.contains("`${"), "{e}");
        assert!(
            !stdout(&o).contains("hunter2inline") && !e.contains("hunter2inline"),
            "{e}"
        );
    }
    // A reference in the password's place renders.
    w.write_config("regions:\n  - { name: a, kind: fs, root: /r }\njobs:\n  - name: app\n    source: { kind: postgres, url: \"postgres://backup:${PGPW}@db:5432/app\" }\n");
    let o = w
        .cmd(&["k8s", "render", "--image", "x/drctl:1"])
        .env("PGPW", "placeholder")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The image's build stage copies everything `cargo build` reads: the manifests, `build.rs`,
/// `src/`, and every input `build.rs` declares (`rerun-if-changed`), so a new one cannot be
/// forgotten there (`build.rs` itself once was, and `docker build` would have failed).
#[test]
fn the_dockerfile_copies_everything_the_build_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let docker = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let build_rs = std::fs::read_to_string(root.join("build.rs")).unwrap();
    let copied: Vec<&str> = docker
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    let mut needed = vec!["Cargo.toml", "Cargo.lock", "build.rs", "src"];
    for l in build_rs.lines() {
        if let Some(rest) = l.split("rerun-if-changed=").nth(1) {
            let input = rest.trim_end_matches(&['"', ')', ';'][..]);
            if !input.starts_with(".git") {
                needed.push(input.split('/').next().unwrap());
            }
        }
    }
    for n in needed {
        assert!(
            copied.contains(&n),
            "the Dockerfile does not COPY {n}: {copied:?}"
        );
    }
}
