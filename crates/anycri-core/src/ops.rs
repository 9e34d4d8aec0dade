//! The CRI operations as data: one [`Operation`] per RPC with its name, service, whether it
//! only reads (and so may be retried), and the deadline the kubelet's CRI client gives it.
//! The `for_each_*_rpc!` macros list every RPC once; decorators, backends and servers
//! generate their forwarding code from that list so none can forget an RPC.

use std::time::Duration;

use crate::api;

/// Which CRI service an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// `runtime.v1.RuntimeService`.
    Runtime,
    /// `runtime.v1.ImageService`.
    Image,
}

/// How the kubelet's CRI client bounds an operation in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlinePolicy {
    /// The request timeout.
    Standard,
    /// Twice the request timeout (RunPodSandbox: it may pull the sandbox image and set up networking).
    Double,
    /// The request timeout plus the operation's own timeout from the request
    /// (StopContainer's grace period, CheckpointContainer's timeout).
    PlusOwn,
    /// The request timeout plus the operation's own timeout, or no deadline when the request
    /// sets none (ExecSync).
    PlusOwnOrNone,
    /// No deadline (PullImage, event and list streams).
    None,
}

/// Whether an RPC answers once or streams its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
}

/// One CRI RPC.
///
/// ```
/// use std::time::Duration;
/// use anycri_core::ops::{Shape, op};
/// let t = Duration::from_secs(120); // the kubelet's --runtime-request-timeout
/// assert_eq!(op::RUN_POD_SANDBOX.deadline_for(t, None), Some(t * 2));
/// // StopContainer gets its grace period on top; PullImage and streams no deadline at all.
/// assert_eq!(op::STOP_CONTAINER.deadline_for(t, Some(Duration::from_secs(30))), Some(t + Duration::from_secs(30)));
/// assert_eq!(op::PULL_IMAGE.deadline_for(t, None), None);
/// assert!(op::LIST_CONTAINERS.read_only && !op::REMOVE_CONTAINER.read_only);
/// assert_eq!(op::GET_CONTAINER_EVENTS.shape, Shape::ServerStreaming);
/// assert_eq!(op::VERSION.grpc_path(), "/runtime.v1.RuntimeService/Version");
/// assert_eq!(op::ALL.len(), 41);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Operation {
    /// The RPC's name in the CRI ("RunPodSandbox").
    pub name: &'static str,
    /// The service it belongs to.
    pub service: Service,
    /// True when the RPC only reads, so calling it again is harmless.
    pub read_only: bool,
    /// Unary or server streaming.
    pub shape: Shape,
    /// Its deadline policy.
    pub deadline: DeadlinePolicy,
}

impl Operation {
    /// The deadline for one call, given the client's request timeout and the operation's own
    /// timeout from the request (see [`CriRequest::own_timeout`]).
    pub fn deadline_for(
        &self,
        request_timeout: Duration,
        own: Option<Duration>,
    ) -> Option<Duration> {
        match self.deadline {
            DeadlinePolicy::Standard => Some(request_timeout),
            DeadlinePolicy::Double => Some(request_timeout.saturating_mul(2)),
            // Saturating: a request's own timeout can be anything up to i64::MAX seconds.
            DeadlinePolicy::PlusOwn => {
                Some(request_timeout.saturating_add(own.unwrap_or_default()))
            }
            DeadlinePolicy::PlusOwnOrNone => own
                .filter(|d| !d.is_zero())
                .map(|own| request_timeout.saturating_add(own)),
            DeadlinePolicy::None => None,
        }
    }

    /// The gRPC path (`/runtime.v1.RuntimeService/Version`).
    pub fn grpc_path(&self) -> String {
        let service = match self.service {
            Service::Runtime => anycri_api::service_names::RUNTIME,
            Service::Image => anycri_api::service_names::IMAGE,
        };
        format!("/{service}/{}", self.name)
    }
}

/// Return types by RPC shape, so one macro arm fits unary and streaming RPCs:
/// `shape::unary<T>` is `T`, `shape::stream<T>` is [`CriStream<T>`](crate::CriStream).
#[allow(non_camel_case_types)]
pub mod shape {
    /// A unary RPC returns its response.
    pub type unary<T> = T;
    /// A server-streaming RPC returns a stream of responses.
    pub type stream<T> = crate::service::CriStream<T>;
}

/// Calls `$callback!` with the list of every RuntimeService RPC, one entry per line:
/// `unary|stream method(Request) -> Response = OPERATION_CONST;`.
///
/// Code that must cover every RPC (a decorator, a server, a forwarding backend) is generated
/// from the list, so a new RPC cannot be forgotten. The list is handed over as tokens, so
/// the callback can be any `macro_rules!` macro:
///
/// ```
/// macro_rules! names {
///     ($($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
///         [$(stringify!($method)),*]
///     };
/// }
/// let rpcs = anycri_core::for_each_runtime_rpc!(names);
/// assert_eq!(rpcs[0], "version");
/// assert!(rpcs.contains(&"get_container_events"));
/// assert_eq!(rpcs.len() + anycri_core::for_each_image_rpc!(names).len(), anycri_core::ops::op::ALL.len());
/// ```
#[macro_export]
macro_rules! for_each_runtime_rpc {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)?
            unary version(VersionRequest) -> VersionResponse = VERSION;
            unary run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse = RUN_POD_SANDBOX;
            unary stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse = STOP_POD_SANDBOX;
            unary remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse = REMOVE_POD_SANDBOX;
            unary pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse = POD_SANDBOX_STATUS;
            unary list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse = LIST_POD_SANDBOX;
            unary create_container(CreateContainerRequest) -> CreateContainerResponse = CREATE_CONTAINER;
            unary start_container(StartContainerRequest) -> StartContainerResponse = START_CONTAINER;
            unary stop_container(StopContainerRequest) -> StopContainerResponse = STOP_CONTAINER;
            unary remove_container(RemoveContainerRequest) -> RemoveContainerResponse = REMOVE_CONTAINER;
            unary list_containers(ListContainersRequest) -> ListContainersResponse = LIST_CONTAINERS;
            unary container_status(ContainerStatusRequest) -> ContainerStatusResponse = CONTAINER_STATUS;
            unary update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse = UPDATE_CONTAINER_RESOURCES;
            unary reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse = REOPEN_CONTAINER_LOG;
            unary exec_sync(ExecSyncRequest) -> ExecSyncResponse = EXEC_SYNC;
            unary exec(ExecRequest) -> ExecResponse = EXEC;
            unary attach(AttachRequest) -> AttachResponse = ATTACH;
            unary port_forward(PortForwardRequest) -> PortForwardResponse = PORT_FORWARD;
            unary container_stats(ContainerStatsRequest) -> ContainerStatsResponse = CONTAINER_STATS;
            unary list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse = LIST_CONTAINER_STATS;
            unary pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse = POD_SANDBOX_STATS;
            unary list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse = LIST_POD_SANDBOX_STATS;
            unary update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse = UPDATE_RUNTIME_CONFIG;
            unary status(StatusRequest) -> StatusResponse = STATUS;
            unary checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse = CHECKPOINT_CONTAINER;
            stream get_container_events(GetEventsRequest) -> ContainerEventResponse = GET_CONTAINER_EVENTS;
            unary list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse = LIST_METRIC_DESCRIPTORS;
            unary list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse = LIST_POD_SANDBOX_METRICS;
            unary runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse = RUNTIME_CONFIG;
            unary update_pod_sandbox_resources(UpdatePodSandboxResourcesRequest) -> UpdatePodSandboxResourcesResponse = UPDATE_POD_SANDBOX_RESOURCES;
            stream stream_pod_sandboxes(StreamPodSandboxesRequest) -> StreamPodSandboxesResponse = STREAM_POD_SANDBOXES;
            stream stream_containers(StreamContainersRequest) -> StreamContainersResponse = STREAM_CONTAINERS;
            stream stream_container_stats(StreamContainerStatsRequest) -> StreamContainerStatsResponse = STREAM_CONTAINER_STATS;
            stream stream_pod_sandbox_stats(StreamPodSandboxStatsRequest) -> StreamPodSandboxStatsResponse = STREAM_POD_SANDBOX_STATS;
            stream stream_pod_sandbox_metrics(StreamPodSandboxMetricsRequest) -> StreamPodSandboxMetricsResponse = STREAM_POD_SANDBOX_METRICS;
        }
    };
}

/// Calls `$callback!` with the list of every ImageService RPC, in the format of
/// [`for_each_runtime_rpc!`].
#[macro_export]
macro_rules! for_each_image_rpc {
    ($callback:ident $(, $($extra:tt)*)?) => {
        $callback! {
            $($($extra)*)?
            unary list_images(ListImagesRequest) -> ListImagesResponse = LIST_IMAGES;
            unary image_status(ImageStatusRequest) -> ImageStatusResponse = IMAGE_STATUS;
            unary pull_image(PullImageRequest) -> PullImageResponse = PULL_IMAGE;
            unary remove_image(RemoveImageRequest) -> RemoveImageResponse = REMOVE_IMAGE;
            unary image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse = IMAGE_FS_INFO;
            stream stream_images(StreamImagesRequest) -> StreamImagesResponse = STREAM_IMAGES;
        }
    };
}

macro_rules! operations {
    ($($const:ident = $name:literal, $service:ident, $read:literal, $shape:ident, $deadline:ident;)*) => {
        $(
            #[doc = concat!("`", $name, "`.")]
            pub const $const: Operation = Operation {
                name: $name,
                service: Service::$service,
                read_only: $read,
                shape: Shape::$shape,
                deadline: DeadlinePolicy::$deadline,
            };
        )*
        /// Every operation of both services.
        pub const ALL: &[Operation] = &[$($const),*];
    };
}

/// One constant per CRI RPC.
pub mod op {
    use super::{DeadlinePolicy, Operation, Service, Shape};

    operations! {
        VERSION = "Version", Runtime, true, Unary, Standard;
        RUN_POD_SANDBOX = "RunPodSandbox", Runtime, false, Unary, Double;
        STOP_POD_SANDBOX = "StopPodSandbox", Runtime, false, Unary, Standard;
        REMOVE_POD_SANDBOX = "RemovePodSandbox", Runtime, false, Unary, Standard;
        POD_SANDBOX_STATUS = "PodSandboxStatus", Runtime, true, Unary, Standard;
        LIST_POD_SANDBOX = "ListPodSandbox", Runtime, true, Unary, Standard;
        CREATE_CONTAINER = "CreateContainer", Runtime, false, Unary, Standard;
        START_CONTAINER = "StartContainer", Runtime, false, Unary, Standard;
        STOP_CONTAINER = "StopContainer", Runtime, false, Unary, PlusOwn;
        REMOVE_CONTAINER = "RemoveContainer", Runtime, false, Unary, Standard;
        LIST_CONTAINERS = "ListContainers", Runtime, true, Unary, Standard;
        CONTAINER_STATUS = "ContainerStatus", Runtime, true, Unary, Standard;
        UPDATE_CONTAINER_RESOURCES = "UpdateContainerResources", Runtime, false, Unary, Standard;
        REOPEN_CONTAINER_LOG = "ReopenContainerLog", Runtime, false, Unary, Standard;
        EXEC_SYNC = "ExecSync", Runtime, false, Unary, PlusOwnOrNone;
        EXEC = "Exec", Runtime, false, Unary, Standard;
        ATTACH = "Attach", Runtime, false, Unary, Standard;
        PORT_FORWARD = "PortForward", Runtime, false, Unary, Standard;
        CONTAINER_STATS = "ContainerStats", Runtime, true, Unary, Standard;
        LIST_CONTAINER_STATS = "ListContainerStats", Runtime, true, Unary, Standard;
        POD_SANDBOX_STATS = "PodSandboxStats", Runtime, true, Unary, Standard;
        LIST_POD_SANDBOX_STATS = "ListPodSandboxStats", Runtime, true, Unary, Standard;
        UPDATE_RUNTIME_CONFIG = "UpdateRuntimeConfig", Runtime, false, Unary, Standard;
        STATUS = "Status", Runtime, true, Unary, Standard;
        CHECKPOINT_CONTAINER = "CheckpointContainer", Runtime, false, Unary, PlusOwn;
        GET_CONTAINER_EVENTS = "GetContainerEvents", Runtime, true, ServerStreaming, None;
        LIST_METRIC_DESCRIPTORS = "ListMetricDescriptors", Runtime, true, Unary, Standard;
        LIST_POD_SANDBOX_METRICS = "ListPodSandboxMetrics", Runtime, true, Unary, Standard;
        RUNTIME_CONFIG = "RuntimeConfig", Runtime, true, Unary, Standard;
        UPDATE_POD_SANDBOX_RESOURCES = "UpdatePodSandboxResources", Runtime, false, Unary, Standard;
        STREAM_POD_SANDBOXES = "StreamPodSandboxes", Runtime, true, ServerStreaming, None;
        STREAM_CONTAINERS = "StreamContainers", Runtime, true, ServerStreaming, None;
        STREAM_CONTAINER_STATS = "StreamContainerStats", Runtime, true, ServerStreaming, None;
        STREAM_POD_SANDBOX_STATS = "StreamPodSandboxStats", Runtime, true, ServerStreaming, None;
        STREAM_POD_SANDBOX_METRICS = "StreamPodSandboxMetrics", Runtime, true, ServerStreaming, None;
        LIST_IMAGES = "ListImages", Image, true, Unary, Standard;
        IMAGE_STATUS = "ImageStatus", Image, true, Unary, Standard;
        PULL_IMAGE = "PullImage", Image, false, Unary, None;
        REMOVE_IMAGE = "RemoveImage", Image, false, Unary, Standard;
        IMAGE_FS_INFO = "ImageFsInfo", Image, true, Unary, Standard;
        STREAM_IMAGES = "StreamImages", Image, true, ServerStreaming, None;
    }
}

/// What anycri reads from any CRI request: the IDs it names (for tracing and logs) and the
/// operation's own timeout (for deadlines).
///
/// ```
/// use std::time::Duration;
/// use anycri_core::{CriRequest, api::{ExecSyncRequest, StopPodSandboxRequest}};
/// let exec = ExecSyncRequest { container_id: "c1".into(), cmd: vec!["true".into()], timeout: 5 };
/// assert_eq!(exec.container_id(), Some("c1"));
/// assert_eq!(exec.own_timeout(), Some(Duration::from_secs(5)));
/// let stop = StopPodSandboxRequest { pod_sandbox_id: "p1".into() };
/// assert_eq!((stop.pod_sandbox_id(), stop.container_id()), (Some("p1"), None));
/// ```
pub trait CriRequest: Clone + Send + Sync + 'static {
    /// The pod sandbox the request is about, if it names one.
    fn pod_sandbox_id(&self) -> Option<&str> {
        None
    }
    /// The container the request is about, if it names one.
    fn container_id(&self) -> Option<&str> {
        None
    }
    /// The operation's own timeout carried in the request (grace period, exec timeout).
    fn own_timeout(&self) -> Option<Duration> {
        None
    }
}

macro_rules! cri_requests {
    (plain: $($plain:ident),*; pod: $($pod:ident),*; container: $($ctr:ident),*;) => {
        $(impl CriRequest for api::$plain {})*
        $(impl CriRequest for api::$pod {
            fn pod_sandbox_id(&self) -> Option<&str> {
                Some(&self.pod_sandbox_id)
            }
        })*
        $(impl CriRequest for api::$ctr {
            fn container_id(&self) -> Option<&str> {
                Some(&self.container_id)
            }
        })*
    };
}

cri_requests! {
    plain: VersionRequest, RunPodSandboxRequest, ListPodSandboxRequest, ListContainersRequest,
        ListContainerStatsRequest, ListPodSandboxStatsRequest, UpdateRuntimeConfigRequest,
        StatusRequest, GetEventsRequest, ListMetricDescriptorsRequest,
        ListPodSandboxMetricsRequest, RuntimeConfigRequest, StreamPodSandboxesRequest,
        StreamContainersRequest, StreamContainerStatsRequest, StreamPodSandboxStatsRequest,
        StreamPodSandboxMetricsRequest, ListImagesRequest, ImageStatusRequest, PullImageRequest,
        RemoveImageRequest, ImageFsInfoRequest, StreamImagesRequest;
    pod: StopPodSandboxRequest, RemovePodSandboxRequest, PodSandboxStatusRequest,
        PortForwardRequest, PodSandboxStatsRequest, UpdatePodSandboxResourcesRequest;
    container: StartContainerRequest, RemoveContainerRequest, ContainerStatusRequest,
        UpdateContainerResourcesRequest, ReopenContainerLogRequest, ExecRequest, AttachRequest,
        ContainerStatsRequest;
}

impl CriRequest for api::CreateContainerRequest {
    fn pod_sandbox_id(&self) -> Option<&str> {
        Some(&self.pod_sandbox_id)
    }
}

impl CriRequest for api::StopContainerRequest {
    fn container_id(&self) -> Option<&str> {
        Some(&self.container_id)
    }
    fn own_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout.max(0) as u64))
    }
}

impl CriRequest for api::ExecSyncRequest {
    fn container_id(&self) -> Option<&str> {
        Some(&self.container_id)
    }
    fn own_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout.max(0) as u64))
    }
}

impl CriRequest for api::CheckpointContainerRequest {
    fn container_id(&self) -> Option<&str> {
        Some(&self.container_id)
    }
    fn own_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.timeout.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_kubelet() {
        let t = Duration::from_secs(2);
        assert_eq!(op::VERSION.deadline_for(t, None), Some(t));
        assert_eq!(op::RUN_POD_SANDBOX.deadline_for(t, None), Some(t * 2));
        assert_eq!(
            op::STOP_CONTAINER.deadline_for(t, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(32))
        );
        assert_eq!(op::EXEC_SYNC.deadline_for(t, Some(Duration::ZERO)), None);
        assert_eq!(
            op::EXEC_SYNC.deadline_for(t, Some(Duration::from_secs(5))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(op::PULL_IMAGE.deadline_for(t, None), None);
        assert_eq!(op::GET_CONTAINER_EVENTS.deadline_for(t, None), None);
        // Whatever the request says, no overflow.
        assert_eq!(
            op::STOP_CONTAINER.deadline_for(Duration::MAX, Some(Duration::MAX)),
            Some(Duration::MAX)
        );
        assert_eq!(
            op::RUN_POD_SANDBOX.deadline_for(Duration::MAX, None),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn names_are_unique_and_paths_well_formed() {
        let mut names: Vec<_> = op::ALL.iter().map(|o| o.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), op::ALL.len());
        assert_eq!(
            op::VERSION.grpc_path(),
            "/runtime.v1.RuntimeService/Version"
        );
        assert_eq!(
            op::PULL_IMAGE.grpc_path(),
            "/runtime.v1.ImageService/PullImage"
        );
    }
}
