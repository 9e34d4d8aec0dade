//! Certify a backend of your own (`examples/support/my_runtime.rs`) with anycri's
//! conformance suite from `cargo test`: in-process, and again served over a unix socket as
//! CRI clients see it. Checks the backend cannot run (no Exec, no real processes, ...) are
//! skipped with the reason; the test fails on any failed check.
//!
//! ```sh
//! cargo test --example certify_own_backend   # the tests below
//! cargo run --example certify_own_backend    # the in-process run, with the report table
//! ```
//!
//! In your own crate the test goes under `tests/` with `anycri-conformance` as a
//! dev-dependency.

#[path = "support/my_runtime.rs"]
mod my_runtime;

use std::sync::Arc;

use anycri::{ImageService, RuntimeService};
use anycri_conformance::{Options, Report, images::with_registry_prefix, run};
use my_runtime::MyRuntime;

/// Run the whole suite against `runtime` + `images`.
async fn certify(runtime: Arc<dyn RuntimeService>, images: Arc<dyn ImageService>) -> Report {
    let options = Options {
        // The names of the suite's test images; this backend pulls any reference. For a
        // backend that pulls for real, push them first (`anycri conformance images --push`)
        // and give that registry here.
        images: Some(with_registry_prefix("registry.test/anycri-conformance")),
        ..Options::default()
    };
    run(runtime, images, options).await
}

#[tokio::main]
async fn main() {
    let backend = Arc::new(MyRuntime::new());
    let report = certify(backend.clone(), backend).await;
    print!("{}", report.summary_table());
    for failure in report.failures() {
        eprintln!("FAILED {}: {:?}", failure.name, failure.outcome);
    }
    std::process::exit(if report.success() { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn my_runtime_passes_the_conformance_suite() {
        let backend = Arc::new(MyRuntime::new());
        let report = certify(backend.clone(), backend).await;
        assert_eq!(report.runtime_name(), my_runtime::NAME);
        // The Markdown report names every failure with what was expected and what happened.
        assert!(report.success(), "{}", report.to_markdown());
        assert!(report.counts().passed > 0);
    }

    /// The same suite through `anycri-server` and anycri's gRPC client: what crictl or the
    /// kubelet would see of the backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn my_runtime_served_over_cri_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cri.sock");
        let backend = Arc::new(MyRuntime::new());
        let server = anycri_server::CriServer::new(backend.clone(), backend);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(anycri_server::serve_unix(
            server,
            socket.clone(),
            Default::default(),
            async { stopped.await.unwrap_or(()) },
        ));
        while !socket.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }

        let client = anycri::connect(&format!("unix://{}", socket.display()))
            .await
            .expect("connect to the served backend");
        let report = certify(client.runtime, client.image).await;
        assert!(report.success(), "{}", report.to_markdown());

        stop.send(()).ok();
        serving.await.unwrap().unwrap();
    }
}
