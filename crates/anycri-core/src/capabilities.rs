//! What a runtime is and what it can do, discovered from the runtime itself: `Version`,
//! `Status` (verbose: handlers, features, conditions), `RuntimeConfig`, and where nothing
//! else tells, a probe that calls the RPC with an ID that cannot exist and watches for
//! `Unimplemented`. Tools read [`Capabilities`] before they rely on an optional RPC.

use std::{collections::BTreeMap, time::Duration};

use crate::{api::*, error::Result, service::RuntimeService};

/// Which runtime answers, recognised from `Version.runtime_name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum RuntimeFlavour {
    /// containerd's CRI plugin.
    Containerd,
    /// CRI-O.
    CriO,
    /// cri-dockerd (Docker Engine behind Mirantis' shim).
    CriDockerd,
    /// anycri's own server or in-process backend (`anycri-docker`, `anycri-fake`, ...).
    Anycri,
    /// Anything else, by its reported name.
    Other(String),
}

impl RuntimeFlavour {
    /// The flavour of a runtime reporting `runtime_name` in `Version`.
    ///
    /// ```
    /// use anycri_core::RuntimeFlavour;
    /// assert_eq!(RuntimeFlavour::from_runtime_name("cri-o"), RuntimeFlavour::CriO);
    /// assert_eq!(RuntimeFlavour::from_runtime_name("anycri-fake"), RuntimeFlavour::Anycri);
    /// assert_eq!(RuntimeFlavour::from_runtime_name("kata"), RuntimeFlavour::Other("kata".into()));
    /// ```
    pub fn from_runtime_name(runtime_name: &str) -> Self {
        match runtime_name {
            "containerd" => RuntimeFlavour::Containerd,
            "cri-o" => RuntimeFlavour::CriO,
            "docker" => RuntimeFlavour::CriDockerd,
            n if n == "anycri" || n.starts_with("anycri-") => RuntimeFlavour::Anycri,
            other => RuntimeFlavour::Other(other.to_owned()),
        }
    }
}

/// The cgroup driver the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CgroupDriverKind {
    /// systemd manages cgroups.
    Systemd,
    /// The runtime writes cgroupfs directly.
    Cgroupfs,
}

/// One runtime handler (an OCI runtime class) and its features.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HandlerInfo {
    /// Its name ("" is the default handler).
    pub name: String,
    /// Recursive read-only mounts are supported.
    pub recursive_read_only_mounts: bool,
    /// User namespaces are supported.
    pub user_namespaces: bool,
}

/// Which optional parts of the CRI work on this runtime. `false` means calls fail with
/// [`crate::ErrorKind::Unimplemented`] error (or an equivalent refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Capabilities {
    /// `Exec` returns a streaming URL.
    pub exec: bool,
    /// `Attach` returns a streaming URL.
    pub attach: bool,
    /// `PortForward` returns a streaming URL.
    pub port_forward: bool,
    /// `GetContainerEvents` streams events.
    pub container_events: bool,
    /// `CheckpointContainer` works.
    pub checkpoint_container: bool,
    /// `PodSandboxStats` / `ListPodSandboxStats` work.
    pub pod_sandbox_stats: bool,
    /// `ListMetricDescriptors` / `ListPodSandboxMetrics` work.
    pub pod_sandbox_metrics: bool,
    /// `RuntimeConfig` works.
    pub runtime_config: bool,
    /// `UpdatePodSandboxResources` works.
    pub update_pod_sandbox_resources: bool,
    /// The `Stream*` list RPCs answer through this backend. For `GrpcRuntime` that includes
    /// its fallback to the unary lists on runtimes without them; whether the runtime serves
    /// them natively is `GrpcRuntime::serves_list_streaming`.
    pub list_streaming: bool,
}

impl Capabilities {
    /// Each capability with its name, for tables and reports.
    pub fn entries(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("exec", self.exec),
            ("attach", self.attach),
            ("port_forward", self.port_forward),
            ("container_events", self.container_events),
            ("checkpoint_container", self.checkpoint_container),
            ("pod_sandbox_stats", self.pod_sandbox_stats),
            ("pod_sandbox_metrics", self.pod_sandbox_metrics),
            ("runtime_config", self.runtime_config),
            (
                "update_pod_sandbox_resources",
                self.update_pod_sandbox_resources,
            ),
            ("list_streaming", self.list_streaming),
        ]
    }
}

/// A runtime condition from `Status` (RuntimeReady, NetworkReady).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Condition {
    /// Condition type.
    pub kind: String,
    /// Whether it holds.
    pub status: bool,
    /// Short reason when it does not.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// Everything anycri learned about a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RuntimeInfo {
    /// `Version.runtime_name`.
    pub runtime_name: String,
    /// `Version.runtime_version`.
    pub runtime_version: String,
    /// `Version.runtime_api_version`.
    pub runtime_api_version: String,
    /// Recognised flavour.
    pub flavour: RuntimeFlavour,
    /// Runtime handlers from `Status` (empty when the runtime reports none).
    pub handlers: Vec<HandlerInfo>,
    /// The cgroup driver, when the runtime tells (RuntimeConfig, or its verbose status).
    pub cgroup_driver: Option<CgroupDriverKind>,
    /// Conditions from `Status`.
    pub conditions: Vec<Condition>,
    /// The verbose `Status` info map (runtime-specific JSON strings).
    pub status_info: BTreeMap<String, String>,
    /// What works.
    pub capabilities: Capabilities,
    /// Why a capability is absent, by its name in [`Capabilities::entries`], where discovery
    /// learned more than "Unimplemented" (a runtime that turned the feature off, a missing
    /// host tool).
    pub capability_reasons: BTreeMap<String, String>,
}

impl RuntimeInfo {
    /// True when every condition holds.
    pub fn ready(&self) -> bool {
        self.conditions.iter().all(|c| c.status)
    }
}

const PROBE_ID: &str = "anycri-capability-probe-0000000000000000";

/// Whether a probe's result shows the RPC exists. Any answer but Unimplemented does.
fn works<T>(result: &Result<T>) -> bool {
    !matches!(result, Err(e) if e.is_unimplemented())
}

/// Discover what `runtime` is and can do. Only `Version` must succeed; the rest is best
/// effort and reported as absent when it fails.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use anycri_core::{RuntimeFlavour, discover};
/// let runtime = anycri_fake::FakeRuntime::new();
/// let info = discover(&runtime).await?;
/// assert_eq!(info.flavour, RuntimeFlavour::Anycri);
/// assert!(info.ready());
/// assert!(info.capabilities.container_events);
/// assert!(!info.capabilities.exec); // the fake has no streaming server
/// for (name, works) in info.capabilities.entries() {
///     let why = info.capability_reasons.get(name).map(String::as_str).unwrap_or("");
///     println!("{name:30} {works} {why}");
/// }
/// # Ok(()) }
/// ```
pub async fn discover(runtime: &dyn RuntimeService) -> Result<RuntimeInfo> {
    let version = runtime
        .version(VersionRequest {
            version: anycri_api::CRI_API_VERSION.into(),
        })
        .await?;
    let status = runtime.status(StatusRequest { verbose: true }).await;
    let runtime_config = runtime.runtime_config(RuntimeConfigRequest {}).await;

    let mut info = RuntimeInfo {
        flavour: RuntimeFlavour::from_runtime_name(&version.runtime_name),
        runtime_name: version.runtime_name,
        runtime_version: version.runtime_version,
        runtime_api_version: version.runtime_api_version,
        handlers: Vec::new(),
        cgroup_driver: None,
        conditions: Vec::new(),
        status_info: BTreeMap::new(),
        capabilities: Capabilities::default(),
        capability_reasons: BTreeMap::new(),
    };

    if let Ok(status) = &status {
        info.handlers = status
            .runtime_handlers
            .iter()
            .map(|h| HandlerInfo {
                name: h.name.clone(),
                recursive_read_only_mounts: h
                    .features
                    .as_ref()
                    .is_some_and(|f| f.recursive_read_only_mounts),
                user_namespaces: h.features.as_ref().is_some_and(|f| f.user_namespaces),
            })
            .collect();
        if let Some(s) = &status.status {
            info.conditions = s
                .conditions
                .iter()
                .map(|c| Condition {
                    kind: c.r#type.clone(),
                    status: c.status,
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect();
        }
        info.status_info = status
            .info
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
    }
    info.capabilities.runtime_config = works(&runtime_config);
    info.cgroup_driver = match &runtime_config {
        Ok(rc) => rc
            .linux
            .as_ref()
            .map(|l| match CgroupDriver::try_from(l.cgroup_driver) {
                Ok(CgroupDriver::Systemd) => CgroupDriverKind::Systemd,
                _ => CgroupDriverKind::Cgroupfs,
            }),
        Err(_) => cgroup_driver_from_info(&info.status_info),
    };

    let caps = &mut info.capabilities;
    caps.exec = works(
        &runtime
            .exec(ExecRequest {
                container_id: PROBE_ID.into(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await,
    );
    caps.attach = works(
        &runtime
            .attach(AttachRequest {
                container_id: PROBE_ID.into(),
                stdout: true,
                ..Default::default()
            })
            .await,
    );
    caps.port_forward = works(
        &runtime
            .port_forward(PortForwardRequest {
                pod_sandbox_id: PROBE_ID.into(),
                port: vec![80],
            })
            .await,
    );
    let probe = runtime
        .checkpoint_container(CheckpointContainerRequest {
            container_id: PROBE_ID.into(),
            location: String::new(),
            timeout: 1,
        })
        .await;
    let checkpoint = match checkpoint_support(&probe, || Ok(())) {
        Ok(()) => tokio::task::spawn_blocking(criu_check)
            .await
            .unwrap_or_else(|e| Err(format!("checking CRIU: {e}"))),
        refused => refused,
    };
    caps.checkpoint_container = checkpoint.is_ok();
    if let Err(reason) = checkpoint {
        info.capability_reasons
            .insert("checkpoint_container".into(), reason);
    }
    caps.pod_sandbox_stats = works(
        &runtime
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: Some(PodSandboxStatsFilter {
                    id: PROBE_ID.into(),
                    ..Default::default()
                }),
            })
            .await,
    );
    caps.pod_sandbox_metrics = works(
        &runtime
            .list_metric_descriptors(ListMetricDescriptorsRequest {})
            .await,
    );
    caps.update_pod_sandbox_resources = works(
        &runtime
            .update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
                pod_sandbox_id: PROBE_ID.into(),
                ..Default::default()
            })
            .await,
    );
    let events = events_support(runtime).await;
    caps.container_events = events.is_ok();
    if let Err(reason) = events {
        info.capability_reasons
            .insert("container_events".into(), reason);
    }
    caps.list_streaming = works(
        &runtime
            .stream_containers(StreamContainersRequest {
                filter: Some(ContainerFilter {
                    id: PROBE_ID.into(),
                    ..Default::default()
                }),
            })
            .await,
    );
    Ok(info)
}

/// Whether a runtime streams container events. A supported stream may send nothing (not even
/// headers) until an event happens, so silence counts as support; an Unimplemented does not,
/// and neither does a stream the runtime ends at once with no event (CRI-O does so when
/// `enable_pod_events` is off).
async fn events_support(runtime: &dyn RuntimeService) -> std::result::Result<(), String> {
    use futures_util::StreamExt;
    let wait = Duration::from_millis(500);
    let mut stream =
        match tokio::time::timeout(wait, runtime.get_container_events(GetEventsRequest {})).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.is_unimplemented() => {
                return Err(format!("unimplemented: {}", e.message()));
            }
            Ok(Err(_)) => return Ok(()),
            Ok(Ok(stream)) => stream,
        };
    match tokio::time::timeout(wait, stream.next()).await {
        Ok(None) => Err("the runtime ends the event stream at once, with no event \
                         (CRI-O: enable_pod_events is off)"
            .into()),
        Ok(Some(Err(e))) if e.is_unimplemented() => Err(format!("unimplemented: {}", e.message())),
        _ => Ok(()),
    }
}

/// Whether CheckpointContainer works, from the answer to a probe with an ID that cannot
/// exist: a runtime that has it looks the container up (NotFound, or InvalidArgument for
/// the ID); one that refuses before the lookup does not have it (CRI-O without
/// `enable_criu_support`: "checkpoint/restore support not available"). Runtimes checkpoint
/// with CRIU, so `criu check` must pass on this host too (`criu`: the host's CRIU verdict).
fn checkpoint_support<T>(
    probe: &Result<T>,
    criu: impl FnOnce() -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    match probe {
        Err(e) if e.is_unimplemented() => Err(format!("unimplemented: {}", e.message())),
        Err(e)
            if !matches!(
                e.kind(),
                crate::ErrorKind::NotFound | crate::ErrorKind::InvalidArgument
            ) =>
        {
            Err(format!("the runtime refuses it: {e}"))
        }
        _ => criu(),
    }
}

/// Whether CRIU works on this host: `criu check` passes (run once per process; CRIU can be
/// installed and still fail on a kernel it does not know).
fn criu_check() -> std::result::Result<(), String> {
    static VERDICT: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    VERDICT
        .get_or_init(|| {
            let output = ["criu", "/usr/sbin/criu", "/sbin/criu"]
                .iter()
                .find_map(|c| std::process::Command::new(c).arg("check").output().ok());
            match output {
                None => Err("CRIU (`criu`) is not installed on this host".into()),
                Some(o) if o.status.success() => Ok(()),
                Some(o) => {
                    // CRIU's first error says what failed; the last one only that it gave up.
                    let text = String::from_utf8_lossy(&o.stderr);
                    let line = text
                        .lines()
                        .find(|l| l.contains("Error"))
                        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()));
                    Err(format!(
                        "`criu check` fails on this host: {}",
                        line.unwrap_or("no message").trim()
                    ))
                }
            }
        })
        .clone()
}

/// containerd puts its CRI config in the verbose status (`info["config"]`, JSON); the runc
/// options say whether it drives systemd.
fn cgroup_driver_from_info(info: &BTreeMap<String, String>) -> Option<CgroupDriverKind> {
    let config = info.get("config")?;
    let compact: String = config.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"SystemdCgroup\":true") || compact.contains("\"systemdCgroup\":true") {
        Some(CgroupDriverKind::Systemd)
    } else if compact.contains("\"SystemdCgroup\":false")
        || compact.contains("\"systemdCgroup\":false")
    {
        Some(CgroupDriverKind::Cgroupfs)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn info_types_round_trip_through_serde() {
        let mut info = RuntimeInfo {
            runtime_name: "containerd".into(),
            runtime_version: "v2.1.9".into(),
            runtime_api_version: "v1".into(),
            flavour: RuntimeFlavour::Other("kata".into()),
            handlers: vec![HandlerInfo {
                name: "runc".into(),
                recursive_read_only_mounts: true,
                user_namespaces: false,
            }],
            cgroup_driver: Some(CgroupDriverKind::Systemd),
            conditions: vec![],
            status_info: BTreeMap::new(),
            capabilities: Capabilities {
                exec: true,
                ..Default::default()
            },
            capability_reasons: BTreeMap::new(),
        };
        info.capability_reasons
            .insert("checkpoint_container".into(), "no criu".into());
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["capabilities"]["exec"], true);
        assert_eq!(json["flavour"]["Other"], "kata");
        assert_eq!(
            json["capability_reasons"]["checkpoint_container"],
            "no criu"
        );
        let back: RuntimeInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, info);
    }

    #[test]
    fn checkpoint_from_the_probe() {
        let probe = |kind, msg: &str| -> Result<()> { Err(crate::Error::new(kind, msg)) };
        use crate::ErrorKind as K;
        let works = || Ok(());
        let broken = || Err("criu check failed".to_owned());
        assert!(
            checkpoint_support(&probe(K::Unimplemented, "no"), works)
                .unwrap_err()
                .starts_with("unimplemented")
        );
        let crio_off = checkpoint_support(
            &probe(K::Unknown, "checkpoint/restore support not available"),
            works,
        )
        .unwrap_err();
        assert!(crio_off.contains("checkpoint/restore support not available"));
        // A lookup of the probe ID means the RPC is there; then CRIU decides.
        assert!(checkpoint_support(&probe(K::NotFound, "no such container"), works).is_ok());
        assert_eq!(
            checkpoint_support(&probe(K::NotFound, "no such container"), broken).unwrap_err(),
            "criu check failed"
        );
    }

    #[test]
    fn flavours() {
        assert_eq!(
            RuntimeFlavour::from_runtime_name("containerd"),
            RuntimeFlavour::Containerd
        );
        assert_eq!(
            RuntimeFlavour::from_runtime_name("cri-o"),
            RuntimeFlavour::CriO
        );
        assert_eq!(
            RuntimeFlavour::from_runtime_name("docker"),
            RuntimeFlavour::CriDockerd
        );
        assert_eq!(
            RuntimeFlavour::from_runtime_name("anycri-fake"),
            RuntimeFlavour::Anycri
        );
        assert_eq!(
            RuntimeFlavour::from_runtime_name("kata"),
            RuntimeFlavour::Other("kata".into())
        );
    }

    #[test]
    fn cgroup_driver_from_containerd_info() {
        let mut info = BTreeMap::new();
        info.insert(
            "config".to_string(),
            r#"{"containerd":{"runtimes":{"runc":{"options":{"SystemdCgroup": false}}}}}"#
                .to_string(),
        );
        assert_eq!(
            cgroup_driver_from_info(&info),
            Some(CgroupDriverKind::Cgroupfs)
        );
        info.insert(
            "config".into(),
            r#"{"options":{"SystemdCgroup":true}}"#.into(),
        );
        assert_eq!(
            cgroup_driver_from_info(&info),
            Some(CgroupDriverKind::Systemd)
        );
        assert_eq!(cgroup_driver_from_info(&BTreeMap::new()), None);
    }
}
