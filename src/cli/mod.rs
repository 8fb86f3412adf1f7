//! The command line (clap derive). Examples live in each command's `--help`, from `help.rs`.

mod help;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "Exit codes:\n  0    success\n  1    the operation ran and failed (or a drill missed a target)\n  2    bad usage, config or playbook\n  3    another run holds the lease (the same job, or another prune): nothing was done\n  130  interrupted (SIGINT/SIGTERM); the run cleaned up after itself\n\nConfig: -c FILE, else $DRCTL_CONFIG, else ./drctl.yaml, else /etc/drctl/drctl.yaml.";

/// `--version`: the crate version and the git revision it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DRCTL_GIT_REV"), ")");

#[derive(Parser, Debug)]
#[command(name = "drctl", version = VERSION, about = "Back up databases to several regions, prove they restore, run DR drills.")]
pub struct Cli {
    /// Config file [default: $DRCTL_CONFIG, ./drctl.yaml, then /etc/drctl/drctl.yaml]
    #[arg(short = 'c', long = "config", global = true, env = "DRCTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format for results; under json, an error is one JSON object on stderr.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Text, env = "DRCTL_OUTPUT")]
    pub output: Output,
    /// Log format on stderr [default: text on a terminal, json otherwise]
    #[arg(long, global = true, value_enum, env = "DRCTL_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Log errors only, and no progress bars (results and errors still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command into a directory.
    Man {
        /// Write drctl.1, drctl-backup.1, drctl-backup-run.1, … into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run, list and inspect backups.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// Restore a backup into a target, from whichever region still holds an intact copy.
    Restore(RestoreArgs),
    /// Prove a backup restores: checksums in every region, the format itself, a real restore.
    Verify(VerifyArgs),
    /// Per job: newest and newest verified backup, copies per region, RPO and RTO against their targets; exit 1 on a breach.
    Status,
    /// The operator's console page (what the daemon serves at /) as a file, or its data as JSON.
    Report(ReportArgs),
    /// Every backup of a job over time: sizes, durations, compression, copies, verifications.
    History {
        /// The job.
        job: String,
    },
    /// Enforce each job's retention policy in every region; partial runs past a grace period go too.
    Prune(PruneArgs),
    /// The daemon: run backups, verifications and prunes on their cron schedules.
    Schedule(ScheduleArgs),
    /// DR drills: run a playbook, measure RTO and RPO, keep the evidence.
    #[command(subcommand)]
    Drill(DrillCmd),
    /// Kubernetes manifests from the config.
    #[command(subcommand)]
    K8s(K8sCmd),
    /// Check and describe the config file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The optional PostgreSQL catalog: migrate its schema, rebuild it from the regions.
    #[command(subcommand)]
    Catalog(CatalogCmd),
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// Apply the schema migrations this drctl carries (each once; a newer schema is refused).
    Migrate,
    /// Rebuild the catalog from every region's repository (idempotent; every region must answer).
    Sync,
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Back up now (the CronJob entry point).
    Run {
        /// Jobs to back up, in order.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        jobs: Vec<String>,
        /// Back up every job in the config.
        #[arg(long)]
        all: bool,
        /// When another run of the job holds its lease: `fail` (exit 1) or `skip` (exit 0).
        #[arg(long, value_enum, default_value_t = IfRunning::Fail)]
        if_running: IfRunning,
        /// Push this run's metrics to a Prometheus Pushgateway (one group per job:
        /// /metrics/job/<job>); a push that fails is logged and does not change the exit code.
        #[arg(long, value_name = "URL")]
        pushgateway: Option<String>,
    },
    /// List complete backups and the regions holding each.
    List { job: Option<String> },
    /// Show one backup's manifest and where it is stored.
    Show { id: String },
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The job whose backup to restore.
    pub job: String,
    /// Backup id, or `latest`.
    #[arg(long, default_value = "latest")]
    pub backup: String,
    /// Newest backup consistent at or before TIME (RFC 3339, or a duration ago such as `2h`).
    #[arg(long, conflicts_with = "backup")]
    pub before: Option<String>,
    /// Region to read from first; the others are tried next, in config order.
    #[arg(long)]
    pub region: Option<String>,
    /// Target, e.g. postgres://user@host:5432/newdb (created if missing).
    #[arg(long)]
    pub to: String,
    /// Drop and replace objects already in the target.
    #[arg(long)]
    pub clean: bool,
    /// Confirm restoring over a non-empty target (implies --clean).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Skip restoring ownership and privileges (target lacks the source's roles).
    #[arg(long)]
    pub no_owner: bool,
    /// Parallel restore jobs: a `parallel: N` backup restores N data artifacts at once (streamed), each building its own indexes as soon as its data is in, then the rest of post-data with pg_restore -j; a single archive is first spooled to a local file ($TMPDIR) for pg_restore -j.
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: u32,
    /// Restore collection FROM under the name TO (vector databases); repeatable.
    #[arg(long, value_name = "FROM=TO")]
    pub rename: Vec<String>,
    /// Restore only this member of a files backup (a file, or a directory with what is under
    /// it), named as stored: `etc/app/app.yaml`; repeatable.
    #[arg(long, value_name = "MEMBER")]
    pub path: Vec<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum IfRunning {
    Fail,
    Skip,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub job: String,
    /// Backup id, or `latest`.
    #[arg(long, default_value = "latest")]
    pub backup: String,
    /// checksum | structure | restore [default: the job's verify.level, else structure]
    #[arg(long, value_enum)]
    pub level: Option<Level>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    Checksum,
    Structure,
    Restore,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Only this job [default: every job in the config].
    pub job: Option<String>,
    /// Print what would be kept and deleted, and why; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Partial backups (no manifest) younger than this are left alone.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// Address for /healthz, /readyz, /metrics [default: scheduler.listen, else 127.0.0.1:9477]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand, Debug)]
pub enum K8sCmd {
    /// One CronJob per scheduled job (and the daemon as a Deployment alternative), as YAML.
    Render(RenderArgs),
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Container image of drctl.
    #[arg(long, default_value = "drctl:latest")]
    pub image: String,
    /// Namespace of every object.
    #[arg(long, default_value = "drctl")]
    pub namespace: String,
    /// Secret whose keys provide the config's ${VAR} references.
    #[arg(long, default_value = "drctl-env")]
    pub secret: String,
    /// Also render the daemon (`drctl schedule`) as a Deployment, instead of CronJobs.
    #[arg(long)]
    pub daemon: bool,
    /// Annotation for the ServiceAccount (cloud IAM), e.g.
    /// eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/drctl
    #[arg(long = "sa-annotation", value_name = "KEY=VALUE")]
    pub sa_annotations: Vec<String>,
    /// Backup CronJobs push their metrics to this Prometheus Pushgateway.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// A CronJob's activeDeadlineSeconds: a run longer than this is killed.
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    pub deadline: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Parse and validate the config (no I/O beyond reading it); exit 2 with file:line:column on error.
    Validate,
    /// Print the config's JSON Schema.
    Schema,
}

#[derive(Subcommand, Debug)]
pub enum DrillCmd {
    /// Run a playbook: steps with owners and hard timeouts; RTO and RPO against the targets.
    Run(DrillRunArgs),
    /// Check a playbook: every problem with file:line:column and step id; runs nothing.
    Validate(DrillValidateArgs),
    /// Shipped playbooks and those in ./playbooks.
    List,
    /// Show one run's report (text, markdown, html or json).
    Report(DrillReportArgs),
    /// Every recorded run: verdict, RTO and RPO, and the trend against the previous run.
    History(DrillHistoryArgs),
}

#[derive(Args, Debug)]
pub struct DrillSelect {
    /// A file, a name in ./playbooks, or a shipped playbook.
    pub playbook: String,
    /// The scenario to run, for checklist files with `scenarios:`.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Set a playbook variable (overrides `vars:`); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DrillRunArgs {
    #[command(flatten)]
    pub select: DrillSelect,
    /// Print the resolved plan (steps, owners, timeouts, targets) and touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm every manual step without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Run the rollback steps at the end even when the drill passed.
    #[arg(long)]
    pub rollback: bool,
    /// Local folder for journals and reports.
    #[arg(long, default_value = "drills", env = "DRCTL_EVIDENCE_DIR")]
    pub evidence_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct DrillValidateArgs {
    #[command(flatten)]
    pub select: DrillSelect,
}

#[derive(Args, Debug)]
pub struct DrillReportArgs {
    /// Run id (or a unique prefix of one).
    pub run: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    #[arg(long, default_value = "drills", env = "DRCTL_EVIDENCE_DIR")]
    pub evidence_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Write the page as self-contained HTML into FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also publish the page to every region as `console/index.html`.
    #[arg(long)]
    pub publish: bool,
}

#[derive(Args, Debug)]
pub struct DrillHistoryArgs {
    /// Only this playbook.
    pub playbook: Option<String>,
    #[arg(long, default_value = "drills", env = "DRCTL_EVIDENCE_DIR")]
    pub evidence_dir: PathBuf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Markdown,
    Html,
    Json,
}

/// The command line with each command's examples (`help::AFTER_HELP`) and what the
/// registered source kinds add: a summary per kind under `drctl --help`, the targets each
/// restores to under `restore --help`.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    // One line per registered kind: its name, then what `pick` says about it.
    let per_kind = |pick: fn(&crate::source::About) -> &'static str| {
        crate::source::kinds()
            .iter()
            .map(|(name, about)| format!("  {name:<9} {}", pick(about)))
            .collect::<Vec<_>>()
    };
    let mut extra: Vec<(&str, String)> = help::AFTER_HELP
        .iter()
        .map(|(path, text)| (*path, text.to_string()))
        .collect();
    let restore = extra.iter_mut().find(|(p, _)| *p == "restore").unwrap();
    restore.1 = format!(
        "{}\n\nTargets (--to), by source kind:\n{}",
        restore.1,
        per_kind(|a| a.restore_to).join("\n")
    );
    let root = Cli::command().after_help(format!(
        "Source kinds (`source: {{ kind: … }}` in a job):\n{}\n\n{EXIT_CODES}",
        per_kind(|a| a.summary).join("\n")
    ));
    extra.into_iter().fold(root, |cmd, (path, text)| {
        let path: Vec<&str> = path.split(' ').collect();
        with_after_help(cmd, &path, text)
    })
}

/// `cmd` with `text` after the help of its subcommand at `path`. A path naming no command is
/// a bug in the table; the `help` test catches it.
fn with_after_help(cmd: clap::Command, path: &[&str], text: String) -> clap::Command {
    match path {
        [] => cmd.after_help(text),
        [first, rest @ ..] => cmd.mut_subcommand(*first, |c| with_after_help(c, rest, text)),
    }
}

/// Parse the process's arguments against `command()`; exits on `--help` and bad usage, as
/// `Cli::parse` does.
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
