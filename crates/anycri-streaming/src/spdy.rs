//! The SPDY/3.1 transport of the server: after the HTTP layer has negotiated
//! `X-Stream-Protocol-Version` and answered 101, this module runs an [`anycri_spdy`] session
//! on the upgraded connection and turns the streams the client opens into the
//! transport-neutral pieces of [`crate::session`] — the `stdin`/`stdout`/`stderr` streams as
//! they are, resize events decoded from the `resize` stream, the exit status written on the
//! `error` stream in the negotiated protocol's format, and one forwarded connection per
//! port-forward `data`/`error` pair. The connection closing tells the provider the client is
//! gone.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use anycri_spdy::{
    SpdySession, SpdyStream,
    k8s::{
        self, ExpectedStreams, PortForwardListener, PortForwardRequest, RemoteCommandProtocol,
        RemoteCommandStreams, ResizeStream,
    },
};
use async_trait::async_trait;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf},
    sync::mpsc,
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{
    protocol::{ExitStatus, TerminalSize},
    provider::StreamingProvider,
    session::{self, ErrorSink, ExecTransport, PortTransport, StatusSink},
    websocket::ExecKind,
};

/// How long the client has to open its streams (the kubelet's stream creation timeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a finished session waits for the client to close the connection first.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A SPDY stream that half-closes (FIN) instead of being reset when dropped: the provider
/// drops stdout, stderr or a port's connection when it is done with it, and the client must
/// see the end of the stream, not an error.
struct FinOnDrop(SpdyStream);

impl Drop for FinOnDrop {
    fn drop(&mut self) {
        // SPDY's shutdown only queues a FIN frame; it never waits.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let _ = Pin::new(&mut self.0).poll_shutdown(&mut cx);
    }
}

impl AsyncRead for FinOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for FinOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct SpdyStatus {
    error: FinOnDrop,
    protocol: RemoteCommandProtocol,
}

#[async_trait]
impl StatusSink for SpdyStatus {
    async fn report(mut self: Box<Self>, status: ExitStatus) {
        let status = match status {
            ExitStatus::Exited(code) => k8s::ExitStatus::Exited(code),
            ExitStatus::Failed(message) => k8s::ExitStatus::Error(message),
        };
        if let Err(e) = k8s::write_exit_status(&mut self.error.0, self.protocol, &status).await {
            tracing::debug!(error = %e, "spdy: could not write the exit status");
        }
        // Dropping `self` sends FIN on the error stream: the client reads it to its end.
    }
}

struct SpdyPortError(FinOnDrop);

#[async_trait]
impl ErrorSink for SpdyPortError {
    async fn report(mut self: Box<Self>, message: String) {
        let _ = self.0.write_all(message.as_bytes()).await;
    }
}

/// Decodes resize messages into `tx` until the client closes the stream or `stop` fires;
/// gives the stream back so it can be closed properly.
async fn forward_resizes(
    mut resize: ResizeStream,
    tx: mpsc::Sender<TerminalSize>,
    stop: CancellationToken,
) -> SpdyStream {
    loop {
        let next = tokio::select! {
            next = resize.next() => next,
            _ = stop.cancelled() => break,
        };
        match next {
            Some(Ok(size)) => {
                let _ = tx.try_send(TerminalSize {
                    width: size.width,
                    height: size.height,
                });
            }
            Some(Err(e)) => {
                // As in the kubelet: a malformed message ends resize handling.
                tracing::debug!(error = %e, "spdy: bad resize stream");
                break;
            }
            None => break,
        }
    }
    resize.into_inner()
}

/// Waits for the connection to end, then cancels `client_gone`.
fn watch_connection(session: Arc<SpdySession>, client_gone: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            _ = session.closed() => client_gone.cancel(),
            _ = client_gone.cancelled() => {}
        }
    });
}

/// Closes `session` once the client had a moment to close it first (closing a socket with
/// unread input would reset it and could destroy output the client has not read yet).
async fn close_gracefully(session: &SpdySession) {
    let _ = tokio::time::timeout(CLOSE_GRACE, session.closed()).await;
    session.close().await;
}

/// Serve an exec or attach over SPDY on the upgraded connection `io`.
pub(crate) async fn serve_exec<T>(
    io: T,
    protocol: RemoteCommandProtocol,
    kind: ExecKind,
    provider: Arc<dyn StreamingProvider>,
    client_gone: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stdin, stdout, stderr, tty) = match &kind {
        ExecKind::Exec(r) => (r.stdin, r.stdout, r.stderr, r.tty),
        ExecKind::Attach(r) => (r.stdin, r.stdout, r.stderr, r.tty),
    };
    let mut session = SpdySession::server(io);
    let expected = ExpectedStreams {
        stdin,
        stdout,
        stderr,
        tty,
    };
    let accepted = tokio::select! {
        accepted = k8s::accept_remote_command(&mut session, protocol, expected, STREAM_CREATION_TIMEOUT) => accepted,
        _ = client_gone.cancelled() => {
            session.close().await;
            return;
        }
    };
    let streams = match accepted {
        Ok(streams) => streams,
        Err(e) => {
            tracing::debug!(error = %e, "spdy: the client did not open its streams");
            session.close().await;
            return;
        }
    };
    let RemoteCommandStreams {
        stdin,
        stdout,
        stderr,
        error,
        resize,
        ..
    } = streams;

    let session = Arc::new(session);
    watch_connection(session.clone(), client_gone.clone());
    let stop_resize = CancellationToken::new();
    let (resize_rx, resize_task) = match resize {
        Some(stream) => {
            let (tx, rx) = mpsc::channel(16);
            let task = tokio::spawn(forward_resizes(stream, tx, stop_resize.clone()));
            (Some(rx), Some(task))
        }
        // A tty on v1/v2 gets no resize stream, and no resize events.
        None => (None, None),
    };
    let transport = ExecTransport {
        stdin: stdin.map(|s| Box::new(FinOnDrop(s)) as _),
        stdout: stdout.map(|s| Box::new(FinOnDrop(s)) as _),
        stderr: stderr.map(|s| Box::new(FinOnDrop(s)) as _),
        resize: resize_rx,
        client_gone,
        status: Box::new(SpdyStatus {
            error: FinOnDrop(error),
            protocol,
        }),
    };
    match &kind {
        ExecKind::Exec(r) => session::run_exec(provider.as_ref(), r, transport).await,
        ExecKind::Attach(r) => session::run_attach(provider.as_ref(), r, transport).await,
    }
    stop_resize.cancel();
    if let Some(task) = resize_task
        && let Ok(stream) = task.await
    {
        drop(FinOnDrop(stream));
    }
    close_gracefully(&session).await;
}

/// Serve a port-forward over SPDY on the upgraded connection `io`: every `data`/`error`
/// stream pair the client opens is one connection to its `port` header's port in
/// `pod_sandbox_id`; when `allowed` is not empty (the CRI request named ports), other ports
/// are refused on the pair's error stream.
pub(crate) async fn serve_port_forward<T>(
    io: T,
    pod_sandbox_id: String,
    allowed: Vec<u16>,
    provider: Arc<dyn StreamingProvider>,
    client_gone: CancellationToken,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let pod: Arc<str> = Arc::from(pod_sandbox_id);
    let allowed: Arc<[u16]> = Arc::from(allowed);
    let mut listener = PortForwardListener::new(SpdySession::server(io), STREAM_CREATION_TIMEOUT);
    let mut connections = JoinSet::new();
    loop {
        let next = tokio::select! {
            next = listener.next() => next,
            _ = client_gone.cancelled() => break,
        };
        let Some(request) = next else { break };
        let PortForwardRequest {
            port, data, error, ..
        } = request;
        let (provider, pod, allowed, client_gone) = (
            provider.clone(),
            pod.clone(),
            allowed.clone(),
            client_gone.clone(),
        );
        connections.spawn(async move {
            let data = FinOnDrop(data);
            let mut error = FinOnDrop(error);
            if !allowed.is_empty() && !allowed.contains(&port) {
                let message = format!(
                    "error forwarding port {port} to pod {pod}: port {port} is not one of the ports this port-forward was granted ({allowed:?})"
                );
                let _ = error.write_all(message.as_bytes()).await;
                return;
            }
            let transport = PortTransport {
                port,
                stream: Box::new(data),
                error: Box::new(SpdyPortError(error)),
            };
            session::run_port_forward(provider.as_ref(), &pod, vec![transport], client_gone).await;
        });
        // Reap finished connections so a long session does not accumulate them.
        while connections.try_join_next().is_some() {}
    }
    // No more streams come (the connection ended, the client sent GOAWAY, or the server
    // shuts down): the open connections go on until the client closes the connection.
    tokio::select! {
        _ = listener.session().closed() => {}
        _ = client_gone.cancelled() => {}
    }
    client_gone.cancel();
    while connections.join_next().await.is_some() {}
    listener.session().close().await;
}
