//! Checks known to fail on a given runtime for a reason outside anycri — the runtime's
//! version or this machine — with that reason. The live tests accept these failures and no
//! others; the README lists them.

/// A known limit: the runtime it applies to (`Version.runtime_name`), the check, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownLimit {
    /// `Version.runtime_name` of the runtime it applies to.
    pub runtime_name: &'static str,
    /// The check's name.
    pub check: &'static str,
    /// Why it fails there.
    pub reason: &'static str,
}

/// Every known limit.
pub const KNOWN_LIMITS: &[KnownLimit] = &[];

/// The known limit for `check` on `runtime_name`, if any.
pub fn known_limit(runtime_name: &str, check: &str) -> Option<&'static KnownLimit> {
    KNOWN_LIMITS
        .iter()
        .find(|k| k.runtime_name == runtime_name && k.check == check)
}
