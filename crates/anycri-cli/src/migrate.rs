//! `anycri migrate check` and `anycri migrate plan`: the command side of `anycri-migrate`.
//! `check` reports what depends on Docker (on this node, in manifest files, or both) as a
//! table, JSON or Markdown and exits 1 when it found a blocker (as `kubectl dds
//! --exit-with-error` does); `plan` translates `daemon.json` into the new runtime's files
//! under an output directory.

use std::path::PathBuf;

use anycri::{Error, ErrorKind, RuntimeService};
use anycri_migrate::{CheckOptions, NodeScan, PlanOptions, TargetRuntime};
use clap::{Subcommand, ValueEnum};

/// `anycri migrate ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum MigrateCommand {
    /// Find what depends on Docker: workloads and processes (through the CRI runtime given
    /// with -r, and through dockerd), systemd units, cron, scripts, kubelet settings and log
    /// readers on this node; and manifest files (-f). Exits 1 when a blocker is found.
    Check(CheckArgs),
    /// Translate Docker's daemon.json into containerd's or CRI-O's configuration files,
    /// written under --out (never over live configuration unless --out is / and
    /// --overwrite is given).
    Plan(PlanArgs),
}

/// Output formats of `migrate check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    Table,
    /// JSON for CI.
    Json,
    /// Markdown for CI summaries and pull requests.
    Markdown,
}

/// `anycri migrate check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Manifest files or folders (recursive; YAML and JSON), as `kubectl dds -f`.
    /// With -f alone only the manifests are checked (add --node for the node too).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Check this node too when -f is given.
    #[arg(long)]
    pub node: bool,
    /// The node's root directory (a node's filesystem mounted elsewhere, or `/`).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// More script directories to check for `docker` calls (besides /usr/local/bin,
    /// /usr/local/sbin and /etc/cron.*); repeatable.
    #[arg(long = "scripts")]
    pub scripts: Vec<PathBuf>,
    /// More log readers' configuration files or folders (besides Fluent Bit's, Fluentd's,
    /// Filebeat's, Vector's, Promtail's, the OpenTelemetry Collector's, Datadog's); repeatable.
    #[arg(long = "agent-config")]
    pub agent_configs: Vec<PathBuf>,
    /// dockerd's socket, whose own containers are checked too ("none" to skip).
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    pub docker_endpoint: String,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Exit 0 even when blockers are found.
    #[arg(long)]
    pub no_fail: bool,
}

/// The runtimes `migrate plan` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanTarget {
    /// containerd (CRI plugin).
    Containerd,
    /// CRI-O.
    Crio,
}

/// `anycri migrate plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Docker's daemon.json.
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    pub from: PathBuf,
    /// The new runtime.
    #[arg(long, value_enum)]
    pub to: PlanTarget,
    /// Where to write the files, in the layout of / (etc/containerd/..., etc/crio/...).
    #[arg(long)]
    pub out: PathBuf,
    /// containerd's config schema: 2 for containerd 1.x, 3 for 2.x.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub containerd_config_version: u8,
    /// The directory containerd reads registry hosts from, as written into its config.
    #[arg(long, default_value = "/etc/containerd/certs.d")]
    pub certs_dir: String,
    /// Replace files that exist.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `anycri migrate ...`; the exit code.
pub async fn run(
    command: MigrateCommand,
    runtime: impl std::future::Future<Output = anycri::Result<std::sync::Arc<dyn RuntimeService>>>,
    json: bool,
) -> anycri::Result<i32> {
    match command {
        MigrateCommand::Check(args) => check(args, runtime).await,
        MigrateCommand::Plan(args) => plan(args, json),
    }
}

async fn check(
    args: CheckArgs,
    runtime: impl std::future::Future<Output = anycri::Result<std::sync::Arc<dyn RuntimeService>>>,
) -> anycri::Result<i32> {
    let node = args.files.is_empty() || args.node;
    let mut options = CheckOptions::manifests(args.files.clone());
    let mut connected = None;
    let mut connect_error = None;
    if node {
        let mut scan = NodeScan::new(&args.root);
        for d in &args.scripts {
            scan = scan.script_dir(d);
        }
        for a in &args.agent_configs {
            scan = scan.agent_config(a);
        }
        options = options.node(scan);
        if args.docker_endpoint != "none" {
            options = options.docker(args.docker_endpoint.clone());
        }
        match runtime.await {
            Ok(rt) => connected = Some(rt),
            Err(e) => connect_error = Some(e),
        }
    }
    let mut report = anycri_migrate::check(connected.as_deref(), &options).await;
    if let Some(e) = connect_error {
        report.extend([anycri_migrate::Finding::new(
            anycri_migrate::Category::Coverage,
            anycri_migrate::Severity::Info,
            "the CRI runtime",
            format!("not reached, its workloads were not checked: {e}"),
            "pass the runtime's endpoint with -r",
        )]);
        report.sort();
    }
    let text = match args.format {
        ReportFormat::Table => report.to_table(),
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Markdown => report.to_markdown(),
    };
    out!("{}", text.trim_end());
    Ok(if report.has_blockers() && !args.no_fail {
        1
    } else {
        0
    })
}

fn plan(args: PlanArgs, json: bool) -> anycri::Result<i32> {
    let text = std::fs::read_to_string(&args.from).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidArgument
        };
        Error::with_source(kind, format!("reading {}", args.from.display()), e)
    })?;
    let target = match args.to {
        PlanTarget::Containerd => TargetRuntime::Containerd,
        PlanTarget::Crio => TargetRuntime::Crio,
    };
    let options = PlanOptions::new(target)
        .containerd_config_version(args.containerd_config_version)
        .containerd_certs_dir(args.certs_dir);
    let plan = anycri_migrate::plan::plan(&text, &options)?;
    let written = plan.write(&args.out, args.overwrite)?;
    if json {
        let mut value = plan.to_json();
        value["written"] = written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .into();
        out!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        out!("{}", plan.to_text().trim_end());
        out!(
            "\nWrote {} file(s) under {}.",
            written.len(),
            args.out.display()
        );
    }
    Ok(0)
}
