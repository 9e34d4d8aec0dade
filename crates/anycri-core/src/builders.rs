//! Builders for the two configs every tool writes: [`PodSandboxConfigBuilder`] and
//! [`ContainerConfigBuilder`]. Defaults follow what the kubelet sends: a unique pod UID,
//! attempt 0, namespaces shared at pod level, a container log at `<name>/<attempt>.log`.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use crate::api::*;

/// A UID unique within this process and across processes in practice (time plus a counter),
/// in the 8-4-4-4-12 hex shape Kubernetes UIDs have.
///
/// ```
/// let uid = anycri_core::builders::new_uid();
/// assert_eq!(uid.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
/// assert_ne!(uid, anycri_core::builders::new_uid());
/// ```
pub fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let a = (nanos >> 64) as u64 ^ u64::from(pid) << 32 ^ n;
    let b = nanos as u64;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (b >> 32) as u32,
        (b >> 16) as u16,
        b as u16,
        (a >> 48) as u16,
        a & 0xffff_ffff_ffff
    )
}

/// Builds a [`PodSandboxConfig`].
///
/// ```
/// use anycri_core::builders::PodSandboxConfigBuilder;
/// let config = PodSandboxConfigBuilder::new("web", "default")
///     .label("app", "web")
///     .hostname("web-0")
///     .build();
/// assert_eq!(config.metadata.unwrap().name, "web");
/// ```
///
/// Networking, DNS and namespaces as a Deployment's pod spec would set them:
///
/// ```
/// use anycri_core::{api::{NamespaceMode, Protocol}, builders::{PodSandboxConfigBuilder, is_host_network}};
/// let config = PodSandboxConfigBuilder::new("web", "shop")
///     .uid("3f1c2a9e-0000-4000-8000-000000000001")
///     .attempt(1)
///     .annotation("example.com/owner", "team-a")
///     .dns(&["10.96.0.10"], &["shop.svc.cluster.local"], &["ndots:5"])
///     .port_mapping(Protocol::Tcp, 8080, 30080)
///     .shared_pid(true)
///     .cgroup_parent("/kubepods/burstable")
///     .build();
/// assert!(!is_host_network(&config));
/// assert_eq!(config.hostname, "web"); // the pod's name, as the kubelet sets it
/// assert_eq!(config.labels["io.kubernetes.pod.namespace"], "shop");
/// let namespaces = config.linux.unwrap().security_context.unwrap().namespace_options.unwrap();
/// assert_eq!(namespaces.pid(), NamespaceMode::Pod);
///
/// let host = PodSandboxConfigBuilder::new("node-agent", "kube-system").host_network(true).host_pid(true).build();
/// assert!(is_host_network(&host));
/// assert!(host.hostname.is_empty()); // the node's own
/// ```
#[derive(Debug, Clone)]
pub struct PodSandboxConfigBuilder {
    config: PodSandboxConfig,
}

impl PodSandboxConfigBuilder {
    /// A pod named `name` in `namespace`, with a fresh UID and attempt 0.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        PodSandboxConfigBuilder {
            config: PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    name: name.into(),
                    uid: new_uid(),
                    namespace: namespace.into(),
                    attempt: 0,
                }),
                linux: Some(LinuxPodSandboxConfig {
                    security_context: Some(LinuxSandboxSecurityContext {
                        namespace_options: Some(default_namespaces()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }

    fn metadata(&mut self) -> &mut PodSandboxMetadata {
        self.config.metadata.get_or_insert_with(Default::default)
    }

    fn namespaces(&mut self) -> &mut NamespaceOption {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
            .namespace_options
            .get_or_insert_with(Default::default)
    }

    /// Set the pod UID.
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.metadata().uid = uid.into();
        self
    }
    /// Set the attempt number.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.metadata().attempt = attempt;
        self
    }
    /// Set the hostname.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.config.hostname = hostname.into();
        self
    }
    /// The directory under which container log paths are resolved.
    pub fn log_directory(mut self, dir: impl Into<String>) -> Self {
        self.config.log_directory = dir.into();
        self
    }
    /// Add a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }
    /// Add labels.
    pub fn labels(mut self, labels: HashMap<String, String>) -> Self {
        self.config.labels.extend(labels);
        self
    }
    /// Add an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }
    /// DNS servers, search domains and resolver options for the pod's resolv.conf.
    pub fn dns(mut self, servers: &[&str], searches: &[&str], options: &[&str]) -> Self {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        self.config.dns_config = Some(DnsConfig {
            servers: own(servers),
            searches: own(searches),
            options: own(options),
        });
        self
    }
    /// Publish `container_port` on the host as `host_port` (0: no host port).
    pub fn port_mapping(mut self, protocol: Protocol, container_port: i32, host_port: i32) -> Self {
        self.config.port_mappings.push(PortMapping {
            protocol: protocol as i32,
            container_port,
            host_port,
            host_ip: String::new(),
        });
        self
    }
    /// Use the host's network namespace (and so the node's hostname: the kubelet sends no
    /// hostname for such a pod, and runc refuses one without a UTS namespace of its own).
    pub fn host_network(mut self, on: bool) -> Self {
        self.namespaces().network = mode(on);
        self
    }
    /// Use the host's PID namespace.
    pub fn host_pid(mut self, on: bool) -> Self {
        self.namespaces().pid = if on {
            NamespaceMode::Node
        } else {
            NamespaceMode::Container
        } as i32;
        self
    }
    /// Use the host's IPC namespace.
    pub fn host_ipc(mut self, on: bool) -> Self {
        self.namespaces().ipc = mode(on);
        self
    }
    /// Share one PID namespace between the pod's containers.
    pub fn shared_pid(mut self, on: bool) -> Self {
        self.namespaces().pid = if on {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        } as i32;
        self
    }
    /// The cgroup parent.
    pub fn cgroup_parent(mut self, parent: impl Into<String>) -> Self {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .cgroup_parent = parent.into();
        self
    }
    /// The config. Without an explicit hostname, a pod not on the host's network gets its
    /// name, as the kubelet sets it; the kubelet's pod labels
    /// ([`crate::kubelet::pod_labels`]) are added where absent.
    pub fn build(mut self) -> PodSandboxConfig {
        default_hostname(&mut self.config);
        crate::kubelet::pod_labels(&mut self.config);
        self.config
    }
}

/// Whether the pod is on the host's network (its network namespace mode is `NODE`).
///
/// ```
/// use anycri_core::builders::{PodSandboxConfigBuilder, is_host_network};
/// assert!(is_host_network(&PodSandboxConfigBuilder::new("a", "b").host_network(true).build()));
/// assert!(!is_host_network(&PodSandboxConfigBuilder::new("a", "b").build()));
/// ```
pub fn is_host_network(config: &PodSandboxConfig) -> bool {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.network == NamespaceMode::Node as i32)
}

/// The kubelet's hostname for a pod that names none: its name (at most 63 characters) unless
/// it is on the host's network, which has the node's. Runtimes differ on an empty one
/// (containerd takes the node's name, CRI-O and Docker the sandbox ID).
///
/// ```
/// use anycri_core::api::{PodSandboxConfig, PodSandboxMetadata};
/// let mut config = PodSandboxConfig {
///     metadata: Some(PodSandboxMetadata { name: "web-7d4b9c-x2x".into(), ..Default::default() }),
///     ..Default::default()
/// };
/// anycri_core::builders::default_hostname(&mut config);
/// assert_eq!(config.hostname, "web-7d4b9c-x2x");
/// ```
pub fn default_hostname(config: &mut PodSandboxConfig) {
    if is_host_network(config) || !config.hostname.is_empty() {
        return;
    }
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.as_str())
        .unwrap_or("");
    let hostname: String = name.chars().take(63).collect();
    config.hostname = hostname.trim_end_matches(['-', '.']).to_owned();
}

fn mode(host: bool) -> i32 {
    if host {
        NamespaceMode::Node as i32
    } else {
        NamespaceMode::Pod as i32
    }
}

/// The kubelet's defaults: network and IPC shared by the pod, a PID namespace per container.
fn default_namespaces() -> NamespaceOption {
    NamespaceOption {
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// Builds a [`ContainerConfig`].
///
/// ```
/// use anycri_core::builders::ContainerConfigBuilder;
/// let config = ContainerConfigBuilder::new("app", "busybox:1.36")
///     .command(["sleep", "3600"])
///     .env("MODE", "test")
///     .build();
/// assert_eq!(config.log_path, "app/0.log");
/// ```
///
/// Security context, resources, mounts and a terminal:
///
/// ```
/// use anycri_core::builders::ContainerConfigBuilder;
/// let config = ContainerConfigBuilder::new("shell", "busybox:1.36")
///     .attempt(2)
///     .command(["/bin/sh"])
///     .args(["-l"])
///     .working_dir("/work")
///     .label("tier", "debug")
///     .annotation("example.com/reason", "incident-42")
///     .tty(true)
///     .stdin(true, false)
///     .mount("/var/lib/app", "/data", true)
///     .run_as_user(1000)
///     .run_as_group(1000)
///     .readonly_rootfs(true)
///     .memory_limit(128 << 20)
///     .cpu_quota(50_000, 100_000) // half a CPU
///     .build();
/// assert_eq!(config.log_path, "shell/2.log");
/// let linux = config.linux.unwrap();
/// assert_eq!(linux.resources.unwrap().memory_limit_in_bytes, 128 << 20);
/// assert_eq!(linux.security_context.unwrap().run_as_user.unwrap().value, 1000);
/// assert!(config.mounts[0].readonly);
/// ```
#[derive(Debug, Clone)]
pub struct ContainerConfigBuilder {
    config: ContainerConfig,
    log_path_set: bool,
}

impl ContainerConfigBuilder {
    /// A container named `name` running `image`, attempt 0.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerConfigBuilder {
            config: ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                image: Some({
                    let image = image.into();
                    // As the kubelet sends it: the reference the user wrote (CRI-O verifies
                    // signatures against it).
                    ImageSpec {
                        user_specified_image: image.clone(),
                        image,
                        ..Default::default()
                    }
                }),
                linux: Some(LinuxContainerConfig {
                    resources: Some(LinuxContainerResources::default()),
                    security_context: Some(LinuxContainerSecurityContext {
                        namespace_options: Some(default_namespaces()),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
            log_path_set: false,
        }
    }

    fn security(&mut self) -> &mut LinuxContainerSecurityContext {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    fn resources(&mut self) -> &mut LinuxContainerResources {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .resources
            .get_or_insert_with(Default::default)
    }

    /// Set the attempt number.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.config
            .metadata
            .get_or_insert_with(Default::default)
            .attempt = attempt;
        self
    }
    /// The command (the image's entrypoint is replaced).
    pub fn command<I: IntoIterator<Item = S>, S: Into<String>>(mut self, command: I) -> Self {
        self.config.command = command.into_iter().map(Into::into).collect();
        self
    }
    /// The arguments (the image's cmd is replaced).
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.config.args = args.into_iter().map(Into::into).collect();
        self
    }
    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.envs.push(KeyValue {
            key: key.into(),
            value: value.into(),
        });
        self
    }
    /// The working directory.
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.config.working_dir = dir.into();
        self
    }
    /// Add a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }
    /// Add labels.
    pub fn labels(mut self, labels: HashMap<String, String>) -> Self {
        self.config.labels.extend(labels);
        self
    }
    /// Add an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }
    /// The log path, relative to the pod's log directory.
    pub fn log_path(mut self, path: impl Into<String>) -> Self {
        self.config.log_path = path.into();
        self.log_path_set = true;
        self
    }
    /// Allocate a TTY.
    pub fn tty(mut self, on: bool) -> Self {
        self.config.tty = on;
        self
    }
    /// Keep stdin open (`once`: close it after the first attach ends).
    pub fn stdin(mut self, on: bool, once: bool) -> Self {
        self.config.stdin = on;
        self.config.stdin_once = once;
        self
    }
    /// Bind-mount `host_path` at `container_path`.
    pub fn mount(
        mut self,
        host_path: impl Into<String>,
        container_path: impl Into<String>,
        readonly: bool,
    ) -> Self {
        self.config.mounts.push(Mount {
            host_path: host_path.into(),
            container_path: container_path.into(),
            readonly,
            ..Default::default()
        });
        self
    }
    /// Run privileged.
    pub fn privileged(mut self, on: bool) -> Self {
        self.security().privileged = on;
        self
    }
    /// Run as this UID.
    pub fn run_as_user(mut self, uid: i64) -> Self {
        self.security().run_as_user = Some(Int64Value { value: uid });
        self
    }
    /// Run with this primary GID.
    pub fn run_as_group(mut self, gid: i64) -> Self {
        self.security().run_as_group = Some(Int64Value { value: gid });
        self
    }
    /// Mount the root filesystem read-only.
    pub fn readonly_rootfs(mut self, on: bool) -> Self {
        self.security().readonly_rootfs = on;
        self
    }
    /// Memory limit in bytes.
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.resources().memory_limit_in_bytes = bytes;
        self
    }
    /// CPU quota and period (microseconds).
    pub fn cpu_quota(mut self, quota: i64, period: i64) -> Self {
        let r = self.resources();
        r.cpu_quota = quota;
        r.cpu_period = period;
        self
    }
    /// The config. Without an explicit log path it is `<name>/<attempt>.log`, as the kubelet sets it.
    pub fn build(mut self) -> ContainerConfig {
        if !self.log_path_set {
            let meta = self.config.metadata.clone().unwrap_or_default();
            self.config.log_path = format!("{}/{}.log", meta.name, meta.attempt);
        }
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_unique_and_shaped() {
        let a = new_uid();
        let b = new_uid();
        assert_ne!(a, b);
        let parts: Vec<_> = a.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }

    #[test]
    fn pod_defaults_and_options() {
        let c = PodSandboxConfigBuilder::new("p", "ns")
            .attempt(2)
            .host_network(true)
            .dns(&["10.0.0.10"], &["svc.local"], &["ndots:5"])
            .port_mapping(Protocol::Udp, 53, 5353)
            .label("a", "b")
            .build();
        let m = c.metadata.unwrap();
        assert_eq!(
            (m.name.as_str(), m.namespace.as_str(), m.attempt),
            ("p", "ns", 2)
        );
        assert!(!m.uid.is_empty());
        assert_eq!(c.hostname, "", "a host-network pod has the node's hostname");
        assert_eq!(
            PodSandboxConfigBuilder::new("p", "ns").build().hostname,
            "p",
            "the pod's name, as the kubelet sets it"
        );
        let ns = c
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, NamespaceMode::Node as i32);
        assert_eq!(ns.pid, NamespaceMode::Container as i32);
        assert_eq!(c.dns_config.unwrap().servers, vec!["10.0.0.10"]);
        assert_eq!(c.port_mappings[0].protocol, Protocol::Udp as i32);
        assert_eq!(c.labels["a"], "b");
    }

    #[test]
    fn container_defaults_and_options() {
        let c = ContainerConfigBuilder::new("c", "img")
            .attempt(3)
            .command(["sh", "-c"])
            .args(vec!["echo hi".to_string()])
            .run_as_user(1000)
            .memory_limit(64 << 20)
            .build();
        assert_eq!(c.log_path, "c/3.log");
        assert_eq!(c.image.unwrap().image, "img");
        assert_eq!(c.command, vec!["sh", "-c"]);
        let linux = c.linux.unwrap();
        assert_eq!(
            linux.security_context.unwrap().run_as_user.unwrap().value,
            1000
        );
        assert_eq!(linux.resources.unwrap().memory_limit_in_bytes, 64 << 20);
        let c = ContainerConfigBuilder::new("c", "img")
            .log_path("x.log")
            .build();
        assert_eq!(c.log_path, "x.log");
    }
}
