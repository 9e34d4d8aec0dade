//! pod-lister: one line per container on the node — pod, container, state, image — on any
//! CRI runtime. Written from anycri's README and doc comments only.

use anycri::api::{ContainerState, ListContainersRequest, ListPodSandboxRequest};
use anycri::{Result, RuntimeService};

/// One container, as the tool prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `namespace/name` of the container's pod.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// `running`, `exited`, `created` or `unknown`.
    pub state: &'static str,
    /// The image the container was created from.
    pub image: String,
}

/// Every container with its pod, sorted by pod and container name.
pub async fn rows(runtime: &dyn RuntimeService) -> Result<Vec<Row>> {
    let pods = runtime
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await?
        .items;
    let containers = runtime
        .list_containers(ListContainersRequest::default())
        .await?
        .containers;
    let mut rows: Vec<Row> = containers
        .into_iter()
        .map(|c| {
            let pod = pods
                .iter()
                .find(|p| p.id == c.pod_sandbox_id)
                .and_then(|p| p.metadata.as_ref())
                .map(|m| format!("{}/{}", m.namespace, m.name))
                .unwrap_or_else(|| "?".into());
            Row {
                pod,
                container: c.metadata.map(|m| m.name).unwrap_or_default(),
                state: match ContainerState::try_from(c.state) {
                    Ok(ContainerState::ContainerRunning) => "running",
                    Ok(ContainerState::ContainerExited) => "exited",
                    Ok(ContainerState::ContainerCreated) => "created",
                    _ => "unknown",
                },
                image: c.image.map(|i| i.image).unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.pod, &a.container).cmp(&(&b.pod, &b.container)));
    Ok(rows)
}
