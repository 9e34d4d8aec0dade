//! anycri's Docker shim: [`DockerRuntime`] implements the CRI's [`RuntimeService`] and
//! [`ImageService`] on a real Docker Engine through bollard, translating pods and containers
//! the way dockershim did and cri-dockerd does — in-process, with no extra daemon.
//!
//! A pod sandbox is a pause container; the pod's containers join its network, IPC and UTS
//! namespaces (and its PID namespace when the pod shares one). Names and labels follow
//! cri-dockerd's scheme ([`labels`]), so pods either of them created are seen by the other.
//! What Docker cannot hold in labels is kept in a small checkpoint directory
//! ([`checkpoint`]); everything else is rebuilt from Docker after a restart.
//!
//! [`RuntimeService`]: anycri_core::RuntimeService
//! [`ImageService`]: anycri_core::ImageService

mod cache;
mod cgroups;
pub mod checkpoint;
mod container;
mod error;
mod events;
mod exec;
mod image;
pub mod labels;
mod logs;
mod network;
mod owner;
mod runtime;
mod sandbox;
mod stats;
#[cfg(feature = "streaming")]
mod streaming;
mod translate;
mod validate;

/// The shim's parsers of outside bytes that are otherwise private, for the fuzz targets in
/// `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::translate::seccomp_opt_with;
}

#[cfg(feature = "streaming")]
pub use anycri_streaming::StreamingConfig;
pub use owner::NodeRole;
pub use runtime::{DockerRuntime, DockerRuntimeBuilder, NetworkPlugin};
