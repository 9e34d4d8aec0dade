//! anycri's gRPC backend: [`GrpcRuntime`] speaks CRI v1 over a unix socket to containerd,
//! CRI-O, cri-dockerd or anycri's own server, and implements both [`RuntimeService`] and
//! [`ImageService`].
//!
//! It behaves like the kubelet's CRI client: a `Version` handshake on connect, a 16 MiB
//! receive limit by default, per-call deadlines (RunPodSandbox twice the request timeout,
//! StopContainer plus its grace period, ExecSync plus its own timeout, none for PullImage and
//! streams), a reconnect with backoff after the runtime restarts, and `Stream*` list RPCs
//! that fall back to the unary lists on runtimes that lack them. The runtime's flavour is
//! recognised from `Version`; for CRI-O, its HTTP info endpoint on the same socket is
//! available as typed calls ([`crio`]). Where runtimes answer the same thing differently
//! (cri-dockerd's NotFound as Unknown and scheme-less streaming URLs, CRI-O's ExecSync timeout
//! as exit code -1), the answer is mapped to anycri's one documented behaviour.
//!
//! With the `containerd` feature, containerd 1.6 (whose CRI has no `GetContainerEvents`)
//! gets one from containerd's events service, a containerd whose CRI plugin is disabled is
//! explained as such, and containerd's namespaces are available
//! (`GrpcRuntime::containerd_namespaces`).
//!
//! [`RuntimeService`]: anycri_core::RuntimeService
//! [`ImageService`]: anycri_core::ImageService

#[cfg(feature = "containerd")]
mod containerd;
pub mod crio;
mod flavour;
mod runtime;
mod transport;

pub use runtime::{
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_REQUEST_TIMEOUT, GrpcRuntime, GrpcRuntimeBuilder,
};
pub use transport::socket_path;

/// containerd's own API (feature `containerd`): the client behind
/// [`GrpcRuntime::containerd_client`] and [`GrpcRuntime::containerd_namespaces`].
#[cfg(feature = "containerd")]
pub use anycri_containerd;
