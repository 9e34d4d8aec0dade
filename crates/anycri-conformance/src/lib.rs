//! anycri's conformance suite: the CRI behaviour critest validates, and what it does not
//! (container events, resource updates, pod stats, the `Stream*` lists, ...), as a library of
//! short async checks that run against any [`RuntimeService`] + [`ImageService`] — a real
//! runtime over its socket, the in-process Docker shim, or a tool author's own implementation
//! inside `cargo test`.
//!
//! ```no_run
//! # async fn demo() -> anycri::Result<()> {
//! use anycri_conformance::{Options, run};
//! let backend = anycri::connect("fake://").await?;
//! let report = run(backend.runtime, backend.image, Options::default()).await;
//! assert_eq!(report.counts().failed, 0, "{}", report.summary_table());
//! # Ok(()) }
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
