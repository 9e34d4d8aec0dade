//! anycri's contract with every container runtime.
//!
//! [`RuntimeService`] and [`ImageService`] have one method per CRI v1 RPC and take and
//! return the CRI messages ([`api`]); backends (gRPC to containerd or CRI-O, the Docker shim,
//! the in-memory fake) implement them, tools call them through `Arc<dyn RuntimeService>`.
//! On top sit the [`RuntimeServiceExt`]/[`ImageServiceExt`] helpers, the config
//! [`builders`], [`Error`] with its gRPC-code categories, [`capabilities`] discovery,
//! the CRI log format ([`logs`]), what the kubelet does around its calls ([`kubelet`]) and
//! decorators ([`layer`]) for timeouts, retries and tracing.

pub mod builders;
pub mod capabilities;
pub mod error;
pub mod ext;
pub mod follow;
pub mod kubelet;
pub mod layer;
pub mod logs;
pub mod ops;
pub mod service;
pub mod watch;

/// The CRI v1 messages (re-exported from `anycri-api`).
pub use anycri_api::v1 as api;
pub use anycri_api::{prost, tonic};

pub use builders::{ContainerConfigBuilder, PodSandboxConfigBuilder};
pub use capabilities::{Capabilities, RuntimeFlavour, RuntimeInfo, discover};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use ext::{ExecOutput, ImageServiceExt, PodAndContainer, RuntimeServiceExt};
pub use follow::{FollowOptions, follow_container_log};
pub use layer::{Layer, LayerExt, Layered, RetryLayer, TimeoutLayer, TracingLayer};
pub use ops::{CriRequest, Operation};
pub use service::{CriStream, ImageService, RuntimeService};
pub use watch::{EventOrigin, WatchEvent, WatchOptions, watch};

#[cfg(feature = "mock")]
pub use service::{MockImageService, MockRuntimeService};
