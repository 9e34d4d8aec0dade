//! Container events from containerd's events service, as an
//! [`anycri_core::watch::EventSource`].
//!
//! containerd publishes an envelope (timestamp, namespace, topic, an `Any` event) for every
//! change of its objects. The CRI's containers and pod sandboxes are containerd containers
//! in the CRI namespace (`k8s.io`), and four topics are their lifecycle:
//!
//! | topic | event | CRI event |
//! |---|---|---|
//! | `/containers/create` | `ContainerCreate` | CONTAINER_CREATED_EVENT (containers only: like containerd 1.7+, sandboxes have none) |
//! | `/tasks/start` | `TaskStart` | CONTAINER_STARTED_EVENT |
//! | `/tasks/exit` | `TaskExit` of the init process (exec ID = container ID; exec processes are skipped) | CONTAINER_STOPPED_EVENT |
//! | `/containers/delete` | `ContainerDelete` | CONTAINER_DELETED_EVENT |
//!
//! The time is the envelope's. A sandbox's events carry its own ID, as containerd 1.7+'s
//! CRI events do. Which pod a container belongs to comes from containerd itself (the CRI
//! labels its containers `io.cri-containerd.kind` = `sandbox`/`container` and annotates
//! their OCI spec with `io.kubernetes.cri.sandbox-id`), looked up once per container;
//! containers in the namespace that the CRI did not make are skipped.
//!
//! containerd publishes an event before its CRI plugin has updated its own store (the CRI
//! reacts to the same `/tasks/exit`; it adds a sandbox to its store after the task started).
//! With [`EventsOptions::settle_with`], each event waits (bounded) until the CRI shows the
//! transition, so the statuses the watch reads for it are the new ones.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anycri_core::{
    Error, ErrorKind, Result, RuntimeService,
    api::{
        ContainerEventType, ContainerState, ContainerStatusRequest, PodSandboxState,
        PodSandboxStatusRequest,
    },
    watch::{EventSource, SourceEvent, Transition},
};
use containerd_client::{
    events::{ContainerCreate, ContainerDelete, TaskExit, TaskStart},
    services::v1::{
        GetContainerRequest, SubscribeRequest, containers_client::ContainersClient,
        events_client::EventsClient,
    },
    types::Envelope,
};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use prost::Message;

use crate::ContainerdClient;

/// The containerd namespace of the CRI's containers, images and sandboxes.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// The topics that are container lifecycle transitions.
const TOPICS: [&str; 4] = [
    "/containers/create",
    "/tasks/start",
    "/tasks/exit",
    "/containers/delete",
];

/// How long [`ContainerdClient::subscribe`] waits for an immediate answer (an error) before
/// taking the subscription as made: the request is on a local socket by then.
const SUBSCRIBE_ANSWER_WAIT: Duration = Duration::from_millis(100);

/// A spawned call that is cancelled when its stream is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = std::result::Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The label the CRI puts on its containerd containers: `sandbox` or `container`.
const KIND_LABEL: &str = "io.cri-containerd.kind";
/// The OCI spec annotation naming a CRI container's sandbox.
const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// How [`ContainerdClient::events_source`] follows containerd.
#[derive(Clone)]
#[non_exhaustive]
pub struct EventsOptions {
    /// The containerd namespace (default [`CRI_NAMESPACE`], `k8s.io`).
    pub namespace: String,
    /// The CRI of the same containerd, to wait for before passing an event on (see the
    /// module docs); None passes events on at once.
    pub settle_with: Option<Arc<dyn RuntimeService>>,
    /// The longest wait for the CRI per event (default 2 s).
    pub settle_timeout: Duration,
}

impl std::fmt::Debug for EventsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsOptions")
            .field("namespace", &self.namespace)
            .field("settle_with", &self.settle_with.is_some())
            .field("settle_timeout", &self.settle_timeout)
            .finish()
    }
}

impl Default for EventsOptions {
    fn default() -> Self {
        EventsOptions {
            namespace: CRI_NAMESPACE.into(),
            settle_with: None,
            settle_timeout: Duration::from_secs(2),
        }
    }
}

impl EventsOptions {
    /// Sets [`EventsOptions::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets [`EventsOptions::settle_with`].
    pub fn settle_with(mut self, cri: Arc<dyn RuntimeService>) -> Self {
        self.settle_with = Some(cri);
        self
    }

    /// Sets [`EventsOptions::settle_timeout`].
    pub fn settle_timeout(mut self, timeout: Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }
}

/// The CRI transition an envelope is, if any (see the module docs for the mapping); its pod
/// is left unknown.
pub fn transition(envelope: &Envelope) -> Option<Transition> {
    let at = envelope.timestamp.as_ref().map_or(0, |t| {
        t.seconds.saturating_mul(1_000_000_000) + i64::from(t.nanos)
    });
    let value = envelope.event.as_ref().map_or(&[][..], |e| &e.value[..]);
    let (id, kind) = match envelope.topic.as_str() {
        "/containers/create" => (
            ContainerCreate::decode(value).ok()?.id,
            ContainerEventType::ContainerCreatedEvent,
        ),
        "/tasks/start" => (
            TaskStart::decode(value).ok()?.container_id,
            ContainerEventType::ContainerStartedEvent,
        ),
        "/tasks/exit" => {
            let exit = TaskExit::decode(value).ok()?;
            // An exec process's exit is not the container's.
            if exit.id != exit.container_id {
                return None;
            }
            (exit.container_id, ContainerEventType::ContainerStoppedEvent)
        }
        "/containers/delete" => (
            ContainerDelete::decode(value).ok()?.id,
            ContainerEventType::ContainerDeletedEvent,
        ),
        _ => return None,
    };
    if id.is_empty() {
        return None;
    }
    Some(Transition::new(id, kind, at))
}

/// What a containerd container is to the CRI.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// A pod sandbox (its own pod).
    Sandbox,
    /// A container, in this pod when the spec names it.
    Container(Option<String>),
    /// Not made by the CRI.
    Foreign,
}

/// Per source: what each container is, looked up once.
struct Shared {
    client: ContainerdClient,
    options: EventsOptions,
    owners: Mutex<HashMap<String, Owner>>,
}

impl ContainerdClient {
    /// Subscribes to the lifecycle topics (see the module docs) in `namespace`; the raw
    /// envelopes, in containerd's order.
    ///
    /// containerd answers `Subscribe` with no response headers until the first event, so
    /// this does not wait for them: it returns once the request has been sent (an error
    /// containerd answers at once, such as Unimplemented, is returned; a later one ends the
    /// stream).
    pub async fn subscribe(&self, namespace: &str) -> Result<BoxStream<'static, Result<Envelope>>> {
        let filters = TOPICS
            .iter()
            .map(|topic| format!("namespace=={namespace:?},topic=={topic:?}"))
            .collect();
        let mut client = EventsClient::new(self.channel());
        let mut call = AbortOnDrop(tokio::spawn(async move {
            client.subscribe(SubscribeRequest { filters }).await
        }));
        let opened = |joined: std::result::Result<_, tokio::task::JoinError>| match joined {
            Ok(Ok(response)) => Ok(tonic::Response::into_inner(response)),
            Ok(Err(status)) => Err(Error::from(status).context("containerd events Subscribe")),
            Err(e) => Err(Error::internal(format!("containerd events Subscribe: {e}"))),
        };
        match tokio::time::timeout(SUBSCRIBE_ANSWER_WAIT, &mut call).await {
            Ok(joined) => Ok(opened(joined)?.map_err(Error::from).boxed()),
            // Sent, and no answer yet: containerd is waiting for an event.
            Err(_) => Ok(futures::stream::once(call)
                .map(move |joined| match opened(joined) {
                    Ok(streaming) => streaming.map_err(Error::from).boxed(),
                    Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
                })
                .flatten()
                .boxed()),
        }
    }

    /// containerd's container lifecycle events as a source for
    /// [`anycri_core::watch::container_events`] (or `watch_with_source`): each call
    /// subscribes anew; a containerd restart ends the stream (a gap the watch covers by
    /// relisting).
    pub fn events_source(&self, options: EventsOptions) -> EventSource {
        let shared = Arc::new(Shared {
            client: self.clone(),
            options,
            owners: Mutex::new(HashMap::new()),
        });
        Arc::new(move || {
            let shared = shared.clone();
            Box::pin(async move {
                let envelopes = shared.client.subscribe(&shared.options.namespace).await?;
                let stream = envelopes
                    .then(move |item| {
                        let shared = shared.clone();
                        async move {
                            match item {
                                Err(e) => Some(Err(e)),
                                Ok(envelope) => shared
                                    .complete(&envelope)
                                    .await
                                    .map(|t| Ok(SourceEvent::Transition(t))),
                            }
                        }
                    })
                    .filter_map(futures::future::ready)
                    .boxed();
                Ok(stream)
            })
        })
    }
}

impl Shared {
    /// The envelope's transition with its pod, after the CRI caught up; None to skip it.
    async fn complete(&self, envelope: &Envelope) -> Option<Transition> {
        let mut t = transition(envelope)?;
        let deleted = t.kind == ContainerEventType::ContainerDeletedEvent;
        let owner = self.owner(&t.id, deleted).await;
        let sandbox = match &owner {
            Some(Owner::Foreign) => return None,
            Some(Owner::Sandbox) => {
                let id = t.id.clone();
                t = t.in_pod(id);
                Some(true)
            }
            Some(Owner::Container(pod)) => {
                if let Some(pod) = pod {
                    t = t.in_pod(pod.clone());
                }
                Some(false)
            }
            None => None,
        };
        if let Some(cri) = &self.options.settle_with {
            settle(cri.as_ref(), &t, sandbox, self.options.settle_timeout).await;
        }
        Some(t)
    }

    /// What container `id` is: remembered, or asked of containerd (not for a deleted one,
    /// which is forgotten instead).
    async fn owner(&self, id: &str, deleted: bool) -> Option<Owner> {
        if deleted {
            return self.owners.lock().ok()?.remove(id);
        }
        if let Some(owner) = self.owners.lock().ok()?.get(id) {
            return Some(owner.clone());
        }
        let owner = self.lookup(id).await?;
        if let Ok(mut owners) = self.owners.lock() {
            // Deletions forget entries; this bounds what a lost deletion leaves behind.
            if owners.len() >= 16384 {
                owners.clear();
            }
            owners.insert(id.to_string(), owner.clone());
        }
        Some(owner)
    }

    /// Asks containerd what container `id` is (None when it is gone or the call failed).
    async fn lookup(&self, id: &str) -> Option<Owner> {
        let request = ContainerdClient::request(
            GetContainerRequest { id: id.to_string() },
            &self.options.namespace,
        );
        let container = match ContainersClient::new(self.client.channel())
            .get(request)
            .await
        {
            Ok(r) => r.into_inner().container?,
            Err(e) => {
                tracing::debug!(id, error = %e, "containerd Containers.Get for an event failed");
                return None;
            }
        };
        Some(match container.labels.get(KIND_LABEL).map(String::as_str) {
            Some("sandbox") => Owner::Sandbox,
            Some("container") => {
                Owner::Container(container.spec.and_then(|spec| sandbox_of_spec(&spec.value)))
            }
            _ => Owner::Foreign,
        })
    }
}

/// The sandbox ID in an OCI spec's (JSON) annotations.
fn sandbox_of_spec(spec: &[u8]) -> Option<String> {
    let spec: serde_json::Value = serde_json::from_slice(spec).ok()?;
    spec.get("annotations")?
        .get(SANDBOX_ID_ANNOTATION)?
        .as_str()
        .map(str::to_owned)
}

/// Waits (up to `timeout`) until the CRI shows transition `t`.
async fn settle(
    cri: &dyn RuntimeService,
    t: &Transition,
    sandbox: Option<bool>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if shows(cri, t, sandbox).await {
            return;
        }
        if tokio::time::Instant::now() + pause > deadline {
            tracing::debug!(id = %t.id, kind = ?t.kind, "the CRI did not show the event's transition in time");
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Whether the CRI's status of `t`'s container (or sandbox) is at `t` or beyond. An error
/// other than NotFound counts as yes (nothing to wait for).
async fn shows(cri: &dyn RuntimeService, t: &Transition, sandbox: Option<bool>) -> bool {
    use ContainerEventType as K;
    if sandbox != Some(true) {
        let status = cri
            .container_status(ContainerStatusRequest {
                container_id: t.id.clone(),
                verbose: false,
            })
            .await;
        match status {
            Ok(r) => {
                let state = r
                    .status
                    .map_or(ContainerState::ContainerUnknown, |s| s.state());
                return match t.kind {
                    K::ContainerCreatedEvent => true,
                    K::ContainerStartedEvent => matches!(
                        state,
                        ContainerState::ContainerRunning | ContainerState::ContainerExited
                    ),
                    K::ContainerStoppedEvent => state == ContainerState::ContainerExited,
                    K::ContainerDeletedEvent => false,
                };
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return true,
            Err(_) if sandbox == Some(false) => return t.kind != K::ContainerCreatedEvent,
            Err(_) => {}
        }
    }
    let status = cri
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: t.id.clone(),
            verbose: false,
        })
        .await;
    match status {
        Ok(r) => {
            let state = r
                .status
                .map_or(PodSandboxState::SandboxNotready, |s| s.state());
            match t.kind {
                K::ContainerCreatedEvent | K::ContainerStartedEvent => true,
                K::ContainerStoppedEvent => state == PodSandboxState::SandboxNotready,
                K::ContainerDeletedEvent => false,
            }
        }
        Err(e) if e.kind() != ErrorKind::NotFound => true,
        // Gone: the CRI is past anything but its creation (not yet known).
        Err(_) => !matches!(t.kind, K::ContainerCreatedEvent | K::ContainerStartedEvent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{Any, Timestamp};

    fn envelope<M: Message>(topic: &str, event: &M) -> Envelope {
        Envelope {
            timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            namespace: CRI_NAMESPACE.into(),
            topic: topic.into(),
            event: Some(Any {
                type_url: "containerd.events.X".into(),
                value: event.encode_to_vec(),
            }),
        }
    }

    #[test]
    fn maps_topics() {
        let t = transition(&envelope(
            "/containers/create",
            &ContainerCreate {
                id: "c1".into(),
                ..Default::default()
            },
        ))
        .unwrap();
        assert_eq!(t.id, "c1");
        assert_eq!(t.kind, ContainerEventType::ContainerCreatedEvent);
        assert_eq!(t.at, 1_700_000_000_000_000_005);
        assert!(t.pod_sandbox_id.is_none());
        let t = transition(&envelope(
            "/tasks/start",
            &TaskStart {
                container_id: "c1".into(),
                pid: 7,
            },
        ))
        .unwrap();
        assert_eq!(t.kind, ContainerEventType::ContainerStartedEvent);
        let exit = |id: &str| TaskExit {
            container_id: "c1".into(),
            id: id.into(),
            exit_status: 137,
            ..Default::default()
        };
        let t = transition(&envelope("/tasks/exit", &exit("c1"))).unwrap();
        assert_eq!(t.kind, ContainerEventType::ContainerStoppedEvent);
        assert!(transition(&envelope("/tasks/exit", &exit("exec-1"))).is_none());
        let t = transition(&envelope(
            "/containers/delete",
            &ContainerDelete { id: "c1".into() },
        ))
        .unwrap();
        assert_eq!(t.kind, ContainerEventType::ContainerDeletedEvent);
        assert!(transition(&envelope("/tasks/delete", &TaskStart::default())).is_none());
        assert!(transition(&envelope("/tasks/start", &TaskStart::default())).is_none());
    }

    #[test]
    fn sandbox_from_spec() {
        let spec = br#"{"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-id":"abc"}}"#;
        assert_eq!(sandbox_of_spec(spec).as_deref(), Some("abc"));
        assert_eq!(sandbox_of_spec(b"{}"), None);
        assert_eq!(sandbox_of_spec(b"not json"), None);
    }
}
