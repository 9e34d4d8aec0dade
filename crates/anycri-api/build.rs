//! Generates the CRI v1 messages and tonic services from `proto/runtime/v1/api.proto`
//! with protox, a protobuf compiler written in Rust, so building needs no system `protoc`.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let api = proto_root.join("runtime/v1/api.proto");
    println!("cargo:rerun-if-changed={}", api.display());

    let fds = protox::compile([&api], [&proto_root])?;
    let mut builder = tonic_prost_build::configure()
        .build_client(env::var_os("CARGO_FEATURE_CLIENT").is_some())
        .build_server(env::var_os("CARGO_FEATURE_SERVER").is_some())
        .build_transport(true)
        // Registry credentials: a hand-written Debug (lib.rs) that prints no secret.
        .skip_debug([".runtime.v1.AuthConfig"]);
    if env::var_os("CARGO_FEATURE_SERDE").is_some() {
        builder = builder
            .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
            .message_attribute(".", "#[serde(default)]");
    }
    builder.compile_fds(fds)?;
    Ok(())
}
