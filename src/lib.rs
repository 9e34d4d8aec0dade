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
//! # Features
//!
//! Default: `grpc`, the CRI client over a unix socket (`unix://` endpoints: containerd,
//! CRI-O, cri-dockerd, anycri's own server). Everything else is opt-in:
//!
//! | feature | adds |
//! |---|---|
//! | `docker` | the in-process Docker shim (`docker://`), without a streaming server |
//! | `docker-streaming` | the shim's streaming server for Exec, Attach and PortForward |
//! | `fake` | the in-memory runtime (`fake://`), for tests |
//! | `mock` | mockall mocks of the traits |
//! | `serde` | serde on every CRI message and on the info types |
//! | `streaming-client` | [`streaming`]: Exec/Attach/PortForward sessions from a runtime's URL |
//! | `containerd` | containerd-native extras on the gRPC backend (needs `protoc` to build) |
//!
//! A tool usually takes the default for itself and the fake for its tests:
//!
//! ```toml
//! [dependencies]
//! anycri = "0.1"
//!
//! [dev-dependencies]
//! anycri = { version = "0.1", features = ["fake", "mock"] }
//! ```
//!
//! An endpoint whose backend a build lacks fails with InvalidArgument naming the feature to
//! enable. The repository's `examples/README.md` lists runnable examples.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod endpoint;

pub use anycri_core::*;
pub use endpoint::{
    ConnectOptions, Connected, DEFAULT_ENDPOINTS, DockerNetwork, DockerOptions, DockerRole,
    Endpoint, connect, connect_auto, connect_image, connect_with, parse_streaming_address,
};

#[cfg(feature = "docker")]
#[cfg_attr(docsrs, doc(cfg(feature = "docker")))]
pub use anycri_docker as docker;
#[cfg(feature = "fake")]
#[cfg_attr(docsrs, doc(cfg(feature = "fake")))]
pub use anycri_fake as fake;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub use anycri_grpc as grpc;
#[cfg(feature = "streaming-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "streaming-client")))]
pub use anycri_streaming as streaming;
