//! crictl's config files for `runp`, `create` and `run`: a CRI `PodSandboxConfig` or
//! `ContainerConfig` in JSON or YAML, with the proto's snake_case field names
//! (`"metadata": {"name": …}`, `"log_directory"`) and enums as numbers, as crictl reads them.
//! Unknown fields are ignored, as Go's JSON decoder ignores them. The checks are crictl's: a
//! pod needs a name and a namespace in its metadata (a missing UID is generated), a container
//! a name and an image.

use std::path::Path;

use anycri::{Error, ErrorKind, Result, api::*};
use serde::de::DeserializeOwned;

/// Read and decode `path`: JSON when it ends in `.json`, YAML otherwise (YAML also reads JSON).
fn load<T: DeserializeOwned>(what: &str, path: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::InvalidArgument,
        };
        Error::with_source(kind, format!("{what} {path}: cannot read it"), e)
    })?;
    let json = Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let decoded = if json {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
    };
    decoded.map_err(|e| Error::invalid_argument(format!("{what} {path}: {e}")))
}

/// A pod sandbox config from `path`, checked as crictl checks it; an empty UID becomes a new one.
pub fn load_pod_config(path: &str) -> Result<PodSandboxConfig> {
    let mut config = read_pod_config(path)?;
    if let Some(meta) = config.metadata.as_mut()
        && meta.uid.is_empty()
    {
        meta.uid = anycri::builders::new_uid();
    }
    Ok(config)
}

/// A pod sandbox config from `path`, checked as crictl checks it, its UID as the file has it
/// (possibly empty).
pub fn read_pod_config(path: &str) -> Result<PodSandboxConfig> {
    let config: PodSandboxConfig = load("pod config", path)?;
    let Some(meta) = config.metadata.as_ref() else {
        return Err(Error::invalid_argument(format!(
            "pod config {path}: metadata is not set"
        )));
    };
    if meta.name.is_empty() || meta.namespace.is_empty() {
        return Err(Error::invalid_argument(format!(
            "pod config {path}: metadata needs a name and a namespace"
        )));
    }
    if config
        .linux
        .as_ref()
        .is_some_and(|l| l.cgroup_parent.is_empty())
    {
        tracing::warn!(
            "pod config {path}: linux.cgroup_parent is not set; `anycri info` shows the \
             runtime's cgroup driver"
        );
    }
    Ok(config)
}

/// A container config from `path`, checked as crictl checks it.
pub fn load_container_config(path: &str) -> Result<ContainerConfig> {
    let config: ContainerConfig = load("container config", path)?;
    if config.metadata.as_ref().is_none_or(|m| m.name.is_empty()) {
        return Err(Error::invalid_argument(format!(
            "container config {path}: metadata.name is not set"
        )));
    }
    if config.image.as_ref().is_none_or(|i| i.image.is_empty()) {
        return Err(Error::invalid_argument(format!(
            "container config {path}: image.image is not set"
        )));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn crictl_shaped_json_and_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            &dir,
            "pod.json",
            r#"{"metadata": {"name": "web", "namespace": "default", "attempt": 1},
                "log_directory": "/tmp/web", "linux": {"cgroup_parent": "/x",
                "security_context": {"namespace_options": {"network": 2}}},
                "some_future_field": true}"#,
        );
        let pod = load_pod_config(&json).unwrap();
        let meta = pod.metadata.unwrap();
        assert_eq!((meta.name.as_str(), meta.attempt), ("web", 1));
        assert!(!meta.uid.is_empty(), "a UID is generated");
        assert_eq!(pod.log_directory, "/tmp/web");
        let ns = pod.linux.unwrap().security_context.unwrap();
        assert_eq!(ns.namespace_options.unwrap().network, 2);

        let yaml = write(
            &dir,
            "ctr.yaml",
            "metadata:\n  name: app\nimage:\n  image: busybox:1.36\ncommand: [sh, -c, 'sleep 1']\nlog_path: app.log\n",
        );
        let ctr = load_container_config(&yaml).unwrap();
        assert_eq!(ctr.image.unwrap().image, "busybox:1.36");
        assert_eq!(ctr.command, ["sh", "-c", "sleep 1"]);
        assert_eq!(ctr.log_path, "app.log");
        // JSON under another extension is read as YAML.
        let other = write(
            &dir,
            "ctr.conf",
            r#"{"metadata":{"name":"a"},"image":{"image":"x"}}"#,
        );
        assert_eq!(
            load_container_config(&other)
                .unwrap()
                .metadata
                .unwrap()
                .name,
            "a"
        );
    }

    #[test]
    fn what_crictl_refuses() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("{}", "metadata is not set"),
            (r#"{"metadata": {"name": "x"}}"#, "name and a namespace"),
            (r#"{"metadata": "#, "pod.json"),
        ] {
            let path = write(&dir, "pod.json", text);
            let err = load_pod_config(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            assert!(err.to_string().contains(needle), "{err}");
        }
        for (text, needle) in [
            ("image: {image: x}", "metadata.name"),
            ("metadata: {name: a}", "image.image"),
            ("metadata: {name: a}\nimage: {image: ''}", "image.image"),
        ] {
            let path = write(&dir, "c.yaml", text);
            let err = load_container_config(&path).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        let missing = dir.path().join("nope.json");
        let err = load_pod_config(&missing.to_string_lossy()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
