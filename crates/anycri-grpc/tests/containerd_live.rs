//! The `containerd` feature on real containerds: `GetContainerEvents` on containerd 1.6 from
//! its events service (the live environment's containerd from `scripts/runtime-env`), no
//! transition lost across a containerd restart, and the diagnosis of a containerd whose CRI
//! plugin is disabled. The restart and diagnosis tests start containerds of their own (a
//! temporary root, state and socket; the live one is shared with other tests and is never
//! restarted here), with the binary and config of the live environment's containerd.
//!
//! Without the environment the tests skip, or fail under `ANYCRI_REQUIRE_LIVE=1`.
//! Run: `cargo test -p anycri-grpc --features containerd --test containerd_live`.

#![cfg(feature = "containerd")]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anycri_core::{
    ContainerConfigBuilder, ErrorKind, ImageServiceExt, PodSandboxConfigBuilder, RuntimeFlavour,
    RuntimeService, RuntimeServiceExt,
    api::{
        ContainerEventResponse, ContainerEventType, ContainerState, ContainerStatusRequest,
        GetEventsRequest, PodSandboxConfig, PodSandboxState,
    },
    service::CriStream,
};
use anycri_grpc::GrpcRuntime;
use anycri_testenv::{env_value, skip_or_fail};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

const RUN_LABEL: &str = "anycri.test/containerd-events";

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The live environment's containerd, or None after skipping.
async fn live() -> Option<(Arc<GrpcRuntime>, String, String)> {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return None;
    };
    let runtime = match GrpcRuntime::builder(&endpoint)
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
    let image = test_image();
    runtime
        .pull_image_if_absent(&image, None)
        .await
        .expect("pull the test image");
    Some((runtime, endpoint, image))
}

fn test_image() -> String {
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"))
}

fn pod_config(name: &str, log_dir: &Path, host_network: bool) -> PodSandboxConfig {
    let uid = anycri_core::builders::new_uid();
    PodSandboxConfigBuilder::new(format!("{name}-{}", &uid[..8]), "anycri-test")
        .uid(uid.clone())
        .label(RUN_LABEL, std::process::id().to_string())
        .log_directory(log_dir.join(&uid).to_string_lossy())
        .host_network(host_network)
        .build()
}

/// Events received, with when they arrived.
struct Collector {
    rx: mpsc::UnboundedReceiver<(ContainerEventResponse, i64)>,
    seen: Vec<(ContainerEventResponse, i64)>,
}

impl Collector {
    fn new(mut stream: CriStream<ContainerEventResponse>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(e) => {
                        if tx.send((e, now_ns())).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("event stream error: {e}");
                        return;
                    }
                }
            }
            eprintln!("event stream ended");
        });
        Collector {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits until `id` had an event of `kind`; returns it and when it arrived.
    async fn wait_for(
        &mut self,
        id: &str,
        kind: ContainerEventType,
        timeout: Duration,
    ) -> (ContainerEventResponse, i64) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .seen
                .iter()
                .find(|(e, _)| e.container_id == id && e.container_event_type() == kind)
            {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => panic!("the event stream ended before {kind:?} of {id}"),
                Err(_) => panic!(
                    "no {kind:?} for {id} within {timeout:?}; seen: {:?}",
                    self.kinds(id)
                ),
            }
        }
    }

    /// The kinds of `id`'s events so far, in order.
    fn kinds(&self, id: &str) -> Vec<ContainerEventType> {
        self.seen
            .iter()
            .filter(|(e, _)| e.container_id == id)
            .map(|(e, _)| e.container_event_type())
            .collect()
    }
}

fn latency_ms(event: &ContainerEventResponse, arrived: i64) -> f64 {
    (arrived - event.created_at) as f64 / 1e6
}

// ---------------------------------------------------------------------------------------
// Events on the live containerd (1.6: its CRI has no GetContainerEvents).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_events_from_containerd() {
    let Some((rt, _, image)) = live().await else {
        return;
    };
    let version = rt.version_info().unwrap();
    eprintln!(
        "containerd {} (CRI {})",
        version.runtime_version, version.runtime_api_version
    );
    // The capability probe sees events (on 1.6 only through the events service).
    let info = anycri_core::discover(rt.as_ref()).await.unwrap();
    assert!(
        info.capabilities.container_events,
        "container_events not reported: {:?}",
        info.capability_reasons
    );

    let mut events = Collector::new(
        rt.get_container_events(GetEventsRequest {})
            .await
            .expect("GetContainerEvents"),
    );
    let log_dir = PathBuf::from(
        env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into()),
    );
    let pod_cfg = pod_config("events", &log_dir, false);
    let t0 = Instant::now();
    let pod = rt.run_pod(pod_cfg.clone()).await.unwrap();
    let run_pod = t0.elapsed();
    let result = async {
        let config = ContainerConfigBuilder::new("events", &image)
            .command(["sh", "-c", "sleep 3600"])
            .build();
        let ctr = rt
            .create_container_in(&pod, &pod_cfg, config)
            .await
            .unwrap();
        let (created, created_at) = events
            .wait_for(
                &ctr,
                ContainerEventType::ContainerCreatedEvent,
                Duration::from_secs(10),
            )
            .await;
        rt.start_container(anycri_core::api::StartContainerRequest {
            container_id: ctr.clone(),
        })
        .await
        .unwrap();
        let (started, started_at) = events
            .wait_for(
                &ctr,
                ContainerEventType::ContainerStartedEvent,
                Duration::from_secs(10),
            )
            .await;
        rt.stop_container(anycri_core::api::StopContainerRequest {
            container_id: ctr.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
        let (stopped, stopped_at) = events
            .wait_for(
                &ctr,
                ContainerEventType::ContainerStoppedEvent,
                Duration::from_secs(10),
            )
            .await;
        rt.remove_container(anycri_core::api::RemoveContainerRequest {
            container_id: ctr.clone(),
        })
        .await
        .unwrap();
        let (deleted, deleted_at) = events
            .wait_for(
                &ctr,
                ContainerEventType::ContainerDeletedEvent,
                Duration::from_secs(10),
            )
            .await;
        rt.stop_pod_sandbox(anycri_core::api::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap();
        let (pod_stopped, _) = events
            .wait_for(
                &pod,
                ContainerEventType::ContainerStoppedEvent,
                Duration::from_secs(10),
            )
            .await;
        rt.remove_pod_sandbox(anycri_core::api::RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap();
        let (pod_deleted, _) = events
            .wait_for(
                &pod,
                ContainerEventType::ContainerDeletedEvent,
                Duration::from_secs(10),
            )
            .await;
        let (pod_started, _) = events
            .wait_for(
                &pod,
                ContainerEventType::ContainerStartedEvent,
                Duration::from_secs(1),
            )
            .await;

        // Lifecycle order, each transition once.
        use ContainerEventType as K;
        assert_eq!(
            events.kinds(&ctr),
            [
                K::ContainerCreatedEvent,
                K::ContainerStartedEvent,
                K::ContainerStoppedEvent,
                K::ContainerDeletedEvent
            ]
        );
        assert_eq!(
            events.kinds(&pod),
            [
                K::ContainerCreatedEvent,
                K::ContainerStartedEvent,
                K::ContainerStoppedEvent,
                K::ContainerDeletedEvent
            ]
        );
        // Statuses, as the kubelet's evented PLEG reads them: the new state already.
        let state_in = |e: &ContainerEventResponse| {
            e.containers_statuses
                .iter()
                .find(|s| s.id == ctr)
                .map(|s| s.state())
        };
        for (event, want) in [
            (&created, ContainerState::ContainerCreated),
            (&started, ContainerState::ContainerRunning),
            (&stopped, ContainerState::ContainerExited),
        ] {
            let status = event
                .pod_sandbox_status
                .as_ref()
                .expect("pod sandbox status");
            assert_eq!(status.id, pod);
            assert_eq!(
                state_in(event),
                Some(want),
                "{:?}",
                event.container_event_type()
            );
        }
        assert_eq!(
            state_in(&deleted),
            None,
            "a deleted container has no status"
        );
        assert_eq!(
            pod_started.pod_sandbox_status.as_ref().map(|s| s.state()),
            Some(PodSandboxState::SandboxReady)
        );
        assert_eq!(
            pod_stopped.pod_sandbox_status.as_ref().map(|s| s.state()),
            Some(PodSandboxState::SandboxNotready)
        );
        // Gone (anycri on 1.6), or its last status (containerd 2.x sends it).
        assert!(
            pod_deleted
                .pod_sandbox_status
                .as_ref()
                .is_none_or(|s| s.state() == PodSandboxState::SandboxNotready),
            "{:?}",
            pod_deleted.pod_sandbox_status
        );
        eprintln!(
            "RunPodSandbox {run_pod:?}; event latency (containerd's timestamp to arrival, \
             statuses included): created {:.1} ms, started {:.1} ms, stopped {:.1} ms, \
             deleted {:.1} ms",
            latency_ms(&created, created_at),
            latency_ms(&started, started_at),
            latency_ms(&stopped, stopped_at),
            latency_ms(&deleted, deleted_at),
        );
    };
    let outcome = std::panic::AssertUnwindSafe(result).catch_unwind().await;
    let _ = rt.remove_pod_with_containers(&pod).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn namespaces_and_cri_plugin_of_the_live_containerd() {
    let Some((rt, _, _)) = live().await else {
        return;
    };
    let namespaces = rt.containerd_namespaces().await.unwrap();
    let names: Vec<&str> = namespaces.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"k8s.io"), "{names:?}");
    let plugin = rt
        .containerd_client()
        .await
        .unwrap()
        .cri_plugin()
        .await
        .unwrap();
    assert!(plugin.is_loaded(), "{plugin:?}");
    eprintln!("namespaces {names:?}, {plugin:?}");
}

/// Docker's own containerd (the live dockerd's managed one) has `disabled_plugins = ["cri"]`.
#[tokio::test]
async fn dockers_containerd_is_explained() {
    let Some(exec_root) = env_value("DOCKER_EXEC_ROOT") else {
        skip_or_fail("DOCKER_EXEC_ROOT is not set and no runtime-env file was found");
        return;
    };
    let socket = format!("{exec_root}/containerd/containerd.sock");
    if !Path::new(&socket).exists() {
        skip_or_fail(&format!("Docker's containerd socket {socket} is missing"));
        return;
    }
    let endpoint = format!("unix://{socket}");
    let err = GrpcRuntime::connect(&endpoint).await.unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message().contains("CRI plugin"), "{err}");
    assert!(err.message().contains("disabled_plugins"), "{err}");
    let client = anycri_containerd_client(&endpoint).await;
    let names: Vec<String> = client
        .namespaces()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert!(names.iter().any(|n| n == "moby"), "{names:?}");
}

async fn anycri_containerd_client(
    endpoint: &str,
) -> anycri_grpc::anycri_containerd::ContainerdClient {
    anycri_grpc::anycri_containerd::ContainerdClient::connect(endpoint)
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// containerds of our own.

/// A containerd started by a test: its own root, state, runc root and socket under a
/// temporary directory. Dropping it kills it and whatever it left running, and removes the
/// directory.
struct OwnContainerd {
    dir: PathBuf,
    config: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

impl OwnContainerd {
    /// The live environment's containerd binary (beside its ctr) and config, or None after
    /// skipping.
    fn live_binary_and_config() -> Option<(PathBuf, String)> {
        let (Some(ctr), Some(config)) =
            (env_value("CONTAINERD_CTR"), env_value("CONTAINERD_CONFIG"))
        else {
            skip_or_fail("CONTAINERD_CTR/CONTAINERD_CONFIG are not set");
            return None;
        };
        let binary = Path::new(&ctr).with_file_name("containerd");
        match std::fs::read_to_string(&config) {
            Ok(text) if binary.exists() => Some((binary, text)),
            _ => {
                skip_or_fail(&format!("{} or {config} is missing", binary.display()));
                None
            }
        }
    }

    fn new_dir() -> PathBuf {
        // Short: the socket path must fit a sockaddr_un.
        let dir = PathBuf::from(format!(
            "/var/tmp/anycri-ctrd-{}-{}",
            std::process::id(),
            &anycri_core::builders::new_uid()[..6]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A containerd with the live environment's config, moved to a directory of its own.
    fn with_live_config() -> Option<Self> {
        let (binary, text) = Self::live_binary_and_config()?;
        let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
        let dir = Self::new_dir();
        let ours = dir.display().to_string();
        let text = text
            .replace(
                &format!("{env_dir}/containerd"),
                &format!("{ours}/containerd"),
            )
            .replace(&format!("{env_dir}/runc"), &format!("{ours}/runc"));
        let live_certs = PathBuf::from(format!("{env_dir}/containerd/certs.d"));
        std::fs::create_dir_all(dir.join("containerd/opt")).unwrap();
        if live_certs.is_dir() {
            let status = Command::new("cp")
                .arg("-a")
                .arg(&live_certs)
                .arg(dir.join("containerd/"))
                .status()
                .unwrap();
            assert!(status.success());
        }
        Some(Self::start(dir, binary, &text))
    }

    /// A containerd with a minimal config (no CRI settings) and `disabled_plugins`; `version`
    /// None leaves the key out (config version 1, where plugins are named by their short ID,
    /// as in Docker's own containerd config).
    fn minimal(disabled: &[&str], version: Option<u32>) -> Option<Self> {
        let (binary, _) = Self::live_binary_and_config()?;
        let dir = Self::new_dir();
        let d = dir.display();
        let disabled: Vec<String> = disabled.iter().map(|p| format!("{p:?}")).collect();
        let version = version.map_or(String::new(), |v| format!("version = {v}\n"));
        let text = format!(
            "{version}root = \"{d}/containerd/root\"\nstate = \"{d}/containerd/state\"\n\
             disabled_plugins = [{}]\n\n[grpc]\n  address = \"{d}/containerd/containerd.sock\"\n\n\
             [ttrpc]\n  address = \"{d}/containerd/containerd.sock.ttrpc\"\n",
            disabled.join(", ")
        );
        std::fs::create_dir_all(dir.join("containerd")).unwrap();
        Some(Self::start(dir, binary, &text))
    }

    fn start(dir: PathBuf, binary: PathBuf, config: &str) -> Self {
        let path = dir.join("config.toml");
        std::fs::write(&path, config).unwrap();
        let mut own = OwnContainerd {
            dir,
            config: path,
            binary,
            child: None,
        };
        own.spawn();
        own
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("containerd/containerd.sock")
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Starts the daemon and waits until its socket accepts.
    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        let path = format!(
            "{}:{}",
            self.binary.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("containerd exited ({status}): {}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "containerd does not listen after 30 s: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills the daemon hard, as a crash would (its shims and containers stay).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// PIDs of processes whose command line mentions our directory (shims, by their
    /// `-address`), and their descendants.
    fn leftover_pids(&self) -> Vec<i32> {
        let ours = self.dir.display().to_string();
        let mut parents: HashMap<i32, i32> = HashMap::new();
        let mut roots = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&ours) {
                roots.push(pid);
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                && let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r)
                && let Some(ppid) = rest.split(' ').nth(1).and_then(|p| p.parse().ok())
            {
                parents.insert(pid, ppid);
            }
        }
        let mut all = roots.clone();
        let mut i = 0;
        while i < all.len() {
            let p = all[i];
            all.extend(parents.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
            i += 1;
        }
        all.retain(|p| *p != std::process::id() as i32);
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Drop for OwnContainerd {
    fn drop(&mut self) {
        self.kill();
        for pid in self.leftover_pids() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let runc_root = self.dir.join("runc");
        if let Ok(roots) = std::fs::read_dir(&runc_root) {
            for ns in roots.flatten() {
                if let Ok(out) = Command::new("runc")
                    .arg("--root")
                    .arg(ns.path())
                    .args(["list", "-q"])
                    .output()
                {
                    for id in String::from_utf8_lossy(&out.stdout).lines() {
                        let _ = Command::new("runc")
                            .arg("--root")
                            .arg(ns.path())
                            .args(["delete", "--force", id])
                            .status();
                    }
                }
            }
        }
        // Mounts under our directory (rootfs, shm), deepest first.
        let ours = self.dir.display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&ours))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

async fn expect_disabled(own: &OwnContainerd) -> String {
    let err = GrpcRuntime::connect(own.endpoint()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    let message = err.message().to_owned();
    assert!(message.contains("CRI plugin"), "{message}");
    assert!(message.contains("disabled"), "{message}");
    assert!(message.contains("disabled_plugins"), "{message}");
    message
}

#[tokio::test]
async fn disabled_cri_plugin_is_explained() {
    let Some(own) = OwnContainerd::minimal(&["io.containerd.grpc.v1.cri"], Some(2)) else {
        return;
    };
    let message = expect_disabled(&own).await;
    eprintln!("version 2, disabled_plugins = [\"io.containerd.grpc.v1.cri\"]: {message}");
    let client = anycri_containerd_client(&own.endpoint()).await;
    assert!(!client.cri_plugin().await.unwrap().is_loaded());
    drop(own);

    // The short ID, as Docker writes it: a version 1 config (no `version` key) reads it.
    let Some(own) = OwnContainerd::minimal(&["cri"], None) else {
        return;
    };
    let message = expect_disabled(&own).await;
    eprintln!("version 1, disabled_plugins = [\"cri\"]: {message}");
}

/// containerd is killed while a container runs; the container's process is killed while
/// containerd is down; after containerd is back, its STOPPED event still arrives (the
/// watch resubscribes and relists), then the rest of the lifecycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transition_lost_across_a_containerd_restart() {
    if env_value("CONTAINERD_ENDPOINT").is_none() {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return;
    }
    let Some(mut own) = OwnContainerd::with_live_config() else {
        return;
    };
    let rt = Arc::new(
        GrpcRuntime::builder(own.endpoint())
            .request_timeout(Duration::from_secs(60))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("own containerd: {e}\n{}", own.log_tail())),
    );
    assert_eq!(rt.flavour(), Some(RuntimeFlavour::Containerd));
    let image = test_image();
    rt.pull_image_if_absent(&image, None).await.unwrap();
    // anycri::watch: the runtime's own stream (containerd 2.x) or containerd's events service
    // (1.6), resubscribed and relisted after the restart.
    let watched = anycri_core::watch::watch(
        rt.clone() as Arc<dyn anycri_core::RuntimeService>,
        anycri_core::watch::WatchOptions::default(),
    )
    .await
    .unwrap();
    let mut events = Collector::new(watched.map(|e| e.map(|w| w.event)).boxed());

    let log_dir = own.dir.join("logs");
    let pod_cfg = pod_config("restart", &log_dir, true);
    let pod = rt.run_pod(pod_cfg.clone()).await.unwrap();
    let config = ContainerConfigBuilder::new("victim", &image)
        .command(["sh", "-c", "sleep 3600"])
        .build();
    let ctr = rt
        .create_and_start_container(&pod, &pod_cfg, config)
        .await
        .unwrap();
    events
        .wait_for(
            &ctr,
            ContainerEventType::ContainerStartedEvent,
            Duration::from_secs(10),
        )
        .await;
    let verbose = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: true,
        })
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&verbose.info["info"]).unwrap();
    let pid = info["pid"].as_i64().expect("the container's pid");

    own.kill();
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        events.kinds(&ctr).last(),
        Some(&ContainerEventType::ContainerStartedEvent),
        "nothing can arrive while containerd is down"
    );
    let restarted = Instant::now();
    own.spawn();
    let (stopped, _) = events
        .wait_for(
            &ctr,
            ContainerEventType::ContainerStoppedEvent,
            Duration::from_secs(30),
        )
        .await;
    eprintln!(
        "STOPPED arrived {:?} after containerd was restarted",
        restarted.elapsed()
    );
    let state = stopped
        .containers_statuses
        .iter()
        .find(|s| s.id == ctr)
        .map(|s| s.state());
    assert_eq!(state, Some(ContainerState::ContainerExited));

    // The stream keeps working after the restart.
    rt.remove_pod_with_containers(&pod).await.unwrap();
    events
        .wait_for(
            &ctr,
            ContainerEventType::ContainerDeletedEvent,
            Duration::from_secs(10),
        )
        .await;
    events
        .wait_for(
            &pod,
            ContainerEventType::ContainerDeletedEvent,
            Duration::from_secs(10),
        )
        .await;
    use ContainerEventType as K;
    assert_eq!(
        events.kinds(&ctr),
        [
            K::ContainerCreatedEvent,
            K::ContainerStartedEvent,
            K::ContainerStoppedEvent,
            K::ContainerDeletedEvent
        ]
    );
    assert_eq!(
        events.kinds(&pod),
        [
            K::ContainerCreatedEvent,
            K::ContainerStartedEvent,
            K::ContainerStoppedEvent,
            K::ContainerDeletedEvent
        ]
    );
}
