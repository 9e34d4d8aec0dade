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
}
