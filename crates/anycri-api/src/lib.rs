//! The Kubernetes Container Runtime Interface (CRI) v1, as Rust types.
//!
//! Everything here is generated from the crate's `proto/runtime/v1/api.proto` (see
//! `proto/README.md` for the upstream version it matches) and checked in as
//! `src/generated/runtime.v1.rs`, so building it compiles no protobuf compiler; a test
//! (`tests/generated.rs`) fails when the file and the schema disagree. The messages are plain prost
//! structs; with the `client` feature the tonic clients
//! ([`v1::runtime_service_client::RuntimeServiceClient`],
//! [`v1::image_service_client::ImageServiceClient`]) are included, with `server` the tonic
//! server traits. `tonic` and `prost` are re-exported so users get matching versions.

pub use prost;
pub use tonic;

/// CRI v1 (`runtime.v1`): every message, enum and service of the schema.
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod v1 {
    include!("generated/runtime.v1.rs");
}

/// Registry credentials print without their secrets: `password`, `auth`, `identity_token`
/// and `registry_token` show as `"<redacted>"` (or `""` when empty), so a request logged or
/// put in an error with `{:?}` (a `PullImageRequest`, say) never leaks them.
impl std::fmt::Debug for v1::AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn redact(secret: &str) -> &'static str {
            if secret.is_empty() { "" } else { "<redacted>" }
        }
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("auth", &redact(&self.auth))
            .field("server_address", &self.server_address)
            .field("identity_token", &redact(&self.identity_token))
            .field("registry_token", &redact(&self.registry_token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::v1::*;

    #[test]
    fn credentials_debug_without_secrets() {
        let request = PullImageRequest {
            image: Some(ImageSpec {
                image: "registry.example/app:1".into(),
                ..Default::default()
            }),
            auth: Some(AuthConfig {
                username: "robot".into(),
                password: "hunter2-password".into(),
                auth: "cm9ib3Q6aHVudGVyMi1wYXNzd29yZA==".into(),
                server_address: "registry.example".into(),
                identity_token: "id-token-xyz".into(),
                registry_token: String::new(),
            }),
            sandbox_config: None,
        };
        let text = format!("{request:?} {request:#?}");
        for secret in [
            "hunter2-password",
            "cm9ib3Q6aHVudGVyMi1wYXNzd29yZA==",
            "id-token-xyz",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("robot") && text.contains("<redacted>"));
        assert!(text.contains("registry_token: \"\""));
    }
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
