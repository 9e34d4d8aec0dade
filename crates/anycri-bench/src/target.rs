//! The things a benchmark measures: a CRI endpoint reached through `anycri::connect`
//! (containerd, CRI-O, the Docker shim, ...) or the Docker floor — the plain Docker Engine
//! API calls that do the same work as the shim (a pause container, containers joined to
//! its namespaces; a pod's containers found by label when it is stopped or removed, as any
//! client given only the pod's ID must), so the shim's own cost reads off as a ratio. Both
//! answer the same small set of operations ([`Target`]'s methods); everything they create
//! carries the run's label and [`Target::sweep`] removes it.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, Error, ErrorKind, ImageService, ImageServiceExt,
    PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*,
};
use bollard::{
    Docker,
    container::LogOutput,
    exec::StartExecResults,
    models::{ContainerCreateBody, ExecConfig, HostConfig},
    query_parameters::{
        CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
        ListImagesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
        StatsOptionsBuilder, StopContainerOptionsBuilder,
    },
};
use futures::{StreamExt, TryStreamExt};

use crate::procstat::DaemonSpec;

/// Label key every object of a run carries; the value is the run's ID.
pub const RUN_LABEL: &str = "anycri.bench.run";
/// Label the floor puts on its objects: `pod` (pause containers) or `container`.
const FLOOR_KIND: &str = "anycri.bench.kind";
/// Label of the floor's containers: their pause container's ID.
const FLOOR_POD: &str = "anycri.bench.pod";
/// Namespace of the pods a run creates.
pub const POD_NAMESPACE: &str = "anycri-bench";
/// Makes every name a run gives unique within the process.
static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn seq() -> u64 {
    SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Prefix of the pseudo-endpoint of the plain-Docker floor.
pub const DOCKER_FLOOR_SCHEME: &str = "docker-floor://";

/// What one run's objects share: its label value, images and where pod logs go.
#[derive(Debug, Clone)]
pub struct RunEnv {
    /// The run's ID (the value of [`RUN_LABEL`]).
    pub run_id: String,
    /// Image of the containers.
    pub image: String,
    /// Pause image of the floor's sandboxes.
    pub pause_image: String,
    /// Directory under which each pod gets a log directory.
    pub log_root: PathBuf,
    /// Deadline of every call.
    pub timeout: Duration,
}

impl RunEnv {
    /// The run's label as a selector.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(RUN_LABEL.to_string(), self.run_id.clone())])
    }
}

/// A pod as the scenarios ask for it.
#[derive(Debug, Clone)]
pub struct PodHandle {
    /// Sandbox ID (the floor: the pause container's ID).
    pub id: String,
    config: PodSandboxConfig,
}

enum Driver {
    Cri {
        runtime: Arc<dyn RuntimeService>,
        image: Arc<dyn ImageService>,
    },
    Floor(Floor),
}

struct Floor {
    docker: Docker,
    /// The `oom_score_adj` the shim gives pause containers on this host, copied.
    pause_oom_score_adj: Option<i64>,
}

/// One endpoint under measurement.
pub struct Target {
    /// Short name in reports (`containerd`, `docker-shim`, `docker-floor`, ...).
    pub name: String,
    /// The endpoint URI as given.
    pub uri: String,
    /// Its processes, for the cost.
    pub daemons: DaemonSpec,
    /// Runtime name and version as it reports them.
    pub version: String,
    driver: Driver,
    env: RunEnv,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("uri", &self.uri)
            .finish()
    }
}

fn docker_err(what: &str, e: bollard::errors::Error) -> Error {
    use bollard::errors::Error as E;
    let kind = match &e {
        E::DockerResponseServerError {
            status_code: 404, ..
        } => ErrorKind::NotFound,
        E::DockerResponseServerError {
            status_code: 409, ..
        } => ErrorKind::AlreadyExists,
        E::DockerResponseServerError {
            status_code: 400, ..
        } => ErrorKind::InvalidArgument,
        _ => ErrorKind::Unknown,
    };
    Error::with_source(kind, format!("docker-floor: {what}"), e)
}

/// A short default name for an endpoint.
pub fn default_name(uri: &str) -> String {
    if uri.starts_with(DOCKER_FLOOR_SCHEME) {
        "docker-floor".into()
    } else if uri.starts_with("docker://") {
        "docker-shim".into()
    } else if uri.starts_with("fake://") {
        "fake".into()
    } else {
        let file = uri.rsplit('/').next().unwrap_or(uri);
        file.trim_end_matches(".sock").to_owned()
    }
}

impl Target {
    /// The CRI runtime behind the target (none for the Docker floor).
    pub fn runtime(&self) -> Option<Arc<dyn RuntimeService>> {
        match &self.driver {
            Driver::Cri { runtime, .. } => Some(runtime.clone()),
            Driver::Floor(_) => None,
        }
    }

    /// Connect to `uri` (anything `anycri::connect` takes, or `docker-floor:///path/to/docker.sock`).
    pub async fn connect(name: String, uri: &str, env: RunEnv) -> anycri::Result<Target> {
        if let Some(path) = uri.strip_prefix(DOCKER_FLOOR_SCHEME) {
            let path = if path.is_empty() {
                "/var/run/docker.sock"
            } else {
                path
            };
            let docker = Docker::connect_with_unix(path, 600, bollard::API_DEFAULT_VERSION)
                .map_err(|e| docker_err(&format!("connecting to {path}"), e))?
                .negotiate_version()
                .await
                .map_err(|e| docker_err(&format!("Docker at {path} does not answer"), e))?;
            let version = docker
                .version()
                .await
                .map_err(|e| docker_err("version", e))?;
            let pause_oom_score_adj = pause_oom_score_adj();
            return Ok(Target {
                name,
                uri: uri.to_owned(),
                daemons: DaemonSpec::discover(std::path::Path::new(path), false),
                version: format!(
                    "Docker Engine {} (plain API calls)",
                    version.version.unwrap_or_default()
                ),
                driver: Driver::Floor(Floor {
                    docker,
                    pause_oom_score_adj,
                }),
                env,
            });
        }
        let connected = anycri::connect(uri).await?;
        let v = connected
            .runtime
            .version(VersionRequest {
                version: "v1".into(),
            })
            .await?;
        let daemons = match anycri::Endpoint::parse(uri)? {
            anycri::Endpoint::Unix(path) => DaemonSpec::discover(&path, false),
            anycri::Endpoint::Docker { socket, .. } => DaemonSpec::discover(&socket, true),
            _ => {
                let mut spec = DaemonSpec::default();
                spec.fixed
                    .insert("anycri (in-process + harness)".into(), std::process::id());
                spec
            }
        };
        Ok(Target {
            name,
            uri: uri.to_owned(),
            daemons,
            version: format!("{} {}", v.runtime_name, v.runtime_version),
            driver: Driver::Cri {
                runtime: connected.runtime,
                image: connected.image,
            },
            env,
        })
    }

    /// Whether this is the plain-Docker floor.
    pub fn is_floor(&self) -> bool {
        matches!(self.driver, Driver::Floor(_))
    }

    async fn deadline<T>(
        &self,
        what: &str,
        fut: impl Future<Output = anycri::Result<T>>,
    ) -> anycri::Result<T> {
        match tokio::time::timeout(self.env.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::deadline_exceeded(format!(
                "{what} on {} took longer than {:?}",
                self.name, self.env.timeout
            ))),
        }
    }

    /// Make sure the images the scenarios use are present.
    pub async fn prepare_images(&self, images: &[String]) -> anycri::Result<()> {
        for image in images {
            match &self.driver {
                Driver::Cri { image: svc, .. } => {
                    self.deadline("pulling", svc.pull_image_if_absent(image, None))
                        .await
                        .map_err(|e| e.context(format!("pulling {image} on {}", self.name)))?;
                }
                Driver::Floor(f) => {
                    if f.docker.inspect_image(image).await.is_err() {
                        self.pull_image(image).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A fresh pod config (unique name and UID, the run's label, a log directory).
    fn pod_config(&self, what: &str) -> PodSandboxConfig {
        let uid = anycri::builders::new_uid();
        PodSandboxConfigBuilder::new(format!("{what}-{}", seq()), POD_NAMESPACE)
            .uid(uid.clone())
            .labels(self.env.labels())
            .log_directory(self.env.log_root.join(&uid).to_string_lossy())
            .build()
    }

    /// RunPodSandbox (the floor: create and start a pause container).
    pub async fn run_pod(&self, what: &str) -> anycri::Result<PodHandle> {
        let config = self.pod_config(what);
        let id = self
            .deadline("RunPodSandbox", async {
                match &self.driver {
                    // run_pod does what the kubelet does first (the log directory's mkdir,
                    // timed with the call).
                    Driver::Cri { runtime, .. } => runtime.run_pod(config.clone()).await,
                    Driver::Floor(f) => {
                        let mut labels = self.env.labels();
                        labels.insert(FLOOR_KIND.into(), "pod".into());
                        let body = ContainerCreateBody {
                            image: Some(self.env.pause_image.clone()),
                            labels: Some(labels),
                            host_config: Some(HostConfig {
                                network_mode: Some("bridge".into()),
                                ipc_mode: Some("shareable".into()),
                                oom_score_adj: f.pause_oom_score_adj,
                                ..Default::default()
                            }),
                            ..Default::default()
                        };
                        let name = floor_name(&config);
                        let id = f.create(&name, body).await?;
                        f.docker
                            .start_container(&id, None)
                            .await
                            .map_err(|e| docker_err("start pause", e))?;
                        Ok(id)
                    }
                }
            })
            .await?;
        Ok(PodHandle { id, config })
    }

    /// PodSandboxStatus (the floor: inspect the pause container).
    pub async fn pod_status(&self, pod: &str) -> anycri::Result<()> {
        self.deadline("PodSandboxStatus", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime.get_pod_status(pod).await.map(drop),
                Driver::Floor(f) => f.inspect(pod).await,
            }
        })
        .await
    }

    /// StopPodSandbox (the floor: find the pod's containers by label, as a client given only
    /// the pod's ID must, stop them at once, concurrently, then the pause container with a
    /// 10 s grace, as the shim does).
    pub async fn stop_pod(&self, pod: &str) -> anycri::Result<()> {
        self.deadline("StopPodSandbox", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .stop_pod_sandbox(StopPodSandboxRequest {
                        pod_sandbox_id: pod.to_owned(),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => {
                    let members = f.members(pod).await?;
                    futures::future::try_join_all(members.iter().map(|c| f.stop(c, 0))).await?;
                    f.stop(pod, 10).await
                }
            }
        })
        .await
    }

    /// RemovePodSandbox (the floor: find the pod's containers by label, remove them,
    /// concurrently, then the pause container).
    pub async fn remove_pod(&self, pod: &str) -> anycri::Result<()> {
        self.deadline("RemovePodSandbox", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .remove_pod_sandbox(RemovePodSandboxRequest {
                        pod_sandbox_id: pod.to_owned(),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => {
                    let members = f.members(pod).await?;
                    futures::future::try_join_all(members.iter().map(|c| f.remove(c))).await?;
                    f.remove(pod).await
                }
            }
        })
        .await
    }

    /// CreateContainer of a `sleep 3600` container in `pod` (the floor: a container joined
    /// to the pause container's network and IPC namespaces).
    pub async fn create_container(&self, pod: &PodHandle, what: &str) -> anycri::Result<String> {
        let name = format!("{what}-{}", seq());
        self.deadline("CreateContainer", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => {
                    let config = ContainerConfigBuilder::new(&name, &self.env.image)
                        .command(["sleep", "3600"])
                        .labels(self.env.labels())
                        .build();
                    runtime
                        .create_container_in(&pod.id, &pod.config, config)
                        .await
                }
                Driver::Floor(f) => {
                    let join = format!("container:{}", pod.id);
                    let mut labels = self.env.labels();
                    labels.insert(FLOOR_KIND.into(), "container".into());
                    labels.insert(FLOOR_POD.into(), pod.id.clone());
                    let body = ContainerCreateBody {
                        image: Some(self.env.image.clone()),
                        entrypoint: Some(vec!["sleep".into(), "3600".into()]),
                        labels: Some(labels),
                        host_config: Some(HostConfig {
                            network_mode: Some(join.clone()),
                            ipc_mode: Some(join),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    let docker_name = format!("{}-{name}", floor_name(&pod.config));
                    f.create(&docker_name, body).await
                }
            }
        })
        .await
    }

    /// StartContainer.
    pub async fn start_container(&self, id: &str) -> anycri::Result<()> {
        self.deadline("StartContainer", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .start_container(StartContainerRequest {
                        container_id: id.to_owned(),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => f
                    .docker
                    .start_container(id, None)
                    .await
                    .map_err(|e| docker_err("start", e)),
            }
        })
        .await
    }

    /// ContainerStatus (the floor: inspect).
    pub async fn container_status(&self, id: &str) -> anycri::Result<()> {
        self.deadline("ContainerStatus", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime.get_container_status(id).await.map(drop),
                Driver::Floor(f) => f.inspect(id).await,
            }
        })
        .await
    }

    /// StopContainer with `grace` seconds.
    pub async fn stop_container(&self, id: &str, grace: i64) -> anycri::Result<()> {
        self.deadline("StopContainer", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .stop_container(StopContainerRequest {
                        container_id: id.to_owned(),
                        timeout: grace,
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => f.stop(id, grace as i32).await,
            }
        })
        .await
    }

    /// RemoveContainer.
    pub async fn remove_container(&self, id: &str) -> anycri::Result<()> {
        self.deadline("RemoveContainer", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .remove_container(RemoveContainerRequest {
                        container_id: id.to_owned(),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => f.remove(id).await,
            }
        })
        .await
    }

    /// ListContainers of the run's containers; how many.
    pub async fn list_containers(&self) -> anycri::Result<usize> {
        self.deadline("ListContainers", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => Ok(runtime
                    .list_containers(ListContainersRequest {
                        filter: Some(ContainerFilter {
                            label_selector: self.env.labels(),
                            ..Default::default()
                        }),
                    })
                    .await?
                    .containers
                    .len()),
                Driver::Floor(f) => {
                    let n = f.list(&self.env, Some("container"), true).await?.len();
                    Ok(n)
                }
            }
        })
        .await
    }

    /// ListPodSandbox of the run's pods; how many.
    pub async fn list_pods(&self) -> anycri::Result<usize> {
        self.deadline("ListPodSandbox", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => Ok(runtime
                    .list_pod_sandbox(ListPodSandboxRequest {
                        filter: Some(PodSandboxFilter {
                            label_selector: self.env.labels(),
                            ..Default::default()
                        }),
                    })
                    .await?
                    .items
                    .len()),
                Driver::Floor(f) => Ok(f.list(&self.env, Some("pod"), true).await?.len()),
            }
        })
        .await
    }

    /// ListContainerStats of the run's containers (the floor: one one-shot `stats` call per
    /// running container, all at once); how many.
    pub async fn list_container_stats(&self) -> anycri::Result<usize> {
        self.deadline("ListContainerStats", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => Ok(runtime
                    .list_container_stats(ListContainerStatsRequest {
                        filter: Some(ContainerStatsFilter {
                            label_selector: self.env.labels(),
                            ..Default::default()
                        }),
                    })
                    .await?
                    .stats
                    .len()),
                Driver::Floor(f) => {
                    let ids = f.list(&self.env, Some("container"), false).await?;
                    let n = ids.len();
                    futures::stream::iter(ids)
                        .map(|id| async move { f.stats(&id).await })
                        .buffer_unordered(n.max(1))
                        .try_collect::<Vec<()>>()
                        .await?;
                    Ok(n)
                }
            }
        })
        .await
    }

    /// ContainerStats of one container.
    pub async fn container_stats(&self, id: &str) -> anycri::Result<()> {
        self.deadline("ContainerStats", async {
            match &self.driver {
                Driver::Cri { runtime, .. } => runtime
                    .container_stats(ContainerStatsRequest {
                        container_id: id.to_owned(),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => f.stats(id).await,
            }
        })
        .await
    }

    /// ExecSync of `cmd`; fails unless it exits 0.
    pub async fn exec_sync(&self, id: &str, cmd: &[&str]) -> anycri::Result<()> {
        let code = self
            .deadline("ExecSync", async {
                match &self.driver {
                    Driver::Cri { runtime, .. } => Ok(runtime
                        .exec_sync(ExecSyncRequest {
                            container_id: id.to_owned(),
                            cmd: cmd.iter().map(|s| s.to_string()).collect(),
                            timeout: 10,
                        })
                        .await?
                        .exit_code as i64),
                    Driver::Floor(f) => f.exec(id, cmd).await,
                }
            })
            .await?;
        if code != 0 {
            return Err(Error::unknown(format!("{cmd:?} exited with {code}")));
        }
        Ok(())
    }

    /// PullImage.
    pub async fn pull_image(&self, image: &str) -> anycri::Result<()> {
        self.deadline("PullImage", async {
            match &self.driver {
                Driver::Cri { image: svc, .. } => svc
                    .pull_image(PullImageRequest {
                        image: Some(ImageSpec {
                            image: image.to_owned(),
                            ..Default::default()
                        }),
                        auth: None,
                        sandbox_config: None,
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => {
                    let named = match anycri::image_ref::parse_reference(image)? {
                        anycri::image_ref::ImageRef::Named(named) => named,
                        anycri::image_ref::ImageRef::Id(id) => {
                            return Err(Error::invalid_argument(format!(
                                "docker-floor: {id} is an image ID; pull a repository reference"
                            )));
                        }
                    };
                    let options = CreateImageOptionsBuilder::new()
                        .from_image(&named.repo)
                        .tag(named.tag_or_digest())
                        .build();
                    let mut progress = f.docker.create_image(Some(options), None, None);
                    while let Some(item) = progress.next().await {
                        item.map_err(|e| docker_err("pull", e))?;
                    }
                    Ok(())
                }
            }
        })
        .await
    }

    /// ImageStatus (fails when the image is absent).
    pub async fn image_status(&self, image: &str) -> anycri::Result<()> {
        self.deadline("ImageStatus", async {
            match &self.driver {
                Driver::Cri { image: svc, .. } => {
                    let r = svc
                        .image_status(ImageStatusRequest {
                            image: Some(ImageSpec {
                                image: image.to_owned(),
                                ..Default::default()
                            }),
                            verbose: false,
                        })
                        .await?;
                    if r.image.is_none() {
                        return Err(Error::not_found(format!("image {image} is not present")));
                    }
                    Ok(())
                }
                Driver::Floor(f) => f
                    .docker
                    .inspect_image(image)
                    .await
                    .map(drop)
                    .map_err(|e| docker_err("inspect image", e)),
            }
        })
        .await
    }

    /// ListImages; how many.
    pub async fn list_images(&self) -> anycri::Result<usize> {
        self.deadline("ListImages", async {
            match &self.driver {
                Driver::Cri { image: svc, .. } => Ok(svc
                    .list_images(ListImagesRequest::default())
                    .await?
                    .images
                    .len()),
                Driver::Floor(f) => Ok(f
                    .docker
                    .list_images(Some(ListImagesOptionsBuilder::default().build()))
                    .await
                    .map_err(|e| docker_err("list images", e))?
                    .len()),
            }
        })
        .await
    }

    /// RemoveImage.
    pub async fn remove_image(&self, image: &str) -> anycri::Result<()> {
        self.deadline("RemoveImage", async {
            match &self.driver {
                Driver::Cri { image: svc, .. } => svc
                    .remove_image(RemoveImageRequest {
                        image: Some(ImageSpec {
                            image: image.to_owned(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .map(drop),
                Driver::Floor(f) => f
                    .docker
                    .remove_image(
                        image,
                        Some(RemoveImageOptionsBuilder::default().build()),
                        None,
                    )
                    .await
                    .map(drop)
                    .map_err(|e| docker_err("remove image", e)),
            }
        })
        .await
    }

    /// Remove everything of the run on this target: its pods with their containers, then
    /// containers left outside pods. Returns how many objects were removed and the errors.
    pub async fn sweep(&self) -> (usize, Vec<String>) {
        let mut removed = 0;
        let mut errors = Vec::new();
        match &self.driver {
            Driver::Cri { runtime, .. } => {
                let runtime = runtime.as_ref();
                let pods = runtime
                    .list_pod_sandbox(ListPodSandboxRequest {
                        filter: Some(PodSandboxFilter {
                            label_selector: self.env.labels(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .map(|r| r.items);
                match pods {
                    Ok(pods) => {
                        let results: Vec<_> = futures::stream::iter(pods)
                            .map(|p| async move {
                                runtime
                                    .remove_pod_with_containers(&p.id)
                                    .await
                                    .map_err(|e| format!("removing pod {}: {e}", p.id))
                            })
                            .buffer_unordered(4)
                            .collect()
                            .await;
                        for r in results {
                            match r {
                                Ok(()) => removed += 1,
                                Err(e) => errors.push(e),
                            }
                        }
                    }
                    Err(e) => errors.push(format!("listing pods: {e}")),
                }
                match runtime
                    .list_containers(ListContainersRequest {
                        filter: Some(ContainerFilter {
                            label_selector: self.env.labels(),
                            ..Default::default()
                        }),
                    })
                    .await
                {
                    Ok(r) => {
                        for c in r.containers {
                            let _ = runtime
                                .stop_container(StopContainerRequest {
                                    container_id: c.id.clone(),
                                    timeout: 0,
                                })
                                .await;
                            match runtime
                                .remove_container(RemoveContainerRequest {
                                    container_id: c.id.clone(),
                                })
                                .await
                            {
                                Ok(_) => removed += 1,
                                Err(e) if e.is_not_found() => {}
                                Err(e) => errors.push(format!("removing container {}: {e}", c.id)),
                            }
                        }
                    }
                    Err(e) => errors.push(format!("listing containers: {e}")),
                }
            }
            Driver::Floor(f) => match f.list(&self.env, None, true).await {
                Ok(ids) => {
                    // Joined containers first, then the pause containers they depend on.
                    let pods: Vec<String> = f
                        .list(&self.env, Some("pod"), true)
                        .await
                        .unwrap_or_default();
                    let (pauses, others): (Vec<_>, Vec<_>) =
                        ids.into_iter().partition(|id| pods.contains(id));
                    for group in [others, pauses] {
                        let results: Vec<_> = futures::stream::iter(group)
                            .map(|id| async move { f.remove(&id).await.map_err(|e| e.to_string()) })
                            .buffer_unordered(4)
                            .collect()
                            .await;
                        for r in results {
                            match r {
                                Ok(()) => removed += 1,
                                Err(e) => errors.push(e),
                            }
                        }
                    }
                }
                Err(e) => errors.push(format!("listing containers: {e}")),
            },
        }
        (removed, errors)
    }

    /// How many of the run's objects (pods and containers) the target still holds.
    pub async fn leftovers(&self) -> anycri::Result<usize> {
        match &self.driver {
            Driver::Cri { .. } => Ok(self.list_pods().await? + self.list_containers().await?),
            Driver::Floor(f) => Ok(f.list(&self.env, None, true).await?.len()),
        }
    }
}

/// The pause container's `oom_score_adj` the shim would use: -998 only where this process
/// may lower it (CAP_SYS_RESOURCE in its effective set), as the shim detects.
fn pause_oom_score_adj() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_RESOURCE: u32 = 24;
    (eff & (1 << CAP_SYS_RESOURCE) != 0).then_some(-998)
}

/// A Docker name for a floor object of `config`'s pod.
fn floor_name(config: &PodSandboxConfig) -> String {
    let m = config.metadata.clone().unwrap_or_default();
    format!("anycri-bench-floor_{}_{}", m.name, m.uid)
}

impl Floor {
    async fn create(&self, name: &str, body: ContainerCreateBody) -> anycri::Result<String> {
        Ok(self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(name).build()),
                body,
            )
            .await
            .map_err(|e| docker_err("create", e))?
            .id)
    }

    /// IDs of the containers joined to pause container `pod` (one label-filtered list).
    async fn members(&self, pod: &str) -> anycri::Result<Vec<String>> {
        let filters = HashMap::from([("label", vec![format!("{FLOOR_POD}={pod}")])]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| docker_err("list the pod's containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    async fn inspect(&self, id: &str) -> anycri::Result<()> {
        self.docker
            .inspect_container(id, None)
            .await
            .map(drop)
            .map_err(|e| docker_err("inspect", e))
    }

    async fn stop(&self, id: &str, grace: i32) -> anycri::Result<()> {
        match self
            .docker
            .stop_container(
                id,
                Some(StopContainerOptionsBuilder::default().t(grace).build()),
            )
            .await
        {
            Ok(()) => Ok(()),
            // Already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(docker_err("stop", e)),
        }
    }

    async fn remove(&self, id: &str) -> anycri::Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(docker_err("remove", e)),
        }
    }

    async fn stats(&self, id: &str) -> anycri::Result<()> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        self.docker
            .stats(id, Some(options))
            .try_next()
            .await
            .map(drop)
            .map_err(|e| docker_err("stats", e))
    }

    async fn exec(&self, id: &str, cmd: &[&str]) -> anycri::Result<i64> {
        let exec = self
            .docker
            .create_exec(
                id,
                ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_err("create exec", e))?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| docker_err("start exec", e))?
        else {
            return Err(Error::internal("docker-floor: exec started detached"));
        };
        while let Some(chunk) = output.next().await {
            if let LogOutput::StdIn { .. } = chunk.map_err(|e| docker_err("exec output", e))? {}
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| docker_err("inspect exec", e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    /// IDs of the floor's containers of the run (`kind`: `pod` or `container`; all when None).
    async fn list(
        &self,
        env: &RunEnv,
        kind: Option<&str>,
        all: bool,
    ) -> anycri::Result<Vec<String>> {
        // The floor's own objects only: the Docker shim's, on the same engine, carry the
        // run's label too.
        let wanted = vec![
            format!("{RUN_LABEL}={}", env.run_id),
            match kind {
                Some(k) => format!("{FLOOR_KIND}={k}"),
                None => FLOOR_KIND.to_owned(),
            },
        ];
        let filters = HashMap::from([("label", wanted)]);
        let list = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(all)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| docker_err("list containers", e))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(
            default_name("unix:///var/tmp/anycri-env/containerd/containerd.sock"),
            "containerd"
        );
        assert_eq!(
            default_name("docker:///var/run/docker.sock?pause_image=x"),
            "docker-shim"
        );
        assert_eq!(
            default_name("docker-floor:///var/run/docker.sock"),
            "docker-floor"
        );
        assert_eq!(default_name("fake://"), "fake");
    }
}
