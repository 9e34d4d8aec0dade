//! Checks known to fail on a given runtime for a reason outside anycri — the runtime's
//! version or this machine — with that reason. The live tests accept these failures and no
//! others; the README lists them.

/// A known limit: the runtime it applies to (`Version.runtime_name` and a prefix of its
/// `runtime_version`), the check, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownLimit {
    /// `Version.runtime_name` of the runtime it applies to.
    pub runtime_name: &'static str,
    /// The versions it applies to: a prefix of `Version.runtime_version` ("" for every one).
    pub version_prefix: &'static str,
    /// The check's name.
    pub check: &'static str,
    /// Why it fails there.
    pub reason: &'static str,
}

/// Every known limit.
pub const KNOWN_LIMITS: &[KnownLimit] = &[
    KnownLimit {
        runtime_name: "containerd",
        version_prefix: "1.6.",
        check: "image::groups_from_image",
        reason: "containerd before the fix of containerd#8136 (backported to 1.6 by #8823, after \
                 1.6.20) looks up the image-defined supplementary groups of uid 0 instead of \
                 the image's USER when the request sets no run_as_user (the kubelet always \
                 sets it, so Kubernetes pods do not see this)",
    },
    KnownLimit {
        runtime_name: "containerd",
        version_prefix: "1.6.",
        check: "idempotence::stop_removed_pod",
        reason: "containerd 1.6.20 answers NotFound for StopPodSandbox of a sandbox it no longer \
                 knows; the CRI requires success, and containerd made it a no-op later \
                 (containerd#10520, backported to 1.6 by #10531, after 1.6.20)",
    },
    KnownLimit {
        runtime_name: "containerd",
        version_prefix: "1.6.",
        check: "idempotence::stop_removed_container",
        reason: "containerd 1.6.20 answers NotFound for StopContainer of a container it no \
                 longer knows; the CRI requires success",
    },
    KnownLimit {
        runtime_name: "cri-o",
        version_prefix: "1.36.",
        check: "stats::pod_sandbox",
        reason: "CRI-O 1.36.3 reports only network statistics for a pod in PodSandboxStats on a \
                 cgroup v1 host with the cgroupfs manager (no CPU, no memory; crictl statsp \
                 shows the same)",
    },
    // cri-dockerd (Version.runtime_name "docker"; its runtime_version is Docker's).
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "container::exec_sync::timeout_kills_process",
        reason: "cri-dockerd 0.4.3 returns from a timed-out ExecSync but leaves the exec's process running (Docker has no exec kill; dockershim had the same limit)",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "container::logs::cri_format",
        reason: "cri-dockerd 0.4.3 leaves Docker's json-file log (a symlink) at the container's log path instead of a CRI-format log; anycri's log readers read it, as the kubelet's does",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "container::logs::reopen",
        reason: "cri-dockerd 0.4.3 answers ReopenContainerLog with \"docker does not support reopening container log files\"",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "stats::container",
        reason: "cri-dockerd 0.4.3 reports no writable_layer in ContainerStats",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "idempotence::remove_container_twice",
        reason: "cri-dockerd 0.4.3 answers a second RemoveContainer with an error (Docker's \"No such container\") where the CRI requires success",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "idempotence::stop_removed_container",
        reason: "cri-dockerd 0.4.3 answers StopContainer of a removed container with an error (Docker's \"No such container\") where the CRI requires success",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "idempotence::stop_pod_twice",
        reason: "cri-dockerd 0.4.3 stops a pod's sandbox but leaves the pod's containers running when the kubelet has not stopped them first (the CRI: StopPodSandbox forcibly terminates them)",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::pull_by_tag_and_remove",
        reason: "on Docker 28 (containerd image store) cri-dockerd 0.4.3 still finds an image right after RemoveImage",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::pull_by_digest",
        reason: "on Docker 28 (containerd image store) cri-dockerd 0.4.3 still finds an image right after RemoveImage by digest",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::id_consistent_across_apis",
        reason: "cri-dockerd 0.4.3 reports ContainerStatus.image_ref as `docker-pullable://<repo>@<digest>` (dockershim's form), neither the image ID nor a digest reference",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::list_counts",
        reason: "on Docker 28 (containerd image store) cri-dockerd 0.4.3 still lists an image after RemoveImage",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::distinct_images_listed",
        reason: "on Docker 28 (containerd image store) cri-dockerd 0.4.3 still lists images after RemoveImage",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "image::concurrent_removes",
        reason: "on Docker 28 (containerd image store) an image survives cri-dockerd 0.4.3's concurrent RemoveImage calls",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "volume::readonly_non_recursive",
        reason: "cri-dockerd 0.4.3 passes read-only mounts as `ro` binds, which Docker 25 and later make recursive: a mount beneath one is read-only too",
    },
    KnownLimit {
        runtime_name: "docker",
        version_prefix: "",
        check: "security::seccomp::privileged_ignores_profile",
        reason: "cri-dockerd 0.4.3 passes a privileged container's seccomp profile to Docker, which applies it (containerd and CRI-O run privileged containers without seccomp)",
    },
];

/// The known limit for `check` on the runtime that reported `runtime` ("name version", as
/// [`crate::Report::runtime`] holds it), if any.
///
/// ```
/// use anycri_conformance::known_limits::known_limit;
/// let limit = known_limit("containerd 1.6.20~ds1", "image::groups_from_image").expect("known");
/// println!("expected to fail: {}", limit.reason);
/// assert!(known_limit("containerd 2.1.9", "image::groups_from_image").is_none());
/// ```
pub fn known_limit(runtime: &str, check: &str) -> Option<&'static KnownLimit> {
    let mut words = runtime.split_whitespace();
    let (name, version) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    KNOWN_LIMITS.iter().find(|k| {
        k.runtime_name == name && version.starts_with(k.version_prefix) && k.check == check
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_to_their_versions_only() {
        assert!(known_limit("containerd 1.6.20~ds1", "image::groups_from_image").is_some());
        assert!(known_limit("containerd 2.1.9~ds1", "image::groups_from_image").is_none());
        assert!(known_limit("containerd 1.6.20~ds1", "pod::run_stop_remove").is_none());
        assert!(known_limit("cri-o 1.6.20", "image::groups_from_image").is_none());
    }
}
