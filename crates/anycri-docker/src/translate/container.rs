//! A CRI `ContainerConfig` as the body of Docker's container create: command, env, user,
//! labels, the sandbox's namespaces, mounts, devices, security context and resources. Pure:
//! what it needs besides the config (the sandbox, what the host and engine allow, the host's
//! files) comes in [`ContainerFacts`]; creating the container is `create_container_impl`'s.

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig};

use crate::{labels, sandbox::HostFacts};

/// What the host's file system tells the translation: a mount's host path with its
/// symlinks resolved, and a localhost seccomp profile's text. The shim reads the real files
/// ([`RealHostFiles`]); tests answer from a table.
pub(crate) trait HostFiles {
    /// `path` with its symlinks resolved, or `path` itself when it cannot be resolved.
    fn canonical(&self, path: &str) -> String;
    /// The text of the seccomp profile at `path`.
    fn seccomp_profile(&self, path: &str) -> std::io::Result<String>;
}

/// The host's own files.
pub(crate) struct RealHostFiles;

impl HostFiles for RealHostFiles {
    fn canonical(&self, path: &str) -> String {
        std::fs::canonicalize(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_owned())
    }

    fn seccomp_profile(&self, path: &str) -> std::io::Result<String> {
        read_seccomp_profile(path)
    }
}

/// What a container's translation needs besides its config.
pub(crate) struct ContainerFacts<'a> {
    /// The (full) ID of the pod's pause container, whose namespaces the container joins.
    pub sandbox_id: &'a str,
    /// The pause container's host config as Docker reports it (network and IPC modes,
    /// cgroup parent).
    pub sandbox_host: &'a HostConfig,
    /// The pod's log directory ("" for none): the CRI log file is `log_path` inside it.
    pub log_directory: &'a str,
    /// The value of [`labels::STATE_DIR_LABEL`] for this shim.
    pub state_dir_label: &'a str,
    /// What the host allows.
    pub host: &'a HostFacts,
    /// The engine has read-only recursion options for binds (API 1.44, Docker 25).
    pub recursive_read_only_mounts: bool,
    /// Docker's own `--privileged` and an added `ALL` give only the host's capabilities
    /// (API 1.42, Docker 23).
    pub privileged_fits_host: bool,
    /// The host's files.
    pub files: &'a dyn HostFiles,
}

/// The body of Docker's container create for `config` (whose image is set: the caller
/// checked it). InvalidArgument for what Docker cannot be asked: a log path outside the
/// pod's directory, a bad mount, an unreadable or malformed seccomp profile, a group without
/// a user. A read-only `Mounts` entry's missing host directory is the caller's to create
/// (see [`mount_sources`]).
pub(crate) fn create_body(
    config: &ContainerConfig,
    facts: &ContainerFacts<'_>,
) -> Result<ContainerCreateBody> {
    let image = config
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    let log_path = anycri_core::kubelet::log_file_path(facts.log_directory, &config.log_path)?
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();

    let linux = config.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let res = linux.resources.clone().unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let sandbox_host = facts.sandbox_host;
    let join = format!("container:{}", facts.sandbox_id);
    let host_network = sandbox_host.network_mode.as_deref() == Some("host");
    let pid_mode = match NamespaceMode::try_from(ns.pid) {
        Ok(NamespaceMode::Node) => Some("host".to_owned()),
        Ok(NamespaceMode::Pod) => Some(join.clone()),
        Ok(NamespaceMode::Target) if !ns.target_id.is_empty() => {
            Some(format!("container:{}", ns.target_id))
        }
        _ => None,
    };

    let mut security_opt = Vec::new();
    // The deprecated string fields still come from older kubelets; the typed ones win.
    #[allow(deprecated)]
    let (legacy_seccomp, legacy_apparmor) =
        (sc.seccomp_profile_path.clone(), sc.apparmor_profile.clone());
    if sc.no_new_privs {
        security_opt.push("no-new-privileges".to_owned());
    }
    // A privileged container runs without seccomp whatever profile it names, as in
    // containerd and CRI-O (critest checks it); Docker would apply a named profile.
    if sc.privileged {
        security_opt.push("seccomp=unconfined".into());
    } else if let Some(s) = seccomp_opt_with(sc.seccomp.as_ref(), &legacy_seccomp, |f| {
        facts.files.seccomp_profile(f)
    })? {
        security_opt.push(s);
    }
    if let Some(a) = apparmor_opt(sc.apparmor.as_ref(), &legacy_apparmor, facts.host.apparmor) {
        security_opt.push(a);
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let (mut cap_add, mut cap_drop) = (
        caps.add_capabilities.clone(),
        caps.drop_capabilities.clone(),
    );
    let mut privileged = sc.privileged;
    if sc.privileged && !facts.host.full_bounding_set && !facts.privileged_fits_host {
        // Docker 20.10's --privileged asks for every capability, which fails where the
        // bounding set is smaller: ask for ALL instead (narrowed to the host's below, as
        // containerd gives what the host has), and lift the other confinements
        // --privileged lifts.
        privileged = false;
        cap_add = vec!["ALL".to_owned()];
        cap_drop = Vec::new();
        if facts.host.apparmor {
            security_opt.push("apparmor=unconfined".into());
        }
    }
    // Docker 20.10 expands an added "ALL" to every capability it knows, which runc cannot
    // grant where the bounding set is smaller (critest's "adding ALL capabilities"): drop
    // what the host lacks, as containerd grants "ALL" as the capabilities it holds.
    // Docker 23 and later expand it to the host's, and refuse to drop what it lacks.
    if !facts.host.full_bounding_set
        && !facts.privileged_fits_host
        && cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL"))
    {
        for missing in &facts.host.missing_docker_caps {
            if !cap_drop.iter().any(|d| d.eq_ignore_ascii_case(missing)) {
                cap_drop.push(missing.clone());
            }
        }
    }
    let oom_score_adj = match res.oom_score_adj {
        0 => None,
        // The caller warns (once per process) that the score was raised.
        n if n < 0 && !facts.host.negative_oom_score_adj => Some(0),
        n => Some(n),
    };
    let devices: Vec<DeviceMapping> = config
        .devices
        .iter()
        .map(|d| DeviceMapping {
            path_on_host: Some(d.host_path.clone()),
            path_in_container: Some(d.container_path.clone()),
            cgroup_permissions: Some(if d.permissions.is_empty() {
                "rwm".into()
            } else {
                d.permissions.clone()
            }),
        })
        .collect();
    let (mut binds, mut mounts) = (Vec::new(), Vec::new());
    for m in &config.mounts {
        match docker_mount(m, facts.recursive_read_only_mounts, facts.files)? {
            DockerMount::Bind(b) => binds.push(b),
            DockerMount::Mount(m) => mounts.push(*m),
        }
    }
    let unmasked = privileged || sc.privileged;
    let host = HostConfig {
        network_mode: Some(if host_network {
            "host".to_owned()
        } else {
            join.clone()
        }),
        ipc_mode: Some(if sandbox_host.ipc_mode.as_deref() == Some("host") {
            "host".to_owned()
        } else {
            join.clone()
        }),
        pid_mode,
        uts_mode: host_network.then(|| "host".to_owned()),
        cgroup_parent: sandbox_host.cgroup_parent.clone(),
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        devices: (!devices.is_empty()).then_some(devices),
        privileged: Some(privileged),
        readonly_rootfs: Some(sc.readonly_rootfs),
        cap_add: (!cap_add.is_empty()).then_some(cap_add),
        cap_drop: (!cap_drop.is_empty()).then_some(cap_drop),
        security_opt: (!security_opt.is_empty()).then_some(security_opt),
        group_add: (!sc.supplemental_groups.is_empty()).then(|| {
            sc.supplemental_groups
                .iter()
                .map(|g| g.to_string())
                .collect()
        }),
        masked_paths: (!unmasked && !sc.masked_paths.is_empty()).then(|| sc.masked_paths.clone()),
        readonly_paths: (!unmasked && !sc.readonly_paths.is_empty())
            .then(|| sc.readonly_paths.clone()),
        cpu_shares: (res.cpu_shares > 0).then_some(res.cpu_shares),
        cpu_quota: (res.cpu_quota > 0).then_some(res.cpu_quota),
        cpu_period: (res.cpu_period > 0).then_some(res.cpu_period),
        cpuset_cpus: (!res.cpuset_cpus.is_empty()).then(|| res.cpuset_cpus.clone()),
        cpuset_mems: (!res.cpuset_mems.is_empty()).then(|| res.cpuset_mems.clone()),
        memory: (res.memory_limit_in_bytes > 0).then_some(res.memory_limit_in_bytes),
        // As dockershim did: swap is unlimited unless asked, so later memory updates are
        // not refused for exceeding an implicit swap limit.
        memory_swap: Some(if res.memory_swap_limit_in_bytes > 0 {
            res.memory_swap_limit_in_bytes
        } else {
            -1
        }),
        oom_score_adj,
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(image),
        entrypoint: (!config.command.is_empty()).then(|| config.command.clone()),
        cmd: (!config.args.is_empty()).then(|| config.args.clone()),
        env: (!config.envs.is_empty()).then(|| {
            config
                .envs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect()
        }),
        working_dir: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
        tty: Some(config.tty),
        open_stdin: Some(config.stdin),
        stdin_once: Some(config.stdin_once),
        user: docker_user(&sc)?,
        labels: Some({
            let mut l = labels::container_labels(config, facts.sandbox_id, &log_path);
            l.insert(
                labels::STATE_DIR_LABEL.into(),
                facts.state_dir_label.to_owned(),
            );
            l
        }),
        host_config: Some(host),
        ..Default::default()
    })
}

/// The host paths of `body`'s `Mounts` entries: as for a bind (and in containerd), the
/// caller creates a missing one as a directory before the container.
pub(crate) fn mount_sources(body: &ContainerCreateBody) -> impl Iterator<Item = &str> {
    body.host_config
        .iter()
        .flat_map(|h| h.mounts.iter().flatten())
        .filter_map(|m| m.source.as_deref())
}

/// The AppArmor option for a profile (the typed field wins over the legacy string), when
/// the host has AppArmor.
fn apparmor_opt(profile: Option<&SecurityProfile>, legacy: &str, apparmor: bool) -> Option<String> {
    use security_profile::ProfileType;
    let wanted = match profile {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::Unconfined) => Some("unconfined".to_owned()),
            Ok(ProfileType::Localhost) => Some(p.localhost_ref.clone()),
            _ => None,
        },
        None => match legacy {
            "unconfined" => Some("unconfined".into()),
            l => l.strip_prefix("localhost/").map(str::to_owned),
        },
    }?;
    if !apparmor {
        tracing::debug!(
            profile = wanted,
            "AppArmor is not enabled on this host; profile ignored"
        );
        return None;
    }
    Some(format!("apparmor={wanted}"))
}

/// `uid[:gid]` or `name[:gid]` for Docker's `User`. A group without a user is refused, as
/// the kubelet's validation and containerd refuse it (critest checks it).
fn docker_user(sc: &LinuxContainerSecurityContext) -> Result<Option<String>> {
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(uid), _) => uid.value.to_string(),
        (None, name) if !name.is_empty() => name.to_owned(),
        _ if sc.run_as_group.is_some() => {
            return Err(Error::invalid_argument(
                "linux.security_context.run_as_group is set without run_as_user or \
                 run_as_username",
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some(match &sc.run_as_group {
        Some(g) => format!("{user}:{}", g.value),
        None => user,
    }))
}

fn propagation(p: i32) -> Option<&'static str> {
    match MountPropagation::try_from(p) {
        Ok(MountPropagation::PropagationHostToContainer) => Some("rslave"),
        Ok(MountPropagation::PropagationBidirectional) => Some("rshared"),
        _ => None,
    }
}

/// How one CRI mount reaches Docker: a `Binds` string, or (read-only mounts on engines with
/// API 1.44, Docker 25) a `Mounts` entry, the only form that says whether read-only is
/// recursive. From Docker 25 on a read-only bind is recursive unless told otherwise, while a
/// CRI mount is read-only recursively only when it asks (`recursive_read_only`).
#[derive(Debug, Clone, PartialEq)]
enum DockerMount {
    Bind(String),
    Mount(Box<bollard::models::Mount>),
}

/// Translate one CRI mount (its host path resolved by `files`); `recursive_ro` says whether the engine has API 1.44's
/// read-only recursion options (reported as the handler's `recursive_read_only_mounts`).
fn docker_mount(m: &Mount, recursive_ro: bool, files: &dyn HostFiles) -> Result<DockerMount> {
    use bollard::models::{MountBindOptions, MountBindOptionsPropagationEnum as P, MountType};
    let spec = bind(m, files)?;
    if m.recursive_read_only {
        // The kubelet's rules (and containerd's, CRI-O's): recursion needs read-only, private
        // propagation, and a runtime that said it can.
        if !m.readonly {
            return Err(Error::invalid_argument(format!(
                "config.mounts: {:?} asks for recursive_read_only without readonly",
                m.container_path
            )));
        }
        if !matches!(
            MountPropagation::try_from(m.propagation),
            Ok(MountPropagation::PropagationPrivate)
        ) {
            return Err(Error::invalid_argument(format!(
                "config.mounts: {:?} asks for recursive_read_only with a propagation other \
                 than private",
                m.container_path
            )));
        }
        if !recursive_ro {
            return Err(Error::invalid_argument(format!(
                "config.mounts: {:?} asks for recursive_read_only, which needs Docker 25 \
                 (API 1.44) or later",
                m.container_path
            )));
        }
    }
    if !m.readonly || !recursive_ro {
        return Ok(DockerMount::Bind(spec));
    }
    // The bind string's host path is the canonical one (symlinks resolved).
    let source = spec.split(':').next().unwrap_or_default().to_owned();
    let propagation = match MountPropagation::try_from(m.propagation) {
        Ok(MountPropagation::PropagationHostToContainer) => P::RSLAVE,
        Ok(MountPropagation::PropagationBidirectional) => P::RSHARED,
        _ => P::RPRIVATE,
    };
    // Docker's Mounts have no SELinux relabel option: `selinux_relabel` applies to binds only.
    Ok(DockerMount::Mount(Box::new(bollard::models::Mount {
        target: Some(m.container_path.clone()),
        source: Some(source),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        bind_options: Some(MountBindOptions {
            propagation: Some(propagation),
            read_only_non_recursive: Some(!m.recursive_read_only),
            read_only_force_recursive: Some(m.recursive_read_only),
            ..Default::default()
        }),
        ..Default::default()
    })))
}

fn bind(m: &Mount, files: &dyn HostFiles) -> Result<String> {
    if m.container_path.is_empty() || !m.container_path.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "config.mounts: container_path {:?} must be absolute",
            m.container_path
        )));
    }
    if m.host_path.is_empty() || m.host_path.contains(':') || m.container_path.contains(':') {
        return Err(Error::invalid_argument(format!(
            "config.mounts: host_path {:?} must be set and contain no ':'",
            m.host_path
        )));
    }
    // A host path that is a symlink is mounted as its target (what the kubelet expects).
    let host = files.canonical(&m.host_path);
    let mut opts = vec![if m.readonly { "ro" } else { "rw" }];
    if let Some(p) = propagation(m.propagation) {
        opts.push(p);
    }
    if m.selinux_relabel {
        opts.push("Z");
    }
    Ok(format!("{host}:{}:{}", m.container_path, opts.join(",")))
}

/// The largest seccomp profile the shim reads (Docker's default profile is ~20 KiB).
const MAX_SECCOMP_PROFILE: u64 = 1024 * 1024;

/// Read a localhost seccomp profile: a regular file (a device such as `/dev/zero` would be
/// read forever) of at most [`MAX_SECCOMP_PROFILE`] bytes.
fn read_seccomp_profile(file: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let f = std::fs::File::open(file)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    f.take(MAX_SECCOMP_PROFILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECCOMP_PROFILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_SECCOMP_PROFILE} bytes"
        )));
    }
    Ok(text)
}

/// A seccomp profile's text as Docker's `seccomp=` option takes it: JSON (an object), compacted
/// (as cri-dockerd does), so a malformed profile is InvalidArgument at CreateContainer rather
/// than a failure inside Docker.
fn seccomp_json(text: &str, file: &str) -> Result<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        Ok(_) => Err(Error::invalid_argument(format!(
            "seccomp profile {file:?} is not a JSON object"
        ))),
        Err(e) => Err(Error::with_source(
            ErrorKind::InvalidArgument,
            format!("seccomp profile {file:?} is not valid JSON"),
            e,
        )),
    }
}

/// Docker's seccomp option for a profile (the typed field wins over the legacy string), a
/// localhost profile's file read by `read` (the shim reads the host's file; the fuzz targets
/// give its contents).
pub fn seccomp_opt_with(
    profile: Option<&SecurityProfile>,
    legacy: &str,
    read: impl FnOnce(&str) -> std::io::Result<String>,
) -> Result<Option<String>> {
    use security_profile::ProfileType;
    if let Some(p) = profile {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::Unconfined) => Ok(Some("seccomp=unconfined".into())),
            Ok(ProfileType::Localhost) => {
                let text = read(&p.localhost_ref).map_err(|e| {
                    Error::with_source(
                        ErrorKind::InvalidArgument,
                        format!(
                            "seccomp localhost profile {:?} cannot be read",
                            p.localhost_ref
                        ),
                        e,
                    )
                })?;
                Ok(Some(format!(
                    "seccomp={}",
                    seccomp_json(&text, &p.localhost_ref)?
                )))
            }
            _ => Ok(None),
        };
    }
    match legacy {
        "runtime/default" | "docker/default" => Ok(None),
        // No profile at all is unconfined in the CRI (the kubelet asks for RuntimeDefault
        // explicitly; critest checks that a nil profile runs unconfined), not Docker's default.
        "" | "unconfined" => Ok(Some("seccomp=unconfined".into())),
        path => {
            let file = path.strip_prefix("localhost/").ok_or_else(|| {
                Error::invalid_argument(format!("seccomp_profile_path {path:?} is not unconfined, runtime/default or localhost/<path>"))
            })?;
            let text = read(file).map_err(|e| {
                Error::with_source(
                    ErrorKind::InvalidArgument,
                    format!("seccomp profile {file:?} cannot be read"),
                    e,
                )
            })?;
            Ok(Some(format!("seccomp={}", seccomp_json(&text, file)?)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The helpers under their shapes before the host's files became an argument: these
    // tests read the real files.
    fn bind(m: &Mount) -> Result<String> {
        super::bind(m, &RealHostFiles)
    }
    fn docker_mount(m: &Mount, recursive_ro: bool) -> Result<DockerMount> {
        super::docker_mount(m, recursive_ro, &RealHostFiles)
    }
    fn seccomp_opt(profile: Option<&SecurityProfile>, legacy: &str) -> Result<Option<String>> {
        seccomp_opt_with(profile, legacy, read_seccomp_profile)
    }

    #[test]
    fn users() {
        let user = |sc: &LinuxContainerSecurityContext| docker_user(sc).unwrap();
        let mut sc = LinuxContainerSecurityContext::default();
        assert_eq!(user(&sc), None);
        sc.run_as_user = Some(Int64Value { value: 1000 });
        assert_eq!(user(&sc).as_deref(), Some("1000"));
        sc.run_as_group = Some(Int64Value { value: 2000 });
        assert_eq!(user(&sc).as_deref(), Some("1000:2000"));
        sc.run_as_user = None;
        sc.run_as_username = "nobody".into();
        assert_eq!(user(&sc).as_deref(), Some("nobody:2000"));
        sc.run_as_username.clear();
        assert_eq!(
            docker_user(&sc).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn binds() {
        let m = Mount {
            container_path: "/data".into(),
            host_path: "/nonexistent-anycri".into(),
            readonly: true,
            propagation: MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        };
        assert_eq!(bind(&m).unwrap(), "/nonexistent-anycri:/data:ro,rslave");
        let bad = Mount {
            container_path: "relative".into(),
            host_path: "/x".into(),
            ..Default::default()
        };
        assert_eq!(bind(&bad).unwrap_err().kind(), ErrorKind::InvalidArgument);
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let m = Mount {
            container_path: "/d".into(),
            host_path: link.to_string_lossy().into(),
            ..Default::default()
        };
        assert_eq!(
            bind(&m).unwrap(),
            format!("{}:/d:rw", target.canonicalize().unwrap().display())
        );
    }

    #[test]
    fn read_only_mounts_on_each_engine() {
        let ro = Mount {
            container_path: "/data".into(),
            host_path: "/nonexistent-anycri".into(),
            readonly: true,
            ..Default::default()
        };
        // Before API 1.44 a read-only bind is not recursive: the bind string says it all.
        assert_eq!(
            docker_mount(&ro, false).unwrap(),
            DockerMount::Bind("/nonexistent-anycri:/data:ro".into())
        );
        let DockerMount::Mount(m) = docker_mount(&ro, true).unwrap() else {
            panic!("a read-only mount on API 1.44 must be a Mounts entry");
        };
        let opts = m.bind_options.unwrap();
        assert_eq!(
            (opts.read_only_non_recursive, opts.read_only_force_recursive),
            (Some(true), Some(false))
        );
        let rro = Mount {
            recursive_read_only: true,
            ..ro.clone()
        };
        let DockerMount::Mount(m) = docker_mount(&rro, true).unwrap() else {
            panic!("a recursive read-only mount must be a Mounts entry");
        };
        assert_eq!(
            m.bind_options.unwrap().read_only_force_recursive,
            Some(true)
        );
        for bad in [
            Mount {
                readonly: false,
                ..rro.clone()
            },
            Mount {
                propagation: MountPropagation::PropagationBidirectional as i32,
                ..rro.clone()
            },
            Mount {
                propagation: MountPropagation::PropagationHostToContainer as i32,
                ..rro.clone()
            },
        ] {
            assert_eq!(
                docker_mount(&bad, true).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
        assert_eq!(
            docker_mount(&rro, false).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let rw = Mount {
            readonly: false,
            ..ro
        };
        assert_eq!(
            docker_mount(&rw, true).unwrap(),
            DockerMount::Bind("/nonexistent-anycri:/data:rw".into())
        );
    }

    #[test]
    fn seccomp_profiles() {
        assert_eq!(
            seccomp_opt(None, "").unwrap().as_deref(),
            Some("seccomp=unconfined")
        );
        assert_eq!(seccomp_opt(None, "runtime/default").unwrap(), None);
        let default = SecurityProfile::default();
        assert_eq!(seccomp_opt(Some(&default), "").unwrap(), None);
        assert_eq!(
            seccomp_opt(None, "unconfined").unwrap().as_deref(),
            Some("seccomp=unconfined")
        );
        assert!(seccomp_opt(None, "weird").is_err());
        let p = SecurityProfile {
            profile_type: security_profile::ProfileType::Localhost as i32,
            localhost_ref: "/nonexistent".into(),
        };
        assert_eq!(
            seccomp_opt(Some(&p), "").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        // A device is not read (it would never end), nor is a profile that is not JSON.
        let dev = SecurityProfile {
            localhost_ref: "/dev/zero".into(),
            ..p.clone()
        };
        assert_eq!(
            seccomp_opt(Some(&dev), "").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"defaultAction\": ").unwrap();
        let bad = bad.to_string_lossy().into_owned();
        assert_eq!(
            seccomp_opt(None, &format!("localhost/{bad}"))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        let big = dir.path().join("big.json");
        std::fs::write(&big, format!("{{\"x\": \"{}\"}}", "a".repeat(2 << 20))).unwrap();
        let big = SecurityProfile {
            localhost_ref: big.to_string_lossy().into_owned(),
            ..p.clone()
        };
        assert!(seccomp_opt(Some(&big), "").is_err());
        // A good one goes to Docker compacted.
        let good = dir.path().join("good.json");
        std::fs::write(&good, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let good = SecurityProfile {
            localhost_ref: good.to_string_lossy().into_owned(),
            ..p
        };
        assert_eq!(
            seccomp_opt(Some(&good), "").unwrap().as_deref(),
            Some("seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}")
        );
    }

    // ---- Table tests: a CRI config in, the whole Docker create body out. ----

    use std::collections::HashMap;

    use bollard::models::{
        Mount as DockerMountEntry, MountBindOptions, MountBindOptionsPropagationEnum, MountType,
    };

    const SANDBOX: &str = "5b";
    const IMAGE: &str = "busybox:1";

    /// Host files from a table: symlinks to resolve and seccomp profiles to read.
    #[derive(Default)]
    struct FakeFiles {
        links: HashMap<&'static str, &'static str>,
        profiles: HashMap<&'static str, &'static str>,
    }

    impl HostFiles for FakeFiles {
        fn canonical(&self, path: &str) -> String {
            self.links.get(path).copied().unwrap_or(path).to_owned()
        }
        fn seccomp_profile(&self, path: &str) -> std::io::Result<String> {
            self.profiles
                .get(path)
                .map(|p| (*p).to_owned())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    /// The facts a case may change, owned.
    struct Env {
        sandbox_host: HostConfig,
        log_directory: &'static str,
        host: HostFacts,
        recursive_read_only_mounts: bool,
        privileged_fits_host: bool,
        files: FakeFiles,
    }

    impl Env {
        /// Docker 20.10 (API 1.41) on a host with every capability and no AppArmor, the
        /// sandbox on Docker's bridge.
        fn new() -> Self {
            Env {
                sandbox_host: HostConfig {
                    network_mode: Some("bridge".into()),
                    ipc_mode: Some("shareable".into()),
                    ..Default::default()
                },
                log_directory: "",
                host: HostFacts {
                    negative_oom_score_adj: true,
                    bounding_caps: Vec::new(),
                    full_bounding_set: true,
                    missing_docker_caps: Vec::new(),
                    apparmor: false,
                },
                recursive_read_only_mounts: false,
                privileged_fits_host: false,
                files: FakeFiles {
                    links: HashMap::from([("/link", "/target")]),
                    profiles: HashMap::from([
                        (
                            "/p/allow.json",
                            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n",
                        ),
                        ("/p/list.json", "[1, 2]"),
                    ]),
                },
            }
        }

        fn translate(&self, config: &ContainerConfig) -> Result<ContainerCreateBody> {
            create_body(
                config,
                &ContainerFacts {
                    sandbox_id: SANDBOX,
                    sandbox_host: &self.sandbox_host,
                    log_directory: self.log_directory,
                    state_dir_label: "/state",
                    host: &self.host,
                    recursive_read_only_mounts: self.recursive_read_only_mounts,
                    privileged_fits_host: self.privileged_fits_host,
                    files: &self.files,
                },
            )
        }
    }

    fn base_config() -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// What the base config becomes: the sandbox's network, IPC and PID namespaces, unconfined seccomp (no
    /// profile is unconfined in the CRI), unlimited swap, the shim's labels.
    fn base_body() -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(IMAGE.into()),
            tty: Some(false),
            open_stdin: Some(false),
            stdin_once: Some(false),
            labels: Some(strings(&[
                ("io.kubernetes.docker.type", "container"),
                ("io.kubernetes.sandbox.id", SANDBOX),
                ("io.anycri.container.image", IMAGE),
                ("io.anycri.docker.state-dir", "/state"),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("container:5b".into()),
                ipc_mode: Some("container:5b".into()),
                // NamespaceMode's default is POD.
                pid_mode: Some("container:5b".into()),
                privileged: Some(false),
                readonly_rootfs: Some(false),
                security_opt: Some(vec!["seccomp=unconfined".into()]),
                memory_swap: Some(-1),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn linux(c: &mut ContainerConfig) -> &mut LinuxContainerConfig {
        c.linux.get_or_insert_with(Default::default)
    }
    fn resources(c: &mut ContainerConfig) -> &mut LinuxContainerResources {
        linux(c).resources.get_or_insert_with(Default::default)
    }
    fn security(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
        linux(c)
            .security_context
            .get_or_insert_with(Default::default)
    }
    fn namespaces(c: &mut ContainerConfig) -> &mut NamespaceOption {
        security(c)
            .namespace_options
            .get_or_insert_with(Default::default)
    }
    fn host(b: &mut ContainerCreateBody) -> &mut HostConfig {
        b.host_config.as_mut().unwrap()
    }
    fn opts(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| (*s).to_owned()).collect())
    }
    fn profile(
        kind: security_profile::ProfileType,
        localhost_ref: &str,
    ) -> Option<SecurityProfile> {
        Some(SecurityProfile {
            profile_type: kind as i32,
            localhost_ref: localhost_ref.into(),
        })
    }

    struct Case {
        name: &'static str,
        /// Changes to the facts (default: [`Env::new`]).
        env: fn(&mut Env),
        /// Changes to [`base_config`].
        config: fn(&mut ContainerConfig),
        /// Changes to [`base_body`]: the expected translation.
        want: fn(&mut ContainerCreateBody),
    }

    const CASE: Case = Case {
        name: "",
        env: |_| {},
        config: |_| {},
        want: |_| {},
    };

    #[test]
    fn container_configs_become_docker_create_bodies() {
        use security_profile::ProfileType;
        let cases = [
            Case {
                name: "the base config",
                ..CASE
            },
            Case {
                name: "command, args, env, working directory, terminal, stdin",
                config: |c| {
                    c.command = vec!["/bin/sh".into(), "-c".into()];
                    c.args = vec!["echo $A".into()];
                    c.envs = vec![
                        KeyValue {
                            key: "A".into(),
                            value: "1=2".into(),
                        },
                        KeyValue {
                            key: "EMPTY".into(),
                            value: String::new(),
                        },
                    ];
                    c.working_dir = "/work".into();
                    c.tty = true;
                    c.stdin = true;
                    c.stdin_once = true;
                },
                want: |b| {
                    b.entrypoint = opts(&["/bin/sh", "-c"]);
                    b.cmd = opts(&["echo $A"]);
                    b.env = opts(&["A=1=2", "EMPTY="]);
                    b.working_dir = Some("/work".into());
                    b.tty = Some(true);
                    b.open_stdin = Some(true);
                    b.stdin_once = Some(true);
                },
                ..CASE
            },
            Case {
                name: "labels, annotations (prefixed) and the log path in the pod's directory",
                env: |e| e.log_directory = "/var/log/pods/ns_web_u1",
                config: |c| {
                    c.labels = strings(&[("app", "web"), ("tier", "front")]);
                    c.annotations = strings(&[("note", "a=b"), ("app", "shadowed?")]);
                    c.log_path = "app/0.log".into();
                },
                want: |b| {
                    let l = b.labels.as_mut().unwrap();
                    l.extend(strings(&[
                        ("app", "web"),
                        ("tier", "front"),
                        ("annotation.note", "a=b"),
                        ("annotation.app", "shadowed?"),
                        (
                            "io.kubernetes.container.logpath",
                            "/var/log/pods/ns_web_u1/app/0.log",
                        ),
                    ]));
                },
            },
            Case {
                name: "a log path without a log directory writes no log",
                config: |c| c.log_path = "app/0.log".into(),
                ..CASE
            },
            Case {
                name: "cpu shares, quota, period, memory, swap, cpusets, oom score",
                config: |c| {
                    let r = resources(c);
                    r.cpu_shares = 512;
                    r.cpu_quota = 50_000;
                    r.cpu_period = 100_000;
                    r.memory_limit_in_bytes = 256 << 20;
                    r.memory_swap_limit_in_bytes = 512 << 20;
                    r.cpuset_cpus = "0-1".into();
                    r.cpuset_mems = "0".into();
                    r.oom_score_adj = 500;
                },
                want: |b| {
                    let h = host(b);
                    h.cpu_shares = Some(512);
                    h.cpu_quota = Some(50_000);
                    h.cpu_period = Some(100_000);
                    h.memory = Some(256 << 20);
                    h.memory_swap = Some(512 << 20);
                    h.cpuset_cpus = Some("0-1".into());
                    h.cpuset_mems = Some("0".into());
                    h.oom_score_adj = Some(500);
                },
                ..CASE
            },
            Case {
                name: "unset and negative limits are left to Docker; swap stays unlimited",
                config: |c| {
                    let r = resources(c);
                    r.cpu_quota = -1;
                    r.cpu_shares = 0;
                    r.memory_limit_in_bytes = -1;
                    r.memory_swap_limit_in_bytes = 0;
                },
                ..CASE
            },
            Case {
                name: "hugepage limits and unified cgroup settings have no Docker field",
                config: |c| {
                    let r = resources(c);
                    r.hugepage_limits = vec![HugepageLimit {
                        page_size: "2MB".into(),
                        limit: 2 << 20,
                    }];
                    r.unified = strings(&[("memory.high", "1000000")]);
                },
                ..CASE
            },
            Case {
                name: "a negative oom score where the host allows lowering it",
                config: |c| resources(c).oom_score_adj = -500,
                want: |b| host(b).oom_score_adj = Some(-500),
                ..CASE
            },
            Case {
                name: "a negative oom score is raised to 0 where the host does not allow it",
                env: |e| e.host.negative_oom_score_adj = false,
                config: |c| resources(c).oom_score_adj = -500,
                want: |b| host(b).oom_score_adj = Some(0),
            },
            Case {
                name: "read-only rootfs, no_new_privs, capabilities, user and groups, masked and read-only paths",
                config: |c| {
                    let sc = security(c);
                    sc.readonly_rootfs = true;
                    sc.no_new_privs = true;
                    sc.capabilities = Some(Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["CHOWN".into(), "KILL".into()],
                        ..Default::default()
                    });
                    sc.run_as_user = Some(Int64Value { value: 1000 });
                    sc.run_as_group = Some(Int64Value { value: 3000 });
                    sc.supplemental_groups = vec![4000, 5000];
                    sc.masked_paths = vec!["/proc/kcore".into()];
                    sc.readonly_paths = vec!["/proc/sys".into()];
                },
                want: |b| {
                    b.user = Some("1000:3000".into());
                    let h = host(b);
                    h.readonly_rootfs = Some(true);
                    h.security_opt = opts(&["no-new-privileges", "seccomp=unconfined"]);
                    h.cap_add = opts(&["NET_ADMIN"]);
                    h.cap_drop = opts(&["CHOWN", "KILL"]);
                    h.group_add = opts(&["4000", "5000"]);
                    h.masked_paths = opts(&["/proc/kcore"]);
                    h.readonly_paths = opts(&["/proc/sys"]);
                },
                ..CASE
            },
            Case {
                name: "a user by name",
                config: |c| security(c).run_as_username = "nobody".into(),
                want: |b| b.user = Some("nobody".into()),
                ..CASE
            },
            Case {
                name: "privileged: Docker's --privileged, no seccomp whatever the profile, nothing masked",
                config: |c| {
                    let sc = security(c);
                    sc.privileged = true;
                    sc.seccomp = profile(ProfileType::Localhost, "/p/allow.json");
                    sc.masked_paths = vec!["/proc/kcore".into()];
                    sc.readonly_paths = vec!["/proc/sys".into()];
                },
                want: |b| host(b).privileged = Some(true),
                ..CASE
            },
            Case {
                name: "privileged on Docker 20.10 with a partial bounding set: ALL but what the host lacks",
                env: |e| {
                    e.host.full_bounding_set = false;
                    e.host.missing_docker_caps =
                        vec!["CAP_SYS_MODULE".into(), "CAP_SYS_BOOT".into()];
                    e.host.apparmor = true;
                },
                config: |c| {
                    let sc = security(c);
                    sc.privileged = true;
                    sc.capabilities = Some(Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["KILL".into()],
                        ..Default::default()
                    });
                    sc.masked_paths = vec!["/proc/kcore".into()];
                },
                want: |b| {
                    let h = host(b);
                    h.privileged = Some(false);
                    h.cap_add = opts(&["ALL"]);
                    h.cap_drop = opts(&["CAP_SYS_MODULE", "CAP_SYS_BOOT"]);
                    h.security_opt = opts(&["seccomp=unconfined", "apparmor=unconfined"]);
                },
            },
            Case {
                name: "privileged with a partial bounding set on Docker 23+: Docker's own --privileged",
                env: |e| {
                    e.host.full_bounding_set = false;
                    e.host.missing_docker_caps = vec!["CAP_SYS_MODULE".into()];
                    e.privileged_fits_host = true;
                },
                config: |c| security(c).privileged = true,
                want: |b| host(b).privileged = Some(true),
            },
            Case {
                name: "an added ALL on Docker 20.10 with a partial bounding set drops what the host lacks, once",
                env: |e| {
                    e.host.full_bounding_set = false;
                    e.host.missing_docker_caps =
                        vec!["CAP_SYS_MODULE".into(), "CAP_SYS_BOOT".into()];
                },
                config: |c| {
                    security(c).capabilities = Some(Capability {
                        add_capabilities: vec!["all".into()],
                        drop_capabilities: vec!["cap_sys_boot".into()],
                        ..Default::default()
                    })
                },
                want: |b| {
                    let h = host(b);
                    h.cap_add = opts(&["all"]);
                    h.cap_drop = opts(&["cap_sys_boot", "CAP_SYS_MODULE"]);
                },
            },
            Case {
                name: "seccomp RuntimeDefault is Docker's default profile",
                config: |c| security(c).seccomp = profile(ProfileType::RuntimeDefault, ""),
                want: |b| host(b).security_opt = None,
                ..CASE
            },
            Case {
                name: "a localhost seccomp profile goes to Docker compacted",
                config: |c| security(c).seccomp = profile(ProfileType::Localhost, "/p/allow.json"),
                want: |b| {
                    host(b).security_opt = opts(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                },
                ..CASE
            },
            Case {
                name: "the legacy seccomp path, when the typed field is unset",
                config: |c| {
                    #[allow(deprecated)]
                    {
                        security(c).seccomp_profile_path = "localhost//p/allow.json".into();
                    }
                },
                want: |b| {
                    host(b).security_opt = opts(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                },
                ..CASE
            },
            Case {
                name: "the typed seccomp field wins over the legacy path",
                config: |c| {
                    let sc = security(c);
                    sc.seccomp = profile(ProfileType::RuntimeDefault, "");
                    #[allow(deprecated)]
                    {
                        sc.seccomp_profile_path = "unconfined".into();
                    }
                },
                want: |b| host(b).security_opt = None,
                ..CASE
            },
            Case {
                name: "AppArmor profiles where the host has AppArmor",
                env: |e| e.host.apparmor = true,
                config: |c| security(c).apparmor = profile(ProfileType::Localhost, "k8s-web"),
                want: |b| host(b).security_opt = opts(&["seccomp=unconfined", "apparmor=k8s-web"]),
            },
            Case {
                name: "the legacy AppArmor field",
                env: |e| e.host.apparmor = true,
                config: |c| {
                    #[allow(deprecated)]
                    {
                        security(c).apparmor_profile = "unconfined".into();
                    }
                },
                want: |b| {
                    host(b).security_opt = opts(&["seccomp=unconfined", "apparmor=unconfined"])
                },
            },
            Case {
                name: "AppArmor profiles are ignored where the host has no AppArmor",
                config: |c| security(c).apparmor = profile(ProfileType::Localhost, "k8s-web"),
                ..CASE
            },
            Case {
                name: "bind mounts: propagation, read-only, SELinux relabel, a symlinked host path",
                config: |c| {
                    c.mounts = vec![
                        Mount {
                            container_path: "/shared".into(),
                            host_path: "/h/shared".into(),
                            propagation: MountPropagation::PropagationBidirectional as i32,
                            ..Default::default()
                        },
                        Mount {
                            container_path: "/slave".into(),
                            host_path: "/h/slave".into(),
                            readonly: true,
                            propagation: MountPropagation::PropagationHostToContainer as i32,
                            ..Default::default()
                        },
                        Mount {
                            container_path: "/labelled".into(),
                            host_path: "/link".into(),
                            selinux_relabel: true,
                            ..Default::default()
                        },
                    ];
                },
                want: |b| {
                    host(b).binds = opts(&[
                        "/h/shared:/shared:rw,rshared",
                        "/h/slave:/slave:ro,rslave",
                        "/target:/labelled:rw,Z",
                    ])
                },
                ..CASE
            },
            Case {
                name: "read-only mounts on Docker 25 (API 1.44): Mounts entries, recursive only when asked",
                env: |e| e.recursive_read_only_mounts = true,
                config: |c| {
                    c.mounts = vec![
                        Mount {
                            container_path: "/rw".into(),
                            host_path: "/h/rw".into(),
                            ..Default::default()
                        },
                        Mount {
                            container_path: "/ro".into(),
                            host_path: "/link".into(),
                            readonly: true,
                            propagation: MountPropagation::PropagationHostToContainer as i32,
                            ..Default::default()
                        },
                        Mount {
                            container_path: "/rro".into(),
                            host_path: "/h/rro".into(),
                            readonly: true,
                            recursive_read_only: true,
                            ..Default::default()
                        },
                    ];
                },
                want: |b| {
                    let entry = |target: &str, source: &str, propagation, recursive: bool| {
                        DockerMountEntry {
                            target: Some(target.into()),
                            source: Some(source.into()),
                            typ: Some(MountType::BIND),
                            read_only: Some(true),
                            bind_options: Some(MountBindOptions {
                                propagation: Some(propagation),
                                read_only_non_recursive: Some(!recursive),
                                read_only_force_recursive: Some(recursive),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }
                    };
                    let h = host(b);
                    h.binds = opts(&["/h/rw:/rw:rw"]);
                    h.mounts = Some(vec![
                        entry(
                            "/ro",
                            "/target",
                            MountBindOptionsPropagationEnum::RSLAVE,
                            false,
                        ),
                        entry(
                            "/rro",
                            "/h/rro",
                            MountBindOptionsPropagationEnum::RPRIVATE,
                            true,
                        ),
                    ]);
                },
            },
            Case {
                name: "devices, with rwm unless the permissions are given",
                config: |c| {
                    c.devices = vec![
                        Device {
                            container_path: "/dev/fuse".into(),
                            host_path: "/dev/fuse".into(),
                            permissions: String::new(),
                        },
                        Device {
                            container_path: "/dev/xvda".into(),
                            host_path: "/dev/sda".into(),
                            permissions: "r".into(),
                        },
                    ];
                },
                want: |b| {
                    host(b).devices = Some(vec![
                        DeviceMapping {
                            path_on_host: Some("/dev/fuse".into()),
                            path_in_container: Some("/dev/fuse".into()),
                            cgroup_permissions: Some("rwm".into()),
                        },
                        DeviceMapping {
                            path_on_host: Some("/dev/sda".into()),
                            path_in_container: Some("/dev/xvda".into()),
                            cgroup_permissions: Some("r".into()),
                        },
                    ])
                },
                ..CASE
            },
            Case {
                name: "the container's own PID namespace",
                config: |c| namespaces(c).pid = NamespaceMode::Container as i32,
                want: |b| host(b).pid_mode = None,
                ..CASE
            },
            Case {
                name: "the host's PID namespace",
                config: |c| namespaces(c).pid = NamespaceMode::Node as i32,
                want: |b| host(b).pid_mode = Some("host".into()),
                ..CASE
            },
            Case {
                name: "another container's PID namespace",
                config: |c| {
                    let ns = namespaces(c);
                    ns.pid = NamespaceMode::Target as i32;
                    ns.target_id = "7c".into();
                },
                want: |b| host(b).pid_mode = Some("container:7c".into()),
                ..CASE
            },
            Case {
                name: "a target PID namespace without a target is the container's own",
                config: |c| namespaces(c).pid = NamespaceMode::Target as i32,
                want: |b| host(b).pid_mode = None,
                ..CASE
            },
            Case {
                name: "a sandbox on the host's network and IPC: the container too, and the host's UTS",
                env: |e| {
                    e.sandbox_host.network_mode = Some("host".into());
                    e.sandbox_host.ipc_mode = Some("host".into());
                    e.sandbox_host.cgroup_parent = Some("/kubepods/pod1".into());
                },
                want: |b| {
                    let h = host(b);
                    h.network_mode = Some("host".into());
                    h.ipc_mode = Some("host".into());
                    h.uts_mode = Some("host".into());
                    h.cgroup_parent = Some("/kubepods/pod1".into());
                },
                ..CASE
            },
        ];
        for case in cases {
            let mut env = Env::new();
            (case.env)(&mut env);
            let mut config = base_config();
            (case.config)(&mut config);
            let mut want = base_body();
            (case.want)(&mut want);
            let got = env
                .translate(&config)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(got, want, "{}", case.name);
        }
    }

    /// A config change and what the error says.
    type Refused = (&'static str, fn(&mut ContainerConfig), &'static str);

    #[test]
    fn container_configs_docker_cannot_be_asked_for() {
        use security_profile::ProfileType;
        let cases: [Refused; 7] = [
            (
                "a group without a user",
                |c| security(c).run_as_group = Some(Int64Value { value: 3000 }),
                "run_as_group is set without run_as_user",
            ),
            (
                "a relative container path",
                |c| {
                    c.mounts = vec![Mount {
                        container_path: "data".into(),
                        host_path: "/h".into(),
                        ..Default::default()
                    }]
                },
                "must be absolute",
            ),
            (
                "a host path with a colon",
                |c| {
                    c.mounts = vec![Mount {
                        container_path: "/data".into(),
                        host_path: "/h:/x".into(),
                        ..Default::default()
                    }]
                },
                "contain no ':'",
            ),
            (
                "recursive read-only on an engine without it",
                |c| {
                    c.mounts = vec![Mount {
                        container_path: "/data".into(),
                        host_path: "/h".into(),
                        readonly: true,
                        recursive_read_only: true,
                        ..Default::default()
                    }]
                },
                "needs Docker 25",
            ),
            (
                "a seccomp profile that cannot be read",
                |c| security(c).seccomp = profile(ProfileType::Localhost, "/p/missing.json"),
                "cannot be read",
            ),
            (
                "a seccomp profile that is not an object",
                |c| security(c).seccomp = profile(ProfileType::Localhost, "/p/list.json"),
                "is not a JSON object",
            ),
            (
                "a log path that leaves the pod's directory",
                |c| c.log_path = "../../etc/passwd".into(),
                "leaves the log directory",
            ),
        ];
        let mut env = Env::new();
        env.log_directory = "/var/log/pods/ns_web_u1";
        for (name, change, message) in cases {
            let mut config = base_config();
            change(&mut config);
            let err = env.translate(&config).expect_err(name);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{name}");
            assert!(err.to_string().contains(message), "{name}: {err}");
        }
    }

    #[test]
    fn mount_sources_are_the_mounts_entries() {
        let mut env = Env::new();
        env.recursive_read_only_mounts = true;
        let mut config = base_config();
        config.mounts = vec![
            Mount {
                container_path: "/rw".into(),
                host_path: "/h/rw".into(),
                ..Default::default()
            },
            Mount {
                container_path: "/ro".into(),
                host_path: "/link".into(),
                readonly: true,
                ..Default::default()
            },
        ];
        let body = env.translate(&config).unwrap();
        assert_eq!(mount_sources(&body).collect::<Vec<_>>(), vec!["/target"]);
        assert_eq!(mount_sources(&base_body()).count(), 0);
    }
}
