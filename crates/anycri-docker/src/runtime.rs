//! [`DockerRuntime`] and its builder: the connection to Docker (API version negotiated, so
//! Debian 12's Docker 20.10 with API 1.41 and newer engines both work), the shim's settings,
//! and the trait impls that hand each CRI call to the module of its concept.

#[cfg(feature = "streaming")]
use std::net::SocketAddr;
use std::{path::PathBuf, sync::Arc, time::Duration};

use anycri_core::{
    Error, Result,
    api::*,
    list_stream,
    service::{CriStream, ImageService, RuntimeService},
};
#[cfg(feature = "streaming")]
use anycri_streaming::{StreamingConfig, StreamingServer};

use crate::cache::TtlCache;
use async_trait::async_trait;
use bollard::Docker;

use crate::owner::{NodeRole, Ownership};
use crate::{
    checkpoint::Checkpoints, error::docker_error, logs::LogManager, stats::StatsCache, validate,
};

/// The name the Docker shim reports in `Version`.
pub const RUNTIME_NAME: &str = "anycri-docker";
pub(crate) const BACKEND: &str = "the anycri Docker shim";

/// How pods get their network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NetworkPlugin {
    /// Docker's default bridge network.
    #[default]
    Bridge,
    /// CNI plugins from `bin_dir` with the first config in `conf_dir`, set up in the pause
    /// container's network namespace.
    Cni {
        /// Plugin binaries (e.g. `/usr/lib/cni`).
        bin_dir: PathBuf,
        /// Network configs (`*.conflist`, `*.conf`, `*.json`; the lexically first is used).
        conf_dir: PathBuf,
    },
}

/// Configures and connects a [`DockerRuntime`].
#[derive(Debug, Clone)]
pub struct DockerRuntimeBuilder {
    endpoint: String,
    pause_image: String,
    state_dir: PathBuf,
    network: NetworkPlugin,
    timeout: Duration,
    stats_cache_ttl: Duration,
    #[cfg(feature = "streaming")]
    streaming: StreamingConfig,
    role: NodeRole,
}

impl DockerRuntimeBuilder {
    /// A builder for the Docker socket at `endpoint` (`unix:///var/run/docker.sock`,
    /// `docker:///var/run/docker.sock` or a bare path).
    pub fn new(endpoint: impl Into<String>) -> Self {
        DockerRuntimeBuilder {
            endpoint: endpoint.into(),
            pause_image: "registry.k8s.io/pause:3.9".into(),
            state_dir: PathBuf::from("/var/lib/anycri-docker"),
            network: NetworkPlugin::Bridge,
            timeout: Duration::from_secs(120),
            stats_cache_ttl: Duration::from_secs(10),
            #[cfg(feature = "streaming")]
            streaming: StreamingConfig::default(),
            role: NodeRole::default(),
        }
    }

    /// What this process does with the node's container logs (default [`NodeRole::Auto`]:
    /// nothing on connect; it writes the logs of the containers it starts only while no
    /// other process manages the node). `anycri shim docker` is [`NodeRole::Manager`].
    pub fn role(mut self, role: NodeRole) -> Self {
        self.role = role;
        self
    }

    /// The image of pause containers (default `registry.k8s.io/pause:3.9`).
    pub fn pause_image(mut self, image: impl Into<String>) -> Self {
        self.pause_image = image.into();
        self
    }

    /// Where the shim keeps its checkpoints (default `/var/lib/anycri-docker`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// How pods get their network (default: Docker's bridge).
    pub fn network_plugin(mut self, plugin: NetworkPlugin) -> Self {
        self.network = plugin;
        self
    }

    /// Timeout of each Docker API request (default 2 min).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long writable-layer sizes are cached for stats (default 10 s).
    pub fn stats_cache_ttl(mut self, ttl: Duration) -> Self {
        self.stats_cache_ttl = ttl;
        self
    }

    /// Where the streaming server for Exec, Attach and PortForward listens (default
    /// `127.0.0.1:0`: loopback, a free port). It starts on the first such call.
    #[cfg(feature = "streaming")]
    pub fn streaming_address(mut self, address: SocketAddr) -> Self {
        self.streaming.address = address;
        self
    }

    /// All settings of the streaming server (address, token lifetime, ...).
    #[cfg(feature = "streaming")]
    pub fn streaming_config(mut self, config: StreamingConfig) -> Self {
        self.streaming = config;
        self
    }

    /// Connect to Docker and negotiate the API version. Writes nothing on the host, except
    /// for [`NodeRole::Manager`], which takes the node's owner lock (failing if another
    /// process holds it) and resumes the log writers of running containers.
    pub async fn connect(self) -> Result<DockerRuntime> {
        let path = socket_path(&self.endpoint)?;
        let docker = Docker::connect_with_unix(
            &path,
            // bollard takes whole seconds: round up, so 1.5 s is 2 s and 500 ms is 1 s.
            (self.timeout.as_secs() + u64::from(self.timeout.subsec_nanos() > 0)).max(1),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| docker_error(format!("connecting to Docker at {path}"), e))?
        .negotiate_version()
        .await
        .map_err(|e| {
            docker_error(
                format!("negotiating the API version with Docker at {path}"),
                e,
            )
        })?;
        self.with_client(docker).await
    }

    /// The runtime on an already made Docker client.
    async fn with_client(self, docker: Docker) -> Result<DockerRuntime> {
        let checkpoints = Checkpoints::open(self.state_dir.join("sandboxes")).await?;
        let role = self.role;
        let runtime = DockerRuntime {
            inner: Arc::new(Inner {
                logs: LogManager::new(docker.clone()),
                stats: StatsCache::new(self.stats_cache_ttl),
                docker,
                pause_image: self.pause_image,
                network: self.network,
                checkpoints,
                host: crate::sandbox::HostFacts::detect(),
                #[cfg(feature = "streaming")]
                streaming_config: self.streaming,
                #[cfg(feature = "streaming")]
                streaming: tokio::sync::OnceCell::new(),
                image_refs: TtlCache::new(crate::image::IMAGE_REF_TTL),
                oom_verdicts: TtlCache::new(crate::container::OOM_VERDICT_TTL),
                own_sandboxes: TtlCache::new(crate::sandbox::OWN_SANDBOX_TTL),
                role,
                state_dir: self.state_dir,
                ownership: Ownership::default(),
            }),
        };
        if role == NodeRole::Manager {
            runtime.claim_node().await?;
        }
        Ok(runtime)
    }
}

fn socket_path(endpoint: &str) -> Result<String> {
    let path = match endpoint.split_once("://") {
        Some(("unix" | "docker", rest)) => rest,
        Some((scheme, _)) => {
            return Err(Error::invalid_argument(format!(
                "Docker endpoint {endpoint:?}: scheme {scheme:?} is not supported (use unix:///path)"
            )));
        }
        None => endpoint,
    };
    let path = if path.is_empty() {
        "/var/run/docker.sock"
    } else {
        path
    };
    if !path.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "Docker endpoint {endpoint:?}: the socket path must be absolute"
        )));
    }
    Ok(path.to_owned())
}

pub(crate) struct Inner {
    pub docker: Docker,
    pub pause_image: String,
    pub network: NetworkPlugin,
    pub checkpoints: Checkpoints,
    pub logs: LogManager,
    pub stats: StatsCache,
    pub host: crate::sandbox::HostFacts,
    #[cfg(feature = "streaming")]
    pub streaming_config: StreamingConfig,
    #[cfg(feature = "streaming")]
    pub streaming: tokio::sync::OnceCell<StreamingServer>,
    /// ContainerStatus's `image_ref` per image ID, so a status is one Docker call.
    pub image_refs: TtlCache<String>,
    /// Whether an exited container was OOM-killed, once decided (see `oom_event_seen`).
    pub oom_verdicts: TtlCache<bool>,
    /// Full IDs of pause containers this process created: a container ID cannot change
    /// kind, so RemovePodSandbox needs no inspect to know one of these is a sandbox.
    pub own_sandboxes: TtlCache<()>,
    /// What this process does with the node's logs.
    pub role: NodeRole,
    /// The state directory (checkpoints, the owner lock).
    pub state_dir: PathBuf,
    /// Whether this process owns the node's logs, once decided.
    pub ownership: Ownership,
}

/// The Docker shim. Cheap to clone; clones share the connection and state.
#[derive(Clone)]
pub struct DockerRuntime {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("pause_image", &self.inner.pause_image)
            .field("network", &self.inner.network)
            .finish()
    }
}

impl DockerRuntime {
    /// A builder for `endpoint`.
    pub fn builder(endpoint: impl Into<String>) -> DockerRuntimeBuilder {
        DockerRuntimeBuilder::new(endpoint)
    }

    /// The bollard client.
    pub(crate) fn docker(&self) -> &Docker {
        &self.inner.docker
    }
}

fn unimplemented<T>(operation: &str) -> Result<T> {
    Err(Error::unimplemented(operation, BACKEND))
}

#[async_trait]
impl RuntimeService for DockerRuntime {
    async fn version(&self, _request: VersionRequest) -> Result<VersionResponse> {
        let v = self
            .docker()
            .version()
            .await
            .map_err(|e| docker_error("asking Docker for its version", e))?;
        Ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: format!(
                "{} (Docker {}, API {})",
                env!("CARGO_PKG_VERSION"),
                v.version.unwrap_or_default(),
                v.api_version.unwrap_or_default()
            ),
            runtime_api_version: "v1".into(),
        })
    }
    async fn run_pod_sandbox(
        &self,
        request: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse> {
        validate::run_pod_sandbox(&request)?;
        self.run_pod_sandbox_impl(request).await
    }
    async fn stop_pod_sandbox(
        &self,
        request: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse> {
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        self.stop_pod_sandbox_impl(request).await
    }
    async fn remove_pod_sandbox(
        &self,
        request: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        self.remove_pod_sandbox_impl(request).await
    }
    async fn pod_sandbox_status(
        &self,
        request: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        self.pod_sandbox_status_impl(request).await
    }
    async fn list_pod_sandbox(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse> {
        self.list_pod_sandbox_impl(request).await
    }
    async fn create_container(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse> {
        validate::create_container(&request)?;
        self.create_container_impl(request).await
    }
    async fn start_container(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.start_container_impl(request).await
    }
    async fn stop_container(&self, request: StopContainerRequest) -> Result<StopContainerResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.stop_container_impl(request).await
    }
    async fn remove_container(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.remove_container_impl(request).await
    }
    async fn list_containers(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse> {
        self.list_containers_impl(request).await
    }
    async fn container_status(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.container_status_impl(request).await
    }
    async fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        validate::id(&request.container_id, "container_id")?;
        if let Some(linux) = &request.linux {
            validate::resources(linux, "linux")?;
        }
        self.update_container_resources_impl(request).await
    }
    async fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.reopen_container_log_impl(request).await
    }
    async fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse> {
        validate::id(&request.container_id, "container_id")?;
        validate::command(&request.cmd)?;
        self.exec_sync_impl(request).await
    }
    async fn exec(&self, request: ExecRequest) -> Result<ExecResponse> {
        validate::id(&request.container_id, "container_id")?;
        validate::command(&request.cmd)?;
        #[cfg(feature = "streaming")]
        return self.exec_impl(request).await;
        #[cfg(not(feature = "streaming"))]
        return Err(without_streaming("Exec"));
    }
    async fn attach(&self, request: AttachRequest) -> Result<AttachResponse> {
        validate::id(&request.container_id, "container_id")?;
        #[cfg(feature = "streaming")]
        return self.attach_impl(request).await;
        #[cfg(not(feature = "streaming"))]
        return Err(without_streaming("Attach"));
    }
    async fn port_forward(&self, request: PortForwardRequest) -> Result<PortForwardResponse> {
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        #[cfg(feature = "streaming")]
        return self.port_forward_impl(request).await;
        #[cfg(not(feature = "streaming"))]
        return Err(without_streaming("PortForward"));
    }
    async fn container_stats(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse> {
        validate::id(&request.container_id, "container_id")?;
        self.container_stats_impl(request).await
    }
    async fn list_container_stats(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        self.list_container_stats_impl(request).await
    }
    async fn pod_sandbox_stats(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        self.pod_sandbox_stats_impl(request).await
    }
    async fn list_pod_sandbox_stats(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        self.list_pod_sandbox_stats_impl(request).await
    }
    async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse> {
        validate::pod_cidrs(
            request
                .runtime_config
                .as_ref()
                .and_then(|c| c.network_config.as_ref())
                .map_or("", |n| n.pod_cidr.as_str()),
        )?;
        // The pod CIDR matters only to kubenet-style networking, which the shim does not do;
        // accepting it is what cri-dockerd does with the bridge plugin.
        Ok(UpdateRuntimeConfigResponse {})
    }
    async fn status(&self, request: StatusRequest) -> Result<StatusResponse> {
        self.status_impl(request).await
    }
    async fn checkpoint_container(
        &self,
        _request: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse> {
        unimplemented("CheckpointContainer")
    }
    async fn get_container_events(
        &self,
        _request: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>> {
        self.container_events_impl().await
    }
    async fn list_metric_descriptors(
        &self,
        _request: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse> {
        unimplemented("ListMetricDescriptors")
    }
    async fn list_pod_sandbox_metrics(
        &self,
        _request: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse> {
        unimplemented("ListPodSandboxMetrics")
    }
    async fn runtime_config(
        &self,
        _request: RuntimeConfigRequest,
    ) -> Result<RuntimeConfigResponse> {
        let driver = self.cgroup_driver().await?;
        Ok(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        })
    }
    async fn update_pod_sandbox_resources(
        &self,
        request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse> {
        // Docker has no pod-level cgroup of the shim's own to resize; the pod's containers are
        // resized one by one with UpdateContainerResources. Accept it for a known pod.
        validate::id(&request.pod_sandbox_id, "pod_sandbox_id")?;
        if let Some(r) = &request.overhead {
            validate::resources(r, "overhead")?;
        }
        if let Some(r) = &request.resources {
            validate::resources(r, "resources")?;
        }
        self.sandbox_exists(&request.pod_sandbox_id).await?;
        Ok(UpdatePodSandboxResourcesResponse {})
    }
    async fn stream_pod_sandboxes(
        &self,
        request: StreamPodSandboxesRequest,
    ) -> Result<CriStream<StreamPodSandboxesResponse>> {
        let items = RuntimeService::list_pod_sandbox(
            self,
            ListPodSandboxRequest {
                filter: request.filter,
            },
        )
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
        let containers = RuntimeService::list_containers(
            self,
            ListContainersRequest {
                filter: request.filter,
            },
        )
        .await?
        .containers;
        Ok(list_stream(containers, |containers| {
            StreamContainersResponse { containers }
        }))
    }
    async fn stream_container_stats(
        &self,
        request: StreamContainerStatsRequest,
    ) -> Result<CriStream<StreamContainerStatsResponse>> {
        let stats = RuntimeService::list_container_stats(
            self,
            ListContainerStatsRequest {
                filter: request.filter,
            },
        )
        .await?
        .stats;
        Ok(list_stream(stats, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        }))
    }
    async fn stream_pod_sandbox_stats(
        &self,
        request: StreamPodSandboxStatsRequest,
    ) -> Result<CriStream<StreamPodSandboxStatsResponse>> {
        let stats = RuntimeService::list_pod_sandbox_stats(
            self,
            ListPodSandboxStatsRequest {
                filter: request.filter,
            },
        )
        .await?
        .stats;
        Ok(list_stream(stats, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    }
    async fn stream_pod_sandbox_metrics(
        &self,
        _request: StreamPodSandboxMetricsRequest,
    ) -> Result<CriStream<StreamPodSandboxMetricsResponse>> {
        unimplemented("StreamPodSandboxMetrics")
    }
}

#[async_trait]
impl ImageService for DockerRuntime {
    async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse> {
        self.list_images_impl(request).await
    }
    async fn image_status(&self, request: ImageStatusRequest) -> Result<ImageStatusResponse> {
        self.image_status_impl(request).await
    }
    async fn pull_image(&self, request: PullImageRequest) -> Result<PullImageResponse> {
        self.pull_image_impl(request).await
    }
    async fn remove_image(&self, request: RemoveImageRequest) -> Result<RemoveImageResponse> {
        self.remove_image_impl(request).await
    }
    async fn image_fs_info(&self, request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse> {
        self.image_fs_info_impl(request).await
    }
    async fn stream_images(
        &self,
        request: StreamImagesRequest,
    ) -> Result<CriStream<StreamImagesResponse>> {
        let images = self
            .list_images_impl(ListImagesRequest {
                filter: request.filter,
            })
            .await?
            .images;
        Ok(list_stream(images, |images| StreamImagesResponse {
            images,
        }))
    }
}

impl DockerRuntime {
    /// The cgroup driver Docker uses.
    pub(crate) async fn cgroup_driver(&self) -> Result<CgroupDriver> {
        let info = self
            .docker()
            .info()
            .await
            .map_err(|e| docker_error("asking Docker for its info", e))?;
        Ok(match info.cgroup_driver {
            Some(bollard::models::SystemInfoCgroupDriverEnum::SYSTEMD) => CgroupDriver::Systemd,
            _ => CgroupDriver::Cgroupfs,
        })
    }

    async fn status_impl(&self, request: StatusRequest) -> Result<StatusResponse> {
        let condition = |kind: &str, ok: std::result::Result<(), String>| RuntimeCondition {
            r#type: kind.into(),
            status: ok.is_ok(),
            reason: if ok.is_ok() {
                String::new()
            } else {
                "DockerUnreachable".into()
            },
            message: ok.err().unwrap_or_default(),
        };
        let ping = self
            .docker()
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let mut info = std::collections::HashMap::new();
        if request.verbose {
            info.insert(
                "config".to_owned(),
                serde_json::json!({
                    "pauseImage": self.inner.pause_image,
                    "networkPlugin": match &self.inner.network {
                        NetworkPlugin::Bridge => "bridge".to_owned(),
                        NetworkPlugin::Cni { .. } => "cni".to_owned(),
                    },
                    "oomScoreAdjAllowed": self.inner.host.negative_oom_score_adj,
                })
                .to_string(),
            );
        }
        Ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![
                    condition("RuntimeReady", ping.clone()),
                    condition("NetworkReady", ping),
                ],
            }),
            info,
            runtime_handlers: vec![RuntimeHandler {
                name: String::new(),
                features: Some(RuntimeHandlerFeatures {
                    recursive_read_only_mounts: self.recursive_read_only_mounts(),
                    user_namespaces: false,
                }),
            }],
            features: Some(RuntimeFeatures::default()),
        })
    }
}

/// The error of a streaming RPC in a build without the `streaming` feature.
#[cfg(not(feature = "streaming"))]
fn without_streaming(operation: &str) -> Error {
    Error::unimplemented(
        operation,
        format!("{BACKEND} built without its `streaming` feature (anycri's `docker-streaming`)"),
    )
}

#[cfg(all(test, not(feature = "streaming")))]
mod without_streaming_tests {
    use super::*;

    /// Without the `streaming` feature the three streaming RPCs answer Unimplemented, naming
    /// the feature, before Docker is asked anything (the client points at no socket).
    #[tokio::test]
    async fn without_streaming_the_streaming_rpcs_are_unimplemented() {
        let dir = std::env::temp_dir().join(format!("anycri-no-streaming-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A socket nobody answers on: the RPCs must fail before they would use it.
        let socket = dir.join("docker.sock");
        let _ = std::fs::remove_file(&socket);
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let docker =
            Docker::connect_with_unix(socket.to_str().unwrap(), 1, bollard::API_DEFAULT_VERSION)
                .unwrap();
        let runtime = DockerRuntime::builder(format!("unix://{}", socket.display()))
            .state_dir(&dir)
            .with_client(docker)
            .await
            .unwrap();
        let exec = runtime
            .exec(ExecRequest {
                container_id: "abc".into(),
                cmd: vec!["sh".into()],
                stdout: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        let attach = runtime
            .attach(AttachRequest {
                container_id: "abc".into(),
                stdout: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        let port_forward = runtime
            .port_forward(PortForwardRequest {
                pod_sandbox_id: "abc".into(),
                port: vec![80],
            })
            .await
            .unwrap_err();
        for (err, operation) in [
            (exec, "Exec"),
            (attach, "Attach"),
            (port_forward, "PortForward"),
        ] {
            assert!(err.is_unimplemented(), "{operation}: {err}");
            assert_eq!(err.operation(), Some(operation));
            assert!(err.message().contains("`streaming` feature"), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
