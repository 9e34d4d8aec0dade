//! Shared live checks: the same async checks run against every backend (containerd through
//! `GrpcRuntime`, the Docker shim in-process and served, the fake). A target is found from the environment
//! the project's `scripts/runtime-env` prints; without it a live test skips with a printed
//! reason, or fails when `ANYCRI_REQUIRE_LIVE=1` (CI).

#![allow(dead_code)]

pub use anycri_testenv::{env_value, skip_or_fail};
use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, Error, ErrorKind, ImageService, ImageServiceExt,
    PodSandboxConfigBuilder, RuntimeFlavour, RuntimeService, RuntimeServiceExt, api::*,
};

/// A backend under test and what it needs.
pub struct Target {
    pub name: &'static str,
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Arc<dyn ImageService>,
    /// An image every container runs (present or pullable).
    pub image: String,
    /// An image only the image check pulls and removes.
    pub pull_image: String,
    /// A directory for pod logs.
    pub log_dir: PathBuf,
    pub flavour: RuntimeFlavour,
    /// Label put on everything this test process creates.
    pub run_label: String,
}

pub const RUN_LABEL_KEY: &str = "anycri.test/run";

fn run_label() -> String {
    format!("{}-{}", std::process::id(), anycri::builders::new_uid())
}

/// containerd from `scripts/runtime-env`, or None after skipping.
pub async fn containerd() -> Option<Target> {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return None;
    };
    let runtime = match anycri::grpc::GrpcRuntime::builder(&endpoint)
        .request_timeout(Duration::from_secs(60))
        .connect()
        .await
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            skip_or_fail(&format!("containerd at {endpoint} does not answer: {e}"));
            return None;
        }
    };
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    let image =
        env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"));
    runtime
        .pull_image_if_absent(&image, None)
        .await
        .expect("pull the test image");
    Some(Target {
        name: "containerd",
        runtime: runtime.clone(),
        images: runtime,
        image,
        pull_image: env_value("ANYCRI_PULL_IMAGE")
            .unwrap_or_else(|| format!("{registry}/anycri/pulltest:1.0")),
        log_dir: PathBuf::from(
            env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into()),
        ),
        flavour: RuntimeFlavour::Containerd,
        run_label: run_label(),
    })
}

/// The in-process Docker shim on the dockerd from `scripts/runtime-env`, or None after skipping.
pub async fn docker() -> Option<Target> {
    let Some(endpoint) = env_value("ANYCRI_DOCKER_ENDPOINT") else {
        skip_or_fail("ANYCRI_DOCKER_ENDPOINT is not set and no runtime-env file was found");
        return None;
    };
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    let pause =
        env_value("ANYCRI_PAUSE_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/pause:1.0"));
    let uri = format!("{endpoint}?pause_image={pause}&state_dir={env_dir}/anycri-docker");
    let connected = match anycri::connect(&uri).await {
        Ok(c) => c,
        Err(e) => {
            skip_or_fail(&format!("Docker at {endpoint} does not answer: {e}"));
            return None;
        }
    };
    let image =
        env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"));
    connected
        .image
        .pull_image_if_absent(&image, None)
        .await
        .expect("pull the test image");
    Some(Target {
        name: "docker",
        runtime: connected.runtime,
        images: connected.image,
        image,
        pull_image: env_value("ANYCRI_PULL_IMAGE")
            .unwrap_or_else(|| format!("{registry}/anycri/pulltest:1.0")),
        log_dir: PathBuf::from(
            env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| format!("{env_dir}/logs")),
        ),
        flavour: RuntimeFlavour::Anycri,
        run_label: run_label(),
    })
}

/// `inner` served by anycri-server on a fresh unix socket, and reached through `GrpcRuntime`:
/// the same target, one CRI hop away. The server stops when the returned guard drops.
pub async fn served(inner: Target) -> (Target, tokio::sync::oneshot::Sender<()>) {
    let dir = std::env::temp_dir().join(format!("anycri-served-{}", anycri::builders::new_uid()));
    let socket = dir.join("cri.sock");
    let server = anycri_server::CriServer::new(inner.runtime.clone(), inner.images.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = socket.clone();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = anycri_server::serve_unix(server, &path, Default::default(), shutdown).await
        {
            eprintln!("server failed: {e}");
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    });
    let uri = format!("unix://{}", socket.display());
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = anycri::grpc::GrpcRuntime::builder(&uri)
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
        {
            client = Some(Arc::new(c));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = client.expect("the server answers");
    let target = Target {
        name: inner.name,
        runtime: client.clone(),
        images: client,
        ..inner
    };
    (target, stop)
}

/// A fresh fake runtime with the test images present.
pub fn fake() -> Target {
    let fake = Arc::new(anycri::fake::FakeRuntime::new());
    let image = "127.0.0.1:5000/anycri/busybox:1.0".to_string();
    fake.add_image(&image).unwrap();
    let log_dir = std::env::temp_dir().join(format!("anycri-fake-logs-{}", std::process::id()));
    Target {
        name: "fake",
        runtime: fake.clone(),
        images: fake,
        image,
        pull_image: "127.0.0.1:5000/anycri/pulltest:1.0".into(),
        log_dir,
        flavour: RuntimeFlavour::Anycri,
        run_label: run_label(),
    }
}

impl Target {
    pub fn pod(&self, name: &str) -> PodSandboxConfig {
        let uid = anycri::builders::new_uid();
        PodSandboxConfigBuilder::new(format!("{name}-{}", &uid[..8]), "anycri-test")
            .uid(uid.clone())
            .label(RUN_LABEL_KEY, &self.run_label)
            .label("case", name)
            .log_directory(self.log_dir.join(&uid).to_string_lossy())
            .build()
    }

    pub fn container(&self, name: &str, script: &str) -> ContainerConfig {
        ContainerConfigBuilder::new(name, &self.image)
            .command(["sh", "-c", script])
            .label(RUN_LABEL_KEY, &self.run_label)
            .build()
    }

    /// Remove every pod this process created (by label).
    pub async fn cleanup(&self) {
        let pods = self
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    label_selector: HashMap::from([(
                        RUN_LABEL_KEY.to_string(),
                        self.run_label.clone(),
                    )]),
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.items)
            .unwrap_or_default();
        for p in pods {
            if let Err(e) = self.runtime.remove_pod_with_containers(&p.id).await {
                eprintln!("cleanup of pod {} failed: {e}", p.id);
            }
        }
    }
}

/// Run `check` and then clean up, also when it panicked.
pub async fn with_cleanup<F, Fut>(target: Target, check: F)
where
    F: FnOnce(Arc<Target>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let target = Arc::new(target);
    let result = tokio::spawn(check(target.clone())).await;
    target.cleanup().await;
    // The fake's log files live in a temporary directory of this test process.
    if target.name == "fake" {
        let _ = std::fs::remove_dir_all(&target.log_dir);
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, Error>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.kind(),
    }
}

// ---------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------

pub async fn version_status_capabilities(t: Arc<Target>) {
    let v = t
        .runtime
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap();
    assert_eq!(v.runtime_api_version, "v1", "{v:?}");
    assert_eq!(
        RuntimeFlavour::from_runtime_name(&v.runtime_name),
        t.flavour,
        "{v:?}"
    );
    let info = anycri::discover(&*t.runtime).await.unwrap();
    assert!(info.ready(), "runtime not ready: {:?}", info.conditions);
    assert!(!info.runtime_version.is_empty());
    // Whatever discovery says is absent must really be refused with Unimplemented, or have
    // its reason (a runtime that has the RPC on a host where CRIU fails).
    if !info.capabilities.checkpoint_container {
        let reason = &info.capability_reasons["checkpoint_container"];
        if reason.starts_with("unimplemented") {
            let r = t
                .runtime
                .checkpoint_container(CheckpointContainerRequest {
                    container_id: "x".into(),
                    ..Default::default()
                })
                .await;
            assert_eq!(kind(r), ErrorKind::Unimplemented);
        } else {
            assert!(reason.contains("criu"), "checkpoint absent: {reason}");
        }
    }
    if !info.capabilities.exec {
        let r = t
            .runtime
            .exec(ExecRequest {
                container_id: "x".into(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await;
        assert_eq!(kind(r), ErrorKind::Unimplemented);
    }
}

pub async fn pod_lifecycle(t: Arc<Target>) {
    let config = t.pod("pod");
    let meta = config.metadata.clone().unwrap();
    let id = t.runtime.run_pod(config.clone()).await.unwrap();

    let status = t.runtime.get_pod_status(&id).await.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(status.metadata.as_ref(), Some(&meta));
    assert_eq!(status.labels.get("case").map(String::as_str), Some("pod"));
    let ip = status
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert!(ip.parse::<std::net::IpAddr>().is_ok(), "pod IP {ip:?}");

    let list = |filter: PodSandboxFilter| {
        let rt = t.runtime.clone();
        async move {
            rt.list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(PodSandboxFilter {
            id: id.clone(),
            ..Default::default()
        })
        .await,
        vec![id.clone()]
    );
    let by_label = PodSandboxFilter {
        label_selector: HashMap::from([
            (RUN_LABEL_KEY.to_string(), t.run_label.clone()),
            ("case".to_string(), "pod".to_string()),
        ]),
        ..Default::default()
    };
    assert_eq!(list(by_label.clone()).await, vec![id.clone()]);
    let wrong_label = PodSandboxFilter {
        label_selector: HashMap::from([("case".to_string(), "nothing-has-this".to_string())]),
        ..Default::default()
    };
    assert!(list(wrong_label).await.is_empty());
    let state = |s: PodSandboxState| PodSandboxFilter {
        id: id.clone(),
        state: Some(PodSandboxStateValue { state: s as i32 }),
        ..Default::default()
    };
    assert_eq!(
        list(state(PodSandboxState::SandboxReady)).await,
        vec![id.clone()]
    );
    assert!(
        list(state(PodSandboxState::SandboxNotready))
            .await
            .is_empty()
    );

    let stop = || {
        t.runtime.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
    };
    stop().await.unwrap();
    stop().await.unwrap();
    assert_eq!(
        t.runtime.get_pod_status(&id).await.unwrap().state,
        PodSandboxState::SandboxNotready as i32
    );
    assert_eq!(
        list(state(PodSandboxState::SandboxNotready)).await,
        vec![id.clone()]
    );

    let remove = || {
        t.runtime.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
    };
    remove().await.unwrap();
    remove().await.unwrap();
    assert_eq!(
        kind(t.runtime.get_pod_status(&id).await),
        ErrorKind::NotFound
    );
    assert!(list(by_label).await.is_empty());
}

pub async fn container_lifecycle(t: Arc<Target>) {
    let pod_config = t.pod("ctr");
    let pod = t.runtime.run_pod(pod_config.clone()).await.unwrap();
    let config = t.container("main", "echo hello; echo oops >&2; sleep 3600");
    let id = t
        .runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        })
        .await
        .unwrap()
        .container_id;

    let status = t.runtime.get_container_status(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerCreated as i32);
    assert_eq!(status.metadata, config.metadata);
    assert_eq!(status.labels.get(RUN_LABEL_KEY), Some(&t.run_label));

    let list = |filter: ContainerFilter| {
        let rt = t.runtime.clone();
        async move {
            rt.list_containers(ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ContainerFilter {
            pod_sandbox_id: pod.clone(),
            ..Default::default()
        })
        .await,
        vec![id.clone()]
    );
    assert_eq!(
        list(ContainerFilter {
            id: id.clone(),
            ..Default::default()
        })
        .await,
        vec![id.clone()]
    );
    let running = ContainerFilter {
        id: id.clone(),
        state: Some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    assert!(list(running.clone()).await.is_empty());

    t.runtime
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    let status = t
        .runtime
        .wait_for_container_state(
            &id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(status.started_at > 0);
    assert_eq!(list(running).await, vec![id.clone()]);
    let by_label = ContainerFilter {
        label_selector: HashMap::from([(RUN_LABEL_KEY.to_string(), t.run_label.clone())]),
        pod_sandbox_id: pod.clone(),
        ..Default::default()
    };
    assert_eq!(list(by_label).await, vec![id.clone()]);

    // Starting twice is refused.
    assert!(
        t.runtime
            .start_container(StartContainerRequest {
                container_id: id.clone()
            })
            .await
            .is_err()
    );

    let stop = || {
        t.runtime.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 1,
        })
    };
    stop().await.unwrap();
    stop().await.unwrap();
    let status = t.runtime.get_container_status(&id).await.unwrap();
    assert_eq!(status.state, ContainerState::ContainerExited as i32);
    assert!(status.finished_at >= status.started_at);

    let remove = || {
        t.runtime.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
    };
    remove().await.unwrap();
    remove().await.unwrap();
    assert_eq!(
        kind(t.runtime.get_container_status(&id).await),
        ErrorKind::NotFound
    );
    t.runtime.remove_pod_with_containers(&pod).await.unwrap();
}

pub async fn exec_sync_and_logs(t: Arc<Target>) {
    let pod_config = t.pod("exec");
    let container = t.container("logger", "echo hello; echo oops >&2; sleep 3600");
    let ids = t
        .runtime
        .run_pod_and_container(pod_config.clone(), container.clone())
        .await
        .unwrap();
    let id = &ids.container_id;
    t.runtime
        .wait_for_container_state(
            id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .unwrap();

    let out = t
        .runtime
        .exec_collect(id, &["echo", "from", "exec"], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (out.stdout_str().as_str(), out.exit_code),
        ("from exec\n", 0),
        "{out:?}"
    );
    let out = t
        .runtime
        .exec_collect(
            id,
            &["sh", "-c", "echo to-stderr >&2; exit 3"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3, "{out:?}");
    assert_eq!(out.stderr_str(), "to-stderr\n");
    assert!(out.stdout.is_empty());

    let started = std::time::Instant::now();
    let err = t
        .runtime
        .exec_collect(id, &["sleep", "30"], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout was not honoured"
    );

    // The log file is where the pod's log directory and the container's log path say.
    let status = t.runtime.get_container_status(id).await.unwrap();
    let expected = PathBuf::from(&pod_config.log_directory).join(&container.log_path);
    assert_eq!(PathBuf::from(&status.log_path), expected);
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = t.runtime.read_container_log(id).await.unwrap_or_default();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got: Vec<_> = lines
        .iter()
        .map(|l| (l.stream, l.content.as_str()))
        .collect();
    assert!(
        got.contains(&(anycri::logs::LogStream::Stdout, "hello")),
        "{got:?}"
    );
    assert!(
        got.contains(&(anycri::logs::LogStream::Stderr, "oops")),
        "{got:?}"
    );
    // Every raw line is in the CRI format with a parseable RFC 3339 timestamp.
    let raw = std::fs::read_to_string(&expected).unwrap();
    for line in raw.lines() {
        anycri::logs::parse_line(line).unwrap().time().unwrap();
    }
    t.runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
}

pub async fn container_stats(t: Arc<Target>) {
    let container = t.container("stats", "sleep 3600");
    let ids = t
        .runtime
        .run_pod_and_container(t.pod("stats"), container)
        .await
        .unwrap();
    let id = ids.container_id.clone();
    t.runtime
        .wait_for_container_state(
            &id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let stats = t
        .runtime
        .container_stats(ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap()
        .stats
        .unwrap();
    assert_eq!(stats.attributes.as_ref().unwrap().id, id);
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value);
    assert!(mem.is_some_and(|m| m > 0), "memory working set {mem:?}");
    assert!(stats.cpu.as_ref().is_some_and(|c| c.timestamp > 0));
    let listed = t
        .runtime
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                id: id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .stats;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].attributes.as_ref().unwrap().id, id);
    t.runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
}

pub async fn images(t: Arc<Target>) {
    let image = t.pull_image.clone();
    t.images.remove_image_if_present(&image).await.unwrap();
    assert!(t.images.find_image(&image).await.unwrap().is_none());
    let image_ref = t
        .images
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .image_ref;
    assert!(!image_ref.is_empty());
    let found = t
        .images
        .find_image(&image)
        .await
        .unwrap()
        .expect("pulled image is present");
    assert!(
        found.repo_tags.iter().any(|tag| tag.ends_with(&image)),
        "{found:?}"
    );
    // Found by its ID too, and listed.
    assert_eq!(
        t.images.find_image(&found.id).await.unwrap().map(|i| i.id),
        Some(found.id.clone())
    );
    let listed = t
        .images
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .images;
    assert!(listed.iter().any(|i| i.id == found.id));
    t.images.remove_image_if_present(&image).await.unwrap();
    assert!(t.images.find_image(&image).await.unwrap().is_none());
    t.images.remove_image_if_present(&image).await.unwrap();
    // A malformed reference is the caller's error.
    let bad = t
        .images
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: "Not A Valid Ref".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert!(bad.is_err());
}

pub async fn not_found(t: Arc<Target>) {
    let missing = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let rt = &t.runtime;
    assert_eq!(
        kind(
            rt.container_status(ContainerStatusRequest {
                container_id: missing.into(),
                verbose: false
            })
            .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            rt.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: missing.into(),
                verbose: false
            })
            .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            rt.start_container(StartContainerRequest {
                container_id: missing.into()
            })
            .await
        ),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            rt.container_stats(ContainerStatsRequest {
                container_id: missing.into()
            })
            .await
        ),
        ErrorKind::NotFound
    );
    // Removing what does not exist is success (the kubelet retries removals).
    rt.remove_container(RemoveContainerRequest {
        container_id: missing.into(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: missing.into(),
    })
    .await
    .unwrap();
    let image = t
        .images
        .find_image("127.0.0.1:5000/anycri/does-not-exist:1")
        .await
        .unwrap();
    assert!(image.is_none());
}

pub async fn pod_sandbox_stats(t: Arc<Target>) {
    let info = anycri::discover(&*t.runtime).await.unwrap();
    if !info.capabilities.pod_sandbox_stats {
        let r = t
            .runtime
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest::default())
            .await;
        assert_eq!(kind(r), ErrorKind::Unimplemented);
        return;
    }
    // Like the kubelet, give the pod a cgroup parent: containerd 1.6 reads pod stats from it.
    let mut pod = t.pod("podstats");
    let uid = pod.metadata.as_ref().unwrap().uid.clone();
    pod.linux.get_or_insert_with(Default::default).cgroup_parent = format!("/anycri-test/pod{uid}");
    let ids = t
        .runtime
        .run_pod_and_container(pod, t.container("c", "sleep 3600"))
        .await
        .unwrap();
    t.runtime
        .wait_for_container_state(
            &ids.container_id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let stats = t
        .runtime
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: ids.pod_sandbox_id.clone(),
        })
        .await
        .unwrap()
        .stats
        .unwrap();
    assert_eq!(stats.attributes.as_ref().unwrap().id, ids.pod_sandbox_id);
    let linux = stats.linux.unwrap();
    assert!(
        linux
            .memory
            .and_then(|m| m.working_set_bytes)
            .is_some_and(|v| v.value > 0)
    );
    let listed = t
        .runtime
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
            filter: Some(PodSandboxStatsFilter {
                id: ids.pod_sandbox_id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .stats;
    assert_eq!(listed.len(), 1);
    t.runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
}

/// `follow_container_log`: lines arrive as the container writes them, the follower moves to
/// the new file after ReopenContainerLog, and the stream ends once the container exited.
pub async fn follow_log(t: Arc<Target>) {
    use futures::StreamExt;
    // The container waits for a marker file before each further line, so the test controls
    // when lines are written (no sleeps to race against).
    let container = t.container(
        "follow",
        "echo one; while [ ! -e /tmp/go2 ]; do sleep 0.1; done; echo two; \
         while [ ! -e /tmp/go3 ]; do sleep 0.1; done; echo three",
    );
    let ids = t
        .runtime
        .run_pod_and_container(t.pod("follow"), container)
        .await
        .unwrap();
    let id = ids.container_id.clone();
    let status = t.runtime.get_container_status(&id).await.unwrap();
    let mut lines = anycri::follow_container_log(t.runtime.as_ref(), &id, Default::default())
        .await
        .unwrap();
    // A hang guard only: a broken follower fails here instead of blocking the suite.
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(60), lines.next())
            .await
            .expect("no log line within 60 s")
    };
    let first = next().await.unwrap().unwrap();
    assert_eq!(first.content, "one");

    // Rotate: move the file away and ask the runtime to reopen it, then let the container
    // write its next line into the new file.
    let rotated = format!("{}.1", status.log_path);
    std::fs::rename(&status.log_path, &rotated).unwrap();
    t.runtime
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
    let go = async |marker: &str| {
        let out = t
            .runtime
            .exec_collect(&id, &["touch", marker], Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(out.exit_code, 0, "{out:?}");
    };
    go("/tmp/go2").await;
    assert_eq!(next().await.unwrap().unwrap().content, "two");
    go("/tmp/go3").await;
    assert_eq!(next().await.unwrap().unwrap().content, "three");
    // The container exits after its last line: the stream ends.
    assert!(next().await.is_none(), "the follower did not end");
    drop(lines);
    std::fs::remove_file(&rotated).ok();
    t.runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await
        .unwrap();
}
