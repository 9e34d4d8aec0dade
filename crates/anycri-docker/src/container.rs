//! CRI containers as Docker containers joined to their sandbox: create (the config
//! translated by `translate`), start (and the CRI log writer), stop, remove, status (one
//! inspect, translated back), list (one Docker list call for any filter), resource updates
//! and log reopening.

use std::collections::HashMap;

use anycri_core::{Error, ErrorKind, Result, api::*};
use bollard::{
    models::{ContainerInspectResponse, ContainerUpdateBody},
    query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions},
};

use crate::{DockerRuntime, error::docker_error, labels, translate};

/// How long an exited container's OOM verdict is kept (a CRI container runs once, so the
/// verdict does not change; the lifetime only bounds the memory it takes).
pub(crate) const OOM_VERDICT_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// How long after a container's exit its `oom` event may still be missing from Docker's log.
const OOM_EVENT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// How long ContainerStatus of an exited container waits for its log writer to write the
/// last output (the writer ends within milliseconds of the exit; this bounds a stuck one).
const LOG_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl DockerRuntime {
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
        let log_directory = request
            .sandbox_config
            .as_ref()
            .map(|s| s.log_directory.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| sandbox_labels.get(labels::LOG_DIRECTORY_LABEL).cloned())
            .unwrap_or_default();
        let body = translate::create_body(
            &config,
            &translate::ContainerFacts {
                sandbox_id: &sandbox_id,
                sandbox_host: &sandbox.host_config.clone().unwrap_or_default(),
                log_directory: &log_directory,
                state_dir_label: &self.state_dir_label(),
                host: &self.inner.host,
                recursive_read_only_mounts: self.recursive_read_only_mounts(),
                privileged_fits_host: self.privileged_fits_host(),
                files: &translate::RealHostFiles,
            },
        )?;
        let lowers_oom_score = config
            .linux
            .as_ref()
            .and_then(|l| l.resources.as_ref())
            .is_some_and(|r| r.oom_score_adj < 0);
        if lowers_oom_score {
            // The translation raised it to 0 where the host does not allow it: said once.
            self.inner.host.warn_oom_score_adj_once();
        }
        for source in translate::mount_sources(&body) {
            // As a bind does (and containerd): a missing host directory is created.
            if !std::path::Path::new(source).exists() {
                std::fs::create_dir_all(source).map_err(|e| {
                    Error::with_source(
                        ErrorKind::InvalidArgument,
                        format!("config.mounts: creating host path {source:?}"),
                        e,
                    )
                })?;
            }
        }
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
        let state = translate::inspect_state(&inspect);
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
        let Ok(running) = self
            .list_kind(labels::TYPE_CONTAINER, &HashMap::new(), [], "", true)
            .await
        else {
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
        // A full sandbox ID filters in Docker; a prefix is matched below.
        let in_sandbox = (filter.pod_sandbox_id.len() == 64)
            .then(|| format!("{}={}", labels::SANDBOX_ID_LABEL, filter.pod_sandbox_id));
        let summaries = self
            .list_kind(
                labels::TYPE_CONTAINER,
                &filter.label_selector,
                in_sandbox,
                &filter.id,
                false,
            )
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
                let state = translate::summary_state(s.state.as_ref()) as i32;
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
        // An exited container is reported once its log is complete, as containerd does: a
        // caller that sees EXITED and reads the log (critest, `kubectl logs` of a finished
        // job) must find the last line. Only this process's own writer can be waited for.
        if inspect.state.as_ref().and_then(|s| s.running) == Some(false)
            && !self.inner.logs.wait_written(&id, LOG_DRAIN_WAIT).await
        {
            tracing::debug!(container_id = %id, "log writer still busy after the container exited");
        }
        let oom_event_seen = match &inspect.state {
            Some(ds) if translate::needs_oom_event(&inspect) => self.oom_event_seen(&id, ds).await,
            _ => false,
        };
        let image_ref = self
            .image_ref_of(inspect.image.as_deref().unwrap_or_default())
            .await;
        // The shim and Docker share the host: the process's identity is in its /proc.
        let proc_status = match translate::running_pid(&inspect) {
            Some(pid) => tokio::fs::read_to_string(format!("/proc/{pid}/status"))
                .await
                .ok(),
            None => None,
        };
        translate::container_status(
            &inspect,
            &translate::StatusFacts {
                oom_event_seen,
                image_ref,
                proc_status,
                verbose: request.verbose,
            },
        )
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
        if translate::inspect_state(&inspect) != ContainerState::ContainerRunning {
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
