//! The Kubernetes Container Runtime Interface (CRI) v1, as Rust types.
//!
//! Everything here is generated at build time from the project's `proto/runtime/v1/api.proto`
//! (see `proto/README.md` for the upstream version it matches). The messages are plain prost
//! structs; with the `client` feature the tonic clients
//! ([`v1::runtime_service_client::RuntimeServiceClient`],
//! [`v1::image_service_client::ImageServiceClient`]) are included, with `server` the tonic
//! server traits. `tonic` and `prost` are re-exported so users get matching versions.

pub use prost;
pub use tonic;

/// CRI v1 (`runtime.v1`): every message, enum and service of the schema.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("runtime.v1");
}

/// Full gRPC service names, as they appear in request paths (`/runtime.v1.RuntimeService/Version`).
pub mod service_names {
    /// The runtime service.
    pub const RUNTIME: &str = "runtime.v1.RuntimeService";
    /// The image service.
    pub const IMAGE: &str = "runtime.v1.ImageService";
}

/// The CRI API version this crate speaks, as sent in `VersionRequest.version`.
pub const CRI_API_VERSION: &str = "v1";

/// The cri-api release the schema in `proto/` matches.
pub const CRI_API_RELEASE: &str = "v0.36.0";
