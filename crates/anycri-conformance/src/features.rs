//! What a check needs and whether this run has it: the runtime's discovered
//! [`Capabilities`], host features probed from `/sys` and `/proc` (AppArmor, SELinux,
//! seccomp, cgroup v2, user namespaces), whether the runtime runs the image's programs at all
//! (the fake does not), which test images are configured, and the streaming client.

use anycri::{Capabilities, RuntimeInfo};

use crate::images::{ImageKind, TestImages};

/// One thing a check needs; a check whose needs are not all met is skipped with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// `Exec` returns a streaming URL.
    Exec,
    /// `Attach` returns a streaming URL.
    Attach,
    /// `PortForward` returns a streaming URL.
    PortForward,
    /// anycri's streaming client (exec/attach/port-forward sessions through the URL).
    StreamingClient,
    /// `GetContainerEvents` streams events.
    ContainerEvents,
    /// `CheckpointContainer` works.
    Checkpoint,
    /// `PodSandboxStats`/`ListPodSandboxStats` work.
    PodSandboxStats,
    /// `ListMetricDescriptors`/`ListPodSandboxMetrics` work.
    PodSandboxMetrics,
    /// `RuntimeConfig` works.
    RuntimeConfig,
    /// `UpdatePodSandboxResources` works.
    UpdatePodSandboxResources,
    /// The `Stream*` list RPCs answer.
    ListStreaming,
    /// The runtime runs the image's programs as real processes on this host (not a fake).
    Processes,
    /// The host has AppArmor enabled.
    AppArmor,
    /// The host has SELinux enabled.
    SeLinux,
    /// The kernel supports seccomp filters.
    Seccomp,
    /// The runtime's default handler supports user namespaces.
    UserNamespaces,
    /// The runtime's default handler supports recursive read-only mounts.
    RecursiveReadOnlyMounts,
    /// A test image of this kind is configured.
    Image(ImageKind),
    /// The runtime pulls the registry's images, so that several tags of one manifest are one
    /// image. An in-memory fake invents an image per reference; it is told apart by not
    /// running programs (the [`Need::Processes`] probe).
    RegistryImages,
}

/// Host facts a check may depend on, probed once per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostFeatures {
    /// AppArmor is enabled (`/sys/module/apparmor/parameters/enabled` is `Y`).
    pub apparmor: bool,
    /// SELinux is mounted (`/sys/fs/selinux/enforce` exists).
    pub selinux: bool,
    /// The kernel has seccomp filters (`Seccomp:` in `/proc/self/status`).
    pub seccomp: bool,
    /// The unified cgroup v2 hierarchy is mounted at `/sys/fs/cgroup`.
    pub cgroup_v2: bool,
}

impl HostFeatures {
    /// Probe this host.
    pub fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        HostFeatures {
            apparmor: read("/sys/module/apparmor/parameters/enabled").trim() == "Y",
            selinux: std::path::Path::new("/sys/fs/selinux/enforce").exists(),
            seccomp: read("/proc/self/status").contains("Seccomp:"),
            cgroup_v2: std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        }
    }
}

/// Everything selection by need looks at.
#[derive(Debug, Clone)]
pub struct Features {
    /// What the runtime discovered about itself (None when discovery failed).
    pub runtime: Option<RuntimeInfo>,
    /// The runtime's capabilities (all false when discovery failed).
    pub capabilities: Capabilities,
    /// The host's features.
    pub host: HostFeatures,
    /// Whether the runtime runs the image's programs (probed with a container).
    pub processes: bool,
    /// The streaming session checks may run (anycri's streaming client is used).
    pub streaming_client: bool,
    /// The configured test images.
    pub images: TestImages,
}

impl Features {
    /// Why `need` is not met, or None when it is.
    pub fn missing(&self, need: Need) -> Option<String> {
        let c = &self.capabilities;
        let no = |ok: bool, why: &str| (!ok).then(|| why.to_owned());
        match need {
            Need::Exec => no(c.exec, "the runtime does not implement Exec"),
            Need::Attach => no(c.attach, "the runtime does not implement Attach"),
            Need::PortForward => no(c.port_forward, "the runtime does not implement PortForward"),
            Need::StreamingClient => no(
                self.streaming_client,
                "the streaming session checks are turned off (Options::streaming_client)",
            ),
            Need::ContainerEvents => no(
                c.container_events,
                "the runtime does not implement GetContainerEvents",
            ),
            Need::Checkpoint => no(
                c.checkpoint_container,
                "the runtime does not implement CheckpointContainer",
            ),
            Need::PodSandboxStats => no(
                c.pod_sandbox_stats,
                "the runtime does not implement PodSandboxStats",
            ),
            Need::PodSandboxMetrics => no(
                c.pod_sandbox_metrics,
                "the runtime does not implement ListPodSandboxMetrics",
            ),
            Need::RuntimeConfig => no(
                c.runtime_config,
                "the runtime does not implement RuntimeConfig",
            ),
            Need::UpdatePodSandboxResources => no(
                c.update_pod_sandbox_resources,
                "the runtime does not implement UpdatePodSandboxResources",
            ),
            Need::ListStreaming => no(
                c.list_streaming,
                "the runtime does not implement the Stream* list RPCs",
            ),
            Need::Processes => no(
                self.processes,
                "the runtime does not run the image's programs (an in-memory fake)",
            ),
            Need::RegistryImages => no(
                self.processes,
                "the runtime does not pull the registry's images (an in-memory fake makes one \
                 image per reference, so tags of one manifest are different images there)",
            ),
            Need::AppArmor => no(self.host.apparmor, "AppArmor is not enabled on this host"),
            Need::SeLinux => no(self.host.selinux, "SELinux is not enabled on this host"),
            Need::Seccomp => no(self.host.seccomp, "the kernel has no seccomp support"),
            Need::UserNamespaces => no(
                self.runtime.as_ref().is_some_and(|r| {
                    r.handlers
                        .iter()
                        .any(|h| h.name.is_empty() && h.user_namespaces)
                        || r.handlers.iter().any(|h| h.user_namespaces)
                }),
                "the runtime reports no handler with user namespace support",
            ),
            Need::RecursiveReadOnlyMounts => no(
                self.runtime.as_ref().is_some_and(|r| {
                    r.handlers
                        .iter()
                        .any(|h| h.name.is_empty() && h.recursive_read_only_mounts)
                }),
                "the runtime's default handler does not report recursive read-only mounts",
            ),
            Need::Image(kind) => crate::images::image(&self.images, kind).is_none().then(|| {
                format!(
                    "no {} test image in the image set (push the full set with --push-images \
                     REGISTRY or `anycri conformance images --push REGISTRY`, or name it in \
                     --test-images-file)",
                    kind.describe()
                )
            }),
        }
    }

    /// The reasons a check with `needs` cannot run (empty when it can).
    pub fn unmet(&self, needs: &[Need]) -> Vec<String> {
        needs.iter().filter_map(|n| self.missing(*n)).collect()
    }
}
