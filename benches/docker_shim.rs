//! The cost of the Docker shim: each CRI operation through the in-process
//! [`anycri::docker::DockerRuntime`] against the plain Docker API calls that do the same work
//! (the "floor", made with bollard on the same socket), and the same operation through
//! containerd's CRI ([`anycri::grpc::GrpcRuntime`]), all in one run. One criterion group per
//! operation, with the functions `shim`, `floor` and `containerd`:
//!
//! | group                  | shim                                  | floor                                              |
//! |------------------------|---------------------------------------|----------------------------------------------------|
//! | `RunPodSandbox`        | RunPodSandbox                         | create + start of a pause container                |
//! | `CreateStartContainer` | CreateContainer + StartContainer      | create (`network_mode`/`ipc_mode` `container:<pause>`) + start |
//! | `StopPodSandbox`       | StopPodSandbox of an empty pod        | stop of a pause container                          |
//! | `RemovePodSandbox`     | RemovePodSandbox of a stopped pod     | remove of a stopped pause container                |
//! | `PodSandboxStatus`     | PodSandboxStatus                      | one `inspect_container`                            |
//! | `ContainerStatus`      | ContainerStatus                       | one `inspect_container`                            |
//! | `ImageStatus`          | ImageStatus                           | one `inspect_image`                                |
//! | `ListImages`           | ListImages                            | one `list_images`                                  |
//! | `ListContainers_100`   | ListContainers (label selector), 100 created containers | one `list_containers` with the same label filters |
//! | `ListContainerStats_20`| ListContainerStats, 20 running containers | 20 one-shot `stats` at once, no layer sizes |
//!
//! The lifecycle groups use `iter_custom` and time only the operation: what an iteration
//! needs first (a pod to stop, a stopped pod to remove) is made before the clock starts and
//! what it created is removed after it stops. Those groups take 10 samples in flat sampling
//! mode, so the whole bench takes a few minutes.
//!
//! Everything the bench creates is labelled `anycri.bench=docker_shim` and removed at the
//! end of each group by a guard that lists by that label (also when a group panics halfway);
//! leftovers of an interrupted run are removed at the start.
//!
//! Needs Docker and containerd from `scripts/runtime-env up` (`DOCKER_ENDPOINT`,
//! `CONTAINERD_ENDPOINT`, `ANYCRI_PAUSE_IMAGE`, `ANYCRI_TEST_IMAGE`, from the environment or
//! the env file it writes); without them the bench prints why and exits successfully.
//!
//! ```text
//! cargo bench --bench docker_shim
//! cargo bench --bench docker_shim -- ContainerStatus   # one group
//! ```

use anycri_testenv::env_value;
use std::{
    collections::HashMap,
    hint::black_box,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anycri::{
    ContainerConfigBuilder, ImageService, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
    api::*,
    docker::{DockerRuntime, labels},
    grpc::GrpcRuntime,
};
use bollard::{
    Docker,
    models::{ContainerCreateBody, HostConfig},
    query_parameters::{
        CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
        ListImagesOptionsBuilder, RemoveContainerOptionsBuilder, StatsOptionsBuilder,
        StopContainerOptionsBuilder,
    },
};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use futures::{StreamExt, TryStreamExt};
use tokio::runtime::Runtime;

const LABEL_KEY: &str = "anycri.bench";
const LABEL_VALUE: &str = "docker_shim";
const LIST_CONTAINERS: usize = 100;
const STATS_CONTAINERS: usize = 20;
/// Grace period of the pause container's stop, as the shim's StopPodSandbox gives it.
const PAUSE_STOP_GRACE: i32 = 10;
/// Pause after each lifecycle iteration's cleanup (untimed).
const SETTLE: Duration = Duration::from_millis(50);

fn bench_labels() -> HashMap<String, String> {
    HashMap::from([(LABEL_KEY.to_string(), LABEL_VALUE.to_string())])
}

/// The three ways to the runtimes and what the operations need.
struct Ctx {
    shim: Arc<DockerRuntime>,
    docker: Docker,
    cri: Arc<GrpcRuntime>,
    pause: String,
    image: String,
    /// Where the pods' log directories go (removed at the end).
    log_root: PathBuf,
    /// The `oom_score_adj` the shim gives pause containers on this host (the floor does too).
    pause_oom_score_adj: Option<i64>,
    seq: AtomicU64,
}

impl Ctx {
    async fn connect() -> Result<Ctx, String> {
        let socket = env_value("DOCKER_ENDPOINT")
            .ok_or("DOCKER_ENDPOINT is not set and no runtime-env file was found")?;
        let cri_endpoint = env_value("CONTAINERD_ENDPOINT")
            .ok_or("CONTAINERD_ENDPOINT is not set and no runtime-env file was found")?;
        let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
        let pause = env_value("ANYCRI_PAUSE_IMAGE")
            .unwrap_or_else(|| format!("{registry}/anycri/pause:1.0"));
        let image = env_value("ANYCRI_TEST_IMAGE")
            .unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"));
        let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
        let log_root =
            PathBuf::from(env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| format!("{env_dir}/logs")))
                .join("docker_shim_bench");

        let path = socket.trim_start_matches("unix://").to_owned();
        let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| format!("Docker at {socket}: {e}"))?
            .negotiate_version()
            .await
            .map_err(|e| format!("Docker at {socket} does not answer: {e}"))?;
        let shim = DockerRuntime::builder(&socket)
            .state_dir(format!("{env_dir}/anycri-docker-bench"))
            .pause_image(&pause)
            .connect()
            .await
            .map_err(|e| format!("the shim on Docker at {socket}: {e}"))?;
        let cri = GrpcRuntime::builder(&cri_endpoint)
            .connect_timeout(Duration::from_secs(5))
            .request_timeout(Duration::from_secs(120))
            .connect()
            .await
            .map_err(|e| format!("containerd at {cri_endpoint} does not answer: {e}"))?;
        cri.version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .map_err(|e| format!("containerd at {cri_endpoint} does not answer: {e}"))?;

        for image in [&pause, &image] {
            shim.pull_image_if_absent(image, None)
                .await
                .map_err(|e| format!("pulling {image} into Docker: {e}"))?;
        }
        cri.pull_image_if_absent(&image, None)
            .await
            .map_err(|e| format!("pulling {image} into containerd: {e}"))?;
        let config = shim
            .status(StatusRequest { verbose: true })
            .await
            .map_err(|e| format!("the shim's status: {e}"))?
            .info
            .remove("config")
            .unwrap_or_default();
        let pause_oom_score_adj = config
            .contains("\"oomScoreAdjAllowed\":true")
            .then_some(-998);
        Ok(Ctx {
            shim: Arc::new(shim),
            docker,
            cri: Arc::new(cri),
            pause,
            image,
            log_root,
            pause_oom_score_adj,
            seq: AtomicU64::new(0),
        })
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// A pod config labelled for the bench, with a log directory of its own.
    fn pod_config(&self, what: &str) -> PodSandboxConfig {
        let uid = anycri::builders::new_uid();
        PodSandboxConfigBuilder::new(format!("{what}-{}", self.next()), "anycri-bench")
            .uid(uid.clone())
            .label(LABEL_KEY, LABEL_VALUE)
            .log_directory(self.log_root.join(&uid).to_string_lossy())
            .build()
    }

    /// A `sleep 3600` container config labelled for the bench, named uniquely.
    fn container_config(&self, what: &str) -> ContainerConfig {
        ContainerConfigBuilder::new(format!("{what}-{}", self.next()), &self.image)
            .command(["sleep", "3600"])
            .label(LABEL_KEY, LABEL_VALUE)
            .build()
    }

    /// A unique Docker name for a floor container.
    fn floor_name(&self, what: &str) -> String {
        format!("anycri-bench-{what}-{}-{}", std::process::id(), self.next())
    }

    /// The pause container the shim would create, made directly.
    fn floor_pause_body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(self.pause.clone()),
            labels: Some(bench_labels()),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".into()),
                ipc_mode: Some("shareable".into()),
                oom_score_adj: self.pause_oom_score_adj,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A `sleep 3600` container joined to the pause container `pause`, made directly.
    fn floor_container_body(&self, pause: &str) -> ContainerCreateBody {
        let join = format!("container:{pause}");
        ContainerCreateBody {
            image: Some(self.image.clone()),
            entrypoint: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some(bench_labels()),
            host_config: Some(HostConfig {
                network_mode: Some(join.clone()),
                ipc_mode: Some(join),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn floor_create(&self, name: &str, body: ContainerCreateBody) -> String {
        self.docker
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(name).build()),
                body,
            )
            .await
            .expect("floor: create")
            .id
    }

    async fn floor_start(&self, id: &str) {
        self.docker
            .start_container(id, None)
            .await
            .expect("floor: start");
    }

    async fn floor_stop(&self, id: &str, grace: i32) {
        self.docker
            .stop_container(
                id,
                Some(StopContainerOptionsBuilder::default().t(grace).build()),
            )
            .await
            .expect("floor: stop");
    }

    async fn floor_remove(&self, id: &str) {
        self.docker
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
            .expect("floor: remove");
    }

    /// Remove everything labelled for the bench: pods through the shim (so its checkpoints
    /// go too) and through containerd, then whatever Docker still holds with the label.
    async fn sweep(&self) {
        let runtimes: [(&str, &dyn RuntimeService); 2] =
            [("shim", &*self.shim), ("containerd", &*self.cri)];
        for (name, runtime) in runtimes {
            let pods = runtime
                .list_pod_sandbox(ListPodSandboxRequest {
                    filter: Some(PodSandboxFilter {
                        label_selector: bench_labels(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|r| r.items)
                .unwrap_or_else(|e| {
                    eprintln!("docker_shim bench: listing {name} pods to clean up failed: {e}");
                    Vec::new()
                });
            futures::stream::iter(pods)
                .for_each_concurrent(4, |p| async move {
                    if let Err(e) = runtime.remove_pod_with_containers(&p.id).await {
                        eprintln!(
                            "docker_shim bench: removing {name} pod {} failed: {e}",
                            p.id
                        );
                    }
                })
                .await;
        }
        let filters = HashMap::from([("label", vec![format!("{LABEL_KEY}={LABEL_VALUE}")])]);
        let left = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap_or_default();
        futures::stream::iter(left.into_iter().filter_map(|c| c.id))
            .for_each_concurrent(4, |id| async move {
                let options = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                if let Err(e) = self.docker.remove_container(&id, Some(options)).await {
                    eprintln!("docker_shim bench: removing Docker container {id} failed: {e}");
                }
            })
            .await;
    }
}

/// Removes everything labelled for the bench when dropped (at the end of a group, or while
/// a panic unwinds out of it).
struct Sweep<'a> {
    tokio: &'a Runtime,
    ctx: &'a Ctx,
}

impl Drop for Sweep<'_> {
    fn drop(&mut self) {
        self.tokio.block_on(self.ctx.sweep());
    }
}

fn sweep_at_end<'a>(tokio: &'a Runtime, ctx: &'a Ctx) -> Sweep<'a> {
    Sweep { tokio, ctx }
}

/// `iters` rounds of `setup` (untimed), `op` (timed) and `cleanup` (untimed); the time spent
/// in `op`.
async fn timed<S, R, FS, FO, FC>(
    iters: u64,
    mut setup: impl FnMut() -> FS,
    mut op: impl FnMut(S) -> FO,
    mut cleanup: impl FnMut(R) -> FC,
) -> Duration
where
    FS: Future<Output = S>,
    FO: Future<Output = R>,
    FC: Future<Output = ()>,
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let state = setup().await;
        let start = Instant::now();
        let result = black_box(op(state).await);
        total += start.elapsed();
        cleanup(result).await;
        // Let Docker finish what it does after a call returns (exit events, network
        // teardown), so it does not land in the next iteration's timing.
        tokio::time::sleep(SETTLE).await;
    }
    total
}

/// A group of slow lifecycle operations: 10 samples, flat sampling.
fn slow_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g
}

/// A group of millisecond calls.
fn fast_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g
}

async fn create_start(
    runtime: &dyn RuntimeService,
    pod: &str,
    pod_config: &PodSandboxConfig,
    config: ContainerConfig,
) -> String {
    let id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        })
        .await
        .expect("CreateContainer")
        .container_id;
    runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer");
    id
}

async fn stop_remove_container(runtime: &dyn RuntimeService, id: String) {
    runtime
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 0,
        })
        .await
        .expect("StopContainer");
    runtime
        .remove_container(RemoveContainerRequest { container_id: id })
        .await
        .expect("RemoveContainer");
}

async fn stop_pod(runtime: &dyn RuntimeService, id: &str) {
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        })
        .await
        .expect("StopPodSandbox");
}

async fn remove_pod(runtime: &dyn RuntimeService, id: &str) {
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.to_owned(),
        })
        .await
        .expect("RemovePodSandbox");
}

/// `RunPodSandbox`: the shim and containerd against create + start of a pause container.
fn run_pod_sandbox(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    let mut g = slow_group(c, "RunPodSandbox");
    let runtimes: [(&str, &dyn RuntimeService); 2] =
        [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    for (name, runtime) in runtimes {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter_custom(|iters| {
                timed(
                    iters,
                    move || async move { ctx.pod_config("run") },
                    move |config| async move {
                        runtime.run_pod(config).await.expect("RunPodSandbox")
                    },
                    move |id: String| async move {
                        runtime
                            .remove_pod_with_containers(&id)
                            .await
                            .expect("removing the pod");
                    },
                )
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter_custom(|iters| {
                    timed(
                        iters,
                        move || async move { ctx.floor_name("pause") },
                        move |name: String| async move {
                            let id = ctx.floor_create(&name, ctx.floor_pause_body()).await;
                            ctx.floor_start(&id).await;
                            id
                        },
                        // As the shim's pods are removed: stopped first, then removed.
                        move |id: String| async move {
                            ctx.floor_stop(&id, PAUSE_STOP_GRACE).await;
                            ctx.floor_remove(&id).await
                        },
                    )
                })
            });
        }
    }
    g.finish();
}

/// `CreateContainer` + `StartContainer` in a running pod, against create + start of a
/// container joined to the shim pod's pause container.
fn create_start_container(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    let shim_pod_config = ctx.pod_config("create");
    let cri_pod_config = ctx.pod_config("create");
    let (shim_pod, cri_pod) = tokio.block_on(async {
        (
            ctx.shim
                .run_pod(shim_pod_config.clone())
                .await
                .expect("RunPodSandbox (shim)"),
            ctx.cri
                .run_pod(cri_pod_config.clone())
                .await
                .expect("RunPodSandbox (containerd)"),
        )
    });
    let shim_pause: &str = &shim_pod;
    let mut g = slow_group(c, "CreateStartContainer");
    let runtimes: [(&str, &dyn RuntimeService, &str, &PodSandboxConfig); 2] = [
        ("shim", &*ctx.shim, &shim_pod, &shim_pod_config),
        ("containerd", &*ctx.cri, &cri_pod, &cri_pod_config),
    ];
    for (name, runtime, pod, pod_config) in runtimes {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter_custom(|iters| {
                timed(
                    iters,
                    move || async move { ctx.container_config("ctr") },
                    move |config| async move { create_start(runtime, pod, pod_config, config).await },
                    move |id| async move { stop_remove_container(runtime, id).await },
                )
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter_custom(|iters| {
                    timed(
                        iters,
                        move || async move { ctx.floor_name("ctr") },
                        move |name: String| async move {
                            let id = ctx
                                .floor_create(&name, ctx.floor_container_body(shim_pause))
                                .await;
                            ctx.floor_start(&id).await;
                            id
                        },
                        // As the shim's containers are removed: stopped first, then removed.
                        move |id: String| async move {
                            ctx.floor_stop(&id, 0).await;
                            ctx.floor_remove(&id).await
                        },
                    )
                })
            });
        }
    }
    g.finish();
}

/// `StopPodSandbox` of a running pod without containers, against a stop of a pause container.
fn stop_pod_sandbox(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    let mut g = slow_group(c, "StopPodSandbox");
    let runtimes: [(&str, &dyn RuntimeService); 2] =
        [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    for (name, runtime) in runtimes {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter_custom(|iters| {
                timed(
                    iters,
                    move || async move {
                        runtime
                            .run_pod(ctx.pod_config("stop"))
                            .await
                            .expect("RunPodSandbox")
                    },
                    move |id: String| async move {
                        stop_pod(runtime, &id).await;
                        id
                    },
                    move |id: String| async move { remove_pod(runtime, &id).await },
                )
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter_custom(|iters| {
                    timed(
                        iters,
                        move || async move {
                            let id = ctx
                                .floor_create(&ctx.floor_name("pause"), ctx.floor_pause_body())
                                .await;
                            ctx.floor_start(&id).await;
                            id
                        },
                        move |id: String| async move {
                            ctx.floor_stop(&id, PAUSE_STOP_GRACE).await;
                            id
                        },
                        move |id: String| async move { ctx.floor_remove(&id).await },
                    )
                })
            });
        }
    }
    g.finish();
}

/// `RemovePodSandbox` of a stopped pod without containers, against a remove of a stopped
/// pause container.
fn remove_pod_sandbox(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    let mut g = slow_group(c, "RemovePodSandbox");
    let runtimes: [(&str, &dyn RuntimeService); 2] =
        [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    for (name, runtime) in runtimes {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter_custom(|iters| {
                timed(
                    iters,
                    move || async move {
                        let id = runtime
                            .run_pod(ctx.pod_config("remove"))
                            .await
                            .expect("RunPodSandbox");
                        stop_pod(runtime, &id).await;
                        id
                    },
                    move |id: String| async move { remove_pod(runtime, &id).await },
                    |()| async {},
                )
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter_custom(|iters| {
                    timed(
                        iters,
                        move || async move {
                            let id = ctx
                                .floor_create(&ctx.floor_name("pause"), ctx.floor_pause_body())
                                .await;
                            ctx.floor_start(&id).await;
                            ctx.floor_stop(&id, PAUSE_STOP_GRACE).await;
                            id
                        },
                        move |id: String| async move { ctx.floor_remove(&id).await },
                        |()| async {},
                    )
                })
            });
        }
    }
    g.finish();
}

/// `PodSandboxStatus` and `ContainerStatus` of a running pod and container, against one
/// inspect.
fn statuses(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    let ids = tokio.block_on(async {
        let mut ids = Vec::new();
        let runtimes: [&dyn RuntimeService; 2] = [&*ctx.shim, &*ctx.cri];
        for runtime in runtimes {
            let ids_of = runtime
                .run_pod_and_container(ctx.pod_config("status"), ctx.container_config("status"))
                .await
                .expect("a pod with a running container");
            ids.push(ids_of);
        }
        ids
    });
    let (shim_ids, cri_ids) = (&ids[0], &ids[1]);
    let entries: [(&str, &dyn RuntimeService, &anycri::ext::PodAndContainer); 2] = [
        ("shim", &*ctx.shim, shim_ids),
        ("containerd", &*ctx.cri, cri_ids),
    ];

    let mut g = fast_group(c, "PodSandboxStatus");
    for (name, runtime, ids) in entries {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: ids.pod_sandbox_id.clone(),
            verbose: false,
        };
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| {
                let request = request.clone();
                async move {
                    black_box(
                        runtime
                            .pod_sandbox_status(request)
                            .await
                            .expect("PodSandboxStatus"),
                    )
                }
            })
        });
        if name == "shim" {
            let id = &ids.pod_sandbox_id;
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    black_box(
                        ctx.docker
                            .inspect_container(id, None::<InspectContainerOptions>)
                            .await
                            .expect("inspect"),
                    )
                })
            });
        }
    }
    g.finish();

    let mut g = fast_group(c, "ContainerStatus");
    for (name, runtime, ids) in entries {
        let request = ContainerStatusRequest {
            container_id: ids.container_id.clone(),
            verbose: false,
        };
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| {
                let request = request.clone();
                async move {
                    black_box(
                        runtime
                            .container_status(request)
                            .await
                            .expect("ContainerStatus"),
                    )
                }
            })
        });
        if name == "shim" {
            let id = &ids.container_id;
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    black_box(
                        ctx.docker
                            .inspect_container(id, None::<InspectContainerOptions>)
                            .await
                            .expect("inspect"),
                    )
                })
            });
        }
    }
    g.finish();
}

/// `ImageStatus` and `ListImages`, against one `inspect_image` and one `list_images`.
fn images(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let images: [(&str, &dyn ImageService); 2] = [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    let image = &ctx.image;

    let mut g = fast_group(c, "ImageStatus");
    let request = ImageStatusRequest {
        image: Some(ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        verbose: false,
    };
    for (name, service) in images {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| {
                let request = request.clone();
                async move {
                    let found = service.image_status(request).await.expect("ImageStatus");
                    assert!(found.image.is_some(), "{image} is not present");
                    black_box(found)
                }
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    black_box(
                        ctx.docker
                            .inspect_image(image)
                            .await
                            .expect("inspect_image"),
                    )
                })
            });
        }
    }
    g.finish();

    let mut g = fast_group(c, "ListImages");
    for (name, service) in images {
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| async move {
                black_box(
                    service
                        .list_images(ListImagesRequest::default())
                        .await
                        .expect("ListImages"),
                )
            })
        });
        if name == "shim" {
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    black_box(
                        ctx.docker
                            .list_images(Some(ListImagesOptionsBuilder::new().all(false).build()))
                            .await
                            .expect("list_images"),
                    )
                })
            });
        }
    }
    g.finish();
}

/// One pod per runtime with `n` containers, created (and started if `start`) 4 at a time.
async fn populate(ctx: &Ctx, runtime: &dyn RuntimeService, n: usize, start: bool) -> String {
    let pod_config = ctx.pod_config("many");
    let pod = runtime
        .run_pod(pod_config.clone())
        .await
        .expect("RunPodSandbox");
    futures::stream::iter(0..n)
        .map(|_| {
            let config = ctx.container_config("many");
            let (pod, pod_config) = (&pod, &pod_config);
            async move {
                let id = runtime
                    .create_container(CreateContainerRequest {
                        pod_sandbox_id: pod.clone(),
                        config: Some(config),
                        sandbox_config: Some(pod_config.clone()),
                    })
                    .await?
                    .container_id;
                if start {
                    runtime
                        .start_container(StartContainerRequest { container_id: id })
                        .await?;
                }
                Ok::<_, anycri::Error>(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await
        .expect("creating the containers");
    pod
}

/// `ListContainers` by label with 100 created containers, against one `list_containers` with
/// the label filters the shim sends.
fn list_containers(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    eprintln!(
        "docker_shim bench: creating {LIST_CONTAINERS} containers in Docker and in containerd..."
    );
    tokio.block_on(async {
        populate(ctx, &*ctx.shim, LIST_CONTAINERS, false).await;
        populate(ctx, &*ctx.cri, LIST_CONTAINERS, false).await;
    });
    let request = ListContainersRequest {
        filter: Some(ContainerFilter {
            label_selector: bench_labels(),
            ..Default::default()
        }),
    };
    let mut g = fast_group(c, "ListContainers_100");
    let runtimes: [(&str, &dyn RuntimeService); 2] =
        [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    for (name, runtime) in runtimes {
        let listed = tokio
            .block_on(runtime.list_containers(request.clone()))
            .expect("ListContainers")
            .containers
            .len();
        assert_eq!(
            listed, LIST_CONTAINERS,
            "{name} lists the bench's containers"
        );
        let request = &request;
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| async move {
                black_box(
                    runtime
                        .list_containers(request.clone())
                        .await
                        .expect("ListContainers"),
                )
            })
        });
        if name == "shim" {
            let filters = HashMap::from([(
                "label",
                vec![
                    format!("{}={}", labels::TYPE_LABEL, labels::TYPE_CONTAINER),
                    format!("{LABEL_KEY}={LABEL_VALUE}"),
                ],
            )]);
            let filters = &filters;
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    let listed = ctx
                        .docker
                        .list_containers(Some(
                            ListContainersOptionsBuilder::default()
                                .all(true)
                                .filters(filters)
                                .build(),
                        ))
                        .await
                        .expect("list_containers");
                    assert_eq!(listed.len(), LIST_CONTAINERS);
                    black_box(listed)
                })
            });
        }
    }
    g.finish();
}

/// `ListContainerStats` by label with 20 running containers, against 20 one-shot Docker
/// stats calls made together (without the writable-layer sizes).
fn list_container_stats(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    eprintln!(
        "docker_shim bench: starting {STATS_CONTAINERS} containers in Docker and in containerd..."
    );
    tokio.block_on(async {
        populate(ctx, &*ctx.shim, STATS_CONTAINERS, true).await;
        populate(ctx, &*ctx.cri, STATS_CONTAINERS, true).await;
    });
    let request = ListContainerStatsRequest {
        filter: Some(ContainerStatsFilter {
            label_selector: bench_labels(),
            ..Default::default()
        }),
    };
    let mut g = slow_group(c, "ListContainerStats_20");
    g.measurement_time(Duration::from_secs(5));
    let runtimes: [(&str, &dyn RuntimeService); 2] =
        [("shim", &*ctx.shim), ("containerd", &*ctx.cri)];
    for (name, runtime) in runtimes {
        let listed = tokio
            .block_on(runtime.list_container_stats(request.clone()))
            .expect("ListContainerStats")
            .stats
            .len();
        assert_eq!(
            listed, STATS_CONTAINERS,
            "{name} gives stats of the bench's containers"
        );
        let request = &request;
        g.bench_function(name, |b| {
            b.to_async(tokio).iter(|| async move {
                black_box(
                    runtime
                        .list_container_stats(request.clone())
                        .await
                        .expect("ListContainerStats"),
                )
            })
        });
        if name == "shim" {
            let filters = HashMap::from([(
                "label",
                vec![
                    format!("{}={}", labels::TYPE_LABEL, labels::TYPE_CONTAINER),
                    format!("{LABEL_KEY}={LABEL_VALUE}"),
                ],
            )]);
            let ids: Vec<String> = tokio
                .block_on(
                    ctx.docker.list_containers(Some(
                        ListContainersOptionsBuilder::default()
                            .filters(&filters)
                            .build(),
                    )),
                )
                .expect("list_containers")
                .into_iter()
                .filter_map(|c| c.id)
                .collect();
            assert_eq!(ids.len(), STATS_CONTAINERS);
            let ids = &ids;
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    let stats: Vec<_> = futures::stream::iter(ids)
                        .map(|id| async move {
                            let options = StatsOptionsBuilder::default()
                                .stream(false)
                                .one_shot(true)
                                .build();
                            ctx.docker
                                .stats(id, Some(options))
                                .try_next()
                                .await
                                .expect("stats")
                        })
                        .buffer_unordered(STATS_CONTAINERS)
                        .collect()
                        .await;
                    black_box(stats)
                })
            });
        }
    }
    g.finish();
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ctx = match tokio.block_on(Ctx::connect()) {
        Ok(ctx) => ctx,
        Err(why) => {
            eprintln!(
                "docker_shim bench: SKIPPED: {why} (start the runtimes with `scripts/runtime-env up`)"
            );
            return;
        }
    };
    // Leftovers of an interrupted run.
    tokio.block_on(ctx.sweep());

    let mut c = Criterion::default().configure_from_args();
    // Groups the command line filters out make no fixtures.
    let filter = cli_filter();
    let groups: [(&[&str], Group); 8] = [
        (&["RunPodSandbox"], run_pod_sandbox),
        (&["CreateStartContainer"], create_start_container),
        (&["StopPodSandbox"], stop_pod_sandbox),
        (&["RemovePodSandbox"], remove_pod_sandbox),
        (&["PodSandboxStatus", "ContainerStatus"], statuses),
        (&["ImageStatus", "ListImages"], images),
        (&["ListContainers_100"], list_containers),
        (&["ListContainerStats_20"], list_container_stats),
    ];
    for (names, group) in groups {
        if names.iter().any(|n| wanted(filter.as_deref(), n)) {
            group(&mut c, &tokio, &ctx);
        }
    }
    remove_log_root(&ctx.log_root);
    c.final_summary();
}

type Group = fn(&mut Criterion, &Runtime, &Ctx);

/// Criterion's positional filter argument, if any.
fn cli_filter() -> Option<String> {
    const WITH_VALUE: &[&str] = &[
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--plotting-backend",
        "--output-format",
        "--format",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Whether criterion may run a function of `group` under `filter` (a plain substring is
/// checked; anything that looks like a regex runs the group).
fn wanted(filter: Option<&str>, group: &str) -> bool {
    let Some(filter) = filter else { return true };
    if filter.contains(|c: char| "^$.*+?()[]{}|\\".contains(c)) {
        return true;
    }
    ["shim", "floor", "containerd"]
        .iter()
        .any(|f| format!("{group}/{f}").contains(filter))
}

/// The pods' log directories (best effort).
fn remove_log_root(root: &Path) {
    if let Err(e) = std::fs::remove_dir_all(root)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!(
            "docker_shim bench: removing the log directory {} failed: {e}",
            root.display()
        );
    }
}
