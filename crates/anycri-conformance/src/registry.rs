//! The list of checks: each a name, a doc line, the critest spec it corresponds to, what it
//! needs, whether it must run alone, its timeout, and the async fn itself.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::{
    context::{CheckResult, TestContext},
    features::Need,
};

/// The function type of a check.
pub type CheckFn = fn(TestContext) -> BoxFuture<'static, CheckResult>;

/// One registered check.
#[derive(Clone)]
pub struct Check {
    /// Stable dotted name, e.g. `container::exec_sync::timeout_kills_process`.
    pub name: &'static str,
    /// What it verifies, in one line.
    pub doc: &'static str,
    /// The critest spec it corresponds to, if any.
    pub critest: Option<&'static str>,
    /// What it needs; unmet needs make it skipped with the reasons.
    pub needs: Vec<Need>,
    /// It must run while no other check runs (it sees or changes what others use: images).
    pub exclusive: bool,
    /// How long it may take before it fails as timed out.
    pub timeout: Duration,
    /// It checks something the CRI does not require (behaviour most runtimes share, worth
    /// knowing): a failure is reported as a skip that says what the runtime did, never as a
    /// failure of the run.
    pub informational: bool,
    /// The check.
    pub func: CheckFn,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .field("exclusive", &self.exclusive)
            .finish()
    }
}

impl Check {
    /// A check with no needs, not exclusive, a 90 s timeout.
    pub fn new(name: &'static str, doc: &'static str, func: CheckFn) -> Self {
        Check {
            name,
            doc,
            critest: None,
            needs: Vec::new(),
            exclusive: false,
            timeout: Duration::from_secs(90),
            informational: false,
            func,
        }
    }
    /// It is informational: the CRI does not require what it checks.
    pub fn informational(mut self) -> Self {
        self.informational = true;
        self
    }
    /// The critest spec it corresponds to.
    pub fn critest(mut self, spec: &'static str) -> Self {
        self.critest = Some(spec);
        self
    }
    /// What it needs.
    pub fn needs(mut self, needs: &[Need]) -> Self {
        self.needs.extend_from_slice(needs);
        self
    }
    /// It must run alone.
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }
    /// Its timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Register `$f` under `$name`: `check!("pod::x", "doc", f)`.
macro_rules! check {
    ($name:literal, $doc:literal, $f:path) => {
        $crate::registry::Check::new($name, $doc, |t| Box::pin($f(t)))
    };
}
pub(crate) use check;

/// Every check of the suite, in report order.
///
/// ```
/// let checks = anycri_conformance::all_checks();
/// assert!(checks.len() > 100);
/// // The checks that correspond to a critest spec, with the spec's name.
/// for check in checks.iter().filter(|c| c.critest.is_some()).take(3) {
///     println!("{}: {} [critest: {}]", check.name, check.doc, check.critest.unwrap_or_default());
/// }
/// ```
pub fn all_checks() -> Vec<Check> {
    crate::checks::all()
}
