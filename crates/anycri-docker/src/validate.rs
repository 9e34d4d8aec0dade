//! Checks of a request's input before any of it reaches Docker, each failing with
//! InvalidArgument naming the field: IDs that no object can have (a NUL byte, `/`, `?`, ...:
//! they would otherwise go into Docker's URL paths), NUL bytes in names, commands,
//! environment, paths and labels (Docker would store them, and fail only at start or never),
//! labels and annotations too large to keep in Docker's labels (every list call returns
//! them), log directories that are not absolute paths, and resources no kernel takes.
//! `DockerRuntime`'s trait methods run them first; the rest of the checking (a missing
//! config, metadata that cannot be part of a Docker name, ...) is where the request is used.

use std::collections::HashMap;

use anycri_core::{Error, Result, api::*};

/// The most one label's key and value may hold together (containerd's limit too).
pub(crate) const MAX_LABEL_BYTES: usize = 4096;
/// The most an object's labels, and separately its annotations, may hold together: the
/// Kubernetes API server's limit of a pod's annotations, so every real pod fits.
pub(crate) const MAX_METADATA_BYTES: usize = 256 * 1024;
/// How much of a label selector is handed to Docker in its list filter (Docker takes filters
/// in the URL, which has a length limit); the rest is matched in the shim.
pub(crate) const MAX_DOCKER_SELECTOR_BYTES: usize = 8 * 1024;

fn invalid(message: String) -> Error {
    Error::invalid_argument(message)
}

/// A short, printable form of a value that may be huge or hold anything.
fn shown(value: &str) -> String {
    const MAX: usize = 80;
    if value.len() <= MAX {
        return format!("{value:?}");
    }
    let mut cut = MAX;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}... ({} bytes)", &value[..cut], value.len())
}

/// An ID or ID prefix: Docker's IDs are hex, its names `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn id(value: &str, field: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(invalid(format!(
            "{field} {} is not an ID (letters, digits, '_', '.' and '-' only)",
            shown(value)
        )));
    }
    Ok(())
}

/// No NUL byte: no path, argument, environment entry or host name can hold one.
pub(crate) fn no_nul(value: &str, field: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(invalid(format!(
            "{field} {} holds a NUL byte",
            shown(value)
        )));
    }
    Ok(())
}

fn all_no_nul<'a>(values: impl IntoIterator<Item = &'a String>, field: &str) -> Result<()> {
    values.into_iter().try_for_each(|v| no_nul(v, field))
}

/// Labels: no NUL byte, each at most [`MAX_LABEL_BYTES`], all at most [`MAX_METADATA_BYTES`].
pub(crate) fn labels(labels: &HashMap<String, String>, field: &str) -> Result<()> {
    let mut total = 0;
    for (k, v) in labels {
        no_nul(k, &format!("{field} key"))?;
        no_nul(v, &format!("{field}[{}]", shown(k)))?;
        if k.len() + v.len() > MAX_LABEL_BYTES {
            return Err(invalid(format!(
                "{field}[{}]: a label's key and value may hold {MAX_LABEL_BYTES} bytes, not {}",
                shown(k),
                k.len() + v.len()
            )));
        }
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "{field}: {} labels of {total} bytes; at most {MAX_METADATA_BYTES} bytes in all",
            labels.len()
        )));
    }
    Ok(())
}

/// Annotations: no NUL byte in a key, all at most [`MAX_METADATA_BYTES`].
pub(crate) fn annotations(annotations: &HashMap<String, String>, field: &str) -> Result<()> {
    let mut total = 0;
    for (k, v) in annotations {
        no_nul(k, &format!("{field} key"))?;
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "{field}: {} annotations of {total} bytes; at most {MAX_METADATA_BYTES} bytes in all \
             (as the Kubernetes API server allows)",
            annotations.len()
        )));
    }
    Ok(())
}

/// A pod's log directory: empty (no logs), or an absolute path.
pub(crate) fn log_directory(dir: &str, field: &str) -> Result<()> {
    no_nul(dir, field)?;
    if !dir.is_empty() && !dir.starts_with('/') {
        return Err(invalid(format!(
            "{field} {} must be an absolute path",
            shown(dir)
        )));
    }
    Ok(())
}

/// A cpuset list: `0-3,8,10-11`.
fn cpuset(value: &str, field: &str) -> Result<()> {
    let number = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = value.is_empty()
        || value.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => {
                number(a) && number(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok()
            }
            None => number(part),
        });
    if !ok {
        return Err(invalid(format!(
            "{field} {} is not a CPU or memory node list (like 0-3,8)",
            shown(value)
        )));
    }
    Ok(())
}

/// Linux resources: no negative size, share or period (0 is "not set"; -1 is "unlimited" for
/// a quota and swap), an OOM score adjustment in [-1000, 1000], well-formed cpusets.
pub(crate) fn resources(r: &LinuxContainerResources, field: &str) -> Result<()> {
    let check = |ok: bool, name: &str, value: i64| {
        if ok {
            Ok(())
        } else {
            Err(invalid(format!("{field}.{name} {value} is out of range")))
        }
    };
    check(r.cpu_period >= 0, "cpu_period", r.cpu_period)?;
    check(r.cpu_quota >= -1, "cpu_quota", r.cpu_quota)?;
    check(r.cpu_shares >= 0, "cpu_shares", r.cpu_shares)?;
    check(
        r.memory_limit_in_bytes >= 0,
        "memory_limit_in_bytes",
        r.memory_limit_in_bytes,
    )?;
    check(
        r.memory_swap_limit_in_bytes >= -1,
        "memory_swap_limit_in_bytes",
        r.memory_swap_limit_in_bytes,
    )?;
    check(
        (-1000..=1000).contains(&r.oom_score_adj),
        "oom_score_adj",
        r.oom_score_adj,
    )?;
    cpuset(&r.cpuset_cpus, &format!("{field}.cpuset_cpus"))?;
    cpuset(&r.cpuset_mems, &format!("{field}.cpuset_mems"))
}

/// RunPodSandbox's config (a missing config or metadata is refused where it is used).
pub(crate) fn run_pod_sandbox(r: &RunPodSandboxRequest) -> Result<()> {
    no_nul(&r.runtime_handler, "runtime_handler")?;
    let Some(config) = &r.config else {
        return Ok(());
    };
    no_nul(&config.hostname, "config.hostname")?;
    log_directory(&config.log_directory, "config.log_directory")?;
    labels(&config.labels, "config.labels")?;
    annotations(&config.annotations, "config.annotations")?;
    if let Some(dns) = &config.dns_config {
        all_no_nul(&dns.servers, "config.dns_config.servers")?;
        all_no_nul(&dns.searches, "config.dns_config.searches")?;
        all_no_nul(&dns.options, "config.dns_config.options")?;
    }
    if let Some(linux) = &config.linux {
        no_nul(&linux.cgroup_parent, "config.linux.cgroup_parent")?;
        for (k, v) in &linux.sysctls {
            no_nul(k, "config.linux.sysctls key")?;
            no_nul(v, "config.linux.sysctls value")?;
        }
    }
    Ok(())
}

/// CreateContainer's IDs, config and the sandbox config's log directory.
pub(crate) fn create_container(r: &CreateContainerRequest) -> Result<()> {
    id(&r.pod_sandbox_id, "pod_sandbox_id")?;
    if let Some(sandbox) = &r.sandbox_config {
        log_directory(&sandbox.log_directory, "sandbox_config.log_directory")?;
    }
    let Some(c) = &r.config else {
        return Ok(());
    };
    if let Some(image) = &c.image {
        no_nul(&image.image, "config.image.image")?;
    }
    all_no_nul(&c.command, "config.command")?;
    all_no_nul(&c.args, "config.args")?;
    for kv in &c.envs {
        no_nul(&kv.key, "config.envs key")?;
        no_nul(&kv.value, &format!("config.envs[{}]", shown(&kv.key)))?;
        if kv.key.is_empty() || kv.key.contains('=') {
            return Err(invalid(format!(
                "config.envs: the name {} must be set and hold no '='",
                shown(&kv.key)
            )));
        }
    }
    no_nul(&c.working_dir, "config.working_dir")?;
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(invalid(format!(
            "config.working_dir {} must be an absolute path",
            shown(&c.working_dir)
        )));
    }
    no_nul(&c.log_path, "config.log_path")?;
    labels(&c.labels, "config.labels")?;
    annotations(&c.annotations, "config.annotations")?;
    for m in &c.mounts {
        no_nul(&m.host_path, "config.mounts.host_path")?;
        no_nul(&m.container_path, "config.mounts.container_path")?;
    }
    for d in &c.devices {
        no_nul(&d.host_path, "config.devices.host_path")?;
        no_nul(&d.container_path, "config.devices.container_path")?;
    }
    if let Some(resources) = c.linux.as_ref().and_then(|l| l.resources.as_ref()) {
        self::resources(resources, "config.linux.resources")?;
    }
    Ok(())
}

/// A command to run (ExecSync, Exec): no NUL byte.
pub(crate) fn command(cmd: &[String]) -> Result<()> {
    all_no_nul(cmd, "cmd")
}

/// UpdateRuntimeConfig's pod CIDRs: empty, or comma-separated `address/prefix`.
pub(crate) fn pod_cidrs(cidrs: &str) -> Result<()> {
    if cidrs.is_empty() {
        return Ok(());
    }
    for cidr in cidrs.split(',') {
        let ok = cidr.split_once('/').is_some_and(|(addr, prefix)| {
            match (addr.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
                (Ok(std::net::IpAddr::V4(_)), Ok(p)) => p <= 32 && !prefix.starts_with('+'),
                (Ok(std::net::IpAddr::V6(_)), Ok(p)) => p <= 128 && !prefix.starts_with('+'),
                _ => false,
            }
        });
        if !ok {
            return Err(invalid(format!(
                "runtime_config.network_config.pod_cidr: {} is not a CIDR (like 10.244.0.0/16)",
                shown(cidr)
            )));
        }
    }
    Ok(())
}

/// A label selector split for a Docker list call: the part Docker filters (at most
/// [`MAX_DOCKER_SELECTOR_BYTES`], smallest entries first, as Docker takes its filters in the
/// URL), and the rest, which the listed objects' CRI labels must match.
pub(crate) fn split_selector(
    selector: HashMap<String, String>,
) -> (HashMap<String, String>, Vec<(String, String)>) {
    let size = |(k, v): &(String, String)| k.len() + v.len() + 1;
    if selector
        .iter()
        .map(|(k, v)| k.len() + v.len() + 1)
        .sum::<usize>()
        <= MAX_DOCKER_SELECTOR_BYTES
    {
        return (selector, Vec::new());
    }
    let mut entries: Vec<(String, String)> = selector.into_iter().collect();
    entries.sort_by(|a, b| size(a).cmp(&size(b)).then_with(|| a.cmp(b)));
    let mut budget = MAX_DOCKER_SELECTOR_BYTES;
    let mut docker = HashMap::new();
    let mut rest = Vec::new();
    for entry in entries {
        if size(&entry) <= budget {
            budget -= size(&entry);
            docker.insert(entry.0, entry.1);
        } else {
            rest.push(entry);
        }
    }
    (docker, rest)
}

/// Whether `labels` hold every `key=value` of `rest` (see [`split_selector`]).
pub(crate) fn selected(labels: &HashMap<String, String>, rest: &[(String, String)]) -> bool {
    rest.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anycri_core::ErrorKind;

    fn invalid(r: Result<()>) -> bool {
        r.is_err_and(|e| e.kind() == ErrorKind::InvalidArgument)
    }

    #[test]
    fn ids() {
        assert!(id(&"ab12".repeat(16), "x").is_ok());
        assert!(id("k8s_POD_web_default_uid_0", "x").is_ok());
        for bad in ["", "ab\0", "../../info", "a?b=1", "a b", "a/b", "ä"] {
            assert!(invalid(id(bad, "container_id")), "{bad:?}");
        }
        assert!(
            id("", "container_id")
                .unwrap_err()
                .message()
                .contains("container_id")
        );
    }

    #[test]
    fn labels_and_annotations() {
        let one = |k: &str, v: &str| HashMap::from([(k.to_owned(), v.to_owned())]);
        assert!(labels(&one("app", "web"), "l").is_ok());
        assert!(invalid(labels(&one("a\0", "b"), "l")));
        assert!(invalid(labels(&one("a", "b\0"), "l")));
        assert!(invalid(labels(
            &one("a", &"v".repeat(MAX_LABEL_BYTES)),
            "l"
        )));
        assert!(labels(&one("a", &"v".repeat(MAX_LABEL_BYTES - 1)), "l").is_ok());
        let many: HashMap<String, String> = (0..10_000)
            .map(|i| (format!("key-{i:05}"), format!("{i:032}")))
            .collect();
        assert!(invalid(labels(&many, "l")));
        // An annotation may be large (kubectl's last-applied-configuration), and hold NUL in
        // its value, not in its key; all of them together at most 256 KiB.
        assert!(annotations(&one("a", &"v".repeat(200 * 1024)), "a").is_ok());
        assert!(annotations(&one("a", "v\0"), "a").is_ok());
        assert!(invalid(annotations(&one("a\0", "v"), "a")));
        assert!(invalid(annotations(
            &one("a", &"v".repeat(MAX_METADATA_BYTES)),
            "a"
        )));
        // A huge value is not echoed whole.
        let e = labels(&one("a", &"v".repeat(1 << 20)), "l").unwrap_err();
        assert!(e.message().len() < 300, "{}", e.message());
    }

    #[test]
    fn paths_and_resources() {
        assert!(log_directory("", "d").is_ok());
        assert!(log_directory("/var/log/pods/x", "d").is_ok());
        assert!(invalid(log_directory("logs/pod", "d")));
        assert!(invalid(log_directory("/var/log\0", "d")));
        let ok = LinuxContainerResources {
            cpu_quota: -1,
            memory_swap_limit_in_bytes: -1,
            cpuset_cpus: "0-3,8".into(),
            cpuset_mems: "0".into(),
            oom_score_adj: -998,
            ..Default::default()
        };
        assert!(resources(&ok, "r").is_ok());
        assert!(resources(&LinuxContainerResources::default(), "r").is_ok());
        for bad in [
            LinuxContainerResources {
                memory_limit_in_bytes: -1,
                ..Default::default()
            },
            LinuxContainerResources {
                cpu_shares: -1,
                ..Default::default()
            },
            LinuxContainerResources {
                cpu_quota: -2,
                ..Default::default()
            },
            LinuxContainerResources {
                oom_score_adj: 1001,
                ..Default::default()
            },
            LinuxContainerResources {
                cpuset_cpus: "nonsense".into(),
                ..Default::default()
            },
            LinuxContainerResources {
                cpuset_cpus: "3-1".into(),
                ..Default::default()
            },
            LinuxContainerResources {
                cpuset_mems: "0,".into(),
                ..Default::default()
            },
        ] {
            assert!(invalid(resources(&bad, "r")), "{bad:?}");
        }
    }

    #[test]
    fn cidrs() {
        assert!(pod_cidrs("").is_ok());
        assert!(pod_cidrs("10.244.0.0/16").is_ok());
        assert!(pod_cidrs("10.244.0.0/16,fd00::/64").is_ok());
        for bad in [
            "not-a-cidr",
            "10.0.0.0",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/+8",
        ] {
            assert!(invalid(pod_cidrs(bad)), "{bad}");
        }
    }

    #[test]
    fn large_selectors_are_split() {
        let small = HashMap::from([("app".to_owned(), "web".to_owned())]);
        assert_eq!(split_selector(small.clone()), (small, Vec::new()));
        let many: HashMap<String, String> = (0..10_000)
            .map(|i| (format!("key-{i:05}"), "v".to_owned()))
            .collect();
        let (docker, rest) = split_selector(many.clone());
        let docker_bytes: usize = docker.iter().map(|(k, v)| k.len() + v.len() + 1).sum();
        assert!(docker_bytes <= MAX_DOCKER_SELECTOR_BYTES);
        assert_eq!(docker.len() + rest.len(), many.len());
        assert!(selected(&many, &rest));
        assert!(!selected(&HashMap::new(), &rest));
    }
}
