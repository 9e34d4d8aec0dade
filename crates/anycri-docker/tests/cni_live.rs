//! The Docker shim with CNI on a real dockerd (the one `scripts/runtime-env up` starts) and the
//! real CNI plugins in /usr/lib/cni: a pod gets an IP from bridge + host-local on a private
//! bridge, answers HTTP on it and on a host port through portmap; stopping the pod releases
//! the IP and removes its iptables rules; a failing plugin chain leaves no pause container,
//! checkpoint or half-made network behind. Skips with a printed reason when Docker or the
//! plugins are unavailable, or fails under `ANYCRI_REQUIRE_LIVE=1`.

use anycri_testenv::{env_value, skip_or_fail};
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use anycri_core::{ErrorKind, RuntimeService, api::*};
use anycri_docker::{DockerRuntime, NetworkPlugin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BRIDGE: &str = "anycri-cnit0";
const NETWORK: &str = "anycri-cnit";
const HOST_PORT: i32 = 18181;
const CNI_BIN: &str = "/usr/lib/cni";
const TEST_LABEL: &str = "anycri-cni-live";

struct Env {
    endpoint: String,
    pause: String,
    image: String,
}

/// Docker's endpoint and images, or `None` (skipped) when something is missing.
async fn live_env() -> Option<Env> {
    let Some(endpoint) = env_value("DOCKER_ENDPOINT") else {
        skip_or_fail("DOCKER_ENDPOINT is not set and no runtime-env file names it");
        return None;
    };
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    let pause =
        env_value("ANYCRI_PAUSE_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/pause:1.0"));
    let image =
        env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"));
    for plugin in ["bridge", "host-local", "portmap"] {
        if !Path::new(CNI_BIN).join(plugin).exists() {
            skip_or_fail(&format!(
                "the CNI plugin {CNI_BIN}/{plugin} is not installed"
            ));
            return None;
        }
    }
    if !command_ok("iptables-save", &[]) || !command_ok("ip", &["link", "show"]) {
        skip_or_fail("iptables-save and ip must work (root, with iptables installed)");
        return None;
    }
    Some(Env {
        endpoint,
        pause,
        image,
    })
}

fn command_ok(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The iptables rules (all tables) that mention `needle`.
fn iptables_lines(needle: &str) -> Vec<String> {
    let out = std::process::Command::new("iptables-save")
        .output()
        .expect("iptables-save runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

async fn connect(
    env: &Env,
    state: &Path,
    bin_dir: &Path,
    conf_dir: &Path,
) -> Option<DockerRuntime> {
    match DockerRuntime::builder(&env.endpoint)
        .state_dir(state)
        .pause_image(&env.pause)
        .network_plugin(NetworkPlugin::Cni {
            bin_dir: bin_dir.into(),
            conf_dir: conf_dir.into(),
        })
        .connect()
        .await
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            skip_or_fail(&format!("Docker at {} does not answer: {e}", env.endpoint));
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xffff_ffff)
}

fn pod_config(name: &str, run: &str, logs: &Path, ports: Vec<PortMapping>) -> PodSandboxConfig {
    let uid = unique("uid");
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: uid.clone(),
            namespace: "anycri-test".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: logs.join(&uid).to_string_lossy().into_owned(),
        port_mappings: ports,
        labels: HashMap::from([(TEST_LABEL.to_owned(), run.to_owned())]),
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

async fn pod_ids(rt: &DockerRuntime, run: &str) -> Vec<String> {
    rt.list_pod_sandbox(ListPodSandboxRequest {
        filter: Some(PodSandboxFilter {
            label_selector: HashMap::from([(TEST_LABEL.to_owned(), run.to_owned())]),
            ..Default::default()
        }),
    })
    .await
    .map(|r| r.items.into_iter().map(|p| p.id).collect())
    .unwrap_or_default()
}

async fn pod_status(rt: &DockerRuntime, id: &str) -> PodSandboxStatus {
    rt.pod_sandbox_status(PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: false,
    })
    .await
    .expect("PodSandboxStatus")
    .status
    .expect("a status")
}

fn pod_ip(status: &PodSandboxStatus) -> String {
    status
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default()
}

/// `GET /index.html` over plain HTTP/1.0; the whole response.
async fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "HTTP GET timed out",
            ))
        })
}

/// `http_get` until the body says hello (the server may still be starting), up to ~10 s.
async fn wait_for_hello(addr: SocketAddr) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        match http_get(addr).await {
            Ok(body) if body.contains("200") && body.trim_end().ends_with("hello") => return Ok(()),
            Ok(body) => last = format!("answered {body:?}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{addr}: {last}"))
}

async fn exec(rt: &DockerRuntime, container: &str, script: &str) -> String {
    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: container.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync");
    assert_eq!(
        r.exit_code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).trim().to_owned()
}

/// Whether a socket on the host (this network namespace) listens on TCP `port`.
fn host_listens(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // local_address is ADDR:PORT in hex; state 0A is LISTEN.
                f.len() > 3
                    && f[3] == "0A"
                    && f[1].rsplit(':').next() == Some(&format!("{port:04X}"))
            })
    })
}

fn checkpoint(state: &Path, id: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(state.join("sandboxes").join(format!("{id}.json"))).ok()?;
    Some(serde_json::from_str(&text).expect("checkpoint JSON"))
}

/// Run `check`, then `cleanup`, also when `check` panicked; then re-raise its panic.
async fn with_cleanup<C, K>(check: C, cleanup: K)
where
    C: Future<Output = ()> + Send + 'static,
    K: Future<Output = ()>,
{
    let result = tokio::spawn(check).await;
    cleanup.await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cni_pod_network_add_portmap_del() {
    let Some(env) = live_env().await else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (conf_dir, state, ipam, logs) = (
        tmp.path().join("net.d"),
        tmp.path().join("state"),
        tmp.path().join("ipam"),
        tmp.path().join("logs"),
    );
    std::fs::create_dir_all(&conf_dir).unwrap();
    // No loopback plugin: Docker brings `lo` up in a `none`-network container (checked below).
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": "10.250.0.0/24" }]],
                    "dataDir": ipam,
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
        ],
    });
    std::fs::write(
        conf_dir.join("10-anycri-cnit.conflist"),
        conflist.to_string(),
    )
    .unwrap();
    let Some(rt) = connect(&env, &state, Path::new(CNI_BIN), &conf_dir).await else {
        return;
    };
    let rules_before = iptables_lines(NETWORK).len();
    let run = unique("run");

    let check = {
        let (rt, run, state, ipam, logs, image) = (
            rt.clone(),
            run.clone(),
            state.clone(),
            ipam.clone(),
            logs.clone(),
            env.image.clone(),
        );
        async move {
            let ports = vec![PortMapping {
                protocol: Protocol::Tcp as i32,
                container_port: 80,
                host_port: HOST_PORT,
                host_ip: String::new(),
            }];
            let config = pod_config("cni-web", &run, &logs, ports);
            let id = rt
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: String::new(),
                })
                .await
                .expect("RunPodSandbox with CNI")
                .pod_sandbox_id;

            // The pod IP comes from host-local, via the checkpoint.
            let status = pod_status(&rt, &id).await;
            assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
            let ip: Ipv4Addr = pod_ip(&status).parse().expect("an IPv4 pod IP");
            assert_eq!(
                ip.octets()[..3],
                [10, 250, 0],
                "pod IP {ip} in 10.250.0.0/24"
            );
            assert_ne!(ip.octets()[3], 1, "the gateway's address is not the pod's");
            let lease = ipam.join(NETWORK).join(ip.to_string());
            let owner = std::fs::read_to_string(&lease).expect("host-local recorded the IP");
            assert!(owner.contains(&id), "lease {owner:?} names the sandbox");
            let cp = checkpoint(&state, &id).expect("a checkpoint");
            assert_eq!(cp["pod_ip"], ip.to_string());
            assert_eq!(cp["network_ready"], true);
            assert!(cp["cni_result"].as_str().unwrap().contains(&ip.to_string()));
            assert!(
                !iptables_lines(&id).is_empty(),
                "portmap added rules for the pod"
            );

            // A web server in the pod.
            let container = ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "httpd".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image,
                    ..Default::default()
                }),
                command: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo hello > /tmp/index.html; exec httpd -f -p 80 -h /tmp".into(),
                ],
                log_path: "httpd.log".into(),
                ..Default::default()
            };
            let cid = rt
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: id.clone(),
                    config: Some(container),
                    sandbox_config: Some(config.clone()),
                })
                .await
                .expect("CreateContainer")
                .container_id;
            rt.start_container(StartContainerRequest {
                container_id: cid.clone(),
            })
            .await
            .expect("StartContainer");

            // lo is up without a loopback plugin (IFF_UP|IFF_LOOPBACK), eth0 has the pod IP.
            assert_eq!(exec(&rt, &cid, "cat /sys/class/net/lo/flags").await, "0x9");
            let addrs = exec(&rt, &cid, "ip -o -4 addr show eth0").await;
            assert!(addrs.contains(&format!("{ip}/24")), "eth0: {addrs}");

            // Reachable on the pod IP, and on the host port through portmap.
            wait_for_hello(SocketAddr::new(IpAddr::V4(ip), 80))
                .await
                .expect("HTTP to the pod IP");
            let gateway = SocketAddr::from(([10, 250, 0, 1], HOST_PORT as u16));
            wait_for_hello(gateway)
                .await
                .expect("HTTP to the bridge IP's host port (portmap)");
            let localhost = SocketAddr::from(([127, 0, 0, 1], HOST_PORT as u16));
            wait_for_hello(localhost)
                .await
                .expect("HTTP to 127.0.0.1's host port (portmap hairpin)");
            // That was portmap's DNAT: nothing (e.g. a docker-proxy) listens on the host port.
            assert!(
                !host_listens(HOST_PORT as u16),
                "something listens on host port {HOST_PORT}"
            );

            // Stop: DEL released the IP and removed the port mapping.
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("StopPodSandbox");
            let status = pod_status(&rt, &id).await;
            assert_eq!(status.state, PodSandboxState::SandboxNotready as i32);
            assert_eq!(pod_ip(&status), "");
            assert!(!lease.exists(), "host-local released {ip}");
            assert_eq!(
                iptables_lines(&id),
                Vec::<String>::new(),
                "portmap rules of the pod are gone"
            );
            let cp = checkpoint(&state, &id).expect("the checkpoint stays until removal");
            assert_eq!(
                (cp["network_ready"].as_bool(), cp["pod_ip"].as_str()),
                (Some(false), Some(""))
            );
            assert!(
                http_get(localhost).await.is_err(),
                "nothing answers on the host port after stop"
            );
            // A second stop does nothing and succeeds.
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("StopPodSandbox again");
            rt.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("RemovePodSandbox");
            assert!(
                checkpoint(&state, &id).is_none(),
                "the checkpoint is removed"
            );

            // Removing a pod that was never stopped runs DEL too.
            let config = pod_config("cni-nostop", &run, &logs, Vec::new());
            let id = rt
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                })
                .await
                .expect("RunPodSandbox")
                .pod_sandbox_id;
            let ip = pod_ip(&pod_status(&rt, &id).await);
            let lease = ipam.join(NETWORK).join(&ip);
            assert!(lease.exists(), "host-local recorded {ip}");
            rt.remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .expect("RemovePodSandbox without stop");
            assert!(!lease.exists(), "removal released {ip}");
            assert!(checkpoint(&state, &id).is_none());
        }
    };
    let cleanup = async {
        for id in pod_ids(&rt, &run).await {
            if let Err(e) = rt
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await
            {
                eprintln!("cleanup: removing pod {id}: {e}");
            }
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", BRIDGE])
            .status();
    };
    with_cleanup(check, cleanup).await;
    assert!(
        !command_ok("ip", &["link", "show", BRIDGE]),
        "the test bridge is gone"
    );
    assert_eq!(
        iptables_lines(NETWORK).len(),
        rules_before,
        "no iptables rules of the test network are left"
    );
}

/// Write an executable shell script.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cni_add_failure_leaves_nothing_behind() {
    let Some(env) = live_env().await else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (bin, conf_dir, state, logs) = (
        tmp.path().join("bin"),
        tmp.path().join("net.d"),
        tmp.path().join("state"),
        tmp.path().join("logs"),
    );
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&conf_dir).unwrap();
    // Plugins that log what they were asked; the second fails ADD with a CNI error.
    let calls = tmp.path().join("calls");
    let log = format!(
        "echo \"$0 $CNI_COMMAND $CNI_IFNAME $CNI_NETNS\" >> {}",
        calls.display()
    );
    script(
        &bin.join("okplug"),
        &format!(
            "{log}\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && echo '{{\"cniVersion\":\"1.0.0\",\"ips\":[{{\"address\":\"10.251.0.2/24\"}}]}}'\nexit 0"
        ),
    );
    script(
        &bin.join("failplug"),
        &format!(
            "{log}\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\necho '{{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no luck\",\"details\":\"by design\"}}'\nexit 1"
        ),
    );
    let Some(rt) = connect(&env, &state, &bin, &conf_dir).await else {
        return;
    };
    let run = unique("run");

    let check = {
        let (rt, run, state, logs, conf_dir, calls) = (
            rt.clone(),
            run.clone(),
            state.clone(),
            logs.clone(),
            conf_dir.clone(),
            calls.clone(),
        );
        async move {
            let run_pod = |name: &str| {
                let config = pod_config(name, &run, &logs, Vec::new());
                let rt = rt.clone();
                async move {
                    rt.run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(config),
                        runtime_handler: String::new(),
                    })
                    .await
                }
            };
            let no_leftovers = || async {
                assert_eq!(
                    pod_ids(&rt, &run).await,
                    Vec::<String>::new(),
                    "no pause container is left"
                );
                let left: Vec<_> = std::fs::read_dir(state.join("sandboxes"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert!(left.is_empty(), "no checkpoint is left: {left:?}");
            };

            // No config at all.
            let err = run_pod("cni-noconf").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
            assert!(err.message().contains("no CNI network config"), "{err}");
            no_leftovers().await;

            // A broken config names its file.
            std::fs::write(conf_dir.join("00-broken.conf"), "{").unwrap();
            let err = run_pod("cni-broken").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
            assert!(err.message().contains("00-broken.conf"), "{err}");
            no_leftovers().await;
            std::fs::remove_file(conf_dir.join("00-broken.conf")).unwrap();

            // A plugin failing ADD: its message comes back, DEL undoes the chain.
            let list = serde_json::json!({"cniVersion": "1.0.0", "name": "failing",
                "plugins": [{"type": "okplug"}, {"type": "failplug"}]});
            std::fs::write(conf_dir.join("10-failing.conflist"), list.to_string()).unwrap();
            let err = run_pod("cni-fail").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
            assert!(
                err.message()
                    .contains("no luck: by design (CNI error code 7)"),
                "{err}"
            );
            let calls = std::fs::read_to_string(&calls).unwrap();
            let lines: Vec<(&str, &str, &str)> = calls
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split(' ').collect();
                    (f[0].rsplit('/').next().unwrap(), f[1], f[2])
                })
                .collect();
            assert_eq!(
                lines,
                vec![
                    ("okplug", "ADD", "eth0"),
                    ("failplug", "ADD", "eth0"),
                    ("failplug", "DEL", "eth0"),
                    ("okplug", "DEL", "eth0")
                ],
                "{calls}"
            );
            assert!(
                calls
                    .lines()
                    .next()
                    .unwrap()
                    .split(' ')
                    .nth(3)
                    .is_some_and(|ns| ns.starts_with('/')),
                "{calls}"
            );
            no_leftovers().await;
        }
    };
    let cleanup = async {
        for id in pod_ids(&rt, &run).await {
            let _ = rt
                .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await;
        }
    };
    with_cleanup(check, cleanup).await;
}
