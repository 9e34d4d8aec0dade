//! An in-memory container runtime with real CRI semantics, for tool authors' tests and
//! anycri's own. [`FakeRuntime`] implements [`RuntimeService`] and [`ImageService`] with
//! sandbox and container state machines, every list filter and label selectors, idempotent
//! stop and remove, NotFound for unknown IDs, images with tags and digests, container events,
//! CRI-format log files, and commands "run" by a pluggable [`ExecHandler`].
//!
//! There are no processes: a container's main command and ExecSync go through the handler
//! ([`ShellExec`] by default). Exec, Attach, PortForward, CheckpointContainer and the
//! metrics RPCs return `Unimplemented`, as a runtime without them would.
//!
//! A tool's test: seed the fake, run the tool's code against it, look at what it left.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
//! use anycri_fake::FakeRuntime;
//!
//! /// The tool under test: removes the exited containers of a pod.
//! async fn prune(runtime: &dyn RuntimeService, pod: &str) -> anycri_core::Result<usize> {
//!     let filter = ContainerFilter {
//!         pod_sandbox_id: pod.into(),
//!         state: Some(ContainerStateValue { state: ContainerState::ContainerExited as i32 }),
//!         ..Default::default()
//!     };
//!     let exited = runtime.list_containers(ListContainersRequest { filter: Some(filter) }).await?;
//!     for c in &exited.containers {
//!         runtime.remove_container(RemoveContainerRequest { container_id: c.id.clone() }).await?;
//!     }
//!     Ok(exited.containers.len())
//! }
//!
//! let fake = FakeRuntime::new();
//! fake.add_image("busybox:1.36")?;
//! let pod = PodSandboxConfigBuilder::new("web", "default").build();
//! let pod_id = fake.run_pod(pod.clone()).await?;
//! for (name, cmd) in [("server", "sleep 3600"), ("migrate", "true"), ("seed", "exit 1")] {
//!     let config = ContainerConfigBuilder::new(name, "busybox:1.36").command(cmd.split(' ')).build();
//!     fake.create_and_start_container(&pod_id, &pod, config).await?;
//! }
//!
//! assert_eq!(prune(&fake, &pod_id).await?, 2);
//! let left = fake.list_containers(ListContainersRequest::default()).await?.containers;
//! assert_eq!(left.len(), 1);
//! assert_eq!(left[0].metadata.as_ref().unwrap().name, "server");
//! # Ok(()) }
//! ```

mod exec;
mod images;

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use anycri_core::{
    Error, Result,
    api::*,
    list_stream,
    logs::{LogStream, append_output},
    service::{CriStream, ImageService, RuntimeService},
};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;

pub use exec::{ExecHandler, ExecResult, ShellExec};
use images::ImageStore;

/// The name the fake reports in `Version`.
pub const RUNTIME_NAME: &str = "anycri-fake";

const BACKEND: &str = "anycri-fake";

struct Sandbox {
    id: String,
    config: PodSandboxConfig,
    state: PodSandboxState,
    created_at: i64,
    ip: String,
    runtime_handler: String,
}

struct Container {
    id: String,
    pod_sandbox_id: String,
    config: ContainerConfig,
    image_id: String,
    image_ref: String,
    state: ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
    log_path: String,
    resources: Option<LinuxContainerResources>,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, Container>,
    images: ImageStore,
    next_ip: u32,
    pod_cidr: String,
}

/// The in-memory runtime. Cheap to clone (shared state).
///
/// Clones share one state: hand one clone to the code under test (as
/// `Arc<dyn RuntimeService>`) and keep another to seed it and look inside.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::sync::Arc;
/// use anycri_core::{ImageService, ImageServiceExt, RuntimeService};
/// use anycri_fake::FakeRuntime;
/// let fake = FakeRuntime::new();
/// let runtime: Arc<dyn RuntimeService> = Arc::new(fake.clone());
/// let images: Arc<dyn ImageService> = Arc::new(fake.clone());
/// fake.add_image("registry.local/app:2.0")?;
/// assert!(images.find_image("registry.local/app:2.0").await?.is_some());
/// assert_eq!(runtime.version(Default::default()).await?.runtime_name, anycri_fake::RUNTIME_NAME);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    exec: Arc<dyn ExecHandler>,
    events: broadcast::Sender<ContainerEventResponse>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakeRuntime")
            .field("sandboxes", &s.sandboxes.len())
            .field("containers", &s.containers.len())
            .finish()
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

fn new_id(seed: &str) -> String {
    // 64 hex digits, unique per call: the seed, the time and a counter through two hashers.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut out = String::with_capacity(64);
    for round in 0..4u64 {
        let mut h = DefaultHasher::new();
        (seed, now_nanos(), n, round).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn not_found(what: &str, id: &str) -> Error {
    Error::not_found(format!("{what} {id:?} not found"))
}

fn require(value: &str, field: &str) -> Result<()> {
    if value.is_empty() {
        Err(Error::invalid_argument(format!(
            "{field} must not be empty"
        )))
    } else {
        Ok(())
    }
}

fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Resolve a full ID or a unique prefix among `ids`.
fn resolve<'a>(ids: impl Iterator<Item = &'a String>, wanted: &str) -> Option<String> {
    let mut found = None;
    for id in ids {
        if id == wanted {
            return Some(id.clone());
        }
        if id.starts_with(wanted) {
            if found.is_some() {
                return None;
            }
            found = Some(id.clone());
        }
    }
    found
}

impl FakeRuntime {
    /// An empty runtime whose commands run through [`ShellExec`].
    pub fn new() -> Self {
        Self::with_exec_handler(ShellExec)
    }

    /// An empty runtime whose commands run through `handler`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::time::Duration;
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt};
    /// use anycri_fake::{ExecHandler, ExecResult, FakeRuntime, ShellExec};
    ///
    /// /// A health check that fails: `/healthz` exits 1, everything else as the shell would.
    /// struct Unhealthy;
    /// #[async_trait::async_trait]
    /// impl ExecHandler for Unhealthy {
    ///     async fn run(&self, container_id: &str, cmd: &[String]) -> ExecResult {
    ///         match cmd.first().map(String::as_str) {
    ///             Some("/healthz") => ExecResult { stdout: b"db down\n".to_vec(), exit_code: 1, ..Default::default() },
    ///             _ => ShellExec.run(container_id, cmd).await,
    ///         }
    ///     }
    /// }
    ///
    /// let fake = FakeRuntime::with_exec_handler(Unhealthy);
    /// fake.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = fake.run_pod_and_container(pod, app.build()).await?;
    /// let probe = fake.exec_collect(&ids.container_id, &["/healthz"], Duration::from_secs(1)).await?;
    /// assert_eq!((probe.exit_code, probe.stdout_str().as_str()), (1, "db down\n"));
    /// # Ok(()) }
    /// ```
    pub fn with_exec_handler(handler: impl ExecHandler + 'static) -> Self {
        let (events, _) = broadcast::channel(1024);
        FakeRuntime {
            state: Arc::new(Mutex::new(State::default())),
            exec: Arc::new(handler),
            events,
        }
    }

    /// Make `reference` (e.g. `registry.local/app:1.0`) pullable and present, as if pulled;
    /// returns the image ID.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::ImageServiceExt;
    /// let fake = anycri_fake::FakeRuntime::new();
    /// let id = fake.add_image("busybox:1.36")?;
    /// // Normalised as runtimes do: `busybox:1.36` is `docker.io/library/busybox:1.36`.
    /// let image = fake.find_image("docker.io/library/busybox:1.36").await?.expect("present");
    /// assert_eq!(image.id, id);
    /// assert!(fake.add_image("Not A Reference").is_err());
    /// # Ok(()) }
    /// ```
    pub fn add_image(&self, reference: &str) -> Result<String> {
        self.lock().images.pull(reference)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every later call, so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, state: &State, container_id: &str, kind: ContainerEventType) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let Some(c) = state.containers.get(container_id) else {
            return;
        };
        let pod_status = state.sandboxes.get(&c.pod_sandbox_id).map(sandbox_status);
        let _ = self.events.send(ContainerEventResponse {
            container_id: container_id.to_owned(),
            container_event_type: kind as i32,
            created_at: now_nanos(),
            pod_sandbox_status: pod_status,
            containers_statuses: vec![container_status(c)],
        });
    }

    fn sandbox_id(state: &State, id: &str) -> Result<String> {
        require(id, "pod_sandbox_id")?;
        resolve(state.sandboxes.keys(), id).ok_or_else(|| not_found("pod sandbox", id))
    }

    fn container_id(state: &State, id: &str) -> Result<String> {
        require(id, "container_id")?;
        resolve(state.containers.keys(), id).ok_or_else(|| not_found("container", id))
    }

    fn stop_container_locked(&self, state: &mut State, id: &str) {
        let Some(c) = state.containers.get_mut(id) else {
            return;
        };
        if c.state == ContainerState::ContainerRunning {
            c.state = ContainerState::ContainerExited;
            c.finished_at = now_nanos();
            c.exit_code = 137;
            c.reason = "Error".into();
            self.emit(state, id, ContainerEventType::ContainerStoppedEvent);
        }
    }

    fn list_containers_locked(state: &State, filter: Option<&ContainerFilter>) -> Vec<Container_> {
        let mut out: Vec<_> = state
            .containers
            .values()
            .filter(|c| match filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || c.id.starts_with(&f.id))
                        && (f.pod_sandbox_id.is_empty()
                            || c.pod_sandbox_id.starts_with(&f.pod_sandbox_id))
                        && f.state.as_ref().is_none_or(|s| s.state == c.state as i32)
                        && labels_match(&c.config.labels, &f.label_selector)
                }
            })
            .map(container_summary)
            .collect();
        out.sort_by_key(|c| c.created_at);
        out
    }

    fn list_sandboxes_locked(state: &State, filter: Option<&PodSandboxFilter>) -> Vec<PodSandbox> {
        let mut out: Vec<_> = state
            .sandboxes
            .values()
            .filter(|s| match filter {
                None => true,
                Some(f) => {
                    (f.id.is_empty() || s.id.starts_with(&f.id))
                        && f.state.as_ref().is_none_or(|st| st.state == s.state as i32)
                        && labels_match(&s.config.labels, &f.label_selector)
                }
            })
            .map(|s| PodSandbox {
                id: s.id.clone(),
                metadata: s.config.metadata.clone(),
                state: s.state as i32,
                created_at: s.created_at,
                labels: s.config.labels.clone(),
                annotations: s.config.annotations.clone(),
                runtime_handler: s.runtime_handler.clone(),
            })
            .collect();
        out.sort_by_key(|s| s.created_at);
        out
    }

    fn container_stats_locked(state: &State, c: &Container) -> ContainerStats {
        let ts = now_nanos();
        let running = c.state == ContainerState::ContainerRunning;
        // Synthetic but stable usage: a running container "uses" a little CPU and memory.
        let (cpu, mem) = if running {
            ((ts - c.started_at).max(0) as u64 / 1000, 1 << 20)
        } else {
            (0, 0)
        };
        let _ = state;
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: c.id.clone(),
                metadata: c.config.metadata.clone(),
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
            }),
            cpu: Some(CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: Some(UInt64Value { value: cpu }),
                usage_nano_cores: Some(UInt64Value {
                    value: if running { 1000 } else { 0 },
                }),
                psi: None,
            }),
            memory: Some(MemoryUsage {
                timestamp: ts,
                working_set_bytes: Some(UInt64Value { value: mem }),
                usage_bytes: Some(UInt64Value { value: mem }),
                rss_bytes: Some(UInt64Value { value: mem }),
                ..Default::default()
            }),
            writable_layer: Some(FilesystemUsage {
                timestamp: ts,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: "/fake".into(),
                }),
                used_bytes: Some(UInt64Value { value: 4096 }),
                inodes_used: Some(UInt64Value { value: 1 }),
            }),
            ..Default::default()
        }
    }

    fn pod_stats_locked(state: &State, s: &Sandbox) -> PodSandboxStats {
        let containers: Vec<_> = state
            .containers
            .values()
            .filter(|c| c.pod_sandbox_id == s.id)
            .map(|c| Self::container_stats_locked(state, c))
            .collect();
        let ts = now_nanos();
        let sum = |f: fn(&ContainerStats) -> u64| containers.iter().map(f).sum::<u64>();
        let cpu = sum(|c| {
            c.cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds)
                .map_or(0, |v| v.value)
        });
        let mem = sum(|c| {
            c.memory
                .as_ref()
                .and_then(|m| m.working_set_bytes)
                .map_or(0, |v| v.value)
        });
        PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: s.id.clone(),
                metadata: s.config.metadata.clone(),
                labels: s.config.labels.clone(),
                annotations: s.config.annotations.clone(),
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: Some(CpuUsage {
                    timestamp: ts,
                    usage_core_nano_seconds: Some(UInt64Value { value: cpu }),
                    usage_nano_cores: None,
                    psi: None,
                }),
                memory: Some(MemoryUsage {
                    timestamp: ts,
                    working_set_bytes: Some(UInt64Value { value: mem }),
                    ..Default::default()
                }),
                containers,
                ..Default::default()
            }),
            windows: None,
        }
    }

    /// Write `result`'s output to the container's log file, one CRI entry per line.
    fn write_log(path: &str, result: &ExecResult) {
        if path.is_empty() {
            return;
        }
        let now = chrono::Utc::now();
        let mut text = Vec::new();
        for (stream, bytes) in [
            (LogStream::Stdout, &result.stdout),
            (LogStream::Stderr, &result.stderr),
        ] {
            let s = String::from_utf8_lossy(bytes);
            append_output(&mut text, &now, stream, s.as_bytes());
        }
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = f.write_all(&text);
        }
    }
}

/// `Container` is taken by our own record type; the CRI message is re-named here.
type Container_ = anycri_core::api::Container;

fn container_summary(c: &Container) -> Container_ {
    Container_ {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_sandbox_id.clone(),
        metadata: c.config.metadata.clone(),
        image: c.config.image.clone(),
        image_ref: c.image_ref.clone(),
        state: c.state as i32,
        created_at: c.created_at,
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        image_id: c.image_id.clone(),
    }
}

fn container_status(c: &Container) -> ContainerStatus {
    ContainerStatus {
        id: c.id.clone(),
        metadata: c.config.metadata.clone(),
        state: c.state as i32,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        image: c.config.image.clone(),
        image_ref: c.image_ref.clone(),
        reason: c.reason.clone(),
        message: String::new(),
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
        mounts: c.config.mounts.clone(),
        log_path: c.log_path.clone(),
        resources: c.resources.clone().map(|linux| ContainerResources {
            linux: Some(linux),
            windows: None,
        }),
        image_id: c.image_id.clone(),
        ..Default::default()
    }
}

fn sandbox_status(s: &Sandbox) -> PodSandboxStatus {
    let ns = s
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|sc| sc.namespace_options.clone());
    PodSandboxStatus {
        id: s.id.clone(),
        metadata: s.config.metadata.clone(),
        state: s.state as i32,
        created_at: s.created_at,
        network: Some(PodSandboxNetworkStatus {
            ip: s.ip.clone(),
            additional_ips: Vec::new(),
        }),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace { options: ns }),
        }),
        labels: s.config.labels.clone(),
        annotations: s.config.annotations.clone(),
        runtime_handler: s.runtime_handler.clone(),
    }
}

#[async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self, _request: VersionRequest) -> Result<VersionResponse> {
        Ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::invalid_argument("config must be set"))?;
        let meta = config
            .metadata
            .as_ref()
            .ok_or_else(|| Error::invalid_argument("config.metadata must be set"))?;
        require(&meta.name, "config.metadata.name")?;
        require(&meta.namespace, "config.metadata.namespace")?;
        require(&meta.uid, "config.metadata.uid")?;
        if !["", "runc"].contains(&request.runtime_handler.as_str()) {
            return Err(Error::invalid_argument(format!(
                "no runtime for handler {:?} is configured",
                request.runtime_handler
            )));
        }
        let mut state = self.lock();
        if state
            .sandboxes
            .values()
            .any(|s| s.config.metadata.as_ref() == Some(meta))
        {
            return Err(Error::already_exists(format!(
                "pod sandbox {}/{} (uid {}, attempt {}) already exists",
                meta.namespace, meta.name, meta.uid, meta.attempt
            )));
        }
        let id = new_id(&meta.uid);
        state.next_ip += 1;
        let n = state.next_ip;
        let ip = if anycri_core::builders::is_host_network(&config) {
            String::new()
        } else {
            format!("10.88.{}.{}", (n >> 8) & 0xff, n & 0xff)
        };
        state.sandboxes.insert(
            id.clone(),
            Sandbox {
                id: id.clone(),
                config,
                state: PodSandboxState::SandboxReady,
                created_at: now_nanos(),
                ip,
                runtime_handler: request.runtime_handler,
            },
        );
        Ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    async fn stop_pod_sandbox(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse> {
        let mut state = self.lock();
        // Stopping what is gone succeeds: the CRI says StopPodSandbox "must not return an
        // error if all relevant resources have already been reclaimed".
        let id = match Self::sandbox_id(&state, &request.pod_sandbox_id) {
            Err(e) if e.is_not_found() => {
                return Ok(StopPodSandboxResponse {});
            }
            other => other?,
        };
        let containers: Vec<String> = state
            .containers
            .values()
            .filter(|c| c.pod_sandbox_id == id)
            .map(|c| c.id.clone())
            .collect();
        for c in containers {
            self.stop_container_locked(&mut state, &c);
        }
        if let Some(s) = state.sandboxes.get_mut(&id) {
            s.state = PodSandboxState::SandboxNotready;
            s.ip.clear();
        }
        Ok(StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        require(&request.pod_sandbox_id, "pod_sandbox_id")?;
        let mut state = self.lock();
        // Removing what is gone already is success (the kubelet retries removals).
        let Some(id) = resolve(state.sandboxes.keys(), &request.pod_sandbox_id) else {
            return Ok(RemovePodSandboxResponse {});
        };
        let containers: Vec<String> = state
            .containers
            .values()
            .filter(|c| c.pod_sandbox_id == id)
            .map(|c| c.id.clone())
            .collect();
        for c in containers {
            self.stop_container_locked(&mut state, &c);
            self.emit(&state, &c, ContainerEventType::ContainerDeletedEvent);
            state.containers.remove(&c);
        }
        state.sandboxes.remove(&id);
        Ok(RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        let state = self.lock();
        let id = Self::sandbox_id(&state, &request.pod_sandbox_id)?;
        let s = &state.sandboxes[&id];
        let containers_statuses = state
            .containers
            .values()
            .filter(|c| c.pod_sandbox_id == id)
            .map(container_status)
            .collect();
        let mut info = HashMap::new();
        if request.verbose {
            info.insert(
                "info".to_owned(),
                format!("{{\"runtime\":\"{RUNTIME_NAME}\"}}"),
            );
        }
        Ok(PodSandboxStatusResponse {
            status: Some(sandbox_status(s)),
            info,
            containers_statuses,
            timestamp: now_nanos(),
        })
    }

    async fn list_pod_sandbox(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse> {
        let state = self.lock();
        Ok(ListPodSandboxResponse {
            items: Self::list_sandboxes_locked(&state, request.filter.as_ref()),
        })
    }

    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::invalid_argument("config must be set"))?;
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::invalid_argument("config.metadata must be set"))?;
        require(&meta.name, "config.metadata.name")?;
        let image = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        require(&image, "config.image.image")?;
        let sc = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        if sc.is_some_and(|sc| {
            sc.run_as_group.is_some() && sc.run_as_user.is_none() && sc.run_as_username.is_empty()
        }) {
            return Err(Error::invalid_argument(
                "linux.security_context.run_as_group is set without run_as_user or run_as_username",
            ));
        }
        let mut state = self.lock();
        let pod_id = Self::sandbox_id(&state, &request.pod_sandbox_id)?;
        let sandbox = &state.sandboxes[&pod_id];
        if sandbox.state != PodSandboxState::SandboxReady {
            return Err(Error::failed_precondition(format!(
                "pod sandbox {pod_id} is not ready"
            )));
        }
        let log_dir = sandbox.config.log_directory.clone();
        if state
            .containers
            .values()
            .any(|c| c.pod_sandbox_id == pod_id && c.config.metadata.as_ref() == Some(&meta))
        {
            return Err(Error::already_exists(format!(
                "container {} (attempt {}) already exists in pod sandbox {pod_id}",
                meta.name, meta.attempt
            )));
        }
        let found = state
            .images
            .status(&image)
            .ok_or_else(|| Error::not_found(format!("image {image:?} not found")))?;
        let log_path = anycri_core::kubelet::log_file_path(&log_dir, &config.log_path)?
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = new_id(&meta.name);
        let resources = config.linux.as_ref().and_then(|l| l.resources.clone());
        state.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                pod_sandbox_id: pod_id,
                image_ref: found
                    .repo_digests
                    .first()
                    .cloned()
                    .unwrap_or_else(|| found.id.clone()),
                image_id: found.id,
                config,
                state: ContainerState::ContainerCreated,
                created_at: now_nanos(),
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
                log_path,
                resources,
            },
        );
        self.emit(&state, &id, ContainerEventType::ContainerCreatedEvent);
        Ok(CreateContainerResponse { container_id: id })
    }

    async fn start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse> {
        let (id, argv, log_path) = {
            let state = self.lock();
            let id = Self::container_id(&state, &request.container_id)?;
            let c = &state.containers[&id];
            if c.state != ContainerState::ContainerCreated {
                return Err(Error::failed_precondition(format!(
                    "container {id} is in state {}, not CONTAINER_CREATED",
                    c.state.as_str_name()
                )));
            }
            let mut argv = c.config.command.clone();
            argv.extend(c.config.args.iter().cloned());
            (id, argv, c.log_path.clone())
        };
        let result = if argv.is_empty() {
            // The image's default command: a long-running shell in the real test image.
            ExecResult {
                sleeping: Some(std::time::Duration::MAX),
                ..Default::default()
            }
        } else {
            self.exec.run(&id, &argv).await
        };
        Self::write_log(&log_path, &result);
        let mut state = self.lock();
        let c = state
            .containers
            .get_mut(&id)
            .ok_or_else(|| not_found("container", &id))?;
        if c.state != ContainerState::ContainerCreated {
            return Err(Error::failed_precondition(format!(
                "container {id} changed state while starting"
            )));
        }
        c.started_at = now_nanos();
        c.state = ContainerState::ContainerRunning;
        self.emit(&state, &id, ContainerEventType::ContainerStartedEvent);
        if result.sleeping.is_none() {
            let c = state
                .containers
                .get_mut(&id)
                .expect("present: checked above under the same lock");
            c.state = ContainerState::ContainerExited;
            c.finished_at = now_nanos();
            c.exit_code = result.exit_code;
            c.reason = if result.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            }
            .into();
            self.emit(&state, &id, ContainerEventType::ContainerStoppedEvent);
        }
        Ok(StartContainerResponse {})
    }

    async fn stop_container(&self, request: StopContainerRequest) -> Result<StopContainerResponse> {
        let mut state = self.lock();
        let id = match Self::container_id(&state, &request.container_id) {
            // As StopPodSandbox: a container that is gone has nothing left to stop.
            Err(e) if e.is_not_found() => {
                return Ok(StopContainerResponse {});
            }
            other => other?,
        };
        self.stop_container_locked(&mut state, &id);
        Ok(StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse> {
        require(&request.container_id, "container_id")?;
        let mut state = self.lock();
        let Some(id) = resolve(state.containers.keys(), &request.container_id) else {
            return Ok(RemoveContainerResponse {});
        };
        self.stop_container_locked(&mut state, &id);
        self.emit(&state, &id, ContainerEventType::ContainerDeletedEvent);
        state.containers.remove(&id);
        Ok(RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse> {
        let state = self.lock();
        Ok(ListContainersResponse {
            containers: Self::list_containers_locked(&state, request.filter.as_ref()),
        })
    }

    async fn container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse> {
        let state = self.lock();
        let id = Self::container_id(&state, &request.container_id)?;
        let mut info = HashMap::new();
        if request.verbose {
            info.insert(
                "info".to_owned(),
                format!("{{\"runtime\":\"{RUNTIME_NAME}\"}}"),
            );
        }
        Ok(ContainerStatusResponse {
            status: Some(container_status(&state.containers[&id])),
            info,
        })
    }

    async fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        let mut state = self.lock();
        let id = Self::container_id(&state, &request.container_id)?;
        let c = state
            .containers
            .get_mut(&id)
            .expect("resolved under the same lock");
        if c.state == ContainerState::ContainerExited {
            return Err(Error::failed_precondition(format!(
                "container {id} has exited"
            )));
        }
        if let Some(linux) = request.linux {
            c.resources = Some(linux);
        }
        Ok(UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        let state = self.lock();
        let id = Self::container_id(&state, &request.container_id)?;
        let c = &state.containers[&id];
        if c.state != ContainerState::ContainerRunning {
            return Err(Error::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        if !c.log_path.is_empty() {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&c.log_path);
        }
        Ok(ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse> {
        if request.cmd.is_empty() {
            return Err(Error::invalid_argument("cmd must not be empty"));
        }
        let id = {
            let state = self.lock();
            let id = Self::container_id(&state, &request.container_id)?;
            if state.containers[&id].state != ContainerState::ContainerRunning {
                return Err(Error::failed_precondition(format!(
                    "container {id} is not running"
                )));
            }
            id
        };
        let result = self.exec.run(&id, &request.cmd).await;
        if let Some(sleep) = result.sleeping {
            // The command blocks: it ends after its sleep, or is killed at the timeout.
            let timeout = std::time::Duration::from_secs(request.timeout.max(0) as u64);
            if request.timeout > 0 && sleep > timeout {
                tokio::time::sleep(timeout).await;
                return Err(Error::deadline_exceeded(format!(
                    "command {:?} timed out after {}s",
                    request.cmd, request.timeout
                )));
            }
            tokio::time::sleep(sleep.min(std::time::Duration::from_secs(3600))).await;
        }
        Ok(ExecSyncResponse {
            stdout: result.stdout,
            stderr: result.stderr,
            exit_code: result.exit_code,
        })
    }

    async fn exec(&self, _request: ExecRequest) -> Result<ExecResponse> {
        Err(Error::unimplemented("Exec", BACKEND))
    }

    async fn attach(&self, _request: AttachRequest) -> Result<AttachResponse> {
        Err(Error::unimplemented("Attach", BACKEND))
    }

    async fn port_forward(&self, _request: PortForwardRequest) -> Result<PortForwardResponse> {
        Err(Error::unimplemented("PortForward", BACKEND))
    }

    async fn container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse> {
        let state = self.lock();
        let id = Self::container_id(&state, &request.container_id)?;
        Ok(ContainerStatsResponse {
            stats: Some(Self::container_stats_locked(&state, &state.containers[&id])),
        })
    }

    async fn list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        let state = self.lock();
        let f = request.filter.unwrap_or_default();
        let mut stats: Vec<_> = state
            .containers
            .values()
            .filter(|c| {
                c.state == ContainerState::ContainerRunning
                    && (f.id.is_empty() || c.id.starts_with(&f.id))
                    && (f.pod_sandbox_id.is_empty()
                        || c.pod_sandbox_id.starts_with(&f.pod_sandbox_id))
                    && labels_match(&c.config.labels, &f.label_selector)
            })
            .map(|c| Self::container_stats_locked(&state, c))
            .collect();
        stats.sort_by(|a, b| {
            a.attributes
                .as_ref()
                .map(|a| &a.id)
                .cmp(&b.attributes.as_ref().map(|b| &b.id))
        });
        Ok(ListContainerStatsResponse { stats })
    }

    async fn pod_sandbox_stats(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        let state = self.lock();
        let id = Self::sandbox_id(&state, &request.pod_sandbox_id)?;
        Ok(PodSandboxStatsResponse {
            stats: Some(Self::pod_stats_locked(&state, &state.sandboxes[&id])),
        })
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        let state = self.lock();
        let f = request.filter.unwrap_or_default();
        let stats = state
            .sandboxes
            .values()
            .filter(|s| {
                s.state == PodSandboxState::SandboxReady
                    && (f.id.is_empty() || s.id.starts_with(&f.id))
                    && labels_match(&s.config.labels, &f.label_selector)
            })
            .map(|s| Self::pod_stats_locked(&state, s))
            .collect();
        Ok(ListPodSandboxStatsResponse { stats })
    }

    async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse> {
        let cidr = request
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        self.lock().pod_cidr = cidr;
        Ok(UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, request: StatusRequest) -> Result<StatusResponse> {
        let condition = |kind: &str| RuntimeCondition {
            r#type: kind.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        let mut info = HashMap::new();
        if request.verbose {
            let pod_cidr = self.lock().pod_cidr.clone();
            info.insert("config".to_owned(), format!("{{\"podCIDR\":{pod_cidr:?}}}"));
        }
        Ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![condition("RuntimeReady"), condition("NetworkReady")],
            }),
            info,
            runtime_handlers: ["", "runc"]
                .into_iter()
                .map(|name| RuntimeHandler {
                    name: name.into(),
                    features: Some(RuntimeHandlerFeatures {
                        recursive_read_only_mounts: false,
                        user_namespaces: false,
                    }),
                })
                .collect(),
            features: Some(RuntimeFeatures {
                supplemental_groups_policy: false,
                ..Default::default()
            }),
        })
    }

    async fn checkpoint_container(
        &self,
        _request: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse> {
        Err(Error::unimplemented("CheckpointContainer", BACKEND))
    }

    async fn get_container_events(
        &self,
        _request: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>> {
        let rx = self.events.subscribe();
        Ok(tokio_stream::wrappers::BroadcastStream::new(rx)
            .filter_map(|item| async move {
                match item {
                    Ok(event) => Some(Ok(event)),
                    // A slow reader lost events; tell it rather than skip silently.
                    Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                        Some(Err(Error::data_loss(format!(
                            "{n} container events were dropped"
                        ))))
                    }
                }
            })
            .boxed())
    }

    async fn list_metric_descriptors(
        &self,
        _request: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse> {
        Err(Error::unimplemented("ListMetricDescriptors", BACKEND))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse> {
        Err(Error::unimplemented("ListPodSandboxMetrics", BACKEND))
    }

    async fn runtime_config(
        &self,
        _request: RuntimeConfigRequest,
    ) -> Result<RuntimeConfigResponse> {
        Ok(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: CgroupDriver::Cgroupfs as i32,
            }),
        })
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse> {
        let state = self.lock();
        Self::sandbox_id(&state, &request.pod_sandbox_id)?;
        Ok(UpdatePodSandboxResourcesResponse {})
    }

    async fn stream_pod_sandboxes(
        &self,
        request: StreamPodSandboxesRequest,
    ) -> Result<CriStream<StreamPodSandboxesResponse>> {
        let items = self
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: request.filter,
            })
            .await?
            .items;
        Ok(list_stream(items, |pod_sandboxes| {
            StreamPodSandboxesResponse { pod_sandboxes }
        }))
    }

    async fn stream_containers(
        &self,
        request: StreamContainersRequest,
    ) -> Result<CriStream<StreamContainersResponse>> {
        let items = self
            .list_containers(ListContainersRequest {
                filter: request.filter,
            })
            .await?
            .containers;
        Ok(list_stream(items, |containers| StreamContainersResponse {
            containers,
        }))
    }

    async fn stream_container_stats(
        &self,
        request: StreamContainerStatsRequest,
    ) -> Result<CriStream<StreamContainerStatsResponse>> {
        let items = self
            .list_container_stats(ListContainerStatsRequest {
                filter: request.filter,
            })
            .await?
            .stats;
        Ok(list_stream(items, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        }))
    }

    async fn stream_pod_sandbox_stats(
        &self,
        request: StreamPodSandboxStatsRequest,
    ) -> Result<CriStream<StreamPodSandboxStatsResponse>> {
        let items = self
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: request.filter,
            })
            .await?
            .stats;
        Ok(list_stream(items, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    }

    async fn stream_pod_sandbox_metrics(
        &self,
        _request: StreamPodSandboxMetricsRequest,
    ) -> Result<CriStream<StreamPodSandboxMetricsResponse>> {
        Err(Error::unimplemented("StreamPodSandboxMetrics", BACKEND))
    }
}

#[async_trait]
impl ImageService for FakeRuntime {
    async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse> {
        let wanted = request
            .filter
            .and_then(|f| f.image)
            .map(|i| i.image)
            .unwrap_or_default();
        Ok(ListImagesResponse {
            images: self.lock().images.list(&wanted),
        })
    }

    async fn image_status(&self, request: ImageStatusRequest) -> Result<ImageStatusResponse> {
        let image = request.image.map(|i| i.image).unwrap_or_default();
        require(&image, "image.image")?;
        let found = self.lock().images.status(&image);
        let mut info = HashMap::new();
        if request.verbose
            && let Some(img) = &found
        {
            info.insert(
                "info".to_owned(),
                format!("{{\"id\":{:?},\"runtime\":\"{RUNTIME_NAME}\"}}", img.id),
            );
        }
        Ok(ImageStatusResponse { image: found, info })
    }

    async fn pull_image(&self, request: PullImageRequest) -> Result<PullImageResponse> {
        let image = request.image.map(|i| i.image).unwrap_or_default();
        require(&image, "image.image")?;
        let id = self.lock().images.pull(&image)?;
        Ok(PullImageResponse { image_ref: id })
    }

    async fn remove_image(&self, request: RemoveImageRequest) -> Result<RemoveImageResponse> {
        let image = request.image.map(|i| i.image).unwrap_or_default();
        require(&image, "image.image")?;
        self.lock().images.remove(&image);
        Ok(RemoveImageResponse {})
    }

    async fn image_fs_info(&self, _request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse> {
        let used = self.lock().images.total_size();
        let usage = |mountpoint: &str, used: u64| FilesystemUsage {
            timestamp: now_nanos(),
            fs_id: Some(FilesystemIdentifier {
                mountpoint: mountpoint.into(),
            }),
            used_bytes: Some(UInt64Value { value: used }),
            inodes_used: Some(UInt64Value { value: 0 }),
        };
        Ok(ImageFsInfoResponse {
            image_filesystems: vec![usage("/fake/images", used)],
            container_filesystems: vec![usage("/fake/containers", 0)],
        })
    }

    async fn stream_images(
        &self,
        request: StreamImagesRequest,
    ) -> Result<CriStream<StreamImagesResponse>> {
        let images = self
            .list_images(ListImagesRequest {
                filter: request.filter,
            })
            .await?
            .images;
        Ok(list_stream(images, |images| StreamImagesResponse {
            images,
        }))
    }
}
