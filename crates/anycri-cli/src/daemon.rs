//! The long-running commands: `anycri shim docker` serves the Docker shim as a CRI endpoint
//! (a cri-dockerd replacement; flag names follow cri-dockerd's), and `anycri proxy` sits
//! between a CRI client and its runtime, recording every call as a tracing span and, when
//! asked, as Prometheus metrics on a local HTTP port. Both stop gracefully on SIGTERM/SIGINT.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anycri::{
    Error, ErrorKind, Layer, LayerExt, Layered, Result,
    docker::{DockerRuntime, NetworkPlugin},
    grpc::GrpcRuntime,
    layer::Call,
};
use anycri_server::{CriServer, ServeOptions};
use clap::{Args, ValueEnum};

/// `anycri shim docker` flags.
#[derive(Debug, Args)]
pub struct DockerShimArgs {
    /// Group that owns the CRI socket (a name or gid; mode 0660), so its members may use it
    /// without root, like containerd's `[grpc] gid`.
    #[arg(long)]
    socket_group: Option<String>,
    /// Where to serve CRI.
    #[arg(long, default_value = "unix:///var/run/anycri-dockerd.sock")]
    pub listen: String,
    /// Docker Engine's socket.
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    pub docker_endpoint: String,
    /// Image of the pod sandbox (pause) containers.
    #[arg(long, default_value = "registry.k8s.io/pause:3.9")]
    pub pause_image: String,
    /// How pods get their network.
    #[arg(long, value_enum, default_value_t = NetworkPluginArg::Bridge)]
    pub network_plugin: NetworkPluginArg,
    /// CNI plugin binaries (with --network-plugin cni).
    #[arg(long, default_value = "/opt/cni/bin")]
    pub cni_bin_dir: String,
    /// CNI network configs (with --network-plugin cni).
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: String,
    /// Where the shim keeps its sandbox checkpoints.
    #[arg(long, default_value = "/var/lib/anycri-docker")]
    pub state_dir: String,
    /// Address of the streaming server for Exec/Attach/PortForward (`IP:PORT`, or `IP` for a
    /// free port; default 127.0.0.1 and a free port).
    #[arg(long)]
    pub streaming_address: Option<String>,
    /// Timeout of each Docker request (e.g. 2m).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub runtime_request_timeout: Duration,
    /// Largest CRI message sent or received, in bytes.
    #[arg(long, default_value_t = anycri_server::DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,
}

/// `--network-plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

/// Run the Docker shim as a CRI daemon until SIGTERM/SIGINT.
pub async fn shim_docker(args: DockerShimArgs) -> Result<()> {
    let socket = socket_of(&args.listen)?;
    let mut builder = DockerRuntime::builder(&args.docker_endpoint)
        // The daemon manages the node: it holds the state directory's owner lock, so the
        // in-process `docker://` users never copy a log it copies.
        .role(anycri::docker::NodeRole::Manager)
        .pause_image(&args.pause_image)
        .state_dir(&args.state_dir)
        .timeout(args.runtime_request_timeout);
    if let Some(address) = &args.streaming_address {
        let address = anycri::parse_streaming_address(address)
            .map_err(|e| e.context("--streaming-address"))?;
        builder = builder.streaming_address(address);
    }
    if args.network_plugin == NetworkPluginArg::Cni {
        builder = builder.network_plugin(NetworkPlugin::Cni {
            bin_dir: args.cni_bin_dir.clone().into(),
            conf_dir: args.cni_conf_dir.clone().into(),
        });
    }
    let runtime = builder.connect().await?;
    let shim = Arc::new(runtime.clone().with_tracing());
    let server = CriServer::new(shim.clone(), shim);
    let options = serve_options(args.max_message_size, args.socket_group.as_deref())?;
    let served = anycri_server::serve_unix(server, socket, options, shutdown_signal()).await;
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
