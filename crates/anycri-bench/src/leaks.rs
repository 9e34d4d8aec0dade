//! Leak accounting for the soak: what a runtime and the host hold before a run and after it
//! has settled, counted from outside the runtime — the CRI lists (every state), Docker's
//! containers and bridge endpoints, `containerd-shim*` processes, network namespace files,
//! CNI host-local IP reservations, the shim's sandbox checkpoints, iptables rules and chains
//! (nat and filter) — and the daemons' open fds, threads and RSS. A [`LeakProbe`] is
//! discovered once per target (from its URI and the daemons behind it: containerd's config
//! file, dockerd's exec root, the CNI configs a target uses); a [`Snapshot`] is one
//! counting; [`LeakReport::compare`] sets two side by side and says which grew.
//!
//! Host-wide counters (namespaces, IPs, iptables) see everything on the host: anything else
//! creating pods while a soak runs shows up in them.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anycri::{RuntimeService, api::*};
use bollard::{Docker, query_parameters::ListContainersOptionsBuilder};
use serde::{Deserialize, Serialize};

use crate::{
    procstat::{self, DaemonSpec},
    target::{DOCKER_FLOOR_SCHEME, Target},
};

/// What a counter counts, which decides how its growth is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CounterKind {
    /// Objects (containers, namespaces, IPs, rules, ...): any growth is a leak.
    Object,
    /// A daemon's open file descriptors: growth beyond the slack is flagged.
    Fds,
    /// A daemon's threads: reported, not judged.
    Threads,
    /// A daemon's resident memory, bytes: reported, not judged.
    RssBytes,
}

/// One counter before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakCounter {
    /// What is counted (`CRI containers`, `netns files in /run/netns`, `containerd (pid 42): open fds`, ...).
    pub name: String,
    /// Its kind.
    pub kind: CounterKind,
    /// Count before the run.
    pub before: u64,
    /// Count after the run settled.
    pub after: u64,
    /// `after - before`.
    pub delta: i64,
    /// Whether the growth is flagged as a leak.
    pub leak: bool,
}

/// One counting of everything a [`LeakProbe`] watches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Counters in a stable order: name, kind, value.
    pub values: Vec<(String, CounterKind, u64)>,
    /// The iptables rules (`<table> -A ...`, counters stripped), for the diff.
    pub iptables_rules: Vec<String>,
    /// The network namespace files, each with whether it is mounted (a live namespace; an
    /// unmounted file is one waiting for its runtime to delete it), for the diff.
    pub netns_files: Vec<(String, bool)>,
    /// Counters that could not be read this time.
    pub errors: Vec<String>,
}

impl Snapshot {
    /// Network namespace files not mounted: deleted namespaces whose files their runtime
    /// has yet to remove.
    pub fn pending_netns_files(&self) -> usize {
        self.netns_files.iter().filter(|(_, m)| !m).count()
    }

    fn push(&mut self, name: impl Into<String>, kind: CounterKind, value: u64) {
        self.values.push((name.into(), kind, value));
    }

    /// The value of the counter `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
    }
}

/// The comparison of a before and an after [`Snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeakReport {
    /// Every counter read both times.
    pub counters: Vec<LeakCounter>,
    /// Open fds a daemon may gain before it is flagged.
    pub fd_slack: u64,
    /// Seconds waited after the run for the object counts to come back.
    pub settle_seconds: f64,
    /// Whether every object counter was back at (or under) its count before the run when
    /// the wait ended (false: the wait ran out).
    pub settled: bool,
    /// iptables rules present after the run but not before (at most 20).
    pub new_iptables_rules: Vec<String>,
    /// Network namespace files present after the run but not before (at most 20), each
    /// saying whether it is still mounted.
    #[serde(default)]
    pub new_netns_files: Vec<String>,
    /// What could not be counted, and how the counters were found.
    pub notes: Vec<String>,
}

impl LeakReport {
    /// Set `before` and `after` side by side; object counters that grew, and fd counts that
    /// grew by more than `fd_slack`, are leaks.
    pub fn compare(before: &Snapshot, after: &Snapshot, fd_slack: u64) -> LeakReport {
        let mut report = LeakReport {
            fd_slack,
            ..Default::default()
        };
        for (name, kind, b) in &before.values {
            let Some(a) = after.get(name) else {
                report
                    .notes
                    .push(format!("{name}: counted before the run, not after"));
                continue;
            };
            let delta = a as i64 - *b as i64;
            let leak = match kind {
                CounterKind::Object => delta > 0,
                CounterKind::Fds => delta > fd_slack as i64,
                CounterKind::Threads | CounterKind::RssBytes => false,
            };
            report.counters.push(LeakCounter {
                name: name.clone(),
                kind: *kind,
                before: *b,
                after: a,
                delta,
                leak,
            });
        }
        for (name, _, _) in &after.values {
            if before.get(name).is_none() {
                report
                    .notes
                    .push(format!("{name}: counted after the run, not before"));
            }
        }
        let old: BTreeSet<&String> = before.iptables_rules.iter().collect();
        report.new_iptables_rules = after
            .iptables_rules
            .iter()
            .filter(|r| !old.contains(r))
            .take(20)
            .cloned()
            .collect();
        let old: BTreeSet<&String> = before.netns_files.iter().map(|(f, _)| f).collect();
        report.new_netns_files = after
            .netns_files
            .iter()
            .filter(|(f, _)| !old.contains(f))
            .take(20)
            .map(|(f, mounted)| {
                format!(
                    "{f} ({})",
                    if *mounted {
                        "mounted: a live namespace"
                    } else {
                        "not mounted: waiting for its runtime to delete it"
                    }
                )
            })
            .collect();
        for e in before.errors.iter().chain(&after.errors) {
            if !report.notes.contains(e) {
                report.notes.push(e.clone());
            }
        }
        report
    }

    /// The counters flagged as leaks.
    pub fn leaks(&self) -> impl Iterator<Item = &LeakCounter> {
        self.counters.iter().filter(|c| c.leak)
    }

    /// Whether any counter is flagged.
    pub fn has_leaks(&self) -> bool {
        self.leaks().next().is_some()
    }
}

/// Whether every object counter of `now` is back at or under its count in `before`.
pub fn objects_back(before: &Snapshot, now: &Snapshot) -> bool {
    before
        .values
        .iter()
        .filter(|(_, k, _)| *k == CounterKind::Object)
        .all(|(name, _, b)| now.get(name).is_none_or(|a| a <= *b))
}

/// What to count for one target, found from its URI and its daemons.
pub struct LeakProbe {
    runtime: Option<Arc<dyn RuntimeService>>,
    docker: Option<Docker>,
    netns_dirs: Vec<PathBuf>,
    /// (network name, host-local directory of its reservations).
    cni_dirs: Vec<(String, PathBuf)>,
    checkpoint_dir: Option<PathBuf>,
    daemons: DaemonSpec,
    /// How the counters were found.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for LeakProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakProbe")
            .field("netns_dirs", &self.netns_dirs)
            .field("cni_dirs", &self.cni_dirs)
            .field("checkpoint_dir", &self.checkpoint_dir)
            .finish()
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE` (any of `names`) in a command line.
pub fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    for (i, a) in args.iter().enumerate() {
        for n in names {
            if a == n {
                return args.get(i + 1).cloned();
            }
            if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_owned());
            }
        }
    }
    None
}

/// Where a containerd keeps what the soak counts, from its config file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdPaths {
    /// Directories of the CRI plugin's network namespaces.
    pub netns_dirs: Vec<PathBuf>,
    /// The CNI config directory.
    pub cni_conf_dir: PathBuf,
}

/// Read containerd's config (version 2 or 3): `state`, the CRI plugin's
/// `netns_mounts_under_state_dir` and `cni.conf_dir`. Unparsable text gives the defaults.
pub fn containerd_paths(config: &str) -> ContainerdPaths {
    let table: toml::Table = toml::from_str(config).unwrap_or_default();
    let state = table
        .get("state")
        .and_then(|v| v.as_str())
        .unwrap_or("/run/containerd");
    let mut under_state = false;
    let mut conf_dir = None;
    if let Some(plugins) = table.get("plugins").and_then(|v| v.as_table()) {
        for key in ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"] {
            let Some(p) = plugins.get(key).and_then(|v| v.as_table()) else {
                continue;
            };
            under_state |= p
                .get("netns_mounts_under_state_dir")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if let Some(d) = p
                .get("cni")
                .and_then(|c| c.get("conf_dir"))
                .and_then(|v| v.as_str())
                .filter(|d| !d.is_empty())
            {
                conf_dir = Some(PathBuf::from(d));
            }
        }
    }
    let netns_dirs = if under_state {
        vec![
            Path::new(state)
                .join("io.containerd.grpc.v1.cri")
                .join("netns"),
        ]
    } else {
        Vec::new()
    };
    ContainerdPaths {
        netns_dirs,
        cni_conf_dir: conf_dir.unwrap_or_else(|| PathBuf::from("/etc/cni/net.d")),
    }
}

/// The host-local reservation directories of the CNI configs in `conf_dir` (`*.conf`,
/// `*.conflist`, `*.json`): `(network name, <ipam.dataDir or /var/lib/cni/networks>/<name>)`.
pub fn cni_host_local_dirs(conf_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(conf_dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "conf" || e == "conflist" || e == "json")
    });
    files.sort();
    let mut dirs = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for d in host_local_dirs_of(&text) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// The host-local directories one CNI config (a list or a single plugin's) uses.
pub fn host_local_dirs_of(text: &str) -> Vec<(String, PathBuf)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let Some(name) = v.get("name").and_then(|n| n.as_str()) else {
        return Vec::new();
    };
    let plugins: Vec<&serde_json::Value> = match v.get("plugins").and_then(|p| p.as_array()) {
        Some(list) => list.iter().collect(),
        None => vec![&v],
    };
    plugins
        .into_iter()
        .filter_map(|p| {
            let ipam = p.get("ipam")?;
            (ipam.get("type")?.as_str()? == "host-local").then(|| {
                let data = ipam
                    .get("dataDir")
                    .and_then(|d| d.as_str())
                    .unwrap_or("/var/lib/cni/networks");
                (name.to_owned(), Path::new(data).join(name))
            })
        })
        .collect()
}

/// Files in `dir` whose name is an IP address (host-local's reservations; `lock` and
/// `last_reserved_ip.*` are not). A missing directory holds none.
pub fn count_ip_files(dir: &Path) -> u64 {
    count_files(dir, |n| n.parse::<IpAddr>().is_ok())
}

/// Entries of `dir` whose (UTF-8) name satisfies `wanted`; a missing directory holds none.
fn count_files(dir: &Path, wanted: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(&wanted))
                .count() as u64
        })
        .unwrap_or(0)
}

/// Entries of a directory (network namespace files); a missing directory holds none.
pub fn count_entries(dir: &Path) -> u64 {
    list_entries(dir).len() as u64
}

/// Paths of a directory's entries, sorted; a missing directory holds none.
fn list_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.path().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The mount points of a `/proc/<pid>/mountinfo` text (the fifth field, octal escapes
/// such as `\040` for a space decoded).
pub fn parse_mount_points(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| {
            let b = m.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let oct = b.get(i + 1..i + 4).and_then(|d| {
                    std::str::from_utf8(d)
                        .ok()
                        .and_then(|d| u8::from_str_radix(d, 8).ok())
                });
                match (b[i], oct) {
                    (b'\\', Some(c)) => {
                        out.push(c);
                        i += 4;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
        .collect()
}

/// Files in `dir` ending in `.json` (the shim's sandbox checkpoints; not its temporary files).
pub fn count_json_files(dir: &Path) -> u64 {
    count_files(dir, |n| n.ends_with(".json") && !n.starts_with('.'))
}

/// The rules (`-A` lines, any `[packets:bytes]` counters stripped, prefixed with the table)
/// and chains (`:NAME` lines) of `iptables-save` output.
pub fn parse_iptables_save(text: &str) -> (Vec<String>, Vec<String>) {
    let mut table = "";
    let (mut rules, mut chains) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t;
            continue;
        }
        let line = match line.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or(line, |(_, r)| r.trim_start()),
            None => line,
        };
        if line.starts_with("-A ") {
            rules.push(format!("{table} {line}"));
        } else if let Some(chain) = line.strip_prefix(':') {
            let name = chain.split_whitespace().next().unwrap_or(chain);
            chains.push(format!("{table} {name}"));
        }
    }
    (rules, chains)
}

/// dockerd's exec root: `--exec-root` on its command line, else `exec-root` in its
/// `--config-file` (default /etc/docker/daemon.json), else `DOCKER_EXEC_ROOT`, else
/// /var/run/docker.
pub fn docker_exec_root(cmdline: &[String], env_exec_root: Option<String>) -> PathBuf {
    if let Some(root) = flag_value(cmdline, &["--exec-root"]) {
        return root.into();
    }
    let config =
        flag_value(cmdline, &["--config-file"]).unwrap_or_else(|| "/etc/docker/daemon.json".into());
    let from_config = std::fs::read_to_string(config)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("exec-root")?.as_str().map(PathBuf::from));
    from_config
        .or_else(|| env_exec_root.filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker"))
}

/// Open file descriptors of a process.
fn fd_count(pid: u32) -> Option<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u64)
}

/// The nat and filter tables as [`parse_iptables_save`] reads them, and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IptablesState {
    /// The rules (`<table> -A ...`), counters stripped.
    pub rules: Vec<String>,
    /// The chains (`<table> NAME`).
    pub chains: Vec<String>,
    /// Why a table could not be read (`iptables-save` missing, failing or hanging).
    pub errors: Vec<String>,
}

/// Read the nat and filter tables with `iptables-save` (30 s each at most).
pub async fn iptables_state() -> IptablesState {
    let mut state = IptablesState::default();
    for table in ["nat", "filter"] {
        match iptables_save(table).await {
            Ok(text) => {
                let (rules, chains) = parse_iptables_save(&text);
                state.rules.extend(rules);
                state.chains.extend(chains);
            }
            Err(e) => state.errors.push(e),
        }
    }
    state
}

async fn iptables_save(table: &str) -> Result<String, String> {
    let run = tokio::process::Command::new("iptables-save")
        .args(["-t", table])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(o)) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(Ok(o)) => Err(format!(
            "iptables-save -t {table} exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("iptables-save -t {table}: {e}")),
        Err(_) => Err(format!("iptables-save -t {table} took over 30 s")),
    }
}

/// The target's daemons now: as found when the run connected, or, when one of those
/// processes is gone (a daemon restarted since), found again from the endpoint's socket.
fn current_daemons(t: &Target) -> DaemonSpec {
    if t.daemons
        .fixed
        .values()
        .all(|&p| procstat::stat(p).is_some())
    {
        return t.daemons.clone();
    }
    let socket = match anycri::Endpoint::parse(&t.uri) {
        Ok(anycri::Endpoint::Unix(path)) => Some((path, false)),
        Ok(anycri::Endpoint::Docker { socket, .. }) => Some((socket, true)),
        _ => t.uri.strip_prefix(DOCKER_FLOOR_SCHEME).map(|p| {
            (
                PathBuf::from(if p.is_empty() {
                    "/var/run/docker.sock"
                } else {
                    p
                }),
                false,
            )
        }),
    };
    match socket {
        Some((path, in_process)) => DaemonSpec::discover(&path, in_process),
        None => t.daemons.clone(),
    }
}

fn push_dir(dirs: &mut Vec<PathBuf>, dir: PathBuf) {
    // /var/run is /run on most hosts: count each directory once.
    let real = std::fs::canonicalize(&dir).unwrap_or(dir);
    if !dirs.contains(&real) {
        dirs.push(real);
    }
}

impl LeakProbe {
    /// Find what to count for `t`.
    pub async fn discover(t: &Target) -> LeakProbe {
        let mut probe = LeakProbe {
            runtime: t.runtime(),
            docker: None,
            netns_dirs: Vec::new(),
            cni_dirs: Vec::new(),
            checkpoint_dir: None,
            daemons: current_daemons(t),
            notes: Vec::new(),
        };
        if probe.daemons != t.daemons {
            probe.notes.push(format!(
                "a daemon measured when the run connected is gone (restarted?); found again: {}",
                probe
                    .daemons
                    .fixed
                    .iter()
                    .map(|(n, p)| format!("{n} (pid {p})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        push_dir(&mut probe.netns_dirs, PathBuf::from("/var/run/netns"));
        let daemons = probe.daemons.clone();
        let pid_of = |comm: &str| {
            daemons
                .fixed
                .values()
                .copied()
                .find(|&p| procstat::comm(p).is_some_and(|c| c == comm))
        };
        let mut docker_socket = None;
        let mut cni_conf_dir = None;
        if let Some(path) = t.uri.strip_prefix(DOCKER_FLOOR_SCHEME) {
            docker_socket = Some(PathBuf::from(if path.is_empty() {
                "/var/run/docker.sock"
            } else {
                path
            }));
        } else {
            match anycri::Endpoint::parse(&t.uri) {
                Ok(anycri::Endpoint::Docker { socket, options }) => {
                    docker_socket = Some(socket);
                    probe.checkpoint_dir = Some(options.state_dir_or_default().join("sandboxes"));
                    if let Some(anycri::DockerNetwork::Cni { conf_dir, .. }) = options.network {
                        cni_conf_dir = Some(conf_dir);
                    }
                }
                Ok(anycri::Endpoint::Unix(_)) => {
                    if let Some(pid) = pid_of("containerd") {
                        let args = procstat::cmdline(pid);
                        let file = flag_value(&args, &["--config", "-c"])
                            .unwrap_or_else(|| "/etc/containerd/config.toml".into());
                        let text = std::fs::read_to_string(&file).unwrap_or_default();
                        let paths = containerd_paths(&text);
                        probe.notes.push(format!(
                            "containerd's config {file}: network namespaces in {}, CNI configs in {}",
                            paths
                                .netns_dirs
                                .iter()
                                .map(|d| d.display().to_string())
                                .chain(["/var/run/netns".into()])
                                .collect::<Vec<_>>()
                                .join(" and "),
                            paths.cni_conf_dir.display()
                        ));
                        for d in paths.netns_dirs {
                            push_dir(&mut probe.netns_dirs, d);
                        }
                        cni_conf_dir = Some(paths.cni_conf_dir);
                    } else if pid_of("crio").is_some() {
                        cni_conf_dir = Some(PathBuf::from("/etc/cni/net.d"));
                    }
                }
                _ => {}
            }
        }
        if let Some(socket) = docker_socket {
            let root = docker_exec_root(
                &pid_of("dockerd").map(procstat::cmdline).unwrap_or_default(),
                std::env::var("DOCKER_EXEC_ROOT").ok(),
            );
            probe.notes.push(format!(
                "Docker's network namespaces in {}/netns",
                root.display()
            ));
            push_dir(&mut probe.netns_dirs, root.join("netns"));
            match Docker::connect_with_unix(
                &socket.to_string_lossy(),
                120,
                bollard::API_DEFAULT_VERSION,
            ) {
                Ok(d) => match d.negotiate_version().await {
                    Ok(d) => probe.docker = Some(d),
                    Err(e) => probe.notes.push(format!("Docker does not answer: {e}")),
                },
                Err(e) => probe
                    .notes
                    .push(format!("connecting to Docker at {}: {e}", socket.display())),
            }
        }
        if let Some(dir) = cni_conf_dir {
            probe.cni_dirs = cni_host_local_dirs(&dir);
            if probe.cni_dirs.is_empty() {
                probe.notes.push(format!(
                    "no host-local IPAM in the CNI configs of {}: CNI IPs not counted",
                    dir.display()
                ));
            }
        }
        probe
    }

    /// The daemons whose fds, threads and RSS are counted (those of the target, found again
    /// if one restarted since the run connected).
    pub fn daemons(&self) -> &DaemonSpec {
        &self.daemons
    }

    /// Count everything now.
    pub async fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        if let Some(rt) = &self.runtime {
            match rt.list_pod_sandbox(ListPodSandboxRequest::default()).await {
                Ok(r) => s.push(
                    "CRI pod sandboxes",
                    CounterKind::Object,
                    r.items.len() as u64,
                ),
                Err(e) => s.errors.push(format!("CRI pod sandboxes: {e}")),
            }
            match rt.list_containers(ListContainersRequest::default()).await {
                Ok(r) => s.push(
                    "CRI containers",
                    CounterKind::Object,
                    r.containers.len() as u64,
                ),
                Err(e) => s.errors.push(format!("CRI containers: {e}")),
            }
        }
        if let Some(d) = &self.docker {
            let all = ListContainersOptionsBuilder::default().all(true).build();
            match d.list_containers(Some(all)).await {
                Ok(l) => s.push(
                    "Docker containers (all states)",
                    CounterKind::Object,
                    l.len() as u64,
                ),
                Err(e) => s.errors.push(format!("Docker containers: {e}")),
            }
            match d.inspect_network("bridge", None).await {
                Ok(n) => s.push(
                    "Docker bridge network endpoints",
                    CounterKind::Object,
                    n.containers.map_or(0, |c| c.len()) as u64,
                ),
                Err(e) => s.errors.push(format!("Docker bridge network: {e}")),
            }
        }
        if !self.daemons.shim_addresses.is_empty() {
            s.push(
                "containerd-shim processes",
                CounterKind::Object,
                self.daemons.shims().len() as u64,
            );
        }
        let mounts = parse_mount_points(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        );
        for d in &self.netns_dirs {
            let files = list_entries(d);
            s.push(
                format!("netns files in {}", d.display()),
                CounterKind::Object,
                files.len() as u64,
            );
            // Mounted files are live namespaces; the others wait for their runtime to delete
            // them (Docker: a GC every 60 s).
            s.push(
                format!("netns mounts in {}", d.display()),
                CounterKind::Object,
                files.iter().filter(|f| mounts.contains(*f)).count() as u64,
            );
            s.netns_files.extend(files.into_iter().map(|f| {
                let mounted = mounts.contains(&f);
                (f, mounted)
            }));
        }
        for (net, d) in &self.cni_dirs {
            s.push(
                format!("CNI IPs of {net} ({})", d.display()),
                CounterKind::Object,
                count_ip_files(d),
            );
        }
        if let Some(d) = &self.checkpoint_dir {
            s.push(
                format!("shim sandbox checkpoints ({})", d.display()),
                CounterKind::Object,
                count_json_files(d),
            );
        }
        let iptables = iptables_state().await;
        if iptables.errors.is_empty() {
            s.push(
                "iptables rules (nat + filter)",
                CounterKind::Object,
                iptables.rules.len() as u64,
            );
            s.push(
                "iptables chains (nat + filter)",
                CounterKind::Object,
                iptables.chains.len() as u64,
            );
            s.iptables_rules = iptables.rules;
        }
        s.errors.extend(iptables.errors);
        for (role, &pid) in &self.daemons.fixed {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
            let (Some(fds), Some(status)) = (fd_count(pid), status) else {
                s.errors
                    .push(format!("{role} (pid {pid}): not readable in /proc (gone?)"));
                continue;
            };
            let who = format!("{role} (pid {pid})");
            s.push(format!("{who}: open fds"), CounterKind::Fds, fds);
            if let Some(n) = procstat::parse_status_number(&status, "Threads") {
                s.push(format!("{who}: threads"), CounterKind::Threads, n);
            }
            if let Some(kb) = procstat::parse_status_kb(&status, "VmRSS") {
                s.push(format!("{who}: RSS"), CounterKind::RssBytes, kb * 1024);
            }
        }
        s
    }
}

/// Counters by name, for tests and reports.
pub fn by_name(report: &LeakReport) -> HashMap<&str, &LeakCounter> {
    report
        .counters
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_config_v2_and_v3() {
        let v2 = r#"
version = 2
root = "/var/tmp/env/containerd/root"
state = "/var/tmp/env/containerd/state"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/var/tmp/env/cni/net.d"
"#;
        let p = containerd_paths(v2);
        assert_eq!(
            p.netns_dirs,
            vec![PathBuf::from(
                "/var/tmp/env/containerd/state/io.containerd.grpc.v1.cri/netns"
            )]
        );
        assert_eq!(p.cni_conf_dir, PathBuf::from("/var/tmp/env/cni/net.d"));

        let v3 = r#"
version = 3
[plugins."io.containerd.cri.v1.runtime"]
  [plugins."io.containerd.cri.v1.runtime".cni]
    conf_dir = "/etc/cni/custom"
"#;
        let p = containerd_paths(v3);
        assert!(p.netns_dirs.is_empty(), "/var/run/netns only: {p:?}");
        assert_eq!(p.cni_conf_dir, PathBuf::from("/etc/cni/custom"));

        let p = containerd_paths("not toml [");
        assert_eq!(p.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert!(p.netns_dirs.is_empty());
    }

    #[test]
    fn cni_configs_give_their_host_local_dirs() {
        let list = r#"{"cniVersion":"1.0.0","name":"anycri","plugins":[
            {"type":"bridge","ipam":{"type":"host-local","dataDir":"/var/tmp/ipam"}},
            {"type":"portmap"}]}"#;
        assert_eq!(
            host_local_dirs_of(list),
            vec![("anycri".into(), PathBuf::from("/var/tmp/ipam/anycri"))]
        );
        let single =
            r#"{"cniVersion":"0.4.0","name":"net1","type":"bridge","ipam":{"type":"host-local"}}"#;
        assert_eq!(
            host_local_dirs_of(single),
            vec![("net1".into(), PathBuf::from("/var/lib/cni/networks/net1"))]
        );
        let dhcp = r#"{"name":"d","type":"macvlan","ipam":{"type":"dhcp"}}"#;
        assert!(host_local_dirs_of(dhcp).is_empty());
        assert!(host_local_dirs_of("{not json").is_empty());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("10-a.conflist"), list).unwrap();
        std::fs::write(dir.path().join("20-b.conf"), single).unwrap();
        std::fs::write(dir.path().join("README"), single).unwrap();
        let dirs = cni_host_local_dirs(dir.path());
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert_eq!(dirs[0].0, "anycri");
        assert_eq!(dirs[1].0, "net1");
    }

    #[test]
    fn only_ip_named_files_are_reservations() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "10.244.0.2",
            "10.244.0.3",
            "fd00::5",
            "lock",
            "last_reserved_ip.0",
        ] {
            std::fs::write(dir.path().join(f), "c0ffee\neth0").unwrap();
        }
        assert_eq!(count_ip_files(dir.path()), 3);
        assert_eq!(count_ip_files(&dir.path().join("missing")), 0);
        assert_eq!(count_entries(dir.path()), 5);
        assert_eq!(count_entries(&dir.path().join("missing")), 0);
    }

    #[test]
    fn mount_points_and_new_namespace_files() {
        let text = "\
36 25 0:4 net:[4026532] /run/netns/cni-1 rw shared:5 - nsfs nsfs rw
37 25 0:4 net:[4026533] /var/tmp/docker\\040exec/netns/abc rw - nsfs nsfs rw
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
";
        let m = parse_mount_points(text);
        assert!(m.contains("/run/netns/cni-1"), "{m:?}");
        assert!(m.contains("/var/tmp/docker exec/netns/abc"), "{m:?}");
        assert!(m.contains("/"));
        assert_eq!(m.len(), 3);

        let before = Snapshot {
            netns_files: vec![("/n/default".into(), true)],
            ..Default::default()
        };
        let after = Snapshot {
            netns_files: vec![
                ("/n/default".into(), true),
                ("/n/abc".into(), false),
                ("/n/def".into(), true),
            ],
            ..Default::default()
        };
        assert_eq!(after.pending_netns_files(), 1);
        assert_eq!(before.pending_netns_files(), 0);
        let r = LeakReport::compare(&before, &after, 16);
        assert_eq!(
            r.new_netns_files,
            vec![
                "/n/abc (not mounted: waiting for its runtime to delete it)",
                "/n/def (mounted: a live namespace)"
            ]
        );
    }

    #[test]
    fn checkpoints_are_json_files_not_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["abc.json", "def.json", ".abc.json.42.tmp", "notes.txt"] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        assert_eq!(count_json_files(dir.path()), 2);
    }

    #[test]
    fn iptables_rules_and_chains_with_counters_stripped() {
        let text = "\
# Generated by iptables-save v1.8.9 (nf_tables)
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [3:180]
:CNI-abc - [0:0]
[12:720] -A POSTROUTING -s 10.244.0.2/32 -j CNI-abc
-A CNI-abc -d 10.244.0.0/16 -j ACCEPT
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -j DOCKER-USER
COMMIT
";
        let (rules, chains) = parse_iptables_save(text);
        assert_eq!(
            rules,
            vec![
                "nat -A POSTROUTING -s 10.244.0.2/32 -j CNI-abc",
                "nat -A CNI-abc -d 10.244.0.0/16 -j ACCEPT",
                "filter -A FORWARD -j DOCKER-USER",
            ]
        );
        assert_eq!(
            chains,
            vec![
                "nat PREROUTING",
                "nat POSTROUTING",
                "nat CNI-abc",
                "filter FORWARD"
            ]
        );
    }

    #[test]
    fn flags_and_exec_root() {
        let args: Vec<String> = [
            "/usr/sbin/dockerd",
            "--data-root",
            "/d",
            "--exec-root=/var/tmp/exec",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(flag_value(&args, &["--data-root"]).as_deref(), Some("/d"));
        assert_eq!(
            docker_exec_root(&args, None),
            PathBuf::from("/var/tmp/exec")
        );
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("daemon.json");
        std::fs::write(&cfg, r#"{"exec-root": "/from/config"}"#).unwrap();
        let args = vec![
            "dockerd".to_string(),
            "--config-file".into(),
            cfg.display().to_string(),
        ];
        assert_eq!(docker_exec_root(&args, None), PathBuf::from("/from/config"));
        let args = vec![
            "dockerd".to_string(),
            "--config-file".into(),
            "/nonexistent.json".into(),
        ];
        assert_eq!(
            docker_exec_root(&args, Some("/from/env".into())),
            PathBuf::from("/from/env")
        );
        assert_eq!(
            docker_exec_root(&args, None),
            PathBuf::from("/var/run/docker")
        );
        let c = vec!["containerd".to_string(), "-c".into(), "/c.toml".into()];
        assert_eq!(
            flag_value(&c, &["--config", "-c"]).as_deref(),
            Some("/c.toml")
        );
    }

    fn snap(values: &[(&str, CounterKind, u64)], rules: &[&str]) -> Snapshot {
        Snapshot {
            values: values
                .iter()
                .map(|(n, k, v)| (n.to_string(), *k, *v))
                .collect(),
            iptables_rules: rules.iter().map(|r| r.to_string()).collect(),
            netns_files: Vec::new(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn growth_of_objects_and_fds_beyond_slack_is_a_leak() {
        use CounterKind::*;
        let before = snap(
            &[
                ("CRI containers", Object, 3),
                ("netns", Object, 5),
                ("ips", Object, 2),
                ("d: open fds", Fds, 40),
                ("e: open fds", Fds, 40),
                ("d: threads", Threads, 10),
                ("d: RSS", RssBytes, 1 << 20),
                ("gone after", Object, 1),
            ],
            &["nat -A A", "nat -A B"],
        );
        let mut after = snap(
            &[
                ("CRI containers", Object, 3),
                ("netns", Object, 6),
                ("ips", Object, 1),
                ("d: open fds", Fds, 56),
                ("e: open fds", Fds, 57),
                ("d: threads", Threads, 50),
                ("d: RSS", RssBytes, 2 << 20),
                ("new after", Object, 1),
            ],
            &["nat -A B", "nat -A C"],
        );
        after.errors.push("iptables-save: not found".into());
        let r = LeakReport::compare(&before, &after, 16);
        let c = by_name(&r);
        assert!(!c["CRI containers"].leak);
        assert!(c["netns"].leak);
        assert_eq!(c["netns"].delta, 1);
        assert!(!c["ips"].leak, "fewer is not a leak");
        assert_eq!(c["ips"].delta, -1);
        assert!(!c["d: open fds"].leak, "16 more fds is within the slack");
        assert!(c["e: open fds"].leak, "17 more fds is not");
        assert!(!c["d: threads"].leak);
        assert!(!c["d: RSS"].leak);
        assert_eq!(
            r.leaks().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            vec!["netns", "e: open fds"]
        );
        assert!(r.has_leaks());
        assert_eq!(r.new_iptables_rules, vec!["nat -A C"]);
        assert!(r.new_netns_files.is_empty());
        assert!(r.notes.iter().any(|n| n.contains("gone after")), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("new after")), "{r:?}");
        assert!(r.notes.iter().any(|n| n.contains("iptables-save")), "{r:?}");

        assert!(!objects_back(&before, &after));
        let settled = snap(&[("netns", Object, 5), ("d: open fds", Fds, 99)], &[]);
        assert!(objects_back(&before, &settled), "fds do not hold the wait");
    }
}
