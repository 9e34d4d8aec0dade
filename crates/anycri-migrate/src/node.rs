//! The node's files: systemd units and drop-ins, cron tables and scripts that call the
//! Docker CLI or depend on `docker.service`; kubelet settings that name Docker (dockershim's
//! flags, `--docker-endpoint`, endpoints of dockershim or cri-dockerd, in its units, its
//! environment files and its config file); log readers configured to read Docker's
//! `*-json.log` files. Every path is read under a root directory (`/` on the node itself, or
//! a node's filesystem mounted elsewhere), and reported with its line.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::report::{Category, Finding, Severity};

/// Where [`scan_node`] looks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeScan {
    /// The node's root directory (`/`).
    pub root: PathBuf,
    /// Script directories (absolute, under `root`) besides `/usr/local/bin`,
    /// `/usr/local/sbin` and `/etc/cron.{hourly,daily,weekly,monthly}`.
    pub script_dirs: Vec<PathBuf>,
    /// Log readers' configuration files or directories besides the usual agents' (Fluent
    /// Bit, Fluentd, Filebeat, Vector, Promtail, the OpenTelemetry Collector, the Datadog
    /// agent, rsyslog).
    pub agent_configs: Vec<PathBuf>,
}

impl NodeScan {
    /// Scans the node whose filesystem is at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NodeScan {
            root: root.into(),
            script_dirs: Vec::new(),
            agent_configs: Vec::new(),
        }
    }

    /// Adds a script directory.
    pub fn script_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.script_dirs.push(dir.into());
        self
    }

    /// Adds a log reader's configuration file or directory.
    pub fn agent_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.agent_configs.push(path.into());
        self
    }

    /// `path` (absolute on the node) under the root.
    fn at(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// The fixed directories (absolute on the node) and the extra ones, under the root.
    fn dirs(&self, fixed: &[&str], extra: &[PathBuf]) -> Vec<PathBuf> {
        fixed
            .iter()
            .map(|d| self.at(d))
            .chain(extra.iter().map(|d| self.at(d)))
            .collect()
    }

    /// `path` under the root, as the node sees it.
    fn shown(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => path.display().to_string(),
        }
    }
}

/// A command word `docker` (or `docker-compose`, or a path ending in them).
static DOCKER_CLI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s;&|(`'"=])(?:[\w./-]*/)?(docker(?:-compose)?)(?:[\s;)`'"]|$)"#)
        .expect("regex")
});

/// A unit dependency on Docker's own units.
static DOCKER_UNIT_DEP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(Requires|Wants|After|Before|BindsTo|PartOf|Requisite|Upholds)\s*=.*\bdocker\.(service|socket)\b")
        .expect("regex")
});

/// Scans the node's files.
pub fn scan_node(scan: &NodeScan) -> (Vec<Finding>, Vec<String>) {
    let mut findings = Vec::new();
    let mut scanned = Vec::new();
    let (f, n) = scan_units(scan);
    findings.extend(f);
    scanned.push(format!("systemd units and drop-ins: {n} files"));
    let (f, n) = scan_cron(scan);
    findings.extend(f);
    scanned.push(format!("cron tables: {n} files"));
    let (f, n) = scan_scripts(scan);
    findings.extend(f);
    scanned.push(format!("scripts: {n} files"));
    let (f, n) = scan_kubelet(scan);
    findings.extend(f);
    scanned.push(format!(
        "kubelet units, environment and config files: {n} files"
    ));
    let (f, n) = scan_log_readers(scan);
    findings.extend(f);
    scanned.push(format!("log readers' configuration: {n} files"));
    (findings, scanned)
}

/// Text files under `dir` (recursively, at most `depth` deep), canonical and deduplicated
/// across directories that are symlinks of each other (Debian's `/lib` is `/usr/lib`).
fn text_files(dirs: &[PathBuf], depth: usize) -> Vec<PathBuf> {
    let mut seen = std::collections::BTreeSet::new();
    let mut files = Vec::new();
    for dir in dirs {
        if !dir.exists() {
            continue;
        }
        for entry in walkdir::WalkDir::new(dir)
            .max_depth(depth)
            .follow_links(true)
            .into_iter()
            .filter_map(Result::ok)
        {
            if !entry.file_type().is_file() {
                continue;
            }
            let canonical = entry
                .path()
                .canonicalize()
                .unwrap_or_else(|_| entry.path().to_path_buf());
            if seen.insert(canonical) {
                files.push(entry.path().to_path_buf());
            }
        }
    }
    files
}

/// The file's lines if it is text of at most 1 MiB.
fn read_text(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 1 << 20 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// Lines (1-based) that run the Docker CLI, comments skipped; with the command word.
fn docker_calls(text: &str) -> Vec<(usize, String, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && !l.trim_start().starts_with(';'))
        .filter_map(|(i, l)| {
            DOCKER_CLI
                .captures(l)
                .map(|c| (i + 1, c[1].to_string(), l.trim().to_string()))
        })
        .collect()
}

/// Docker's own units (and cri-dockerd's, and containerd's), which go with Docker.
fn is_docker_own_unit(name: &str) -> bool {
    [
        "docker.",
        "cri-docker.",
        "cri-dockerd.",
        "containerd.",
        "docker-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

fn scan_units(scan: &NodeScan) -> (Vec<Finding>, usize) {
    let dirs: Vec<PathBuf> = [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/usr/local/lib/systemd/system",
    ]
    .iter()
    .map(|d| scan.at(d))
    .collect();
    let files = text_files(&dirs, 3);
    let mut findings = Vec::new();
    let mut n = 0;
    for file in files {
        // The unit a drop-in belongs to is its directory's name without `.d`.
        let unit = match file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
        {
            Some(d) if d.ends_with(".d") => d.trim_end_matches(".d").to_string(),
            _ => file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string(),
        };
        if is_docker_own_unit(&unit) {
            continue;
        }
        let Some(text) = read_text(&file) else {
            continue;
        };
        n += 1;
        let shown = scan.shown(&file);
        for (i, line) in text.lines().enumerate() {
            if DOCKER_UNIT_DEP.is_match(line) {
                findings.push(Finding::new(
                    Category::SystemdUnit,
                    Severity::Warning,
                    format!("{shown}:{}", i + 1),
                    format!("unit {unit} depends on Docker's unit: {}", line.trim()),
                    "point it at the new runtime's unit (containerd.service, crio.service) or drop the dependency",
                ));
            }
        }
        for (line, word, text) in docker_calls(&text) {
            if !text.starts_with("Exec") {
                continue;
            }
            findings.push(Finding::new(
                Category::SystemdUnit,
                Severity::Warning,
                format!("{shown}:{line}"),
                format!("unit {unit} runs `{word}`: {text}"),
                "use crictl or `anycri docker ...` (read-only commands over any CRI runtime), or keep Docker Engine for it",
            ));
        }
    }
    (findings, n)
}

fn scan_cron(scan: &NodeScan) -> (Vec<Finding>, usize) {
    let mut files: Vec<PathBuf> = vec![scan.at("/etc/crontab")];
    files.extend(text_files(
        &[
            scan.at("/etc/cron.d"),
            scan.at("/var/spool/cron/crontabs"),
            scan.at("/var/spool/cron"),
        ],
        2,
    ));
    files.dedup();
    docker_call_findings(
        scan,
        files,
        Category::Cron,
        "cron job runs",
        "replace it with crictl or `anycri docker ...`, or keep Docker Engine for it",
    )
}

/// A warning for every line of `files` that runs the Docker CLI; how many files were read.
fn docker_call_findings(
    scan: &NodeScan,
    files: Vec<PathBuf>,
    category: Category,
    what: &str,
    fix: &str,
) -> (Vec<Finding>, usize) {
    let mut findings = Vec::new();
    let mut n = 0;
    for file in files {
        let Some(text) = read_text(&file) else {
            continue;
        };
        n += 1;
        for (line, word, text) in docker_calls(&text) {
            findings.push(Finding::new(
                category,
                Severity::Warning,
                format!("{}:{line}", scan.shown(&file)),
                format!("{what} `{word}`: {text}"),
                fix,
            ));
        }
    }
    (findings, n)
}

fn scan_scripts(scan: &NodeScan) -> (Vec<Finding>, usize) {
    let dirs = scan.dirs(
        &[
            "/usr/local/bin",
            "/usr/local/sbin",
            "/etc/cron.hourly",
            "/etc/cron.daily",
            "/etc/cron.weekly",
            "/etc/cron.monthly",
        ],
        &scan.script_dirs,
    );
    docker_call_findings(
        scan,
        text_files(&dirs, 8),
        Category::Script,
        "runs",
        "replace it with crictl or `anycri docker ps|images|inspect|logs|exec` (same flags and output shapes), or keep Docker Engine for it",
    )
}

/// Kubelet flags that went with dockershim (removed in Kubernetes 1.24: the kubelet no
/// longer starts with them).
const DOCKERSHIM_FLAGS: &[&str] = &[
    "--docker-endpoint",
    "--network-plugin",
    "--network-plugin-mtu",
    "--cni-bin-dir",
    "--cni-conf-dir",
    "--cni-cache-dir",
    "--image-pull-progress-deadline",
    "--experimental-dockershim-root-directory",
    "--docker-root",
];

fn scan_kubelet(scan: &NodeScan) -> (Vec<Finding>, usize) {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/run/systemd/system",
    ] {
        let unit = scan.at(dir).join("kubelet.service");
        files.push(unit.clone());
        files.extend(text_files(&[scan.at(dir).join("kubelet.service.d")], 1));
    }
    for f in [
        "/etc/default/kubelet",
        "/etc/sysconfig/kubelet",
        "/var/lib/kubelet/kubeadm-flags.env",
    ] {
        files.push(scan.at(f));
    }
    let mut findings = Vec::new();
    let mut n = 0;
    let mut configs: Vec<PathBuf> = vec![scan.at("/var/lib/kubelet/config.yaml")];
    let mut seen = std::collections::BTreeSet::new();
    for file in files {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
        if !seen.insert(canonical) {
            continue;
        }
        let Some(text) = read_text(&file) else {
            continue;
        };
        n += 1;
        let shown = scan.shown(&file);
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            let at = format!("{shown}:{}", i + 1);
            for (flag, value) in flags(line) {
                if flag == "--config" {
                    configs.push(scan.at(&value));
                }
                findings.extend(kubelet_flag(&at, &flag, &value));
            }
        }
    }
    configs.dedup();
    for config in configs {
        let Some(text) = read_text(&config) else {
            continue;
        };
        n += 1;
        let shown = scan.shown(&config);
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            for key in ["containerRuntimeEndpoint:", "imageServiceEndpoint:"] {
                if let Some(value) = trimmed.strip_prefix(key) {
                    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                    if let Some(f) = endpoint_finding(
                        &format!("{shown}:{}", i + 1),
                        key.trim_end_matches(':'),
                        value,
                    ) {
                        findings.push(f);
                    }
                }
            }
        }
    }
    (findings, n)
}

/// `--flag=value` and `--flag value` pairs on a line.
fn flags(line: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let w = w.split_once("ARGS=").map_or(*w, |(_, rest)| rest);
        if !w.starts_with("--") {
            continue;
        }
        match w.split_once('=') {
            Some((flag, value)) => out.push((flag.to_string(), value.to_string())),
            None => {
                let value = words
                    .get(i + 1)
                    .filter(|v| !v.starts_with("--"))
                    .map_or(String::new(), |v| v.to_string());
                out.push((w.to_string(), value));
            }
        }
    }
    out
}

fn kubelet_flag(at: &str, flag: &str, value: &str) -> Option<Finding> {
    if flag == "--container-runtime" && value == "docker" {
        return Some(Finding::new(
            Category::Kubelet,
            Severity::Blocker,
            at,
            "kubelet --container-runtime=docker: dockershim, removed in Kubernetes 1.24",
            "drop the flag and set --container-runtime-endpoint to the new runtime's socket (unix:///run/containerd/containerd.sock, unix:///var/run/crio/crio.sock)",
        ));
    }
    if DOCKERSHIM_FLAGS.contains(&flag) {
        return Some(Finding::new(
            Category::Kubelet,
            Severity::Blocker,
            at,
            format!(
                "kubelet {flag}{}: a dockershim flag, removed in Kubernetes 1.24 (the kubelet refuses to start with it)",
                if value.is_empty() {
                    String::new()
                } else {
                    format!("={value}")
                }
            ),
            if flag.starts_with("--cni") || flag.starts_with("--network-plugin") {
                "remove it; CNI settings move to the runtime's configuration (containerd's or CRI-O's cni section)"
            } else {
                "remove it; the new runtime's endpoint goes in --container-runtime-endpoint (or containerRuntimeEndpoint)"
            },
        ));
    }
    if flag == "--container-runtime-endpoint" || flag == "--image-service-endpoint" {
        return endpoint_finding(at, flag, value);
    }
    None
}

fn endpoint_finding(at: &str, setting: &str, value: &str) -> Option<Finding> {
    if value.contains("dockershim") {
        return Some(Finding::new(
            Category::Kubelet,
            Severity::Blocker,
            at,
            format!("kubelet {setting} is dockershim's socket ({value})"),
            "point it at the new runtime's socket (unix:///run/containerd/containerd.sock, unix:///var/run/crio/crio.sock)",
        ));
    }
    if value.contains("cri-dockerd")
        || value.contains("anycri-dockerd")
        || value.ends_with("docker.sock")
    {
        return Some(Finding::new(
            Category::Kubelet,
            Severity::Blocker,
            at,
            format!(
                "kubelet {setting} is a Docker shim's socket ({value}): the node still runs its pods on Docker"
            ),
            "point it at the new runtime's socket once the runtime is configured (anycri migrate plan)",
        ));
    }
    None
}

fn scan_log_readers(scan: &NodeScan) -> (Vec<Finding>, usize) {
    let dirs = scan.dirs(
        &[
            "/etc/fluent-bit",
            "/etc/td-agent-bit",
            "/etc/td-agent",
            "/etc/fluent",
            "/etc/fluentd",
            "/etc/filebeat",
            "/etc/vector",
            "/etc/promtail",
            "/etc/otelcol",
            "/etc/otelcol-contrib",
            "/etc/datadog-agent",
            "/etc/google-fluentd",
            "/etc/rsyslog.d",
        ],
        &scan.agent_configs,
    );
    let mut findings = Vec::new();
    let mut n = 0;
    for file in text_files(&dirs, 6) {
        let Some(text) = read_text(&file) else {
            continue;
        };
        n += 1;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('#') {
                continue;
            }
            if t.contains("/var/lib/docker/containers") || t.contains("-json.log") {
                findings.push(Finding::new(
                    Category::LogReader,
                    Severity::Warning,
                    format!("{}:{}", scan.shown(&file), i + 1),
                    format!("reads Docker's JSON log files: {t}"),
                    "read /var/log/pods/<ns>_<pod>_<uid>/<container>/*.log (or /var/log/containers/*.log) in the CRI format (`<time> <stdout|stderr> <P|F> <line>`; e.g. Fluent Bit's `cri` parser)",
                ));
            }
        }
    }
    (findings, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_calls_are_found_and_look_alikes_are_not() {
        let text = "#!/bin/sh\n# docker ps in a comment\ndocker ps -q\nid=$(docker inspect x)\n/usr/bin/docker rm -f a\ndockerd --debug\nmy-docker-tool run\ndocker-compose up\necho dockerfile\n";
        let calls: Vec<usize> = docker_calls(text).into_iter().map(|c| c.0).collect();
        assert_eq!(calls, [3, 4, 5, 8]);
    }

    #[test]
    fn kubelet_flags_are_read_both_ways() {
        let f = flags(
            "KUBELET_KUBEADM_ARGS=\"--network-plugin=cni --container-runtime docker --pod-infra-container-image=k8s.gcr.io/pause:3.6\"",
        );
        assert_eq!(f[0], ("--network-plugin".into(), "cni".into()));
        assert_eq!(f[1], ("--container-runtime".into(), "docker".into()));
        assert!(kubelet_flag("x:1", &f[0].0, &f[0].1).is_some());
        assert!(kubelet_flag("x:1", &f[1].0, &f[1].1).is_some());
        assert!(kubelet_flag("x:1", &f[2].0, &f[2].1).is_none());
        assert!(endpoint_finding("x", "e", "unix:///run/containerd/containerd.sock").is_none());
        assert!(endpoint_finding("x", "e", "unix:///var/run/dockershim.sock").is_some());
    }
}
