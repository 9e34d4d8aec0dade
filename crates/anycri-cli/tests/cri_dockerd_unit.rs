//! cri-dockerd's systemd units start `anycri shim docker` unchanged: the `ExecStart=` line of
//! the packaged `cri-docker.service` (`--container-runtime-endpoint fd://`, `Type=notify`, the
//! socket from `cri-docker.socket`), with the binary replaced by `anycri shim docker`, run the
//! way systemd runs it (the listening socket as fd 3, LISTEN_FDS/LISTEN_PID, NOTIFY_SOCKET),
//! against the environment's dockerd: READY=1 once CRI answers, Version and a pod's
//! RunPodSandbox/Remove round trip with CNI (cri-dockerd's default network plugin), STOPPING=1
//! on SIGTERM. A customised unit with more of cri-dockerd's flags starts with a warning for
//! each flag it ignores; the flags it cannot honour safely are refused. The live part needs
//! `scripts/runtime-env up`: it skips with a reason without it and fails under
//! ANYCRI_REQUIRE_LIVE=1.

use std::{
    os::unix::net::{UnixDatagram, UnixListener},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anycri::{PodSandboxConfigBuilder, RuntimeService, api::*};
use anycri_testenv::{Daemon, env_value, grpc_client, live_values, skip_or_fail};

/// cri-dockerd's packaged service unit (packaging/systemd/cri-docker.service), the lines that
/// matter here.
const CRI_DOCKER_SERVICE: &str = "\
[Unit]
Description=CRI Interface for Docker Application Container Engine
After=network-online.target firewalld.service docker.service
Wants=network-online.target
Requires=cri-docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint fd://
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
RestartSec=2
Restart=always
Delegate=yes
KillMode=process

[Install]
WantedBy=multi-user.target
";

/// The socket unit beside it: systemd listens on `%t/cri-dockerd.sock` and passes the socket.
const CRI_DOCKER_SOCKET: &str = "\
[Unit]
Description=CRI Docker Socket for the API
PartOf=cri-docker.service

[Socket]
ListenStream=%t/cri-dockerd.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
";

/// A unit as people customise it (the endpoint as a path, more of cri-dockerd's flags).
const CUSTOMISED_SERVICE: &str = "\
[Service]
Type=notify
ExecStart=/usr/bin/cri-dockerd --container-runtime-endpoint unix:///run/cri-dockerd.sock --network-plugin= --hairpin-mode=hairpin-veth --cni-cache-dir=/var/lib/cni/cache --runtime-cgroups=/system.slice/cri-docker.service --image-pull-progress-deadline=2m --ipv6-dual-stack --network-plugin-mtu=1450 --pod-cidr=10.88.0.0/16 --streaming-bind-addr=127.0.0.1 --runtime-request-timeout=0s --log-level=warning --v=2
";

/// The words of a unit's `ExecStart=` after the binary: the shim's arguments.
fn exec_start_args(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart= line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/cri-dockerd"));
    words.map(String::from).collect()
}

/// The value of `key=` in a unit.
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// What the environment's dockerd needs: (docker endpoint, pause image, env dir, log dir).
fn live() -> Option<[String; 4]> {
    live_values([
        "DOCKER_ENDPOINT",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_ENV_DIR",
        "ANYCRI_LOG_DIR",
    ])
}

/// Where the environment keeps CNI plugins.
const CNI_BIN: &str = "/usr/lib/cni";

/// The next sd_notify message, waiting up to `limit`.
fn next_notification(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packaged_unit_with_socket_activation() {
    let Some([docker, pause, env_dir, log_root]) = live() else {
        return;
    };
    for plugin in ["bridge", "host-local", "portmap"] {
        if !Path::new(CNI_BIN).join(plugin).exists() {
            return skip_or_fail(&format!(
                "the CNI plugin {CNI_BIN}/{plugin} is not installed"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // systemd's part: the socket of cri-docker.socket, listening before the service starts
    // (under a directory of the test's own instead of %t), handed over as fd 3.
    let listen_stream = unit_value(CRI_DOCKER_SOCKET, "ListenStream");
    let socket = dir.path().join(listen_stream.trim_start_matches("%t/"));
    let listener = UnixListener::bind(&socket).unwrap();
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    assert_eq!(unit_value(CRI_DOCKER_SERVICE, "Type"), "notify");

    // The unit's command line, the binary replaced; then, in cri-dockerd's own flag names,
    // what differs on this host: Docker's socket, the pause image in the local registry, a
    // state directory of the test's own, the CNI directories of the environment.
    let mut args = vec!["shim".to_string(), "docker".into()];
    args.extend(exec_start_args(CRI_DOCKER_SERVICE));
    assert_eq!(args[2..], ["--container-runtime-endpoint", "fd://"]);
    let state = dir.path().join("state");
    args.extend(
        [
            "--docker-endpoint",
            &docker,
            "--pod-infra-container-image",
            &pause,
            "--cri-dockerd-root-directory",
            &state.to_string_lossy(),
            "--cni-conf-dir",
            &format!("{env_dir}/cni/net.d"),
            "--cni-bin-dir",
            CNI_BIN,
        ]
        .map(String::from),
    );
    use std::os::fd::AsRawFd;
    let fd = listener.as_raw_fd().to_string();
    let stderr_path = dir.path().join("stderr.log");
    // As systemd execs the service: the socket at fd 3, LISTEN_FDS=1, LISTEN_PID its pid.
    let mut daemon = Daemon::spawn(
        Command::new("bash")
            .arg("-c")
            .arg(
                r#"fd=$0; [ "$fd" = 3 ] || eval "exec 3<&$fd $fd<&-"
export LISTEN_FDS=1 LISTEN_PID=$$
exec "$@""#,
            )
            .arg(&fd)
            .arg(env!("CARGO_BIN_EXE_anycri"))
            .args(&args)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap()),
    );
    drop(listener);
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    let ready = tokio::task::spawn_blocking({
        let notify = notify.try_clone().unwrap();
        move || next_notification(&notify, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(ready.as_deref(), Some("READY=1"), "{}", stderr());
    let rt = grpc_client(&socket).await;
    let version = rt.version(VersionRequest::default()).await.unwrap();
    assert_eq!(version.runtime_name, "anycri-docker");
    assert!(
        stderr().contains("cri-dockerd's default"),
        "CNI by cri-dockerd's default: {}",
        stderr()
    );

    // A pod round trip, on CNI's network.
    let pod = PodSandboxConfigBuilder::new("cri-dockerd-unit", "anycri-test")
        .log_directory(format!(
            "{log_root}/cri-dockerd-unit-{}",
            anycri::builders::new_uid()
        ))
        .build();
    anycri::kubelet::prepare_pod_sandbox(&pod).unwrap();
    let id = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .pod_sandbox_id;
    let status = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.clone(),
            verbose: false,
        })
        .await
        .map(|s| s.status.unwrap_or_default());
    let removed = async {
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await?;
        rt.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await
    }
    .await;
    let status = status.unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let subnet = env_value("ANYCRI_CNI_SUBNET").unwrap_or_else(|| "10.244.0.0/16".into());
    let prefix = subnet.split('.').take(2).collect::<Vec<_>>().join(".") + ".";
    assert!(ip.starts_with(&prefix), "a CNI address in {subnet}: {ip:?}");
    removed.unwrap();
    let gone = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id,
            verbose: false,
        })
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone}");

    // SIGHUP (the unit's ExecReload=) changes nothing; SIGTERM stops it, and systemd hears so.
    daemon.signal("HUP");
    tokio::time::sleep(Duration::from_millis(200)).await;
    rt.version(VersionRequest::default()).await.unwrap();
    let status = daemon.stop();
    assert!(status.success(), "{status}: {}", stderr());
    assert_eq!(
        next_notification(&notify, Duration::from_secs(5)).as_deref(),
        Some("STOPPING=1")
    );
    // The socket is systemd's: left in place.
    assert!(socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customised_unit_with_more_cri_dockerd_flags() {
    let Some([docker, pause, _, _]) = live() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cri-dockerd.sock");
    let mut args = vec!["shim".to_string(), "docker".into()];
    for word in exec_start_args(CUSTOMISED_SERVICE) {
        // The socket under the test's directory instead of /run.
        args.push(word.replace(
            "unix:///run/cri-dockerd.sock",
            &format!("unix://{}", socket.display()),
        ));
    }
    let state = dir.path().join("state");
    args.extend(
        [
            "--docker-endpoint",
            &docker,
            "--pod-infra-container-image",
            &pause,
            "--cri-dockerd-root-directory",
            &state.to_string_lossy(),
        ]
        .map(String::from),
    );
    let stderr_path = dir.path().join("stderr.log");
    let mut daemon = Daemon::spawn(
        Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap()),
    );
    let rt = grpc_client(&socket).await;
    assert_eq!(
        rt.version(VersionRequest::default())
            .await
            .unwrap()
            .runtime_name,
        "anycri-docker"
    );
    let status = daemon.stop();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    // Each flag it ignores, said once; --log-level=warning kept the info lines out.
    for flag in [
        "--hairpin-mode",
        "--cni-cache-dir",
        "--runtime-cgroups",
        "--image-pull-progress-deadline",
        "--ipv6-dual-stack",
        "--network-plugin-mtu",
        "--pod-cidr",
    ] {
        assert_eq!(
            stderr.matches(&format!("{flag} ")).count(),
            1,
            "{flag}: {stderr}"
        );
    }
    assert!(!stderr.contains("INFO"), "{stderr}");
    // A socket it made itself is removed.
    assert!(!socket.exists());
}

#[test]
fn unsafe_or_unsupported_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix://{}/x.sock", dir.path().display());
    for (args, needle) in [
        (
            vec!["--network-plugin", "kubenet"],
            "kubenet is not supported",
        ),
        (
            vec![
                "--container-runtime-endpoint",
                &listen,
                "--docker-tls-verify",
            ],
            "--docker-tls-verify: the shim reaches Docker only through its unix socket",
        ),
        (
            vec![
                "--container-runtime-endpoint",
                &listen,
                "--docker-tls-cert",
                "/c.pem",
            ],
            "without TLS",
        ),
        (
            vec!["--container-runtime-endpoint", "fd://"],
            "no socket was passed",
        ),
        (
            vec!["--container-runtime-endpoint", "fd://cri-dockerd.socket"],
            "only fd://",
        ),
        (
            vec!["--container-runtime-endpoint", "tcp://127.0.0.1:3735"],
            "--container-runtime-endpoint",
        ),
        (
            vec!["--hairpin-mode", "sideways"],
            "invalid value 'sideways'",
        ),
        (
            vec!["--listen", &listen, "--container-runtime-endpoint", &listen],
            "cannot be used with",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_anycri"))
            .args(["shim", "docker"])
            .args(&args)
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
