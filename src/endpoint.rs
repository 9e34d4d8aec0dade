//! Endpoint URIs and connecting: `unix:///path` (CRI over a socket), `fake://` (the
//! in-memory runtime) and `docker:///path` (the in-process Docker shim, `anycri-docker`), plus
//! auto-detection in crictl's order.

use std::{sync::Arc, time::Duration};

use anycri_core::{Error, ImageService, Result, RuntimeService};

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
        /// Shim settings from the query string (`pause_image`, `state_dir`, `role`,
        /// `network_plugin=bridge|cni`, `cni_bin_dir`, `cni_conf_dir`,
        /// `streaming_address=IP[:PORT]`).
        options: Vec<(String, String)>,
    },
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
    /// assert_eq!(options, [("pause_image".to_string(), "registry.k8s.io/pause:3.9".to_string())]);
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
                let mut options = Vec::new();
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
                    options.push((k.to_owned(), v.to_owned()));
                }
                Ok(Endpoint::Docker {
                    socket: path.into(),
                    options,
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

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

async fn connect_with(uri: &str, connect_timeout: Duration) -> Result<Connected> {
    let endpoint = Endpoint::parse(uri)?;
    match endpoint {
        #[cfg(feature = "grpc")]
        Endpoint::Unix(path) => {
            let rt = Arc::new(
                anycri_grpc::GrpcRuntime::builder(format!("unix://{}", path.display()))
                    .connect_timeout(connect_timeout)
                    .connect()
                    .await?,
            );
            Ok(Connected {
                runtime: rt.clone(),
                image: rt,
                endpoint: uri.to_owned(),
            })
        }
        #[cfg(feature = "fake")]
        Endpoint::Fake => {
            let rt = Arc::new(anycri_fake::FakeRuntime::new());
            Ok(Connected {
                runtime: rt.clone(),
                image: rt,
                endpoint: uri.to_owned(),
            })
        }
        #[cfg(feature = "docker")]
        Endpoint::Docker { socket, options } => {
            let rt = Arc::new(docker_builder(&socket, &options)?.connect().await?);
            Ok(Connected {
                runtime: rt.clone(),
                image: rt,
                endpoint: uri.to_owned(),
            })
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
    options: &[(String, String)],
) -> Result<anycri_docker::DockerRuntimeBuilder> {
    let mut builder = anycri_docker::DockerRuntime::builder(format!("unix://{}", socket.display()));
    let get = |key: &str| {
        options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if let Some(image) = get("pause_image") {
        builder = builder.pause_image(image);
    }
    if let Some(role) = get("role") {
        builder = builder.role(anycri_docker::NodeRole::parse(&role)?);
    }
    if let Some(dir) = get("state_dir") {
        builder = builder.state_dir(dir);
    }
    if let Some(address) = get("streaming_address") {
        builder = builder.streaming_address(parse_streaming_address(&address)?);
    }
    match get("network_plugin").as_deref() {
        None | Some("bridge") => {}
        Some("cni") => {
            builder = builder.network_plugin(anycri_docker::NetworkPlugin::Cni {
                bin_dir: get("cni_bin_dir")
                    .unwrap_or_else(|| "/opt/cni/bin".into())
                    .into(),
                conf_dir: get("cni_conf_dir")
                    .unwrap_or_else(|| "/etc/cni/net.d".into())
                    .into(),
            });
        }
        Some(other) => {
            return Err(Error::invalid_argument(format!(
                "network_plugin {other:?} must be bridge or cni"
            )));
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
    connect_with(uri, Duration::from_secs(5)).await
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
        match connect_with(uri, Duration::from_secs(2)).await {
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
                options: vec![]
            }
        );
        assert_eq!(
            Endpoint::parse("docker:///d.sock?pause_image=p:1&state_dir=/s").unwrap(),
            Endpoint::Docker {
                socket: "/d.sock".into(),
                options: vec![
                    ("pause_image".into(), "p:1".into()),
                    ("state_dir".into(), "/s".into())
                ]
            }
        );
        assert!(Endpoint::parse("docker:///d.sock?bogus=1").is_err());
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
