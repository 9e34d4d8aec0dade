//! The streaming client: ask a runtime (any [`RuntimeService`]) for an `Exec`, `Attach` or
//! `PortForward` URL, connect to it and hand back async streams.
//!
//! Exec and attach have two transports ([`Transport`]). Over WebSocket they offer
//! `v5.channel.k8s.io` then `v4.channel.k8s.io`; only v5 can tell the process that stdin
//! ended, and containerd 1.6 and kubelets before 1.30 speak v4. Over SPDY/3.1 (`spdy`
//! submodule, the transport of kubectl before 1.31 and of critest) each channel is its own
//! stream, so closing stdin is a half-close every CRI streaming server understands. The
//! default, [`Transport::Auto`], takes SPDY when the session sends stdin and WebSocket
//! otherwise. Port-forward uses the kubelet's WebSocket port-forward protocol, one
//! connection per WebSocket.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
};

use anycri_core::{
    Error, Result,
    api::{AttachRequest, ExecRequest, PortForwardRequest},
    service::RuntimeService,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, SimplexStream, WriteHalf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest,
        http::{HeaderValue, header},
    },
};

pub use crate::mux::ChannelWriter;
use crate::{
    mux::{Frame, PIPE, PortIo, QUEUE, next_frame, write_loop},
    protocol::{self, ChannelProtocol, ExitStatus, TerminalSize},
};

mod spdy;

/// Output of a session (stdout or stderr): read it to the end, or drop it to discard it.
pub type OutputStream = ReadHalf<SimplexStream>;

/// Which streams an exec or attach has.
///
/// ```
/// use anycri_streaming::client::ExecOptions;
/// // `kubectl exec -it`: stdin and a terminal, whose output comes on stdout.
/// let shell = ExecOptions::interactive_tty();
/// assert!(shell.stdin && shell.tty && !shell.stderr);
/// // A command fed on stdin, output and errors apart (`kubectl exec -i`).
/// let piped = ExecOptions::default().with_stdin();
/// assert!(piped.stdin && piped.stdout && piped.stderr && !piped.tty);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    /// Send stdin.
    pub stdin: bool,
    /// Receive stdout.
    pub stdout: bool,
    /// Receive stderr (not with `tty`).
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

impl Default for ExecOptions {
    /// stdout and stderr, no stdin, no terminal.
    fn default() -> Self {
        ExecOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
        }
    }
}

impl ExecOptions {
    /// An interactive terminal: stdin and a TTY (whose output is stdout).
    pub fn interactive_tty() -> Self {
        ExecOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        }
    }

    /// With stdin.
    pub fn with_stdin(mut self) -> Self {
        self.stdin = true;
        self
    }
}

/// How an exec or attach connects to its streaming URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// SPDY/3.1 when the session sends stdin (so closing stdin reaches the process on every
    /// server), WebSocket otherwise.
    #[default]
    Auto,
    /// WebSocket with `v5.channel.k8s.io`, falling back to `v4.channel.k8s.io`.
    WebSocket,
    /// SPDY/3.1 with the remote command protocols v4 to v1 (`X-Stream-Protocol-Version`).
    Spdy,
}

/// A running exec or attach.
///
/// Take the streams out (`session.stdout.take()`), read stdout and stderr concurrently (or
/// drop what you do not want — a stream nobody reads holds the session up), then
/// [`wait`](Self::wait) for the exit code. To resize the terminal while another task waits,
/// take a [`Resizer`] first. Dropping the session closes the connection (the server stops
/// the command).
pub struct ExecSession {
    /// The process's stdin. Shutting it down closes stdin in the process over SPDY and on
    /// WebSocket v5 servers; WebSocket v4 servers (containerd 1.6, kubelets before 1.30)
    /// have no way to close it (see [`can_close_stdin`](Self::can_close_stdin)).
    pub stdin: Option<ChannelWriter>,
    /// The process's stdout (the terminal with a TTY).
    pub stdout: Option<OutputStream>,
    /// The process's stderr.
    pub stderr: Option<OutputStream>,
    /// How the exit status is encoded (plain text before v4, `metav1.Status` JSON from v4).
    protocol: ChannelProtocol,
    /// The negotiated protocol's name.
    name: &'static str,
    transport: Transport,
    tx: mpsc::Sender<Frame>,
    reader: JoinHandle<ReadOutcome>,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("transport", &self.transport)
            .field("protocol", &self.name)
            .finish_non_exhaustive()
    }
}

struct ReadOutcome {
    status: Option<Vec<u8>>,
    error: Option<String>,
}

impl ExecSession {
    /// The protocol the server chose (`v5.channel.k8s.io`, `v4.channel.k8s.io`, ...; over
    /// SPDY the remote command protocol, e.g. `v4.channel.k8s.io`).
    pub fn protocol(&self) -> &'static str {
        self.name
    }

    /// The transport of this session: [`Transport::WebSocket`] or [`Transport::Spdy`].
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether closing stdin reaches the process (SPDY, or a WebSocket server that speaks v5).
    pub fn can_close_stdin(&self) -> bool {
        self.transport == Transport::Spdy || self.protocol.close_signal()
    }

    /// Tell the terminal's new size (TTY sessions).
    pub async fn resize(&self, width: u16, height: u16) -> Result<()> {
        send_resize(&self.tx, width, height).await
    }

    /// A handle that sends terminal sizes to this session from anywhere (a SIGWINCH task),
    /// also while [`wait`](Self::wait) runs. It does not keep the session open.
    pub fn resizer(&self) -> Resizer {
        Resizer {
            tx: self.tx.downgrade(),
        }
    }

    /// Wait for the session to end: the command's exit code (attach: 0 when the container's
    /// streams ended normally). A failure the server reports (container not running, ...) is
    /// an Unknown error with its message; a connection that dropped without a status is
    /// Unavailable.
    ///
    /// The connection stays open until the status arrives or the server closes it: waiting
    /// neither ends the command nor closes its stdin (shut [`stdin`](Self::stdin) down for
    /// that, on v5 servers). Output streams still in the session are discarded.
    pub async fn wait(self) -> Result<i32> {
        let ExecSession {
            stdin,
            stdout,
            stderr,
            protocol,
            tx,
            reader,
            ..
        } = self;
        // Dropping a stdin writer sends nothing; the queue's sender `tx` is what keeps the
        // writer task, and so the socket, open.
        drop((stdin, stdout, stderr));
        let outcome = reader
            .await
            .map_err(|e| Error::internal(format!("streaming reader task: {e}")));
        // Only now may the writer send its close message (or close the SPDY session): one
        // sent while the command runs makes v4 servers (containerd 1.6) hang up without the
        // status, and v5 servers stop the command.
        drop(tx);
        let outcome = outcome?;
        match outcome.status {
            Some(payload) => match protocol::parse_status(protocol, &payload) {
                ExitStatus::Exited(code) => Ok(code),
                ExitStatus::Failed(message) => Err(Error::unknown(message)),
            },
            None if !protocol.status_json() && outcome.error.is_none() => Ok(0),
            None => Err(Error::unavailable(format!(
                "the streaming connection closed without an exit status{}",
                outcome.error.map(|e| format!(": {e}")).unwrap_or_default()
            ))),
        }
    }
}

/// Sends terminal size changes to an [`ExecSession`] (see [`ExecSession::resizer`]). Clone
/// it freely: it holds the session's connection only while a resize is being sent, so it
/// never keeps a finished or dropped session open.
#[derive(Debug, Clone)]
pub struct Resizer {
    tx: mpsc::WeakSender<Frame>,
}

impl Resizer {
    /// Tell the terminal's new size (TTY sessions). Unavailable once the session has ended
    /// or was dropped.
    pub async fn resize(&self, width: u16, height: u16) -> Result<()> {
        let tx = self.tx.upgrade().ok_or_else(session_closed)?;
        send_resize(&tx, width, height).await
    }
}

fn session_closed() -> Error {
    Error::unavailable("the streaming session is closed")
}

async fn send_resize(tx: &mpsc::Sender<Frame>, width: u16, height: u16) -> Result<()> {
    let json = serde_json::to_vec(&TerminalSize { width, height })
        .map_err(|e| Error::internal(format!("encoding a resize event: {e}")))?;
    tx.send(Frame::Data(protocol::RESIZE, Bytes::from(json)))
        .await
        .map_err(|_| session_closed())
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A streaming URL as the kubelet reads it (a scheme-less one, cri-dockerd's, is `http:`).
pub(crate) use anycri_core::kubelet::streaming_url as with_scheme;

/// Open a WebSocket to a streaming `url` (`http://...` as the CRI returns it) offering
/// `protocols`; the socket and the protocol the server chose.
async fn connect(url: &str, protocols: &[&str]) -> Result<(Ws, String)> {
    let url = &*with_scheme(url);
    let ws_url = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if url.starts_with("ws://") {
        url.to_owned()
    } else {
        return Err(Error::invalid_argument(format!(
            "streaming URL {url:?}: only http:// (plain) URLs are supported"
        )));
    };
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::invalid_argument(format!("streaming URL {url:?}: {e}")))?;
    let offered = HeaderValue::from_str(&protocols.join(", "))
        .map_err(|e| Error::internal(format!("protocol header: {e}")))?;
    request
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_PROTOCOL, offered);
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| connect_error(url, e))?;
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        let _ = tcp.set_nodelay(true);
    }
    let chosen = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((ws, chosen))
}

fn connect_error(url: &str, e: tungstenite::Error) -> Error {
    match e {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default();
            http_error(url, response.status().as_u16(), &body)
        }
        other => Error::unavailable(format!("streaming URL {url}: {other}")),
    }
}

/// The error for a streaming server's refusal: HTTP `status` with `body`.
fn http_error(url: &str, status: u16, body: &str) -> Error {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let message = format!("streaming URL {url}: HTTP {status} {reason}: {body}");
    match status {
        404 => Error::not_found(message),
        // 403: the server supports none of the offered protocols (the kubelet's answer).
        400 | 403 | 405 | 426 => Error::invalid_argument(message),
        501 => Error::unimplemented(message, "the streaming server"),
        _ => Error::unavailable(message),
    }
}

/// Connect to an exec or attach URL with `options` (they must match the request the URL was
/// made for: over SPDY the server waits for exactly the streams the request asked for and
/// never accepts another), choosing the transport as [`Transport::Auto`] does.
pub async fn connect_exec(url: &str, options: ExecOptions) -> Result<ExecSession> {
    connect_exec_with(url, options, Transport::Auto).await
}

/// Connect to an exec or attach URL with `options` over `transport`.
pub async fn connect_exec_with(
    url: &str,
    options: ExecOptions,
    transport: Transport,
) -> Result<ExecSession> {
    match transport {
        Transport::Spdy => spdy::connect_exec(url, options).await,
        Transport::Auto if options.stdin => spdy::connect_exec(url, options).await,
        Transport::Auto | Transport::WebSocket => connect_exec_websocket(url, options).await,
    }
}

async fn connect_exec_websocket(url: &str, options: ExecOptions) -> Result<ExecSession> {
    let (ws, chosen) = connect(url, &[protocol::V5_CHANNEL, protocol::V4_CHANNEL]).await?;
    let protocol = protocol::by_name(&chosen, protocol::EXEC_PROTOCOLS).ok_or_else(|| {
        Error::unavailable(format!(
            "streaming URL {url}: the server chose an unknown protocol {chosen:?}"
        ))
    })?;
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(write_loop(sink, rx, protocol));
    let pipe = |on: bool| {
        if on {
            let (r, w) = tokio::io::simplex(PIPE);
            (Some(r), Some(w))
        } else {
            (None, None)
        }
    };
    let (stdout, stdout_w) = pipe(options.stdout);
    let (stderr, stderr_w) = pipe(options.stderr && !options.tty);
    let reader = tokio::spawn(read_exec(stream, protocol, stdout_w, stderr_w));
    Ok(ExecSession {
        stdin: options
            .stdin
            .then(|| ChannelWriter::new(tx.clone(), protocol::STDIN, protocol.close_signal())),
        stdout,
        stderr,
        protocol,
        name: protocol.name,
        transport: Transport::WebSocket,
        tx,
        reader,
    })
}

async fn read_exec<S>(
    mut stream: S,
    protocol: ChannelProtocol,
    mut stdout: Option<WriteHalf<SimplexStream>>,
    mut stderr: Option<WriteHalf<SimplexStream>>,
) -> ReadOutcome
where
    S: Stream<Item = std::result::Result<Message, tungstenite::Error>> + Unpin,
{
    let mut outcome = ReadOutcome {
        status: None,
        error: None,
    };
    loop {
        let (channel, data) = match next_frame(&mut stream, protocol).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                outcome.error = Some(e.to_string());
                break;
            }
        };
        let out = match channel {
            protocol::STDOUT => &mut stdout,
            protocol::STDERR => &mut stderr,
            protocol::ERROR => {
                if !data.is_empty() {
                    outcome
                        .status
                        .get_or_insert_with(Vec::new)
                        .extend_from_slice(&data);
                }
                continue;
            }
            _ => continue,
        };
        if let Some(w) = out.as_mut()
            && w.write_all(&data).await.is_err()
        {
            // The reader dropped the stream: discard the rest of it.
            *out = None;
        }
    }
    for w in [stdout, stderr].into_iter().flatten() {
        let mut w = w;
        let _ = w.shutdown().await;
    }
    outcome
}

/// Run `cmd` in `container_id` through `runtime`'s `Exec` URL.
pub async fn exec(
    runtime: &dyn RuntimeService,
    container_id: &str,
    cmd: &[impl AsRef<str>],
    options: ExecOptions,
) -> Result<ExecSession> {
    let response = runtime
        .exec(ExecRequest {
            container_id: container_id.to_owned(),
            cmd: cmd.iter().map(|c| c.as_ref().to_owned()).collect(),
            tty: options.tty,
            stdin: options.stdin,
            stdout: options.stdout,
            stderr: options.stderr && !options.tty,
        })
        .await?;
    connect_exec(&response.url, options).await
}

/// Attach to `container_id`'s main process through `runtime`'s `Attach` URL. `tty` must
/// match how the container was created.
pub async fn attach(
    runtime: &dyn RuntimeService,
    container_id: &str,
    options: ExecOptions,
) -> Result<ExecSession> {
    let response = runtime
        .attach(AttachRequest {
            container_id: container_id.to_owned(),
            stdin: options.stdin,
            tty: options.tty,
            stdout: options.stdout,
            stderr: options.stderr && !options.tty,
        })
        .await?;
    connect_exec(&response.url, options).await
}

/// One forwarded connection to a port in a pod: read and write it like a TCP stream. An
/// error the server reports (nothing listens on the port, ...) comes out of a read.
pub struct PortForwardStream {
    io: PortIo,
    error: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for PortForwardStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwardStream").finish_non_exhaustive()
    }
}

impl AsyncRead for PortForwardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            let error = self.error.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(message) = error {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    message,
                )));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for PortForwardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// The WebSocket port-forward protocol cannot half-close: shutting down only flushes.
    /// Drop the stream to close the connection.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

/// Connect to `port` in the pod `pod_sandbox_id` through `runtime`'s `PortForward` URL.
pub async fn port_forward(
    runtime: &dyn RuntimeService,
    pod_sandbox_id: &str,
    port: u16,
) -> Result<PortForwardStream> {
    let response = runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod_sandbox_id.to_owned(),
            port: vec![i32::from(port)],
        })
        .await?;
    connect_port_forward(&response.url, port).await
}

/// Connect to a port-forward URL made for the single port `port`.
pub async fn connect_port_forward(url: &str, port: u16) -> Result<PortForwardStream> {
    let (ws, chosen) = connect(url, &[protocol::V4_CHANNEL]).await?;
    let protocol =
        protocol::by_name(&chosen, protocol::PORT_FORWARD_PROTOCOLS).ok_or_else(|| {
            Error::unavailable(format!(
                "streaming URL {url}: the server chose an unknown protocol {chosen:?}"
            ))
        })?;
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(write_loop(sink, rx, protocol));
    let (read, write) = tokio::io::simplex(PIPE);
    let error = Arc::new(Mutex::new(None));
    tokio::spawn(read_port_forward(
        stream,
        protocol,
        port,
        write,
        error.clone(),
    ));
    Ok(PortForwardStream {
        io: PortIo {
            read,
            write: ChannelWriter::new(tx, 0, false),
        },
        error,
    })
}

async fn read_port_forward<S>(
    mut stream: S,
    protocol: ChannelProtocol,
    port: u16,
    data: WriteHalf<SimplexStream>,
    error: Arc<Mutex<Option<String>>>,
) where
    S: Stream<Item = std::result::Result<Message, tungstenite::Error>> + Unpin,
{
    let mut data = Some(data);
    // Each channel opens with the port as two little-endian bytes.
    let mut prefix_left = [2usize, 2usize];
    let mut error_text = Vec::new();
    while let Ok(Some((channel, payload))) = next_frame(&mut stream, protocol).await {
        let Some(left) = prefix_left.get_mut(usize::from(channel)) else {
            continue;
        };
        let skip = (*left).min(payload.len());
        *left -= skip;
        let payload = &payload[skip..];
        if channel == 0 {
            if let Some(w) = data.as_mut()
                && w.write_all(payload).await.is_err()
            {
                data = None;
            }
        } else if !payload.is_empty() {
            error_text.extend_from_slice(payload);
            // The server reports a failure and closes; stop reading data now.
            break;
        }
    }
    if !error_text.is_empty() {
        let message = format!(
            "port-forward to port {port}: {}",
            String::from_utf8_lossy(&error_text).trim()
        );
        *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
    if let Some(mut w) = data {
        let _ = w.shutdown().await;
    }
}

/// A local TCP listener whose connections are each forwarded to a port in a pod (what
/// `kubectl port-forward` does). Dropping it stops accepting.
#[derive(Debug)]
pub struct PortForwardListener {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PortForwardListener {
    /// The local address connections go to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for PortForwardListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listen on `local` and forward each connection to `port` in `pod_sandbox_id`.
pub async fn listen_port_forward(
    runtime: Arc<dyn RuntimeService>,
    pod_sandbox_id: &str,
    port: u16,
    local: SocketAddr,
) -> Result<PortForwardListener> {
    let listener = TcpListener::bind(local)
        .await
        .map_err(|e| Error::unavailable(format!("cannot listen on {local}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("listener address: {e}")))?;
    let pod = pod_sandbox_id.to_owned();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, peer)) = listener.accept().await {
            let runtime = runtime.clone();
            let pod = pod.clone();
            tokio::spawn(async move {
                match port_forward(runtime.as_ref(), &pod, port).await {
                    Ok(mut remote) => {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut remote).await;
                    }
                    Err(e) => {
                        tracing::warn!(%peer, pod, port, error = %e, "port-forward failed")
                    }
                }
            });
        }
    });
    Ok(PortForwardListener { local_addr, task })
}
