//! anycri's containerd-native extras: what the CRI does not give on containerd, from
//! containerd's own API on the same socket (containerd serves its services and the CRI on
//! one socket, `/run/containerd/containerd.sock` by default).
//!
//! - **events** ([`ContainerdClient::events_source`]): containerd 1.6's CRI plugin has no
//!   `GetContainerEvents` (it answers Unimplemented). Its events service has the same
//!   transitions: `/containers/create`, `/tasks/start`, `/tasks/exit` and
//!   `/containers/delete` in the CRI namespace (`k8s.io`) become CRI container events, fed
//!   to [`anycri_core::watch::container_events`], which completes them with statuses, keeps
//!   each container's events in order and relists after gaps (a containerd restart).
//!   `anycri-grpc`'s `containerd` feature serves `GetContainerEvents` this way.
//! - **diagnostics**: the namespaces ([`ContainerdClient::namespaces`]) and the state of the
//!   CRI plugin through the introspection service ([`ContainerdClient::cri_plugin`]): loaded,
//!   failed with its init error, or absent (disabled in the config, as Docker's own containerd
//!   is with `disabled_plugins = ["cri"]`).
//!
//! The generated containerd API (services, event types) is [`containerd_client`],
//! re-exported; [`ContainerdClient::channel`] reaches any other service.

mod client;
mod diagnostics;
mod events;

pub use client::{ContainerdClient, DEFAULT_CONNECT_TIMEOUT, socket_path};
pub use containerd_client;
pub use diagnostics::{CriPlugin, CriPluginState, Namespace};
pub use events::{CRI_NAMESPACE, EventsOptions, transition};
