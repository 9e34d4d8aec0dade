//! Certify a runtime implementation from Rust: here anycri's in-memory fake. A tool author
//! passes their own `RuntimeService` + `ImageService` the same way.
//!
//! `cargo run -p anycri-conformance --example conformance_fake`

use std::sync::Arc;

use anycri_conformance::{Options, images::with_registry_prefix, run};
use anycri_fake::FakeRuntime;

#[tokio::main]
async fn main() {
    let fake = Arc::new(FakeRuntime::new());
    // anycri's test images by name (the fake pulls any reference).
    let images = with_registry_prefix("registry.test/anycri-conformance");
    let options = Options {
        images: Some(images),
        ..Default::default()
    };
    let report = run(fake.clone(), fake, options).await;
    print!("{}", report.summary_table());
    std::process::exit(if report.success() { 0 } else { 1 });
}
