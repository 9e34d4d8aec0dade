//! anycri: one Rust API for every Kubernetes container runtime.
//!
//! ```no_run
//! # async fn demo() -> anycri::Result<()> {
//! use anycri::{RuntimeService, api::ListContainersRequest};
//! let runtime = anycri::connect("unix:///run/containerd/containerd.sock").await?;
//! let containers = runtime.runtime.list_containers(ListContainersRequest::default()).await?;
//! # Ok(()) }
//! ```
//!
//! [`connect`] picks a backend from an endpoint URI; [`connect_auto`] finds the node's runtime
//! the way crictl does. Everything else is re-exported from `anycri-core` (the traits, errors,
//! helpers, builders) and the backend crates.
//!
//! The same code runs against the in-memory fake (`fake://`, feature `fake`), which is how a
//! tool's tests run without a runtime:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
//! use std::time::Duration;
//! use anycri::{ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeServiceExt};
//! let anycri::Connected { runtime, image, .. } = anycri::connect("fake://").await?;
//! image.pull_image_if_absent("busybox:1.36", None).await?;
//! let pod = PodSandboxConfigBuilder::new("hello", "default").build();
//! let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
//! let ids = runtime.run_pod_and_container(pod, app.build()).await?;
//! let out = runtime.exec_collect(&ids.container_id, &["echo", "hi"], Duration::from_secs(5)).await?;
//! assert_eq!(out.stdout_str(), "hi\n");
//! runtime.remove_pod_with_containers(&ids.pod_sandbox_id).await?;
//! # Ok(()) }
//! ```
//!
//! With the `mock` feature, `MockRuntimeService` and `MockImageService` (mockall) script
//! answers the fake cannot give, such as a runtime that is down:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use anycri::{Error, MockRuntimeService, RuntimeService, api::VersionRequest};
//!
//! /// What a tool shows as the runtime's name.
//! async fn runtime_name(runtime: &dyn RuntimeService) -> String {
//!     match runtime.version(VersionRequest::default()).await {
//!         Ok(v) => v.runtime_name,
//!         Err(e) => format!("unreachable ({})", e.kind()),
//!     }
//! }
//!
//! let mut mock = MockRuntimeService::new();
//! mock.expect_version()
//!     .times(1)
//!     .returning(|_| Err(Error::unavailable("connection refused")));
//! assert_eq!(runtime_name(&mock).await, "unreachable (unavailable)");
//! # }
//! ```
//!
//! Features: `grpc` (`unix://` endpoints), `fake` (`fake://`), `docker` (`docker://`, the
//! in-process Docker shim) are on by default; `containerd` adds containerd-native extras to
//! the gRPC backend, `mock` the mockall mocks, `serde` serde on every CRI message. The
//! repository's `examples/README.md` lists runnable examples.

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
