//! `GetContainerEvents` on Docker: the shim's container events come from Docker's own event
//! stream (`/events`, containers carrying the shim's type label), mapped to the CRI's
//! created/started/stopped/deleted. The stream is resubscribed after it breaks (a dockerd
//! restart ends it) from the last event's time, and the shim relists to cover the gap, so a
//! transition made while dockerd was away still arrives; statuses, order and deduplication
//! come from [`anycri_core::watch::container_events`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anycri_core::api::{ContainerEventResponse, ContainerEventType};
use anycri_core::watch::{self, EventSource, SourceEvent, Transition};
use anycri_core::{CriStream, RuntimeService};
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;

use crate::error::docker_error;
use crate::labels;
use crate::runtime::DockerRuntime;

impl DockerRuntime {
    /// The CRI event stream of this shim (see the module docs).
    pub(crate) async fn container_events_impl(
        &self,
    ) -> anycri_core::Result<CriStream<ContainerEventResponse>> {
        let runtime: Arc<dyn RuntimeService> = Arc::new(self.clone());
        watch::container_events(runtime, self.docker_event_source()).await
    }

    /// Docker's event stream of CRI containers and sandboxes, as raw transitions.
    pub(crate) fn docker_event_source(&self) -> EventSource {
        let docker = self.docker().clone();
        // With CNI a sandbox is Ready only after ADD, which follows Docker's start.
        let cni = matches!(self.inner.network, crate::NetworkPlugin::Cni { .. })
            .then(|| self.inner.checkpoints.clone());
        // The last event's time ("seconds.nanoseconds"), where a resubscription starts so
        // that what Docker still buffers is replayed (duplicates are dropped downstream).
        let since: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        Arc::new(move || {
            let docker = docker.clone();
            let since = since.clone();
            let cni = cni.clone();
            Box::pin(async move {
                let filters = HashMap::from([
                    ("type".to_string(), vec!["container".to_string()]),
                    ("label".to_string(), vec![labels::TYPE_LABEL.to_string()]),
                    (
                        "event".to_string(),
                        ["create", "start", "die", "destroy"]
                            .map(String::from)
                            .to_vec(),
                    ),
                ]);
                let options = EventsOptions {
                    since: since.lock().expect("since lock").clone(),
                    until: None,
                    filters: Some(filters),
                };
                // Fail here, not on the first item, when dockerd is away: a ping first.
                docker
                    .ping()
                    .await
                    .map_err(|e| docker_error("Docker events", e))?;
                let stream = docker.events(Some(options)).filter_map(move |item| {
                    let since = since.clone();
                    let cni = cni.clone();
                    let docker = docker.clone();
                    async move {
                        match item {
                            Ok(message) => {
                                if let Some(nanos) = message.time_nano {
                                    *since.lock().expect("since lock") = Some(format!(
                                        "{}.{:09}",
                                        nanos / 1_000_000_000,
                                        nanos % 1_000_000_000
                                    ));
                                }
                                let t = transition(&message)?;
                                if let Some(checkpoints) = &cni
                                    && is_sandbox_start(&message)
                                {
                                    await_sandbox_ready(&docker, checkpoints, &t.id).await;
                                }
                                Some(Ok(SourceEvent::Transition(t)))
                            }
                            Err(e) => Some(Err(docker_error("Docker events", e))),
                        }
                    }
                });
                Ok(stream.boxed())
            })
        })
    }
}

/// Whether `message` is the start of a pause container made with the ready mark (one that
/// carries [`labels::STATE_DIR_LABEL`]; Docker's event attributes hold the labels).
fn is_sandbox_start(message: &EventMessage) -> bool {
    let attributes = message.actor.as_ref().and_then(|a| a.attributes.as_ref());
    message.action.as_deref() == Some("start")
        && attributes
            .and_then(|a| a.get(labels::TYPE_LABEL))
            .is_some_and(|t| t == labels::TYPE_SANDBOX)
        && attributes.is_some_and(|a| a.contains_key(labels::STATE_DIR_LABEL))
}

/// With CNI, a sandbox's STARTED is reported once the sandbox is Ready (ADD done, the
/// checkpoint marked), as containerd reports it after its network setup, so that the status
/// the event carries (and a watcher reads) has the pod's IP. Gives up when the pause container
/// no longer runs (a failed ADD removes it) or after the CNI plugins' time limit. Events after
/// this one wait meanwhile, which keeps their order.
async fn await_sandbox_ready(
    docker: &bollard::Docker,
    checkpoints: &crate::checkpoint::Checkpoints,
    id: &str,
) {
    let deadline = tokio::time::Instant::now() + crate::network::PLUGIN_TIMEOUT;
    let mut polls = 0u32;
    while tokio::time::Instant::now() < deadline {
        if matches!(checkpoints.read(id).await, Ok(Some(cp)) if cp.setup_complete()) {
            return;
        }
        polls += 1;
        if polls % 10 == 0 {
            let running = docker
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if !running {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The CRI transition a Docker event stands for, if any.
pub(crate) fn transition(message: &EventMessage) -> Option<Transition> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let actor = message.actor.as_ref()?;
    let id = actor.id.clone()?;
    let attributes = actor.attributes.clone().unwrap_or_default();
    let sandbox = match attributes.get(labels::TYPE_LABEL).map(String::as_str) {
        Some(labels::TYPE_SANDBOX) => true,
        Some(labels::TYPE_CONTAINER) => false,
        _ => return None,
    };
    let kind = match message.action.as_deref()? {
        // A sandbox has all four, as containerd 2.x reports them.
        "create" => ContainerEventType::ContainerCreatedEvent,
        "start" => ContainerEventType::ContainerStartedEvent,
        "die" => ContainerEventType::ContainerStoppedEvent,
        "destroy" => ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    };
    let at = message
        .time_nano
        .or_else(|| message.time.map(|s| s * 1_000_000_000))
        .unwrap_or_default();
    let pod = if sandbox {
        Some(id.clone())
    } else {
        attributes.get(labels::SANDBOX_ID_LABEL).cloned()
    };
    let t = Transition::new(id, kind, at);
    Some(match pod {
        Some(pod) => t.in_pod(pod),
        None => t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn message(action: &str, kind: &str, sandbox_id: Option<&str>) -> EventMessage {
        let mut attributes = HashMap::from([(labels::TYPE_LABEL.to_string(), kind.to_string())]);
        if let Some(s) = sandbox_id {
            attributes.insert(labels::SANDBOX_ID_LABEL.to_string(), s.to_string());
        }
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(attributes),
            }),
            time: Some(1),
            time_nano: Some(1_000_000_123),
            ..Default::default()
        }
    }

    #[test]
    fn container_actions_map_to_cri_events() {
        for (action, kind) in [
            ("create", ContainerEventType::ContainerCreatedEvent),
            ("start", ContainerEventType::ContainerStartedEvent),
            ("die", ContainerEventType::ContainerStoppedEvent),
            ("destroy", ContainerEventType::ContainerDeletedEvent),
        ] {
            let t = transition(&message(action, labels::TYPE_CONTAINER, Some("p1"))).unwrap();
            assert_eq!(t.kind, kind, "{action}");
            assert_eq!(t.pod_sandbox_id.as_deref(), Some("p1"));
            assert_eq!(t.at, 1_000_000_123);
        }
    }

    #[test]
    fn sandboxes_are_their_own_pod() {
        let t = transition(&message("start", labels::TYPE_SANDBOX, None)).unwrap();
        assert_eq!(t.pod_sandbox_id.as_deref(), Some("c1"));
        let t = transition(&message("create", labels::TYPE_SANDBOX, None)).unwrap();
        assert_eq!(t.kind, ContainerEventType::ContainerCreatedEvent);
    }

    #[test]
    fn other_events_and_plain_containers_are_ignored() {
        assert!(transition(&message("exec_start", labels::TYPE_CONTAINER, None)).is_none());
        assert!(transition(&message("start", "something-else", None)).is_none());
        let mut m = message("start", labels::TYPE_CONTAINER, None);
        m.typ = Some(EventMessageTypeEnum::NETWORK);
        assert!(transition(&m).is_none());
    }
}
