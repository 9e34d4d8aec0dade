//! In-process costs, with no runtime involved: what anycri itself spends per call.
//!
//! * `dispatch`: a `Version` and a `ListContainers` (20 containers) through
//!   `Arc<dyn RuntimeService>` backed by the in-memory fake, against the same calls on the
//!   concrete `FakeRuntime` — the price of the `async_trait` box and the vtable.
//! * `builders`: a `PodSandboxConfig` and a `ContainerConfig` with labels, annotations,
//!   DNS, ports, mounts and resources made with the builders.
//! * `log_parse`: CRI log files (1 MiB, full and partial lines) parsed with
//!   `anycri::logs::parse_log`, reported in MB/s.
//! * `docker_labels`: the Docker shim's naming and label scheme — sandbox and container
//!   names made and parsed back, labels made from a config and split back.
//!
//! ```text
//! cargo bench --bench in_process
//! ```

use std::{hint::black_box, sync::Arc};

use anycri::{
    ContainerConfigBuilder, ImageService, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt, api::*, docker::labels, fake::FakeRuntime, logs::parse_log,
};
use criterion::{Criterion, Throughput};
use tokio::runtime::Runtime;

fn pod_config(i: usize) -> PodSandboxConfig {
    PodSandboxConfigBuilder::new(format!("bench-pod-{i}"), "bench")
        .uid(format!("uid-{i}"))
        .label("app", "web")
        .label("tier", "frontend")
        .annotation("note", "a value that is a little longer than the others")
        .dns(&["10.0.0.10"], &["svc.cluster.local"], &["ndots:5"])
        .port_mapping(Protocol::Tcp, 80, 8080)
        .hostname("web-0")
        .build()
}

fn container_config(i: usize) -> ContainerConfig {
    ContainerConfigBuilder::new(format!("app-{i}"), "registry.local/app:1.0")
        .command(["/bin/server"])
        .args(["--port", "80", "--verbose"])
        .env("MODE", "production")
        .env("LEVEL", "info")
        .label("app", "web")
        .annotation("checksum", "0123456789abcdef")
        .mount("/srv/data", "/data", true)
        .memory_limit(256 << 20)
        .cpu_quota(50_000, 100_000)
        .build()
}

fn dispatch(c: &mut Criterion, tokio: &Runtime) {
    let fake = Arc::new(FakeRuntime::new());
    let dynamic: Arc<dyn RuntimeService> = fake.clone();
    let ids = tokio.block_on(async {
        // The fake, like a real runtime, creates containers only from images it holds.
        fake.pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: "registry.local/app:1.0".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage");
        let pod = fake.run_pod(pod_config(0)).await.expect("RunPodSandbox");
        for i in 0..20 {
            fake.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(container_config(i)),
                sandbox_config: Some(pod_config(0)),
            })
            .await
            .expect("CreateContainer");
        }
        pod
    });
    black_box(ids);
    let mut g = c.benchmark_group("dispatch");
    let version = || VersionRequest {
        version: "v1".into(),
    };
    g.bench_function("version/concrete", |b| {
        b.to_async(tokio)
            .iter(|| async { black_box(fake.version(version()).await.unwrap()) })
    });
    g.bench_function("version/arc_dyn", |b| {
        b.to_async(tokio)
            .iter(|| async { black_box(dynamic.version(version()).await.unwrap()) })
    });
    g.bench_function("list_containers_20/concrete", |b| {
        b.to_async(tokio).iter(|| async {
            black_box(
                fake.list_containers(ListContainersRequest::default())
                    .await
                    .unwrap(),
            )
        })
    });
    g.bench_function("list_containers_20/arc_dyn", |b| {
        b.to_async(tokio).iter(|| async {
            black_box(
                dynamic
                    .list_containers(ListContainersRequest::default())
                    .await
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn builders(c: &mut Criterion) {
    let mut g = c.benchmark_group("builders");
    g.bench_function("pod_sandbox_config", |b| {
        b.iter(|| black_box(pod_config(black_box(1))))
    });
    g.bench_function("container_config", |b| {
        b.iter(|| black_box(container_config(black_box(1))))
    });
    g.finish();
}

/// About `size` bytes of CRI log: mostly full lines, every fifth a partial line.
fn log_text(size: usize) -> String {
    let mut s = String::with_capacity(size + 256);
    let mut i = 0usize;
    while s.len() < size {
        let stream = if i % 7 == 0 { "stderr" } else { "stdout" };
        let tag = if i % 5 == 0 { "P" } else { "F" };
        s.push_str(&format!(
            "2024-05-01T12:00:{:02}.{:09}Z {stream} {tag} line {i}: the quick brown fox jumps over the lazy dog {}\n",
            i % 60,
            i % 1_000_000_000,
            "x".repeat(i % 40)
        ));
        i += 1;
    }
    s
}

fn log_parse(c: &mut Criterion) {
    let text = log_text(1 << 20);
    let mut g = c.benchmark_group("log_parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse_log_1MiB", |b| {
        b.iter(|| black_box(parse_log(black_box(&text)).unwrap()))
    });
    g.finish();
}

fn docker_labels(c: &mut Criterion) {
    let pod = pod_config(3);
    let container = container_config(3);
    let pod_meta = pod.metadata.clone().unwrap();
    let ctr_meta = container.metadata.clone().unwrap();
    let sandbox_name = labels::sandbox_name(&pod_meta).unwrap();
    let container_name = labels::container_name(&ctr_meta, &pod_meta).unwrap();
    let docker_labels = labels::container_labels(&container, "sandbox-id", "app/0.log");
    let mut g = c.benchmark_group("docker_labels");
    g.bench_function("sandbox_name", |b| {
        b.iter(|| black_box(labels::sandbox_name(black_box(&pod_meta)).unwrap()))
    });
    g.bench_function("parse_sandbox_name", |b| {
        b.iter(|| black_box(labels::parse_sandbox_name(black_box(&sandbox_name)).unwrap()))
    });
    g.bench_function("parse_container_name", |b| {
        b.iter(|| black_box(labels::parse_container_name(black_box(&container_name)).unwrap()))
    });
    g.bench_function("container_labels", |b| {
        b.iter(|| {
            black_box(labels::container_labels(
                black_box(&container),
                "sandbox-id",
                "app/0.log",
            ))
        })
    });
    g.bench_function("split_labels", |b| {
        b.iter(|| black_box(labels::split_labels(black_box(&docker_labels))))
    });
    g.finish();
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut c = Criterion::default().configure_from_args();
    dispatch(&mut c, &tokio);
    builders(&mut c);
    log_parse(&mut c);
    docker_labels(&mut c);
    c.final_summary();
}
