//! What the kubelet does around its CRI calls that runtimes rely on, in one place for every
//! part of anycri that plays the kubelet's part (the [`crate::RuntimeServiceExt`] helpers, the
//! conformance suite, the benchmarks, the CLI). Before `RunPodSandbox` the pod's log directory
//! exists; before `CreateContainer` so does the container's log directory
//! (`<log_directory>/<container name>/`), which conmon (CRI-O) and cri-dockerd do not create
//! themselves; and `ImageSpec.user_specified_image` names the image as the user wrote it, which
//! CRI-O requires to verify signatures whenever a signature policy applies.
//!
//! ```
//! use anycri_core::{builders::*, kubelet};
//! let dir = tempfile::tempdir().unwrap();
//! let pod = PodSandboxConfigBuilder::new("web", "default")
//!     .log_directory(dir.path().join("pod").to_string_lossy())
//!     .build();
//! kubelet::prepare_pod_sandbox(&pod).unwrap();
//! let mut container = ContainerConfigBuilder::new("app", "busybox:1.36").build();
//! kubelet::prepare_container(Some(&pod), &mut container).unwrap();
//! assert!(dir.path().join("pod/app").is_dir());
//! assert_eq!(container.image.unwrap().user_specified_image, "busybox:1.36");
//! ```

use std::{os::unix::fs::DirBuilderExt, path::Path};

use crate::{
    api::*,
    error::{Error, ErrorKind, Result},
};

/// The mode the kubelet gives pod and container log directories.
const LOG_DIR_MODE: u32 = 0o755;

/// Create `dir` and its parents with the kubelet's mode; existing directories are fine.
fn create_log_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(LOG_DIR_MODE)
        .create(dir)
        .map_err(|e| {
            let kind = match e.kind() {
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Internal,
            };
            Error::with_source(kind, format!("creating log directory {}", dir.display()), e)
        })
}

/// Before `RunPodSandbox`: the pod's log directory exists (when the config names one).
pub fn prepare_pod_sandbox(config: &PodSandboxConfig) -> Result<()> {
    if config.log_directory.is_empty() {
        return Ok(());
    }
    create_log_dir(Path::new(&config.log_directory))
}

/// The kubelet's label of a pod's name, on its sandbox and containers.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
/// The kubelet's label of a pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The kubelet's label of a pod's UID (CRI-O finds a pod's containers for its events by it).
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
/// The kubelet's label of a container's name.
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// The labels the kubelet puts on every pod sandbox (pod name, namespace and UID from its
/// metadata), added where the config lacks them.
///
/// ```
/// use anycri_core::{api::{PodSandboxConfig, PodSandboxMetadata}, kubelet};
/// let mut config = PodSandboxConfig {
///     metadata: Some(PodSandboxMetadata { name: "web".into(), namespace: "shop".into(), uid: "u-1".into(), attempt: 0 }),
///     ..Default::default()
/// };
/// kubelet::pod_labels(&mut config);
/// assert_eq!(config.labels[kubelet::POD_NAME_LABEL], "web");
/// assert_eq!(config.labels[kubelet::POD_UID_LABEL], "u-1");
/// ```
pub fn pod_labels(config: &mut PodSandboxConfig) {
    let Some(meta) = config.metadata.clone() else {
        return;
    };
    insert_absent(
        &mut config.labels,
        [
            (POD_NAME_LABEL, meta.name),
            (POD_NAMESPACE_LABEL, meta.namespace),
            (POD_UID_LABEL, meta.uid),
        ],
    );
}

/// Adds each non-empty label the map lacks.
fn insert_absent<const N: usize>(
    labels: &mut std::collections::HashMap<String, String>,
    pairs: [(&str, String); N],
) {
    for (key, value) in pairs {
        if !value.is_empty() {
            labels.entry(key.to_string()).or_insert(value);
        }
    }
}

/// Before `CreateContainer`: the directory of the container's log file exists (when the pod
/// has a log directory and the container a log path), `user_specified_image` is set to
/// the image when the caller left it empty, and the container carries the kubelet's labels
/// (its pod's name, namespace and UID, its own name) where it lacks them.
pub fn prepare_container(
    pod: Option<&PodSandboxConfig>,
    config: &mut ContainerConfig,
) -> Result<()> {
    if let Some(image) = config.image.as_mut()
        && image.user_specified_image.is_empty()
    {
        image.user_specified_image = image.image.clone();
    }
    let pod_meta = pod.and_then(|p| p.metadata.clone()).unwrap_or_default();
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    insert_absent(
        &mut config.labels,
        [
            (POD_NAME_LABEL, pod_meta.name),
            (POD_NAMESPACE_LABEL, pod_meta.namespace),
            (POD_UID_LABEL, pod_meta.uid),
            (CONTAINER_NAME_LABEL, name),
        ],
    );
    let Some(pod) = pod else {
        return Ok(());
    };
    match log_file_path(&pod.log_directory, &config.log_path)?
        .as_deref()
        .and_then(Path::parent)
    {
        Some(dir) => create_log_dir(dir),
        None => Ok(()),
    }
}

/// Where a container's log file goes: `log_path` under the pod's `log_directory`, or `None`
/// when either is empty (no log file). A `log_path` that is absolute, climbs out of the
/// directory (`..`) or holds a NUL byte is InvalidArgument: a runtime that joined it as it
/// is would write wherever a client asked.
///
/// ```
/// use anycri_core::kubelet::log_file_path;
/// let path = log_file_path("/var/log/pods/shop_web_u-1", "app/0.log").unwrap();
/// assert_eq!(path.unwrap().to_str(), Some("/var/log/pods/shop_web_u-1/app/0.log"));
/// assert_eq!(log_file_path("", "app/0.log").unwrap(), None); // no log directory: no file
/// assert!(log_file_path("/var/log/pods/p", "../../etc/passwd").is_err());
/// ```
pub fn log_file_path(log_directory: &str, log_path: &str) -> Result<Option<std::path::PathBuf>> {
    if log_directory.is_empty() || log_path.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        Err(crate::Error::invalid_argument(format!(
            "log_path {log_path:?} {why}; it must be a relative path inside the pod's log directory"
        )))
    };
    if log_path.contains('\0') || log_directory.contains('\0') {
        return bad("holds a NUL byte");
    }
    let relative = Path::new(log_path);
    if relative.is_absolute() {
        return bad("is absolute");
    }
    if relative.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return bad("leaves the log directory");
    }
    Ok(Some(Path::new(log_directory).join(relative)))
}

/// A duration as a CRI seconds field (ExecSync's `timeout`, StopContainer's grace period):
/// whole seconds rounded up, so a sub-second duration never becomes 0, which the CRI reads
/// as "no timeout" (or "kill at once").
///
/// ```
/// use std::time::Duration;
/// use anycri_core::kubelet::cri_seconds;
/// assert_eq!(cri_seconds(Duration::from_millis(500)), 1);
/// assert_eq!(cri_seconds(Duration::from_secs(30)), 30);
/// assert_eq!(cri_seconds(Duration::ZERO), 0);
/// ```
pub fn cri_seconds(d: std::time::Duration) -> i64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// A streaming URL (Exec/Attach/PortForward's answer) as the kubelet reads it: a
/// scheme-less `//host:port/path`, which cri-dockerd returns, means `http://host:port/path`;
/// anything else is kept as it is.
///
/// ```
/// use anycri_core::kubelet::streaming_url;
/// assert_eq!(streaming_url("//127.0.0.1:35000/exec/abc"), "http://127.0.0.1:35000/exec/abc");
/// assert_eq!(streaming_url("http://10.0.0.1:10010/exec/abc"), "http://10.0.0.1:10010/exec/abc");
/// ```
pub fn streaming_url(url: &str) -> std::borrow::Cow<'_, str> {
    if url.starts_with("//") {
        format!("http:{url}").into()
    } else {
        url.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::{ContainerConfigBuilder, PodSandboxConfigBuilder};

    #[test]
    fn log_paths_stay_inside_the_log_directory() {
        let ok = log_file_path("/var/log/pods/p", "c/0.log")
            .unwrap()
            .unwrap();
        assert_eq!(ok, Path::new("/var/log/pods/p/c/0.log"));
        assert_eq!(log_file_path("", "c/0.log").unwrap(), None);
        assert_eq!(log_file_path("/d", "").unwrap(), None);
        for bad in ["../x.log", "c/../../x.log", "/etc/passwd", "c/\0.log"] {
            let err = log_file_path("/var/log/pods/p", bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn cri_seconds_round_up() {
        use std::time::Duration;
        assert_eq!(cri_seconds(Duration::ZERO), 0);
        assert_eq!(cri_seconds(Duration::from_millis(1)), 1);
        assert_eq!(cri_seconds(Duration::from_millis(500)), 1);
        assert_eq!(cri_seconds(Duration::from_secs(2)), 2);
        assert_eq!(cri_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(cri_seconds(Duration::MAX), i64::MAX);
    }

    #[test]
    fn directories_and_image() {
        let dir = tempfile::tempdir().unwrap();
        let pod_dir = dir.path().join("pods/ns_web_uid");
        let pod = PodSandboxConfigBuilder::new("web", "ns")
            .log_directory(pod_dir.to_string_lossy())
            .build();
        prepare_pod_sandbox(&pod).unwrap();
        assert!(pod_dir.is_dir());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pod_dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let mut c = ContainerConfigBuilder::new("app", "registry/x:1")
            .attempt(2)
            .build();
        prepare_container(Some(&pod), &mut c).unwrap();
        assert!(pod_dir.join("app").is_dir());
        assert_eq!(c.image.unwrap().user_specified_image, "registry/x:1");
    }

    #[test]
    fn leaves_what_is_set_or_absent() {
        let mut c = ContainerConfigBuilder::new("app", "sha256:abcd").build();
        c.image.as_mut().unwrap().user_specified_image = "x:1".into();
        // No pod, or a pod without a log directory: nothing to create.
        prepare_container(None, &mut c).unwrap();
        let pod = PodSandboxConfigBuilder::new("p", "ns").build();
        prepare_pod_sandbox(&pod).unwrap();
        prepare_container(Some(&pod), &mut c).unwrap();
        assert_eq!(c.image.unwrap().user_specified_image, "x:1");
    }

    #[test]
    fn scheme_less_streaming_urls_are_http() {
        assert_eq!(
            streaming_url("//127.0.0.1:10010/cri/exec/Xy"),
            "http://127.0.0.1:10010/cri/exec/Xy"
        );
        for kept in ["http://h:1/x", "https://h/x", "ws://h:1/x", ""] {
            assert_eq!(streaming_url(kept), kept);
        }
    }

    #[test]
    fn an_unwritable_place_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let pod = PodSandboxConfigBuilder::new("p", "ns")
            .log_directory(file.path().join("sub").to_string_lossy())
            .build();
        let err = prepare_pod_sandbox(&pod).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
