//! Pod sandboxes as pause containers: run (the pod's config translated by `translate`, then
//! the checkpoint, the start and CNI), stop (its containers first), remove
//! (everything in it), status (one inspect: no process forked for the pod IP) and list (one
//! Docker list call for any filter).

use std::collections::{HashMap, HashSet};

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::{
    models::{ContainerInspectResponse, ContainerSummary},
    query_parameters::{
        CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
        RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    },
};

use crate::{
    DockerRuntime,
    error::{docker_error, is_not_found, status_code},
    labels, translate, validate,
};

/// What the host allows, detected once at start.
#[derive(Debug, Clone)]
pub(crate) struct HostFacts {
    /// Processes may lower oom_score_adj (CAP_SYS_RESOURCE is in our effective set).
    pub negative_oom_score_adj: bool,
    /// The capabilities in our bounding set, by Docker's names (`CAP_...`).
    pub bounding_caps: Vec<String>,
    /// Every capability the kernel knows is in the bounding set.
    pub full_bounding_set: bool,
    /// Capabilities Docker 20.10 knows that the bounding set lacks (`CAP_...`).
    pub missing_docker_caps: Vec<String>,
    /// AppArmor is enabled on the host.
    pub apparmor: bool,
}

/// Linux capability names by number.
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];
/// How long RemovePodSandbox trusts that an ID it saw RunPodSandbox create is a sandbox
/// (an ID never changes kind; the lifetime only bounds the cache).
pub(crate) const OWN_SANDBOX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const CAP_SYS_RESOURCE: u32 = 24;
/// Docker 20.10 knows capabilities up to CAP_AUDIT_READ; it refuses newer names.
const LAST_DOCKER_2010_CAP: u32 = 37;

fn status_mask(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

impl HostFacts {
    /// Says once per process, when it first changes a pod or container, that this host does
    /// not allow lowering oom_score_adj. (Said at start instead, it would print on every
    /// command of a CLI that runs the shim in-process, however little it does.)
    pub fn warn_oom_score_adj_once(&self) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        if !self.negative_oom_score_adj {
            WARNED.call_once(|| {
                tracing::warn!(
                    "this host does not allow lowering oom_score_adj (no CAP_SYS_RESOURCE): pause containers get no OOM \
                     protection and negative container OOM scores are raised to 0"
                );
            });
        }
    }

    pub fn detect() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let eff = status_mask(&status, "CapEff:").unwrap_or(u64::MAX);
        let bnd = status_mask(&status, "CapBnd:").unwrap_or(u64::MAX);
        let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40);
        let known = last_cap.min(CAPS.len() as u32 - 1);
        let bounding_caps: Vec<String> = (0..=known)
            .filter(|b| bnd & (1u64 << b) != 0)
            .map(|b| format!("CAP_{}", CAPS[b as usize]))
            .collect();
        let full_bounding_set = bounding_caps.len() == known as usize + 1;
        let missing_docker_caps = (0..=known.min(LAST_DOCKER_2010_CAP))
            .filter(|b| bnd & (1u64 << b) == 0)
            .map(|b| format!("CAP_{}", CAPS[b as usize]))
            .collect();
        let negative_oom_score_adj = eff & (1 << CAP_SYS_RESOURCE) != 0;
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        let facts = HostFacts {
            negative_oom_score_adj,
            bounding_caps,
            full_bounding_set,
            missing_docker_caps,
            apparmor,
        };
        if !facts.full_bounding_set {
            tracing::info!(
                "the capability bounding set is partial ({} of {}): privileged containers get the host's capabilities \
                 instead of Docker's --privileged",
                facts.bounding_caps.len(),
                known + 1
            );
        }
        facts
    }
}

/// Unix seconds or an RFC 3339 string as Unix nanoseconds (0 for Docker's zero time).
pub(crate) fn rfc3339_nanos(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

fn namespace_mode(host: bool) -> i32 {
    if host {
        NamespaceMode::Node as i32
    } else {
        NamespaceMode::Pod as i32
    }
}

/// Run `op` on every item at once; the first error, after all of them finished (so one
/// failure does not leave the others half done).
async fn all_of<T, F, Fut>(items: impl IntoIterator<Item = T>, op: F) -> Result<()>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    futures::future::join_all(items.into_iter().map(op))
        .await
        .into_iter()
        .collect()
}

impl DockerRuntime {
    /// Inspect a Docker container that must be the shim's object of `kind`
    /// ([`labels::TYPE_SANDBOX`] or [`labels::TYPE_CONTAINER`]): InvalidArgument naming
    /// `field` for an empty ID, NotFound (`"<what> <id> not found"`) when unknown or of
    /// another kind.
    pub(crate) async fn inspect_kind(
        &self,
        id: &str,
        kind: &str,
        field: &str,
        what: &str,
    ) -> Result<ContainerInspectResponse> {
        if id.is_empty() {
            return Err(Error::invalid_argument(format!(
                "{field} must not be empty"
            )));
        }
        let inspect = self
            .docker()
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_error(format!("{what} {id}"), e))?;
        let is_kind = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::TYPE_LABEL))
            .is_some_and(|t| t == kind);
        if !is_kind {
            return Err(Error::not_found(format!("{what} {id} not found")));
        }
        Ok(inspect)
    }

    /// Inspect a pause container; NotFound when `id` is unknown or not a sandbox.
    pub(crate) async fn inspect_sandbox(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.inspect_kind(id, labels::TYPE_SANDBOX, "pod_sandbox_id", "pod sandbox")
            .await
    }

    pub(crate) async fn sandbox_exists(&self, id: &str) -> Result<()> {
        self.inspect_sandbox(id).await.map(|_| ())
    }

    async fn ensure_pause_image(&self) -> Result<()> {
        match self.resolve_image(&self.inner.pause_image).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => self
                .pull_image_impl(PullImageRequest {
                    image: Some(ImageSpec {
                        image: self.inner.pause_image.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|e| {
                    e.context(format!(
                        "pulling the pause image {}",
                        self.inner.pause_image
                    ))
                }),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn run_pod_sandbox_impl(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::invalid_argument("config must be set"))?;
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::invalid_argument("config.metadata must be set"))?;
        let name = labels::sandbox_name(&meta)?;
        if !request.runtime_handler.is_empty()
            && request.runtime_handler != "runc"
            && request.runtime_handler != "docker"
        {
            return Err(Error::invalid_argument(format!(
                "runtime_handler {:?} is not available (the Docker shim runs Docker's default runtime)",
                request.runtime_handler
            )));
        }
        self.ensure_pause_image().await?;
        self.inner.host.warn_oom_score_adj_once();

        let translate::PauseContainer {
            body,
            checkpoint,
            needs_cni,
        } = translate::pause_container(
            &config,
            &translate::SandboxFacts {
                pause_image: &self.inner.pause_image,
                cni: matches!(self.inner.network, crate::NetworkPlugin::Cni { .. }),
                negative_oom_score_adj: self.inner.host.negative_oom_score_adj,
                state_dir_label: &self.state_dir_label(),
            },
        )?;
        let created = self
            .docker()
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| docker_error(format!("creating pause container {name}"), e))?;
        let id = created.id;
        let start = || async {
            self.docker()
                .start_container(&id, None)
                .await
                .map_err(|e| docker_error(format!("starting pause container {name}"), e))
        };
        let started = async {
            if needs_cni {
                // The checkpoint's fsync overlaps Docker's start instead of delaying it: both
                // are done before ADD, the only step that depends on the file (CNI writes it
                // again, marked, before ADD), and a crash in between leaves a running pause
                // container without the ready mark: a NotReady sandbox with no network to
                // tear down, which is true.
                let (written, start) =
                    tokio::join!(self.inner.checkpoints.write(&id, &checkpoint), start());
                start?;
                written?;
                // CNI ADD (network.rs). On failure it has run DEL, and the pause container and
                // checkpoint are removed below.
                self.setup_pod_network(&id, &config, &checkpoint).await
            } else {
                // The ready checkpoint first: once the pause container runs (and Docker's
                // start event reaches a watcher), the sandbox is Ready.
                self.inner.checkpoints.write(&id, &checkpoint).await?;
                start().await
            }
        }
        .await;
        if let Err(err) = started {
            // Leave nothing half made behind.
            let _ = self
                .docker()
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await;
            let _ = self.inner.checkpoints.remove(&id).await;
            return Err(err);
        }
        self.inner.own_sandboxes.insert(&id, ());
        Ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    /// The shim's Docker containers of `kind` ([`labels::TYPE_SANDBOX`] or
    /// [`labels::TYPE_CONTAINER`]) whose CRI labels match `selector`, carrying every Docker
    /// label in `with_labels` (`key=value`), whose ID starts with `id` (when not empty), only
    /// running ones when `running_only`: one Docker list call, whatever the filter. Docker
    /// takes its filters in the URL, so a selector too large for it is split
    /// ([`validate::split_selector`]): Docker filters what fits, the rest is matched here.
    pub(crate) async fn list_kind(
        &self,
        kind: &str,
        selector: &HashMap<String, String>,
        with_labels: impl IntoIterator<Item = String>,
        id: &str,
        running_only: bool,
    ) -> Result<Vec<ContainerSummary>> {
        let (docker_selector, rest) = validate::split_selector(selector.clone());
        let mut label = vec![labels::type_filter(kind)];
        label.extend(docker_selector.iter().map(|(k, v)| format!("{k}={v}")));
        label.extend(with_labels);
        let mut filters: HashMap<&str, Vec<String>> = HashMap::from([("label", label)]);
        if !id.is_empty() {
            filters.insert("id", vec![id.to_owned()]);
        }
        if running_only {
            filters.insert("status", vec!["running".to_owned()]);
        }
        let options = ListContainersOptionsBuilder::default()
            .all(!running_only)
            .filters(&filters)
            .build();
        let mut listed = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|e| docker_error(format!("listing {kind} containers"), e))?;
        if !rest.is_empty() {
            listed.retain(|c| {
                let (cri_labels, _) = labels::split_labels(&c.labels.clone().unwrap_or_default());
                validate::selected(&cri_labels, &rest)
            });
        }
        Ok(listed)
    }

    /// The shim's containers (not sandboxes) of a sandbox.
    pub(crate) async fn containers_of(&self, sandbox_id: &str) -> Result<Vec<ContainerSummary>> {
        let label = format!("{}={sandbox_id}", labels::SANDBOX_ID_LABEL);
        self.list_kind(labels::TYPE_CONTAINER, &HashMap::new(), [label], "", false)
            .await
    }

    pub(crate) async fn stop_pod_sandbox_impl(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse> {
        let (inspect, containers) = self.sandbox_and_containers(&request.pod_sandbox_id).await;
        let inspect = match inspect {
            Ok(inspect) => inspect,
            // The CRI: StopPodSandbox "must not return an error if all relevant resources
            // have already been reclaimed" — a pod that is gone has nothing left to stop.
            Err(e) if e.is_not_found() => return Ok(StopPodSandboxResponse {}),
            Err(e) => return Err(e),
        };
        let id = inspect.id.clone().unwrap_or_default();
        // The pod's containers stop at once (the kubelet stops them in parallel too), and
        // before the pause container that holds their namespaces.
        all_of(
            containers?.into_iter().filter_map(|c| c.id),
            |cid| async move { self.stop_docker_container(&cid, 0).await },
        )
        .await?;
        // CNI DEL (network.rs) while the pause container still holds the netns; a no-op with
        // Docker's bridge and once done.
        self.teardown_pod_network(&id, Some(&inspect)).await?;
        self.stop_docker_container(&id, 10).await?;
        Ok(StopPodSandboxResponse {})
    }

    /// Inspect sandbox `id` and list its containers: at once (one round trip instead of
    /// two) when `id` is a full ID, else after the inspect resolved a short one.
    async fn sandbox_and_containers(
        &self,
        id: &str,
    ) -> (
        Result<ContainerInspectResponse>,
        Result<Vec<ContainerSummary>>,
    ) {
        if id.len() == 64 {
            return tokio::join!(self.inspect_sandbox(id), self.containers_of(id));
        }
        match self.inspect_sandbox(id).await {
            Ok(inspect) => {
                let listed = self
                    .containers_of(inspect.id.as_deref().unwrap_or_default())
                    .await;
                (Ok(inspect), listed)
            }
            Err(e) => (Err(e), Ok(Vec::new())),
        }
    }

    /// Stop a Docker container, SIGKILL after `grace` seconds; stopped or gone is fine.
    pub(crate) async fn stop_docker_container(&self, id: &str, grace: i64) -> Result<()> {
        let t = grace.clamp(0, i32::MAX as i64) as i32;
        match self
            .docker()
            .stop_container(
                id,
                Some(StopContainerOptionsBuilder::default().t(t).build()),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if status_code(&e) == Some(304) => {}
            Err(e) => return Err(docker_error(format!("stopping container {id}"), e)),
        }
        self.await_listed_stopped(id).await;
        Ok(())
    }

    /// Docker 23 and later can answer a stop before their container list — a copy of the
    /// containers' state that the daemon updates once it has handled the exit — has caught
    /// up: a ListPodSandbox or ListContainers right after the stop could still show the
    /// container running (seen with Docker 26.1). Wait until the list agrees, a few
    /// milliseconds at most in practice, bounded; usually one list call that finds nothing.
    async fn await_listed_stopped(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        let filters = HashMap::from([("id", vec![id]), ("status", vec!["running"])]);
        let options = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        loop {
            match self.docker().list_containers(Some(options.clone())).await {
                Ok(listed) if !listed.is_empty() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                _ => return,
            }
        }
    }

    /// Remove a Docker container by force; gone is fine.
    pub(crate) async fn remove_docker_container(&self, id: &str) -> Result<()> {
        self.inner.logs.stop(id);
        match self
            .docker()
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Docker is already removing it.
            Err(e)
                if status_code(&e) == Some(409)
                    && e.to_string().contains("already in progress") =>
            {
                Ok(())
            }
            Err(e) => Err(docker_error(format!("removing container {id}"), e)),
        }
    }

    pub(crate) async fn remove_pod_sandbox_impl(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        let requested = &request.pod_sandbox_id;
        // A sandbox this process made, on Docker's network (no CNI teardown, which needs the
        // inspect's network namespace), needs no inspect: its containers' list is the only
        // question to ask. Any other is inspected (NotFound, kind, full ID) alongside the list.
        let (id, inspect, containers) =
            if matches!(self.inner.network, crate::NetworkPlugin::Bridge)
                && self.inner.own_sandboxes.get(requested).is_some()
            {
                (requested.clone(), None, self.containers_of(requested).await)
            } else {
                let (inspect, containers) = self.sandbox_and_containers(requested).await;
                let inspect = match inspect {
                    Ok(inspect) => inspect,
                    // Removing what is gone is success (the kubelet retries removals).
                    Err(e) if e.is_not_found() => {
                        // CNI (network.rs): a pause container removed behind our back may still
                        // hold an IP; DEL if due (best effort) and drop its checkpoint.
                        self.forget_sandbox_network(requested).await;
                        return Ok(RemovePodSandboxResponse {});
                    }
                    Err(e) => return Err(e),
                };
                (
                    inspect.id.clone().unwrap_or_default(),
                    Some(inspect),
                    containers,
                )
            };
        all_of(
            containers?.into_iter().filter_map(|c| c.id),
            |cid| async move { self.remove_docker_container(&cid).await },
        )
        .await?;
        // CNI DEL if the pod was not stopped first (network.rs; best effort, as the pod goes).
        if let Some(inspect) = &inspect
            && let Err(e) = self.teardown_pod_network(&id, Some(inspect)).await
        {
            tracing::warn!(sandbox = %id, "removing the pod anyway: {e}");
        }
        self.remove_docker_container(&id).await?;
        self.inner.checkpoints.remove(&id).await?;
        self.inner.own_sandboxes.remove(&id);
        Ok(RemovePodSandboxResponse {})
    }

    pub(crate) async fn pod_sandbox_status_impl(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        let inspect = self.inspect_sandbox(&request.pod_sandbox_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let name = inspect.name.clone().unwrap_or_default();
        let metadata = labels::parse_sandbox_name(&name).map_err(|e| {
            Error::with_source(
                ErrorKind::Internal,
                format!("sandbox {id} has a foreign name"),
                e,
            )
        })?;
        let host = inspect.host_config.clone().unwrap_or_default();
        let host_network = host.network_mode.as_deref() == Some("host");
        let checkpoint = self
            .inner
            .checkpoints
            .read(&id)
            .await
            .unwrap_or_default()
            .unwrap_or_default();
        // Ready: the pause container runs and RunPodSandbox finished every setup step (for a
        // sandbox anycri made with the ready mark; cri-dockerd's are Ready when running).
        let marked = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .is_some_and(|l| l.contains_key(labels::STATE_DIR_LABEL));
        let running = inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
            && (!marked || checkpoint.setup_complete());
        let ip = if !running || host_network {
            String::new()
        } else if !checkpoint.pod_ip.is_empty() {
            checkpoint.pod_ip.clone()
        } else {
            inspect
                .network_settings
                .as_ref()
                .and_then(|n| n.networks.as_ref())
                .and_then(|n| {
                    n.values()
                        .find_map(|e| e.ip_address.clone().filter(|ip| !ip.is_empty()))
                })
                .unwrap_or_default()
        };
        let docker_labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let (labels, annotations) = labels::split_labels(&docker_labels);
        let namespaces = NamespaceOption {
            network: namespace_mode(host_network),
            pid: if host.pid_mode.as_deref() == Some("host") {
                NamespaceMode::Node as i32
            } else {
                NamespaceMode::Container as i32
            },
            ipc: namespace_mode(host.ipc_mode.as_deref() == Some("host")),
            ..Default::default()
        };
        let mut info = HashMap::new();
        if request.verbose {
            info.insert(
                "info".to_owned(),
                serde_json::json!({
                    "pid": inspect.state.as_ref().and_then(|s| s.pid),
                    "image": inspect.config.as_ref().and_then(|c| c.image.clone()),
                    "checkpoint": checkpoint,
                    "logDirectory": docker_labels.get(labels::LOG_DIRECTORY_LABEL),
                })
                .to_string(),
            );
        }
        Ok(PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                id,
                metadata: Some(metadata),
                state: if running {
                    PodSandboxState::SandboxReady
                } else {
                    PodSandboxState::SandboxNotready
                } as i32,
                created_at: inspect.created.as_deref().map(rfc3339_nanos).unwrap_or(0),
                network: Some(PodSandboxNetworkStatus {
                    ip,
                    additional_ips: Vec::new(),
                }),
                linux: Some(LinuxPodSandboxStatus {
                    namespaces: Some(Namespace {
                        options: Some(namespaces),
                    }),
                }),
                labels,
                annotations,
                runtime_handler: String::new(),
            }),
            info,
            containers_statuses: Vec::new(),
            timestamp: chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        })
    }

    pub(crate) async fn list_pod_sandbox_impl(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse> {
        let filter = request.filter.unwrap_or_default();
        let summaries = self
            .list_kind(
                labels::TYPE_SANDBOX,
                &filter.label_selector,
                [],
                &filter.id,
                false,
            )
            .await?;
        let want_state = filter.state.map(|s| s.state);
        // Ready needs the checkpoint's mark too (checkpoint.rs) for sandboxes made with it: one
        // small file read per running sandbox, all at once.
        let complete: HashSet<String> = futures::future::join_all(
            summaries
                .iter()
                .filter(|s| s.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
                .filter_map(|s| {
                    let marked = s
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(labels::STATE_DIR_LABEL));
                    Some((s.id.clone()?, marked))
                })
                .map(|(id, marked)| async move {
                    let done = !marked
                        || matches!(
                            self.inner.checkpoints.read(&id).await,
                            Ok(Some(cp)) if cp.setup_complete()
                        );
                    done.then_some(id)
                }),
        )
        .await
        .into_iter()
        .flatten()
        .collect();
        let mut items: Vec<PodSandbox> = summaries
            .into_iter()
            .filter_map(|s| {
                let name = s.names.as_ref()?.first()?.clone();
                // Foreign containers that happen to carry the label are skipped, not fatal.
                let metadata = labels::parse_sandbox_name(&name).ok()?;
                let running = s.id.as_ref().is_some_and(|id| complete.contains(id));
                let state = if running {
                    PodSandboxState::SandboxReady
                } else {
                    PodSandboxState::SandboxNotready
                } as i32;
                if want_state.is_some_and(|w| w != state) {
                    return None;
                }
                let (labels, annotations) = labels::split_labels(&s.labels.unwrap_or_default());
                Some(PodSandbox {
                    id: s.id?,
                    metadata: Some(metadata),
                    state,
                    created_at: s.created.unwrap_or(0).saturating_mul(1_000_000_000),
                    labels,
                    annotations,
                    runtime_handler: String::new(),
                })
            })
            .collect();
        items.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(ListPodSandboxResponse { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_capability_masks() {
        let status = "Name:\tx\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n";
        let eff = status_mask(status, "CapEff:").unwrap();
        assert_eq!(eff & (1 << CAP_SYS_RESOURCE), 0);
        assert_ne!(eff & 1, 0);
    }

    #[tokio::test]
    async fn all_of_runs_every_item_and_reports_the_first_error() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let done = AtomicUsize::new(0);
        let r = all_of(0..5, |i| {
            let done = &done;
            async move {
                tokio::task::yield_now().await;
                done.fetch_add(1, Ordering::SeqCst);
                if i % 2 == 1 {
                    Err(Error::not_found(format!("item {i}")))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        // Every item ran, also after the first failure, and the error is the first one's.
        assert_eq!(done.load(Ordering::SeqCst), 5);
        assert_eq!(r.unwrap_err().message(), "item 1");
        all_of(Vec::<u32>::new(), |_| async { Ok(()) })
            .await
            .unwrap();
    }

    #[test]
    fn docker_times() {
        assert_eq!(rfc3339_nanos("0001-01-01T00:00:00Z"), 0);
        assert_eq!(
            rfc3339_nanos("2024-01-01T00:00:00.5Z"),
            1_704_067_200_500_000_000
        );
        assert_eq!(rfc3339_nanos("garbage"), 0);
    }
}
