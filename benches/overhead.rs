//! The cost of the abstraction: a CRI call made through `Arc<dyn RuntimeService>` backed by
//! [`anycri::grpc::GrpcRuntime`], against the same call made with the raw tonic-generated
//! `RuntimeServiceClient<Channel>` over the same containerd unix socket.
//!
//! Two RPCs, one criterion group each, with the two functions `raw_tonic` and `anycri_grpc`
//! sending the same request so criterion reports them side by side:
//!
//! * `version`: `Version`, the smallest round trip (mostly fixed per-call cost).
//! * `list_containers_50`: `ListContainers` filtered to one pod holding 50 running containers
//!   (created before the group and removed with the pod afterwards, labelled
//!   `anycri.bench=overhead`), so decoding a sizeable response is included.
//!
//! What `GrpcRuntime` adds per call is the `async_trait` box and dynamic dispatch, a
//! `RuntimeServiceClient` around the shared channel, the request clone kept for a retry, the
//! per-operation deadline (sent as `grpc-timeout` and enforced locally) and the
//! reconnect/retry loop, which costs nothing while calls succeed. The target is
//! `anycri_grpc` within 3% of `raw_tonic` (ratio of the median times).
//!
//! Needs containerd from `scripts/runtime-env up` (endpoint from `CONTAINERD_ENDPOINT` or the
//! env file it writes); without it the bench prints why and exits successfully.
//!
//! ```text
//! cargo bench --bench overhead -- --warm-up-time 2 --measurement-time 10
//! ```

use anycri_testenv::env_value;
use std::{collections::HashMap, hint::black_box, path::PathBuf, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
    api::{
        ContainerFilter, ListContainersRequest, ListPodSandboxRequest, PodSandboxConfig,
        PodSandboxFilter, VersionRequest, runtime_service_client::RuntimeServiceClient,
    },
    grpc::GrpcRuntime,
};
use criterion::Criterion;
use futures::{StreamExt, TryStreamExt};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

const BENCH_LABEL_KEY: &str = "anycri.bench";
const BENCH_LABEL_VALUE: &str = "overhead";
const CONTAINERS: usize = 50;

/// A raw tonic channel to the socket, built the way `anycri-grpc`'s transport builds its own.
async fn raw_channel(endpoint: &str) -> Result<Channel, Box<dyn std::error::Error>> {
    let path = PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint));
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    Ok(Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_with_connector(connector)
        .await?)
}

/// The bench pod with its containers; `pod_id` is set as soon as the pod exists so a failed
/// setup can still be cleaned up.
struct Fixture {
    pod_id: Option<String>,
}

fn bench_label() -> HashMap<String, String> {
    HashMap::from([(BENCH_LABEL_KEY.to_string(), BENCH_LABEL_VALUE.to_string())])
}

/// Remove every pod (with its containers) a previous, interrupted run left behind.
async fn remove_leftovers(runtime: &dyn RuntimeService) {
    let pods = runtime
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: bench_label(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.items)
        .unwrap_or_default();
    for p in pods {
        eprintln!("overhead bench: removing leftover pod {}", p.id);
        if let Err(e) = runtime.remove_pod_with_containers(&p.id).await {
            eprintln!("overhead bench: removing leftover pod {} failed: {e}", p.id);
        }
    }
}

/// One pod labelled `anycri.bench=overhead` with `CONTAINERS` running `sleep 3600` containers.
async fn setup(
    runtime: &dyn RuntimeService,
    image: &str,
    fixture: &mut Fixture,
) -> anycri::Result<String> {
    let uid = anycri::builders::new_uid();
    let log_dir = PathBuf::from(
        env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into()),
    );
    let pod_config: PodSandboxConfig =
        PodSandboxConfigBuilder::new(format!("overhead-{}", &uid[..8]), "anycri-bench")
            .uid(uid.clone())
            .label(BENCH_LABEL_KEY, BENCH_LABEL_VALUE)
            .log_directory(log_dir.join(&uid).to_string_lossy())
            .build();
    let pod_id = runtime.run_pod(pod_config.clone()).await?;
    fixture.pod_id = Some(pod_id.clone());
    // A few at a time: containerd serialises much of this anyway.
    futures::stream::iter(0..CONTAINERS)
        .map(|i| {
            let config = ContainerConfigBuilder::new(format!("sleep-{i}"), image)
                .command(["sh", "-c", "sleep 3600"])
                .label(BENCH_LABEL_KEY, BENCH_LABEL_VALUE)
                .build();
            runtime.create_and_start_container(&pod_id, &pod_config, config)
        })
        .buffer_unordered(4)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(pod_id)
}

async fn teardown(runtime: &dyn RuntimeService, fixture: &mut Fixture) {
    if let Some(pod_id) = fixture.pod_id.take()
        && let Err(e) = runtime.remove_pod_with_containers(&pod_id).await
    {
        eprintln!("overhead bench: removing pod {pod_id} failed: {e}");
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        eprintln!(
            "overhead bench: SKIPPED: CONTAINERD_ENDPOINT is not set and no runtime-env file was found \
             (start containerd with `scripts/runtime-env up`)"
        );
        return;
    };
    let connected = tokio.block_on(async {
        let grpc = GrpcRuntime::builder(&endpoint)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let raw = raw_channel(&endpoint).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((grpc, raw))
    });
    let (grpc, raw_channel) = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "overhead bench: SKIPPED: containerd at {endpoint} does not answer: {e} \
                 (start it with `scripts/runtime-env up`)"
            );
            return;
        }
    };
    let image = env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| {
        let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
        format!("{registry}/anycri/busybox:1.0")
    });
    tokio
        .block_on(grpc.pull_image_if_absent(&image, None))
        .expect("pull the test image");

    let runtime: Arc<dyn RuntimeService> = Arc::new(grpc);
    let raw = RuntimeServiceClient::new(raw_channel);
    let mut c = Criterion::default().configure_from_args();

    // Version.
    {
        let request = VersionRequest {
            version: "v1".into(),
        };
        let mut group = c.benchmark_group("version");
        group.bench_function("raw_tonic", |b| {
            b.to_async(&tokio).iter(|| {
                let mut client = raw.clone();
                let request = request.clone();
                async move { black_box(client.version(request).await.expect("Version").into_inner()) }
            })
        });
        group.bench_function("anycri_grpc", |b| {
            b.to_async(&tokio).iter(|| {
                let runtime = runtime.clone();
                let request = request.clone();
                async move { black_box(runtime.version(request).await.expect("Version")) }
            })
        });
        group.finish();
    }

    // ListContainers with 50 containers in the pod.
    let mut fixture = Fixture { pod_id: None };
    tokio.block_on(remove_leftovers(&*runtime));
    eprintln!("overhead bench: creating 1 pod with {CONTAINERS} running containers...");
    let setup_result = tokio.block_on(setup(&*runtime, &image, &mut fixture));
    let pod_id = match setup_result {
        Ok(pod_id) => pod_id,
        Err(e) => {
            eprintln!(
                "overhead bench: setting up the ListContainers fixture failed: {e}; cleaning up"
            );
            tokio.block_on(teardown(&*runtime, &mut fixture));
            std::process::exit(1);
        }
    };
    let request = ListContainersRequest {
        filter: Some(ContainerFilter {
            pod_sandbox_id: pod_id,
            ..Default::default()
        }),
    };
    // Remove the pod also when a call below panics.
    let benched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let listed = tokio
            .block_on(runtime.list_containers(request.clone()))
            .expect("ListContainers")
            .containers
            .len();
        assert_eq!(
            listed, CONTAINERS,
            "the bench pod should hold {CONTAINERS} containers"
        );
        let mut group = c.benchmark_group("list_containers_50");
        group.bench_function("raw_tonic", |b| {
            b.to_async(&tokio).iter(|| {
                let mut client = raw.clone();
                let request = request.clone();
                async move {
                    black_box(
                        client
                            .list_containers(request)
                            .await
                            .expect("ListContainers")
                            .into_inner(),
                    )
                }
            })
        });
        group.bench_function("anycri_grpc", |b| {
            b.to_async(&tokio).iter(|| {
                let runtime = runtime.clone();
                let request = request.clone();
                async move {
                    black_box(
                        runtime
                            .list_containers(request)
                            .await
                            .expect("ListContainers"),
                    )
                }
            })
        });
        group.finish();
    }));
    eprintln!("overhead bench: removing the bench pod...");
    tokio.block_on(teardown(&*runtime, &mut fixture));
    if let Err(panic) = benched {
        std::panic::resume_unwind(panic);
    }

    c.final_summary();
}
