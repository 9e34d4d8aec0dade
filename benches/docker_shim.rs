//! The cost of the Docker shim: each CRI operation through the in-process
//! [`anycri::docker::DockerRuntime`] against the plain Docker API calls that do the same work
//! (the "floor": the bench library's `docker-floor` target, `anycri_bench::target::Target`,
//! on the same socket, so this bench and `anycri-bench` measure one floor), and the same
//! operation through
//! containerd's CRI ([`anycri::grpc::GrpcRuntime`]), all in one run. One criterion group per
//! operation, with the functions `shim`, `floor` and `containerd`:
//!
//! | group                  | shim                                  | floor                                              |
//! |------------------------|---------------------------------------|----------------------------------------------------|
//! | `RunPodSandbox`        | RunPodSandbox                         | create + start of a pause container                |
//! | `CreateStartContainer` | CreateContainer + StartContainer      | create (`network_mode`/`ipc_mode` `container:<pause>`) + start |
//! | `StopPodSandbox`       | StopPodSandbox of an empty pod        | its containers found by label, then a stop of the pause container |
//! | `RemovePodSandbox`     | RemovePodSandbox of a stopped pod     | its containers found by label, then a remove of the pause container |
//! | `PodSandboxStatus`     | PodSandboxStatus                      | one `inspect_container`                            |
//! | `ContainerStatus`      | ContainerStatus                       | one `inspect_container`                            |
//! | `ImageStatus`          | ImageStatus                           | one `inspect_image`                                |
//! | `ListImages`           | ListImages                            | one `list_images`                                  |
//! | `ListContainers_100`   | ListContainers (label selector), 100 created containers | one `list_containers` by label of 100 floor containers |
//! | `ListContainerStats_20`| ListContainerStats, 20 running containers | 20 one-shot `stats` at once, no layer sizes |
//!
//! The lifecycle groups use `iter_custom` and time only the operation: what an iteration
//! needs first (a pod to stop, a stopped pod to remove) is made before the clock starts and
//! what it created is removed after it stops. Those groups take 10 samples in flat sampling
//! mode, so the whole bench takes a few minutes.
//!
//! Everything the bench creates is labelled (`anycri.bench=docker_shim` through the runtimes,
//! the run label `anycri.bench.run=docker_shim` by the floor) and removed at the end of each
//! group by a guard that lists by those labels (also when a group panics halfway); leftovers
//! of an interrupted run are removed at the start.
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
    RuntimeServiceExt, api::*, docker::DockerRuntime, grpc::GrpcRuntime,
};
use anycri_bench::target::{DOCKER_FLOOR_SCHEME, PodHandle, RunEnv, Target};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use futures::{StreamExt, TryStreamExt};
use tokio::runtime::Runtime;

const LABEL_KEY: &str = "anycri.bench";
const LABEL_VALUE: &str = "docker_shim";
const LIST_CONTAINERS: usize = 100;
const STATS_CONTAINERS: usize = 20;
/// Pause after each lifecycle iteration's cleanup (untimed).
const SETTLE: Duration = Duration::from_millis(50);

fn bench_labels() -> HashMap<String, String> {
    HashMap::from([(LABEL_KEY.to_string(), LABEL_VALUE.to_string())])
}

/// The three ways to the runtimes and what the operations need.
struct Ctx {
    shim: Arc<DockerRuntime>,
    /// The plain-Docker floor, as `anycri-bench` measures it.
    floor: Target,
    cri: Arc<GrpcRuntime>,
    image: String,
    /// Where the pods' log directories go (removed at the end).
    log_root: PathBuf,
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
        let floor_env = RunEnv {
            // Fixed, so that the sweep at the start finds an interrupted run's leftovers.
            run_id: LABEL_VALUE.into(),
            image: image.clone(),
            pause_image: pause.clone(),
            log_root: log_root.clone(),
            timeout: Duration::from_secs(120),
        };
        let floor = Target::connect(
            "floor".into(),
            &format!("{DOCKER_FLOOR_SCHEME}{path}"),
            floor_env,
        )
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
        Ok(Ctx {
            shim: Arc::new(shim),
            floor,
            cri: Arc::new(cri),
            image,
            log_root,
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

    /// Remove everything labelled for the bench: pods through the shim (so its checkpoints
    /// go too) and through containerd, then the floor's objects.
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
        let (_, errors) = self.floor.sweep().await;
        for e in errors {
            eprintln!("docker_shim bench: cleaning up the floor: {e}");
        }
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

/// The floor's pod stopped, then removed, as the shim's pods are.
async fn floor_stop_remove_pod(ctx: &Ctx, id: &str) {
    ctx.floor.stop_pod(id).await.expect("floor: stop pod");
    ctx.floor.remove_pod(id).await.expect("floor: remove pod");
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
                        || async {},
                        move |()| async move { ctx.floor.run_pod("run").await.expect("floor: run pod") },
                        // As the shim's pods are removed: stopped first, then removed.
                        move |pod: PodHandle| async move { floor_stop_remove_pod(ctx, &pod.id).await },
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
    let floor_pod = &tokio
        .block_on(ctx.floor.run_pod("create"))
        .expect("floor: run pod");
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
                        || async {},
                        move |()| async move {
                            let id = ctx
                                .floor
                                .create_container(floor_pod, "ctr")
                                .await
                                .expect("floor: create");
                            ctx.floor.start_container(&id).await.expect("floor: start");
                            id
                        },
                        // As the shim's containers are removed: stopped first, then removed.
                        move |id: String| async move {
                            ctx.floor.stop_container(&id, 0).await.expect("floor: stop");
                            ctx.floor
                                .remove_container(&id)
                                .await
                                .expect("floor: remove");
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
                            ctx.floor.run_pod("stop").await.expect("floor: run pod").id
                        },
                        move |id: String| async move {
                            ctx.floor.stop_pod(&id).await.expect("floor: stop pod");
                            id
                        },
                        move |id: String| async move {
                            ctx.floor.remove_pod(&id).await.expect("floor: remove pod")
                        },
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
                                .floor
                                .run_pod("remove")
                                .await
                                .expect("floor: run pod")
                                .id;
                            ctx.floor.stop_pod(&id).await.expect("floor: stop pod");
                            id
                        },
                        move |id: String| async move {
                            ctx.floor.remove_pod(&id).await.expect("floor: remove pod")
                        },
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
    let (floor_pod, floor_container) = tokio
        .block_on(async {
            let pod = ctx.floor.run_pod("status").await?;
            let container = ctx.floor.create_container(&pod, "status").await?;
            ctx.floor.start_container(&container).await?;
            Ok::<_, anycri::Error>((pod.id, container))
        })
        .expect("floor: a pod with a running container");
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
            let id = &floor_pod;
            g.bench_function("floor", |b| {
                b.to_async(tokio)
                    .iter(|| async move { ctx.floor.pod_status(id).await.expect("floor: inspect") })
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
            let id = &floor_container;
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    ctx.floor
                        .container_status(id)
                        .await
                        .expect("floor: inspect")
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
                    ctx.floor
                        .image_status(image)
                        .await
                        .expect("floor: inspect_image")
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
                    black_box(ctx.floor.list_images().await.expect("floor: list_images"))
                })
            });
        }
    }
    g.finish();
}

/// One floor pod with `n` containers, created (and started if `start`) 4 at a time.
async fn populate_floor(ctx: &Ctx, n: usize, start: bool) {
    let pod = ctx.floor.run_pod("many").await.expect("floor: run pod");
    futures::stream::iter(0..n)
        .map(|_| {
            let pod = &pod;
            async move {
                let id = ctx.floor.create_container(pod, "many").await?;
                if start {
                    ctx.floor.start_container(&id).await?;
                }
                Ok::<_, anycri::Error>(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await
        .expect("floor: creating the containers");
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

/// `ListContainers` by label with 100 created containers, against one `list_containers` by
/// label of 100 created floor containers.
fn list_containers(c: &mut Criterion, tokio: &Runtime, ctx: &Ctx) {
    let _sweep = sweep_at_end(tokio, ctx);
    eprintln!(
        "docker_shim bench: creating {LIST_CONTAINERS} containers in Docker and in containerd..."
    );
    tokio.block_on(async {
        populate(ctx, &*ctx.shim, LIST_CONTAINERS, false).await;
        populate(ctx, &*ctx.cri, LIST_CONTAINERS, false).await;
        populate_floor(ctx, LIST_CONTAINERS, false).await;
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
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    let listed = ctx.floor.list_containers().await.expect("floor: list");
                    assert_eq!(listed, LIST_CONTAINERS);
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
        populate_floor(ctx, STATS_CONTAINERS, true).await;
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
            g.bench_function("floor", |b| {
                b.to_async(tokio).iter(|| async move {
                    let listed = ctx
                        .floor
                        .list_container_stats()
                        .await
                        .expect("floor: stats");
                    assert_eq!(listed, STATS_CONTAINERS);
                    black_box(listed)
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
