//! containerd-native extras (feature `containerd`), through `anycri-containerd` on the same
//! socket as the CRI:
//!
//! - `GetContainerEvents` on a containerd whose CRI answers Unimplemented (1.6): containerd's
//!   events service, turned into CRI events by [`anycri_core::watch::container_events`]
//!   (statuses, per-container order, relists after gaps such as a containerd restart);
//! - a `Version` that fails with "unknown service runtime.v1.RuntimeService": the CRI
//!   plugin's state from containerd's introspection service, as a FailedPrecondition that
//!   says it is disabled (or failed, with its init error) and how to enable it;
//! - containerd's namespaces, for `anycri info`.

use std::sync::Arc;

use anycri_containerd::{ContainerdClient, EventsOptions, Namespace};
use anycri_core::{
    Error, ErrorKind, Result, RuntimeFlavour, RuntimeService, api::ContainerEventResponse,
    service::CriStream,
};

use crate::GrpcRuntime;

impl GrpcRuntime {
    /// A client of containerd's own API on this runtime's socket (containerd serves it
    /// beside the CRI).
    pub async fn containerd_client(&self) -> Result<ContainerdClient> {
        let endpoint = format!("unix://{}", self.socket_path().display());
        ContainerdClient::connect_with_timeout(&endpoint, self.connect_timeout()).await
    }

    /// containerd's namespaces (`k8s.io` is the CRI's), sorted by name. Fails (Unimplemented)
    /// when the socket is not a containerd's.
    pub async fn containerd_namespaces(&self) -> Result<Vec<Namespace>> {
        self.containerd_client().await?.namespaces().await
    }
}

/// Whether the runtime is containerd (handshaking first when the flavour is not known yet).
pub(crate) async fn is_containerd(runtime: &GrpcRuntime) -> bool {
    let flavour = match runtime.flavour() {
        Some(f) => Some(f),
        None => runtime
            .handshake()
            .await
            .ok()
            .map(|v| RuntimeFlavour::from_runtime_name(&v.runtime_name)),
    };
    flavour == Some(RuntimeFlavour::Containerd)
}

/// `GetContainerEvents` from containerd's events service (see the module docs).
pub(crate) async fn container_events(
    runtime: &GrpcRuntime,
) -> Result<CriStream<ContainerEventResponse>> {
    let client = runtime.containerd_client().await?;
    let cri: Arc<dyn RuntimeService> = Arc::new(runtime.clone());
    let source = client.events_source(EventsOptions::default().settle_with(cri.clone()));
    tracing::debug!(
        socket = %runtime.socket_path().display(),
        "the CRI has no GetContainerEvents: serving containerd's events service"
    );
    anycri_core::watch::container_events(cri, source).await
}

/// Why `Version` is unimplemented, when the socket is a containerd's whose CRI plugin is not
/// loaded: a FailedPrecondition saying so and how to fix it. None when that is not the case.
pub(crate) async fn explain_missing_cri(runtime: &GrpcRuntime, err: &Error) -> Option<Error> {
    let client = runtime.containerd_client().await.ok()?;
    let plugin = match client.cri_plugin().await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "not a containerd (its introspection service does not answer)");
            return None;
        }
    };
    let socket = format!("unix://{}", runtime.socket_path().display());
    let message = plugin.explain(&socket)?;
    Some(Error::with_source(
        ErrorKind::FailedPrecondition,
        format!("{message} ({})", err.message()),
        err.message().to_owned(),
    ))
}
