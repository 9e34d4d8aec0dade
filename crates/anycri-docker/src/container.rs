//! CRI containers as Docker containers joined to their sandbox: create (command, env, mounts,
//! devices, security context, resources), start (and the CRI log writer), stop, remove,
//! status (one inspect), list (one Docker list call for any filter), resource updates and
//! log reopening.

use std::collections::HashMap;

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::{
    models::{
        ContainerCreateBody, ContainerInspectResponse, ContainerSummaryStateEnum,
        ContainerUpdateBody, DeviceMapping, HostConfig,
    },
    query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions},
};

use crate::{DockerRuntime, error::docker_error, labels, sandbox::rfc3339_nanos};

/// How long an exited container's OOM verdict is kept (a CRI container runs once, so the
/// verdict does not change; the lifetime only bounds the memory it takes).
pub(crate) const OOM_VERDICT_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// How long after a container's exit its `oom` event may still be missing from Docker's log.
const OOM_EVENT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn docker_state(s: Option<&ContainerSummaryStateEnum>) -> ContainerState {
    match s {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::ContainerCreated,
        Some(
            ContainerSummaryStateEnum::RUNNING
            | ContainerSummaryStateEnum::PAUSED
            | ContainerSummaryStateEnum::RESTARTING
            | ContainerSummaryStateEnum::STOPPING,
        ) => ContainerState::ContainerRunning,
        Some(
            ContainerSummaryStateEnum::EXITED
            | ContainerSummaryStateEnum::DEAD
            | ContainerSummaryStateEnum::REMOVING,
        ) => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

fn inspect_state(inspect: &ContainerInspectResponse) -> ContainerState {
    use bollard::models::ContainerStateStatusEnum as S;
    match inspect.state.as_ref().and_then(|s| s.status.as_ref()) {
        Some(S::CREATED) => ContainerState::ContainerCreated,
        Some(S::RUNNING | S::PAUSED | S::RESTARTING | S::STOPPING) => {
            ContainerState::ContainerRunning
        }
        Some(S::EXITED | S::DEAD | S::REMOVING) => ContainerState::ContainerExited,
        _ => ContainerState::ContainerUnknown,
    }
}

/// A process's real uid, gid and supplementary groups from its `/proc/<pid>/status` text.
fn process_user(status: &str) -> Option<LinuxContainerUser> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::split_whitespace)
    };
    let first = |name: &str| field(name)?.next()?.parse::<i64>().ok();
    let mut supplemental_groups: Vec<i64> =
        field("Groups")?.filter_map(|g| g.parse().ok()).collect();
    supplemental_groups.sort_unstable();
    Some(LinuxContainerUser {
        uid: first("Uid")?,
        gid: first("Gid")?,
        supplemental_groups,
    })
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

/// Translate one CRI mount; `recursive_ro` says whether the engine has API 1.44's
/// read-only recursion options (reported as the handler's `recursive_read_only_mounts`).
fn docker_mount(m: &Mount, recursive_ro: bool) -> Result<DockerMount> {
    use bollard::models::{MountBindOptions, MountBindOptionsPropagationEnum as P, MountType};
    let spec = bind(m)?;
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

fn bind(m: &Mount) -> Result<String> {
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
    let host = std::fs::canonicalize(&m.host_path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| m.host_path.clone());
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

fn seccomp_opt(profile: Option<&SecurityProfile>, legacy: &str) -> Result<Option<String>> {
    seccomp_opt_with(profile, legacy, read_seccomp_profile)
}

/// `seccomp_opt` with a localhost profile's file read by `read` (the fuzz targets give its
/// contents instead of a file).
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

impl DockerRuntime {
    fn apparmor_opt(&self, profile: Option<&SecurityProfile>, legacy: &str) -> Option<String> {
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
        if !self.inner.host.apparmor {
            tracing::debug!(
                profile = wanted,
                "AppArmor is not enabled on this host; profile ignored"
            );
            return None;
        }
        Some(format!("apparmor={wanted}"))
    }

    /// Inspect a shim container; NotFound when unknown or a sandbox.
    pub(crate) async fn inspect_container(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.inspect_kind(id, labels::TYPE_CONTAINER, "container_id", "container")
            .await
    }

    pub(crate) async fn create_container_impl(
        &self,
        request: CreateContainerRequest,
    ) -> Result<CreateContainerResponse> {
        let config = request
            .config
            .ok_or_else(|| Error::invalid_argument("config must be set"))?;
        let cmeta = config
            .metadata
            .clone()
            .ok_or_else(|| Error::invalid_argument("config.metadata must be set"))?;
        let image = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        if image.is_empty() {
            return Err(Error::invalid_argument(
                "config.image.image must not be empty",
            ));
        }
        let sandbox = self.inspect_sandbox(&request.pod_sandbox_id).await?;
        let sandbox_id = sandbox.id.clone().unwrap_or_default();
        if !sandbox
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::failed_precondition(format!(
                "pod sandbox {sandbox_id} is not ready"
            )));
        }
        let pod_meta = labels::parse_sandbox_name(sandbox.name.as_deref().unwrap_or_default())
            .map_err(|e| e.context(format!("sandbox {sandbox_id}")))?;
        let name = labels::container_name(&cmeta, &pod_meta)?;
        // The kubelet pulls first; a missing image is NotFound, as from containerd.
        self.resolve_image(&image).await?;

        let sandbox_labels = sandbox
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let log_dir = request
            .sandbox_config
            .as_ref()
            .map(|s| s.log_directory.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| sandbox_labels.get(labels::LOG_DIRECTORY_LABEL).cloned())
            .unwrap_or_default();
        let log_path = anycri_core::kubelet::log_file_path(&log_dir, &config.log_path)?
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();

        let linux = config.linux.clone().unwrap_or_default();
        let sc = linux.security_context.clone().unwrap_or_default();
        let res = linux.resources.clone().unwrap_or_default();
        let ns = sc.namespace_options.clone().unwrap_or_default();
        let sandbox_host = sandbox.host_config.clone().unwrap_or_default();
        let join = format!("container:{sandbox_id}");
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
        } else if let Some(s) = seccomp_opt(sc.seccomp.as_ref(), &legacy_seccomp)? {
            security_opt.push(s);
        }
        if let Some(a) = self.apparmor_opt(sc.apparmor.as_ref(), &legacy_apparmor) {
            security_opt.push(a);
        }
        let caps = sc.capabilities.clone().unwrap_or_default();
        let (mut cap_add, mut cap_drop) = (
            caps.add_capabilities.clone(),
            caps.drop_capabilities.clone(),
        );
        let mut privileged = sc.privileged;
        if sc.privileged && !self.inner.host.full_bounding_set && !self.privileged_fits_host() {
            // Docker 20.10's --privileged asks for every capability, which fails where the
            // bounding set is smaller: ask for ALL instead (narrowed to the host's below, as
            // containerd gives what the host has), and lift the other confinements
            // --privileged lifts.
            privileged = false;
            cap_add = vec!["ALL".to_owned()];
            cap_drop = Vec::new();
            if self.inner.host.apparmor {
                security_opt.push("apparmor=unconfined".into());
            }
        }
        // Docker 20.10 expands an added "ALL" to every capability it knows, which runc cannot
        // grant where the bounding set is smaller (critest's "adding ALL capabilities"): drop
        // what the host lacks, as containerd grants "ALL" as the capabilities it holds.
        // Docker 23 and later expand it to the host's, and refuse to drop what it lacks.
        if !self.inner.host.full_bounding_set
            && !self.privileged_fits_host()
            && cap_add.iter().any(|c| c.eq_ignore_ascii_case("ALL"))
        {
            for missing in &self.inner.host.missing_docker_caps {
                if !cap_drop.iter().any(|d| d.eq_ignore_ascii_case(missing)) {
                    cap_drop.push(missing.clone());
                }
            }
        }
        let oom_score_adj = match res.oom_score_adj {
            0 => None,
            n if n < 0 && !self.inner.host.negative_oom_score_adj => {
                self.inner.host.warn_oom_score_adj_once();
                Some(0)
            }
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
        let recursive_ro = self.recursive_read_only_mounts();
        let (mut binds, mut mounts) = (Vec::new(), Vec::new());
        for m in &config.mounts {
            match docker_mount(m, recursive_ro)? {
                DockerMount::Bind(b) => binds.push(b),
                DockerMount::Mount(m) => {
                    // As a bind does (and containerd): a missing host directory is created.
                    if let Some(source) = &m.source
                        && !std::path::Path::new(source).exists()
                    {
                        std::fs::create_dir_all(source).map_err(|e| {
                            Error::with_source(
                                ErrorKind::InvalidArgument,
                                format!("config.mounts: creating host path {source:?}"),
                                e,
                            )
                        })?;
                    }
                    mounts.push(*m);
                }
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
            masked_paths: (!unmasked && !sc.masked_paths.is_empty())
                .then(|| sc.masked_paths.clone()),
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
        let body = ContainerCreateBody {
            image: Some(image.clone()),
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
                let mut l = labels::container_labels(&config, &sandbox_id, &log_path);
                l.insert(labels::STATE_DIR_LABEL.into(), self.state_dir_label());
                l
            }),
            host_config: Some(host),
            ..Default::default()
        };
        let created = self
            .docker()
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                body,
            )
            .await
            .map_err(|e| docker_error(format!("creating container {name}"), e))?;
        Ok(CreateContainerResponse {
            container_id: created.id,
        })
    }

    pub(crate) async fn start_container_impl(
        &self,
        request: StartContainerRequest,
    ) -> Result<StartContainerResponse> {
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let state = inspect_state(&inspect);
        if state != ContainerState::ContainerCreated {
            return Err(Error::failed_precondition(format!(
                "container {id} is in state {}, not CONTAINER_CREATED",
                state.as_str_name()
            )));
        }
        self.docker()
            .start_container(&id, None)
            .await
            .map_err(|e| docker_error(format!("starting container {id}"), e))?;
        // The node's owner writes its logs (this process if it may be, else the process
        // that holds the owner lock, which follows Docker's start events).
        if self.owns_logs().await {
            self.start_log_writer(&inspect);
            self.create_log_file(&inspect).await;
        }
        Ok(StartContainerResponse {})
    }

    pub(crate) fn start_log_writer(&self, inspect: &ContainerInspectResponse) {
        let config = inspect.config.as_ref();
        let docker_labels = config.and_then(|c| c.labels.as_ref());
        // Another shim's container (another state directory): its owner writes the log.
        if docker_labels.is_some_and(|l| !labels::writes_log_of(l, &self.state_dir_label())) {
            return;
        }
        let path = docker_labels.and_then(|l| l.get(labels::LOG_PATH_LABEL));
        if let (Some(id), Some(path)) = (&inspect.id, path) {
            let tty = config.and_then(|c| c.tty).unwrap_or(false);
            self.inner.logs.start(id, path.into(), tty);
        }
    }

    /// Create the container's (empty) log file unless its writer already has: as with
    /// containerd, the file exists once StartContainer returns, even before any output.
    async fn create_log_file(&self, inspect: &ContainerInspectResponse) {
        let Some(path) = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(labels::LOG_PATH_LABEL))
            .map(std::path::PathBuf::from)
        else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        if let Err(e) = tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .await
        {
            tracing::warn!(path = %path.display(), error = %e, "creating the container's log file");
        }
    }

    /// Resume the log writers of running containers (after the shim restarted).
    pub(crate) async fn resume_logging(&self) {
        let Ok(running) = self.list_kind(labels::TYPE_CONTAINER, [], "", true).await else {
            return;
        };
        let state_dir = self.state_dir_label();
        for c in running {
            if c.labels
                .as_ref()
                .is_some_and(|l| !labels::writes_log_of(l, &state_dir))
            {
                continue;
            }
            let path = c
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::LOG_PATH_LABEL));
            if let (Some(id), Some(path)) = (&c.id, path) {
                // Only an inspect tells whether the container has a TTY.
                let tty = self
                    .docker()
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await
                    .ok()
                    .and_then(|i| i.config.and_then(|c| c.tty))
                    .unwrap_or(false);
                self.inner.logs.start(id, path.into(), tty);
            }
        }
    }

    /// The value of [`labels::STATE_DIR_LABEL`] for this shim: its state directory as an
    /// absolute path (made so without touching the file system).
    pub(crate) fn state_dir_label(&self) -> String {
        let dir = &self.inner.state_dir;
        std::path::absolute(dir)
            .unwrap_or_else(|_| dir.clone())
            .to_string_lossy()
            .into_owned()
    }

    /// Whether the API version negotiated with the engine is at least `1.minor`.
    fn api_at_least(&self, minor: usize) -> bool {
        let v = self.docker().client_version();
        (v.major_version, v.minor_version) >= (1, minor)
    }

    /// Whether the engine has read-only recursion options for binds (API 1.44, Docker 25).
    pub(crate) fn recursive_read_only_mounts(&self) -> bool {
        self.api_at_least(44)
    }

    /// Whether Docker's own `--privileged` (and an added `ALL`) gives only the capabilities
    /// the host has: from Docker 23.0 (API 1.42, moby#42933) it does, and it also refuses to
    /// drop a capability the host lacks, so the workaround for 20.10 must not be used there.
    fn privileged_fits_host(&self) -> bool {
        self.api_at_least(42)
    }

    pub(crate) async fn stop_container_impl(
        &self,
        request: StopContainerRequest,
    ) -> Result<StopContainerResponse> {
        let inspect = match self.inspect_container(&request.container_id).await {
            Ok(inspect) => inspect,
            // As the kubelet expects (and critest checks): stopping a container that is gone
            // succeeds, there is nothing left to stop.
            Err(e) if e.is_not_found() => return Ok(StopContainerResponse {}),
            Err(e) => return Err(e),
        };
        let id = inspect.id.unwrap_or_default();
        self.stop_docker_container(&id, request.timeout).await?;
        Ok(StopContainerResponse {})
    }

    pub(crate) async fn remove_container_impl(
        &self,
        request: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse> {
        match self.inspect_container(&request.container_id).await {
            Ok(inspect) => {
                self.remove_docker_container(&inspect.id.unwrap_or_default())
                    .await?
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        Ok(RemoveContainerResponse {})
    }

    pub(crate) async fn list_containers_impl(
        &self,
        request: ListContainersRequest,
    ) -> Result<ListContainersResponse> {
        let filter = request.filter.unwrap_or_default();
        let mut selector: Vec<String> = filter
            .label_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        // A full sandbox ID filters in Docker; a prefix is matched below.
        if filter.pod_sandbox_id.len() == 64 {
            selector.push(format!(
                "{}={}",
                labels::SANDBOX_ID_LABEL,
                filter.pod_sandbox_id
            ));
        }
        let summaries = self
            .list_kind(labels::TYPE_CONTAINER, selector, &filter.id, false)
            .await?;
        let want_state = filter.state.map(|s| s.state);
        let mut containers: Vec<Container> = summaries
            .into_iter()
            .filter_map(|s| {
                let name = s.names.as_ref()?.first()?.clone();
                let (metadata, _) = labels::parse_container_name(&name).ok()?;
                let docker_labels = s.labels.clone().unwrap_or_default();
                let pod_sandbox_id = docker_labels
                    .get(labels::SANDBOX_ID_LABEL)
                    .cloned()
                    .unwrap_or_default();
                // A short pod ID is a prefix match, as for IDs.
                if !filter.pod_sandbox_id.is_empty()
                    && !pod_sandbox_id.starts_with(&filter.pod_sandbox_id)
                {
                    return None;
                }
                let state = docker_state(s.state.as_ref()) as i32;
                if want_state.is_some_and(|w| w != state) {
                    return None;
                }
                let image = docker_labels
                    .get(labels::IMAGE_LABEL)
                    .cloned()
                    .or(s.image.clone())
                    .unwrap_or_default();
                let (labels, annotations) = labels::split_labels(&docker_labels);
                let image_id = s.image_id.clone().unwrap_or_default();
                Some(Container {
                    id: s.id?,
                    pod_sandbox_id,
                    metadata: Some(metadata),
                    image: Some(ImageSpec {
                        image,
                        ..Default::default()
                    }),
                    image_ref: image_id.clone(),
                    state,
                    created_at: s.created.unwrap_or(0).saturating_mul(1_000_000_000),
                    labels,
                    annotations,
                    image_id,
                })
            })
            .collect();
        containers.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(ListContainersResponse { containers })
    }

    /// Whether Docker logged an `oom` event for the container during its last run. Docker
    /// 20.10 can lose `State.OOMKilled` when the task's exit is handled before its OOM event
    /// (the exit then overwrites the flag), but the event itself is always in its event log;
    /// asked only for a container that died of SIGKILL without the flag.
    /// A verdict is kept once it is final: an event was found, or none was by the time the
    /// container had been gone for [`OOM_EVENT_GRACE`] (Docker logs the event with the exit).
    async fn oom_event_seen(&self, id: &str, state: &bollard::models::ContainerState) -> bool {
        if let Some(seen) = self.inner.oom_verdicts.get(id) {
            return seen;
        }
        let seen = self.query_oom_event(id, state).await;
        let settled = state
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|f| {
                chrono::Utc::now().signed_duration_since(f)
                    > chrono::Duration::from_std(OOM_EVENT_GRACE).unwrap_or_default()
            });
        if seen || settled {
            self.inner.oom_verdicts.insert(id, seen);
        }
        seen
    }

    async fn query_oom_event(&self, id: &str, state: &bollard::models::ContainerState) -> bool {
        use futures::StreamExt as _;
        let Some(started) = state
            .started_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            return false;
        };
        // Until now (with nanoseconds): the event log as it stands, without waiting for more.
        let now = chrono::Utc::now();
        let until = format!("{}.{:09}", now.timestamp(), now.timestamp_subsec_nanos());
        let filters = HashMap::from([
            ("type", vec!["container"]),
            ("container", vec![id]),
            ("event", vec!["oom"]),
        ]);
        let options = bollard::query_parameters::EventsOptionsBuilder::new()
            .since(&started.timestamp().to_string())
            .until(&until)
            .filters(&filters)
            .build();
        let events = self.docker().events(Some(options));
        tokio::pin!(events);
        // The stream ends at `until`; the first OOM event is enough. The bound only guards
        // against a daemon that never answers.
        tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
            .await
            .is_ok_and(|e| matches!(e, Some(Ok(_))))
    }

    pub(crate) async fn container_status_impl(
        &self,
        request: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse> {
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let (metadata, _) = labels::parse_container_name(
            inspect.name.as_deref().unwrap_or_default(),
        )
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Internal,
                format!("container {id} has a foreign name"),
                e,
            )
        })?;
        let state = inspect_state(&inspect);
        let ds = inspect.state.clone().unwrap_or_default();
        let exit_code = ds.exit_code.unwrap_or(0) as i32;
        let reason = if state != ContainerState::ContainerExited {
            String::new()
        } else if ds.oom_killed == Some(true)
            || (exit_code == 137 && self.oom_event_seen(&id, &ds).await)
        {
            "OOMKilled".into()
        } else if exit_code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        };
        let config = inspect.config.clone().unwrap_or_default();
        let docker_labels = config.labels.clone().unwrap_or_default();
        let image = docker_labels
            .get(labels::IMAGE_LABEL)
            .cloned()
            .or(config.image.clone())
            .unwrap_or_default();
        let image_id = inspect.image.clone().unwrap_or_default();
        let image_ref = self.image_ref_of(&image_id).await;
        let mounts = inspect
            .mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| Mount {
                container_path: m.destination.unwrap_or_default(),
                host_path: m.source.unwrap_or_default(),
                readonly: m.rw == Some(false),
                propagation: match m.propagation.as_deref() {
                    Some("rslave" | "slave") => MountPropagation::PropagationHostToContainer,
                    Some("rshared" | "shared") => MountPropagation::PropagationBidirectional,
                    _ => MountPropagation::PropagationPrivate,
                } as i32,
                ..Default::default()
            })
            .collect();
        let host = inspect.host_config.clone().unwrap_or_default();
        let resources = ContainerResources {
            linux: Some(LinuxContainerResources {
                cpu_period: host.cpu_period.unwrap_or(0),
                cpu_quota: host.cpu_quota.unwrap_or(0),
                cpu_shares: host.cpu_shares.unwrap_or(0),
                memory_limit_in_bytes: host.memory.unwrap_or(0),
                oom_score_adj: host.oom_score_adj.unwrap_or(0),
                cpuset_cpus: host.cpuset_cpus.clone().unwrap_or_default(),
                cpuset_mems: host.cpuset_mems.clone().unwrap_or_default(),
                memory_swap_limit_in_bytes: host.memory_swap.unwrap_or(0),
                ..Default::default()
            }),
            windows: None,
        };
        let (labels, annotations) = labels::split_labels(&docker_labels);
        let mut info = HashMap::new();
        if request.verbose {
            info.insert(
                "info".to_owned(),
                serde_json::json!({
                    "pid": ds.pid,
                    "sandboxID": docker_labels.get(labels::SANDBOX_ID_LABEL),
                    "dockerLogPath": inspect.log_path,
                    "privileged": host.privileged,
                    "error": ds.error,
                })
                .to_string(),
            );
        }
        // The identity of the container's first process, from the host's /proc while it runs
        // (the shim and Docker share the host).
        let user = match ds.pid {
            Some(pid) if pid > 0 && state == ContainerState::ContainerRunning => {
                tokio::fs::read_to_string(format!("/proc/{pid}/status"))
                    .await
                    .ok()
                    .and_then(|text| process_user(&text))
            }
            _ => None,
        };
        let started_at = ds.started_at.as_deref().map(rfc3339_nanos).unwrap_or(0);
        let finished_at = if state == ContainerState::ContainerExited {
            ds.finished_at.as_deref().map(rfc3339_nanos).unwrap_or(0)
        } else {
            0
        };
        Ok(ContainerStatusResponse {
            status: Some(ContainerStatus {
                id,
                metadata: Some(metadata),
                state: state as i32,
                created_at: inspect.created.as_deref().map(rfc3339_nanos).unwrap_or(0),
                started_at,
                finished_at: exit_time(started_at, finished_at),
                exit_code,
                image: Some(ImageSpec {
                    image,
                    ..Default::default()
                }),
                image_ref,
                reason,
                message: ds.error.clone().unwrap_or_default(),
                labels,
                annotations,
                mounts,
                log_path: docker_labels
                    .get(labels::LOG_PATH_LABEL)
                    .cloned()
                    .unwrap_or_default(),
                resources: Some(resources),
                image_id,
                user: user.map(|linux| ContainerUser { linux: Some(linux) }),
                ..Default::default()
            }),
            info,
        })
    }

    pub(crate) async fn update_container_resources_impl(
        &self,
        request: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse> {
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let Some(r) = request.linux else {
            return Ok(UpdateContainerResourcesResponse {});
        };
        let memory = (r.memory_limit_in_bytes > 0).then_some(r.memory_limit_in_bytes);
        // Docker refuses a memory limit above the current swap limit; unless the caller sets
        // swap, keep it unlimited.
        let memory_swap = if r.memory_swap_limit_in_bytes > 0 {
            Some(r.memory_swap_limit_in_bytes)
        } else {
            memory.map(|_| -1)
        };
        let body = ContainerUpdateBody {
            cpu_shares: (r.cpu_shares > 0).then_some(r.cpu_shares),
            cpu_period: (r.cpu_period > 0).then_some(r.cpu_period),
            cpu_quota: (r.cpu_quota != 0).then_some(r.cpu_quota),
            cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
            cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
            memory,
            memory_swap,
            ..Default::default()
        };
        self.docker()
            .update_container(&id, body)
            .await
            .map_err(|e| docker_error(format!("updating resources of container {id}"), e))?;
        Ok(UpdateContainerResourcesResponse {})
    }

    pub(crate) async fn reopen_container_log_impl(
        &self,
        request: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse> {
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        if inspect_state(&inspect) != ContainerState::ContainerRunning {
            return Err(Error::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        if !self.owns_logs().await {
            return Err(Error::failed_precondition(format!(
                "container {id}'s log is written by the process that manages this node (pid {}, state directory {}); ReopenContainerLog goes to it",
                crate::owner::holder(&self.inner.state_dir)
                    .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
                self.inner.state_dir.display()
            )));
        }
        match self.inner.logs.reopen(&id).await {
            Err(e) if e.kind() == ErrorKind::FailedPrecondition => {
                // No writer (it ended with a Docker hiccup): start one on the new file.
                self.start_log_writer(&inspect);
                Ok(ReopenContainerLogResponse {})
            }
            other => other.map(|_| ReopenContainerLogResponse {}),
        }
    }
}

/// The finish time to report: Docker 20.10 can record a container that it took down with a
/// dockerd restart as finished a fraction of a millisecond before its start (seen in CI:
/// 484 µs); a CRI client computing a run time must not get a negative one, so such a finish
/// is reported as the start. 0 (unknown) stays 0.
fn exit_time(started_at: i64, finished_at: i64) -> i64 {
    if finished_at != 0 && finished_at < started_at {
        started_at
    } else {
        finished_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_before_the_start_is_reported_as_the_start() {
        assert_eq!(exit_time(1_000, 999), 1_000);
        assert_eq!(exit_time(1_000, 2_000), 2_000);
        assert_eq!(exit_time(1_000, 0), 0);
        assert_eq!(exit_time(0, 0), 0);
    }

    #[test]
    fn process_identity_from_proc_status() {
        let status = "Name:\tsleep\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t50000 1000 1234 \n";
        let user = process_user(status).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.supplemental_groups, vec![1000, 1234, 50000]);
        let none = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert!(process_user(none).unwrap().supplemental_groups.is_empty());
        assert_eq!(process_user("Name:\tx\n"), None);
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
