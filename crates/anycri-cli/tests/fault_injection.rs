//! Crash consistency of the Docker shim: `anycri shim docker` is killed with SIGKILL at a
//! random moment while several clients run pod and container lifecycles through it
//! (RunPodSandbox, CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! StopPodSandbox, RemovePodSandbox), started again on the same state directory, and checked
//! the way the kubelet relies on it:
//!
//! - every sandbox listed Ready has its network (an IP; with CNI, one the IPAM store holds);
//! - every Docker container the shim made is listed by the CRI (nothing it cannot remove);
//! - every container's CRI log has each line of the container's output once, in order, with
//!   no gap, whatever the kills did to the log writer;
//! - then the test does what the kubelet does after a restart: stops and removes NotReady
//!   pods and containers stuck in Created.
//!
//! Every few rounds dockerd restarts too while the shim is down. At the end everything is
//! removed through the CRI and the node must be as before: no Docker container, network
//! namespace, CNI IP allocation, iptables rule, checkpoint file (or temporary), docker-proxy
//! process or open log file of the shim is left. Runs with Docker's bridge and with CNI
//! (bridge + host-local + portmap, on a bridge of its own). `ANYCRI_FAULT_KILLS` sets the
//! kills per network mode (default 50: 200 over a CI run, two modes on two Docker engines).
//! Prints the figures: kills, what each kill hit, the half-made objects found after restarts,
//! leaks at the end.
//!
//! Needs `scripts/runtime-env up`; restarts the environment's dockerd, so it runs in the
//! serial `live` group, fully with `ANYCRI_REQUIRE_LIVE=1` (CI) or
//! `ANYCRI_ALLOW_DOCKERD_RESTART=1` (without them, dockerd is not restarted).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anycri::{
    ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt, api::*,
    grpc::GrpcRuntime,
};
use anycri_bench::leaks;
use anycri_testenv::{
    Daemon, docker, grpc_client, live_required, live_values, runtime_env, skip_or_fail,
};

const TEST_LABEL: &str = "anycri.test/fault";
const TYPE_LABEL: &str = "io.kubernetes.docker.type";
const CNI_BIN: &str = "/usr/lib/cni";
const CNI_NETWORK: &str = "anycri-fault";
const CNI_BRIDGE: &str = "anycri-flt0";
const CNI_SUBNET: &str = "10.251.0.0/24";

/// A small deterministic random source (xorshift), seeded per run and printed, so a failing
/// run can be repeated with `ANYCRI_FAULT_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Env {
    docker: String,
    pause: String,
    image: String,
    exec_root: String,
}

struct Mode {
    name: &'static str,
    cni: Option<Cni>,
}

struct Cni {
    conf_dir: PathBuf,
    ipam_dir: PathBuf,
}

fn lines(text: Option<String>) -> Vec<String> {
    text.unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn start_shim(env: &Env, mode: &Mode, dir: &Path, round: usize) -> Daemon {
    let socket = dir.join("shim.sock");
    let _ = std::fs::remove_file(&socket);
    let listen = format!("unix://{}", socket.display());
    let state = dir.join("state");
    let stderr = std::fs::File::create(dir.join(format!("shim-{round}.log"))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anycri"));
    cmd.args([
        "shim",
        "docker",
        "--listen",
        &listen,
        "--docker-endpoint",
        &env.docker,
        "--pause-image",
        &env.pause,
        "--state-dir",
    ])
    .arg(&state)
    .args(["--runtime-request-timeout", "30s"]);
    if let Some(cni) = &mode.cni {
        cmd.args(["--network-plugin", "cni", "--cni-bin-dir", CNI_BIN])
            .arg("--cni-conf-dir")
            .arg(&cni.conf_dir);
    }
    Daemon::spawn(
        cmd.env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr),
    )
}

fn selector() -> HashMap<String, String> {
    HashMap::from([(TEST_LABEL.to_owned(), "1".to_owned())])
}

async fn our_pods(rt: &GrpcRuntime) -> Vec<PodSandbox> {
    rt.list_pod_sandbox(ListPodSandboxRequest {
        filter: Some(PodSandboxFilter {
            label_selector: selector(),
            ..Default::default()
        }),
    })
    .await
    .expect("ListPodSandbox after a restart")
    .items
}

/// The IDs of every sandbox and container the CRI lists.
async fn cri_ids(rt: &GrpcRuntime) -> HashSet<String> {
    let pods = rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .expect("ListPodSandbox after a restart")
        .items
        .into_iter()
        .map(|p| p.id);
    pods.chain(all_containers(rt).await.into_iter().map(|c| c.id))
        .collect()
}

async fn all_containers(rt: &GrpcRuntime) -> Vec<Container> {
    rt.list_containers(ListContainersRequest::default())
        .await
        .expect("ListContainers after a restart")
        .containers
}

/// What a kill can leave on the node, counted (the soak's counters, `anycri_bench::leaks`,
/// where they exist).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Counts {
    docker_containers: usize,
    netns: u64,
    cni_ips: u64,
    /// Rules and chains, each with how often it appears.
    iptables: BTreeMap<String, usize>,
    /// Checkpoints and their temporary files: every entry of the state's `sandboxes`.
    checkpoint_files: u64,
    docker_proxies: usize,
}

impl Counts {
    async fn take(env: &Env, mode: &Mode, state: &Path) -> Counts {
        let docker_containers = lines(docker(
            &env.docker,
            &["ps", "-aq", "--filter", &format!("label={TYPE_LABEL}")],
        ))
        .len();
        let netns = leaks::count_entries(&Path::new(&env.exec_root).join("netns"));
        let cni_ips = mode
            .cni
            .as_ref()
            .map_or(0, |c| leaks::count_ip_files(&c.ipam_dir.join(CNI_NETWORK)));
        let checkpoint_files = leaks::count_entries(&state.join("sandboxes"));
        let docker_proxies = Command::new("pgrep")
            .args(["-c", "-x", "docker-proxy"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        Counts {
            docker_containers,
            netns,
            cni_ips,
            iptables: iptables_rules().await,
            checkpoint_files,
            docker_proxies,
        }
    }

    /// What grew since `before`, by name.
    fn leaks(&self, before: &Counts) -> Vec<String> {
        let mut out = Vec::new();
        let grew = [
            (
                "docker containers",
                self.docker_containers as u64,
                before.docker_containers as u64,
            ),
            ("network namespaces", self.netns, before.netns),
            ("CNI IP allocations", self.cni_ips, before.cni_ips),
            (
                "checkpoint files",
                self.checkpoint_files,
                before.checkpoint_files,
            ),
            (
                "docker-proxy processes",
                self.docker_proxies as u64,
                before.docker_proxies as u64,
            ),
        ];
        for (name, now, then) in grew {
            if now > then {
                out.push(format!("{name}: {then} -> {now}"));
            }
        }
        for (rule, n) in &self.iptables {
            let was = before.iptables.get(rule).copied().unwrap_or(0);
            if *n > was {
                out.push(format!("iptables rule {rule:?}: {was} -> {n}"));
            }
        }
        out
    }
}

/// The nat and filter tables' rules and chains, each with its count (a table that cannot be
/// read counts nothing, before and after alike).
async fn iptables_rules() -> BTreeMap<String, usize> {
    let state = leaks::iptables_state().await;
    for e in &state.errors {
        eprintln!("iptables not counted: {e}");
    }
    let chains = state.chains.into_iter().map(|c| format!("{c} (chain)"));
    let mut out = BTreeMap::new();
    for line in state.rules.into_iter().chain(chains) {
        *out.entry(line).or_default() += 1;
    }
    out
}

/// Counts again until nothing leaks or `wait` passes (Docker and the kernel release some
/// things shortly after the call that frees them returned).
async fn settle(
    env: &Env,
    mode: &Mode,
    state: &Path,
    before: &Counts,
    wait: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + wait;
    loop {
        let leaks = Counts::take(env, mode, state).await.leaks(before);
        if leaks.is_empty() || Instant::now() >= deadline {
            return leaks;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The files the shim process holds open under `dir`.
fn open_files_under(pid: u32, dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|p| p.starts_with(dir))
                .collect()
        })
        .unwrap_or_default()
}

/// The pod config of pod `n`; with CNI every other pod maps a host port (portmap's rules).
fn pod_config(n: usize, logs: &Path, cni: bool) -> PodSandboxConfig {
    let uid = anycri::builders::new_uid();
    let mut b = PodSandboxConfigBuilder::new(format!("fault-{n}"), "anycri-fault")
        .uid(uid.clone())
        .label(TEST_LABEL, "1")
        .log_directory(logs.join(&uid).to_string_lossy().into_owned());
    if cni && n % 2 == 0 {
        b = b.port_mapping(Protocol::Tcp, 80, 21000 + (n % 2000) as i32);
    }
    b.build()
}

/// A container printing consecutive numbers, one per line.
fn counter(image: &str, n: usize) -> ContainerConfig {
    ContainerConfigBuilder::new(format!("count-{n}"), image)
        .command([
            "sh",
            "-c",
            "i=0; trap 'exit 0' TERM; while true; do echo $i; i=$((i+1)); sleep 0.02; done",
        ])
        .label(TEST_LABEL, "1")
        .build()
}

/// Which operations a kill caught in flight, and how often.
#[derive(Default)]
struct Hits(Mutex<BTreeMap<&'static str, usize>>);

impl Hits {
    fn record(&self, op: &'static str) {
        *self.0.lock().unwrap().entry(op).or_default() += 1;
    }
}

/// One step of a worker: `op` ran and failed (counted as hit by the kill) or succeeded.
async fn step<T>(
    hits: &Hits,
    op: &'static str,
    call: impl Future<Output = anycri::Result<T>>,
) -> Option<T> {
    match tokio::time::timeout(Duration::from_secs(90), call).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(_)) => {
            hits.record(op);
            None
        }
        Err(_) => panic!("{op} hung for 90 s"),
    }
}

struct Pod {
    id: String,
}

/// A worker's lifecycle: a new pod with a running counter, or the teardown of a pod kept from
/// an earlier round (containers stopped, then removed, then the pod), or both.
async fn worker(
    rt: GrpcRuntime,
    hits: Arc<Hits>,
    image: String,
    new: Option<(usize, PodSandboxConfig)>,
    old: Option<Pod>,
) {
    if let Some(pod) = old {
        let containers = rt
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    pod_sandbox_id: pod.id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.containers)
            .unwrap_or_default();
        for c in &containers {
            step(
                &hits,
                "StopContainer",
                rt.stop_container(StopContainerRequest {
                    container_id: c.id.clone(),
                    timeout: 2,
                }),
            )
            .await;
        }
        for c in &containers {
            step(
                &hits,
                "RemoveContainer",
                rt.remove_container(RemoveContainerRequest {
                    container_id: c.id.clone(),
                }),
            )
            .await;
        }
        if step(
            &hits,
            "StopPodSandbox",
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            }),
        )
        .await
        .is_some()
        {
            step(
                &hits,
                "RemovePodSandbox",
                rt.remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: pod.id.clone(),
                }),
            )
            .await;
        }
    }
    if let Some((n, config)) = new {
        let Some(pod) = step(&hits, "RunPodSandbox", rt.run_pod(config.clone())).await else {
            return;
        };
        let Some(cid) = step(
            &hits,
            "CreateContainer",
            rt.create_container_in(&pod, &config, counter(&image, n)),
        )
        .await
        else {
            return;
        };
        step(
            &hits,
            "StartContainer",
            rt.start_container(StartContainerRequest { container_id: cid }),
        )
        .await;
    }
}

/// The content lines of a container's CRI log must be 0, 1, 2, … with none twice and none
/// missing (a prefix of what the container printed: the writer may still be catching up).
fn check_log(path: &Path) -> Result<usize, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let lines = anycri::logs::parse_log(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, line) in lines.iter().enumerate() {
        if line.content != i.to_string() {
            let start = text.lines().take(i.saturating_sub(3)).count();
            let around: Vec<&str> = text.lines().skip(start).take(6).collect();
            return Err(format!(
                "{}: line {i} is {:?} (a line written twice or lost); the file there:\n{}",
                path.display(),
                line.content,
                around.join("\n")
            ));
        }
    }
    Ok(lines.len())
}

#[derive(Default)]
struct Figures {
    kills: usize,
    dockerd_restarts: usize,
    idle_kills: usize,
    half_made_pods: usize,
    created_containers: usize,
    ready_pods_checked: usize,
    log_lines_checked: usize,
}

/// Removes the test's Docker containers straight through Docker when a run ends early.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = lines(docker(
            &self.0,
            &["ps", "-aq", "--filter", &format!("label={TEST_LABEL}=1")],
        ));
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&self.0, &args);
        }
    }
}

async fn run_mode(env: &Env, mode: &Mode, kills: usize, seed: u64, restart_dockerd: bool) {
    let _cleanup = Cleanup(env.docker.clone());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut rng = Rng(seed);
    let mut fig = Figures::default();

    // The baseline; its iptables part after a first lifecycle, since chains that CNI's
    // portmap and Docker create once and keep (not per pod) exist from then on.
    let mut before = Counts::take(env, mode, &state).await;
    let mut shim = start_shim(env, mode, dir.path(), 0);
    let rt = grpc_client(dir.path().join("shim.sock")).await;
    let warm = pod_config(0, &logs, mode.cni.is_some());
    let pod = rt.run_pod(warm.clone()).await.expect("warm-up pod");
    rt.remove_pod_with_containers(&pod)
        .await
        .expect("warm-up removal");
    shim.kill();
    before.iptables = iptables_rules().await;

    let hits = Arc::new(Hits::default());
    let mut kept: Vec<Pod> = Vec::new();
    let mut next_pod = 1;
    let mut shim = start_shim(env, mode, dir.path(), 1);
    for round in 1..=kills {
        let rt = grpc_client(dir.path().join("shim.sock")).await;
        let mut tasks = Vec::new();
        for w in 0..3 {
            let old = (w < 2 && !kept.is_empty() && rng.below(2) == 0).then(|| kept.remove(0));
            let new = (old.is_none() || rng.below(2) == 0).then(|| {
                next_pod += 1;
                (next_pod, pod_config(next_pod, &logs, mode.cni.is_some()))
            });
            tasks.push(tokio::spawn(worker(
                rt.clone(),
                hits.clone(),
                env.image.clone(),
                new,
                old,
            )));
        }
        // The kill, at a random moment of the lifecycles (they take ~0.3–2 s; later ones are teardowns of the pods made before).
        tokio::time::sleep(Duration::from_millis(rng.below(1200))).await;
        let finished = tasks.iter().all(|t| t.is_finished());
        let pid = shim.id();
        shim.kill();
        fig.kills += 1;
        if finished {
            fig.idle_kills += 1;
        }
        for t in tasks {
            t.await.expect("a worker panicked");
        }
        // Kept pods may have been torn down halfway; forget them, the checks below find them.
        kept.clear();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "the shim survived SIGKILL"
        );
        if restart_dockerd && round % 20 == 10 {
            runtime_env("restart-docker");
            fig.dockerd_restarts += 1;
        }
        shim = start_shim(env, mode, dir.path(), round + 1);
        let rt = grpc_client(dir.path().join("shim.sock")).await;

        // Every Docker container the shim made is one the CRI lists. Docker is asked first: a
        // create the killed shim had sent may still complete in dockerd, and then shows up in
        // the CRI's list, made after.
        let in_docker = lines(docker(
            &env.docker,
            &[
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                &format!("label={TYPE_LABEL}"),
            ],
        ));
        let pods = our_pods(&rt).await;
        let mut listed = cri_ids(&rt).await;
        for id in in_docker {
            if listed.contains(&id) {
                continue;
            }
            // Removed meanwhile (a removal dockerd finished after the kill) is fine.
            tokio::time::sleep(Duration::from_millis(500)).await;
            listed = cri_ids(&rt).await;
            let exists = docker(&env.docker, &["inspect", "-f", "{{.Id}}", &id]).is_some();
            assert!(
                listed.contains(&id) || !exists,
                "round {round}: Docker container {id} is not listed by the CRI"
            );
        }
        let containers = all_containers(&rt).await;
        // Ready means networked; logs are exact.
        for pod in &pods {
            if pod.state != PodSandboxState::SandboxReady as i32 {
                continue;
            }
            let status = rt.get_pod_status(&pod.id).await.unwrap();
            let ip = status.network.map(|n| n.ip).unwrap_or_default();
            assert!(
                !ip.is_empty(),
                "round {round}: pod {} is Ready without an IP",
                pod.id
            );
            if let Some(cni) = &mode.cni {
                assert!(
                    cni.ipam_dir.join(CNI_NETWORK).join(&ip).exists(),
                    "round {round}: pod {} is Ready with IP {ip}, which CNI's IPAM does not hold",
                    pod.id
                );
            }
            fig.ready_pods_checked += 1;
        }
        for c in containers
            .iter()
            .filter(|c| c.labels.contains_key(TEST_LABEL))
        {
            let status = rt.get_container_status(&c.id).await.unwrap();
            // The shim reports the full path (the pod's log directory joined).
            if Path::new(&status.log_path).is_absolute() {
                match check_log(Path::new(&status.log_path)) {
                    Ok(n) => fig.log_lines_checked += n,
                    Err(e) => {
                        let docker_log =
                            docker(&env.docker, &["logs", "-t", &c.id]).unwrap_or_default();
                        let head: Vec<&str> = docker_log.lines().take(4).collect();
                        let mut mentions = Vec::new();
                        for r in 0..=round + 1 {
                            let text =
                                std::fs::read_to_string(dir.path().join(format!("shim-{r}.log")))
                                    .unwrap_or_default();
                            for l in text.lines().filter(|l| l.contains(&c.id[..12])) {
                                mentions.push(format!("shim-{r}: {l}"));
                            }
                        }
                        panic!(
                            "round {round}: {e}\ndocker logs: {head:#?}\nshim logs: {mentions:#?}"
                        )
                    }
                }
            }
        }
        // The kubelet's part after a restart: NotReady pods go, so do containers stuck in
        // Created; a few Ready pods stay for the next round's teardown.
        for c in containers.iter().filter(|c| {
            c.labels.contains_key(TEST_LABEL) && c.state == ContainerState::ContainerCreated as i32
        }) {
            fig.created_containers += 1;
            rt.remove_container(RemoveContainerRequest {
                container_id: c.id.clone(),
            })
            .await
            .unwrap();
        }
        for pod in pods {
            let ready = pod.state == PodSandboxState::SandboxReady as i32;
            if ready && kept.len() < 3 {
                kept.push(Pod { id: pod.id });
                continue;
            }
            if !ready {
                let running = docker(
                    &env.docker,
                    &["inspect", "-f", "{{.State.Running}}", &pod.id],
                );
                if running.as_deref() == Some("true") {
                    fig.half_made_pods += 1;
                }
            }
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await
            .unwrap();
            rt.remove_pod_with_containers(&pod.id).await.unwrap();
        }
    }

    // The end: everything goes through the CRI, then nothing may be left.
    let rt = grpc_client(dir.path().join("shim.sock")).await;
    for pod in our_pods(&rt).await {
        rt.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await
        .unwrap();
        rt.remove_pod_with_containers(&pod.id).await.unwrap();
    }
    // Docker deletes a removed container's network namespace file in a garbage collection
    // that runs every 60 s: the wait covers it.
    let mut leaks = settle(env, mode, &state, &before, Duration::from_secs(150)).await;
    let open = open_files_under(shim.id(), &logs);
    if !open.is_empty() {
        leaks.push(format!("log files the shim still holds open: {open:?}"));
    }
    // No panic in any of the shim's runs.
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("shim-") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(
                !text.contains("panicked"),
                "{name}: the shim panicked:\n{text}"
            );
        }
    }
    shim.kill();
    let hits = hits.0.lock().unwrap().clone();
    eprintln!(
        "FIGURES fault-injection {}: {} SIGKILLs ({} with no call in flight), {} dockerd restarts; \
         calls cut by a kill: {hits:?}; after restarts: {} half-made pods (pause running, NotReady) \
         and {} containers left in Created found and removed; {} Ready pods checked for their \
         network, {} log lines checked exactly once; leaks at the end: {}",
        mode.name,
        fig.kills,
        fig.idle_kills,
        fig.dockerd_restarts,
        fig.half_made_pods,
        fig.created_containers,
        fig.ready_pods_checked,
        fig.log_lines_checked,
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "{}: leaks after the run: {leaks:#?}",
        mode.name
    );
    assert!(
        hits.len() >= 3,
        "{}: the kills caught too few kinds of call in flight: {hits:?}",
        mode.name
    );
}

fn cni_mode(dir: &Path) -> Mode {
    let conf_dir = dir.join("net.d");
    let ipam_dir = dir.join("ipam");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "subnet": CNI_SUBNET,
                    "dataDir": ipam_dir,
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
        ]
    });
    std::fs::write(conf_dir.join("10-fault.conflist"), conf.to_string()).unwrap();
    Mode {
        name: "cni",
        cni: Some(Cni { conf_dir, ipam_dir }),
    }
}

async fn live_env() -> Option<Env> {
    let [endpoint, pause, image, exec_root] = live_values([
        "DOCKER_ENDPOINT",
        "ANYCRI_PAUSE_IMAGE",
        "ANYCRI_TEST_IMAGE",
        "DOCKER_EXEC_ROOT",
    ])?;
    let env = Env {
        docker: endpoint,
        pause,
        image,
        exec_root,
    };
    if docker(&env.docker, &["version", "-f", "{{.Server.Version}}"]).is_none() {
        skip_or_fail(&format!("dockerd at {} does not answer", env.docker));
        return None;
    }
    Some(env)
}

fn settings() -> (usize, u64, bool) {
    let kills = std::env::var("ANYCRI_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed = std::env::var("ANYCRI_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let restart =
        live_required() || std::env::var("ANYCRI_ALLOW_DOCKERD_RESTART").as_deref() == Ok("1");
    eprintln!(
        "fault injection: {kills} kills per mode, seed {seed} (ANYCRI_FAULT_SEED), dockerd restarts: {restart}"
    );
    (kills, seed, restart)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_killed_at_random_points_with_docker_bridge() {
    let Some(env) = live_env().await else { return };
    let (kills, seed, restart) = settings();
    let mode = Mode {
        name: "bridge",
        cni: None,
    };
    run_mode(&env, &mode, kills, seed, restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_killed_at_random_points_with_cni() {
    let Some(env) = live_env().await else { return };
    if !Path::new(CNI_BIN).join("bridge").exists() || !Path::new(CNI_BIN).join("portmap").exists() {
        return skip_or_fail(&format!("the CNI plugins are not in {CNI_BIN}"));
    }
    let (kills, seed, restart) = settings();
    let dir = tempfile::tempdir().unwrap();
    let mode = cni_mode(dir.path());
    run_mode(&env, &mode, kills, seed, restart).await;
    let _ = Command::new("ip")
        .args(["link", "del", CNI_BRIDGE])
        .status();
}
