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
pub const KNOWN_LIMITS: &[KnownLimit] = &[KnownLimit {
    runtime_name: "containerd",
    check: "image::groups_from_image",
    reason: "containerd before the fix of containerd#8136 (backported to 1.6 by #8823, after \
             1.6.20) looks up the image-defined supplementary groups of uid 0 instead of the \
             image's USER when the request sets no run_as_user (the kubelet always sets it, \
             so Kubernetes pods do not see this)",
}];

/// The known limit for `check` on `runtime_name`, if any.
pub fn known_limit(runtime_name: &str, check: &str) -> Option<&'static KnownLimit> {
    KNOWN_LIMITS
        .iter()
        .find(|k| k.runtime_name == runtime_name && k.check == check)
}
