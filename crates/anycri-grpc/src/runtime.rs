//! [`GrpcRuntime`]: the CRI client. Every RPC goes through [`GrpcRuntime::unary`] or
//! [`GrpcRuntime::server_stream`], which apply the kubelet's deadlines, map statuses to
//! [`Error`]s and wait out a runtime restart.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anycri_api::v1::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
};
use anycri_core::{
    Call, CriRequest, Error, ErrorKind, Layer, Operation, Result, RetryLayer, RuntimeFlavour,
    TimeoutLayer,
    api::*,
    list_stream,
    ops::op,
    service::{CriStream, ImageService, RuntimeService},
};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;

use crate::{flavour, transport};

/// The kubelet's default `--runtime-request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The kubelet's default maximum message size (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Configures and connects a [`GrpcRuntime`].
///
/// ```no_run
/// # #[tokio::main] async fn main() -> anycri_core::Result<()> {
/// use std::time::Duration;
/// use anycri_grpc::GrpcRuntime;
/// let containerd = GrpcRuntime::builder("unix:///run/containerd/containerd.sock")
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(30)) // the kubelet's --runtime-request-timeout
///     .max_message_size(80 * 1024 * 1024) // for nodes with very many containers
///     .reconnect_for(Duration::from_secs(60)) // ride out a runtime restart this long
///     .connect()
///     .await?;
/// println!("{:?}", containerd.flavour());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcRuntimeBuilder {
    endpoint: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_message_size: usize,
    handshake: bool,
    reconnect_for: Duration,
}

impl GrpcRuntimeBuilder {
    /// A builder for `endpoint` (`unix:///path` or a bare absolute path).
    pub fn new(endpoint: impl Into<String>) -> Self {
        GrpcRuntimeBuilder {
            endpoint: endpoint.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            handshake: true,
            reconnect_for: Duration::from_secs(30),
        }
    }

    /// How long to wait for the socket to accept a connection and, with the handshake, for
    /// its `Version` answer (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The base request timeout the per-call deadlines derive from (default 2 min).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest message sent or received (default 16 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Whether `connect` calls `Version` (default true). Without it, `connect` does not touch
    /// the socket and the flavour stays unknown until [`GrpcRuntime::handshake`].
    pub fn handshake(mut self, on: bool) -> Self {
        self.handshake = on;
        self
    }

    /// How long a call waits for the runtime to come back when its socket stops answering
    /// (default 30 s; zero disables reconnect waits).
    pub fn reconnect_for(mut self, window: Duration) -> Self {
        self.reconnect_for = window;
        self
    }

    /// Connect (and, by default, handshake).
    pub async fn connect(self) -> Result<GrpcRuntime> {
        let path = transport::socket_path(&self.endpoint)?;
        let context = |e: Error| e.context(format!("runtime endpoint unix://{}", path.display()));
        let channel = transport::channel(path.clone(), self.connect_timeout, self.handshake)
            .await
            .map_err(context)?;
        let runtime = GrpcRuntime {
            inner: Arc::new(Inner {
                channel,
                endpoint: format!("unix://{}", path.display()),
                path: path.clone(),
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
                max_message_size: self.max_message_size,
                reconnect_for: self.reconnect_for,
                version: RwLock::new(None),
                unary_lists: Default::default(),
            }),
        };
        if self.handshake {
            // Bounded by the connect timeout, not the request timeout: a socket that accepts
            // but does not answer gRPC (containerd's `.ttrpc`, a wrong service) fails fast.
            match tokio::time::timeout(self.connect_timeout, runtime.handshake()).await {
                Ok(result) => {
                    result.map_err(context)?;
                }
                Err(_) => {
                    return Err(context(Error::new(
                        ErrorKind::DeadlineExceeded,
                        format!(
                            "no CRI Version answer within the connect timeout ({:?}): the socket accepts connections but does not answer CRI gRPC (is it containerd's .ttrpc socket, or another service?)",
                            self.connect_timeout
                        ),
                    )));
                }
            }
        }
        Ok(runtime)
    }
}

/// The longest `grpc-timeout` gRPC can say: 8 digits of hours (over 11,000 years).
const MAX_GRPC_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// How long `GetContainerEvents` waits for the runtime's answer before handing out a stream
/// that waits for it (see `GrpcRuntime::container_events`).
const EVENTS_HEADER_WAIT: Duration = Duration::from_millis(250);

struct Inner {
    channel: Channel,
    path: PathBuf,
    /// `unix://<path>`, as errors name it.
    endpoint: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_message_size: usize,
    reconnect_for: Duration,
    version: RwLock<Option<VersionResponse>>,
    /// Per Stream* RPC: the runtime answered Unimplemented, use the unary list.
    unary_lists: [AtomicBool; 6],
}

/// A CRI v1 client over a unix socket. Cheap to clone; clones share the connection.
///
/// Here it talks to the in-memory fake served by `anycri-server` on a temporary socket; a
/// containerd, CRI-O or cri-dockerd socket works the same way.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::sync::Arc;
/// use anycri_core::{ImageServiceExt, RuntimeFlavour, RuntimeService};
/// use anycri_grpc::GrpcRuntime;
/// # let dir = tempfile::tempdir().unwrap();
/// # let socket = dir.path().join("cri.sock");
/// # let backend = Arc::new(anycri_fake::FakeRuntime::new());
/// # let server = anycri_server::CriServer::new(backend.clone(), backend);
/// # tokio::spawn(anycri_server::serve_unix(server, socket.clone(), Default::default(), std::future::pending()));
/// # while !socket.exists() { tokio::time::sleep(std::time::Duration::from_millis(10)).await; }
/// # let endpoint = format!("unix://{}", socket.display());
/// let runtime = GrpcRuntime::connect(&endpoint).await?; // e.g. unix:///run/containerd/containerd.sock
/// // The Version handshake on connect tells which runtime answers.
/// assert_eq!(runtime.flavour(), Some(RuntimeFlavour::Anycri));
/// let pods = runtime.list_pod_sandbox(Default::default()).await?;
/// assert!(pods.items.is_empty());
/// // One client for both services.
/// runtime.pull_image_if_absent("busybox:1.36", None).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GrpcRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GrpcRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcRuntime")
            .field("socket", &self.inner.path)
            .field("flavour", &self.flavour())
            .finish()
    }
}

/// Whether an error means the socket did not answer (the call never reached the runtime).
/// What the reconnect wait retries: any call whose connection failed (it never reached the
/// runtime), and read-only calls the runtime answered Unavailable.
fn reconnectable(call: &Call<'_>, err: &Error) -> bool {
    is_connection_error(err) || (call.operation.read_only && err.kind() == ErrorKind::Unavailable)
}

fn is_connection_error(err: &Error) -> bool {
    if err.kind() != ErrorKind::Unavailable {
        return false;
    }
    let Some(status) = err.as_status() else {
        return true;
    };
    // tonic reports a failed dial or a dropped connection as Unavailable with a transport
    // error as its source; a runtime's own Unavailable carries no source.
    std::error::Error::source(status).is_some()
}

impl GrpcRuntime {
    /// A builder for `endpoint`.
    pub fn builder(endpoint: impl Into<String>) -> GrpcRuntimeBuilder {
        GrpcRuntimeBuilder::new(endpoint)
    }

    /// Connect to `endpoint` with the default settings.
    pub async fn connect(endpoint: impl Into<String>) -> Result<Self> {
        GrpcRuntimeBuilder::new(endpoint).connect().await
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.inner.path
    }

    /// The connect timeout it was built with.
    #[cfg_attr(not(feature = "containerd"), allow(dead_code))]
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.inner.connect_timeout
    }

    /// The `Version` answer from the last handshake.
    pub fn version_info(&self) -> Option<VersionResponse> {
        self.inner.version.read().ok().and_then(|v| v.clone())
    }

    /// The runtime's flavour, recognised from `Version` (None before a handshake).
    pub fn flavour(&self) -> Option<RuntimeFlavour> {
        self.version_info()
            .map(|v| RuntimeFlavour::from_runtime_name(&v.runtime_name))
    }

    /// Whether the runtime serves the `Stream*` list RPCs itself: `Some(false)` once one of
    /// them answered Unimplemented (this client then uses the unary lists), `None` before any
    /// was tried.
    pub fn serves_list_streaming(&self) -> Option<bool> {
        if self
            .inner
            .unary_lists
            .iter()
            .any(|f| f.load(Ordering::Relaxed))
        {
            Some(false)
        } else {
            None
        }
    }

    /// Call `Version` and remember the runtime's name and flavour.
    ///
    /// A socket that answers gRPC without the CRI ("unknown service
    /// runtime.v1.RuntimeService") is most often a containerd whose CRI plugin is disabled:
    /// the Unimplemented error says so; with the `containerd` feature, containerd's
    /// introspection service is asked, and a disabled or failed CRI plugin becomes a
    /// FailedPrecondition that says which and how to enable it.
    pub async fn handshake(&self) -> Result<VersionResponse> {
        let version = match RuntimeService::version(
            self,
            VersionRequest {
                version: anycri_api::CRI_API_VERSION.into(),
            },
        )
        .await
        {
            Ok(v) => v,
            Err(e) if e.is_unimplemented() => return Err(self.no_cri(e).await),
            Err(e) => return Err(e),
        };
        if let Ok(mut slot) = self.inner.version.write() {
            *slot = Some(version.clone());
        }
        Ok(version)
    }

    /// The error for a `Version` that is unimplemented (see [`Self::handshake`]).
    async fn no_cri(&self, err: Error) -> Error {
        #[cfg(feature = "containerd")]
        if let Some(explained) = crate::containerd::explain_missing_cri(self, &err).await {
            return explained;
        }
        let message = format!(
            "{}: the socket speaks gRPC but does not serve the CRI v1 RuntimeService; if it \
             is a containerd's, its CRI plugin may be disabled (\"cri\" in `disabled_plugins` \
             of its config file, as in Docker's own containerd) or have failed to start: \
             enable it and restart containerd",
            err.message()
        );
        Error::with_source(ErrorKind::Unimplemented, message, err)
    }

    /// `GetContainerEvents`; on a containerd whose CRI lacks it (1.6) and with the
    /// `containerd` feature, served from containerd's events service.
    async fn container_events(
        &self,
        request: GetEventsRequest,
    ) -> Result<CriStream<ContainerEventResponse>> {
        let this = self.clone();
        let mut call = Box::pin(async move {
            this.server_stream(&op::GET_CONTAINER_EVENTS, request, |rt, req| async move {
                rt.runtime_client().get_container_events(req).await
            })
            .await
        });
        // CRI-O (grpc-go) sends the response headers of this stream with its first event, so
        // the call would not return until something happens — and a caller that subscribes
        // before making the change it waits for would wait forever. An answer (an error
        // above all) comes at once; silence for a moment means the runtime has the
        // subscription, and the stream waits for the headers itself.
        let result = match tokio::time::timeout(EVENTS_HEADER_WAIT, &mut call).await {
            Ok(result) => result,
            Err(_) => {
                return Ok(futures::stream::once(call)
                    .flat_map(|r| match r {
                        Ok(stream) => stream,
                        Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                    })
                    .boxed());
            }
        };
        #[cfg(feature = "containerd")]
        if let Err(e) = &result
            && e.is_unimplemented()
            && crate::containerd::is_containerd(self).await
        {
            return crate::containerd::container_events(self).await;
        }
        result
    }

    fn runtime_client(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.inner.channel.clone())
            .max_decoding_message_size(self.inner.max_message_size)
            .max_encoding_message_size(self.inner.max_message_size)
    }

    fn image_client(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.inner.channel.clone())
            .max_decoding_message_size(self.inner.max_message_size)
            .max_encoding_message_size(self.inner.max_message_size)
    }

    /// Run one attempt of a call: its deadline goes on the wire as `grpc-timeout` (the
    /// client side is bounded by the [`TimeoutLayer`] in [`Self::run`]), and a status
    /// becomes an [`Error`] (through [`flavour`]).
    async fn attempt<Req, Resp, F, Fut>(
        &self,
        operation: &'static Operation,
        request: &Req,
        call: &F,
    ) -> Result<Resp>
    where
        Req: CriRequest,
        F: Fn(GrpcRuntime, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let deadline = operation.deadline_for(self.inner.request_timeout, request.own_timeout());
        let mut req = tonic::Request::new(request.clone());
        if let Some(d) = deadline {
            // A request's own timeout can be up to i64::MAX seconds, more than gRPC's
            // `grpc-timeout` header holds (tonic panics on it): cap what goes on the wire.
            req.set_timeout(d.min(MAX_GRPC_TIMEOUT));
        }
        call(self.clone(), req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| flavour::error(self.flavour().as_ref(), Error::from(status)))
    }

    /// Run a call through the core's layers, as any backend would be: the kubelet's
    /// deadlines ([`TimeoutLayer`]; the runtime enforces `grpc-timeout` too, this bounds one
    /// that does not) inside a [`RetryLayer`] that waits for the runtime to come back when
    /// its socket stops answering (with backoff, up to the reconnect window). A call that may
    /// have reached the runtime is only repeated when it is read-only. Errors name the
    /// operation and the endpoint.
    async fn run<Req, Resp, F, Fut>(
        &self,
        operation: &'static Operation,
        request: Req,
        call: F,
    ) -> Result<Resp>
    where
        Req: CriRequest,
        Resp: Send,
        F: Fn(GrpcRuntime, tonic::Request<Req>) -> Fut + Send + Sync,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>> + Send,
    {
        let layer_call = Call::new(operation, &request);
        let timeouts = TimeoutLayer::new(self.inner.request_timeout);
        let reconnect = RetryLayer::default()
            .max_attempts(u32::MAX)
            .initial_backoff(Duration::from_millis(50))
            .max_backoff(Duration::from_secs(2))
            .max_elapsed(self.inner.reconnect_for)
            .retry_if(reconnectable);
        let (timeouts, request, call) = (&timeouts, &request, &call);
        reconnect
            .around(layer_call, move || {
                timeouts.around(layer_call, move || self.attempt(operation, request, call))
            })
            .await
            .map_err(|e| e.with_origin(operation.name, &self.inner.endpoint))
    }

    /// A server-streaming call; statuses inside the stream become errors.
    async fn server_stream<Req, Resp, F, Fut>(
        &self,
        operation: &'static Operation,
        request: Req,
        call: F,
    ) -> Result<CriStream<Resp>>
    where
        Req: CriRequest,
        Resp: Send + 'static,
        F: Fn(GrpcRuntime, tonic::Request<Req>) -> Fut + Send + Sync,
        Fut: Future<
                Output = std::result::Result<
                    tonic::Response<tonic::Streaming<Resp>>,
                    tonic::Status,
                >,
            > + Send,
    {
        let streaming = self.run(operation, request, call).await?;
        let endpoint = self.inner.endpoint.clone();
        Ok(streaming
            .map_err(move |status| Error::from(status).with_origin(operation.name, &endpoint))
            .boxed())
    }

    /// `Stream*` with a fallback: on Unimplemented, remember it and serve the unary list
    /// (`unary` splits its answer with [`anycri_core::list_stream`], as every backend does).
    async fn stream_or_list<Req, Resp, F, Fut, L, LFut>(
        &self,
        index: usize,
        operation: &'static Operation,
        request: Req,
        call: F,
        unary: L,
    ) -> Result<CriStream<Resp>>
    where
        Req: CriRequest,
        Resp: Send + 'static,
        F: Fn(GrpcRuntime, tonic::Request<Req>) -> Fut + Send + Sync,
        Fut: Future<
                Output = std::result::Result<
                    tonic::Response<tonic::Streaming<Resp>>,
                    tonic::Status,
                >,
            > + Send,
        L: FnOnce(GrpcRuntime, Req) -> LFut,
        LFut: Future<Output = Result<CriStream<Resp>>>,
    {
        let flag = &self.inner.unary_lists[index];
        if !flag.load(Ordering::Relaxed) {
            match self.server_stream(operation, request.clone(), call).await {
                Err(e) if e.is_unimplemented() => {
                    tracing::debug!(
                        rpc = operation.name,
                        "runtime lacks it; using the unary list"
                    );
                    flag.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        unary(self.clone(), request).await
    }
}

/// The body of one RPC: unary calls go straight through (those whose answers differ per
/// runtime through [`flavour`]), Stream* lists fall back.
macro_rules! grpc_body {
    (unary $client:ident exec_sync, $self:ident, $request:ident, $op:ident) => {{
        let timeout = $request.timeout;
        let response = $self
            .run(&op::$op, $request, |rt, req| async move {
                rt.$client().exec_sync(req).await
            })
            .await?;
        flavour::exec_sync($self.flavour().as_ref(), timeout, response)
    }};
    (unary $client:ident $method:ident url, $self:ident, $request:ident, $op:ident) => {{
        let mut response = $self
            .run(&op::$op, $request, |rt, req| async move {
                rt.$client().$method(req).await
            })
            .await?;
        response.url = flavour::streaming_url(response.url);
        Ok(response)
    }};
    (unary $client:ident exec, $self:ident, $request:ident, $op:ident) => {
        grpc_body!(unary $client exec url, $self, $request, $op)
    };
    (unary $client:ident attach, $self:ident, $request:ident, $op:ident) => {
        grpc_body!(unary $client attach url, $self, $request, $op)
    };
    (unary $client:ident port_forward, $self:ident, $request:ident, $op:ident) => {
        grpc_body!(unary $client port_forward url, $self, $request, $op)
    };
    (unary $client:ident $method:ident, $self:ident, $request:ident, $op:ident) => {
        $self
            .run(&op::$op, $request, |rt, req| async move {
                rt.$client().$method(req).await
            })
            .await
    };
    (stream $client:ident get_container_events, $self:ident, $request:ident, $op:ident) => {
        $self.container_events($request).await
    };
    (stream $client:ident $method:ident, $self:ident, $request:ident, $op:ident) => {
        fallback!($method, $self, $request, |rt, req| async move {
            rt.$client().$method(req).await
        })
    };
}

/// The unary list behind each Stream* RPC, and the message its items go into.
macro_rules! fallback {
    (stream_pod_sandboxes, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(
                0,
                &op::STREAM_POD_SANDBOXES,
                $request,
                $call,
                |rt, r| async move {
                    let items = rt
                        .list_pod_sandbox(ListPodSandboxRequest { filter: r.filter })
                        .await?
                        .items;
                    Ok(list_stream(items, |pod_sandboxes| {
                        StreamPodSandboxesResponse { pod_sandboxes }
                    }))
                },
            )
            .await
    };
    (stream_containers, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(
                1,
                &op::STREAM_CONTAINERS,
                $request,
                $call,
                |rt, r| async move {
                    let containers = rt
                        .list_containers(ListContainersRequest { filter: r.filter })
                        .await?
                        .containers;
                    Ok(list_stream(containers, |containers| {
                        StreamContainersResponse { containers }
                    }))
                },
            )
            .await
    };
    (stream_container_stats, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(
                2,
                &op::STREAM_CONTAINER_STATS,
                $request,
                $call,
                |rt, r| async move {
                    let stats = rt
                        .list_container_stats(ListContainerStatsRequest { filter: r.filter })
                        .await?
                        .stats;
                    Ok(list_stream(stats, |container_stats| {
                        StreamContainerStatsResponse { container_stats }
                    }))
                },
            )
            .await
    };
    (stream_pod_sandbox_stats, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(
                3,
                &op::STREAM_POD_SANDBOX_STATS,
                $request,
                $call,
                |rt, r| async move {
                    let stats = rt
                        .list_pod_sandbox_stats(ListPodSandboxStatsRequest { filter: r.filter })
                        .await?
                        .stats;
                    Ok(list_stream(stats, |pod_sandbox_stats| {
                        StreamPodSandboxStatsResponse { pod_sandbox_stats }
                    }))
                },
            )
            .await
    };
    (stream_pod_sandbox_metrics, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(
                4,
                &op::STREAM_POD_SANDBOX_METRICS,
                $request,
                $call,
                |rt, _r| async move {
                    let metrics = rt
                        .list_pod_sandbox_metrics(ListPodSandboxMetricsRequest {})
                        .await?
                        .pod_metrics;
                    Ok(list_stream(metrics, |pod_sandbox_metrics| {
                        StreamPodSandboxMetricsResponse {
                            pod_sandbox_metrics,
                        }
                    }))
                },
            )
            .await
    };
    (stream_images, $self:ident, $request:ident, $call:expr) => {
        $self
            .stream_or_list(5, &op::STREAM_IMAGES, $request, $call, |rt, r| async move {
                let images = rt
                    .list_images(ListImagesRequest { filter: r.filter })
                    .await?
                    .images;
                Ok(list_stream(images, |images| StreamImagesResponse {
                    images,
                }))
            })
            .await
    };
}

macro_rules! grpc_impl {
    ($trait:ident, $client:ident; $($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl $trait for GrpcRuntime {
            $(
                async fn $method(&self, request: $req) -> Result<anycri_core::ops::shape::$kind<$resp>> {
                    grpc_body!($kind $client $method, self, request, $op)
                }
            )*
        }
    };
}

anycri_core::for_each_runtime_rpc!(grpc_impl, RuntimeService, runtime_client;);
anycri_core::for_each_image_rpc!(grpc_impl, ImageService, image_client;);
