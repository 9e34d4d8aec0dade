//! anycri's conformance suite: the CRI behaviour critest validates, and what it does not
//! (container events, resource updates, pod stats, the `Stream*` lists, ...), as a library of
//! short async checks that run against any [`RuntimeService`] + [`ImageService`] — a real
//! runtime over its socket, the in-process Docker shim, or a tool author's own implementation
//! inside `cargo test`.
//!
//! ```
//! # #[tokio::main] async fn main() -> anycri::Result<()> {
//! use anycri_conformance::{Options, images::with_registry_prefix, run};
//! let backend = anycri::connect("fake://").await?; // or unix:///run/containerd/containerd.sock
//! let options = Options {
//!     // The fake pulls any reference; a real runtime needs the images pushed there
//!     // (`anycri conformance images --push 127.0.0.1:5000`).
//!     images: Some(with_registry_prefix("127.0.0.1:5000/anycri-conformance")),
//!     ..Options::default()
//! };
//! let report = run(backend.runtime, backend.image, options).await;
//! assert_eq!(report.counts().failed, 0, "{}", report.summary_table());
//! # Ok(()) }
//! ```
//!
//! A tool author's own backend is certified the same way from a `#[test]`, a part of the
//! suite at a time if need be (the repository's `examples/certify_own_backend.rs` does it
//! for a whole backend):
//!
//! ```
//! # #[tokio::main] async fn main() {
//! use std::sync::Arc;
//! use anycri_conformance::{Options, Outcome, images::with_registry_prefix, run};
//! let backend = Arc::new(anycri_fake::FakeRuntime::new()); // your RuntimeService + ImageService
//! let options = Options {
//!     focus: Some(regex::Regex::new("^pod::").unwrap()),
//!     images: Some(with_registry_prefix("registry.test")),
//!     ..Options::default()
//! };
//! let report = run(backend.clone(), backend, options).await;
//! for check in &report.checks {
//!     if let Outcome::Skipped { reason } = &check.outcome {
//!         println!("skipped {}: {reason}", check.name);
//!     }
//! }
//! assert!(report.counts().passed > 0);
//! assert!(report.success(), "{}", report.to_markdown());
//! # }
//! ```
//!
//! Every check has a stable dotted name (`container::exec_sync::timeout_kills_process`), a
//! doc line, the critest spec it corresponds to, and what it [`Need`]s; what the runtime or
//! host cannot do is reported as skipped with the reason, never omitted and never passed.
//! Everything a check creates carries the run's label ([`RUN_LABEL`]) and is removed after
//! the check, whether it passed, failed, panicked or timed out, and again by label at the end
//! of the run (also on Ctrl-C).

#[macro_use]
mod macros;

mod checks;
pub mod cli;
mod context;
mod features;
pub mod images;
pub mod known_limits;
mod registry;
mod report;
mod runner;

pub use anycri::{ImageService, RuntimeService};
pub use context::{CheckResult, Failure, TestContext};
pub use features::{Features, HostFeatures, Need};
pub use images::{ImageKind, ImageRef, TestImages, push_test_images};
pub use registry::{Check, all_checks};
pub use report::{CheckReport, Counts, Outcome, Report, comparison_markdown};
pub use runner::{Options, Progress, run, select};

/// Label key every pod and container of a run carries; the value is the run's ID.
pub const RUN_LABEL: &str = "anycri.conformance/run";
/// Label key naming the check that created a pod or container.
pub const CHECK_LABEL: &str = "anycri.conformance/check";
