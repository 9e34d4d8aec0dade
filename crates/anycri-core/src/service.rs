//! The contract every backend implements: [`RuntimeService`] and [`ImageService`], one
//! required async method per CRI v1 RPC, taking and returning the CRI messages. Both traits
//! are object safe; `Arc<dyn RuntimeService>` is what crates pass around.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::{api::*, error::Result};

/// A stream of responses from a server-streaming RPC (events, Stream* lists).
pub type CriStream<T> = BoxStream<'static, Result<T>>;

/// The CRI `RuntimeService`: pod sandboxes, containers, exec, stats, events and runtime
/// status. Methods are named after the RPCs in snake case; see the CRI for each one's
/// semantics. Implementations return [`crate::Error::Unimplemented`] for what they lack, never
/// a silent success.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RuntimeService: Send + Sync {
    /// `Version`: runtime name, version and CRI API version.
    async fn version(&self, request: VersionRequest) -> Result<VersionResponse>;
    /// `RunPodSandbox`: create and start a pod sandbox; it is ready when this returns.
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
    async fn list_pod_sandbox(
        &self,
        request: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse>;
    /// `CreateContainer`: create a container in a sandbox.
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
    async fn update_container_resources(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse>;
    /// `ReopenContainerLog`: reopen the container's log file (after rotation).
    async fn reopen_container_log(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse>;
    /// `ExecSync`: run a command in a container and collect its output and exit code.
    async fn exec_sync(&self, request: ExecSyncRequest) -> Result<ExecSyncResponse>;
    /// `Exec`: a streaming-server URL for an interactive exec.
    async fn exec(&self, request: ExecRequest) -> Result<ExecResponse>;
    /// `Attach`: a streaming-server URL to attach to a container.
    async fn attach(&self, request: AttachRequest) -> Result<AttachResponse>;
    /// `PortForward`: a streaming-server URL to forward ports into a sandbox.
    async fn port_forward(&self, request: PortForwardRequest) -> Result<PortForwardResponse>;
    /// `ContainerStats`.
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
    async fn update_runtime_config(
        &self,
        request: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse>;
    /// `Status`: runtime conditions, handlers and features (with `verbose`, extra info).
    async fn status(&self, request: StatusRequest) -> Result<StatusResponse>;
    /// `CheckpointContainer`.
    async fn checkpoint_container(
        &self,
        request: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse>;
    /// `GetContainerEvents`: a stream of container lifecycle events.
    async fn get_container_events(
        &self,
        request: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>>;
    /// `ListMetricDescriptors`.
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
    async fn runtime_config(&self, request: RuntimeConfigRequest) -> Result<RuntimeConfigResponse>;
    /// `UpdatePodSandboxResources`: tell the runtime a pod's resources changed.
    async fn update_pod_sandbox_resources(
        &self,
        request: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse>;
    /// `StreamPodSandboxes`: ListPodSandbox, one sandbox per message.
    async fn stream_pod_sandboxes(
        &self,
        request: StreamPodSandboxesRequest,
    ) -> Result<CriStream<StreamPodSandboxesResponse>>;
    /// `StreamContainers`: ListContainers, one container per message.
    async fn stream_containers(
        &self,
        request: StreamContainersRequest,
    ) -> Result<CriStream<StreamContainersResponse>>;
    /// `StreamContainerStats`: ListContainerStats, one entry per message.
    async fn stream_container_stats(
        &self,
        request: StreamContainerStatsRequest,
    ) -> Result<CriStream<StreamContainerStatsResponse>>;
    /// `StreamPodSandboxStats`: ListPodSandboxStats, one entry per message.
    async fn stream_pod_sandbox_stats(
        &self,
        request: StreamPodSandboxStatsRequest,
    ) -> Result<CriStream<StreamPodSandboxStatsResponse>>;
    /// `StreamPodSandboxMetrics`: ListPodSandboxMetrics, one entry per message.
    async fn stream_pod_sandbox_metrics(
        &self,
        request: StreamPodSandboxMetricsRequest,
    ) -> Result<CriStream<StreamPodSandboxMetricsResponse>>;
}

/// The CRI `ImageService`: list, inspect, pull and remove images.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ImageService: Send + Sync {
    /// `ListImages`.
    async fn list_images(&self, request: ListImagesRequest) -> Result<ListImagesResponse>;
    /// `ImageStatus`: the image, or `None` in the response when it is absent.
    async fn image_status(&self, request: ImageStatusRequest) -> Result<ImageStatusResponse>;
    /// `PullImage`: pull and return the image reference (ID or digest).
    async fn pull_image(&self, request: PullImageRequest) -> Result<PullImageResponse>;
    /// `RemoveImage`. Idempotent.
    async fn remove_image(&self, request: RemoveImageRequest) -> Result<RemoveImageResponse>;
    /// `ImageFsInfo`: usage of the filesystems that hold images and containers.
    async fn image_fs_info(&self, request: ImageFsInfoRequest) -> Result<ImageFsInfoResponse>;
    /// `StreamImages`: ListImages, one image per message.
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
