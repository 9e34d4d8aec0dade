//! The CRI code in `src/generated/runtime.v1.rs` is generated from `proto/runtime/v1/api.proto`
//! and checked in, so that building anycri compiles no protobuf compiler: this test generates
//! it again (protox, a protobuf compiler in Rust, and tonic-prost-build) and fails when the
//! checked-in file differs. After changing the schema or the generator's settings, run it
//! with `ANYCRI_UPDATE_GENERATED=1` to rewrite the file.

use std::path::Path;

/// The generator's settings. Every variant is in the one file, gated by the crate's
/// features: the tonic clients by `client`, the servers by `server`, serde by `serde`.
fn generate(out_dir: &Path) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proto_root = manifest.join("proto");
    let fds = protox::compile([proto_root.join("runtime/v1/api.proto")], [&proto_root])
        .expect("the schema compiles");
    tonic_prost_build::configure()
        .out_dir(out_dir)
        .emit_rerun_if_changed(false)
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .client_mod_attribute(".", "#[cfg(feature = \"client\")]")
        .server_mod_attribute(".", "#[cfg(feature = \"server\")]")
        // Registry credentials: a hand-written Debug (lib.rs) that prints no secret.
        .skip_debug([".runtime.v1.AuthConfig"])
        .type_attribute(
            ".",
            "#[cfg_attr(feature = \"serde\", derive(serde::Serialize, serde::Deserialize))]",
        )
        .message_attribute(".", "#[cfg_attr(feature = \"serde\", serde(default))]")
        .compile_fds(fds)
        .expect("code generation");
    std::fs::read_to_string(out_dir.join("runtime.v1.rs")).expect("generated file")
}

#[test]
fn checked_in_code_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = generate(dir.path());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated/runtime.v1.rs");
    if std::env::var_os("ANYCRI_UPDATE_GENERATED").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "{} is not what proto/runtime/v1/api.proto generates; rerun this test with ANYCRI_UPDATE_GENERATED=1",
        path.display()
    );
}
