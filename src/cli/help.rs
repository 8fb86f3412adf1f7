//! What each command's `--help` shows after its options: examples first, then the rules a
//! user needs at the prompt. One table, keyed by the command's path below `drctl`, so the
//! command definitions stay short and every text is found in one place.

pub const AFTER_HELP: &[(&str, &str)] = &[
    (
        "completion",
        "Examples:\n  drctl completion bash > /etc/bash_completion.d/drctl\n  drctl completion zsh > \"${fpath[1]}/_drctl\"\n  drctl completion fish > ~/.config/fish/completions/drctl.fish",
    ),
    (
        "man",
        "Examples:\n  drctl man | man -l -\n  drctl man --dir docs/man",
    ),
    (
        "restore",
        "Examples:\n  drctl restore app-db --to postgres://postgres@localhost:5432/app_restored\n  drctl restore app-db --backup 20261123T040000Z-3fa2c1 --region beijing --to postgres://...\n  drctl restore app-db --before 2026-11-23T03:00:00Z --to postgres://... --clean --yes\n  drctl restore app-db --before 2h --jobs 4 --to postgres://...\n  drctl restore sessions --to redis://127.0.0.1:6379\n  drctl restore sessions --to file:/var/lib/redis/dump.rdb\n  drctl restore vectors --to http://vectors:8000 --rename docs=docs-restored\n  drctl restore app-config --to dir:/srv/restore\n  drctl restore app-config --to dir:/ --path etc/app/app.yaml --clean",
    ),
    (
        "verify",
        "Examples:\n  drctl verify app-db\n  drctl verify app-db --level checksum\n  drctl verify app-db --backup 20261123T040000Z-3fa2c1 --level restore -o json\n\nLevels are cumulative: structure includes checksum, restore includes both.\nThe result is stored in the repository (verifications/...); exit 1 when it fails.",
    ),
    (
        "status",
        "Examples:\n  drctl status\n  drctl status -o json\n\nExit 1 when a job's RPO exposure is over its rpo, or its newest timed restore is over\nits rto, or it has an rto and no restore was ever timed (RTO \"not measured\").",
    ),
    (
        "report",
        "Examples:\n  drctl report --html status.html\n  drctl report --html - > /srv/www/drctl.html\n  drctl report --html status.html --publish\n  drctl report -o json\n\nThe same page the daemon serves at /: every job's RPO and RTO against its targets,\ncopies per region, verification history, size and duration over time, the drills' RTO\nand RPO per run, the next scheduled runs, overdue drills, and unreadable regions.\nOne file, no script or external resource: it opens anywhere, air-gapped too.\nWithout --html it prints the page's data (JSON). Breaches do not change the exit code:\n`drctl status` is the check.",
    ),
    (
        "catalog migrate",
        "Examples:\n  drctl catalog migrate\n  drctl -c /etc/drctl/drctl.yaml catalog migrate -o json",
    ),
    (
        "catalog sync",
        "Examples:\n  drctl catalog sync\n\nThe repositories are the system of record: sync makes the catalog say what they hold,\nremoving what they no longer hold. Run it after restoring a catalog, or on a schedule.",
    ),
    (
        "history",
        "Examples:\n  drctl history app-db\n  drctl history app-db -o json\n\nOldest first. RESTORE is the scratch restore time of the backup's newest\nverification at level restore: the measured data-restore time.",
    ),
    (
        "prune",
        "Examples:\n  drctl prune --dry-run\n  drctl prune app-db\n  drctl prune --dry-run -o json\n  drctl prune --grace 6h\n\nA job without `retention` keeps everything. Whatever the policy, prune keeps the newest\ncomplete backup, the newest verified one, the newest held by min_copies regions, anything\nnewer than a running job's lease, and each region's copy covering a kept backup missing there.\nIt deletes nothing while any region cannot be read.",
    ),
    (
        "schedule",
        "Examples:\n  drctl schedule\n  drctl -c /etc/drctl/drctl.yaml schedule --listen 0.0.0.0:9477\n\nServes / (the status page), /healthz, /readyz and /metrics (Prometheus) on the listen\naddress.\nSIGTERM/SIGINT: no new runs; running ones get scheduler.shutdown_grace to finish, then\nare aborted (they clean up); exit 0. A second signal aborts at once.\nSIGHUP: re-read and validate the config; an invalid one is refused and the old one kept.",
    ),
    (
        "backup run",
        "Examples:\n  drctl backup run app-db\n  drctl backup run --all -o json\n  drctl -c /etc/drctl/drctl.yaml backup run app-db sessions",
    ),
    (
        "backup list",
        "Examples:\n  drctl backup list\n  drctl backup list app-db -o json",
    ),
    (
        "backup show",
        "Example:\n  drctl backup show 20261123T040000Z-3fa2c1",
    ),
    (
        "k8s render",
        "Examples:\n  drctl k8s render > drctl.k8s.yaml\n  drctl k8s render --image registry.example/drctl:0.1.0 --namespace backups --secret drctl-env\n  drctl k8s render --daemon\n\nThe config goes into a ConfigMap as is: ${VAR} references stay references, and every\nvariable it names is taken from the Secret (--secret) as an environment variable.",
    ),
    (
        "config validate",
        "Example:\n  drctl -c drctl.yaml config validate",
    ),
    (
        "config schema",
        "Examples:\n  drctl config schema > drctl.schema.json\n  # yaml-language-server: $schema=./drctl.schema.json   (first line of drctl.yaml, for editor completion)",
    ),
    (
        "drill run",
        "Examples:\n  drctl drill run region-failure --var dns_server=10.0.0.53:53 --var standby=postgres://...\n  drctl drill run ./playbooks/pg-primary-failure.yaml --dry-run\n  drctl drill run dr-checklist.yaml --scenario '数据库主库故障' --yes\n  drctl -c drctl.yaml drill run restore-from-backup --var job=app-db -o json\n\nPLAYBOOK is a file, a name in ./playbooks, or a shipped playbook (`drctl drill list`).\nManual steps wait for y / n / skip on a terminal; off a terminal pass --yes.\nCtrl-C aborts the drill and runs its rollback steps; a second Ctrl-C stops those too.\nEvidence: <evidence-dir>/<playbook>/<run-id>/ (journal.jsonl, report.json|md|html), and\ndrills/<playbook>/<run-id>/ in every region when a config is given.\nExit 0 when every step passed and the targets were met; 1 otherwise; 2 invalid playbook;\n130 interrupted.",
    ),
    (
        "drill validate",
        "Examples:\n  drctl drill validate playbooks/region-failure.yaml\n  drctl drill validate checklist.yaml --scenario 'Region outage'",
    ),
    (
        "drill list",
        "Example:\n  drctl drill list -o json",
    ),
    (
        "drill report",
        "Examples:\n  drctl drill report 20261123T101500Z-3fa2c1\n  drctl drill report 20261123T1015 --format html > drill.html",
    ),
    (
        "drill history",
        "Examples:\n  drctl drill history\n  drctl -c drctl.yaml drill history region-failure -o json",
    ),
];

#[cfg(test)]
mod tests {
    /// Every path in the table names a command, and every leaf command has examples.
    #[test]
    fn every_entry_names_a_command_and_every_command_has_examples() {
        let root = super::super::command();
        for (path, _) in super::AFTER_HELP {
            let mut cmd = &root;
            for part in path.split(' ') {
                cmd = cmd
                    .find_subcommand(part)
                    .unwrap_or_else(|| panic!("`{path}` names no command"));
            }
        }
        fn leaves(cmd: &clap::Command, path: String, out: &mut Vec<String>) {
            let subs: Vec<_> = cmd
                .get_subcommands()
                .filter(|c| c.get_name() != "help")
                .collect();
            if subs.is_empty() {
                out.push(path.clone());
            }
            for c in subs {
                let p = format!("{path} {}", c.get_name());
                leaves(c, p.trim().to_string(), out);
            }
        }
        let mut all = Vec::new();
        leaves(&root, String::new(), &mut all);
        let missing: Vec<_> = all
            .iter()
            .filter(|p| !super::AFTER_HELP.iter().any(|(q, _)| q == p))
            .collect();
        assert_eq!(missing, Vec::<&String>::new(), "commands without examples");
    }
}
