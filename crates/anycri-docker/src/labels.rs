//! The whole naming and labelling scheme of the Docker shim, compatible with cri-dockerd
//! (and dockershim before it), so that sandboxes and containers either created are listed
//! and managed by the other.
//!
//! - A pod sandbox is a pause container named `k8s_POD_<pod>_<namespace>_<uid>_<attempt>`.
//! - A container is named `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
//!   (cri-dockerd may append `_<random>` after a name conflict; parsing accepts it.)
//! - Every Docker object carries `io.kubernetes.docker.type` = `podsandbox` or `container`;
//!   containers carry `io.kubernetes.sandbox.id` (the pause container's ID) and
//!   `io.kubernetes.container.logpath` (the CRI log file).
//! - CRI labels are Docker labels as they are; CRI annotations are Docker labels prefixed
//!   with `annotation.`.
//!
//! Metadata (names, namespace, UID, attempt) is read back from the container name, so a list
//! needs no inspect per container. Because `_` separates the fields, names, namespaces and
//! UIDs containing `_` are refused (Kubernetes never produces them).
//!
//! See `docs/docker-shim.md` for the page that explains this scheme to users.

use std::collections::HashMap;

use anycri_core::{
    Error, Result,
    api::{ContainerConfig, ContainerMetadata, PodSandboxConfig, PodSandboxMetadata},
};

/// First field of every name.
pub const KUBE_PREFIX: &str = "k8s";
/// The container-name field of a sandbox.
pub const SANDBOX_CONTAINER_NAME: &str = "POD";
/// Separates the fields of a name.
pub const DELIMITER: char = '_';

/// Label saying what a Docker container is to the shim.
pub const TYPE_LABEL: &str = "io.kubernetes.docker.type";
/// [`TYPE_LABEL`] value of a pause (sandbox) container.
pub const TYPE_SANDBOX: &str = "podsandbox";
/// [`TYPE_LABEL`] value of a workload container.
pub const TYPE_CONTAINER: &str = "container";
/// Label holding a container's sandbox ID.
pub const SANDBOX_ID_LABEL: &str = "io.kubernetes.sandbox.id";
/// Label holding a container's CRI log path.
pub const LOG_PATH_LABEL: &str = "io.kubernetes.container.logpath";
/// Prefix turning a CRI annotation into a Docker label.
pub const ANNOTATION_PREFIX: &str = "annotation.";

/// anycri's own label on sandboxes: the pod's log directory (cri-dockerd does not keep it).
pub const LOG_DIRECTORY_LABEL: &str = "io.anycri.pod.logdirectory";
/// anycri's own label on containers: the CRI `ContainerConfig.image` as the caller wrote it.
pub const IMAGE_LABEL: &str = "io.anycri.container.image";
/// anycri's own label on containers: the state directory of the shim that created it. The
/// node's owner for that directory writes the container's log; a shim with another state
/// directory on the same Docker leaves it alone, so two shims sharing one dockerd never both
/// copy a log.
pub const STATE_DIR_LABEL: &str = "io.anycri.docker.state-dir";

/// Whether the shim with state directory `state_dir` writes the log of a container with these
/// Docker labels: its own containers, and those made before the label existed.
pub fn writes_log_of(labels: &HashMap<String, String>, state_dir: &str) -> bool {
    labels
        .get(STATE_DIR_LABEL)
        .is_none_or(|dir| dir == state_dir)
}

fn check_field(value: &str, field: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{field} must not be empty"
        )));
    }
    if value.contains(DELIMITER) || value.contains('/') || value.chars().any(char::is_whitespace) {
        return Err(Error::invalid_argument(format!(
            "{field} {value:?} must not contain '_', '/' or whitespace (it is part of a Docker container name)"
        )));
    }
    Ok(())
}

/// Check a sandbox's metadata can be put in a name.
pub fn validate_sandbox_metadata(meta: &PodSandboxMetadata) -> Result<()> {
    check_field(&meta.name, "config.metadata.name")?;
    check_field(&meta.namespace, "config.metadata.namespace")?;
    check_field(&meta.uid, "config.metadata.uid")
}

/// `k8s_POD_<pod>_<namespace>_<uid>_<attempt>`.
pub fn sandbox_name(meta: &PodSandboxMetadata) -> Result<String> {
    validate_sandbox_metadata(meta)?;
    Ok(format!(
        "{KUBE_PREFIX}_{SANDBOX_CONTAINER_NAME}_{}_{}_{}_{}",
        meta.name, meta.namespace, meta.uid, meta.attempt
    ))
}

/// `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
pub fn container_name(container: &ContainerMetadata, pod: &PodSandboxMetadata) -> Result<String> {
    validate_sandbox_metadata(pod)?;
    check_field(&container.name, "config.metadata.name")?;
    Ok(format!(
        "{KUBE_PREFIX}_{}_{}_{}_{}_{}",
        container.name, pod.name, pod.namespace, pod.uid, container.attempt
    ))
}

fn fields(name: &str) -> Option<Vec<&str>> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let parts: Vec<&str> = name.split(DELIMITER).collect();
    // Six fields, or seven with cri-dockerd's random suffix.
    if (parts.len() == 6 || parts.len() == 7) && parts[0] == KUBE_PREFIX {
        Some(parts)
    } else {
        None
    }
}

/// The sandbox metadata in a sandbox's Docker name (a leading `/` is fine).
pub fn parse_sandbox_name(name: &str) -> Result<PodSandboxMetadata> {
    let bad = || {
        Error::invalid_argument(format!(
            "{name:?} is not a sandbox name (k8s_POD_<pod>_<ns>_<uid>_<attempt>)"
        ))
    };
    let parts = fields(name).ok_or_else(bad)?;
    if parts[1] != SANDBOX_CONTAINER_NAME {
        return Err(bad());
    }
    Ok(PodSandboxMetadata {
        name: parts[2].to_owned(),
        namespace: parts[3].to_owned(),
        uid: parts[4].to_owned(),
        attempt: parts[5].parse().map_err(|_| bad())?,
    })
}

/// The container and pod metadata in a container's Docker name.
pub fn parse_container_name(name: &str) -> Result<(ContainerMetadata, PodSandboxMetadata)> {
    let bad = || {
        Error::invalid_argument(format!(
            "{name:?} is not a container name (k8s_<ctr>_<pod>_<ns>_<uid>_<attempt>)"
        ))
    };
    let parts = fields(name).ok_or_else(bad)?;
    if parts[1] == SANDBOX_CONTAINER_NAME {
        return Err(bad());
    }
    let attempt = parts[5].parse().map_err(|_| bad())?;
    Ok((
        ContainerMetadata {
            name: parts[1].to_owned(),
            attempt,
        },
        // The pod's own attempt is not in a container's name.
        PodSandboxMetadata {
            name: parts[2].to_owned(),
            namespace: parts[3].to_owned(),
            uid: parts[4].to_owned(),
            attempt: 0,
        },
    ))
}

fn merge(
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = labels.clone();
    for (k, v) in annotations {
        out.insert(format!("{ANNOTATION_PREFIX}{k}"), v.clone());
    }
    out
}

/// Docker labels of a pause container.
pub fn sandbox_labels(config: &PodSandboxConfig) -> HashMap<String, String> {
    let mut out = merge(&config.labels, &config.annotations);
    out.insert(TYPE_LABEL.into(), TYPE_SANDBOX.into());
    if !config.log_directory.is_empty() {
        out.insert(LOG_DIRECTORY_LABEL.into(), config.log_directory.clone());
    }
    out
}

/// Docker labels of a container in sandbox `sandbox_id` whose CRI log is at `log_path`.
pub fn container_labels(
    config: &ContainerConfig,
    sandbox_id: &str,
    log_path: &str,
) -> HashMap<String, String> {
    let mut out = merge(&config.labels, &config.annotations);
    out.insert(TYPE_LABEL.into(), TYPE_CONTAINER.into());
    out.insert(SANDBOX_ID_LABEL.into(), sandbox_id.into());
    if !log_path.is_empty() {
        out.insert(LOG_PATH_LABEL.into(), log_path.into());
    }
    if let Some(image) = &config.image {
        out.insert(IMAGE_LABEL.into(), image.image.clone());
    }
    out
}

fn internal(key: &str) -> bool {
    matches!(
        key,
        TYPE_LABEL
            | SANDBOX_ID_LABEL
            | LOG_PATH_LABEL
            | LOG_DIRECTORY_LABEL
            | IMAGE_LABEL
            | STATE_DIR_LABEL
    )
}

/// Split Docker labels back into the CRI's labels and annotations, dropping the shim's own.
pub fn split_labels(
    docker: &HashMap<String, String>,
) -> (HashMap<String, String>, HashMap<String, String>) {
    let mut labels = HashMap::new();
    let mut annotations = HashMap::new();
    for (k, v) in docker {
        if let Some(a) = k.strip_prefix(ANNOTATION_PREFIX) {
            annotations.insert(a.to_owned(), v.clone());
        } else if !internal(k) {
            labels.insert(k.clone(), v.clone());
        }
    }
    (labels, annotations)
}

/// Docker `label` filters for "every sandbox" / "every container" of the shim.
pub fn type_filter(kind: &str) -> String {
    format!("{TYPE_LABEL}={kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shim_writes_logs_of_its_own_containers_and_unlabelled_ones() {
        let mine = HashMap::from([(STATE_DIR_LABEL.to_owned(), "/var/lib/a".to_owned())]);
        assert!(writes_log_of(&mine, "/var/lib/a"));
        assert!(!writes_log_of(&mine, "/var/lib/b"));
        assert!(writes_log_of(&HashMap::new(), "/var/lib/b"));
        // The label is the shim's own: not a CRI label.
        let (labels, annotations) = split_labels(&mine);
        assert!(labels.is_empty() && annotations.is_empty());
    }

    fn pod() -> PodSandboxMetadata {
        PodSandboxMetadata {
            name: "web".into(),
            namespace: "default".into(),
            uid: "1234-abcd".into(),
            attempt: 2,
        }
    }

    #[test]
    fn names_round_trip() {
        let name = sandbox_name(&pod()).unwrap();
        assert_eq!(name, "k8s_POD_web_default_1234-abcd_2");
        assert_eq!(parse_sandbox_name(&format!("/{name}")).unwrap(), pod());
        let c = ContainerMetadata {
            name: "nginx".into(),
            attempt: 3,
        };
        let name = container_name(&c, &pod()).unwrap();
        assert_eq!(name, "k8s_nginx_web_default_1234-abcd_3");
        let (cm, pm) = parse_container_name(&name).unwrap();
        assert_eq!(cm, c);
        assert_eq!(
            (pm.name.as_str(), pm.namespace.as_str(), pm.uid.as_str()),
            ("web", "default", "1234-abcd")
        );
    }

    #[test]
    fn cri_dockerd_random_suffix_is_accepted() {
        let m = parse_sandbox_name("k8s_POD_web_default_1234-abcd_0_5f3a2b1c").unwrap();
        assert_eq!(m.attempt, 0);
        assert!(parse_container_name("k8s_app_web_default_uid_1_deadbeef").is_ok());
    }

    #[test]
    fn bad_names_and_fields() {
        for bad in [
            "",
            "nginx",
            "k8s_POD_a_b_c",
            "k8s_POD_a_b_c_x",
            "x8s_POD_a_b_c_0",
            "k8s_POD_a_b_c_0_1_2",
        ] {
            assert!(parse_sandbox_name(bad).is_err(), "{bad}");
        }
        assert!(parse_container_name("k8s_POD_a_b_c_0").is_err());
        let mut m = pod();
        m.name = "has_underscore".into();
        assert_eq!(
            sandbox_name(&m).unwrap_err().kind(),
            anycri_core::ErrorKind::InvalidArgument
        );
        m.name = String::new();
        assert!(
            sandbox_name(&m)
                .unwrap_err()
                .message()
                .contains("config.metadata.name")
        );
    }

    #[test]
    fn labels_and_annotations_round_trip() {
        let config = PodSandboxConfig {
            labels: HashMap::from([("app".into(), "web".into())]),
            annotations: HashMap::from([("note".into(), "x".into())]),
            log_directory: "/var/log/pods/x".into(),
            ..Default::default()
        };
        let docker = sandbox_labels(&config);
        assert_eq!(docker[TYPE_LABEL], TYPE_SANDBOX);
        assert_eq!(docker["annotation.note"], "x");
        let (labels, annotations) = split_labels(&docker);
        assert_eq!(labels, config.labels);
        assert_eq!(annotations, config.annotations);
    }
}
