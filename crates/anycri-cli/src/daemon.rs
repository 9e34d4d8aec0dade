//! The long-running commands: `anycri shim docker` serves the Docker shim as a CRI endpoint
//! (a cri-dockerd replacement that takes cri-dockerd's flags and systemd units: socket
//! activation with `fd://`, readiness with `Type=notify`), and `anycri proxy` sits
//! between a CRI client and its runtime, recording every call as a tracing span and, when
//! asked, as Prometheus metrics on a local HTTP port. Both stop gracefully on SIGTERM/SIGINT.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anycri::{
    Error, ErrorKind, Layer, LayerExt, Layered, Result, RuntimeService,
    docker::{DockerRuntime, NetworkPlugin},
    grpc::GrpcRuntime,
    layer::Call,
};
use anycri_server::{CriServer, ServeOptions};
use clap::Args;

/// `anycri shim docker` flags. cri-dockerd's flag names are accepted too (see
/// docs/docker-shim.md, "Taking over cri-dockerd's unit"): those whose meaning the shim has
/// map onto its own, the others are accepted and ignored with a warning, and the few whose
/// silent omission would be unsafe are refused.
#[derive(Debug, Args)]
pub struct DockerShimArgs {
    /// Group that owns the CRI socket (a name or gid; mode 0660), so its members may use it
    /// without root, like containerd's `[grpc] gid`.
    #[arg(long)]
    socket_group: Option<String>,
    /// Where to serve CRI: unix:///path, or fd:// for the socket systemd passes (socket
    /// activation).
    #[arg(long, default_value = "unix:///var/run/anycri-dockerd.sock")]
    pub listen: String,
    /// cri-dockerd's name for --listen; with it, the shim takes cri-dockerd's default network
    /// plugin (cni) too.
    #[arg(long, conflicts_with = "listen", help_heading = CRI_DOCKERD)]
    pub container_runtime_endpoint: Option<String>,
    /// Docker Engine's socket.
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    pub docker_endpoint: String,
    /// Image of the pod sandbox (pause) containers.
    #[arg(
        long,
        visible_alias = "pod-infra-container-image",
        default_value = "registry.k8s.io/pause:3.9"
    )]
    pub pause_image: String,
    /// How pods get their network: bridge (Docker's; also cri-dockerd's empty value) or cni.
    /// Default: bridge, or cni (cri-dockerd's default) with --container-runtime-endpoint.
    /// kubenet is refused.
    #[arg(long, value_parser = parse_network_plugin)]
    pub network_plugin: Option<NetworkPluginArg>,
    /// CNI plugin binaries (with --network-plugin cni); of cri-dockerd's comma-separated list,
    /// the first directory.
    #[arg(long, default_value = "/opt/cni/bin")]
    pub cni_bin_dir: String,
    /// CNI network configs (with --network-plugin cni).
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: String,
    /// Where the shim keeps its sandbox checkpoints.
    #[arg(
        long,
        visible_alias = "cri-dockerd-root-directory",
        default_value = "/var/lib/anycri-docker"
    )]
    pub state_dir: String,
    /// Address of the streaming server for Exec/Attach/PortForward (`IP:PORT`, or `IP` for a
    /// free port; default 127.0.0.1 and a free port).
    #[arg(long, visible_alias = "streaming-bind-addr")]
    pub streaming_address: Option<String>,
    /// Timeout of each Docker request (e.g. 2m; 0: the default, as in cri-dockerd).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub runtime_request_timeout: Duration,
    /// Largest CRI message sent or received, in bytes.
    #[arg(long, default_value_t = anycri_server::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,
    /// klog-style verbosity, as kubelet-era units pass it: up to 3 is info, 4 debug, 5 and
    /// more trace (--log-level wins).
    #[arg(short = 'v', long = "v", value_name = "LEVEL", help_heading = CRI_DOCKERD)]
    pub verbosity: Option<u8>,
    /// The pod CIDR (cri-dockerd: for kubenet only). Checked, then without effect: the shim
    /// does no kubenet.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub pod_cidr: Option<String>,
    /// Ignored (warning): CNI keeps its ADD results in the shim's sandbox checkpoints.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub cni_cache_dir: Option<String>,
    /// Ignored (warning): the MTU is the CNI config's or Docker's network's.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub network_plugin_mtu: Option<i32>,
    /// Ignored (warning): hairpin traffic is the CNI bridge plugin's `hairpinMode`.
    /// promiscuous-bridge, hairpin-veth or none.
    #[arg(long, value_parser = ["promiscuous-bridge", "hairpin-veth", "none"], help_heading = CRI_DOCKERD)]
    pub hairpin_mode: Option<String>,
    /// Ignored (warning): pods get the addresses the CNI config or Docker's network gives,
    /// IPv6 ones included.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = CRI_DOCKERD)]
    pub ipv6_dual_stack: Option<bool>,
    /// Ignored (warning): pulls are not cancelled for lack of progress; the kubelet's own
    /// deadline applies.
    #[arg(long, value_parser = humantime::parse_duration, help_heading = CRI_DOCKERD)]
    pub image_pull_progress_deadline: Option<Duration>,
    /// Ignored (warning): put the daemon in a cgroup with the unit's Slice= instead.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub runtime_cgroups: Option<String>,
    /// Ignored (warning): the shim uses and reports Docker's own cgroup driver. cgroupfs or
    /// systemd.
    #[arg(long, value_parser = ["cgroupfs", "systemd"], help_heading = CRI_DOCKERD)]
    pub cgroup_driver: Option<String>,
    /// Ignored (warning): the masquerading of kubenet, which the shim does not do.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub non_masquerade_cidr: Option<String>,
    /// Refused: the shim reaches Docker only through its unix socket, without TLS.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = CRI_DOCKERD)]
    pub docker_tls: Option<bool>,
    /// Refused, as --docker-tls.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", help_heading = CRI_DOCKERD)]
    pub docker_tls_verify: Option<bool>,
    /// Refused, as --docker-tls.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub docker_tls_ca: Option<String>,
    /// Refused, as --docker-tls.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub docker_tls_cert: Option<String>,
    /// Refused, as --docker-tls.
    #[arg(long, help_heading = CRI_DOCKERD)]
    pub docker_tls_key: Option<String>,
    /// The listening socket systemd passed (`fd://`), taken before the async runtime starts.
    #[arg(skip)]
    pub activated: Option<std::os::unix::net::UnixListener>,
}

/// The help section of cri-dockerd's own flags.
const CRI_DOCKERD: &str = "cri-dockerd compatibility";

impl DockerShimArgs {
    /// Where to serve: --listen or cri-dockerd's --container-runtime-endpoint.
    pub fn endpoint(&self) -> &str {
        self.container_runtime_endpoint
            .as_deref()
            .unwrap_or(&self.listen)
    }

    /// The log level -v asks for (klog's scale), if given.
    pub fn verbosity_level(&self) -> Option<&'static str> {
        self.verbosity.map(|v| match v {
            0..=3 => "info",
            4 => "debug",
            _ => "trace",
        })
    }

    /// The network plugin: as given, else cri-dockerd's default (cni) when started the
    /// cri-dockerd way, else Docker's bridge.
    fn network(&self) -> (NetworkPluginArg, &'static str) {
        match (self.network_plugin, &self.container_runtime_endpoint) {
            (Some(plugin), _) => (plugin, "--network-plugin"),
            (None, Some(_)) => (
                NetworkPluginArg::Cni,
                "cri-dockerd's default, as --container-runtime-endpoint was given",
            ),
            (None, None) => (NetworkPluginArg::Bridge, "the default"),
        }
    }

    /// Refuse what cannot be honoured safely, warn about what is ignored.
    fn check_compatibility_flags(&self) -> Result<()> {
        let tls = [
            ("--docker-tls", self.docker_tls == Some(true)),
            ("--docker-tls-verify", self.docker_tls_verify == Some(true)),
            ("--docker-tls-ca", self.docker_tls_ca.is_some()),
            ("--docker-tls-cert", self.docker_tls_cert.is_some()),
            ("--docker-tls-key", self.docker_tls_key.is_some()),
        ];
        if let Some((flag, _)) = tls.iter().find(|(_, given)| *given) {
            return Err(Error::invalid_argument(format!(
                "{flag}: the shim reaches Docker only through its unix socket (--docker-endpoint \
                 unix:///…), without TLS; a TCP Docker endpoint is not supported. Remove the flag."
            )));
        }
        let ignored = [
            (
                "--cni-cache-dir",
                self.cni_cache_dir.is_some(),
                "CNI ADD results are kept in the shim's sandbox checkpoints",
            ),
            (
                "--network-plugin-mtu",
                self.network_plugin_mtu.is_some(),
                "the MTU is the CNI config's (or Docker's network's)",
            ),
            (
                "--hairpin-mode",
                self.hairpin_mode.is_some(),
                "hairpin traffic is the CNI bridge plugin's hairpinMode",
            ),
            (
                "--ipv6-dual-stack",
                self.ipv6_dual_stack.is_some(),
                "pods get the addresses the CNI config (or Docker's network) gives",
            ),
            (
                "--image-pull-progress-deadline",
                self.image_pull_progress_deadline.is_some(),
                "pulls are not cancelled for lack of progress; the kubelet's deadline applies",
            ),
            (
                "--runtime-cgroups",
                self.runtime_cgroups.is_some(),
                "place the daemon in a cgroup with the unit's Slice= instead",
            ),
            (
                "--cgroup-driver",
                self.cgroup_driver.is_some(),
                "the shim uses and reports Docker's own cgroup driver",
            ),
            (
                "--non-masquerade-cidr",
                self.non_masquerade_cidr.is_some(),
                "masquerading belongs to kubenet, which the shim does not do",
            ),
        ];
        for (flag, given, why) in ignored {
            if given {
                tracing::warn!(
                    "{flag} is accepted for cri-dockerd compatibility and ignored: {why}"
                );
            }
        }
        if self.activated.is_some() && self.socket_group.is_some() {
            tracing::warn!(
                "--socket-group is ignored with fd://: the socket unit sets the socket's group"
            );
        }
        Ok(())
    }
}

/// `--network-plugin`: anycri's names, and cri-dockerd's (`cni`; empty: Docker's own network).
fn parse_network_plugin(value: &str) -> std::result::Result<NetworkPluginArg, String> {
    match value {
        "bridge" | "" => Ok(NetworkPluginArg::Bridge),
        "cni" => Ok(NetworkPluginArg::Cni),
        "kubenet" => Err(
            "kubenet is not supported by the anycri Docker shim: use cni (with \
                          the bridge and host-local plugins, as kubenet did) or bridge"
                .into(),
        ),
        other => Err(format!(
            "{other:?}: one of bridge, cni, or empty (Docker's network)"
        )),
    }
}

/// `--network-plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkPluginArg {
    /// Docker's bridge network.
    Bridge,
    /// CNI plugins.
    Cni,
}

/// `anycri proxy` flags.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Group that owns the CRI socket (a name or gid; mode 0660), so its members may use it
    /// without root, like containerd's `[grpc] gid`.
    #[arg(long)]
    socket_group: Option<String>,
    /// Where to serve CRI.
    #[arg(long)]
    pub listen: String,
    /// The runtime to forward to (unix:///run/containerd/containerd.sock).
    #[arg(long)]
    pub upstream: String,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (e.g. 127.0.0.1:9464).
    #[arg(long)]
    pub metrics_address: Option<SocketAddr>,
    /// Largest CRI message sent or received, in bytes.
    #[arg(long, default_value_t = anycri_server::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,
}

fn socket_of(listen: &str) -> Result<std::path::PathBuf> {
    anycri::grpc::socket_path(listen).map_err(|e| e.context("--listen"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight calls"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing in-flight calls"),
    }
}

/// Take the socket systemd passed when the shim is to serve `fd://`. Call before the async
/// runtime starts: it reads and clears LISTEN_FDS/LISTEN_PID.
pub fn take_socket_activation(args: &mut DockerShimArgs) -> Result<()> {
    if crate::systemd::is_activation(args.endpoint()) {
        args.activated = Some(
            crate::systemd::take_activated_listener(args.endpoint())
                .map_err(|e| e.context("--container-runtime-endpoint"))?,
        );
    }
    Ok(())
}

/// Run the Docker shim as a CRI daemon until SIGTERM/SIGINT.
pub async fn shim_docker(mut args: DockerShimArgs) -> Result<()> {
    args.check_compatibility_flags()?;
    let endpoint = args.endpoint().to_owned();
    let socket = match &args.activated {
        Some(_) => None,
        None if crate::systemd::is_activation(&endpoint) => {
            return Err(Error::failed_precondition(
                "fd://: the systemd socket was not taken at start-up",
            ));
        }
        None => Some(anycri::grpc::socket_path(&endpoint).map_err(|e| {
            e.context(if args.container_runtime_endpoint.is_some() {
                "--container-runtime-endpoint"
            } else {
                "--listen"
            })
        })?),
    };
    let timeout = if args.runtime_request_timeout.is_zero() {
        Duration::from_secs(120)
    } else {
        args.runtime_request_timeout
    };
    let mut builder = DockerRuntime::builder(&args.docker_endpoint)
        // The daemon manages the node: it holds the state directory's owner lock, so the
        // in-process `docker://` users never copy a log it copies.
        .role(anycri::docker::NodeRole::Manager)
        .pause_image(&args.pause_image)
        .state_dir(&args.state_dir)
        .timeout(timeout);
    if let Some(address) = &args.streaming_address {
        let address = anycri::parse_streaming_address(address)
            .map_err(|e| e.context("--streaming-address"))?;
        builder = builder.streaming_address(address);
    }
    let (network, why) = args.network();
    tracing::info!(plugin = ?network, reason = why, "network plugin");
    if network == NetworkPluginArg::Cni {
        // cri-dockerd takes a comma-separated list of directories.
        let mut dirs = args.cni_bin_dir.split(',').filter(|d| !d.is_empty());
        let bin_dir = dirs.next().unwrap_or("/opt/cni/bin").to_owned();
        let rest: Vec<&str> = dirs.collect();
        if !rest.is_empty() {
            tracing::warn!(
                used = %bin_dir,
                ignored = %rest.join(","),
                "--cni-bin-dir: the shim looks for CNI plugins in one directory; the others are ignored"
            );
        }
        builder = builder.network_plugin(NetworkPlugin::Cni {
            bin_dir: bin_dir.into(),
            conf_dir: args.cni_conf_dir.clone().into(),
        });
    }
    let runtime = builder.connect().await?;
    if let Some(cidr) = &args.pod_cidr {
        // cri-dockerd hands it to UpdateRuntimeConfig at start-up: a bad one stops it there.
        runtime
            .update_runtime_config(anycri::api::UpdateRuntimeConfigRequest {
                runtime_config: Some(anycri::api::RuntimeConfig {
                    network_config: Some(anycri::api::NetworkConfig {
                        pod_cidr: cidr.clone(),
                    }),
                }),
            })
            .await
            .map_err(|e| e.context("--pod-cidr"))?;
        tracing::warn!(
            "--pod-cidr {cidr} is accepted for cri-dockerd compatibility and has no effect: \
             only kubenet used it, which the shim does not do"
        );
    }
    let shim = Arc::new(runtime.clone().with_tracing());
    let server = CriServer::new(shim.clone(), shim);
    let options = serve_options(args.max_message_size, args.socket_group.as_deref())?;
    let listener = match (args.activated.take(), &socket) {
        (Some(listener), _) => {
            tracing::info!("serving CRI on the socket systemd passed (fd://)");
            tokio::net::UnixListener::from_std(listener).map_err(|e| {
                Error::with_source(ErrorKind::Internal, "fd://: using the passed socket", e)
            })?
        }
        (None, Some(path)) => {
            let listener = anycri_server::bind_unix(path, &options).await?;
            tracing::info!(socket = %path.display(), "serving CRI");
            listener
        }
        (None, None) => unreachable!("fd:// without a socket was refused above"),
    };
    // ExecReload= in cri-dockerd's unit sends SIGHUP: there is nothing to reload.
    if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload");
            }
        });
    }
    crate::systemd::notify("READY=1");
    let shutdown = async {
        shutdown_signal().await;
        crate::systemd::notify("STOPPING=1");
    };
    let served = anycri_server::serve_unix_listener(server, listener, &options, shutdown).await;
    if let Some(path) = &socket {
        let _ = tokio::fs::remove_file(path).await;
    }
    // Streaming sessions end with the daemon, their exec processes killed; cut off by the
    // exit instead, they would go on running in the containers.
    runtime.shutdown_streaming().await;
    served
}

/// (RPC, gRPC code) → (calls, seconds).
type CallTotals = BTreeMap<(&'static str, &'static str), (u64, f64)>;

/// Per-RPC call counts and durations, by gRPC code.
#[derive(Default)]
pub struct Metrics {
    calls: Mutex<CallTotals>,
}

impl Metrics {
    fn record(&self, rpc: &'static str, code: &'static str, seconds: f64) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let entry = calls.entry((rpc, code)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP anycri_cri_requests_total CRI calls through the proxy, by RPC and gRPC code.\n\
             # TYPE anycri_cri_requests_total counter\n",
        );
        for ((rpc, code), (n, _)) in calls.iter() {
            out.push_str(&format!(
                "anycri_cri_requests_total{{rpc=\"{rpc}\",code=\"{code}\"}} {n}\n"
            ));
        }
        out.push_str(
            "# HELP anycri_cri_request_duration_seconds_sum Time spent in CRI calls, by RPC and gRPC code.\n\
             # TYPE anycri_cri_request_duration_seconds_sum counter\n",
        );
        for ((rpc, code), (_, s)) in calls.iter() {
            out.push_str(&format!(
                "anycri_cri_request_duration_seconds_sum{{rpc=\"{rpc}\",code=\"{code}\"}} {s}\n"
            ));
        }
        out
    }
}

fn code_name(code: anycri::tonic::Code) -> &'static str {
    use anycri::tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "Canceled",
        C::Unknown => "Unknown",
        C::InvalidArgument => "InvalidArgument",
        C::DeadlineExceeded => "DeadlineExceeded",
        C::NotFound => "NotFound",
        C::AlreadyExists => "AlreadyExists",
        C::PermissionDenied => "PermissionDenied",
        C::ResourceExhausted => "ResourceExhausted",
        C::FailedPrecondition => "FailedPrecondition",
        C::Aborted => "Aborted",
        C::OutOfRange => "OutOfRange",
        C::Unimplemented => "Unimplemented",
        C::Internal => "Internal",
        C::Unavailable => "Unavailable",
        C::DataLoss => "DataLoss",
        C::Unauthenticated => "Unauthenticated",
    }
}

/// A layer that counts calls into [`Metrics`].
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<Metrics>);

impl Layer for MetricsLayer {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        let started = Instant::now();
        let result = attempt().await;
        let code = match &result {
            Ok(_) => anycri::tonic::Code::Ok,
            Err(e) => e.code(),
        };
        self.0.record(
            call.operation.name,
            code_name(code),
            started.elapsed().as_secs_f64(),
        );
        result
    }
}

async fn serve_metrics(address: SocketAddr, metrics: Arc<Metrics>) -> Result<()> {
    use hyper::{Response, body::Bytes, server::conn::http1, service::service_fn};
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        Error::with_source(
            ErrorKind::Unavailable,
            format!("binding metrics address {address}"),
            e,
        )
    })?;
    tracing::info!(%address, "serving metrics at /metrics");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        (200, metrics.render())
                    } else {
                        (404, "not found; try /metrics\n".to_owned())
                    };
                    Response::builder()
                        .status(status)
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(http_body_util::Full::new(Bytes::from(body)))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Run the recording proxy until SIGTERM/SIGINT.
pub async fn proxy(args: ProxyArgs) -> Result<()> {
    let socket = socket_of(&args.listen)?;
    let upstream = GrpcRuntime::builder(&args.upstream)
        .max_message_size(args.max_message_size)
        .connect()
        .await
        .map_err(|e| e.context("--upstream"))?;
    // Spans for every call; the upstream client already applies the kubelet's deadlines.
    let metrics = Arc::new(Metrics::default());
    let recorded = Arc::new(Layered::new(
        upstream.with_tracing(),
        MetricsLayer(metrics.clone()),
    ));
    if let Some(address) = args.metrics_address {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_metrics(address, metrics).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        });
    }
    let server = CriServer::new(recorded.clone(), recorded);
    let options = serve_options(args.max_message_size, args.socket_group.as_deref())?;
    anycri_server::serve_unix(server, socket, options, shutdown_signal()).await
}

/// The socket options both daemons take: the message limit and `--socket-group`.
fn serve_options(
    max_message_size: usize,
    socket_group: Option<&str>,
) -> anycri::Result<ServeOptions> {
    Ok(ServeOptions {
        max_message_size,
        group: socket_group
            .map(anycri_server::group_id)
            .transpose()
            .map_err(|e| e.context("--socket-group"))?,
        ..Default::default()
    })
}
