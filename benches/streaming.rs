//! The streaming path, anycri's server against containerd's, in one run. Each group has the
//! functions `docker_shim` (anycri's streaming server behind the in-process Docker shim)
//! and `containerd` (containerd 1.6's own streaming server, reached through its CRI), both
//! driven by anycri's streaming client:
//!
//! | group              | one iteration                                                          |
//! |--------------------|------------------------------------------------------------------------|
//! | `ExecEcho`         | Exec RPC, WebSocket connect, `echo hi` runs, stdout read, exit code (`docker_api_floor`: the same exec straight on Docker's API, no CRI, no streaming server) |
//! | `PortForward16MiB` | PortForward RPC, WebSocket connect, 16 MiB read from a server in the pod (until the last byte, not the end of stream) |
//!
//! Each runtime gets one pod whose container runs `sleep` (exec target) plus a busybox `nc`
//! that answers every connection on port 8081 with 16 MiB of zeros. Everything is labelled
//! `anycri.bench=streaming` and removed at the end (and at the start, after an interrupted
//! run).
//!
//! Needs Docker and containerd from `scripts/runtime-env up`; without them the bench prints
//! why and exits successfully.
//!
//! ```text
//! cargo bench --bench streaming
//! ```

use std::{collections::HashMap, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt, api::*, docker::DockerRuntime, grpc::GrpcRuntime,
};
use anycri_streaming::client::{self, ExecOptions};
use anycri_testenv::env_value;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::AsyncReadExt;

const LABEL: &str = "anycri.bench";
const BYTES: u64 = 16 * 1024 * 1024;

struct Target {
    name: &'static str,
    runtime: Arc<dyn RuntimeService>,
    pod: String,
    container: String,
}

async fn cleanup(rt: &dyn RuntimeService) {
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: HashMap::from([(LABEL.into(), "streaming".into())]),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.items)
        .unwrap_or_default();
    for p in pods {
        let _ = rt.remove_pod_with_containers(&p.id).await;
    }
}

async fn prepare(name: &'static str, runtime: Arc<dyn RuntimeService>, image: &str) -> Target {
    cleanup(runtime.as_ref()).await;
    let uid = anycri::builders::new_uid();
    let log_dir = env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into());
    let pod = PodSandboxConfigBuilder::new(format!("bench-streaming-{}", &uid[..8]), "bench")
        .uid(uid.clone())
        .label(LABEL, "streaming")
        .log_directory(format!("{log_dir}/{uid}"))
        .build();
    let script = format!(
        "nc -ll -p 8081 -e dd if=/dev/zero bs=65536 count={} 2>/dev/null & exec sleep 36000",
        BYTES / 65536
    );
    let container = ContainerConfigBuilder::new("bench", image)
        .command(["sh", "-c", &script])
        .label(LABEL, "streaming")
        .build();
    let ids = runtime
        .run_pod_and_container(pod, container)
        .await
        .expect("run the bench pod");
    runtime
        .wait_for_container_state(
            &ids.container_id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .expect("the bench container runs");
    let target = Target {
        name,
        runtime,
        pod: ids.pod_sandbox_id,
        container: ids.container_id,
    };
    // Until nc listens.
    for _ in 0..100 {
        if download(&target).await == BYTES {
            return target;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name}: the bench server in the pod does not answer");
}

async fn exec_echo(t: &Target) {
    let mut session = client::exec(
        t.runtime.as_ref(),
        &t.container,
        &["echo", "hi"],
        ExecOptions {
            stderr: false,
            ..Default::default()
        },
    )
    .await
    .expect("exec");
    let mut out = String::new();
    let mut stdout = session.stdout.take().unwrap();
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "hi\n");
    assert_eq!(session.wait().await.unwrap(), 0);
}

/// create + start (attached) + read + inspect of an `echo hi` exec, straight on Docker.
async fn docker_exec_floor(docker: &bollard::Docker, container: &str) {
    use futures::StreamExt;
    let exec = docker
        .create_exec(
            container,
            bollard::models::ExecConfig {
                attach_stdout: Some(true),
                cmd: Some(vec!["echo".into(), "hi".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    if let bollard::exec::StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    {
        while output.next().await.is_some() {}
    }
    while docker.inspect_exec(&exec.id).await.unwrap().running == Some(true) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn download(t: &Target) -> u64 {
    let Ok(mut stream) = client::port_forward(t.runtime.as_ref(), &t.pod, 8081).await else {
        return 0;
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    // Stop at the last byte: when the end of stream shows depends on each server's grace
    // period after the pod closes (containerd: 1 s), which is not throughput.
    while total < BYTES {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    total
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (Some(docker), Some(containerd), Some(pause), Some(image)) = (
        env_value("DOCKER_ENDPOINT"),
        env_value("CONTAINERD_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
        env_value("ANYCRI_TEST_IMAGE"),
    ) else {
        eprintln!("SKIPPED: the streaming bench needs `scripts/runtime-env up`");
        return;
    };
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let targets = rt.block_on(async {
        let shim = Arc::new(
            DockerRuntime::builder(&docker)
                .pause_image(&pause)
                .state_dir(format!("{env_dir}/anycri-docker"))
                .connect()
                .await
                .expect("Docker shim"),
        );
        shim.pull_image_if_absent(&image, None).await.unwrap();
        let ctrd = Arc::new(
            GrpcRuntime::builder(&containerd)
                .connect()
                .await
                .expect("containerd"),
        );
        ctrd.pull_image_if_absent(&image, None).await.unwrap();
        vec![
            prepare("docker_shim", shim, &image).await,
            prepare("containerd", ctrd, &image).await,
        ]
    });

    let floor = bollard::Docker::connect_with_unix(
        docker.trim_start_matches("unix://"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .expect("Docker");
    let mut group = c.benchmark_group("ExecEcho");
    group.sample_size(30);
    for t in &targets {
        group.bench_function(t.name, |b| b.to_async(&rt).iter(|| exec_echo(t)));
    }
    // What Docker's exec API costs by itself, for the shim's overhead.
    let shim_container = targets[0].container.clone();
    group.bench_function("docker_api_floor", |b| {
        b.to_async(&rt)
            .iter(|| docker_exec_floor(&floor, &shim_container))
    });
    group.finish();

    let mut group = c.benchmark_group("PortForward16MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(BYTES));
    for t in &targets {
        group.bench_function(t.name, |b| {
            b.to_async(&rt).iter(|| async {
                assert_eq!(download(t).await, BYTES);
            })
        });
    }
    group.finish();

    rt.block_on(async {
        for t in &targets {
            cleanup(t.runtime.as_ref()).await;
        }
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
