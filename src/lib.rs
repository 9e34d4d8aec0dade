//! anycri: one Rust API for every Kubernetes container runtime.
//!
//! ```no_run
//! # async fn demo() -> anycri::Result<()> {
//! use anycri::{RuntimeServiceExt, api::ListContainersRequest};
//! let runtime = anycri::connect("unix:///run/containerd/containerd.sock").await?;
//! let containers = runtime.runtime.list_containers(ListContainersRequest::default()).await?;
//! # Ok(()) }
//! ```
//!
//! [`connect`] picks a backend from an endpoint URI; [`connect_auto`] finds the node's runtime
//! the way crictl does. Everything else is re-exported from `anycri-core` (the traits, errors,
//! helpers, builders) and the backend crates.

mod endpoint;

pub use anycri_core::*;
pub use endpoint::{
    Connected, DEFAULT_ENDPOINTS, Endpoint, connect, connect_auto, connect_image,
    parse_streaming_address,
};

#[cfg(feature = "docker")]
pub use anycri_docker as docker;
#[cfg(feature = "fake")]
pub use anycri_fake as fake;
#[cfg(feature = "grpc")]
pub use anycri_grpc as grpc;
