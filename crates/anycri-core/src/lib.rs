//! anycri's contract with every container runtime.
//!
//! [`RuntimeService`] and [`ImageService`] have one method per CRI v1 RPC and take and
//! return the CRI messages ([`api`]); backends (gRPC to containerd or CRI-O, the Docker shim,
//! the in-memory fake) implement them, tools call them through `Arc<dyn RuntimeService>`.
//! On top sit the [`RuntimeServiceExt`]/[`ImageServiceExt`] helpers, the config
//! [`builders`], [`Error`] with its gRPC-code categories, [`capabilities`] discovery,
//! the CRI log format ([`logs`]), what the kubelet does around its calls ([`kubelet`]) and
//! decorators ([`layer`]) for timeouts, retries and tracing.
//!
//! Tool authors usually depend on the `anycri` crate, which re-exports all of this and adds
//! `connect(uri)`. Every example here runs against the in-memory fake (crate `anycri-fake`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt};
//! let fake = anycri_fake::FakeRuntime::new();
//! fake.add_image("busybox:1.36")?;
//! let runtime: Arc<dyn RuntimeService> = Arc::new(fake);
//!
//! let pod = PodSandboxConfigBuilder::new("hello", "default").build();
//! let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
//! let ids = runtime.run_pod_and_container(pod, app.build()).await?;
//! let out = runtime.exec_collect(&ids.container_id, &["echo", "hello"], Duration::from_secs(5)).await?;
//! assert_eq!(out.stdout_str(), "hello\n");
//! runtime.remove_pod_with_containers(&ids.pod_sandbox_id).await?;
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod builders;
pub mod capabilities;
pub mod error;
pub mod ext;
pub mod follow;
pub mod image_ref;
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
pub use layer::{
    Call, Layer, LayerExt, Layered, OriginLayer, RetryLayer, TimeoutLayer, TracingLayer,
};
pub use ops::{CriRequest, Operation};
pub use service::{CriStream, ImageService, LIST_STREAM_BATCH, RuntimeService, list_stream};
pub use watch::{EventOrigin, WatchEvent, WatchOptions, watch};

#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub use service::{MockImageService, MockRuntimeService};
