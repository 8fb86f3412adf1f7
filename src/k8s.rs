//! `drctl k8s render`: Kubernetes objects from the config, built with the `k8s-openapi` types
//! (so every field is one the API knows) and printed as multi-document YAML.
//!
//! - a ServiceAccount (annotations for cloud IAM: IRSA, GKE Workload Identity…);
//! - a ConfigMap holding the config file as written: `${VAR}` references stay references;
//! - per job with a `schedule`: a CronJob running `drctl backup run JOB --if-running skip`;
//!   per job with `verify.schedule`: one running `drctl verify JOB`; with `scheduler.prune`:
//!   one running `drctl prune`. `concurrencyPolicy: Forbid`, `backoffLimit`,
//!   `activeDeadlineSeconds`, resources, non-root, read-only root filesystem;
//! - or, with `--daemon`, the daemon (`drctl schedule`) as a one-replica Deployment with
//!   probes on `/healthz` and `/readyz` and a Service for `/metrics`.
//!
//! Every `${VAR}` of the config becomes an environment variable taken from the Secret
//! (`--secret`, key = the variable's name), so credentials never enter the ConfigMap.

use crate::cli::RenderArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service,
    ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

const CONFIG_DIR: &str = "/etc/drctl";
const UID: i64 = 10001;

/// The whole rendering, as YAML documents separated by `---`.
pub fn render(cfg: &Config, raw: &str, args: &RenderArgs) -> Result<String> {
    refuse_inline_secrets(cfg, raw)?;
    let r = Renderer {
        cfg,
        args,
        env: env_vars(raw),
    };
    let mut docs: Vec<String> = vec![yaml(&r.service_account()?)?, yaml(&r.config_map(raw))?];
    if args.daemon {
        docs.push(yaml(&r.deployment())?);
        docs.push(yaml(&r.service())?);
    } else {
        let mut names = std::collections::BTreeSet::new();
        for (name, schedule, cmd) in r.cron_tasks()? {
            let obj = r.cron_job(&name, &schedule, cmd)?;
            if !names.insert(name.clone()) {
                return Err(Error::usage(format!(
                    "two CronJobs would both be named {name}: job names differing only by `_` and `-` collide in Kubernetes"
                ))
                .hint("rename one of the jobs"));
            }
            docs.push(yaml(&obj)?);
        }
    }
    Ok(docs.join("---\n"))
}

/// The ConfigMap holds the config as written, and a ConfigMap is no place for a credential:
/// every secret field must be a `${VAR}` reference (which becomes a Secret key), and so must
/// the password of every URL.
fn refuse_inline_secrets(cfg: &Config, raw: &str) -> Result<()> {
    let doc: serde_norway::Value = serde_norway::from_str(raw.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::usage(format!("{}: {e}", cfg.path.display())))?;
    let tree = crate::yamltree::tree(raw.trim_start_matches('\u{feff}')).ok();
    let mut found = Vec::new();
    walk_secrets(&doc, "", &mut found);
    let Some((path, what)) = found.into_iter().next() else {
        return Ok(());
    };
    let pos = tree
        .as_ref()
        .map(|t| crate::yamltree::find(t, &path))
        .map(|(l, c)| format!("{}:{l}:{c}", cfg.path.display()))
        .unwrap_or_else(|| cfg.path.display().to_string());
    Err(Error::usage(format!(
        "{pos}: {path}: {what} is written inline; it would be copied into the ConfigMap in clear"
    ))
    .hint(format!(
        "write it as a `${{VAR}}` reference (e.g. `${{{}}}`): k8s render turns every reference into a key of the Secret, and the value never enters a manifest",
        suggest_var(&path)
    )))
}

/// Fields whose whole value is a credential, and fields that are URLs with a password.
const SECRET_FIELDS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "api_key",
    "token",
];
const URL_FIELDS: &[&str] = &["url", "scratch", "endpoint"];

fn walk_secrets(v: &serde_norway::Value, path: &str, found: &mut Vec<(String, String)>) {
    use serde_norway::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let Some(k) = k.as_str() else { continue };
                let p = join(k);
                match child {
                    Value::String(s) if SECRET_FIELDS.contains(&k) && !is_reference(s) => {
                        found.push((p, format!("`{k}`")))
                    }
                    Value::String(s)
                        if URL_FIELDS.contains(&k)
                            && (path.starts_with("notifications") || has_inline_password(s)) =>
                    {
                        if path.starts_with("notifications") && !is_reference(s) {
                            found.push((p, "the webhook URL (its path is the token)".into()));
                        } else if has_inline_password(s) {
                            found.push((p, "the password in the URL".into()));
                        }
                    }
                    Value::Mapping(opts) if k == "options" => {
                        for (ok, ov) in opts {
                            if let (Some(ok), Value::String(s)) = (ok.as_str(), ov) {
                                if !is_reference(s) {
                                    found.push((format!("{p}.{ok}"), format!("option `{ok}`")));
                                }
                            }
                        }
                    }
                    _ => walk_secrets(child, &p, found),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk_secrets(item, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Exactly one `${VAR}` and nothing else.
fn is_reference(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// `scheme://user:password@host…` where the password is not a `${VAR}` reference.
fn has_inline_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        // `${VAR}` holding the authority (or the whole URL) hides '/': look past it.
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, pw)) => !pw.is_empty() && !is_reference(pw),
        None => false,
    }
}

fn suggest_var(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

fn yaml<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_norway::to_string(v).map_err(|e| Error::failed(format!("cannot render YAML: {e}")))
}

/// Every `${NAME}` in the config text, sorted, once each (`$${…}` is a literal, skipped).
pub fn env_vars(raw: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        if let Some(s) = after.strip_prefix('$') {
            rest = s;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').unwrap_or(body.len());
            out.insert(body[..end].to_string());
            rest = &body[end.min(body.len())..];
        } else {
            rest = after;
        }
    }
    out.into_iter().collect()
}

/// A Kubernetes object name from a drctl name: `_` is not allowed there.
fn k8s_name(s: &str) -> String {
    s.replace('_', "-")
}

struct Renderer<'a> {
    cfg: &'a Config,
    args: &'a RenderArgs,
    env: Vec<String>,
}

impl Renderer<'_> {
    fn meta(&self, name: &str, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.args.namespace.clone()),
            labels: Some(self.labels(component)),
            ..Default::default()
        }
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "drctl".into()),
            ("app.kubernetes.io/component".into(), component.into()),
            (
                "app.kubernetes.io/managed-by".into(),
                "drctl-k8s-render".into(),
            ),
        ])
    }

    fn service_account(&self) -> Result<ServiceAccount> {
        let mut annotations = BTreeMap::new();
        for a in &self.args.sa_annotations {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                Error::usage(format!("--sa-annotation {a:?}: expected KEY=VALUE"))
            })?;
            annotations.insert(k.to_string(), v.to_string());
        }
        let mut meta = self.meta("drctl", "identity");
        meta.annotations = (!annotations.is_empty()).then_some(annotations);
        Ok(ServiceAccount {
            metadata: meta,
            ..Default::default()
        })
    }

    fn config_map(&self, raw: &str) -> ConfigMap {
        ConfigMap {
            metadata: self.meta("drctl-config", "config"),
            data: Some(BTreeMap::from([("drctl.yaml".into(), raw.to_string())])),
            ..Default::default()
        }
    }

    /// (object name, schedule, drctl arguments after the global flags)
    fn cron_tasks(&self) -> Result<Vec<(String, String, Vec<String>)>> {
        let five = |s: &crate::config::Schedule| {
            if s.has_seconds() {
                Err(Error::usage(format!(
                    "schedule {:?} has a seconds field: a Kubernetes CronJob takes 5 fields",
                    s.0
                ))
                .hint("use a 5-field schedule, or run the daemon instead (--daemon)"))
            } else if let Some(ext) = s.0.chars().find(|c| matches!(c, 'L' | 'W' | '#')) {
                // croner accepts Quartz's last-day `L`, nearest-weekday `W` and nth-weekday
                // `#`; the CronJob controller refuses them, so the object would never run.
                Err(Error::usage(format!(
                    "schedule {:?} uses `{ext}`, a cron extension the daemon accepts but a Kubernetes CronJob refuses",
                    s.0
                ))
                .hint("write it with standard fields only (e.g. `0 3 28-31 * *` instead of `0 3 L * *`), or run the daemon instead (--daemon)"))
            } else {
                Ok(crate::config::expand_macro(&s.0).to_string())
            }
        };
        let mut out = Vec::new();
        for j in &self.cfg.jobs {
            let n = &j.name.0;
            if let Some(s) = &j.schedule {
                let mut args: Vec<String> = vec![
                    "backup".into(),
                    "run".into(),
                    n.clone(),
                    "--if-running".into(),
                    "skip".into(),
                ];
                if let Some(p) = &self.args.pushgateway {
                    args.extend(["--pushgateway".into(), p.clone()]);
                }
                out.push((format!("drctl-backup-{}", k8s_name(n)), five(s)?, args));
            }
            if let Some(s) = j.verify.as_ref().and_then(|v| v.schedule.as_ref()) {
                out.push((
                    format!("drctl-verify-{}", k8s_name(n)),
                    five(s)?,
                    vec!["verify".into(), n.clone()],
                ));
            }
        }
        if let Some(s) = &self.cfg.scheduler.prune {
            out.push(("drctl-prune".into(), five(s)?, vec!["prune".into()]));
        }
        Ok(out)
    }

    fn container(&self, args: Vec<String>, memory_limit: &str) -> Container {
        let mut all = vec![
            "-c".to_string(),
            format!("{CONFIG_DIR}/drctl.yaml"),
            "--log-format".into(),
            "json".into(),
        ];
        all.extend(args);
        let env = self
            .env
            .iter()
            .map(|v| EnvVar {
                name: v.clone(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: self.args.secret.clone(),
                        key: v.clone(),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        let q = |s: &str| Quantity(s.to_string());
        Container {
            name: "drctl".into(),
            image: Some(self.args.image.clone()),
            args: Some(all),
            env: (!env.is_empty()).then_some(env),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".into(), q("500m")),
                    ("memory".into(), q("128Mi")),
                ])),
                limits: Some(BTreeMap::from([("memory".into(), q(memory_limit))])),
                ..Default::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "config".into(),
                    mount_path: CONFIG_DIR.into(),
                    read_only: Some(true),
                    ..Default::default()
                },
                VolumeMount {
                    name: "tmp".into(),
                    mount_path: "/tmp".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn pod(&self, container: Container, restart: &str, grace: Option<i64>) -> PodSpec {
        PodSpec {
            service_account_name: Some("drctl".into()),
            restart_policy: Some(restart.into()),
            termination_grace_period_seconds: grace,
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(UID),
                run_as_group: Some(UID),
                fs_group: Some(UID),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            containers: vec![container],
            volumes: Some(vec![
                Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "drctl-config".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "tmp".into(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn cron_job(&self, name: &str, schedule: &str, args: Vec<String>) -> Result<CronJob> {
        // The Job controller appends an 11-character suffix to the CronJob's name.
        if name.len() > 52 {
            return Err(Error::usage(format!(
                "the CronJob name {name} is {} characters; Kubernetes allows 52",
                name.len()
            ))
            .hint("shorten the job's name"));
        }
        let tz = self.cfg.scheduler.timezone.0;
        let grace = self.cfg.scheduler.shutdown_grace.as_secs() as i64 + 30;
        Ok(CronJob {
            metadata: self.meta(name, "cronjob"),
            spec: Some(CronJobSpec {
                schedule: schedule.to_string(),
                time_zone: (tz != chrono_tz::UTC).then(|| tz.name().to_string()),
                concurrency_policy: Some("Forbid".into()),
                starting_deadline_seconds: Some(300),
                successful_jobs_history_limit: Some(3),
                failed_jobs_history_limit: Some(5),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels("cronjob")),
                        ..Default::default()
                    }),
                    spec: Some(JobSpec {
                        backoff_limit: Some(1),
                        active_deadline_seconds: Some(self.args.deadline.as_secs() as i64),
                        template: PodTemplateSpec {
                            metadata: Some(ObjectMeta {
                                labels: Some(self.labels("cronjob")),
                                ..Default::default()
                            }),
                            spec: Some(self.pod(
                                self.container(args, "512Mi"),
                                "Never",
                                Some(grace),
                            )),
                        },
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn deployment(&self) -> Deployment {
        let mut c = self.container(
            vec!["schedule".into(), "--listen".into(), "0.0.0.0:9477".into()],
            "1Gi",
        );
        c.ports = Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: 9477,
            ..Default::default()
        }]);
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::String("metrics".into()),
                ..Default::default()
            }),
            period_seconds: Some(10),
            ..Default::default()
        };
        c.liveness_probe = Some(probe("/healthz"));
        c.readiness_probe = Some(probe("/readyz"));
        let grace = self.cfg.scheduler.shutdown_grace.as_secs() as i64 + 30;
        Deployment {
            metadata: self.meta("drctl-scheduler", "scheduler"),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                // Never two daemons at once during a rollout (the leases would hold, but the
                // second would only log skipped ticks).
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    ..Default::default()
                }),
                selector: LabelSelector {
                    match_labels: Some(self.labels("scheduler")),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels("scheduler")),
                        ..Default::default()
                    }),
                    spec: Some(self.pod(c, "Always", Some(grace))),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(&self) -> Service {
        Service {
            metadata: self.meta("drctl-scheduler", "scheduler"),
            spec: Some(ServiceSpec {
                selector: Some(self.labels("scheduler")),
                ports: Some(vec![ServicePort {
                    name: Some("metrics".into()),
                    port: 9477,
                    target_port: Some(IntOrString::String("metrics".into())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_vars_are_found_once_and_literals_skipped() {
        let raw = "a: ${B_KEY}\nb: ${A_KEY}-${B_KEY}\nc: $${NOT_ONE} $x";
        assert_eq!(super::env_vars(raw), vec!["A_KEY", "B_KEY"]);
    }
}
