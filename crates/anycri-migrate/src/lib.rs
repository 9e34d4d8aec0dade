//! Leaving dockershim with anycri: [`check`] finds what on a node, or in manifest files,
//! depends on Docker — workloads that mount the Docker socket (through the node's CRI runtime
//! and through Docker itself), processes that run the Docker CLI, systemd units, cron tables
//! and scripts that call it, kubelet settings that name dockershim, log readers of Docker's
//! JSON logs — each with its location, severity and fix ([`report`]); [`plan`](plan::plan)
//! translates Docker's `daemon.json` into containerd's or CRI-O's configuration files.
//! `anycri migrate check|plan` is the command; `docs/migration.md` walks through it.

pub mod manifests;
pub mod node;
pub mod plan;
pub mod report;
pub mod workloads;

use std::path::PathBuf;

use anycri_core::RuntimeService;

pub use node::NodeScan;
pub use plan::{Plan, PlanOptions, TargetRuntime};
pub use report::{Category, Finding, Report, Severity};

/// What [`check`] looks at.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Manifest files and folders (`-f`).
    pub manifests: Vec<PathBuf>,
    /// The node's files, when the node is checked.
    pub node: Option<NodeScan>,
    /// The node's `/proc` (processes running the Docker CLI), when the node is checked.
    pub proc_dir: Option<PathBuf>,
    /// dockerd's socket (`unix:///var/run/docker.sock`), when Docker's own containers are
    /// checked.
    pub docker_endpoint: Option<String>,
}

impl CheckOptions {
    /// Checks manifest files and folders only (what CI gates on).
    pub fn manifests(paths: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        CheckOptions {
            manifests: paths.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Also checks the node whose filesystem is `scan.root` (its `/proc` is
    /// `<root>/proc`).
    pub fn node(mut self, scan: NodeScan) -> Self {
        self.proc_dir = Some(scan.root.join("proc"));
        self.node = Some(scan);
        self
    }

    /// Also checks Docker's own containers at `endpoint`.
    pub fn docker(mut self, endpoint: impl Into<String>) -> Self {
        self.docker_endpoint = Some(endpoint.into());
        self
    }
}

/// Checks manifests, the node's files and processes, and the workloads of `runtime` (the
/// node's CRI runtime, when given) and of Docker, per `options`. What cannot be looked at is
/// reported (category coverage), never silently skipped.
pub async fn check(runtime: Option<&dyn RuntimeService>, options: &CheckOptions) -> Report {
    let mut report = Report::default();
    if !options.manifests.is_empty() {
        let (findings, files) = manifests::scan_manifests(&options.manifests);
        report.extend(findings);
        report.scanned(format!("manifests: {files} file(s)"));
    }
    let mut known = workloads::KnownContainers::new();
    if let Some(rt) = runtime {
        match workloads::scan_runtime(rt, &mut known).await {
            Ok(findings) => {
                report.extend(findings);
                report.scanned(format!("the CRI runtime's containers: {}", known.len()));
            }
            Err(e) => report.extend([Finding::new(
                Category::Coverage,
                Severity::Info,
                "the CRI runtime",
                format!("could not list its containers: {e}"),
                "pass the runtime's endpoint with -r",
            )]),
        }
    }
    if let Some(endpoint) = &options.docker_endpoint {
        let path = endpoint
            .trim_start_matches("unix://")
            .trim_start_matches("docker://");
        let before = known.len();
        let docker = bollard::Docker::connect_with_unix(path, 30, bollard::API_DEFAULT_VERSION);
        let result = match docker {
            Ok(d) => workloads::scan_docker(&d, &mut known).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(findings) => {
                report.extend(findings);
                report.scanned(format!(
                    "Docker's containers at {path}: {} more than the CRI listed",
                    known.len() - before
                ));
            }
            Err(_) if !std::path::Path::new(path).exists() => {
                report.scanned(format!("Docker: no socket at {path}"));
            }
            Err(e) => report.extend([Finding::new(
                Category::Coverage,
                Severity::Info,
                format!("Docker at {path}"),
                format!("could not list its containers: {e}"),
                "check the socket and permissions (--docker-endpoint)",
            )]),
        }
    }
    if let Some(proc_dir) = &options.proc_dir {
        if proc_dir.is_dir() {
            report.extend(workloads::scan_processes(proc_dir, &known));
            report.scanned(format!("processes under {}", proc_dir.display()));
        } else {
            report.scanned(format!("processes: no {}", proc_dir.display()));
        }
    }
    if let Some(scan) = &options.node {
        let (findings, scanned) = node::scan_node(scan);
        report.extend(findings);
        for s in scanned {
            report.scanned(s);
        }
    }
    report.sort();
    report
}
