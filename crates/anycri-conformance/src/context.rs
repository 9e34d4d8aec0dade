//! What a check works with: the runtime and image services, the run's features and images,
//! and helpers that create pods and containers already labelled for the run and the check,
//! so the runner can remove everything a check left behind (by label) whatever its outcome.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anycri::{
    ContainerConfigBuilder, Error, ImageService, ImageServiceExt, PodSandboxConfigBuilder,
    RuntimeService, RuntimeServiceExt, api::*,
};

use crate::{
    CHECK_LABEL, RUN_LABEL,
    features::Features,
    images::{ImageRef, TestImages},
};

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The runtime misbehaved: what was expected and what happened.
    Fail(String),
    /// The check found at run time that it cannot run here, and why.
    Skip(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fail(format!("{} error: {e}", e.kind().as_str()))
    }
}

/// What a check returns.
pub type CheckResult = Result<(), Failure>;

/// Adds what the check was doing to a runtime error.
pub trait Step<T> {
    /// Fail with `what` and the runtime's error.
    fn step(self, what: &str) -> Result<T, Failure>;
}

impl<T> Step<T> for anycri::Result<T> {
    fn step(self, what: &str) -> Result<T, Failure> {
        self.map_err(|e| Failure::Fail(format!("{what}: {} error: {e}", e.kind().as_str())))
    }
}

/// A check's view of the run. Cheap to clone.
#[derive(Clone)]
pub struct TestContext {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    features: Arc<Features>,
    busybox: String,
    run_id: String,
    check: String,
    log_dir: PathBuf,
    counter: AtomicU32,
    host_paths: Mutex<Vec<PathBuf>>,
    host_mounts: Mutex<Vec<PathBuf>>,
    cgroup_dirs: Mutex<Vec<PathBuf>>,
}

/// A running pod with one container, as most checks start.
#[derive(Debug, Clone)]
pub struct Running {
    /// The pod's ID.
    pub pod: String,
    /// The pod's config.
    pub pod_config: PodSandboxConfig,
    /// The container's ID.
    pub container: String,
}

/// The label value for a check name (label values stay short and simple).
pub(crate) fn check_label_value(check: &str) -> String {
    check.replace("::", ".")
}

impl TestContext {
    pub(crate) fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        features: Arc<Features>,
        run_id: &str,
        check: &str,
        log_dir: &Path,
    ) -> Self {
        TestContext {
            inner: Arc::new(Inner {
                runtime,
                images,
                busybox: features.images.busybox.reference(),
                features,
                run_id: run_id.to_owned(),
                check: check.to_owned(),
                log_dir: log_dir.to_owned(),
                counter: AtomicU32::new(0),
                host_paths: Mutex::new(Vec::new()),
                host_mounts: Mutex::new(Vec::new()),
                cgroup_dirs: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The runtime service.
    pub fn rt(&self) -> &dyn RuntimeService {
        self.inner.runtime.as_ref()
    }

    /// The image service.
    pub fn img(&self) -> &dyn ImageService {
        self.inner.images.as_ref()
    }

    /// The run's features.
    pub fn features(&self) -> &Features {
        &self.inner.features
    }

    /// The run's test images.
    pub fn images(&self) -> &TestImages {
        &self.inner.features.images
    }

    /// The busybox-like image.
    pub fn busybox(&self) -> &str {
        &self.inner.busybox
    }

    /// The reference of the test image of `kind`; fails the check (it should have been
    /// skipped by its needs) when the set has none.
    pub fn image(&self, kind: crate::images::ImageKind) -> Result<String, Failure> {
        crate::images::reference(self.images(), kind).ok_or_else(|| {
            Failure::Fail(format!(
                "no {} test image, but the check does not say it needs one",
                kind.describe()
            ))
        })
    }

    /// The test image of `kind` (see [`TestContext::image`]).
    pub fn image_ref(&self, kind: crate::images::ImageKind) -> Result<&ImageRef, Failure> {
        crate::images::image(self.images(), kind).ok_or_else(|| {
            Failure::Fail(format!(
                "no {} test image, but the check does not say it needs one",
                kind.describe()
            ))
        })
    }

    /// The run's ID.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The labels every object of this check carries.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (RUN_LABEL.to_owned(), self.inner.run_id.clone()),
            (CHECK_LABEL.to_owned(), check_label_value(&self.inner.check)),
        ])
    }

    fn unique(&self, what: &str) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let last = self.inner.check.rsplit("::").next().unwrap_or("check");
        format!("{}-{what}{n}", last.replace('_', "-"))
    }

    /// A pod config: unique name, namespace `anycri-conformance`, the run's labels, a log
    /// directory of its own.
    pub fn pod(&self) -> PodSandboxConfigBuilder {
        let name = self.unique("pod");
        let b = PodSandboxConfigBuilder::new(name, "anycri-conformance").labels(self.labels());
        let uid = b.clone().build().metadata.unwrap_or_default().uid;
        b.log_directory(self.inner.log_dir.join(uid).to_string_lossy())
    }

    /// A container config on the busybox image running `sleep 3600`, with the run's labels.
    pub fn container(&self) -> ContainerConfigBuilder {
        self.container_on(self.busybox())
    }

    /// A container config on `image` running `sleep 3600`, with the run's labels.
    pub fn container_on(&self, image: &str) -> ContainerConfigBuilder {
        ContainerConfigBuilder::new(self.unique("ctr"), image)
            .command(["sleep", "3600"])
            .labels(self.labels())
    }

    /// Run a pod sandbox.
    pub async fn run_pod(&self, config: &PodSandboxConfig) -> Result<String, Failure> {
        self.rt()
            .run_pod(config.clone())
            .await
            .step("RunPodSandbox")
    }

    /// Create (not start) a container in a pod.
    pub async fn create(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, Failure> {
        self.rt()
            .create_container_in(pod, pod_config, config)
            .await
            .step("CreateContainer")
    }

    /// Start a created container.
    pub async fn start(&self, id: &str) -> CheckResult {
        self.rt()
            .start_container(StartContainerRequest {
                container_id: id.to_owned(),
            })
            .await
            .step("StartContainer")?;
        Ok(())
    }

    /// Create and start a container in a pod.
    pub async fn create_start(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, Failure> {
        let id = self.create(pod, pod_config, config).await?;
        self.start(&id).await?;
        Ok(id)
    }

    /// Run a pod from `pod` and one container from `container` in it.
    pub async fn run(
        &self,
        pod: PodSandboxConfig,
        container: ContainerConfig,
    ) -> Result<Running, Failure> {
        let pod_id = self.run_pod(&pod).await?;
        let container = self.create_start(&pod_id, &pod, container).await?;
        Ok(Running {
            pod: pod_id,
            pod_config: pod,
            container,
        })
    }

    /// A default pod with a `sleep 3600` busybox container.
    pub async fn run_sleeper(&self) -> Result<Running, Failure> {
        self.run(self.pod().build(), self.container().build()).await
    }

    /// A default pod with a busybox container that sleeps and exits on SIGTERM, for checks
    /// that stop or remove a pod or container while it runs. The kubelet stops containers
    /// (with their grace period) before it stops or removes their pod, so runtimes may spend
    /// the call's whole deadline waiting on a process that ignores SIGTERM (CRI-O gives the
    /// containers of a pod it stops the request's deadline as their grace period); a
    /// `sleep` as PID 1 ignores it.
    pub async fn run_term_sleeper(&self) -> Result<Running, Failure> {
        let container = self
            .container()
            .command(["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"])
            .build();
        self.run(self.pod().build(), container).await
    }

    /// Stop a container at once (grace 0).
    pub async fn stop(&self, id: &str) -> CheckResult {
        self.rt()
            .stop_container(StopContainerRequest {
                container_id: id.to_owned(),
                timeout: 0,
            })
            .await
            .step("StopContainer")?;
        Ok(())
    }

    /// A container's status.
    pub async fn status(&self, id: &str) -> Result<ContainerStatus, Failure> {
        self.rt()
            .get_container_status(id)
            .await
            .step("ContainerStatus")
    }

    /// A pod's status.
    pub async fn pod_status(&self, id: &str) -> Result<PodSandboxStatus, Failure> {
        self.rt().get_pod_status(id).await.step("PodSandboxStatus")
    }

    /// Wait (up to 60 s) for a container to reach `state`.
    pub async fn wait_state(
        &self,
        id: &str,
        state: ContainerState,
    ) -> Result<ContainerStatus, Failure> {
        self.rt()
            .wait_for_container_state(id, state, Duration::from_secs(60))
            .await
            .step("waiting for the container state")
    }

    /// Run `cmd` (ExecSync, 30 s timeout) and return its output, whatever the exit code.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> Result<anycri::ExecOutput, Failure> {
        self.rt()
            .exec_collect(id, cmd, Duration::from_secs(30))
            .await
            .step(&format!("ExecSync {cmd:?}"))
    }

    /// Run `sh -c script` and return its stdout; a non-zero exit fails the check.
    pub async fn sh(&self, id: &str, script: &str) -> Result<String, Failure> {
        let out = self.exec(id, &["sh", "-c", script]).await?;
        ensure!(
            out.success(),
            "`{script}` exited {} (stdout {:?}, stderr {:?})",
            out.exit_code,
            out.stdout_str(),
            out.stderr_str()
        );
        Ok(out.stdout_str())
    }

    /// A fresh directory on the host, removed after the check.
    pub fn host_dir(&self) -> Result<PathBuf, Failure> {
        let dir = self
            .inner
            .log_dir
            .join("host")
            .join(anycri::builders::new_uid());
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::Fail(format!("creating {}: {e}", dir.display())))?;
        self.register_host_path(&dir);
        Ok(dir)
    }

    /// Remove `path` from the host after the check.
    pub fn register_host_path(&self, path: &Path) {
        lock(&self.inner.host_paths).push(path.to_owned());
    }

    /// Unmount `path` on the host after the check (before host paths are removed).
    pub fn register_host_mount(&self, path: &Path) {
        lock(&self.inner.host_mounts).push(path.to_owned());
    }

    /// A pod config with a cgroup parent of its own, as the kubelet sets one (some runtimes
    /// report pod stats only then). The cgroupfs directories are removed after the check.
    pub fn pod_with_cgroup_parent(&self) -> PodSandboxConfigBuilder {
        let b = self.pod();
        let uid = b.clone().build().metadata.unwrap_or_default().uid;
        let systemd = self
            .features()
            .runtime
            .as_ref()
            .and_then(|r| r.cgroup_driver)
            == Some(anycri::capabilities::CgroupDriverKind::Systemd);
        if systemd {
            let slice = format!("anycri_conformance-pod{}.slice", uid.replace('-', "_"));
            return b.cgroup_parent(slice);
        }
        let parent = format!("/anycri-conformance/pod{uid}");
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            let mut dirs = lock(&self.inner.cgroup_dirs);
            for e in entries.flatten() {
                let base = e.path();
                dirs.push(base.join(parent.trim_start_matches('/')));
            }
            dirs.push(PathBuf::from("/sys/fs/cgroup").join(parent.trim_start_matches('/')));
        }
        b.cgroup_parent(parent)
    }

    /// Pull `image` unless present.
    pub async fn ensure_image(&self, image: &str) -> CheckResult {
        self.img()
            .pull_image_if_absent(image, None)
            .await
            .step(&format!("pulling {image}"))?;
        Ok(())
    }

    /// Remove what this check left: its pods and containers (by label), host mounts and paths.
    pub(crate) async fn cleanup(&self) -> Vec<String> {
        let mut problems = sweep(
            self.rt(),
            (CHECK_LABEL, &check_label_value(&self.inner.check)),
            (RUN_LABEL, &self.inner.run_id),
        )
        .await;
        for m in lock(&self.inner.host_mounts).drain(..).rev() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&m)
                .status();
        }
        // Empty cgroup directories go with rmdir; their files cannot be unlinked.
        for d in lock(&self.inner.cgroup_dirs).drain(..) {
            let _ = std::fs::remove_dir(&d);
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        for p in lock(&self.inner.host_paths).drain(..) {
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if let Err(e) = r
                && e.kind() != std::io::ErrorKind::NotFound
            {
                problems.push(format!("removing {}: {e}", p.display()));
            }
        }
        problems
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remove every pod and container carrying all `labels`; returns what could not be removed.
pub(crate) async fn sweep(
    rt: &dyn RuntimeService,
    a: (&str, &str),
    b: (&str, &str),
) -> Vec<String> {
    let selector = HashMap::from([
        (a.0.to_owned(), a.1.to_owned()),
        (b.0.to_owned(), b.1.to_owned()),
    ]);
    let mut problems = Vec::new();
    match rt
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }),
        })
        .await
    {
        Ok(r) => {
            for c in r.containers {
                let _ = rt
                    .stop_container(StopContainerRequest {
                        container_id: c.id.clone(),
                        timeout: 0,
                    })
                    .await;
                if let Err(e) = rt
                    .remove_container(RemoveContainerRequest {
                        container_id: c.id.clone(),
                    })
                    .await
                    && !e.is_not_found()
                {
                    problems.push(format!("removing container {}: {e}", c.id));
                }
            }
        }
        Err(e) => problems.push(format!("listing containers to remove: {e}")),
    }
    match rt
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: selector,
                ..Default::default()
            }),
        })
        .await
    {
        Ok(r) => {
            for p in r.items {
                if let Err(e) = rt.remove_pod_with_containers(&p.id).await {
                    problems.push(format!("removing pod {}: {e}", p.id));
                }
            }
        }
        Err(e) => problems.push(format!("listing pods to remove: {e}")),
    }
    problems
}
