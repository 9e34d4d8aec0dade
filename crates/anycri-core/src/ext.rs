//! Conveniences on top of the contract traits, for every implementation (blanket impls):
//! run a pod and a container in one call, wait for a container state, exec and collect
//! output, read a container's log, pull an image only when absent, remove a pod with
//! everything in it.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    api::*,
    error::{Error, Result},
    logs::{LogLine, parse_log},
    service::{ImageService, RuntimeService},
};

/// The IDs of a pod started together with one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodAndContainer {
    /// The pod sandbox ID.
    pub pod_sandbox_id: String,
    /// The container ID.
    pub container_id: String,
}

/// What an exec produced.
///
/// ```
/// use anycri_core::ExecOutput;
/// let out = ExecOutput { stdout: b"ok\n".to_vec(), stderr: Vec::new(), exit_code: 0 };
/// assert!(out.success());
/// assert_eq!(out.stdout_str().trim_end(), "ok");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// The exit code.
    pub exit_code: i32,
}

impl ExecOutput {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// True when the exit code is 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Helpers for any [`RuntimeService`].
///
/// Implemented for every backend (and for `Arc<dyn RuntimeService>`): bring the trait into
/// scope and call them on the runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt};
/// let fake = anycri_fake::FakeRuntime::new();
/// fake.add_image("busybox:1.36")?;
/// let runtime: Arc<dyn RuntimeService> = Arc::new(fake);
///
/// let pod = PodSandboxConfigBuilder::new("web", "default").build();
/// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
/// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
/// let out = runtime.exec_collect(&ids.container_id, &["echo", "hi"], Duration::from_secs(5)).await?;
/// assert_eq!(out.stdout_str(), "hi\n");
/// runtime.remove_pod_with_containers(&ids.pod_sandbox_id).await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait RuntimeServiceExt: RuntimeService {
    /// Run a pod sandbox with `config` on the default handler; returns its ID. As the kubelet
    /// does, its log directory is created first ([`crate::kubelet::prepare_pod_sandbox`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeServiceExt};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let logs = tempfile::tempdir().unwrap();
    /// let pod = PodSandboxConfigBuilder::new("web", "default")
    ///     .log_directory(logs.path().join("web").to_string_lossy())
    ///     .build();
    /// let pod_sandbox_id = runtime.run_pod(pod).await?;
    /// assert!(logs.path().join("web").is_dir());
    /// assert_eq!(runtime.get_pod_status(&pod_sandbox_id).await?.id, pod_sandbox_id);
    /// # Ok(()) }
    /// ```
    async fn run_pod(&self, config: PodSandboxConfig) -> Result<String> {
        crate::kubelet::prepare_pod_sandbox(&config)?;
        Ok(self
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await?
            .pod_sandbox_id)
    }

    /// Create a container in a pod, doing first what the kubelet does
    /// ([`crate::kubelet::prepare_container`]: its log directory, `user_specified_image`);
    /// returns its ID.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, api::ContainerState};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let pod_sandbox_id = runtime.run_pod(pod.clone()).await?;
    ///
    /// let config = ContainerConfigBuilder::new("app", "busybox:1.36").build();
    /// let container_id = runtime.create_container_in(&pod_sandbox_id, &pod, config).await?;
    /// let status = runtime.get_container_status(&container_id).await?;
    /// assert_eq!(status.state(), ContainerState::ContainerCreated);
    /// assert_eq!(status.labels["io.kubernetes.container.name"], "app"); // as the kubelet labels it
    /// # Ok(()) }
    /// ```
    async fn create_container_in(
        &self,
        pod_sandbox_id: &str,
        pod_config: &PodSandboxConfig,
        mut config: ContainerConfig,
    ) -> Result<String> {
        crate::kubelet::prepare_container(Some(pod_config), &mut config)?;
        Ok(self
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_sandbox_id.to_owned(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            })
            .await?
            .container_id)
    }

    /// Create and start a container in a running pod; returns its ID. A container that was
    /// created but failed to start is removed again.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, api::ContainerState};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let pod_sandbox_id = runtime.run_pod(pod.clone()).await?;
    /// // A second container in the same pod, next to whatever runs there already.
    /// let sidecar = ContainerConfigBuilder::new("sidecar", "busybox:1.36").command(["sleep", "3600"]);
    /// let id = runtime.create_and_start_container(&pod_sandbox_id, &pod, sidecar.build()).await?;
    /// assert_eq!(runtime.get_container_status(&id).await?.state(), ContainerState::ContainerRunning);
    /// # Ok(()) }
    /// ```
    async fn create_and_start_container(
        &self,
        pod_sandbox_id: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String> {
        let id = self
            .create_container_in(pod_sandbox_id, pod_config, config)
            .await?;
        if let Err(err) = self
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            let _ = self
                .remove_container(RemoveContainerRequest { container_id: id })
                .await;
            return Err(err);
        }
        Ok(id)
    }

    /// Run a pod and one container in it. On failure, whatever was created is removed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    /// println!("pod {} runs container {}", ids.pod_sandbox_id, ids.container_id);
    ///
    /// // An image that is not there: the error comes back and the pod is gone again.
    /// let pod = PodSandboxConfigBuilder::new("broken", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "registry.local/missing:1.0");
    /// let err = runtime.run_pod_and_container(pod, app.build()).await.unwrap_err();
    /// assert!(err.is_not_found(), "{err}");
    /// let pods = runtime.list_pod_sandbox(ListPodSandboxRequest::default()).await?.items;
    /// assert_eq!(pods.len(), 1);
    /// # Ok(()) }
    /// ```
    async fn run_pod_and_container(
        &self,
        pod_config: PodSandboxConfig,
        container_config: ContainerConfig,
    ) -> Result<PodAndContainer> {
        let pod_sandbox_id = self.run_pod(pod_config.clone()).await?;
        match self
            .create_and_start_container(&pod_sandbox_id, &pod_config, container_config)
            .await
        {
            Ok(container_id) => Ok(PodAndContainer {
                pod_sandbox_id,
                container_id,
            }),
            Err(err) => {
                let _ = self.remove_pod_with_containers(&pod_sandbox_id).await;
                Err(err)
            }
        }
    }

    /// The status of a container (NotFound when the runtime answers without one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::RuntimeServiceExt;
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let err = runtime.get_container_status("no-such-container").await.unwrap_err();
    /// assert!(err.is_not_found());
    /// # Ok(()) }
    /// ```
    async fn get_container_status(&self, container_id: &str) -> Result<ContainerStatus> {
        self.container_status(ContainerStatusRequest {
            container_id: container_id.to_owned(),
            verbose: false,
        })
        .await?
        .status
        .ok_or_else(|| Error::not_found(format!("container {container_id:?} has no status")))
    }

    /// The status of a pod sandbox (NotFound when the runtime answers without one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{PodSandboxConfigBuilder, RuntimeServiceExt, api::PodSandboxState};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// let id = runtime.run_pod(PodSandboxConfigBuilder::new("web", "default").build()).await?;
    /// let status = runtime.get_pod_status(&id).await?;
    /// assert_eq!(status.state(), PodSandboxState::SandboxReady);
    /// println!("pod IP: {}", status.network.map(|n| n.ip).unwrap_or_default());
    /// # Ok(()) }
    /// ```
    async fn get_pod_status(&self, pod_sandbox_id: &str) -> Result<PodSandboxStatus> {
        self.pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_sandbox_id.to_owned(),
            verbose: false,
        })
        .await?
        .status
        .ok_or_else(|| Error::not_found(format!("pod sandbox {pod_sandbox_id:?} has no status")))
    }

    /// Poll until the container is in `state`; DeadlineExceeded after `timeout`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::time::Duration;
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, api::ContainerState};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("job", "default").build();
    /// let job = ContainerConfigBuilder::new("job", "busybox:1.36").command(["sh", "-c", "exit 2"]);
    /// let ids = runtime.run_pod_and_container(pod, job.build()).await?;
    ///
    /// let done = runtime
    ///     .wait_for_container_state(&ids.container_id, ContainerState::ContainerExited, Duration::from_secs(10))
    ///     .await?;
    /// assert_eq!(done.exit_code, 2);
    /// # Ok(()) }
    /// ```
    async fn wait_for_container_state(
        &self,
        container_id: &str,
        state: ContainerState,
        timeout: Duration,
    ) -> Result<ContainerStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let status = self.get_container_status(container_id).await?;
            if status.state == state as i32 {
                return Ok(status);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(Error::deadline_exceeded(format!(
                    "container {container_id} did not reach {} within {timeout:?} (it is {})",
                    state.as_str_name(),
                    ContainerState::try_from(status.state)
                        .map(|s| s.as_str_name())
                        .unwrap_or("in an unknown state"),
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Run `cmd` in the container and collect its output (ExecSync). `timeout` of zero means
    /// none; the CRI counts whole seconds, so a timeout with a fraction of a second is
    /// rounded up (500 ms is 1 s, never "no timeout").
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use std::time::Duration;
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, ErrorKind};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let out = runtime
    ///     .exec_collect(&ids.container_id, &["sh", "-c", "echo out; echo err >&2"], Duration::from_secs(5))
    ///     .await?;
    /// assert_eq!((out.stdout_str().as_str(), out.stderr_str().as_str()), ("out\n", "err\n"));
    /// assert!(out.success());
    ///
    /// // A command that outlives its timeout is killed: DeadlineExceeded.
    /// let slow = runtime.exec_collect(&ids.container_id, &["sleep", "10"], Duration::from_millis(100)).await;
    /// assert_eq!(slow.unwrap_err().kind(), ErrorKind::DeadlineExceeded);
    /// # Ok(()) }
    /// ```
    async fn exec_collect(
        &self,
        container_id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let response = self
            .exec_sync(ExecSyncRequest {
                container_id: container_id.to_owned(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: crate::kubelet::cri_seconds(timeout),
            })
            .await?;
        Ok(ExecOutput {
            stdout: response.stdout,
            stderr: response.stderr,
            exit_code: response.exit_code,
        })
    }

    /// Read a container's log file (from the path its status reports; the file must be on this
    /// host) and parse it, partial lines joined.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeServiceExt, logs::LogStream};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let logs = tempfile::tempdir().unwrap();
    /// let pod = PodSandboxConfigBuilder::new("web", "default")
    ///     .log_directory(logs.path().to_string_lossy())
    ///     .build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36")
    ///     .command(["sh", "-c", "echo started; echo warning >&2"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// let lines = runtime.read_container_log(&ids.container_id).await?;
    /// let stdout: Vec<_> = lines.iter().filter(|l| l.stream == LogStream::Stdout).map(|l| l.content.as_str()).collect();
    /// assert_eq!(stdout, ["started"]);
    /// # Ok(()) }
    /// ```
    async fn read_container_log(&self, container_id: &str) -> Result<Vec<LogLine>> {
        let status = self.get_container_status(container_id).await?;
        if status.log_path.is_empty() {
            return Err(Error::failed_precondition(format!(
                "container {container_id} has no log path"
            )));
        }
        let text = tokio::fs::read_to_string(&status.log_path)
            .await
            .map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    crate::ErrorKind::NotFound
                } else {
                    crate::ErrorKind::Internal
                };
                Error::with_source(kind, format!("reading log file {}", status.log_path), e)
            })?;
        parse_log(&text)
    }

    /// Stop and remove every container of the pod, then stop and remove the pod. Missing
    /// objects are fine, so this can be called on a half-removed pod.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*};
    /// let runtime = anycri_fake::FakeRuntime::new();
    /// runtime.add_image("busybox:1.36")?;
    /// let pod = PodSandboxConfigBuilder::new("web", "default").build();
    /// let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    /// let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    ///
    /// runtime.remove_pod_with_containers(&ids.pod_sandbox_id).await?;
    /// runtime.remove_pod_with_containers(&ids.pod_sandbox_id).await?; // nothing left: fine
    /// assert!(runtime.list_containers(ListContainersRequest::default()).await?.containers.is_empty());
    /// # Ok(()) }
    /// ```
    async fn remove_pod_with_containers(&self, pod_sandbox_id: &str) -> Result<()> {
        let containers = self
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod_sandbox_id.to_owned(),
                    ..Default::default()
                }),
            })
            .await?
            .containers;
        for c in containers {
            ignore_not_found(
                self.stop_container(StopContainerRequest {
                    container_id: c.id.clone(),
                    timeout: 0,
                })
                .await,
            )?;
            ignore_not_found(
                self.remove_container(RemoveContainerRequest { container_id: c.id })
                    .await,
            )?;
        }
        ignore_not_found(
            self.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod_sandbox_id.to_owned(),
            })
            .await,
        )?;
        ignore_not_found(
            self.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod_sandbox_id.to_owned(),
            })
            .await,
        )?;
        Ok(())
    }
}

impl<T: RuntimeService + ?Sized> RuntimeServiceExt for T {}

fn ignore_not_found<T>(r: Result<T>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Helpers for any [`ImageService`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use anycri_core::ImageServiceExt;
/// let images = anycri_fake::FakeRuntime::new();
/// assert!(images.find_image("busybox:1.36").await?.is_none());
/// let id = images.pull_image_if_absent("busybox:1.36", None).await?;
/// // Present now: no second pull, the same ID.
/// assert_eq!(images.pull_image_if_absent("busybox:1.36", None).await?, id);
/// images.remove_image_if_present("busybox:1.36").await?;
/// images.remove_image_if_present("busybox:1.36").await?; // absent: fine
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ImageServiceExt: ImageService {
    /// The image `image` refers to, if present.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::ImageServiceExt;
    /// let images = anycri_fake::FakeRuntime::new();
    /// let id = images.add_image("registry.local/app:2.0")?;
    /// let found = images.find_image("registry.local/app:2.0").await?.expect("present");
    /// assert_eq!(found.id, id);
    /// // By ID too, as runtimes resolve references.
    /// assert!(images.find_image(&id).await?.is_some());
    /// # Ok(()) }
    /// ```
    async fn find_image(&self, image: &str) -> Result<Option<Image>> {
        Ok(self
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .image)
    }

    /// Pull `image` unless it is present; returns the image's ID (or the pulled reference).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::{ImageServiceExt, api::AuthConfig};
    /// let images = anycri_fake::FakeRuntime::new();
    /// let auth = AuthConfig { username: "robot".into(), password: "secret".into(), ..Default::default() };
    /// let image_ref = images.pull_image_if_absent("registry.local/private:1.0", Some(auth)).await?;
    /// assert!(!image_ref.is_empty());
    /// # Ok(()) }
    /// ```
    async fn pull_image_if_absent(&self, image: &str, auth: Option<AuthConfig>) -> Result<String> {
        if let Some(found) = self.find_image(image).await? {
            return Ok(found.id);
        }
        Ok(self
            .pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
                auth,
                sandbox_config: None,
            })
            .await?
            .image_ref)
    }

    /// Remove `image`; absent images are fine.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
    /// use anycri_core::ImageServiceExt;
    /// let images = anycri_fake::FakeRuntime::new();
    /// images.remove_image_if_present("never-pulled:1.0").await?;
    /// # Ok(()) }
    /// ```
    async fn remove_image_if_present(&self, image: &str) -> Result<()> {
        ignore_not_found(
            self.remove_image(RemoveImageRequest {
                image: Some(ImageSpec {
                    image: image.to_owned(),
                    ..Default::default()
                }),
            })
            .await,
        )
    }
}

impl<T: ImageService + ?Sized> ImageServiceExt for T {}
