//! Watching containers and pods: one stream of state changes for any backend.
//!
//! [`watch`] follows a runtime the way the kubelet's PLEG does. Where the runtime streams
//! `GetContainerEvents`, its events are forwarded as they come; where it does not, the
//! runtime is relisted every [`WatchOptions::relist_period`] and the differences become
//! events. When an event stream breaks (the runtime restarted, the connection dropped), the
//! watch resubscribes with a backoff and relists to cover the gap, so a transition that
//! happened meanwhile still arrives.
//!
//! Guarantees, for every container and pod sandbox (a sandbox's events carry its own ID as
//! the container ID and go through the same four steps, as containerd 2.x reports them):
//! - **order**: a container's events arrive in lifecycle order (created, started, stopped,
//!   deleted); an event that would go back (a duplicate, or a late copy of an older one) is
//!   dropped;
//! - **at least once**: every transition the runtime's event stream reports arrives, and
//!   a relist after a gap reports what changed meanwhile ([`EventOrigin`] says which); a
//!   relist that finds a container several steps further emits each step in between;
//! - **what a runtime never sends** arrives with the next relist: CRI-O sends no DELETED for
//!   a pod sandbox or for the containers removed with it, so those come from the safety
//!   relist ([`WatchOptions::safety_relist_period`]) or the relist after a gap;
//! - **relisting sees states, not transitions**: without an event stream, a container that
//!   is created and removed between two relists is never seen, and the delay is up to one
//!   period — as with the kubelet's generic PLEG;
//! - **gaps**: a broken stream triggers a relist after resubscribing; failures of the
//!   runtime after the first relist are retried with a backoff (logged, never ending the
//!   stream). A container that lived entirely inside a gap is seen only if the source
//!   replays it (the Docker shim resubscribes from the last event's time). [`watch`] returns once it is subscribed and has listed the runtime (every
//!   change after that is reported), or the error of that first list, so a wrong
//!   endpoint fails fast.
//!
//! Backends build their own `GetContainerEvents` on the same machinery with
//! [`container_events`]: they hand in a source of raw [`Transition`]s (Docker's event
//! stream, containerd's events service) and get the CRI's event messages, with the pod
//! sandbox status and container statuses the kubelet's evented PLEG reads.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use futures_util::StreamExt;
//! use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt};
//! use anycri_core::{WatchOptions, api::ContainerEventType, watch};
//! let fake = anycri_fake::FakeRuntime::new();
//! fake.add_image("busybox:1.36")?;
//! let runtime: Arc<dyn RuntimeService> = Arc::new(fake);
//! let mut events = watch(runtime.clone(), WatchOptions::default()).await?;
//!
//! let pod = PodSandboxConfigBuilder::new("web", "default").build();
//! let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
//! let ids = runtime.run_pod_and_container(pod, app.build()).await?;
//!
//! let mut seen = Vec::new();
//! while seen.len() < 2 {
//!     let next = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
//!     let event = next.expect("an event in time").expect("the watch goes on")?;
//!     if event.id() == ids.container_id {
//!         // With statuses on (the default), each event carries the pod's and its containers'.
//!         assert_eq!(event.pod_sandbox_id, ids.pod_sandbox_id);
//!         seen.push(event.kind());
//!     }
//! }
//! assert_eq!(seen, [ContainerEventType::ContainerCreatedEvent, ContainerEventType::ContainerStartedEvent]);
//! # Ok(()) }
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;

use crate::api::{
    ContainerEventResponse, ContainerEventType, ContainerFilter, ContainerState, ContainerStatus,
    ContainerStatusRequest, GetEventsRequest, ListContainersRequest, ListPodSandboxRequest,
    PodSandboxState, PodSandboxStatus, PodSandboxStatusRequest,
};
use crate::error::{Error, ErrorKind, Result};
use crate::service::{CriStream, RuntimeService};

/// Where a [`WatchEvent`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventOrigin {
    /// The runtime's own event stream.
    Runtime,
    /// A relist found the change (no event stream, or a gap in it).
    Relist,
}

/// One state change of a container or pod sandbox.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchEvent {
    /// The CRI event: container ID (a sandbox's own ID for sandbox events), type, time
    /// (nanoseconds), and, when [`WatchOptions::statuses`] is on, the pod sandbox status
    /// and the statuses of the pod's containers.
    pub event: ContainerEventResponse,
    /// The pod sandbox the container belongs to (its own ID for a sandbox).
    pub pod_sandbox_id: String,
    /// Whether the event is about a pod sandbox rather than a container.
    pub is_sandbox: bool,
    /// Where the event came from.
    pub origin: EventOrigin,
}

impl WatchEvent {
    /// The event's type.
    pub fn kind(&self) -> ContainerEventType {
        self.event.container_event_type()
    }

    /// The container (or sandbox) ID.
    pub fn id(&self) -> &str {
        &self.event.container_id
    }
}

/// How [`watch`] follows the runtime.
///
/// Relisting only, as the kubelet's generic PLEG does, with events for what exists already:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// use futures_util::StreamExt;
/// use anycri_core::{EventOrigin, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, WatchOptions, watch};
/// let runtime: Arc<dyn RuntimeService> = Arc::new(anycri_fake::FakeRuntime::new());
/// let pod_sandbox_id = runtime.run_pod(PodSandboxConfigBuilder::new("web", "default").build()).await?;
///
/// let options = WatchOptions::default()
///     .use_runtime_events(false)
///     .relist_period(Duration::from_millis(100))
///     .initial_events(true);
/// let mut events = watch(runtime, options).await?;
/// let first = events.next().await.expect("an event")?;
/// assert!(first.is_sandbox);
/// assert_eq!(first.id(), pod_sandbox_id);
/// assert_eq!(first.origin, EventOrigin::Relist);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WatchOptions {
    /// Relist period when the runtime has no event stream (default 1 s, the kubelet's
    /// generic PLEG period).
    pub relist_period: Duration,
    /// Relist period beside a working event stream, a safety net (default 300 s, the
    /// kubelet's evented PLEG period). `None` relists only after gaps.
    pub safety_relist_period: Option<Duration>,
    /// Use the runtime's `GetContainerEvents` when it has one (default true); false always
    /// relists.
    pub use_runtime_events: bool,
    /// Emit events for what already exists when the watch starts (default false).
    pub initial_events: bool,
    /// Fill in the pod sandbox status and container statuses of events that lack them
    /// (default true; costs a PodSandboxStatus, a ListContainers and a ContainerStatus per
    /// container of the pod for each such event).
    pub statuses: bool,
    /// First wait before resubscribing after a gap; doubles up to `max_backoff`
    /// (default 100 ms).
    pub backoff: Duration,
    /// Longest wait between resubscription attempts (default 5 s).
    pub max_backoff: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            relist_period: Duration::from_secs(1),
            safety_relist_period: Some(Duration::from_secs(300)),
            use_runtime_events: true,
            initial_events: false,
            statuses: true,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl WatchOptions {
    /// Sets [`WatchOptions::relist_period`].
    pub fn relist_period(mut self, period: Duration) -> Self {
        self.relist_period = period;
        self
    }

    /// Sets [`WatchOptions::safety_relist_period`].
    pub fn safety_relist_period(mut self, period: Option<Duration>) -> Self {
        self.safety_relist_period = period;
        self
    }

    /// Sets [`WatchOptions::use_runtime_events`].
    pub fn use_runtime_events(mut self, on: bool) -> Self {
        self.use_runtime_events = on;
        self
    }

    /// Sets [`WatchOptions::initial_events`].
    pub fn initial_events(mut self, on: bool) -> Self {
        self.initial_events = on;
        self
    }

    /// Sets [`WatchOptions::statuses`].
    pub fn statuses(mut self, on: bool) -> Self {
        self.statuses = on;
        self
    }
}

/// A raw transition from an event source: which container, what happened, when.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Transition {
    /// The container ID (a sandbox's own ID for sandbox transitions).
    pub id: String,
    /// The pod sandbox, when the source knows it (looked up otherwise).
    pub pod_sandbox_id: Option<String>,
    /// What happened.
    pub kind: ContainerEventType,
    /// When, in nanoseconds since the epoch.
    pub at: i64,
}

impl Transition {
    /// A transition of `id` to `kind` at `at` (ns), in an unknown pod.
    pub fn new(id: impl Into<String>, kind: ContainerEventType, at: i64) -> Self {
        Transition {
            id: id.into(),
            pod_sandbox_id: None,
            kind,
            at,
        }
    }

    /// The pod sandbox it belongs to (the transition's own ID for a sandbox).
    pub fn in_pod(mut self, pod_sandbox_id: impl Into<String>) -> Self {
        self.pod_sandbox_id = Some(pod_sandbox_id.into());
        self
    }
}

/// What an event source yields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SourceEvent {
    /// A complete CRI event (from a runtime's `GetContainerEvents`).
    Response(Box<ContainerEventResponse>),
    /// A raw transition, to be completed with statuses.
    Transition(Transition),
}

/// A subscription to raw events; ending or failing is a gap.
pub type SourceStream = BoxStream<'static, Result<SourceEvent>>;

/// Opens a subscription; called again after every gap. `Unimplemented` on the first call
/// means the runtime has no events and the watch relists instead.
pub type EventSource = Arc<dyn Fn() -> BoxFuture<'static, Result<SourceStream>> + Send + Sync>;

/// Follows `runtime`'s containers and pod sandboxes: its event stream where it has one,
/// relisting where it has not (see the module docs for the guarantees). Returns once the
/// watch is subscribed and has listed the runtime, so every change made after it returns
/// is reported; fails with the error of that first list.
pub async fn watch(
    runtime: Arc<dyn RuntimeService>,
    options: WatchOptions,
) -> Result<CriStream<WatchEvent>> {
    let source = if options.use_runtime_events {
        Some(runtime_source(runtime.clone()))
    } else {
        None
    };
    start(runtime, source, options).await
}

/// Follows `runtime` through `source` (a backend's own event feed), relisting `runtime`
/// after gaps (see [`watch`] and the module docs).
pub async fn watch_with_source(
    runtime: Arc<dyn RuntimeService>,
    source: EventSource,
    options: WatchOptions,
) -> Result<CriStream<WatchEvent>> {
    start(runtime, Some(source), options).await
}

/// A backend's `GetContainerEvents` from its raw `source`: CRI events with statuses, in
/// lifecycle order per container, with gaps covered by relisting `runtime`.
pub async fn container_events(
    runtime: Arc<dyn RuntimeService>,
    source: EventSource,
) -> Result<CriStream<ContainerEventResponse>> {
    let options = WatchOptions::default().safety_relist_period(None);
    Ok(watch_with_source(runtime, source, options)
        .await?
        .map(|event| event.map(|e| e.event))
        .boxed())
}

/// The runtime's `GetContainerEvents` as an [`EventSource`].
pub fn runtime_source(runtime: Arc<dyn RuntimeService>) -> EventSource {
    Arc::new(move || {
        let runtime = runtime.clone();
        Box::pin(async move {
            let stream = runtime.get_container_events(GetEventsRequest {}).await?;
            Ok(stream
                .map(|item| item.map(|e| SourceEvent::Response(Box::new(e))))
                .boxed())
        })
    })
}

async fn start(
    runtime: Arc<dyn RuntimeService>,
    source: Option<EventSource>,
    options: WatchOptions,
) -> Result<CriStream<WatchEvent>> {
    let (tx, rx) = mpsc::channel(1024);
    let mut watcher = Watcher {
        runtime,
        options,
        tx,
        known: HashMap::new(),
        tombstones: Tombstones::default(),
    };
    // Subscribe before the first relist so nothing falls between the two. A source that is
    // unimplemented is dropped for good (relisting instead); one that failed otherwise is
    // retried like any gap.
    let (source, stream) = match source {
        Some(source) => match source().await {
            Ok(stream) => (Some(source), Some(stream)),
            Err(e) if e.kind() == ErrorKind::Unimplemented => (None, None),
            Err(e) => {
                tracing::debug!(error = %e, "event subscription failed; retrying");
                (Some(source), None)
            }
        },
        None => (None, None),
    };
    watcher.relist(false).await?;
    tokio::spawn(watcher.run(source, stream));
    Ok(tokio_stream_from(rx))
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Result<WatchEvent>>) -> CriStream<WatchEvent> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Lifecycle rank: events only move forward.
fn rank(kind: ContainerEventType) -> u8 {
    match kind {
        ContainerEventType::ContainerCreatedEvent => 1,
        ContainerEventType::ContainerStartedEvent => 2,
        ContainerEventType::ContainerStoppedEvent => 3,
        ContainerEventType::ContainerDeletedEvent => 4,
    }
}

fn kind_of(rank: u8) -> ContainerEventType {
    match rank {
        1 => ContainerEventType::ContainerCreatedEvent,
        2 => ContainerEventType::ContainerStartedEvent,
        3 => ContainerEventType::ContainerStoppedEvent,
        _ => ContainerEventType::ContainerDeletedEvent,
    }
}

#[derive(Debug, Clone)]
struct Known {
    pod: String,
    sandbox: bool,
    rank: u8,
}

/// IDs deleted recently, so a late event for them is not taken for a new container.
#[derive(Default)]
struct Tombstones {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Tombstones {
    const CAPACITY: usize = 4096;

    fn insert(&mut self, id: String) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }
}

/// The consumer went away.
struct Closed;

impl Closed {
    fn into_error(self) -> Error {
        Error::new(ErrorKind::Cancelled, "the watch's consumer went away")
    }
}

struct Watcher {
    runtime: Arc<dyn RuntimeService>,
    options: WatchOptions,
    tx: mpsc::Sender<Result<WatchEvent>>,
    known: HashMap<String, Known>,
    tombstones: Tombstones,
}

impl Watcher {
    async fn run(mut self, source: Option<EventSource>, stream: Option<SourceStream>) {
        if self.options.initial_events && self.emit_initial().await.is_err() {
            return;
        }
        let result = match source {
            Some(source) => self.follow(source, stream).await,
            None => self.poll().await,
        };
        let Err(Closed) = result;
    }

    /// Every step of what the first list found, sandboxes first.
    async fn emit_initial(&mut self) -> std::result::Result<(), Closed> {
        let mut found: Vec<(String, Known)> = std::mem::take(&mut self.known).into_iter().collect();
        found.sort_by_key(|(_, k)| !k.sandbox);
        let at = now_nanos();
        for (id, k) in found {
            for step in 1..=k.rank {
                let t = Transition::new(id.clone(), kind_of(step), at).in_pod(k.pod.clone());
                self.emit_transition(t, EventOrigin::Relist).await?;
            }
        }
        Ok(())
    }

    /// No event stream: relist every period.
    async fn poll(&mut self) -> std::result::Result<std::convert::Infallible, Closed> {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.options.relist_period) => {}
                _ = self.tx.closed() => return Err(Closed),
            }
            self.relist_logged(true).await?;
        }
    }

    /// An event stream, resubscribed and relisted after every gap.
    async fn follow(
        &mut self,
        source: EventSource,
        mut stream: Option<SourceStream>,
    ) -> std::result::Result<std::convert::Infallible, Closed> {
        let mut backoff = self.options.backoff;
        let far = Duration::from_secs(365 * 24 * 3600);
        let safety = self.options.safety_relist_period.unwrap_or(far);
        let mut next_safety = tokio::time::Instant::now() + safety;
        loop {
            let Some(current) = stream.as_mut() else {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = self.tx.closed() => return Err(Closed),
                }
                backoff = (backoff * 2).min(self.options.max_backoff);
                match source().await {
                    Ok(s) => {
                        stream = Some(s);
                        // The gap: whatever changed while unsubscribed.
                        if !self.relist_logged(true).await? {
                            stream = None;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "resubscribing to events failed"),
                }
                continue;
            };
            tokio::select! {
                item = current.next() => match item {
                    Some(Ok(event)) => {
                        backoff = self.options.backoff;
                        self.on_event(event).await?;
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "event stream broke; resubscribing");
                        stream = None;
                    }
                    None => {
                        tracing::debug!("event stream ended; resubscribing");
                        stream = None;
                    }
                },
                _ = tokio::time::sleep_until(next_safety) => {
                    next_safety = tokio::time::Instant::now() + safety;
                    self.relist_logged(true).await?;
                }
                _ = self.tx.closed() => return Err(Closed),
            }
        }
    }

    /// Relists, logging a failure; returns whether it worked.
    async fn relist_logged(&mut self, emit: bool) -> std::result::Result<bool, Closed> {
        match self.relist(emit).await {
            Ok(()) => Ok(true),
            Err(_) if self.tx.is_closed() => Err(Closed),
            Err(e) => {
                tracing::warn!(error = %e, "relisting the runtime failed; retrying");
                Ok(false)
            }
        }
    }

    /// Lists sandboxes and containers and emits the differences from what is known.
    async fn relist(&mut self, emit: bool) -> Result<()> {
        let pods = self
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await?
            .items;
        let containers = self
            .runtime
            .list_containers(ListContainersRequest::default())
            .await?
            .containers;
        let mut now: HashMap<String, Known> = HashMap::new();
        for pod in &pods {
            let rank = if pod.state() == PodSandboxState::SandboxReady {
                2
            } else {
                3
            };
            now.insert(
                pod.id.clone(),
                Known {
                    pod: pod.id.clone(),
                    sandbox: true,
                    rank,
                },
            );
        }
        for c in &containers {
            let rank = match c.state() {
                ContainerState::ContainerCreated => 1,
                ContainerState::ContainerRunning => 2,
                ContainerState::ContainerExited => 3,
                // Unknown: no claim beyond what is known already.
                ContainerState::ContainerUnknown => self.known.get(&c.id).map_or(1, |k| k.rank),
            };
            now.insert(
                c.id.clone(),
                Known {
                    pod: c.pod_sandbox_id.clone(),
                    sandbox: false,
                    rank,
                },
            );
        }
        if !emit {
            self.known = now;
            return Ok(());
        }
        // Sandboxes come up before their containers and go after them.
        let mut ups: Vec<(String, Known, u8)> = Vec::new();
        for (id, k) in &now {
            let from = self.known.get(id).map_or(0, |old| old.rank);
            if k.rank > from {
                ups.push((id.clone(), k.clone(), from));
            }
        }
        ups.sort_by_key(|(_, k, _)| !k.sandbox);
        let mut gone: Vec<(String, Known)> = self
            .known
            .iter()
            .filter(|(id, _)| !now.contains_key(*id))
            .map(|(id, k)| (id.clone(), k.clone()))
            .collect();
        gone.sort_by_key(|(_, k)| k.sandbox);
        let at = now_nanos();
        for (id, k, from) in ups {
            for step in from + 1..=k.rank {
                let t = Transition::new(id.clone(), kind_of(step), at).in_pod(k.pod.clone());
                self.emit_transition(t, EventOrigin::Relist)
                    .await
                    .map_err(Closed::into_error)?;
            }
        }
        for (id, k) in gone {
            if k.rank < 3 {
                let t = Transition::new(id.clone(), kind_of(3), at).in_pod(k.pod.clone());
                self.emit_transition(t, EventOrigin::Relist)
                    .await
                    .map_err(Closed::into_error)?;
            }
            let t = Transition::new(id, kind_of(4), at).in_pod(k.pod);
            self.emit_transition(t, EventOrigin::Relist)
                .await
                .map_err(Closed::into_error)?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: SourceEvent) -> std::result::Result<(), Closed> {
        match event {
            SourceEvent::Transition(t) => self.emit_transition(t, EventOrigin::Runtime).await,
            SourceEvent::Response(r) => {
                let pod = r.pod_sandbox_status.as_ref().map(|s| s.id.clone());
                let mut t = Transition::new(
                    r.container_id.clone(),
                    r.container_event_type(),
                    r.created_at,
                );
                t.pod_sandbox_id = pod;
                self.emit(t, Some(*r), EventOrigin::Runtime).await
            }
        }
    }

    async fn emit_transition(
        &mut self,
        t: Transition,
        origin: EventOrigin,
    ) -> std::result::Result<(), Closed> {
        self.emit(t, None, origin).await
    }

    /// Emits `t` if it moves its container forward.
    async fn emit(
        &mut self,
        t: Transition,
        response: Option<ContainerEventResponse>,
        origin: EventOrigin,
    ) -> std::result::Result<(), Closed> {
        let step = rank(t.kind);
        if self.tombstones.contains(&t.id) {
            return Ok(());
        }
        let known = self.known.get(&t.id).cloned();
        if let Some(k) = &known
            && k.rank >= step
        {
            return Ok(());
        }
        let (pod, sandbox) = match (&known, &t.pod_sandbox_id) {
            (Some(k), _) => (k.pod.clone(), k.sandbox),
            (None, Some(pod)) => (pod.clone(), *pod == t.id),
            // Gone before we could look: its pod is unknown, report it bare.
            (None, None) => self.lookup(&t.id).await.unwrap_or_default(),
        };
        let mut event = response.unwrap_or_else(|| ContainerEventResponse {
            container_id: t.id.clone(),
            container_event_type: t.kind as i32,
            created_at: t.at,
            ..Default::default()
        });
        if self.options.statuses && event.pod_sandbox_status.is_none() && !pod.is_empty() {
            let (status, containers) = statuses(self.runtime.as_ref(), &pod).await;
            event.pod_sandbox_status = status;
            event.containers_statuses = containers;
        }
        if step == 4 {
            self.known.remove(&t.id);
            self.tombstones.insert(t.id.clone());
        } else {
            self.known.insert(
                t.id.clone(),
                Known {
                    pod: pod.clone(),
                    sandbox,
                    rank: step,
                },
            );
        }
        let event = WatchEvent {
            event,
            pod_sandbox_id: pod,
            is_sandbox: sandbox,
            origin,
        };
        self.tx.send(Ok(event)).await.map_err(|_| Closed)
    }

    /// Which pod `id` belongs to, and whether it is a sandbox.
    async fn lookup(&self, id: &str) -> Option<(String, bool)> {
        let containers = self
            .runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    id: id.to_string(),
                    ..Default::default()
                }),
            })
            .await
            .ok()?
            .containers;
        if let Some(c) = containers.into_iter().find(|c| c.id == id) {
            return Some((c.pod_sandbox_id, false));
        }
        let pods = self
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(crate::api::PodSandboxFilter {
                    id: id.to_string(),
                    ..Default::default()
                }),
            })
            .await
            .ok()?
            .items;
        pods.into_iter().find(|p| p.id == id).map(|p| (p.id, true))
    }
}

/// The pod sandbox status and the statuses of the pod's containers, as the kubelet's
/// evented PLEG reads them from an event. What is gone is left out.
pub async fn statuses(
    runtime: &dyn RuntimeService,
    pod_sandbox_id: &str,
) -> (Option<PodSandboxStatus>, Vec<ContainerStatus>) {
    let status = match runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_sandbox_id.to_string(),
            verbose: false,
        })
        .await
    {
        Ok(r) => r.status,
        Err(e) => {
            if e.kind() != ErrorKind::NotFound {
                tracing::debug!(error = %e, pod_sandbox_id, "PodSandboxStatus for an event failed");
            }
            None
        }
    };
    let containers = match runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: pod_sandbox_id.to_string(),
                ..Default::default()
            }),
        })
        .await
    {
        Ok(r) => r.containers,
        Err(_) => Vec::new(),
    };
    let mut out = Vec::with_capacity(containers.len());
    for c in containers {
        if let Ok(r) = runtime
            .container_status(ContainerStatusRequest {
                container_id: c.id,
                verbose: false,
            })
            .await
            && let Some(s) = r.status
        {
            out.push(s);
        }
    }
    (status, out)
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
