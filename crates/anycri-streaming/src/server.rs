//! [`StreamingServer`]: the HTTP/1.1 endpoint the CRI `Exec`, `Attach` and `PortForward`
//! RPCs return URLs for (`http://ADDR/exec/<token>`, `/attach/<token>`,
//! `/portforward/<token>`). The token is consumed first (unknown or expired: 404); then the
//! `Upgrade` header picks the transport — WebSocket with the Kubernetes channel protocols, or
//! SPDY/3.1 with `X-Stream-Protocol-Version` negotiated as the kubelet does — and the session
//! runs on its own task. Shutdown stops accepting, tells every session its client is gone, and waits
//! for them.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use anycri_core::{
    Error, Result,
    api::{
        AttachRequest, AttachResponse, ExecRequest, ExecResponse, PortForwardRequest,
        PortForwardResponse,
    },
};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    protocol::{self, ChannelProtocol},
    provider::StreamingProvider,
    spdy,
    token::{self, StreamRequest, TokenCache},
    websocket::{self, ExecKind},
};

/// Most ports one port-forward session may carry (two channels each, in one byte).
pub const MAX_PORTS: usize = 128;

/// Settings of a [`StreamingServer`].
#[derive(Debug, Clone)]
pub struct StreamingConfig {
    /// Where to listen (default `127.0.0.1:0`: loopback, a free port).
    pub address: SocketAddr,
    /// How long a token stays valid (default 1 minute, as in the kubelet).
    pub token_ttl: Duration,
    /// Most tokens waiting at once (default 1000).
    pub max_in_flight: usize,
    /// The base of the URLs handed out (default `http://<bound address>`, with an unspecified
    /// address replaced by loopback).
    pub base_url: Option<String>,
    /// How long [`StreamingServer::shutdown`] waits for sessions (default 10 s).
    pub shutdown_timeout: Duration,
    /// Most sessions (exec, attach, port-forward connections) running at once (default
    /// 256); a request beyond it is answered 429 Too Many Requests before any upgrade.
    pub max_sessions: usize,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_ttl: Duration::from_secs(60),
            max_in_flight: 1000,
            base_url: None,
            shutdown_timeout: Duration::from_secs(10),
            max_sessions: 256,
        }
    }
}

struct Shared {
    tokens: TokenCache,
    provider: Arc<dyn StreamingProvider>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// One permit per running session.
    sessions: Arc<tokio::sync::Semaphore>,
}

/// The streaming server. Dropping it stops it without waiting; [`shutdown`](Self::shutdown)
/// waits for the sessions.
///
/// Both halves in one process: a backend's [`StreamingProvider`] (here one that answers
/// its stdin upper-cased and exits 7), the URL its `Exec` RPC would return, and a client
/// session on that URL with stdin, as `kubectl exec -i` runs one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use std::sync::Arc;
/// use anycri_core::{Error, Result, api::ExecRequest};
/// use anycri_streaming::{PortStream, StreamIo, StreamingConfig, StreamingProvider, StreamingServer};
/// use anycri_streaming::client::{self, ExecOptions};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// struct Upper;
/// #[async_trait::async_trait]
/// impl StreamingProvider for Upper {
///     async fn exec(&self, _container: &str, _cmd: &[String], mut io: StreamIo) -> Result<i32> {
///         let mut input = String::new();
///         io.stdin.take().unwrap().read_to_string(&mut input).await.ok();
///         io.stdout.take().unwrap().write_all(input.to_uppercase().as_bytes()).await.ok();
///         Ok(7)
///     }
///     async fn attach(&self, _container: &str, _io: StreamIo) -> Result<()> {
///         Err(Error::unimplemented("Attach", "upper"))
///     }
///     async fn port_forward(&self, _pod: &str, _port: u16, _s: PortStream, _gone: tokio_util::sync::CancellationToken) -> Result<()> {
///         Err(Error::unimplemented("PortForward", "upper"))
///     }
/// }
///
/// let server = StreamingServer::start(StreamingConfig::default(), Arc::new(Upper)).await?;
/// // A backend's `exec` RPC returns this URL (a single-use token under the server's address).
/// let url = server
///     .get_exec(ExecRequest {
///         container_id: "c1".into(),
///         cmd: vec!["upper".into()],
///         stdin: true,
///         stdout: true,
///         ..Default::default()
///     })?
///     .url;
///
/// let options = ExecOptions { stdin: true, stdout: true, stderr: false, tty: false };
/// let mut session = client::connect_exec(&url, options).await?;
/// let mut stdin = session.stdin.take().unwrap();
/// stdin.write_all(b"ping\n").await.unwrap();
/// stdin.shutdown().await.unwrap(); // the process sees end of input
/// let mut output = String::new();
/// session.stdout.take().unwrap().read_to_string(&mut output).await.unwrap();
/// assert_eq!(output, "PING\n");
/// assert_eq!(session.wait().await?, 7);
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct StreamingServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    base_url: String,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for StreamingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingServer")
            .field("local_addr", &self.local_addr)
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl StreamingServer {
    /// Bind `config.address` and serve sessions of `provider` until shut down.
    pub async fn start(
        config: StreamingConfig,
        provider: Arc<dyn StreamingProvider>,
    ) -> Result<StreamingServer> {
        let listener = TcpListener::bind(config.address).await.map_err(|e| {
            Error::unavailable(format!(
                "streaming server: cannot listen on {}: {e}",
                config.address
            ))
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::internal(format!("streaming server address: {e}")))?;
        let base_url = match config.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut shown = local_addr;
                if shown.ip().is_unspecified() {
                    shown.set_ip(if shown.is_ipv4() {
                        [127, 0, 0, 1].into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                format!("http://{shown}")
            }
        };
        let shared = Arc::new(Shared {
            tokens: TokenCache::new(config.token_ttl, config.max_in_flight),
            provider,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            sessions: Arc::new(tokio::sync::Semaphore::new(config.max_sessions.max(1))),
        });
        shared.tracker.spawn(accept_loop(listener, shared.clone()));
        tracing::info!(address = %local_addr, "streaming server listening");
        Ok(StreamingServer {
            shared,
            local_addr,
            base_url,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base of the URLs it hands out (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Tokens handed out and not yet used or expired.
    pub fn pending_tokens(&self) -> usize {
        self.shared.tokens.len()
    }

    fn url_for(&self, request: StreamRequest) -> Result<String> {
        let path = request.path();
        let token = self.shared.tokens.insert(request)?;
        Ok(format!("{}/{path}/{token}", self.base_url))
    }

    /// Validate an `Exec` request and return the URL that runs it.
    pub fn get_exec(&self, request: ExecRequest) -> Result<ExecResponse> {
        token::validate_exec(&request)?;
        Ok(ExecResponse {
            url: self.url_for(StreamRequest::Exec(request))?,
        })
    }

    /// Validate an `Attach` request and return the URL that runs it.
    pub fn get_attach(&self, request: AttachRequest) -> Result<AttachResponse> {
        token::validate_attach(&request)?;
        Ok(AttachResponse {
            url: self.url_for(StreamRequest::Attach(request))?,
        })
    }

    /// Validate a `PortForward` request and return the URL that runs it.
    pub fn get_port_forward(&self, request: PortForwardRequest) -> Result<PortForwardResponse> {
        token::validate_port_forward(&request)?;
        if request.port.len() > MAX_PORTS {
            return Err(Error::invalid_argument(format!(
                "at most {MAX_PORTS} ports per port-forward (got {})",
                request.port.len()
            )));
        }
        Ok(PortForwardResponse {
            url: self.url_for(StreamRequest::PortForward(request))?,
        })
    }

    /// Stop accepting, end every session (its provider sees the client gone) and wait for
    /// them, at most the configured shutdown timeout.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
        if tokio::time::timeout(self.shutdown_timeout, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("streaming server: sessions still running after the shutdown timeout");
        }
    }
}

impl Drop for StreamingServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "streaming server: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn_shared = shared.clone();
        shared.tracker.spawn(async move {
            let service_shared = conn_shared.clone();
            let service = service_fn(move |req| {
                let shared = service_shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req)) }
            });
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_shared.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Full<Bytes>> {
    let mut parts = req.uri().path().trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() || token.contains('/')
    {
        return text(
            StatusCode::NOT_FOUND,
            format!("no such streaming endpoint {:?}", req.uri().path()),
        );
    }
    if req.method() != Method::GET && req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "streaming endpoints take GET (WebSocket) or POST (SPDY)",
        );
    }
    // A bounded number of sessions: refused before the token is spent, so the client may
    // try the same URL again while it is valid.
    let Ok(permit) = shared.sessions.clone().try_acquire_owned() else {
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many streaming sessions at once; try again when one ends",
        );
    };
    let request = match shared.tokens.consume(token) {
        Some(r) if r.path() == kind => r,
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                format!("streaming token for {kind} not found or expired"),
            );
        }
    };
    let upgrade = header_str(&req, header::UPGRADE).map(str::to_ascii_lowercase);
    match upgrade.as_deref() {
        Some("websocket") => upgrade_websocket(shared, &mut req, request, permit),
        Some("spdy/3.1") => upgrade_spdy(shared, req, request, permit),
        Some(u) if u.starts_with("spdy/") => text(
            StatusCode::BAD_REQUEST,
            format!("unsupported SPDY version {u:?}; this server speaks SPDY/3.1"),
        ),
        _ => text(
            StatusCode::BAD_REQUEST,
            "streaming needs an upgrade: `Upgrade: websocket` (Kubernetes channel protocols) or `Upgrade: SPDY/3.1`",
        ),
    }
}

/// The `X-Stream-Protocol-Version` values the client offered (each may be a list).
fn offered_stream_protocols(req: &Request<Incoming>) -> Vec<&str> {
    req.headers()
        .get_all(anycri_spdy::k8s::HEADER_PROTOCOL_VERSION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The kubelet's answer to a protocol it does not speak: 403 listing what it does speak.
fn protocol_forbidden(offered: &[&str], supported: &[&str]) -> Response<Full<Bytes>> {
    let mut response = text(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&supported.join(", ")) {
        response
            .headers_mut()
            .insert(anycri_spdy::k8s::HEADER_ACCEPTED_PROTOCOL_VERSIONS, value);
    }
    response
}

/// The SPDY/3.1 branch: negotiate the stream protocol (a remote command offer of nothing
/// means v1, as in the kubelet), answer 101 and run the session on the upgraded connection.
fn upgrade_spdy(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    request: StreamRequest,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response<Full<Bytes>> {
    use anycri_spdy::k8s::{self, RemoteCommandProtocol};

    let offered = offered_stream_protocols(&req);
    let (chosen, session) = match request {
        StreamRequest::PortForward(r) => {
            let chosen = if offered.iter().all(|v| v.trim().is_empty()) {
                k8s::PORT_FORWARD_PROTOCOL_V1
            } else {
                match k8s::negotiate(&offered, k8s::SUPPORTED_PORT_FORWARD_PROTOCOLS) {
                    Some(chosen) => chosen,
                    None => {
                        return protocol_forbidden(&offered, k8s::SUPPORTED_PORT_FORWARD_PROTOCOLS);
                    }
                }
            };
            let ports = r
                .port
                .iter()
                .filter_map(|&p| u16::try_from(p).ok())
                .collect();
            (chosen, SpdySession::PortForward(r.pod_sandbox_id, ports))
        }
        StreamRequest::Exec(r) => match RemoteCommandProtocol::negotiate(&offered) {
            Ok(protocol) => (
                protocol.name(),
                SpdySession::Exec(protocol, ExecKind::Exec(r)),
            ),
            Err(_) => {
                return protocol_forbidden(&offered, k8s::SUPPORTED_REMOTE_COMMAND_PROTOCOLS);
            }
        },
        StreamRequest::Attach(r) => match RemoteCommandProtocol::negotiate(&offered) {
            Ok(protocol) => (
                protocol.name(),
                SpdySession::Exec(protocol, ExecKind::Attach(r)),
            ),
            Err(_) => {
                return protocol_forbidden(&offered, k8s::SUPPORTED_REMOTE_COMMAND_PROTOCOLS);
            }
        },
    };

    let on_upgrade = hyper::upgrade::on(req);
    let provider = shared.provider.clone();
    let client_gone = shared.shutdown.child_token();
    shared.tracker.spawn(async move {
        // The session's permit, released when it ends.
        let _permit = permit;
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "streaming: the SPDY upgrade failed");
                return;
            }
        };
        match session {
            SpdySession::Exec(protocol, kind) => {
                spdy::serve_exec(upgraded, protocol, kind, provider, client_gone).await
            }
            SpdySession::PortForward(pod, ports) => {
                spdy::serve_port_forward(upgraded, pod, ports, provider, client_gone).await
            }
        }
    });

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::UPGRADE,
        HeaderValue::from_static(anycri_spdy::UPGRADE_PROTOCOL),
    );
    headers.insert(
        k8s::HEADER_PROTOCOL_VERSION,
        HeaderValue::from_static(chosen),
    );
    response
}

/// What a SPDY connection runs once upgraded.
enum SpdySession {
    Exec(anycri_spdy::k8s::RemoteCommandProtocol, ExecKind),
    PortForward(String, Vec<u16>),
}

fn upgrade_websocket(
    shared: Arc<Shared>,
    req: &mut Request<Incoming>,
    request: StreamRequest,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response<Full<Bytes>> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    if header_str(req, header::SEC_WEBSOCKET_VERSION) != Some("13") {
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version (need 13)",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let supported: &[ChannelProtocol] = match request {
        StreamRequest::PortForward(_) => protocol::PORT_FORWARD_PROTOCOLS,
        _ => protocol::EXEC_PROTOCOLS,
    };
    let offered: Vec<&str> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let offered = (!offered.is_empty()).then(|| offered.join(","));
    let Some(chosen) = protocol::negotiate(offered.as_deref(), supported) else {
        let names: Vec<&str> = supported.iter().map(|p| p.name).collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "none of the requested WebSocket protocols {:?} is supported; supported: {}",
                offered.unwrap_or_default(),
                names.join(", ")
            ),
        );
    };
    let session = match request {
        StreamRequest::Exec(r) => Session::Exec(ExecKind::Exec(r)),
        StreamRequest::Attach(r) => Session::Exec(ExecKind::Attach(r)),
        StreamRequest::PortForward(r) => {
            let mut ports = r.port.iter().map(|&p| p as u16).collect::<Vec<_>>();
            if ports.is_empty() {
                // The CRI allows a request without ports; the client names them then.
                let query = req.uri().query().unwrap_or("");
                for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                    if k == "port" {
                        match v.parse::<u16>() {
                            Ok(p) if p > 0 => ports.push(p),
                            _ => {
                                return text(
                                    StatusCode::BAD_REQUEST,
                                    format!("invalid port {v:?}"),
                                );
                            }
                        }
                    }
                }
            }
            if ports.is_empty() || ports.len() > MAX_PORTS {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("a port-forward needs 1 to {MAX_PORTS} ports (`?port=N`)"),
                );
            }
            Session::PortForward(r.pod_sandbox_id, ports)
        }
    };

    let on_upgrade = hyper::upgrade::on(req);
    let provider = shared.provider.clone();
    let client_gone = shared.shutdown.child_token();
    shared.tracker.spawn(async move {
        // The session's permit, released when it ends.
        let _permit = permit;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "streaming: the WebSocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        match session {
            Session::Exec(kind) => {
                websocket::serve_exec(ws, chosen, kind, provider, client_gone).await
            }
            Session::PortForward(pod, ports) => {
                websocket::serve_port_forward(ws, chosen, pod, ports, provider, client_gone).await
            }
        }
    });

    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if !chosen.name.is_empty() {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(chosen.name),
        );
    }
    response
}

enum Session {
    Exec(ExecKind),
    PortForward(String, Vec<u16>),
}
