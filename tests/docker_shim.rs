//! Docker-specific behaviour of the in-process shim, checked against the real Docker Engine
//! with bollard as an independent observer: cri-dockerd-compatible names and labels (both
//! ways), the CRI log file and its reopening, ExecSync timeouts that kill the process, a new
//! shim instance seeing everything the old one made, resource updates visible in
//! `docker inspect`, privileged containers on a host with a partial capability bounding set,
//! and cached writable-layer sizes in stats.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, RuntimeService, RuntimeServiceExt,
    api::*,
    docker::{DockerRuntime, labels},
};
use bollard::{Docker, query_parameters::InspectContainerOptions};

struct Env {
    shim: Arc<DockerRuntime>,
    docker: Docker,
    target: common::Target,
    state_dir: String,
    pause: String,
}

async fn env() -> Option<Env> {
    let target = common::docker().await?;
    let socket = common::env_value("DOCKER_ENDPOINT")?;
    let path = socket.trim_start_matches("unix://").to_owned();
    let docker = Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
        .ok()?
        .negotiate_version()
        .await
        .ok()?;
    let env_dir =
        common::env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let state_dir = format!("{env_dir}/anycri-docker");
    let pause = common::env_value("ANYCRI_PAUSE_IMAGE").unwrap();
    let shim = Arc::new(new_shim(&socket, &state_dir, &pause).await);
    Some(Env {
        shim,
        docker,
        target,
        state_dir,
        pause,
    })
}

async fn new_shim(socket: &str, state_dir: &str, pause: &str) -> DockerRuntime {
    DockerRuntime::builder(socket)
        .state_dir(state_dir)
        .pause_image(pause)
        .connect()
        .await
        .unwrap()
}

async fn inspect(docker: &Docker, id: &str) -> bollard::models::ContainerInspectResponse {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .unwrap()
}

/// Wait (up to 20 s, for loaded machines) until `path` holds at least `n` lines.
async fn wait_for_lines(path: &str, n: usize) {
    for _ in 0..200 {
        if std::fs::read_to_string(path).is_ok_and(|t| t.lines().count() >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} did not get {n} lines");
}

macro_rules! docker_test {
    ($name:ident, |$e:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some($e) = env().await else { return };
            let target = $e.target.run_label.clone();
            // Cleanup uses a shim of its own: the test may replace (and drop) its shim.
            let (state_dir, pause) = ($e.state_dir.clone(), $e.pause.clone());
            let outcome = tokio::spawn(async move {
                #[allow(unused_mut)]
                let mut $e = $e;
                $body
            })
            .await;
            // Clean up everything labelled with this run, also after a failure.
            let socket = common::env_value("DOCKER_ENDPOINT").unwrap();
            let shim = new_shim(&socket, &state_dir, &pause).await;
            let pods = shim
                .list_pod_sandbox(ListPodSandboxRequest {
                    filter: Some(PodSandboxFilter {
                        label_selector: HashMap::from([(
                            common::RUN_LABEL_KEY.to_string(),
                            target,
                        )]),
                        ..Default::default()
                    }),
                })
                .await
                .map(|r| r.items)
                .unwrap_or_default();
            for p in pods {
                let _ = shim.remove_pod_with_containers(&p.id).await;
            }
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    };
}

docker_test!(names_and_labels_are_cri_dockerds, |e| {
    let mut pod = e.target.pod("names");
    pod.annotations.insert("note".into(), "kept".into());
    let meta = pod.metadata.clone().unwrap();
    let container = e.target.container("app", "sleep 3600");
    let ids = e
        .shim
        .run_pod_and_container(pod.clone(), container)
        .await
        .unwrap();
    let p = inspect(&e.docker, &ids.pod_sandbox_id).await;
    assert_eq!(
        p.name.as_deref(),
        Some(format!("/k8s_POD_{}_{}_{}_0", meta.name, meta.namespace, meta.uid).as_str())
    );
    let pl = p.config.unwrap().labels.unwrap();
    assert_eq!(pl[labels::TYPE_LABEL], "podsandbox");
    assert_eq!(pl["annotation.note"], "kept");
    assert_eq!(pl["case"], "names");
    let c = inspect(&e.docker, &ids.container_id).await;
    assert_eq!(
        c.name.as_deref(),
        Some(format!("/k8s_app_{}_{}_{}_0", meta.name, meta.namespace, meta.uid).as_str())
    );
    let cl = c.config.unwrap().labels.unwrap();
    assert_eq!(cl[labels::TYPE_LABEL], "container");
    assert_eq!(cl[labels::SANDBOX_ID_LABEL], ids.pod_sandbox_id);
    assert!(cl[labels::LOG_PATH_LABEL].ends_with("app/0.log"));
    let host = c.host_config.unwrap();
    assert_eq!(
        host.network_mode.as_deref(),
        Some(format!("container:{}", ids.pod_sandbox_id).as_str())
    );
    assert_eq!(
        host.ipc_mode.as_deref(),
        Some(format!("container:{}", ids.pod_sandbox_id).as_str())
    );
});

docker_test!(sandboxes_made_the_cri_dockerd_way_are_managed, |e| {
    use bollard::{models::ContainerCreateBody, query_parameters::CreateContainerOptionsBuilder};
    // What cri-dockerd creates for a pod, made directly through Docker.
    let uid = anycri::builders::new_uid();
    let name = format!("k8s_POD_foreign_anycri-test_{uid}_0");
    let created = e
        .docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            ContainerCreateBody {
                image: Some(e.pause.clone()),
                labels: Some(HashMap::from([
                    (labels::TYPE_LABEL.to_string(), "podsandbox".to_string()),
                    (
                        common::RUN_LABEL_KEY.to_string(),
                        e.target.run_label.clone(),
                    ),
                    ("io.kubernetes.pod.name".to_string(), "foreign".to_string()),
                ])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    e.docker.start_container(&created.id, None).await.unwrap();
    let listed = e
        .shim
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                id: created.id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .items;
    assert_eq!(listed.len(), 1);
    let m = listed[0].metadata.clone().unwrap();
    assert_eq!(
        (m.name.as_str(), m.namespace.as_str(), m.uid.as_str()),
        ("foreign", "anycri-test", uid.as_str())
    );
    assert_eq!(listed[0].labels["io.kubernetes.pod.name"], "foreign");
    let status = e.shim.get_pod_status(&created.id).await.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    e.shim
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: created.id.clone(),
        })
        .await
        .unwrap();
    e.shim
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: created.id.clone(),
        })
        .await
        .unwrap();
    assert!(
        e.docker
            .inspect_container(&created.id, None::<InspectContainerOptions>)
            .await
            .is_err()
    );
});

docker_test!(exec_timeout_kills_the_process, |e| {
    let ids = e
        .shim
        .run_pod_and_container(
            e.target.pod("exectimeout"),
            e.target.container("c", "sleep 3600"),
        )
        .await
        .unwrap();
    let err = e
        .shim
        .exec_collect(
            &ids.container_id,
            &["sh", "-c", "sleep 313"],
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::DeadlineExceeded);
    // Neither the shell nor its child survives.
    let mut left = Vec::new();
    for _ in 0..20 {
        let top = e
            .docker
            .top_processes(
                &ids.container_id,
                None::<bollard::query_parameters::TopOptions>,
            )
            .await
            .unwrap();
        left = top
            .processes
            .unwrap_or_default()
            .into_iter()
            .flatten()
            // The command column only: "313" alone also matches a PID such as 3135.
            .filter(|f| f.contains("sleep 313"))
            .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "still running: {left:?}");
});

docker_test!(log_file_is_cri_format_and_reopens, |e| {
    let script = "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.1; done";
    let ids = e
        .shim
        .run_pod_and_container(e.target.pod("reopen"), e.target.container("writer", script))
        .await
        .unwrap();
    let path = e
        .shim
        .get_container_status(&ids.container_id)
        .await
        .unwrap()
        .log_path;
    // Docker's own JSON log is elsewhere: this is a file the shim writes.
    assert!(
        std::fs::symlink_metadata(&path)
            .map(|m| m.file_type().is_file())
            .unwrap_or(false)
    );
    wait_for_lines(&path, 3).await;
    let rotated = format!("{path}.1");
    std::fs::rename(&path, &rotated).unwrap();
    e.shim
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: ids.container_id.clone(),
        })
        .await
        .unwrap();
    wait_for_lines(&path, 3).await;
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    for text in [&old, &new] {
        assert!(!text.is_empty());
        for line in text.lines() {
            let entry = anycri::logs::parse_line(line).unwrap();
            assert!(entry.content.starts_with("line-"), "{line}");
        }
    }
    // The new file continues where the old one stopped: no line lost or repeated.
    let number = |l: &str| {
        anycri::logs::parse_line(l).unwrap().content[5..]
            .parse::<u32>()
            .unwrap()
    };
    let last_old = number(old.lines().last().unwrap());
    let first_new = number(new.lines().next().unwrap());
    assert_eq!(first_new, last_old + 1);
    // Reopening a stopped container's log is refused.
    e.shim
        .stop_container(StopContainerRequest {
            container_id: ids.container_id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    let err = e
        .shim
        .reopen_container_log(ReopenContainerLogRequest {
            container_id: ids.container_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::FailedPrecondition);
});

// critest's "should support RunAsGroup" read an empty log once: ContainerStatus said EXITED
// before the shim's writer had written the container's only line. A short container's last
// output must be in its log when ContainerStatus first reports it exited.
docker_test!(
    an_exited_containers_log_is_complete_when_status_says_exited,
    |e| {
        let pod_config = e.target.pod("drain");
        let pod = e
            .shim
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(pod_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap()
            .pod_sandbox_id;
        for round in 0..15 {
            let mut config = e
                .target
                .container(&format!("short-{round}"), "echo last-line-$0");
            config.args = vec![format!("r{round}")];
            config.log_path = format!("short-{round}.log");
            let id = e
                .shim
                .create_and_start_container(&pod, &pod_config, config)
                .await
                .unwrap();
            let status = loop {
                let status = e.shim.get_container_status(&id).await.unwrap();
                if status.state() == ContainerState::ContainerExited {
                    break status;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let log = std::fs::read_to_string(&status.log_path).unwrap_or_default();
            assert!(
                log.contains(&format!("last-line-r{round}")),
                "round {round}: EXITED reported with the log {log:?}"
            );
        }
    }
);

docker_test!(
    a_log_path_outside_the_log_directory_is_refused_and_nothing_is_made,
    |e| {
        let pod_config = e.target.pod("logpath");
        let pod = e.shim.run_pod(pod_config.clone()).await.unwrap();
        for bad in [
            "../escape.log",
            "/tmp/anycri-escape.log",
            "c/../../escape.log",
        ] {
            let mut config = e.target.container("c", "true");
            config.log_path = bad.into();
            // Straight to the RPC: the client-side helpers refuse it too.
            let err = e
                .shim
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(config),
                    sandbox_config: Some(pod_config.clone()),
                })
                .await
                .unwrap_err();
            assert_eq!(
                err.kind(),
                anycri::ErrorKind::InvalidArgument,
                "{bad}: {err}"
            );
        }
        let left = e
            .shim
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .containers;
        assert!(left.is_empty(), "half-made containers: {left:?}");
        assert!(!std::path::Path::new("/tmp/anycri-escape.log").exists());
    }
);

docker_test!(a_new_shim_sees_everything_and_resumes_logging, |e| {
    let script = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done";
    let pod = e.target.pod("restart");
    let ids = e
        .shim
        .run_pod_and_container(pod, e.target.container("ticker", script))
        .await
        .unwrap();
    let before_pod = e.shim.get_pod_status(&ids.pod_sandbox_id).await.unwrap();
    let before_ctr = e
        .shim
        .get_container_status(&ids.container_id)
        .await
        .unwrap();
    // A new process: a shim built from scratch on the same Docker and state directory. It
    // writes nothing until it manages the node, which it may once the old one is gone (its
    // owner lock with it), as a restarted daemon does.
    let socket = common::env_value("DOCKER_ENDPOINT").unwrap();
    let fresh = Arc::new(new_shim(&socket, &e.state_dir, &e.pause).await);
    drop(std::mem::replace(&mut e.shim, fresh.clone()));
    fresh.manage_node().await.unwrap();
    let after_pod = e.shim.get_pod_status(&ids.pod_sandbox_id).await.unwrap();
    let after_ctr = e
        .shim
        .get_container_status(&ids.container_id)
        .await
        .unwrap();
    assert_eq!(after_pod.metadata, before_pod.metadata);
    assert_eq!(after_pod.network, before_pod.network);
    assert_eq!(after_pod.labels, before_pod.labels);
    assert_eq!(after_ctr.metadata, before_ctr.metadata);
    assert_eq!(after_ctr.log_path, before_ctr.log_path);
    assert_eq!(after_ctr.image_id, before_ctr.image_id);
    // The log keeps growing under the new shim, with no entry written twice.
    let count = || {
        std::fs::read_to_string(&after_ctr.log_path)
            .unwrap()
            .lines()
            .count()
    };
    let n = count();
    wait_for_lines(&after_ctr.log_path, n + 2).await;
    let text = std::fs::read_to_string(&after_ctr.log_path).unwrap();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        assert!(
            seen.insert(anycri::logs::parse_line(line).unwrap().content.to_owned()),
            "duplicate {line}"
        );
    }
});

docker_test!(resource_updates_show_in_docker_inspect, |e| {
    let ids = e
        .shim
        .run_pod_and_container(
            e.target.pod("update"),
            e.target.container("c", "sleep 3600"),
        )
        .await
        .unwrap();
    e.shim
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: ids.container_id.clone(),
            linux: Some(LinuxContainerResources {
                cpu_shares: 512,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                memory_limit_in_bytes: 96 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let host = inspect(&e.docker, &ids.container_id)
        .await
        .host_config
        .unwrap();
    assert_eq!(host.cpu_shares, Some(512));
    assert_eq!(host.cpu_quota, Some(50_000));
    assert_eq!(host.memory, Some(96 << 20));
    let status = e
        .shim
        .get_container_status(&ids.container_id)
        .await
        .unwrap();
    assert_eq!(
        status
            .resources
            .unwrap()
            .linux
            .unwrap()
            .memory_limit_in_bytes,
        96 << 20
    );
});

docker_test!(privileged_containers_run_on_this_host, |e| {
    let container = ContainerConfigBuilder::new("priv", &e.target.image)
        .command(["sh", "-c", "sleep 3600"])
        .privileged(true)
        .label(common::RUN_LABEL_KEY, &e.target.run_label)
        .build();
    let ids = e
        .shim
        .run_pod_and_container(e.target.pod("priv"), container)
        .await
        .unwrap();
    let out = e
        .shim
        .exec_collect(
            &ids.container_id,
            &["sh", "-c", "grep CapEff /proc/self/status"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let eff = u64::from_str_radix(out.stdout_str().split_whitespace().nth(1).unwrap(), 16).unwrap();
    // CAP_SYS_ADMIN (21) and CAP_NET_ADMIN (12) are there, as a privileged container expects.
    assert_ne!(eff & (1 << 21), 0, "{}", out.stdout_str());
    assert_ne!(eff & (1 << 12), 0, "{}", out.stdout_str());
});

docker_test!(writable_layer_sizes_are_cached, |e| {
    let ids = e
        .shim
        .run_pod_and_container(e.target.pod("sizes"), e.target.container("c", "sleep 3600"))
        .await
        .unwrap();
    let size = |rt: Arc<DockerRuntime>, id: String| async move {
        rt.container_stats(ContainerStatsRequest { container_id: id })
            .await
            .unwrap()
            .stats
            .unwrap()
            .writable_layer
            .unwrap()
            .used_bytes
            .unwrap()
            .value
    };
    let first = size(e.shim.clone(), ids.container_id.clone()).await;
    e.shim
        .exec_collect(
            &ids.container_id,
            &["dd", "if=/dev/zero", "of=/grow", "bs=1024", "count=2048"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    // Within the cache's lifetime the size is not measured again.
    assert_eq!(size(e.shim.clone(), ids.container_id.clone()).await, first);
    // A shim with a fresh cache measures the file.
    let socket = common::env_value("DOCKER_ENDPOINT").unwrap();
    let fresh = Arc::new(new_shim(&socket, &e.state_dir, &e.pause).await);
    assert!(size(fresh, ids.container_id.clone()).await >= first + (2 << 20));
});

docker_test!(taken_names_and_bad_names_are_refused, |e| {
    let pod = e.target.pod("dupes");
    let id = e.shim.run_pod(pod.clone()).await.unwrap();
    // The same pod metadata again is the same Docker name.
    let err = e.shim.run_pod(pod.clone()).await.unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::AlreadyExists, "{err}");
    let c = e.target.container("twice", "sleep 3600");
    let create = |config: ContainerConfig| {
        let (shim, pod, id) = (e.shim.clone(), pod.clone(), id.clone());
        async move {
            shim.create_container(CreateContainerRequest {
                pod_sandbox_id: id,
                config: Some(config),
                sandbox_config: Some(pod),
            })
            .await
        }
    };
    create(c.clone()).await.unwrap();
    assert_eq!(
        create(c.clone()).await.unwrap_err().kind(),
        anycri::ErrorKind::AlreadyExists
    );
    // A name Docker's naming scheme cannot carry is the caller's error, naming the field.
    let mut bad = c.clone();
    bad.metadata.as_mut().unwrap().name = "with_underscore".into();
    let err = create(bad).await.unwrap_err();
    assert_eq!(err.kind(), anycri::ErrorKind::InvalidArgument);
    assert!(err.message().contains("config.metadata.name"), "{err}");
    let mut no_image = c.clone();
    no_image.image = None;
    assert_eq!(
        create(no_image).await.unwrap_err().kind(),
        anycri::ErrorKind::InvalidArgument
    );
    let mut missing_image = c;
    missing_image.metadata.as_mut().unwrap().name = "other".into();
    missing_image.image.as_mut().unwrap().image = "127.0.0.1:5000/anycri/never-pushed:1".into();
    assert_eq!(
        create(missing_image).await.unwrap_err().kind(),
        anycri::ErrorKind::NotFound
    );
    // Nothing half-made is left: only the one container exists in the pod.
    let listed = e
        .shim
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: id.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .containers;
    assert_eq!(listed.len(), 1);
});

docker_test!(pod_and_container_config_reach_the_processes, |e| {
    use anycri::PodSandboxConfigBuilder;
    let dir = tempfile::tempdir_in(common::env_value("ANYCRI_ENV_DIR").unwrap()).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "from the host\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let uid = anycri::builders::new_uid();
    let port = 20000 + (std::process::id() % 10000) as i32;
    let mut pod = PodSandboxConfigBuilder::new(format!("cfg-{}", &uid[..8]), "anycri-test")
        .uid(uid.clone())
        .hostname("cfg-host")
        .dns(&["10.0.0.10"], &["svc.example"], &["ndots:3"])
        .port_mapping(Protocol::Tcp, 8080, port)
        .label(common::RUN_LABEL_KEY, &e.target.run_label)
        .log_directory(dir.path().join("logs").to_string_lossy())
        .build();
    pod.linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("net.ipv4.ip_unprivileged_port_start".into(), "1000".into());
    let mut c = ContainerConfigBuilder::new("cfg", &e.target.image)
        .command([
            "sh",
            "-c",
            "echo served > /tmp/index.html; httpd -f -p 8080 -h /tmp",
        ])
        .env("GREETING", "hi there")
        .working_dir("/tmp")
        .mount(link.to_string_lossy(), "/data", true)
        .run_as_user(1000)
        .run_as_group(3000)
        .readonly_rootfs(false)
        .build();
    let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
    sc.supplemental_groups = vec![4000];
    sc.no_new_privs = true;
    sc.capabilities = Some(Capability {
        drop_capabilities: vec!["ALL".into()],
        add_capabilities: vec!["NET_BIND_SERVICE".into()],
        ..Default::default()
    });
    c.devices.push(Device {
        container_path: "/dev/mynull".into(),
        host_path: "/dev/null".into(),
        permissions: "rwm".into(),
    });
    let ids = e.shim.run_pod_and_container(pod, c).await.unwrap();
    let exec = |cmd: &'static str| {
        let (shim, id) = (e.shim.clone(), ids.container_id.clone());
        async move {
            let out = shim
                .exec_collect(&id, &["sh", "-c", cmd], Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(out.exit_code, 0, "{cmd}: {}", out.stderr_str());
            out.stdout_str()
        }
    };
    assert_eq!(exec("id -u; id -g").await, "1000\n3000\n");
    assert!(exec("id -G").await.split_whitespace().any(|g| g == "4000"));
    assert_eq!(exec("echo $GREETING; pwd").await, "hi there\n/tmp\n");
    assert_eq!(exec("hostname").await, "cfg-host\n");
    let resolv = exec("cat /etc/resolv.conf").await;
    assert!(
        resolv.contains("nameserver 10.0.0.10")
            && resolv.contains("svc.example")
            && resolv.contains("ndots:3"),
        "{resolv}"
    );
    assert_eq!(exec("cat /data/hello.txt").await, "from the host\n");
    // Read-only bind: writing fails.
    let out = e
        .shim
        .exec_collect(
            &ids.container_id,
            &["sh", "-c", "echo x > /data/new"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_ne!(out.exit_code, 0);
    assert_eq!(
        exec("grep NoNewPrivs /proc/self/status")
            .await
            .split_whitespace()
            .nth(1),
        Some("1")
    );
    // Only NET_BIND_SERVICE (bit 10) is left in the bounding set.
    let bnd = exec("grep CapBnd /proc/self/status").await;
    assert_eq!(
        u64::from_str_radix(bnd.split_whitespace().nth(1).unwrap(), 16).unwrap(),
        1 << 10,
        "{bnd}"
    );
    assert_eq!(
        exec("cat /proc/sys/net/ipv4/ip_unprivileged_port_start").await,
        "1000\n"
    );
    assert_eq!(
        exec("echo ok > /dev/mynull && echo written").await,
        "written\n"
    );
    // The host port reaches the container's server.
    let mut body = String::new();
    for _ in 0..50 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port as u16)).await {
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
                .await
                .unwrap();
            s.read_to_string(&mut body).await.unwrap();
            if body.contains("served") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("served"), "{body}");
    // The status reports the mount as given, resolved.
    let status = e
        .shim
        .get_container_status(&ids.container_id)
        .await
        .unwrap();
    let m = status
        .mounts
        .iter()
        .find(|m| m.container_path == "/data")
        .unwrap();
    assert!(m.readonly);
    assert_eq!(m.host_path, data.canonicalize().unwrap().to_string_lossy());
});

docker_test!(read_only_rootfs_and_masked_paths, |e| {
    let mut c = ContainerConfigBuilder::new("ro", &e.target.image)
        .command(["sh", "-c", "sleep 3600"])
        .readonly_rootfs(true)
        .label(common::RUN_LABEL_KEY, &e.target.run_label)
        .build();
    let sc = c.linux.as_mut().unwrap().security_context.as_mut().unwrap();
    sc.masked_paths = vec!["/proc/cpuinfo".into()];
    sc.readonly_paths = vec!["/proc/sys".into()];
    let ids = e
        .shim
        .run_pod_and_container(e.target.pod("ro"), c)
        .await
        .unwrap();
    let run = |cmd: &'static str| {
        let (shim, id) = (e.shim.clone(), ids.container_id.clone());
        async move {
            shim.exec_collect(&id, &["sh", "-c", cmd], Duration::from_secs(10))
                .await
                .unwrap()
        }
    };
    assert_ne!(run("touch /rootfs-file").await.exit_code, 0);
    assert_eq!(run("wc -c < /proc/cpuinfo").await.stdout_str().trim(), "0");
});

docker_test!(
    oversized_label_selectors_filter_in_docker_and_the_shim,
    |e| {
        // 40 labels of ~250 bytes: more than the 8 KiB of selector Docker's list filter is given,
        // so the smaller entries filter in Docker and the larger ones are matched by the shim.
        let big: Vec<(String, String)> = (0..40)
            .map(|i| (format!("big-{i:02}"), "v".repeat(240)))
            .collect();
        let mut pod = e.target.pod("selector");
        let mut container = e.target.container("app", "sleep 3600");
        for (k, v) in &big {
            pod.labels.insert(k.clone(), v.clone());
            container.labels.insert(k.clone(), v.clone());
        }
        let ids = e.shim.run_pod_and_container(pod, container).await.unwrap();
        let matching: HashMap<String, String> = big
            .iter()
            .cloned()
            .chain([(common::RUN_LABEL_KEY.to_owned(), e.target.run_label.clone())])
            .collect();
        // The largest entry, which the shim matches rather than Docker, does not match.
        let mut mismatching = matching.clone();
        mismatching.insert("big-39".into(), "w".repeat(250));

        let pods = |selector: HashMap<String, String>| {
            let shim = e.shim.clone();
            async move {
                let listed = shim
                    .list_pod_sandbox(ListPodSandboxRequest {
                        filter: Some(PodSandboxFilter {
                            label_selector: selector.clone(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|p| p.id);
                let stats = shim
                    .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                        filter: Some(PodSandboxStatsFilter {
                            label_selector: selector,
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap()
                    .stats
                    .into_iter()
                    .filter_map(|s| s.attributes.map(|a| a.id));
                (listed.collect::<Vec<_>>(), stats.collect::<Vec<_>>())
            }
        };
        let containers = |selector: HashMap<String, String>| {
            let shim = e.shim.clone();
            async move {
                let listed = shim
                    .list_containers(ListContainersRequest {
                        filter: Some(ContainerFilter {
                            label_selector: selector.clone(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap()
                    .containers
                    .into_iter()
                    .map(|c| c.id);
                let stats = shim
                    .list_container_stats(ListContainerStatsRequest {
                        filter: Some(ContainerStatsFilter {
                            label_selector: selector,
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap()
                    .stats
                    .into_iter()
                    .filter_map(|s| s.attributes.map(|a| a.id));
                (listed.collect::<Vec<_>>(), stats.collect::<Vec<_>>())
            }
        };
        let pod_id = vec![ids.pod_sandbox_id.clone()];
        let container_id = vec![ids.container_id.clone()];
        assert_eq!(pods(matching.clone()).await, (pod_id.clone(), pod_id));
        assert_eq!(
            containers(matching).await,
            (container_id.clone(), container_id)
        );
        assert_eq!(pods(mismatching.clone()).await, (vec![], vec![]));
        assert_eq!(containers(mismatching).await, (vec![], vec![]));
    }
);
