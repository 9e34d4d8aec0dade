//! `MyRuntime`: a backend of your own behind anycri's traits, shared by the
//! `serve_own_backend` and `certify_own_backend` examples.
//!
//! A real backend turns each CRI request into calls to its engine (a VM manager, a wasm
//! runtime, a remote node agent, ...). Here anycri's in-memory fake stands in for that engine,
//! so the examples run anywhere; the shape of the code is the same:
//!
//! - every RPC is a method of [`RuntimeService`] or [`ImageService`] taking and returning the
//!   CRI's own messages (`anycri::api`), under `#[async_trait]`; the compiler names any RPC
//!   left out;
//! - what the backend cannot do answers [`Error::unimplemented`], never a silent success
//!   (tools and the conformance suite read it as "not supported");
//! - errors carry the CRI's categories: `Error::not_found` for an unknown ID, and so on;
//! - the `Stream*` RPCs are streams ([`CriStream`]); a backend without native streaming
//!   answers them from its lists through [`anycri::list_stream`], as here.

use anycri::{
    CriStream, Error, ImageService, Result, RuntimeService, api::*, fake::FakeRuntime, list_stream,
};
use async_trait::async_trait;

/// The name `Version` reports (tools see it as `RuntimeFlavour::Other("my-runtime")`).
pub const NAME: &str = "my-runtime";

/// The backend. Cloning shares the engine.
#[derive(Clone, Default)]
pub struct MyRuntime {
    /// The engine behind the CRI; in a real backend, its client.
    engine: FakeRuntime,
}

impl MyRuntime {
    /// A backend on a fresh engine.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RuntimeService for MyRuntime {
    async fn version(&self, _request: VersionRequest) -> Result<VersionResponse> {
        Ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: NAME.into(),
            runtime_version: "1.0.0".into(),
            runtime_api_version: "v1".into(),
        })
    }

    // Pods and containers: straight to the engine.
    async fn run_pod_sandbox(&self, r: RunPodSandboxRequest) -> Result<RunPodSandboxResponse> {
        self.engine.run_pod_sandbox(r).await
    }
    async fn stop_pod_sandbox(&self, r: StopPodSandboxRequest) -> Result<StopPodSandboxResponse> {
        self.engine.stop_pod_sandbox(r).await
    }
    async fn remove_pod_sandbox(
        &self,
        r: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse> {
        self.engine.remove_pod_sandbox(r).await
    }
    async fn pod_sandbox_status(
        &self,
        r: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse> {
        self.engine.pod_sandbox_status(r).await
    }
    async fn list_pod_sandbox(&self, r: ListPodSandboxRequest) -> Result<ListPodSandboxResponse> {
        self.engine.list_pod_sandbox(r).await
    }
    async fn create_container(&self, r: CreateContainerRequest) -> Result<CreateContainerResponse> {
        self.engine.create_container(r).await
    }
    async fn start_container(&self, r: StartContainerRequest) -> Result<StartContainerResponse> {
        self.engine.start_container(r).await
    }
    async fn stop_container(&self, r: StopContainerRequest) -> Result<StopContainerResponse> {
        self.engine.stop_container(r).await
    }
    async fn remove_container(&self, r: RemoveContainerRequest) -> Result<RemoveContainerResponse> {
        self.engine.remove_container(r).await
    }
    async fn list_containers(&self, r: ListContainersRequest) -> Result<ListContainersResponse> {
        self.engine.list_containers(r).await
    }
    async fn container_status(&self, r: ContainerStatusRequest) -> Result<ContainerStatusResponse> {
        self.engine.container_status(r).await
    }
    async fn update_container_resources(
        &self,
        r: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        self.engine.update_container_resources(r).await
    }
    async fn reopen_container_log(
        &self,
        r: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        self.engine.reopen_container_log(r).await
    }
    async fn exec_sync(&self, r: ExecSyncRequest) -> Result<ExecSyncResponse> {
        self.engine.exec_sync(r).await
    }

    // No streaming server (see anycri-streaming's `StreamingServer` for one): say so.
    async fn exec(&self, _r: ExecRequest) -> Result<ExecResponse> {
        Err(Error::unimplemented("Exec", NAME))
    }
    async fn attach(&self, _r: AttachRequest) -> Result<AttachResponse> {
        Err(Error::unimplemented("Attach", NAME))
    }
    async fn port_forward(&self, _r: PortForwardRequest) -> Result<PortForwardResponse> {
        Err(Error::unimplemented("PortForward", NAME))
    }
    async fn checkpoint_container(
        &self,
        _r: CheckpointContainerRequest,
    ) -> Result<CheckpointContainerResponse> {
        Err(Error::unimplemented("CheckpointContainer", NAME))
    }
    async fn list_metric_descriptors(
        &self,
        _r: ListMetricDescriptorsRequest,
    ) -> Result<ListMetricDescriptorsResponse> {
        Err(Error::unimplemented("ListMetricDescriptors", NAME))
    }
    async fn list_pod_sandbox_metrics(
        &self,
        _r: ListPodSandboxMetricsRequest,
    ) -> Result<ListPodSandboxMetricsResponse> {
        Err(Error::unimplemented("ListPodSandboxMetrics", NAME))
    }
    async fn stream_pod_sandbox_metrics(
        &self,
        _r: StreamPodSandboxMetricsRequest,
    ) -> Result<CriStream<StreamPodSandboxMetricsResponse>> {
        Err(Error::unimplemented("StreamPodSandboxMetrics", NAME))
    }

    // Stats, events and runtime state: the engine's.
    async fn container_stats(&self, r: ContainerStatsRequest) -> Result<ContainerStatsResponse> {
        self.engine.container_stats(r).await
    }
    async fn list_container_stats(
        &self,
        r: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        self.engine.list_container_stats(r).await
    }
    async fn pod_sandbox_stats(
        &self,
        r: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        self.engine.pod_sandbox_stats(r).await
    }
    async fn list_pod_sandbox_stats(
        &self,
        r: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        self.engine.list_pod_sandbox_stats(r).await
    }
    async fn update_runtime_config(
        &self,
        r: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse> {
        self.engine.update_runtime_config(r).await
    }
    async fn status(&self, r: StatusRequest) -> Result<StatusResponse> {
        self.engine.status(r).await
    }
    async fn get_container_events(
        &self,
        r: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>> {
        self.engine.get_container_events(r).await
    }
    async fn runtime_config(&self, r: RuntimeConfigRequest) -> Result<RuntimeConfigResponse> {
        self.engine.runtime_config(r).await
    }
    async fn update_pod_sandbox_resources(
        &self,
        r: UpdatePodSandboxResourcesRequest,
    ) -> Result<UpdatePodSandboxResourcesResponse> {
        self.engine.update_pod_sandbox_resources(r).await
    }

    // The Stream* lists, answered from the unary lists in one message each.
    async fn stream_pod_sandboxes(
        &self,
        r: StreamPodSandboxesRequest,
    ) -> Result<CriStream<StreamPodSandboxesResponse>> {
        let list = ListPodSandboxRequest { filter: r.filter };
        let pod_sandboxes = self.list_pod_sandbox(list).await?.items;
        Ok(list_stream(pod_sandboxes, |pod_sandboxes| {
            StreamPodSandboxesResponse { pod_sandboxes }
        }))
    }
    async fn stream_containers(
        &self,
        r: StreamContainersRequest,
    ) -> Result<CriStream<StreamContainersResponse>> {
        let list = ListContainersRequest { filter: r.filter };
        let containers = self.list_containers(list).await?.containers;
        Ok(list_stream(containers, |containers| {
            StreamContainersResponse { containers }
        }))
    }
    async fn stream_container_stats(
        &self,
        r: StreamContainerStatsRequest,
    ) -> Result<CriStream<StreamContainerStatsResponse>> {
        let list = ListContainerStatsRequest { filter: r.filter };
        let container_stats = self.list_container_stats(list).await?.stats;
        Ok(list_stream(container_stats, |container_stats| {
            StreamContainerStatsResponse { container_stats }
        }))
    }
    async fn stream_pod_sandbox_stats(
        &self,
        r: StreamPodSandboxStatsRequest,
    ) -> Result<CriStream<StreamPodSandboxStatsResponse>> {
        let list = ListPodSandboxStatsRequest { filter: r.filter };
        let pod_sandbox_stats = self.list_pod_sandbox_stats(list).await?.stats;
        Ok(list_stream(pod_sandbox_stats, |pod_sandbox_stats| {
            StreamPodSandboxStatsResponse { pod_sandbox_stats }
        }))
    }
}

#[async_trait]
impl ImageService for MyRuntime {
    async fn list_images(&self, r: ListImagesRequest) -> Result<ListImagesResponse> {
        self.engine.list_images(r).await
    }
    async fn image_status(&self, r: ImageStatusRequest) -> Result<ImageStatusResponse> {
        self.engine.image_status(r).await
    }
    async fn pull_image(&self, r: PullImageRequest) -> Result<PullImageResponse> {
        self.engine.pull_image(r).await
    }
    async fn remove_image(&self, r: RemoveImageRequest) -> Result<RemoveImageResponse> {
        self.engine.remove_image(r).await
    }
    async fn image_fs_info(&self, r: ImageFsInfoRequest) -> Result<ImageFsInfoResponse> {
        self.engine.image_fs_info(r).await
    }
    async fn stream_images(
        &self,
        r: StreamImagesRequest,
    ) -> Result<CriStream<StreamImagesResponse>> {
        let images = self
            .list_images(ListImagesRequest { filter: r.filter })
            .await?
            .images;
        Ok(list_stream(images, |images| StreamImagesResponse {
            images,
        }))
    }
}
