//! The contract every backend implements: [`RuntimeService`] and [`ImageService`], one
//! required async method per CRI v1 RPC, taking and returning the CRI messages. Both traits
//! are object safe; `Arc<dyn RuntimeService>` is what crates pass around.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{StreamExt as _, stream::BoxStream};

use crate::{api::*, error::Result};

/// A stream of responses from a server-streaming RPC (events, Stream* lists).
pub type CriStream<T> = BoxStream<'static, Result<T>>;

/// How many items one message holds when a `Stream*` list is served from its unary list.
pub const LIST_STREAM_BATCH: usize = 100;

/// A `Stream*` answer made from the unary list's `items`: messages of at most
/// [`LIST_STREAM_BATCH`] items each, in order, built by `wrap`; an empty list is one message
/// with no items, so every answer has at least one message.
///
/// Every backend that serves `StreamContainers`, `StreamPodSandboxes`, `StreamImages`, ...
/// from `ListContainers`, `ListPodSandbox`, `ListImages`, ... answers through this function,
/// so they all split the same way.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use futures_util::TryStreamExt;
/// use anycri_core::{LIST_STREAM_BATCH, list_stream, api::*};
/// let images: Vec<Image> = (0..250).map(|i| Image { id: format!("sha256:{i}"), ..Default::default() }).collect();
/// let messages: Vec<StreamImagesResponse> =
///     list_stream(images, |images| StreamImagesResponse { images }).try_collect().await?;
/// let sizes: Vec<usize> = messages.iter().map(|m| m.images.len()).collect();
/// assert_eq!(sizes, [LIST_STREAM_BATCH, LIST_STREAM_BATCH, 50]);
/// assert_eq!(messages[2].images.last().map(|i| i.id.as_str()), Some("sha256:249"));
///
/// let empty: Vec<StreamContainersResponse> =
///     list_stream(Vec::new(), |containers| StreamContainersResponse { containers })
///         .try_collect()
///         .await?;
/// assert_eq!(empty, [StreamContainersResponse::default()]);
/// # Ok(()) }
/// ```
pub fn list_stream<T, R>(items: Vec<T>, wrap: impl Fn(Vec<T>) -> R) -> CriStream<R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let mut messages = Vec::with_capacity(items.len().div_ceil(LIST_STREAM_BATCH).max(1));
    let mut items = items.into_iter().peekable();
    loop {
        messages.push(Ok(wrap(items.by_ref().take(LIST_STREAM_BATCH).collect())));
        if items.peek().is_none() {
            break;
        }
    }
    futures_util::stream::iter(messages).boxed()
}

/// The CRI `RuntimeService`: pod sandboxes, containers, exec, stats, events and runtime
/// status. Methods are named after the RPCs in snake case; see the CRI for each one's
/// semantics. Implementations return an [`crate::ErrorKind::Unimplemented`] error for what they lack, never
/// a silent success.
///
/// A tool takes the trait object and so runs on every backend. In the examples of this
/// trait the in-memory fake (crate `anycri-fake`) stands in for containerd, CRI-O or Docker;
/// `anycri::connect("unix:///run/containerd/containerd.sock")` gives the same
/// `Arc<dyn RuntimeService>` for a real runtime.
///
/// ```
/// use std::sync::Arc;
/// use anycri_core::{RuntimeService, api::*};
///
/// /// The names of the running containers, on any runtime.
/// async fn running(runtime: &dyn RuntimeService) -> anycri_core::Result<Vec<String>> {
///     let filter = ContainerFilter {
///         state: Some(ContainerStateValue { state: ContainerState::ContainerRunning as i32 }),
///         ..Default::default()
///     };
///     let list = runtime.list_containers(ListContainersRequest { filter: Some(filter) }).await?;
///     Ok(list.containers.into_iter().filter_map(|c| c.metadata).map(|m| m.name).collect())
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// let runtime: Arc<dyn RuntimeService> = Arc::new(anycri_fake::FakeRuntime::new());
/// assert!(running(&*runtime).await?.is_empty());
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RuntimeService: Send + Sync {
    /// `Version`: runtime name, version and CRI API version.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::VersionRequest};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let version = runtime.version(VersionRequest::default()).await?;
    /// assert_eq!(version.runtime_name, "anycri-fake");
    /// assert_eq!(version.runtime_api_version, "v1");
    /// # Ok(()) }
    /// ```
    async fn version(&self, request: VersionRequest) -> Result<VersionResponse>;
    /// `RunPodSandbox`: create and start a pod sandbox; it is ready when this returns.
    ///
    /// A pod's whole lifecycle, RPC by RPC ([`crate::RuntimeServiceExt`] has shorter forms):
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let config = PodSandboxConfigBuilder::new("web", "default").build();
    /// let pod_sandbox_id = runtime
    ///     .run_pod_sandbox(RunPodSandboxRequest {
    ///         config: Some(config),
    ///         runtime_handler: String::new(), // the default handler (runc)
    ///     })
    ///     .await?
    ///     .pod_sandbox_id;
    ///
    /// let status = runtime
    ///     .pod_sandbox_status(PodSandboxStatusRequest {
    ///         pod_sandbox_id: pod_sandbox_id.clone(),
    ///         verbose: false,
    ///     })
    ///     .await?
    ///     .status
    ///     .expect("a status");
    /// assert_eq!(status.state(), PodSandboxState::SandboxReady);
    ///
    /// let stop = StopPodSandboxRequest { pod_sandbox_id: pod_sandbox_id.clone() };
    /// runtime.stop_pod_sandbox(stop).await?;
    /// let remove = RemovePodSandboxRequest { pod_sandbox_id };
    /// runtime.remove_pod_sandbox(remove.clone()).await?;
    /// // Idempotent: removing it again succeeds too.
    /// runtime.remove_pod_sandbox(remove).await?;
    /// # Ok(()) }
    /// ```
    async fn run_pod_sandbox(&self, request: RunPodSandboxRequest)
    -> Result<RunPodSandboxResponse>;
    /// `StopPodSandbox`: stop the sandbox and its containers, release its network. Idempotent.
    async fn stop_pod_sandbox(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse>;
    /// `RemovePodSandbox`: remove the sandbox and its containers. Idempotent.
    async fn remove_pod_sandbox(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse>;
    /// `PodSandboxStatus`: the sandbox's state, network and metadata.
    async fn pod_sandbox_status(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse>;
    /// `ListPodSandbox`: sandboxes matching a filter.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.run_pod(PodSandboxConfigBuilder::new("web", "default").label("app", "web").build()).await?;
    /// runtime.run_pod(PodSandboxConfigBuilder::new("db", "default").label("app", "db").build()).await?;
    ///
    /// // Every set field of the filter must match; labels match exactly.
    /// let filter = PodSandboxFilter {
    ///     label_selector: [("app".to_string(), "web".to_string())].into(),
    ///     ..Default::default()
    /// };
    /// let pods = runtime.list_pod_sandbox(ListPodSandboxRequest { filter: Some(filter) }).await?.items;
    /// assert_eq!(pods.len(), 1);
    /// assert_eq!(pods[0].metadata.as_ref().unwrap().name, "web");
    /// # Ok(()) }
    /// ```
    async fn list_pod_sandbox(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse>;
    /// `CreateContainer`: create a container in a sandbox.
    ///
    /// A container's whole lifecycle, RPC by RPC ([`crate::RuntimeServiceExt`] has shorter
    /// forms that also do what the kubelet does first):
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?; // the fake's images are seeded, as if pulled
    /// let pod_config = PodSandboxConfigBuilder::new("web", "default").build();
    /// let pod_sandbox_id = runtime.run_pod(pod_config.clone()).await?;
    ///
    /// let config = ContainerConfigBuilder::new("app", "busybox:1.36")
    ///     .command(["sleep", "3600"])
    ///     .build();
    /// let container_id = runtime
    ///     .create_container(CreateContainerRequest {
    ///         pod_sandbox_id,
    ///         config: Some(config),
    ///         sandbox_config: Some(pod_config),
    ///     })
    ///     .await?
    ///     .container_id;
    /// runtime.start_container(StartContainerRequest { container_id: container_id.clone() }).await?;
    ///
    /// let status = runtime
    ///     .container_status(ContainerStatusRequest { container_id: container_id.clone(), verbose: false })
    ///     .await?
    ///     .status
    ///     .expect("a status");
    /// assert_eq!(status.state(), ContainerState::ContainerRunning);
    ///
    /// // A grace period of 10 s for SIGTERM, then SIGKILL; then remove it.
    /// runtime.stop_container(StopContainerRequest { container_id: container_id.clone(), timeout: 10 }).await?;
    /// runtime.remove_container(RemoveContainerRequest { container_id }).await?;
    /// # Ok(()) }
    /// ```
    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse>;
    /// `StartContainer`.
    async fn start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse>;
    /// `StopContainer`: stop with a grace period, then kill. Idempotent.
    async fn stop_container(&self, request: StopContainerRequest) -> Result<StopContainerResponse>;
    /// `RemoveContainer`: remove, killing it first if it runs. Idempotent.
    async fn remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse>;
    /// `ListContainers`: containers matching a filter.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let pod_sandbox_id = runtime.run_pod(pod.clone()).await?;
    /// for (name, command) in [("server", "sleep 3600"), ("init", "true")] {
    ///     let config = ContainerConfigBuilder::new(name, "busybox:1.36")
    ///         .command(command.split(' '))
    ///         .build();
    ///     runtime.create_and_start_container(&pod_sandbox_id, &pod, config).await?;
    /// }
    ///
    /// // The pod's containers that have exited: `init` ran `true` and ended.
    /// let filter = ContainerFilter {
    ///     pod_sandbox_id,
    ///     state: Some(ContainerStateValue { state: ContainerState::ContainerExited as i32 }),
    ///     ..Default::default()
    /// };
    /// let exited = runtime.list_containers(ListContainersRequest { filter: Some(filter) }).await?;
    /// let names: Vec<_> = exited.containers.iter().map(|c| c.metadata.as_ref().unwrap().name.as_str()).collect();
    /// assert_eq!(names, ["init"]);
    /// # Ok(()) }
    /// ```
    async fn list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse>;
    /// `ContainerStatus`.
    async fn container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse>;
    /// `UpdateContainerResources`: change a container's resources.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// runtime
    ///     .update_container_resources(UpdateContainerResourcesRequest {
    ///         container_id: ids.container_id.clone(),
    ///         linux: Some(LinuxContainerResources {
    ///             memory_limit_in_bytes: 256 << 20,
    ///             ..Default::default()
    ///         }),
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// let status = runtime.get_container_status(&ids.container_id).await?;
    /// let linux = status.resources.and_then(|r| r.linux).expect("resources");
    /// assert_eq!(linux.memory_limit_in_bytes, 256 << 20);
    /// # Ok(()) }
    /// ```
    async fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse>;
    /// `ReopenContainerLog`: reopen the container's log file (after rotation).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let logs = tempfile::tempdir().unwrap();
    /// let pod = PodSandboxConfigBuilder::new("web", "default")
    ///     .log_directory(logs.path().to_string_lossy())
    ///     .build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// // Rotate the log as the kubelet does: rename the file, then have the runtime reopen it.
    /// let path = runtime.get_container_status(&ids.container_id).await?.log_path;
    /// std::fs::rename(&path, format!("{path}.1")).unwrap();
    /// runtime.reopen_container_log(ReopenContainerLogRequest { container_id: ids.container_id }).await?;
    /// assert!(std::path::Path::new(&path).exists());
    /// # Ok(()) }
    /// ```
    async fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse>;
    /// `ExecSync`: run a command in a container and collect its output and exit code.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let out = runtime
    ///     .exec_sync(ExecSyncRequest {
    ///         container_id: ids.container_id,
    ///         cmd: vec!["sh".into(), "-c".into(), "echo hello; exit 3".into()],
    ///         timeout: 5, // seconds; 0 waits for ever
    ///     })
    ///     .await?;
    /// assert_eq!(out.stdout, b"hello\n");
    /// assert_eq!(out.exit_code, 3); // a non-zero exit is an answer, not an error
    /// # Ok(()) }
    /// ```
    async fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse>;
    /// `Exec`: a streaming-server URL for an interactive exec.
    ///
    /// `Exec`, `Attach` and `PortForward` only hand out a URL; `anycri_streaming::client`
    /// (crate `anycri-streaming`) connects to it and runs the session. A backend without a
    /// streaming server, like the fake, answers Unimplemented, which a tool can fall back
    /// from:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::time::Duration;
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let request = ExecRequest {
    ///     container_id: ids.container_id.clone(),
    ///     cmd: vec!["date".into()],
    ///     stdout: true,
    ///     stderr: true,
    ///     ..Default::default()
    /// };
    /// match runtime.exec(request).await {
    ///     Ok(response) => println!("stream from {}", response.url),
    ///     Err(e) if e.is_unimplemented() => {
    ///         let out = runtime.exec_collect(&ids.container_id, &["date"], Duration::from_secs(5)).await?;
    ///         println!("{}", out.stdout_str());
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    async fn exec(&self, request: ExecRequest) -> Result<ExecResponse>;
    /// `Attach`: a streaming-server URL to attach to a container.
    async fn attach(&self, request: AttachRequest) -> Result<AttachResponse>;
    /// `PortForward`: a streaming-server URL to forward ports into a sandbox.
    async fn port_forward(&self, request: PortForwardRequest) -> Result<PortForwardResponse>;
    /// `ContainerStats`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let stats = runtime
    ///     .container_stats(ContainerStatsRequest { container_id: ids.container_id })
    ///     .await?
    ///     .stats
    ///     .expect("stats");
    /// let working_set = stats.memory.and_then(|m| m.working_set_bytes).map(|v| v.value);
    /// println!("working set: {working_set:?} bytes");
    ///
    /// // The same for every container at once, or those a filter selects.
    /// let all = runtime.list_container_stats(ListContainerStatsRequest::default()).await?;
    /// assert_eq!(all.stats.len(), 1);
    /// # Ok(()) }
    /// ```
    async fn container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse>;
    /// `ListContainerStats`.
    async fn list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse>;
    /// `PodSandboxStats`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let stats = runtime
    ///     .pod_sandbox_stats(PodSandboxStatsRequest { pod_sandbox_id: ids.pod_sandbox_id })
    ///     .await?
    ///     .stats
    ///     .expect("stats");
    /// let linux = stats.linux.expect("Linux stats");
    /// assert_eq!(linux.containers.len(), 1); // the pod's total and each container's
    /// # Ok(()) }
    /// ```
    async fn pod_sandbox_stats(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse>;
    /// `ListPodSandboxStats`.
    async fn list_pod_sandbox_stats(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse>;
    /// `UpdateRuntimeConfig`: today only the pod CIDR.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let network_config = NetworkConfig { pod_cidr: "10.244.0.0/24".into() };
    /// runtime
    ///     .update_runtime_config(UpdateRuntimeConfigRequest {
    ///         runtime_config: Some(RuntimeConfig { network_config: Some(network_config) }),
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse>;
    /// `Status`: runtime conditions, handlers and features (with `verbose`, extra info).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let status = runtime.status(StatusRequest { verbose: false }).await?.status.expect("a status");
    /// // The kubelet needs RuntimeReady and NetworkReady.
    /// for condition in &status.conditions {
    ///     assert!(condition.status, "{}: {}", condition.r#type, condition.message);
    /// }
    /// # Ok(()) }
    /// ```
    async fn status(&self, request: StatusRequest) -> Result<StatusResponse>;
    /// `CheckpointContainer`.
    ///
    /// An optional RPC: [`crate::discover`] tells beforehand whether a runtime has it, and a
    /// runtime without it answers Unimplemented.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let request = CheckpointContainerRequest {
    ///     container_id: "abc".into(),
    ///     location: "/var/lib/checkpoints/abc.tar".into(),
    ///     timeout: 0, // the runtime's default
    /// };
    /// let err = runtime.checkpoint_container(request).await.unwrap_err();
    /// assert!(err.is_unimplemented(), "{err}");
    /// assert!(!anycri_core::discover(&runtime).await?.capabilities.checkpoint_container);
    /// # Ok(()) }
    /// ```
    async fn checkpoint_container(
        &self,
        request: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse>;
    /// `GetContainerEvents`: a stream of container lifecycle events.
    ///
    /// Only some runtimes have it; [`crate::watch()`] gives the same events on every runtime
    /// (relisting where there is no event stream).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use futures_util::StreamExt;
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let mut events = runtime.get_container_events(GetEventsRequest {}).await?;
    ///
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let created = events.next().await.expect("an event")?;
    /// assert_eq!(created.container_id, ids.container_id);
    /// assert_eq!(created.container_event_type(), ContainerEventType::ContainerCreatedEvent);
    /// let started = events.next().await.expect("an event")?;
    /// assert_eq!(started.container_event_type(), ContainerEventType::ContainerStartedEvent);
    /// # Ok(()) }
    /// ```
    async fn get_container_events(
        &self,
        request: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>>;
    /// `ListMetricDescriptors`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// match runtime.list_metric_descriptors(ListMetricDescriptorsRequest {}).await {
    ///     Ok(found) => {
    ///         for d in found.descriptors {
    ///             println!("{}: {}", d.name, d.help);
    ///         }
    ///     }
    ///     // CRI-O has the metrics RPCs; containerd, the Docker shim and the fake do not.
    ///     Err(e) if e.is_unimplemented() => println!("no metrics: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    async fn list_metric_descriptors(
        &self,
        request: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse>;
    /// `ListPodSandboxMetrics`.
    async fn list_pod_sandbox_metrics(
        &self,
        request: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse>;
    /// `RuntimeConfig`: configuration the kubelet reads from the runtime (cgroup driver).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{RuntimeService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let config = runtime.runtime_config(RuntimeConfigRequest {}).await?;
    /// let driver = config.linux.map(|linux| linux.cgroup_driver());
    /// assert_eq!(driver, Some(CgroupDriver::Cgroupfs));
    /// # Ok(()) }
    /// ```
    async fn runtime_config(&self, request: RuntimeConfigRequest) -> Result<RuntimeConfigResponse>;
    /// `UpdatePodSandboxResources`: tell the runtime a pod's resources changed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let pod_sandbox_id = runtime.run_pod(PodSandboxConfigBuilder::new("web", "default").build()).await?;
    /// runtime
    ///     .update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest {
    ///         pod_sandbox_id,
    ///         resources: Some(LinuxContainerResources { cpu_shares: 512, ..Default::default() }),
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    async fn update_pod_sandbox_resources(
        &self,
        request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse>;
    /// `StreamPodSandboxes`: ListPodSandbox's answer over several messages.
    ///
    /// The `Stream*` lists answer in several messages, for lists too large for one; a
    /// backend may send several items per message (one serving the unary list's answer
    /// splits it with [`list_stream`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use futures_util::TryStreamExt;
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// for name in ["a", "b", "c"] {
    ///     runtime.run_pod(PodSandboxConfigBuilder::new(name, "default").build()).await?;
    /// }
    /// let messages: Vec<StreamPodSandboxesResponse> = runtime
    ///     .stream_pod_sandboxes(StreamPodSandboxesRequest::default())
    ///     .await?
    ///     .try_collect()
    ///     .await?;
    /// let pods = messages.iter().map(|m| m.pod_sandboxes.len()).sum::<usize>();
    /// assert_eq!(pods, 3);
    /// # Ok(()) }
    /// ```
    async fn stream_pod_sandboxes(
        &self,
        request: StreamPodSandboxesRequest,
    ) -> Result<CriStream<StreamPodSandboxesResponse>>;
    /// `StreamContainers`: ListContainers' answer over several messages.
    async fn stream_containers(
        &self,
        request: StreamContainersRequest,
    ) -> Result<CriStream<StreamContainersResponse>>;
    /// `StreamContainerStats`: ListContainerStats' answer over several messages.
    async fn stream_container_stats(
        &self,
        request: StreamContainerStatsRequest,
    ) -> Result<CriStream<StreamContainerStatsResponse>>;
    /// `StreamPodSandboxStats`: ListPodSandboxStats' answer over several messages.
    async fn stream_pod_sandbox_stats(
        &self,
        request: StreamPodSandboxStatsRequest,
    ) -> Result<CriStream<StreamPodSandboxStatsResponse>>;
    /// `StreamPodSandboxMetrics`: ListPodSandboxMetrics' answer over several messages.
    async fn stream_pod_sandbox_metrics(
        &self,
        request: StreamPodSandboxMetricsRequest,
    ) -> Result<CriStream<StreamPodSandboxMetricsResponse>>;
}

/// The CRI `ImageService`: list, inspect, pull and remove images.
///
/// As with [`RuntimeService`], a tool takes the trait object; [`crate::ImageServiceExt`]
/// has the usual combinations (pull only when absent, remove if present).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::sync::Arc;
/// use anycri_core::{ImageService, ImageServiceExt};
/// let images: Arc<dyn ImageService> = Arc::new(anycri_fake::FakeRuntime::new());
/// let id = images.pull_image_if_absent("busybox:1.36", None).await?;
/// assert_eq!(images.find_image("busybox:1.36").await?.map(|i| i.id), Some(id));
/// # Ok(()) }
/// ```
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ImageService: Send + Sync {
    /// `ListImages`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// runtime.add_image("registry.local/app:2.0")?;
    /// for image in runtime.list_images(ListImagesRequest::default()).await?.images {
    ///     println!("{} {:?} {} bytes", image.id, image.repo_tags, image.size);
    /// }
    /// // Only the images a reference names.
    /// let filter = ImageFilter {
    ///     image: Some(ImageSpec { image: "registry.local/app:2.0".into(), ..Default::default() }),
    /// };
    /// let found = runtime.list_images(ListImagesRequest { filter: Some(filter) }).await?.images;
    /// assert_eq!(found.len(), 1);
    /// # Ok(()) }
    /// ```
    async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse>;
    /// `ImageStatus`: the image, or `None` in the response when it is absent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let status = |image: &str| ImageStatusRequest {
    ///     image: Some(ImageSpec { image: image.into(), ..Default::default() }),
    ///     verbose: false,
    /// };
    /// // Absent is not an error: the response holds no image.
    /// assert!(runtime.image_status(status("busybox:1.36")).await?.image.is_none());
    /// runtime.add_image("busybox:1.36")?;
    /// let image = runtime.image_status(status("busybox:1.36")).await?.image.expect("present");
    /// assert!(image.repo_tags.contains(&"docker.io/library/busybox:1.36".to_string()));
    /// # Ok(()) }
    /// ```
    async fn image_status(&self, request: ImageStatusRequest) -> Result<ImageStatusResponse>;
    /// `PullImage`: pull and return the image reference (ID or digest).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let pulled = runtime
    ///     .pull_image(PullImageRequest {
    ///         image: Some(ImageSpec { image: "registry.local/app:2.0".into(), ..Default::default() }),
    ///         // Credentials for a private registry, as the kubelet passes them from a pull secret.
    ///         auth: Some(AuthConfig {
    ///             username: "robot".into(),
    ///             password: "secret".into(),
    ///             ..Default::default()
    ///         }),
    ///         sandbox_config: None,
    ///     })
    ///     .await?;
    /// assert!(!pulled.image_ref.is_empty());
    /// # Ok(()) }
    /// ```
    async fn pull_image(&self, request: PullImageRequest) -> Result<PullImageResponse>;
    /// `RemoveImage`. Idempotent.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageService, ImageServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let remove = RemoveImageRequest {
    ///     image: Some(ImageSpec { image: "busybox:1.36".into(), ..Default::default() }),
    /// };
    /// runtime.remove_image(remove.clone()).await?;
    /// assert!(runtime.find_image("busybox:1.36").await?.is_none());
    /// runtime.remove_image(remove).await?; // already gone: still a success
    /// # Ok(()) }
    /// ```
    async fn remove_image(&self, request: RemoveImageRequest) -> Result<RemoveImageResponse>;
    /// `ImageFsInfo`: usage of the filesystems that hold images and containers.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let info = runtime.image_fs_info(ImageFsInfoRequest {}).await?;
    /// for fs in &info.image_filesystems {
    ///     let mountpoint = fs.fs_id.as_ref().map(|id| id.mountpoint.as_str()).unwrap_or("?");
    ///     let used = fs.used_bytes.map(|u| u.value).unwrap_or(0);
    ///     println!("{mountpoint}: {used} bytes of images");
    /// }
    /// assert!(!info.image_filesystems.is_empty());
    /// # Ok(()) }
    /// ```
    async fn image_fs_info(&self, request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse>;
    /// `StreamImages`: ListImages' answer over several messages.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use futures_util::StreamExt;
    /// use anycri_core::{ImageService, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let mut messages = runtime.stream_images(StreamImagesRequest::default()).await?;
    /// let mut count = 0;
    /// while let Some(message) = messages.next().await {
    ///     count += message?.images.len();
    /// }
    /// assert_eq!(count, 1);
    /// # Ok(()) }
    /// ```
    async fn stream_images(
        &self,
        request: StreamImagesRequest,
    ) -> Result<CriStream<StreamImagesResponse>>;
}

/// Forwards every RPC to the pointee; lets `Arc<T>` and `Box<T>` stand for `T`.
macro_rules! forward {
    ($trait:ident; $($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: $trait + ?Sized> $trait for Arc<T> {
            $(
                async fn $method(&self, request: $req) -> Result<crate::ops::shape::$kind<$resp>> {
                    (**self).$method(request).await
                }
            )*
        }
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<T: $trait + ?Sized> $trait for Box<T> {
            $(
                async fn $method(&self, request: $req) -> Result<crate::ops::shape::$kind<$resp>> {
                    (**self).$method(request).await
                }
            )*
        }
    };
}

crate::for_each_runtime_rpc!(forward, RuntimeService;);
crate::for_each_image_rpc!(forward, ImageService;);
