//! The suite certifies anycri's fake runtime inside `cargo test`: nothing may fail on it;
//! what it cannot do by design is skipped through its capabilities, with the reasons.

use std::sync::Arc;

use anycri_conformance::{Options, Outcome, images::with_registry_prefix, run};
use anycri_fake::FakeRuntime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_runtime_passes_the_suite() {
    let fake = Arc::new(FakeRuntime::new());
    // anycri's test images by name (the fake pulls any reference).
    let images = with_registry_prefix("registry.test/anycri-conformance");
    let report = run(
        fake.clone(),
        fake.clone(),
        Options {
            images: Some(images),
            parallel: 4,
            ..Default::default()
        },
    )
    .await;
    println!("{}", report.summary_table());
    assert!(report.success(), "{}", report.summary_table());
    assert!(
        report.cleanup_problems.is_empty(),
        "{:?}",
        report.cleanup_problems
    );
    let c = report.counts();
    assert!(c.passed >= 30, "too few checks ran on the fake: {c:?}");
    // Skips say why, and the full image set leaves no check without its image.
    for r in &report.checks {
        if let Outcome::Skipped { reason } = &r.outcome {
            assert!(!reason.is_empty(), "{} skipped without a reason", r.name);
            assert!(
                !reason.contains("test image in the image set"),
                "{} lacks an image: {reason}",
                r.name
            );
        }
    }
    // Nothing of the run is left in the fake.
    use anycri::{RuntimeService, api::*};
    let pods = fake
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap();
    assert!(pods.items.is_empty(), "pods left behind: {:?}", pods.items);
}
