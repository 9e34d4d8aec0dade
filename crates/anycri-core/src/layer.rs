//! Decorators that wrap any [`RuntimeService`]/[`ImageService`]: a [`Layer`] sees every call
//! (its [`Operation`] and request) and decides how to run it; [`Layered`] applies a layer to
//! every RPC of a backend. anycri ships three layers: [`TimeoutLayer`] (kubelet-style
//! deadlines), [`RetryLayer`] (retries read-only calls with backoff) and [`TracingLayer`]
//! (one span per call with the IDs it names, its duration and outcome).
//!
//! [`LayerExt`] stacks them on any backend; the result is a backend again:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use anycri_core::{ImageService, LayerExt, RetryLayer, RuntimeService};
//! // Innermost first: each attempt bounded in time, read-only calls retried, one span for all.
//! let runtime = Arc::new(
//!     anycri_fake::FakeRuntime::new()
//!         .with_timeouts(Duration::from_secs(120))
//!         .with_retries(RetryLayer::default())
//!         .with_tracing(),
//! );
//! let (rt, images): (Arc<dyn RuntimeService>, Arc<dyn ImageService>) = (runtime.clone(), runtime);
//! rt.version(Default::default()).await?;
//! images.list_images(Default::default()).await?;
//! # Ok(()) }
//! ```

use std::{future::Future, time::Duration};

use async_trait::async_trait;

use crate::{
    api::*,
    error::{Error, Result},
    ops::{CriRequest, Operation, Shape, op},
    service::{ImageService, RuntimeService},
};

/// What a layer knows about one call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Call<'a> {
    /// The RPC.
    pub operation: &'static Operation,
    /// The pod sandbox the request names, if any.
    pub pod_sandbox_id: Option<&'a str>,
    /// The container the request names, if any.
    pub container_id: Option<&'a str>,
    /// The operation's own timeout from the request (grace period, exec timeout).
    pub own_timeout: Option<Duration>,
}

impl<'a> Call<'a> {
    /// The call of `operation` with `request`.
    pub fn new<R: CriRequest>(operation: &'static Operation, request: &'a R) -> Self {
        Call {
            operation,
            pod_sandbox_id: request.pod_sandbox_id().filter(|s| !s.is_empty()),
            container_id: request.container_id().filter(|s| !s.is_empty()),
            own_timeout: request.own_timeout(),
        }
    }
}

/// Runs calls on behalf of a [`Layered`] backend. `attempt` starts the call (again, for a
/// retry); the layer awaits it and may bound it in time, repeat it or observe it.
///
/// A layer of your own, here one that counts calls per RPC, applies to every RPC of any
/// backend at once:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::{collections::BTreeMap, sync::Mutex};
/// use anycri_core::{Layer, Layered, Result, RuntimeService, layer::Call};
///
/// #[derive(Default)]
/// struct CountCalls(Mutex<BTreeMap<&'static str, u32>>);
///
/// impl Layer for CountCalls {
///     async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
///     where
///         T: Send + 'a,
///         F: Fn() -> Fut + Send + Sync + 'a,
///         Fut: Future<Output = Result<T>> + Send + 'a,
///     {
///         *self.0.lock().unwrap().entry(call.operation.name).or_default() += 1;
///         attempt().await
///     }
/// }
///
/// let runtime = Layered::new(anycri_fake::FakeRuntime::new(), CountCalls::default());
/// runtime.version(Default::default()).await?;
/// runtime.version(Default::default()).await?;
/// runtime.status(Default::default()).await?;
/// let counts = runtime.layer().0.lock().unwrap().clone();
/// assert_eq!(counts, BTreeMap::from([("Status", 1), ("Version", 2)]));
/// # Ok(()) }
/// ```
pub trait Layer: Send + Sync + 'static {
    /// Run one call.
    fn around<'a, T, F, Fut>(
        &'a self,
        call: Call<'a>,
        attempt: F,
    ) -> impl Future<Output = Result<T>> + Send + 'a
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a;
}

/// A backend with a [`Layer`] applied to every RPC.
#[derive(Debug, Clone)]
pub struct Layered<S, L> {
    inner: S,
    layer: L,
}

impl<S, L> Layered<S, L> {
    /// Wrap `inner` in `layer`.
    pub fn new(inner: S, layer: L) -> Self {
        Layered { inner, layer }
    }
    /// The wrapped backend.
    pub fn inner(&self) -> &S {
        &self.inner
    }
    /// The layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }
}

macro_rules! layered_runtime {
    ($($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<S: RuntimeService, L: Layer> RuntimeService for Layered<S, L> {
            $(
                async fn $method(&self, request: $req) -> Result<crate::ops::shape::$kind<$resp>> {
                    let call = Call::new(&op::$op, &request);
                    self.layer.around(call, || self.inner.$method(request.clone())).await
                }
            )*
        }
    };
}
macro_rules! layered_image {
    ($($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<S: ImageService, L: Layer> ImageService for Layered<S, L> {
            $(
                async fn $method(&self, request: $req) -> Result<crate::ops::shape::$kind<$resp>> {
                    let call = Call::new(&op::$op, &request);
                    self.layer.around(call, || self.inner.$method(request.clone())).await
                }
            )*
        }
    };
}
crate::for_each_runtime_rpc!(layered_runtime);
crate::for_each_image_rpc!(layered_image);

/// Names the failed CRI operation and the endpoint in every error that does not name them
/// yet ([`Error::with_origin`]). `anycri::connect` puts it around every backend, so an error
/// from any of them says where it came from.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use anycri_core::{Layered, OriginLayer, RuntimeService, api::ContainerStatusRequest};
/// let runtime = Layered::new(anycri_fake::FakeRuntime::new(), OriginLayer::new("fake://"));
/// let request = ContainerStatusRequest { container_id: "nope".into(), verbose: false };
/// let err = runtime.container_status(request).await.unwrap_err();
/// assert_eq!((err.operation(), err.endpoint()), (Some("ContainerStatus"), Some("fake://")));
/// assert!(err.to_string().ends_with("(ContainerStatus on fake://)"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct OriginLayer {
    endpoint: String,
}

impl OriginLayer {
    /// A layer naming `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OriginLayer {
            endpoint: endpoint.into(),
        }
    }
}

impl Layer for OriginLayer {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        attempt()
            .await
            .map_err(|e| e.with_origin(call.operation.name, &self.endpoint))
    }
}

/// Bounds every call in time as the kubelet's CRI client does: the request timeout for most
/// calls, twice that for RunPodSandbox, plus the grace period for StopContainer, plus the exec
/// timeout for ExecSync, and no deadline for PullImage and streams.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    /// The base request timeout (the kubelet's `--runtime-request-timeout`, 2 minutes by default).
    pub request_timeout: Duration,
}

impl TimeoutLayer {
    /// A layer with the given base timeout.
    pub fn new(request_timeout: Duration) -> Self {
        TimeoutLayer { request_timeout }
    }
}

impl Layer for TimeoutLayer {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        match call
            .operation
            .deadline_for(self.request_timeout, call.own_timeout)
        {
            Some(deadline) => match tokio::time::timeout(deadline, attempt()).await {
                Ok(result) => result,
                Err(_) => Err(Error::deadline_exceeded(format!(
                    "{} did not complete within {deadline:?}",
                    call.operation.name
                ))),
            },
            None => attempt().await,
        }
    }
}

/// Retries read-only calls that failed with a retryable error ([`Error::is_retryable`]),
/// with exponential backoff; calls that change state are never repeated. Which failures are
/// retried ([`RetryLayer::retry_if`]) and for how long in all ([`RetryLayer::max_elapsed`])
/// can be set: the gRPC backend waits out a runtime restart with this layer.
///
/// ```
/// use std::time::Duration;
/// use anycri_core::RetryLayer;
/// let retries = RetryLayer::default()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(50))
///     .max_backoff(Duration::from_secs(1));
/// assert_eq!(retries.max_attempts, 3);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryLayer {
    /// How many attempts in all (1 means no retry).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles after each.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// No retry once this long has passed since the first attempt (with the next wait);
    /// `None`: only `max_attempts` limits.
    pub max_elapsed: Option<Duration>,
    /// Which failures are tried again; by default [`RetryLayer::read_only_and_retryable`].
    pub retry_if: fn(&Call<'_>, &Error) -> bool,
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: None,
            retry_if: RetryLayer::read_only_and_retryable,
        }
    }
}

impl RetryLayer {
    /// Sets [`RetryLayer::max_attempts`].
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`RetryLayer::initial_backoff`].
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// Sets [`RetryLayer::max_backoff`].
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Sets [`RetryLayer::max_elapsed`].
    pub fn max_elapsed(mut self, window: Duration) -> Self {
        self.max_elapsed = Some(window);
        self
    }

    /// Sets [`RetryLayer::retry_if`]: which failures are tried again. A call that may have
    /// changed state should only be repeated when the failure shows it never reached the
    /// runtime (the gRPC backend retries any call whose connection failed, and reads that
    /// met an unavailable runtime).
    pub fn retry_if(mut self, retry_if: fn(&Call<'_>, &Error) -> bool) -> Self {
        self.retry_if = retry_if;
        self
    }

    /// The default [`RetryLayer::retry_if`]: read-only calls that failed with a retryable
    /// error ([`Error::is_retryable`]).
    pub fn read_only_and_retryable(call: &Call<'_>, error: &Error) -> bool {
        call.operation.read_only && error.is_retryable()
    }
}

impl Layer for RetryLayer {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        let started = tokio::time::Instant::now();
        let mut backoff = self.initial_backoff;
        let mut tries = 1;
        loop {
            match attempt().await {
                Err(err)
                    if (self.retry_if)(&call, &err)
                        && tries < self.max_attempts.max(1)
                        && self
                            .max_elapsed
                            .is_none_or(|window| started.elapsed() + backoff < window) =>
                {
                    tracing::debug!(rpc = call.operation.name, attempt = tries, error = %err, "retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                    tries += 1;
                }
                other => return other,
            }
        }
    }
}

/// Opens a `cri` span per call with the RPC name and the pod and container IDs, and logs its
/// outcome (at debug on success, at warn with the gRPC code on failure) with its duration.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLayer;

impl Layer for TracingLayer {
    fn around<'a, T, F, Fut>(
        &'a self,
        call: Call<'a>,
        attempt: F,
    ) -> impl Future<Output = Result<T>> + Send + 'a
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        use tracing::Instrument;
        let span = tracing::info_span!(
            "cri",
            rpc = call.operation.name,
            pod_sandbox_id = call.pod_sandbox_id,
            container_id = call.container_id,
        );
        async move {
            let started = std::time::Instant::now();
            let result = attempt().await;
            let elapsed_us = started.elapsed().as_micros() as u64;
            match &result {
                Ok(_) => tracing::debug!(
                    elapsed_us,
                    streaming = call.operation.shape == Shape::ServerStreaming,
                    "ok"
                ),
                Err(err) => tracing::warn!(elapsed_us, code = ?err.code(), error = %err, "failed"),
            }
            result
        }
        .instrument(span)
    }
}

/// Extension to wrap any backend in the shipped layers.
pub trait LayerExt: Sized {
    /// Bound every call in time (see [`TimeoutLayer`]).
    ///
    /// A runtime that hangs fails the call with DeadlineExceeded instead of blocking the
    /// tool; here the fake's exec handler never returns:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::time::{Duration, Instant};
    /// use anycri_core::{ContainerConfigBuilder, ErrorKind, LayerExt, PodSandboxConfigBuilder, RuntimeServiceExt};
    /// use anycri_fake::{ExecHandler, ExecResult, FakeRuntime, ShellExec};
    ///
    /// struct Hangs;
    /// #[async_trait::async_trait]
    /// impl ExecHandler for Hangs {
    ///     async fn run(&self, id: &str, cmd: &[String]) -> ExecResult {
    ///         if cmd[0] == "hang" {
    ///             std::future::pending::<()>().await;
    ///         }
    ///         ShellExec.run(id, cmd).await
    ///     }
    /// }
    ///
    /// let fake = FakeRuntime::with_exec_handler(Hangs);
    /// fake.add_image("busybox:1.36")?;
    /// let runtime = fake.with_timeouts(Duration::from_millis(200));
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// // ExecSync's deadline is the request timeout plus its own (1 s here).
    /// let started = Instant::now();
    /// let err = runtime.exec_collect(&ids.container_id, &["hang"], Duration::from_secs(1)).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    /// assert!(started.elapsed() < Duration::from_secs(5));
    /// # Ok(()) }
    /// ```
    fn with_timeouts(self, request_timeout: Duration) -> Layered<Self, TimeoutLayer> {
        Layered::new(self, TimeoutLayer::new(request_timeout))
    }
    /// Retry read-only calls (see [`RetryLayer`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::{sync::atomic::{AtomicU32, Ordering}, time::Duration};
    /// use anycri_core::{Error, Layer, Layered, LayerExt, Result, RetryLayer, RuntimeService, layer::Call};
    ///
    /// /// Fails the first two attempts of every call as a restarting runtime would.
    /// #[derive(Default)]
    /// struct Restarting(AtomicU32);
    /// impl Layer for Restarting {
    ///     async fn around<'a, T, F, Fut>(&'a self, _call: Call<'a>, attempt: F) -> Result<T>
    ///     where
    ///         T: Send + 'a,
    ///         F: Fn() -> Fut + Send + Sync + 'a,
    ///         Fut: Future<Output = Result<T>> + Send + 'a,
    ///     {
    ///         if self.0.fetch_add(1, Ordering::Relaxed) < 2 {
    ///             return Err(Error::unavailable("connection refused"));
    ///         }
    ///         attempt().await
    ///     }
    /// }
    ///
    /// let flaky = Layered::new(anycri_fake::FakeRuntime::new(), Restarting::default());
    /// let runtime = flaky.with_retries(
    ///     RetryLayer::default()
    ///         .max_attempts(4)
    ///         .initial_backoff(Duration::from_millis(10))
    ///         .max_backoff(Duration::from_millis(100)),
    /// );
    /// // Version only reads: the third attempt succeeds.
    /// runtime.version(Default::default()).await?;
    /// assert_eq!(runtime.inner().layer().0.load(Ordering::Relaxed), 3);
    /// # Ok(()) }
    /// ```
    fn with_retries(self, policy: RetryLayer) -> Layered<Self, RetryLayer> {
        Layered::new(self, policy)
    }
    /// A tracing span per call (see [`TracingLayer`]).
    ///
    /// With a `tracing` subscriber installed (e.g. `tracing_subscriber::fmt()`), every call
    /// logs a `cri` span with its RPC name and IDs, at debug on success and warn on failure.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{LayerExt, RuntimeServiceExt};
    /// let runtime = anycri_fake::FakeRuntime::new().with_tracing();
    /// // warn: cri{rpc="ContainerStatus" container_id="gone"}: failed code=NotFound ...
    /// assert!(runtime.get_container_status("gone").await.unwrap_err().is_not_found());
    /// # Ok(()) }
    /// ```
    fn with_tracing(self) -> Layered<Self, TracingLayer> {
        Layered::new(self, TracingLayer)
    }
}

impl<S> LayerExt for S {}
