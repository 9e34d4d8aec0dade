//! `anycri shim docker` and `anycri proxy` as separate processes, driven over their sockets by
//! `GrpcRuntime`: a pod survives a restart of the shim process; the proxy forwards to
//! containerd and counts every call in its metrics. Needs `scripts/runtime-env up`.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use anycri_testenv::{Daemon, grpc_client, live_values};

use anycri::{
    ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*,
};

/// `anycri ARGS` as a daemon, its log on the test's stderr.
fn start(args: &[&str]) -> Daemon {
    Daemon::spawn(
        Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_shim_daemon_survives_its_restart() {
    let Some([docker, pause, image, env_dir]) = live_values([
        "DOCKER_ENDPOINT",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_TEST_IMAGE",
        "ANYCRI_ENV_DIR",
    ]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir
        .path()
        .join("anycri-dockerd.sock")
        .to_string_lossy()
        .into_owned();
    let listen = format!("unix://{socket}");
    let state = format!("{env_dir}/anycri-docker");
    let args = [
        "shim",
        "docker",
        "--listen",
        &listen,
        "--docker-endpoint",
        &docker,
        "--pause-image",
        &pause,
        "--state-dir",
        &state,
    ];
    let mut shim = start(&args);
    let rt = grpc_client(&socket).await;
    assert_eq!(
        rt.version(Default::default()).await.unwrap().runtime_name,
        "anycri-docker"
    );
    let pod = PodSandboxConfigBuilder::new("daemon", "anycri-test")
        .log_directory(format!(
            "{env_dir}/logs/daemon-{}",
            anycri::builders::new_uid()
        ))
        .build();
    let ctr = ContainerConfigBuilder::new("c", &image)
        .command(["sh", "-c", "echo up; sleep 3600"])
        .build();
    let ids = rt.run_pod_and_container(pod, ctr).await.unwrap();
    rt.wait_for_container_state(
        &ids.container_id,
        ContainerState::ContainerRunning,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    // A streaming exec still running when the daemon stops: the shutdown ends its session
    // and kills it, as when a client leaves (a process that exits without that would leave
    // it running in the container).
    let session = anycri_streaming::client::exec(
        &rt,
        &ids.container_id,
        &["sleep", "4343"],
        anycri_streaming::client::ExecOptions::default(),
    )
    .await
    .unwrap();
    let ps = |rt: anycri::grpc::GrpcRuntime| {
        let id = ids.container_id.clone();
        async move {
            rt.exec_collect(&id, &["ps", "-o", "args"], Duration::from_secs(10))
                .await
                .unwrap()
                .stdout_str()
        }
    };
    let mut seen = String::new();
    for _ in 0..100 {
        seen = ps(rt.clone()).await;
        if seen.contains("sleep 4343") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.contains("sleep 4343"),
        "the exec did not start: {seen}"
    );

    // The daemon stops cleanly on SIGTERM and removes its socket; a new one sees the pod.
    assert!(shim.stop().success());
    assert!(!std::path::Path::new(&socket).exists());
    drop(session);
    let _shim = start(&args);
    let rt2 = grpc_client(&socket).await;
    for _ in 0..100 {
        seen = ps(rt2.clone()).await;
        if !seen.contains("sleep 4343") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !seen.contains("sleep 4343"),
        "the stopped daemon left its exec running: {seen}"
    );
    let status = rt2.get_pod_status(&ids.pod_sandbox_id).await.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let out = rt2
        .exec_collect(
            &ids.container_id,
            &["echo", "still here"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "still here\n");
    rt2.remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_and_counts_calls() {
    let Some([upstream]) = live_values(["CONTAINERD_ENDPOINT"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("proxy.sock").to_string_lossy().into_owned();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let metrics = format!("127.0.0.1:{port}");
    let _proxy = start(&[
        "proxy",
        "--listen",
        &format!("unix://{socket}"),
        "--upstream",
        &upstream,
        "--metrics-address",
        &metrics,
    ]);
    let rt = grpc_client(&socket).await;
    assert_eq!(
        rt.version(Default::default()).await.unwrap().runtime_name,
        "containerd"
    );
    let err = rt
        .container_status(ContainerStatusRequest {
            container_id: "0".repeat(64),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::NotFound);
    rt.list_containers(Default::default()).await.unwrap();
    let body = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&metrics).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        buf
    };
    assert!(
        body.contains("anycri_cri_requests_total{rpc=\"ListContainers\",code=\"OK\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("anycri_cri_requests_total{rpc=\"ContainerStatus\",code=\"NotFound\"} 1"),
        "{body}"
    );
    assert!(body.contains("rpc=\"Version\",code=\"OK\""), "{body}");
}
