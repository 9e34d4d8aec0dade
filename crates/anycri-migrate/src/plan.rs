//! `migrate plan`: Docker's `daemon.json` translated into the new runtime's configuration.
//! What has an equivalent is carried over — registry mirrors and insecure registries
//! (containerd's `certs.d/<host>/hosts.toml`, CRI-O's `registries.conf.d`), the cgroup driver
//! (runtime and kubelet), log rotation (the kubelet's `containerLogMaxSize`/`MaxFiles`),
//! extra OCI runtimes and the default one, SELinux, parallel downloads, `data-root` (as the
//! runtime's own root), `default-ulimits` (CRI-O), `bip`/`mtu` (a CNI bridge network) — and
//! every other key is listed with the reason it is not. The files are written under an
//! output directory in the layout of `/` (`etc/containerd/...`), never over live
//! configuration unless asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anycri_core::{Error, ErrorKind, Result};
use serde_json::Value;
use toml::{Table, Value as T};

/// The runtime a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetRuntime {
    /// containerd with its CRI plugin.
    Containerd,
    /// CRI-O.
    Crio,
}

impl TargetRuntime {
    /// `containerd` or `crio`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetRuntime::Containerd => "containerd",
            TargetRuntime::Crio => "crio",
        }
    }
}

/// How to plan.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlanOptions {
    /// The runtime.
    pub target: TargetRuntime,
    /// containerd's config schema: 2 (containerd 1.x) or 3 (containerd 2.x).
    pub containerd_config_version: u8,
    /// Where containerd will read `hosts.toml` files from (`/etc/containerd/certs.d`).
    pub containerd_certs_dir: String,
}

impl PlanOptions {
    /// Defaults for `target`: containerd config version 2, certs in `/etc/containerd/certs.d`.
    pub fn new(target: TargetRuntime) -> Self {
        PlanOptions {
            target,
            containerd_config_version: 2,
            containerd_certs_dir: "/etc/containerd/certs.d".into(),
        }
    }

    /// Sets the containerd config schema version (2 or 3).
    pub fn containerd_config_version(mut self, version: u8) -> Self {
        self.containerd_config_version = version;
        self
    }

    /// Sets where containerd reads `hosts.toml` files from.
    pub fn containerd_certs_dir(mut self, dir: impl Into<String>) -> Self {
        self.containerd_certs_dir = dir.into();
        self
    }
}

/// One file of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedFile {
    /// Its path relative to the output directory, in the layout of `/`.
    pub path: PathBuf,
    /// Its content.
    pub content: String,
    /// What it is for.
    pub purpose: String,
}

/// A `daemon.json` key and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyOutcome {
    /// The key (`registry-mirrors`, `log-opts.max-size`, ...).
    pub key: String,
    /// Where it went, or why it could not go anywhere.
    pub note: String,
}

/// The translated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// Files to write.
    pub files: Vec<PlannedFile>,
    /// Keys carried over, and where.
    pub carried: Vec<KeyOutcome>,
    /// Keys not carried over, and why.
    pub not_carried: Vec<KeyOutcome>,
}

impl Plan {
    fn carried(&mut self, key: &str, note: impl Into<String>) {
        self.carried.push(KeyOutcome {
            key: key.into(),
            note: note.into(),
        });
    }

    fn not_carried(&mut self, key: &str, note: impl Into<String>) {
        self.not_carried.push(KeyOutcome {
            key: key.into(),
            note: note.into(),
        });
    }

    fn file(&mut self, path: impl Into<PathBuf>, content: String, purpose: impl Into<String>) {
        self.files.push(PlannedFile {
            path: path.into(),
            content,
            purpose: purpose.into(),
        });
    }

    /// A report for people: files, carried keys, keys left behind.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str("Files:\n");
        for f in &self.files {
            out.push_str(&format!("  {}  ({})\n", f.path.display(), f.purpose));
        }
        out.push_str("\nCarried over:\n");
        for k in &self.carried {
            out.push_str(&format!("  {:<28} {}\n", k.key, k.note));
        }
        out.push_str("\nNot carried over:\n");
        if self.not_carried.is_empty() {
            out.push_str("  (nothing)\n");
        }
        for k in &self.not_carried {
            out.push_str(&format!("  {:<28} {}\n", k.key, k.note));
        }
        out
    }

    /// The plan as JSON (files with their content, carried and not carried keys).
    pub fn to_json(&self) -> Value {
        let outcome = |v: &[KeyOutcome]| {
            v.iter()
                .map(|k| serde_json::json!({"key": k.key, "note": k.note}))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "files": self.files.iter().map(|f| serde_json::json!({
                "path": f.path, "purpose": f.purpose, "content": f.content
            })).collect::<Vec<_>>(),
            "carried": outcome(&self.carried),
            "notCarried": outcome(&self.not_carried),
        })
    }

    /// Writes the files under `out_dir`. An existing file is an error unless `overwrite`;
    /// a file is written whole (a temporary file renamed over it), so nothing is left
    /// half-written.
    pub fn write(&self, out_dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>> {
        if !overwrite {
            for f in &self.files {
                let path = out_dir.join(&f.path);
                if path.exists() {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("{} exists; pass --overwrite to replace it", path.display()),
                    ));
                }
            }
        }
        let mut written = Vec::new();
        for f in &self.files {
            let path = out_dir.join(&f.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
            }
            let tmp = path.with_extension("anycri-tmp");
            std::fs::write(&tmp, &f.content).map_err(|e| io_error(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::with_source(
        ErrorKind::Internal,
        format!("writing {}", path.display()),
        e,
    )
}

/// Keys that have no equivalent, and why.
const NOT_CARRIED: &[(&str, &str)] = &[
    (
        "log-driver",
        "the runtime writes each container's log as a CRI log file under /var/log/pods, which the kubelet rotates; ship those files instead of using a Docker log driver",
    ),
    (
        "storage-driver",
        "containerd uses snapshotters (overlayfs by default, Docker's overlay2 equivalent); CRI-O sets the driver in /etc/containers/storage.conf",
    ),
    (
        "storage-opts",
        "snapshotter and storage options are the runtime's own (containerd's snapshotter plugins, CRI-O's storage.conf)",
    ),
    (
        "live-restore",
        "containerd and CRI-O keep containers running across their own restarts by design",
    ),
    (
        "iptables",
        "pod networking is the CNI plugin's and kube-proxy's",
    ),
    (
        "ip-forward",
        "pod networking is the CNI plugin's and kube-proxy's",
    ),
    (
        "ip-masq",
        "the CNI bridge plugin's ipMasq does this for pod networks",
    ),
    ("ip", "host ports are the CNI portmap plugin's"),
    ("icc", "pod-to-pod traffic is governed by NetworkPolicies"),
    (
        "userland-proxy",
        "host ports are the CNI portmap plugin's (no userland proxy)",
    ),
    (
        "default-address-pools",
        "pods get addresses from the CNI configuration's range (the cluster's pod CIDR), not from Docker's pools",
    ),
    (
        "fixed-cidr",
        "pods get addresses from the CNI configuration's range (the cluster's pod CIDR)",
    ),
    (
        "dns",
        "pods use the cluster DNS the kubelet configures (clusterDNS); host-network pods use the kubelet's resolvConf",
    ),
    (
        "dns-search",
        "pods use the cluster DNS search path the kubelet configures",
    ),
    ("dns-opts", "pods set dnsConfig.options in their spec"),
    (
        "hosts",
        "the Docker API socket has no equivalent; the CRI socket is the runtime's",
    ),
    (
        "tls",
        "the Docker API's TLS has no equivalent; the CRI socket is a local unix socket",
    ),
    ("tlsverify", "the Docker API's TLS has no equivalent"),
    ("tlscacert", "the Docker API's TLS has no equivalent"),
    ("tlscert", "the Docker API's TLS has no equivalent"),
    ("tlskey", "the Docker API's TLS has no equivalent"),
    (
        "group",
        "the Docker socket's group; containerd's socket group is [grpc] gid (a number), CRI-O's socket is root's",
    ),
    (
        "exec-root",
        "runtime state directories are the runtime's own (containerd --state, CRI-O's runroot)",
    ),
    (
        "pidfile",
        "the runtime's service manager tracks its process",
    ),
    (
        "debug",
        "containerd: [debug] level = \"debug\"; CRI-O: log_level = \"debug\" (not carried: debugging is a choice for the new runtime)",
    ),
    (
        "experimental",
        "Docker's experimental features have no equivalent",
    ),
    ("features", "Docker's feature flags have no equivalent"),
    (
        "labels",
        "engine labels have no equivalent; label the Kubernetes Node instead",
    ),
    (
        "userns-remap",
        "Kubernetes has user namespaces per pod (spec.hostUsers: false) instead of a daemon-wide remap",
    ),
    (
        "default-shm-size",
        "pods that need a larger /dev/shm mount an emptyDir with medium: Memory",
    ),
    (
        "cgroup-parent",
        "the kubelet places pods in its own cgroup hierarchy (kubepods)",
    ),
    (
        "default-cgroupns-mode",
        "the runtimes give each container a private cgroup namespace on cgroup v2",
    ),
    (
        "no-new-privileges",
        "set allowPrivilegeEscalation: false in pods' security contexts",
    ),
    (
        "seccomp-profile",
        "the kubelet's seccompDefault (RuntimeDefault) and pods' seccompProfile apply",
    ),
    ("max-concurrent-uploads", "the runtimes do not push images"),
    (
        "shutdown-timeout",
        "the kubelet's graceful node shutdown settings stop pods on shutdown",
    ),
    (
        "authorization-plugins",
        "Docker's authorization plugins have no equivalent; the API server's admission control does this for pods",
    ),
    (
        "containerd",
        "Docker's own containerd socket; the new runtime is configured on its own",
    ),
    (
        "builder",
        "image building needs BuildKit or another builder; the CRI runtimes do not build",
    ),
];

/// Translates `daemon_json` (the text of Docker's `/etc/docker/daemon.json`).
pub fn plan(daemon_json: &str, options: &PlanOptions) -> Result<Plan> {
    let config: Value = serde_json::from_str(daemon_json).map_err(|e| {
        Error::with_source(
            ErrorKind::InvalidArgument,
            format!("daemon.json is not valid JSON: {e}"),
            e,
        )
    })?;
    let Some(config) = config.as_object() else {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "daemon.json must hold a JSON object",
        ));
    };
    let mut plan = Plan::default();
    let mut kubelet: BTreeMap<&str, T> = BTreeMap::new();
    let mut runtime = RuntimeSettings::default();
    let endpoint = match options.target {
        TargetRuntime::Containerd => "unix:///run/containerd/containerd.sock",
        TargetRuntime::Crio => "unix:///var/run/crio/crio.sock",
    };
    kubelet.insert("containerRuntimeEndpoint", T::String(endpoint.into()));

    for (key, value) in config {
        match key.as_str() {
            "registry-mirrors" => {
                for m in strings(value) {
                    runtime.mirrors.push(m.trim_end_matches('/').to_string());
                }
                let to = match options.target {
                    TargetRuntime::Containerd => "certs.d/docker.io/hosts.toml",
                    TargetRuntime::Crio => "registries.conf.d (docker.io mirrors)",
                };
                plan.carried(key, format!("{} → {to}, in order", runtime.mirrors.join(", ")));
            }
            "insecure-registries" => {
                for r in strings(value) {
                    if looks_like_cidr(&r) {
                        plan.not_carried(
                            &format!("insecure-registries: {r}"),
                            "a CIDR: containerd and CRI-O name insecure registries by host[:port]; list each registry",
                        );
                    } else {
                        runtime.insecure.push(r);
                    }
                }
                let to = match options.target {
                    TargetRuntime::Containerd => "certs.d/<host>/hosts.toml (HTTPS unverified, then HTTP)",
                    TargetRuntime::Crio => "registries.conf.d (insecure = true)",
                };
                plan.carried(key, format!("{} → {to}", runtime.insecure.join(", ")));
            }
            "exec-opts" => {
                for opt in strings(value) {
                    match opt.split_once('=') {
                        Some(("native.cgroupdriver", driver)) => {
                            runtime.systemd_cgroup = Some(driver == "systemd");
                            kubelet.insert("cgroupDriver", T::String(driver.into()));
                            plan.carried(
                                "exec-opts native.cgroupdriver",
                                format!("{driver} → the runtime's cgroup driver and the kubelet's cgroupDriver"),
                            );
                        }
                        _ => plan.not_carried(&format!("exec-opts {opt}"), "no equivalent"),
                    }
                }
            }
            "log-opts" => {
                let driver = config
                    .get("log-driver")
                    .and_then(Value::as_str)
                    .unwrap_or("json-file");
                for (opt, v) in value.as_object().into_iter().flatten() {
                    let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    match opt.as_str() {
                        "max-size" if matches!(driver, "json-file" | "local") => match quantity(&v) {
                            Some(q) => {
                                plan.carried("log-opts max-size", format!("{v} → kubelet containerLogMaxSize {q}"));
                                kubelet.insert("containerLogMaxSize", T::String(q));
                            }
                            None => plan.not_carried("log-opts max-size", format!("{v:?} is not a size")),
                        },
                        "max-file" if matches!(driver, "json-file" | "local") => match v.parse::<i64>() {
                            Ok(n) if n >= 2 => {
                                plan.carried("log-opts max-file", format!("{n} → kubelet containerLogMaxFiles"));
                                kubelet.insert("containerLogMaxFiles", T::Integer(n));
                            }
                            _ => plan.not_carried("log-opts max-file", format!("{v:?}: the kubelet keeps at least 2 files")),
                        },
                        _ => plan.not_carried(&format!("log-opts {opt}"), "the kubelet rotates CRI logs by size and count only"),
                    }
                }
            }
            "data-root" => {
                if let Some(root) = value.as_str() {
                    let sub = match options.target {
                        TargetRuntime::Containerd => "containerd",
                        TargetRuntime::Crio => "containers/storage",
                    };
                    let new_root = format!("{}/{sub}", root.trim_end_matches('/'));
                    plan.carried(
                        key,
                        format!("{root} → the runtime's root {new_root} (on the same disk; images are not carried: they are pulled again)"),
                    );
                    runtime.root = Some(new_root);
                }
            }
            "default-ulimits" => match options.target {
                TargetRuntime::Crio => {
                    for (name, limit) in value.as_object().into_iter().flatten() {
                        let soft = limit.get("Soft").and_then(Value::as_i64);
                        let hard = limit.get("Hard").and_then(Value::as_i64);
                        if let (Some(s), Some(h)) = (soft, hard) {
                            runtime.ulimits.push(format!("{name}={s}:{h}"));
                        }
                    }
                    plan.carried(key, "→ crio.runtime default_ulimits");
                }
                TargetRuntime::Containerd => plan.not_carried(
                    key,
                    "containerd's CRI plugin has no default ulimits; put rlimits in a base runtime spec (base_runtime_spec) if pods need them",
                ),
            },
            "runtimes" => {
                for (name, r) in value.as_object().into_iter().flatten() {
                    if let Some(path) = r.get("path").and_then(Value::as_str) {
                        runtime.runtimes.push((name.clone(), path.to_string()));
                        if r.get("runtimeArgs").is_some() {
                            plan.not_carried(
                                &format!("runtimes.{name}.runtimeArgs"),
                                "arguments are not passed to a CRI runtime handler; wrap the binary in a script",
                            );
                        }
                    } else {
                        plan.not_carried(&format!("runtimes.{name}"), "only runtimes given by path are carried");
                    }
                }
                plan.carried(key, "→ runtime handlers (pods choose them with a RuntimeClass)");
            }
            "default-runtime" => {
                if let Some(name) = value.as_str() {
                    runtime.default_runtime = Some(name.to_string());
                    plan.carried(key, format!("{name} → the default runtime handler"));
                }
            }
            "selinux-enabled" => {
                runtime.selinux = value.as_bool();
                plan.carried(key, "→ the runtime's SELinux switch");
            }
            "max-concurrent-downloads" => match options.target {
                TargetRuntime::Containerd => {
                    runtime.downloads = value.as_i64();
                    plan.carried(key, "→ max_concurrent_downloads");
                }
                TargetRuntime::Crio => plan.not_carried(key, "CRI-O has no limit on parallel layer downloads"),
            },
            "bip" => match value.as_str().and_then(bridge_from_bip) {
                Some(b) => {
                    plan.carried(key, format!("→ a CNI bridge network {} (gateway {})", b.0, b.1));
                    runtime.bridge = Some(b);
                }
                None => plan.not_carried(key, format!("{value} is not an address/prefix")),
            },
            "mtu" => {
                runtime.mtu = value.as_i64();
                plan.carried(key, "→ the CNI bridge network's mtu (with bip)");
            }
            other => match NOT_CARRIED.iter().find(|(k, _)| *k == other) {
                Some((_, why)) => plan.not_carried(other, *why),
                None => plan.not_carried(other, "unknown to anycri: check Docker's documentation for an equivalent"),
            },
        }
    }

    match options.target {
        TargetRuntime::Containerd => containerd_files(&mut plan, &runtime, options)?,
        TargetRuntime::Crio => crio_files(&mut plan, &runtime)?,
    }
    if let Some(bridge) = &runtime.bridge {
        plan.file(
            "etc/cni/net.d/10-migrated-bridge.conflist",
            bridge_conflist(bridge, runtime.mtu),
            "the CNI network that replaces docker0 (only for a node without a cluster network plugin)",
        );
    } else if runtime.mtu.is_some() {
        plan.not_carried(
            "mtu",
            "only carried with bip (the CNI bridge network it applies to)",
        );
    }
    let mut yaml = String::from(
        "# Merge into the kubelet's config file (/var/lib/kubelet/config.yaml) or a kubeadm patch.\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
    );
    for (k, v) in &kubelet {
        let v = match v {
            T::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        yaml.push_str(&format!("{k}: {v}\n"));
    }
    plan.file(
        "var/lib/kubelet/config.migrated.yaml",
        yaml,
        "the kubelet settings: the new runtime's endpoint, cgroup driver, log rotation",
    );
    plan.carried.sort_by(|a, b| a.key.cmp(&b.key));
    plan.not_carried.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(plan)
}

/// What the keys set on the runtime's side.
#[derive(Debug, Default)]
struct RuntimeSettings {
    mirrors: Vec<String>,
    insecure: Vec<String>,
    systemd_cgroup: Option<bool>,
    root: Option<String>,
    ulimits: Vec<String>,
    runtimes: Vec<(String, String)>,
    default_runtime: Option<String>,
    selinux: Option<bool>,
    downloads: Option<i64>,
    bridge: Option<(String, String)>,
    mtu: Option<i64>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn looks_like_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
    })
}

/// Docker's `10m`-style size (decimal units, as Docker reads them) as a Kubernetes quantity.
fn quantity(size: &str) -> Option<String> {
    let s = size.trim().to_ascii_lowercase();
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = s[digits.len()..].trim_end_matches('b');
    let suffix = match unit {
        "" => "",
        "k" => "k",
        "m" => "M",
        "g" => "G",
        "t" => "T",
        _ => return None,
    };
    Some(format!("{n}{suffix}"))
}

/// `172.26.0.1/16` → (`172.26.0.0/16`, `172.26.0.1`).
fn bridge_from_bip(bip: &str) -> Option<(String, String)> {
    let (ip, bits) = bip.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    if bits > 30 {
        return None;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
    Some((format!("{net}/{bits}"), ip.to_string()))
}

fn bridge_conflist((subnet, gateway): &(String, String), mtu: Option<i64>) -> String {
    let mut bridge = serde_json::json!({
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": subnet, "gateway": gateway}]],
            "routes": [{"dst": "0.0.0.0/0"}]
        }
    });
    if let Some(m) = mtu {
        bridge["mtu"] = m.into();
    }
    let list = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "migrated-bridge",
        "plugins": [bridge, {"type": "portmap", "capabilities": {"portMappings": true}}]
    });
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

/// A nested table at `path`, created as needed.
fn table_at<'a>(root: &'a mut Table, path: &[&str]) -> &'a mut Table {
    let mut t = root;
    for key in path {
        t = t
            .entry(key.to_string())
            .or_insert_with(|| T::Table(Table::new()))
            .as_table_mut()
            .expect("a table");
    }
    t
}

fn toml_text(header: &str, table: &Table) -> Result<String> {
    let body = toml::to_string(table)
        .map_err(|e| Error::with_source(ErrorKind::Internal, "writing TOML", e))?;
    Ok(format!("{header}{body}"))
}

/// `host[:port]` of a mirror URL, and whether it is plain HTTP.
fn host_of(url: &str) -> (String, bool) {
    let http = url.starts_with("http://");
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    (host, http)
}

fn containerd_files(plan: &mut Plan, r: &RuntimeSettings, o: &PlanOptions) -> Result<()> {
    let v3 = o.containerd_config_version >= 3;
    let (images, runtime) = if v3 {
        (
            vec!["plugins", "io.containerd.cri.v1.images"],
            vec!["plugins", "io.containerd.cri.v1.runtime"],
        )
    } else {
        (
            vec!["plugins", "io.containerd.grpc.v1.cri"],
            vec!["plugins", "io.containerd.grpc.v1.cri"],
        )
    };
    let mut config = Table::new();
    config.insert("version".into(), T::Integer(if v3 { 3 } else { 2 }));
    if let Some(root) = &r.root {
        config.insert("root".into(), T::String(root.clone()));
    }
    let mut registry = images.clone();
    registry.push("registry");
    table_at(&mut config, &registry).insert(
        "config_path".into(),
        T::String(o.containerd_certs_dir.clone()),
    );
    if let Some(n) = r.downloads {
        table_at(&mut config, &images).insert("max_concurrent_downloads".into(), T::Integer(n));
    }
    if let Some(on) = r.selinux {
        table_at(&mut config, &runtime).insert("enable_selinux".into(), T::Boolean(on));
    }
    let mut containerd_path = runtime.clone();
    containerd_path.push("containerd");
    let default = r.default_runtime.clone().unwrap_or_else(|| "runc".into());
    table_at(&mut config, &containerd_path)
        .insert("default_runtime_name".into(), T::String(default));
    let mut handlers: Vec<(String, Option<String>)> = vec![("runc".into(), None)];
    handlers.extend(r.runtimes.iter().map(|(n, p)| (n.clone(), Some(p.clone()))));
    for (name, path) in handlers {
        let mut at = containerd_path.clone();
        at.push("runtimes");
        at.push(&name);
        table_at(&mut config, &at).insert(
            "runtime_type".into(),
            T::String("io.containerd.runc.v2".into()),
        );
        at.push("options");
        let options = table_at(&mut config, &at);
        if let Some(p) = path {
            options.insert("BinaryName".into(), T::String(p));
        }
        if let Some(systemd) = r.systemd_cgroup {
            options.insert("SystemdCgroup".into(), T::Boolean(systemd));
        }
    }
    let header = format!(
        "# containerd {} config from Docker's daemon.json (anycri migrate plan).\n# Merge into /etc/containerd/config.toml; registry hosts are under {}.\n",
        if v3 {
            "2.x (version 3)"
        } else {
            "1.x (version 2)"
        },
        o.containerd_certs_dir
    );
    plan.file(
        "etc/containerd/config.toml",
        toml_text(&header, &config)?,
        "containerd's CRI settings: registry hosts directory, runtimes, cgroup driver",
    );
    if !r.mirrors.is_empty() {
        let mut hosts = Table::new();
        hosts.insert(
            "server".into(),
            T::String("https://registry-1.docker.io".into()),
        );
        let mut host = Table::new();
        for m in &r.mirrors {
            let mut entry = Table::new();
            entry.insert(
                "capabilities".into(),
                T::Array(vec![T::String("pull".into()), T::String("resolve".into())]),
            );
            let (h, _) = host_of(m);
            if r.insecure.contains(&h) {
                entry.insert("skip_verify".into(), T::Boolean(true));
            }
            host.insert(m.clone(), T::Table(entry));
        }
        hosts.insert("host".into(), T::Table(host));
        plan.file(
            "etc/containerd/certs.d/docker.io/hosts.toml",
            toml_text(
                "# Docker Hub through the mirrors Docker used (registry-mirrors), in order.\n",
                &hosts,
            )?,
            "Docker Hub's mirrors",
        );
    }
    for reg in &r.insecure {
        let mut hosts = Table::new();
        hosts.insert("server".into(), T::String(format!("https://{reg}")));
        let mut host = Table::new();
        // Docker's insecure registries: HTTPS without verification first, then plain HTTP.
        for (scheme, skip) in [("https", true), ("http", false)] {
            let mut entry = Table::new();
            entry.insert(
                "capabilities".into(),
                T::Array(vec![T::String("pull".into()), T::String("resolve".into())]),
            );
            if skip {
                entry.insert("skip_verify".into(), T::Boolean(true));
            }
            host.insert(format!("{scheme}://{reg}"), T::Table(entry));
        }
        hosts.insert("host".into(), T::Table(host));
        plan.file(
            format!("etc/containerd/certs.d/{reg}/hosts.toml"),
            toml_text(&format!("# {reg}: an insecure registry in Docker's daemon.json (TLS unverified, then HTTP).\n"), &hosts)?,
            format!("insecure registry {reg}"),
        );
    }
    Ok(())
}

fn crio_files(plan: &mut Plan, r: &RuntimeSettings) -> Result<()> {
    let mut registries: Vec<T> = Vec::new();
    if !r.mirrors.is_empty() {
        let mut reg = Table::new();
        reg.insert("prefix".into(), T::String("docker.io".into()));
        reg.insert("location".into(), T::String("docker.io".into()));
        let mirrors = r
            .mirrors
            .iter()
            .map(|m| {
                let (host, http) = host_of(m);
                let mut t = Table::new();
                let insecure = http || r.insecure.contains(&host);
                t.insert("location".into(), T::String(host));
                t.insert("insecure".into(), T::Boolean(insecure));
                T::Table(t)
            })
            .collect();
        reg.insert("mirror".into(), T::Array(mirrors));
        registries.push(T::Table(reg));
    }
    for host in &r.insecure {
        let mut reg = Table::new();
        reg.insert("location".into(), T::String(host.clone()));
        reg.insert("insecure".into(), T::Boolean(true));
        registries.push(T::Table(reg));
    }
    if !registries.is_empty() {
        let mut conf = Table::new();
        conf.insert("registry".into(), T::Array(registries));
        plan.file(
            "etc/containers/registries.conf.d/50-anycri-migrated.conf",
            toml_text(
                "# Registries from Docker's daemon.json (anycri migrate plan).\n",
                &conf,
            )?,
            "Docker Hub's mirrors and the insecure registries",
        );
    }
    let mut conf = Table::new();
    let crio = table_at(&mut conf, &["crio"]);
    if let Some(root) = &r.root {
        crio.insert("root".into(), T::String(root.clone()));
    }
    let rt = table_at(&mut conf, &["crio", "runtime"]);
    if let Some(systemd) = r.systemd_cgroup {
        let manager = if systemd { "systemd" } else { "cgroupfs" };
        rt.insert("cgroup_manager".into(), T::String(manager.into()));
        rt.insert(
            "conmon_cgroup".into(),
            T::String(if systemd { "system.slice" } else { "pod" }.into()),
        );
    }
    if !r.ulimits.is_empty() {
        rt.insert(
            "default_ulimits".into(),
            T::Array(r.ulimits.iter().cloned().map(T::String).collect()),
        );
    }
    if let Some(name) = &r.default_runtime {
        rt.insert("default_runtime".into(), T::String(name.clone()));
    }
    if let Some(on) = r.selinux {
        rt.insert("selinux".into(), T::Boolean(on));
    }
    for (name, path) in &r.runtimes {
        let t = table_at(&mut conf, &["crio", "runtime", "runtimes", name]);
        t.insert("runtime_path".into(), T::String(path.clone()));
        t.insert("runtime_type".into(), T::String("oci".into()));
    }
    plan.file(
        "etc/crio/crio.conf.d/50-anycri-migrated.conf",
        toml_text(
            "# CRI-O settings from Docker's daemon.json (anycri migrate plan).\n",
            &conf,
        )?,
        "CRI-O's runtime settings: cgroup manager, ulimits, runtimes",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAEMON_JSON: &str = r#"{
        "registry-mirrors": ["https://mirror.example.com", "http://10.0.0.5:5000"],
        "insecure-registries": ["registry.local:5000", "10.0.0.0/8"],
        "exec-opts": ["native.cgroupdriver=systemd"],
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3", "labels": "x"},
        "data-root": "/data/docker",
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}},
        "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime", "runtimeArgs": ["--debug"]}},
        "default-runtime": "runc",
        "bip": "172.26.0.1/16",
        "mtu": 1450,
        "dns": ["8.8.8.8"],
        "storage-driver": "overlay2",
        "something-new": true
    }"#;

    fn file<'a>(plan: &'a Plan, path: &str) -> &'a str {
        &plan
            .files
            .iter()
            .find(|f| f.path == Path::new(path))
            .unwrap_or_else(|| panic!("no {path} in {:?}", plan.files))
            .content
    }

    #[test]
    fn containerd_plan_carries_registries_cgroups_runtimes_and_logs() {
        let plan = plan(DAEMON_JSON, &PlanOptions::new(TargetRuntime::Containerd)).unwrap();
        let config: Table = toml::from_str(file(&plan, "etc/containerd/config.toml")).unwrap();
        let cri = &config["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(
            cri["registry"]["config_path"].as_str(),
            Some("/etc/containerd/certs.d")
        );
        let runc = &cri["containerd"]["runtimes"]["runc"];
        assert_eq!(runc["options"]["SystemdCgroup"].as_bool(), Some(true));
        let nvidia = &cri["containerd"]["runtimes"]["nvidia"];
        assert_eq!(
            nvidia["options"]["BinaryName"].as_str(),
            Some("/usr/bin/nvidia-container-runtime")
        );
        assert_eq!(config["root"].as_str(), Some("/data/docker/containerd"));
        let hub: Table =
            toml::from_str(file(&plan, "etc/containerd/certs.d/docker.io/hosts.toml")).unwrap();
        assert_eq!(hub["server"].as_str(), Some("https://registry-1.docker.io"));
        let hosts: Vec<&String> = hub["host"].as_table().unwrap().keys().collect();
        assert_eq!(
            hosts,
            ["https://mirror.example.com", "http://10.0.0.5:5000"],
            "Docker's order"
        );
        let local: Table = toml::from_str(file(
            &plan,
            "etc/containerd/certs.d/registry.local:5000/hosts.toml",
        ))
        .unwrap();
        assert_eq!(
            local["host"]["https://registry.local:5000"]["skip_verify"].as_bool(),
            Some(true)
        );
        let order: Vec<&String> = local["host"].as_table().unwrap().keys().collect();
        assert_eq!(
            order,
            ["https://registry.local:5000", "http://registry.local:5000"],
            "HTTPS first, as Docker"
        );
        let kubelet = file(&plan, "var/lib/kubelet/config.migrated.yaml");
        assert!(kubelet.contains("cgroupDriver: \"systemd\""));
        assert!(kubelet.contains("containerLogMaxSize: \"10M\""));
        assert!(kubelet.contains("containerLogMaxFiles: 3"));
        let cni = file(&plan, "etc/cni/net.d/10-migrated-bridge.conflist");
        assert!(cni.contains("172.26.0.0/16") && cni.contains("1450"));
        let left: Vec<&str> = plan.not_carried.iter().map(|k| k.key.as_str()).collect();
        for key in [
            "dns",
            "storage-driver",
            "something-new",
            "insecure-registries: 10.0.0.0/8",
            "default-ulimits",
            "log-opts labels",
            "runtimes.nvidia.runtimeArgs",
        ] {
            assert!(
                left.contains(&key),
                "{key} should be listed as not carried: {left:?}"
            );
        }
    }

    #[test]
    fn containerd_2_uses_the_version_3_schema() {
        let o = PlanOptions::new(TargetRuntime::Containerd).containerd_config_version(3);
        let plan = plan(DAEMON_JSON, &o).unwrap();
        let config: Table = toml::from_str(file(&plan, "etc/containerd/config.toml")).unwrap();
        assert_eq!(config["version"].as_integer(), Some(3));
        assert!(
            config["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"].is_str()
        );
        assert!(
            config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
                .is_table()
        );
    }

    #[test]
    fn crio_plan_writes_registries_and_runtime_settings() {
        let plan = plan(DAEMON_JSON, &PlanOptions::new(TargetRuntime::Crio)).unwrap();
        let regs: Table = toml::from_str(file(
            &plan,
            "etc/containers/registries.conf.d/50-anycri-migrated.conf",
        ))
        .unwrap();
        let list = regs["registry"].as_array().unwrap();
        assert_eq!(list[0]["prefix"].as_str(), Some("docker.io"));
        assert_eq!(
            list[0]["mirror"][1]["location"].as_str(),
            Some("10.0.0.5:5000")
        );
        assert_eq!(list[0]["mirror"][1]["insecure"].as_bool(), Some(true));
        assert_eq!(list[1]["location"].as_str(), Some("registry.local:5000"));
        let crio: Table =
            toml::from_str(file(&plan, "etc/crio/crio.conf.d/50-anycri-migrated.conf")).unwrap();
        assert_eq!(
            crio["crio"]["runtime"]["cgroup_manager"].as_str(),
            Some("systemd")
        );
        assert_eq!(
            crio["crio"]["runtime"]["default_ulimits"][0].as_str(),
            Some("nofile=64000:64000")
        );
        assert_eq!(
            crio["crio"]["runtime"]["runtimes"]["nvidia"]["runtime_path"].as_str(),
            Some("/usr/bin/nvidia-container-runtime")
        );
    }

    #[test]
    fn bad_input_is_invalid_argument_and_nothing_is_overwritten() {
        let e = plan("{", &PlanOptions::new(TargetRuntime::Crio)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = plan("[1]", &PlanOptions::new(TargetRuntime::Crio)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let dir = tempfile::tempdir().unwrap();
        let p = plan("{}", &PlanOptions::new(TargetRuntime::Containerd)).unwrap();
        p.write(dir.path(), false).unwrap();
        let e = p.write(dir.path(), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        p.write(dir.path(), true).unwrap();
    }

    #[test]
    fn sizes_and_bridges() {
        assert_eq!(quantity("10m").as_deref(), Some("10M"));
        assert_eq!(quantity("512k").as_deref(), Some("512k"));
        assert_eq!(quantity("1G").as_deref(), Some("1G"));
        assert_eq!(quantity("lots"), None);
        assert_eq!(
            bridge_from_bip("172.26.0.1/16"),
            Some(("172.26.0.0/16".into(), "172.26.0.1".into()))
        );
        assert_eq!(bridge_from_bip("nonsense"), None);
    }
}
