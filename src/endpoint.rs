//! Endpoint URIs and connecting: `unix:///path` (CRI over a socket), `fake://` (the
//! in-memory runtime) and `docker:///path` (the in-process Docker shim, `anycri-docker`), plus
//! auto-detection in crictl's order.

use std::{sync::Arc, time::Duration};

use anycri_core::{Error, ImageService, Layered, OriginLayer, Result, RuntimeService};

/// crictl's default runtime endpoints, in the order it tries them.
pub const DEFAULT_ENDPOINTS: &[&str] = &[
    "unix:///run/containerd/containerd.sock",
    "unix:///run/crio/crio.sock",
    "unix:///var/run/cri-dockerd.sock",
];

/// Options a `docker://` endpoint takes in its query string.
pub const DOCKER_OPTIONS: &[&str] = &[
    "pause_image",
    "state_dir",
    "role",
    "network_plugin",
    "cni_bin_dir",
    "cni_conf_dir",
    "streaming_address",
];

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// CRI gRPC over the unix socket at this path.
    Unix(std::path::PathBuf),
    /// The in-memory fake runtime.
    Fake,
    /// The in-process Docker shim talking to the Docker socket at `socket`.
    Docker {
        /// Docker's socket.
        socket: std::path::PathBuf,
        /// Shim settings from the query string, validated and typed.
        options: DockerOptions,
    },
}

/// The Docker shim's settings from a `docker://` endpoint's query string
/// (`?pause_image=...&state_dir=...&role=...&network_plugin=bridge|cni&cni_bin_dir=...&cni_conf_dir=...&streaming_address=IP[:PORT]`).
/// Every value is checked when the endpoint is parsed; `None` means the shim's default.
///
/// ```
/// use anycri::{DockerNetwork, DockerRole, Endpoint};
/// let Endpoint::Docker { options, .. } = Endpoint::parse(
///     "docker:///var/run/docker.sock?role=read-only&network_plugin=cni&cni_conf_dir=/etc/cni/net.d",
/// )? else { unreachable!() };
/// assert_eq!(options.role, Some(DockerRole::ReadOnly));
/// assert!(matches!(options.network, Some(DockerNetwork::Cni { .. })));
/// assert_eq!(options.state_dir_or_default().to_str(), Some("/var/lib/anycri-docker"));
/// # Ok::<(), anycri::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerOptions {
    /// The pod infra ("pause") image (`pause_image`).
    pub pause_image: Option<String>,
    /// The shim's state directory (`state_dir`; default [`DockerOptions::DEFAULT_STATE_DIR`]).
    pub state_dir: Option<std::path::PathBuf>,
    /// Who writes container logs (`role`).
    pub role: Option<DockerRole>,
    /// How pods get their network (`network_plugin`, `cni_bin_dir`, `cni_conf_dir`).
    pub network: Option<DockerNetwork>,
    /// Where the streaming server listens (`streaming_address`).
    pub streaming_address: Option<std::net::SocketAddr>,
}

impl DockerOptions {
    /// The shim's state directory when `state_dir` is not given.
    pub const DEFAULT_STATE_DIR: &'static str = "/var/lib/anycri-docker";

    /// The state directory the shim uses: `state_dir` or the default.
    pub fn state_dir_or_default(&self) -> std::path::PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| Self::DEFAULT_STATE_DIR.into())
    }

    fn parse(uri: &str, query: &str) -> Result<Self> {
        let mut raw: Vec<(&str, &str)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::invalid_argument(format!(
                    "endpoint {uri:?}: option {pair:?} must be key=value"
                ))
            })?;
            if !DOCKER_OPTIONS.contains(&k) {
                return Err(Error::invalid_argument(format!(
                    "endpoint {uri:?}: unknown option {k:?} (known: {})",
                    DOCKER_OPTIONS.join(", ")
                )));
            }
            raw.push((k, v));
        }
        // The last of a repeated option wins, as in a command line.
        let get = |key: &str| raw.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let bad = |e: Error| e.context(format!("endpoint {uri:?}"));
        let mut options = DockerOptions {
            pause_image: get("pause_image").map(str::to_owned),
            state_dir: get("state_dir").map(Into::into),
            role: get("role")
                .map(DockerRole::parse)
                .transpose()
                .map_err(bad)?,
            network: None,
            streaming_address: get("streaming_address")
                .map(parse_streaming_address)
                .transpose()
                .map_err(bad)?,
        };
        let cni_dirs = get("cni_bin_dir").is_some() || get("cni_conf_dir").is_some();
        options.network = match get("network_plugin") {
            None if !cni_dirs => None,
            Some("bridge") if !cni_dirs => Some(DockerNetwork::Bridge),
            None | Some("bridge") => {
                return Err(Error::invalid_argument(format!(
                    "endpoint {uri:?}: cni_bin_dir and cni_conf_dir need network_plugin=cni"
                )));
            }
            Some("cni") => Some(DockerNetwork::Cni {
                bin_dir: get("cni_bin_dir").unwrap_or("/opt/cni/bin").into(),
                conf_dir: get("cni_conf_dir").unwrap_or("/etc/cni/net.d").into(),
            }),
            Some(other) => {
                return Err(Error::invalid_argument(format!(
                    "endpoint {uri:?}: network_plugin {other:?} must be bridge or cni"
                )));
            }
        };
        if let Some(dir) = &options.state_dir
            && !dir.is_absolute()
        {
            return Err(Error::invalid_argument(format!(
                "endpoint {uri:?}: state_dir {dir:?} must be an absolute path"
            )));
        }
        Ok(options)
    }
}

/// Who writes container logs on a Docker node (the `role` option; see
/// `anycri::docker::NodeRole`, which it becomes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerRole {
    /// `manager`: own the node from the start, as `anycri shim docker` does.
    Manager,
    /// `auto`: become the owner at the first StartContainer if nobody is (the default).
    Auto,
    /// `read-only`: never write logs.
    ReadOnly,
}

impl DockerRole {
    /// Parses `manager`, `auto` or `read-only`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "manager" => Ok(DockerRole::Manager),
            "auto" => Ok(DockerRole::Auto),
            "read-only" | "readonly" => Ok(DockerRole::ReadOnly),
            other => Err(Error::invalid_argument(format!(
                "role {other:?}: want manager, auto or read-only"
            ))),
        }
    }
}

/// How the Docker shim gives pods their network (the `network_plugin` option).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DockerNetwork {
    /// Docker's default bridge network.
    Bridge,
    /// CNI plugins from `bin_dir` with the configuration in `conf_dir`.
    Cni {
        /// Where the plugin binaries are (default `/opt/cni/bin`).
        bin_dir: std::path::PathBuf,
        /// Where the network configuration is (default `/etc/cni/net.d`).
        conf_dir: std::path::PathBuf,
    },
}

/// How [`connect_with`] connects.
///
/// ```
/// use std::time::Duration;
/// let options = anycri::ConnectOptions::default()
///     .connect_timeout(Duration::from_millis(500))
///     .request_timeout(Duration::from_secs(30));
/// assert_eq!(options.connect_timeout, Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long to wait for the endpoint to accept a connection and answer its first call
    /// (the CRI `Version` handshake, Docker's `/version`). Default 5 s.
    pub connect_timeout: Duration,
    /// The base request timeout the kubelet's per-call deadlines derive from (gRPC backend;
    /// default 2 min, the kubelet's `--runtime-request-timeout`).
    pub request_timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
        }
    }
}

impl ConnectOptions {
    /// Sets [`ConnectOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`ConnectOptions::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }
}

impl Endpoint {
    /// Parse `uri`. Bad or unsupported URIs are InvalidArgument errors.
    ///
    /// ```
    /// use anycri::Endpoint;
    /// assert_eq!(
    ///     Endpoint::parse("unix:///run/containerd/containerd.sock")?,
    ///     Endpoint::Unix("/run/containerd/containerd.sock".into())
    /// );
    /// assert_eq!(Endpoint::parse("fake://")?, Endpoint::Fake);
    /// let Endpoint::Docker { socket, options } =
    ///     Endpoint::parse("docker:///var/run/docker.sock?pause_image=registry.k8s.io/pause:3.9")?
    /// else {
    ///     unreachable!()
    /// };
    /// assert_eq!(socket.to_str(), Some("/var/run/docker.sock"));
    /// assert_eq!(options.pause_image.as_deref(), Some("registry.k8s.io/pause:3.9"));
    /// assert!(Endpoint::parse("tcp://10.0.0.1:1234").unwrap_err().kind() == anycri::ErrorKind::InvalidArgument);
    /// # Ok::<(), anycri::Error>(())
    /// ```
    pub fn parse(uri: &str) -> Result<Self> {
        let uri = uri.trim();
        match uri.split_once("://") {
            Some(("fake", rest)) if rest.is_empty() || rest == "/" => Ok(Endpoint::Fake),
            Some(("fake", rest)) => Err(Error::invalid_argument(format!(
                "endpoint {uri:?}: fake:// takes no path (got {rest:?})"
            ))),
            Some(("docker", rest)) => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                let path = if path.is_empty() {
                    "/var/run/docker.sock"
                } else {
                    path
                };
                if !path.starts_with('/') {
                    return Err(Error::invalid_argument(format!(
                        "endpoint {uri:?}: the Docker socket path must be absolute (docker:///var/run/docker.sock)"
                    )));
                }
                Ok(Endpoint::Docker {
                    socket: path.into(),
                    options: DockerOptions::parse(uri, query)?,
                })
            }
            Some(("unix", _)) | None => {
                #[cfg(feature = "grpc")]
                {
                    anycri_grpc::socket_path(uri).map(Endpoint::Unix)
                }
                #[cfg(not(feature = "grpc"))]
                {
                    Err(Error::invalid_argument(format!(
                        "endpoint {uri:?}: built without the `grpc` feature"
                    )))
                }
            }
            Some((scheme, _)) => Err(Error::invalid_argument(format!(
                "endpoint {uri:?}: unsupported scheme {scheme:?} (use unix:///path, fake:// or docker:///path)"
            ))),
        }
    }
}

/// A connected backend: the runtime and image services (often the same object).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
/// use anycri::{ImageService, RuntimeService};
/// let connected = anycri::connect("fake://").await?;
/// println!("connected to {}", connected.endpoint);
/// let version = connected.runtime.version(Default::default()).await?;
/// let images = connected.image.list_images(Default::default()).await?;
/// assert_eq!((version.runtime_name.as_str(), images.images.len()), ("anycri-fake", 0));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connected {
    /// The runtime service.
    pub runtime: Arc<dyn RuntimeService>,
    /// The image service.
    pub image: Arc<dyn ImageService>,
    /// The endpoint it came from.
    pub endpoint: String,
}

impl Connected {
    /// `backend` as both services, behind an [`OriginLayer`] so that its errors name the
    /// failed operation and `endpoint`.
    #[allow(dead_code)] // unused in a build without any backend feature
    fn new<B: RuntimeService + ImageService + 'static>(backend: B, endpoint: &str) -> Self {
        let layered = Arc::new(Layered::new(backend, OriginLayer::new(endpoint)));
        Connected {
            runtime: layered.clone(),
            image: layered,
            endpoint: endpoint.to_owned(),
        }
    }
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Connect to the backend `uri` names, with `options`: see [`connect`] for the URIs.
///
/// The connect timeout bounds the whole connection, handshake included: a socket that
/// accepts but does not answer gRPC fails after it, not after the request timeout.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
/// use std::time::Duration;
/// use anycri::ConnectOptions;
/// let options = ConnectOptions::default().connect_timeout(Duration::from_millis(300));
/// let err = anycri::connect_with("unix:///nonexistent/cri.sock", options).await.unwrap_err();
/// assert_eq!(err.kind(), anycri::ErrorKind::Unavailable);
/// assert!(err.to_string().contains("/nonexistent/cri.sock"));
/// # Ok(()) }
/// ```
pub async fn connect_with(uri: &str, options: ConnectOptions) -> Result<Connected> {
    let endpoint = Endpoint::parse(uri)?;
    let _ = &options;
    match endpoint {
        #[cfg(feature = "grpc")]
        Endpoint::Unix(path) => {
            let mut builder =
                anycri_grpc::GrpcRuntime::builder(format!("unix://{}", path.display()))
                    .connect_timeout(options.connect_timeout);
            if let Some(timeout) = options.request_timeout {
                builder = builder.request_timeout(timeout);
            }
            // GrpcRuntime names the operation and endpoint in its errors itself.
            let rt = Arc::new(builder.connect().await?);
            Ok(Connected {
                runtime: rt.clone(),
                image: rt,
                endpoint: uri.to_owned(),
            })
        }
        #[cfg(feature = "fake")]
        Endpoint::Fake => Ok(Connected::new(anycri_fake::FakeRuntime::new(), uri)),
        #[cfg(feature = "docker")]
        Endpoint::Docker {
            socket,
            options: docker,
        } => {
            let builder = docker_builder(&socket, &docker)?;
            let rt = tokio::time::timeout(options.connect_timeout, builder.connect())
                .await
                .map_err(|_| {
                    Error::deadline_exceeded(format!(
                        "endpoint {uri:?}: Docker did not answer within the connect timeout ({:?})",
                        options.connect_timeout
                    ))
                })??;
            Ok(Connected::new(rt, uri))
        }
        #[allow(unreachable_patterns)]
        other => Err(Error::invalid_argument(format!(
            "endpoint {uri:?}: this build of anycri lacks its backend; enable the `{}` feature of the anycri crate",
            missing_feature(&other)
        ))),
    }
}

/// The cargo feature that brings an endpoint's backend.
#[allow(dead_code)]
fn missing_feature(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Unix(_) => "grpc",
        Endpoint::Fake => "fake",
        Endpoint::Docker { .. } => "docker",
    }
}

#[cfg(feature = "docker")]
fn docker_builder(
    socket: &std::path::Path,
    options: &DockerOptions,
) -> Result<anycri_docker::DockerRuntimeBuilder> {
    let mut builder = anycri_docker::DockerRuntime::builder(format!("unix://{}", socket.display()));
    if let Some(image) = &options.pause_image {
        builder = builder.pause_image(image.clone());
    }
    if let Some(role) = options.role {
        builder = builder.role(match role {
            DockerRole::Manager => anycri_docker::NodeRole::Manager,
            DockerRole::Auto => anycri_docker::NodeRole::Auto,
            DockerRole::ReadOnly => anycri_docker::NodeRole::ReadOnly,
        });
    }
    if let Some(dir) = &options.state_dir {
        builder = builder.state_dir(dir.clone());
    }
    if let Some(address) = options.streaming_address {
        #[cfg(feature = "docker-streaming")]
        {
            builder = builder.streaming_address(address);
        }
        #[cfg(not(feature = "docker-streaming"))]
        {
            return Err(Error::invalid_argument(format!(
                "streaming_address {address}: this build of anycri has the Docker shim without its streaming server; enable the `docker-streaming` feature of the anycri crate"
            )));
        }
    }
    match &options.network {
        None | Some(DockerNetwork::Bridge) => {}
        Some(DockerNetwork::Cni { bin_dir, conf_dir }) => {
            builder = builder.network_plugin(anycri_docker::NetworkPlugin::Cni {
                bin_dir: bin_dir.clone(),
                conf_dir: conf_dir.clone(),
            });
        }
    }
    Ok(builder)
}

/// `IP:PORT`, `[IPv6]:PORT` or a bare IP (a free port): where the Docker shim's streaming
/// server listens.
///
/// ```
/// use anycri::parse_streaming_address;
/// assert_eq!(parse_streaming_address("127.0.0.1:10010")?.port(), 10010);
/// assert_eq!(parse_streaming_address("::1")?.port(), 0); // any free port
/// assert!(parse_streaming_address("localhost:10010").is_err()); // an address, not a name
/// # Ok::<(), anycri::Error>(())
/// ```
pub fn parse_streaming_address(address: &str) -> Result<std::net::SocketAddr> {
    if let Ok(addr) = address.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    address
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 0))
        .map_err(|_| {
            Error::invalid_argument(format!(
                "streaming address {address:?} must be IP:PORT or IP (e.g. 127.0.0.1:10010)"
            ))
        })
}

/// Connect to the backend `uri` names: `unix:///path` or a bare absolute path (CRI gRPC),
/// `fake://` (a new in-memory runtime) or `docker:///var/run/docker.sock` (the Docker shim).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
/// use anycri::RuntimeService;
/// let runtime = anycri::connect("fake://").await?.runtime;
/// assert_eq!(runtime.version(Default::default()).await?.runtime_name, "anycri-fake");
///
/// // Nothing listens there: Unavailable, naming the socket.
/// let err = anycri::connect("unix:///nonexistent/cri.sock").await.unwrap_err();
/// assert_eq!(err.kind(), anycri::ErrorKind::Unavailable);
/// # Ok(()) }
/// ```
pub async fn connect(uri: &str) -> Result<Connected> {
    connect_with(uri, ConnectOptions::default()).await
}

/// Connect to an image service endpoint (`IMAGE_SERVICE_ENDPOINT`-style); the runtime
/// service of the result is the same backend.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
/// use anycri::ImageServiceExt;
/// let images = anycri::connect_image("fake://").await?;
/// assert!(images.find_image("busybox:1.36").await?.is_none());
/// # Ok(()) }
/// ```
pub async fn connect_image(uri: &str) -> Result<Arc<dyn ImageService>> {
    Ok(connect(uri).await?.image)
}

/// Find the node's runtime as crictl does: `CONTAINER_RUNTIME_ENDPOINT` (and
/// `IMAGE_SERVICE_ENDPOINT` for images) when set, else the [`DEFAULT_ENDPOINTS`] in order,
/// each probed briefly. The error names every place tried and why each failed.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri::Result<()> {
/// // CONTAINER_RUNTIME_ENDPOINT=unix:///run/crio/crio.sock picks CRI-O explicitly.
/// let connected = anycri::connect_auto().await?;
/// println!("using {}", connected.endpoint);
/// # Ok(()) }
/// ```
pub async fn connect_auto() -> Result<Connected> {
    let image_uri = std::env::var("IMAGE_SERVICE_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty());
    if let Some(uri) = std::env::var("CONTAINER_RUNTIME_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
    {
        let mut connected = connect(&uri)
            .await
            .map_err(|e| e.context(format!("CONTAINER_RUNTIME_ENDPOINT={uri}")))?;
        if let Some(image_uri) = image_uri {
            connected.image = connect_image(&image_uri)
                .await
                .map_err(|e| e.context(format!("IMAGE_SERVICE_ENDPOINT={image_uri}")))?;
        }
        return Ok(connected);
    }
    let mut tried = Vec::new();
    for uri in DEFAULT_ENDPOINTS {
        match connect_with(
            uri,
            ConnectOptions::default().connect_timeout(Duration::from_secs(2)),
        )
        .await
        {
            Ok(mut connected) => {
                if let Some(image_uri) = &image_uri {
                    connected.image = connect_image(image_uri).await?;
                }
                return Ok(connected);
            }
            Err(e) => tried.push(format!("{uri} ({})", e.message())),
        }
    }
    Err(Error::unavailable(format!(
        "no container runtime found; set CONTAINER_RUNTIME_ENDPOINT or pass -r. Tried: {}",
        tried.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use anycri_core::ErrorKind;

    #[test]
    fn a_missing_backend_names_its_feature() {
        for (uri, feature) in [
            ("unix:///run/x.sock", "grpc"),
            ("fake://", "fake"),
            ("docker:///var/run/docker.sock", "docker"),
        ] {
            assert_eq!(
                missing_feature(&Endpoint::parse(uri).unwrap()),
                feature,
                "{uri}"
            );
        }
    }

    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(Endpoint::parse("fake://").unwrap(), Endpoint::Fake);
        assert_eq!(
            Endpoint::parse("docker:///var/run/docker.sock").unwrap(),
            Endpoint::Docker {
                socket: "/var/run/docker.sock".into(),
                options: DockerOptions::default()
            }
        );
        assert_eq!(
            Endpoint::parse("docker:///d.sock?pause_image=p:1&state_dir=/s").unwrap(),
            Endpoint::Docker {
                socket: "/d.sock".into(),
                options: DockerOptions {
                    pause_image: Some("p:1".into()),
                    state_dir: Some("/s".into()),
                    ..Default::default()
                }
            }
        );
        assert!(Endpoint::parse("docker:///d.sock?bogus=1").is_err());
        // Every value is checked at parse time.
        for bad in [
            "docker:///d.sock?role=boss",
            "docker:///d.sock?network_plugin=kubenet",
            "docker:///d.sock?cni_conf_dir=/etc/cni/net.d",
            "docker:///d.sock?state_dir=relative/dir",
            "docker:///d.sock?streaming_address=localhost:1",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(err.message().contains(bad), "{bad}: {err}");
        }
        let Endpoint::Docker { options, .. } =
            Endpoint::parse("docker:///d.sock?role=auto&role=manager&network_plugin=cni").unwrap()
        else {
            unreachable!()
        };
        assert_eq!(options.role, Some(DockerRole::Manager));
        assert_eq!(
            options.network,
            Some(DockerNetwork::Cni {
                bin_dir: "/opt/cni/bin".into(),
                conf_dir: "/etc/cni/net.d".into()
            })
        );
        assert!(Endpoint::parse("docker:///d.sock?streaming_address=127.0.0.1:10010").is_ok());
        assert_eq!(
            parse_streaming_address("127.0.0.1:10010").unwrap(),
            "127.0.0.1:10010".parse().unwrap()
        );
        assert_eq!(
            parse_streaming_address("::1").unwrap(),
            "[::1]:0".parse().unwrap()
        );
        assert!(parse_streaming_address("localhost:1").is_err());
        assert!(Endpoint::parse("docker:///d.sock?novalue").is_err());
        assert_eq!(
            Endpoint::parse("unix:///run/a.sock").unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        assert_eq!(
            Endpoint::parse("/run/a.sock").unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        for bad in [
            "",
            "unix://",
            "tcp://127.0.0.1:1",
            "fake://x",
            "docker://rel",
            "npipe:////./pipe/x",
            "a.sock",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert_eq!(
                err.kind(),
                anycri_core::ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn connect_reports_missing_socket_as_unavailable() {
        let err = connect("unix:///nonexistent/anycri-test.sock")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), anycri_core::ErrorKind::Unavailable, "{err}");
        assert!(
            err.message().contains("/nonexistent/anycri-test.sock"),
            "{err}"
        );
    }
}
