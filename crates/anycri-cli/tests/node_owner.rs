//! One owner per node (the Docker shim): `anycri shim docker` holds its state directory's
//! owner lock, a second daemon on the same directory is refused, and in-process users of
//! the shim — the `anycri -r docker://…` commands and a tool embedding the backend that
//! starts a container of its own — write no log and no host state while the daemon runs:
//! every line of every container's CRI log appears exactly once (the daemon writes the log
//! of the container the tool started, following Docker's events), and a `docker://` endpoint
//! with another state directory creates nothing. Needs `scripts/runtime-env up`; skips with a
//! reason without it and fails under ANYCRI_REQUIRE_LIVE=1.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use anycri::api::*;
use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
};
use anycri_testenv::{Daemon, env_value, grpc_client, skip_or_fail};

fn shim(listen: &str, docker: &str, pause: &str, state: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anycri"));
    c.args([
        "shim",
        "docker",
        "--listen",
        listen,
        "--docker-endpoint",
        docker,
        "--pause-image",
        pause,
        "--state-dir",
        state,
    ]);
    c
}

/// Each content line of a CRI log file, with how often it appears.
fn counts(path: &str) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = HashMap::new();
    for line in anycri::logs::parse_log(&text).expect("a CRI log") {
        *out.entry(line.content).or_insert(0) += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_daemon_owns_the_node_and_in_process_users_write_nothing() {
    let mut v = HashMap::new();
    for key in [
        "DOCKER_ENDPOINT",
        "ANYCRI_DOCKER_ENDPOINT",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_TEST_IMAGE",
        "ANYCRI_LOG_DIR",
    ] {
        match env_value(key) {
            Some(value) => v.insert(key, value),
            None => return skip_or_fail(&format!("{key} unknown")),
        };
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let socket = dir.path().join("shim.sock").to_string_lossy().into_owned();
    let listen = format!("unix://{socket}");
    let pause = &v["ANYCRI_PAUSE_IMAGE"];
    let _daemon = Daemon::spawn(
        shim(&listen, &v["DOCKER_ENDPOINT"], pause, &state)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    );
    let rt = grpc_client(&socket).await;

    // A second daemon on the same state directory is refused, naming the holder.
    let second = shim(
        &format!("unix://{}/second.sock", dir.path().display()),
        &v["DOCKER_ENDPOINT"],
        pause,
        &state,
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second owner started: {err}");
    assert!(
        err.contains("another process") && err.contains("manages"),
        "{err}"
    );

    // A pod and a container through the daemon, printing numbered lines for ~3 s.
    let uid = anycri::builders::new_uid();
    let log_dir = format!("{}/owner-{uid}", v["ANYCRI_LOG_DIR"]);
    let pod_config = PodSandboxConfigBuilder::new(format!("owner-{}", &uid[..8]), "anycri-test")
        .uid(uid.clone())
        .log_directory(&log_dir)
        .build();
    let image = &v["ANYCRI_TEST_IMAGE"];
    rt.pull_image_if_absent(image, None).await.unwrap();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let lines = |prefix: &str| {
        format!("i=1; while [ $i -le 60 ]; do echo {prefix}-$i; i=$((i+1)); sleep 0.05; done")
    };
    let a = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("a", image)
                .command(["sh", "-c", &lines("a")])
                .build(),
        )
        .await
        .unwrap();

    // Meanwhile: the CLI in-process three times (the same state directory), once with
    // another state directory, and a tool embedding the shim that starts a container.
    let docker_uri = |state: &str| {
        format!(
            "{}?pause_image={pause}&state_dir={state}",
            v["ANYCRI_DOCKER_ENDPOINT"]
        )
    };
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(["-r", &docker_uri(&state), "ps", "-a"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elsewhere = dir.path().join("elsewhere").to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
        .args(["-r", &docker_uri(&elsewhere), "ps", "-a"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        !std::path::Path::new(&elsewhere).exists(),
        "connecting created {elsewhere}"
    );
    let tool = anycri::connect(&docker_uri(&state)).await.unwrap().runtime;
    let b = tool
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("b", image)
                .command(["sh", "-c", &lines("b")])
                .build(),
        )
        .await
        .unwrap();
    // ReopenContainerLog belongs to the owner.
    let err = tool
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: b.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::FailedPrecondition, "{err}");

    for id in [&a, &b] {
        rt.wait_for_container_state(id, ContainerState::ContainerExited, Duration::from_secs(60))
            .await
            .unwrap();
    }
    // The writers drain what Docker has.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (id, prefix) in [(&a, "a"), (&b, "b")] {
        let path = rt.get_container_status(id).await.unwrap().log_path;
        let seen = counts(&path);
        for i in 1..=60 {
            let line = format!("{prefix}-{i}");
            assert_eq!(seen.get(&line), Some(&1), "{line} in {path}: {seen:?}");
        }
        assert_eq!(seen.len(), 60, "{path}: {seen:?}");
    }
    rt.remove_pod_with_containers(&pod).await.unwrap();
}
