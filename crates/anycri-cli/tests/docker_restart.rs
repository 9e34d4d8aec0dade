//! `anycri shim docker` as a separate process, driven over its socket by `GrpcRuntime`, while
//! the environment's dockerd stops and starts again (`scripts/runtime-env restart-docker`,
//! which restarts it with the command line `up` gave it): calls made while dockerd is down
//! fail with Unavailable (no hang, no panic, no half-made pod), and afterwards the pods and
//! containers made before are listed with the same IDs and metadata, in the states Docker
//! reports, can be stopped and removed, and new pods run; the shim's GetContainerEvents stream
//! outlives the restart and reports every transition of every container and sandbox in order. Restarts the environment's dockerd,
//! so it runs only in the serial `live` group with `ANYCRI_REQUIRE_LIVE=1` (CI) or with
//! `ANYCRI_ALLOW_DOCKERD_RESTART=1`, and skips otherwise. Needs `scripts/runtime-env up`.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use anycri::{
    ContainerConfigBuilder, ErrorKind, ImageService, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt, api::*, grpc::GrpcRuntime,
};
use anycri_testenv::{
    Daemon, docker, env_value, grpc_client, live_required, runtime_env, skip_or_fail,
};

/// The label that marks this test's pods and containers.
const TEST_LABEL: &str = "anycri.test/docker-restart";

/// Docker containers this test made, removed straight through Docker when the test ends
/// early (a pod removed through the CRI is gone already and `docker rm` just says so).
struct Leftovers {
    docker: String,
    ids: Vec<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let _ = docker(
                &self.docker,
                &[&["rm", "-f", "-v"], &self.ids_ref()[..]].concat(),
            );
        }
    }
}

impl Leftovers {
    fn ids_ref(&self) -> Vec<&str> {
        self.ids.iter().map(String::as_str).collect()
    }
}

/// Whether Docker itself says the container runs, and its exit code.
fn docker_state(endpoint: &str, id: &str) -> (bool, i32) {
    let out = docker(
        endpoint,
        &[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            id,
        ],
    )
    .unwrap_or_else(|| panic!("docker inspect {id} failed"));
    let (running, code) = out.split_once(' ').expect("two fields");
    (running == "true", code.parse().expect("an exit code"))
}

/// A call that must not hang: generous, it only turns a hang into a failure.
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// The test's pods, by ID.
async fn our_pods(rt: &GrpcRuntime) -> HashMap<String, PodSandbox> {
    rt.list_pod_sandbox(ListPodSandboxRequest {
        filter: Some(PodSandboxFilter {
            label_selector: HashMap::from([(TEST_LABEL.into(), "1".into())]),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .items
    .into_iter()
    .map(|p| (p.id.clone(), p))
    .collect()
}

/// The test's containers, by ID.
async fn our_containers(rt: &GrpcRuntime) -> HashMap<String, Container> {
    rt.list_containers(ListContainersRequest {
        filter: Some(ContainerFilter {
            label_selector: HashMap::from([(TEST_LABEL.into(), "1".into())]),
            ..Default::default()
        }),
    })
    .await
    .unwrap()
    .containers
    .into_iter()
    .map(|c| (c.id.clone(), c))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_shim_daemon_survives_dockerd_restart() {
    let mut values = HashMap::new();
    for key in [
        "DOCKER_ENDPOINT",
        "DOCKER_PID",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_TEST_IMAGE",
        "ANYCRI_ENV_DIR",
    ] {
        match env_value(key) {
            Some(v) => values.insert(key, v),
            None => return skip_or_fail(&format!("{key} unknown")),
        };
    }
    // Everybody else's containers in this environment stop with dockerd: only where the live
    // tests run one at a time (CI) or when asked.
    if !live_required() && std::env::var("ANYCRI_ALLOW_DOCKERD_RESTART").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED: restarts the environment's dockerd; set ANYCRI_ALLOW_DOCKERD_RESTART=1 \
             (implied by ANYCRI_REQUIRE_LIVE=1)"
        );
        return;
    }
    let docker_endpoint = values["DOCKER_ENDPOINT"].clone();
    let env_dir = &values["ANYCRI_ENV_DIR"];
    if docker(&docker_endpoint, &["version", "-f", "{{.Server.Version}}"]).is_none() {
        return skip_or_fail(&format!("dockerd at {docker_endpoint} does not answer"));
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("shim.sock").to_string_lossy().into_owned();
    let state = dir.path().join("state").to_string_lossy().into_owned();
    let listen = format!("unix://{socket}");
    let _shim = Daemon::spawn(
        Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args([
                "shim",
                "docker",
                "--listen",
                &listen,
                "--docker-endpoint",
                &docker_endpoint,
                "--pause-image",
                &values["ANYCRI_PAUSE_IMAGE"],
                "--state-dir",
                &state,
                "--runtime-request-timeout",
                "30s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    );
    let rt = grpc_client(&socket).await;
    // Container events over the whole test, dockerd's restart included: none may be lost,
    // and the stream outlives the restart.
    let events = rt.get_container_events(GetEventsRequest {}).await.unwrap();
    let seen: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let collector = tokio::spawn(collect_events(events, seen.clone()));
    let mut leftovers = Leftovers {
        docker: docker_endpoint.clone(),
        ids: Vec::new(),
    };

    // Before: one pod with a running container and one that exited with code 3.
    let uid = anycri::builders::new_uid();
    let pod_config = PodSandboxConfigBuilder::new(format!("restart-{}", &uid[..8]), "anycri-test")
        .uid(uid.clone())
        .label(TEST_LABEL, "1")
        .annotation("anycri.test/note", "kept across the restart")
        .log_directory(format!("{env_dir}/logs/docker-restart-{uid}"))
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    leftovers.ids.push(pod.clone());
    let running = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("runs", &values["ANYCRI_TEST_IMAGE"])
                .command([
                    "sh",
                    "-c",
                    "trap 'exit 0' TERM; echo up; while true; do sleep 1; done",
                ])
                .label(TEST_LABEL, "1")
                .build(),
        )
        .await
        .unwrap();
    leftovers.ids.push(running.clone());
    let exited = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("exits", &values["ANYCRI_TEST_IMAGE"])
                .command(["sh", "-c", "exit 3"])
                .label(TEST_LABEL, "1")
                .build(),
        )
        .await
        .unwrap();
    leftovers.ids.push(exited.clone());
    let status = rt
        .wait_for_container_state(
            &exited,
            ContainerState::ContainerExited,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(status.exit_code, 3);
    let pods_before = our_pods(&rt).await;
    let containers_before = our_containers(&rt).await;
    assert_eq!(pods_before.len(), 1);
    assert_eq!(containers_before.len(), 2);

    // dockerd stops (SIGTERM: it stops its containers first). Its pid as the env file has it
    // now (a restart rewrites it; a DOCKER_PID exported into the shell may be an old one).
    let pid = std::fs::read_to_string(format!("{env_dir}/env"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("DOCKER_PID="))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| values["DOCKER_PID"].clone());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "dockerd", "DOCKER_PID {pid} is not dockerd");
    let pid = &pid;
    assert!(
        Command::new("kill")
            .args(["-TERM", pid])
            .status()
            .unwrap()
            .success()
    );
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    bounded("dockerd's shutdown", async {
        while std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        }) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    // While it is down: clear Unavailable errors from the shim, which itself keeps serving
    // (a client that does not wait for a reconnect, and does not handshake: Version asks
    // Docker too).
    let impatient = GrpcRuntime::builder(format!("unix://{socket}"))
        .handshake(false)
        .reconnect_for(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let err = bounded("Version", impatient.version(Default::default()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = bounded(
        "ListPodSandbox",
        impatient.list_pod_sandbox(Default::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = bounded(
        "ContainerStatus",
        impatient.container_status(ContainerStatusRequest {
            container_id: running.clone(),
            verbose: false,
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = bounded(
        "StopPodSandbox",
        impatient.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let err = bounded("ListImages", impatient.list_images(Default::default()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let lost_uid = anycri::builders::new_uid();
    let err = bounded(
        "RunPodSandbox",
        impatient.run_pod(
            PodSandboxConfigBuilder::new(format!("lost-{}", &lost_uid[..8]), "anycri-test")
                .uid(lost_uid)
                .label(TEST_LABEL, "1")
                .log_directory(format!("{env_dir}/logs/docker-restart-lost"))
                .build(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    // dockerd comes back with the command line it had.
    tokio::task::spawn_blocking(|| runtime_env("restart-docker"))
        .await
        .unwrap();

    // The same pods and containers, with their metadata, in the states Docker reports (the
    // daemon stopped them: no live restore), and nothing of the failed RunPodSandbox.
    let pods_after = our_pods(&rt).await;
    assert_eq!(
        pods_after.keys().collect::<Vec<_>>(),
        pods_before.keys().collect::<Vec<_>>(),
        "the pod is listed with its ID, and no other"
    );
    let (before, after) = (&pods_before[&pod], &pods_after[&pod]);
    assert_eq!(after.metadata, before.metadata);
    assert_eq!(after.labels, before.labels);
    assert_eq!(after.annotations, before.annotations);
    assert_eq!(after.created_at, before.created_at);
    let (pause_running, _) = docker_state(&docker_endpoint, &pod);
    let want = if pause_running {
        PodSandboxState::SandboxReady
    } else {
        PodSandboxState::SandboxNotready
    };
    assert_eq!(after.state, want as i32, "the pod's state is Docker's");
    let status = rt.get_pod_status(&pod).await.unwrap();
    assert_eq!(status.metadata, before.metadata);
    assert_eq!(status.state, want as i32);

    let containers_after = our_containers(&rt).await;
    assert_eq!(
        {
            let mut k = containers_after.keys().collect::<Vec<_>>();
            k.sort();
            k
        },
        {
            let mut k = containers_before.keys().collect::<Vec<_>>();
            k.sort();
            k
        },
        "the containers are listed with their IDs"
    );
    for id in [&running, &exited] {
        let (before, after) = (&containers_before[id], &containers_after[id]);
        assert_eq!(after.metadata, before.metadata);
        assert_eq!(after.pod_sandbox_id, pod);
        assert_eq!(after.labels, before.labels);
        assert_eq!(after.image_ref, before.image_ref);
        assert_eq!(after.created_at, before.created_at);
        let (docker_running, docker_exit) = docker_state(&docker_endpoint, id);
        let status = rt
            .container_status(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .status
            .unwrap();
        let want = if docker_running {
            ContainerState::ContainerRunning
        } else {
            ContainerState::ContainerExited
        };
        assert_eq!(
            after.state, want as i32,
            "{id}: the listed state is Docker's"
        );
        assert_eq!(status.state, want as i32, "{id}: the status is Docker's");
        if !docker_running {
            assert_eq!(status.exit_code, docker_exit, "{id}: Docker's exit code");
            // A container dockerd took down with it may come back without a finish time
            // (Docker's zero time, reported as 0: unknown); a known one is not before the start.
            assert!(
                status.finished_at == 0 || status.finished_at >= status.started_at,
                "{id}: finished at {} before it started at {}",
                status.finished_at,
                status.started_at
            );
        }
    }
    let status = rt.get_container_status(&exited).await.unwrap();
    assert_eq!(
        status.exit_code, 3,
        "the exited container kept its exit code"
    );
    assert_eq!(status.state, ContainerState::ContainerExited as i32);

    // They can be stopped and removed; new pods run.
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_with_containers(&pod).await.unwrap();
    assert!(our_pods(&rt).await.is_empty());
    assert!(our_containers(&rt).await.is_empty());
    let fresh_uid = anycri::builders::new_uid();
    let ids = rt
        .run_pod_and_container(
            PodSandboxConfigBuilder::new(format!("fresh-{}", &fresh_uid[..8]), "anycri-test")
                .uid(fresh_uid.clone())
                .label(TEST_LABEL, "1")
                .log_directory(format!("{env_dir}/logs/docker-restart-{fresh_uid}"))
                .build(),
            ContainerConfigBuilder::new("fresh", &values["ANYCRI_TEST_IMAGE"])
                .command(["sh", "-c", "sleep 3600"])
                .label(TEST_LABEL, "1")
                .build(),
        )
        .await
        .unwrap();
    leftovers.ids.push(ids.pod_sandbox_id.clone());
    leftovers.ids.push(ids.container_id.clone());
    let out = rt
        .exec_collect(
            &ids.container_id,
            &["echo", "after"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "after\n");
    rt.remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
    assert!(our_pods(&rt).await.is_empty());
    leftovers.ids.clear();

    // Every transition of every container and sandbox, in order, across the restart.
    let last = ids.pod_sandbox_id.clone();
    bounded("the last DELETED event", async {
        while !seen
            .lock()
            .unwrap()
            .iter()
            .any(|(id, t)| *id == last && *t == ContainerEventType::ContainerDeletedEvent as i32)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    collector.abort();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(_, t)| *t >= 0),
        "the event stream broke: {seen:?}"
    );
    let of = |id: &str| -> Vec<i32> {
        seen.iter()
            .filter(|(i, _)| i == id)
            .map(|(_, t)| *t)
            .collect()
    };
    let container = [
        ContainerEventType::ContainerCreatedEvent as i32,
        ContainerEventType::ContainerStartedEvent as i32,
        ContainerEventType::ContainerStoppedEvent as i32,
        ContainerEventType::ContainerDeletedEvent as i32,
    ];
    let sandbox = &container[..];
    for id in [&running, &exited, &ids.container_id] {
        assert_eq!(of(id), container, "events of container {id}: {seen:?}");
    }
    for id in [&pod, &ids.pod_sandbox_id] {
        assert_eq!(of(id), sandbox, "events of sandbox {id}: {seen:?}");
    }
}

/// Records `(container ID, event type)` of every event; an error as `(message, -1)`.
async fn collect_events(
    mut events: anycri::CriStream<ContainerEventResponse>,
    seen: Arc<Mutex<Vec<(String, i32)>>>,
) {
    use futures::StreamExt as _;
    while let Some(event) = events.next().await {
        match event {
            Ok(e) => seen
                .lock()
                .unwrap()
                .push((e.container_id, e.container_event_type)),
            Err(e) => {
                seen.lock().unwrap().push((format!("error: {e}"), -1));
                return;
            }
        }
    }
    seen.lock().unwrap().push(("stream ended".into(), -1));
}
