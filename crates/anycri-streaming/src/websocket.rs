//! The WebSocket transport of the server: after the HTTP layer has negotiated a channel
//! protocol and upgraded the connection, this module turns the socket into the
//! transport-neutral pieces of [`crate::session`] — a pipe for stdin, channel writers for
//! stdout/stderr, resize events from channel 4, the status on channel 3, one data/error
//! channel pair per forwarded port — and notices when the client goes away.

use std::{sync::Arc, time::Duration};

use anycri_core::api::{AttachRequest, ExecRequest};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncWriteExt, SimplexStream, WriteHalf},
    sync::mpsc,
};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use crate::{
    mux::{ChannelWriter, Frame, PIPE, PortIo, QUEUE, next_frame, write_loop},
    protocol::{self, ChannelProtocol, ExitStatus, TerminalSize},
    provider::{BoxRead, BoxWrite, StreamingProvider},
    session::{self, ErrorSink, ExecTransport, PortTransport, StatusSink},
};

/// How long a finished session waits for the client's close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The exec or attach a WebSocket session runs.
pub(crate) enum ExecKind {
    Exec(ExecRequest),
    Attach(AttachRequest),
}

struct WsStatus {
    tx: mpsc::Sender<Frame>,
    protocol: ChannelProtocol,
}

#[async_trait]
impl StatusSink for WsStatus {
    async fn report(self: Box<Self>, status: ExitStatus) {
        if let Some(payload) = protocol::status_payload(self.protocol, &status) {
            let _ = self
                .tx
                .send(Frame::Data(protocol::ERROR, Bytes::from(payload)))
                .await;
        }
    }
}

struct WsError {
    tx: mpsc::Sender<Frame>,
    channel: u8,
}

#[async_trait]
impl ErrorSink for WsError {
    async fn report(self: Box<Self>, message: String) {
        let _ = self
            .tx
            .send(Frame::Data(self.channel, Bytes::from(message.into_bytes())))
            .await;
    }
}

/// Serve an exec or attach on an upgraded WebSocket.
pub(crate) async fn serve_exec<S>(
    ws: S,
    protocol: ChannelProtocol,
    kind: ExecKind,
    provider: Arc<dyn StreamingProvider>,
    client_gone: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>>
        + futures::Sink<Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static,
{
    let (stdin, stdout, stderr, tty) = match &kind {
        ExecKind::Exec(r) => (r.stdin, r.stdout, r.stderr, r.tty),
        ExecKind::Attach(r) => (r.stdin, r.stdout, r.stderr, r.tty),
    };
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx, protocol));

    // Like the kubelet: an empty message on the first writable channel tells the client the
    // session is up.
    let first = if stdout {
        protocol::STDOUT
    } else if stderr {
        protocol::STDERR
    } else {
        protocol::ERROR
    };
    let _ = tx.send(Frame::Data(first, Bytes::new())).await;

    let (stdin_read, stdin_write) = if stdin {
        let (r, w) = tokio::io::simplex(PIPE);
        (Some(Box::new(r) as BoxRead), Some(w))
    } else {
        (None, None)
    };
    let (resize_tx, resize_rx) = if tty {
        let (t, r) = mpsc::channel(16);
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let mut reader = tokio::spawn(read_exec(
        stream,
        protocol,
        stdin_write,
        resize_tx,
        client_gone.clone(),
    ));
    let writer_of = |channel| Box::new(ChannelWriter::new(tx.clone(), channel, false)) as BoxWrite;
    let transport = ExecTransport {
        stdin: stdin_read,
        stdout: stdout.then(|| writer_of(protocol::STDOUT)),
        stderr: stderr.then(|| writer_of(protocol::STDERR)),
        resize: resize_rx,
        client_gone,
        status: Box::new(WsStatus {
            tx: tx.clone(),
            protocol,
        }),
    };
    drop(tx);
    match &kind {
        ExecKind::Exec(r) => session::run_exec(provider.as_ref(), r, transport).await,
        ExecKind::Attach(r) => session::run_attach(provider.as_ref(), r, transport).await,
    }
    // Every sender is gone now: the writer sends what is queued, then the close message.
    let _ = writer.await;
    if tokio::time::timeout(CLOSE_GRACE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
}

async fn read_exec<S>(
    mut stream: S,
    protocol: ChannelProtocol,
    mut stdin: Option<WriteHalf<SimplexStream>>,
    resize: Option<mpsc::Sender<TerminalSize>>,
    client_gone: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while let Ok(Some((channel, data))) = next_frame(&mut stream, protocol).await {
        match channel {
            protocol::STDIN => {
                if let Some(w) = stdin.as_mut()
                    && w.write_all(&data).await.is_err()
                {
                    stdin = None;
                }
            }
            protocol::RESIZE => match (&resize, serde_json::from_slice::<TerminalSize>(&data)) {
                (Some(tx), Ok(size)) => {
                    let _ = tx.try_send(size);
                }
                (_, Err(e)) => tracing::debug!(error = %e, "ignoring a malformed resize event"),
                (None, Ok(_)) => {}
            },
            protocol::CLOSE if protocol.close_signal() => {
                if data.first() == Some(&protocol::STDIN)
                    && let Some(mut w) = stdin.take()
                {
                    let _ = w.shutdown().await;
                }
            }
            _ => {}
        }
    }
    client_gone.cancel();
}

/// Serve a port-forward of `ports` on an upgraded WebSocket: channels `2i` (data) and
/// `2i + 1` (error) belong to `ports[i]`, each opened by the port as two little-endian bytes.
pub(crate) async fn serve_port_forward<S>(
    ws: S,
    protocol: ChannelProtocol,
    pod_sandbox_id: String,
    ports: Vec<u16>,
    provider: Arc<dyn StreamingProvider>,
    client_gone: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>>
        + futures::Sink<Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static,
{
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx, protocol));
    let mut pipes = Vec::with_capacity(ports.len());
    let mut transports = Vec::with_capacity(ports.len());
    for (i, &port) in ports.iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        let prefix = Bytes::copy_from_slice(&port.to_le_bytes());
        let _ = tx.send(Frame::Data(data, prefix.clone())).await;
        let _ = tx.send(Frame::Data(error, prefix)).await;
        let (read, write) = tokio::io::simplex(PIPE);
        pipes.push(Some(write));
        transports.push(PortTransport {
            port,
            stream: Box::new(PortIo {
                read,
                write: ChannelWriter::new(tx.clone(), data, false),
            }),
            error: Box::new(WsError {
                tx: tx.clone(),
                channel: error,
            }),
        });
    }
    drop(tx);
    let mut reader = tokio::spawn(read_port_forward(
        stream,
        protocol,
        pipes,
        client_gone.clone(),
    ));
    session::run_port_forward(provider.as_ref(), &pod_sandbox_id, transports, client_gone).await;
    let _ = writer.await;
    if tokio::time::timeout(CLOSE_GRACE, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
}

async fn read_port_forward<S>(
    mut stream: S,
    protocol: ChannelProtocol,
    mut pipes: Vec<Option<WriteHalf<SimplexStream>>>,
    client_gone: CancellationToken,
) where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while let Ok(Some((channel, data))) = next_frame(&mut stream, protocol).await {
        // Clients write only on data channels; anything else is ignored.
        if channel % 2 != 0 {
            continue;
        }
        if let Some(slot) = pipes.get_mut(usize::from(channel / 2))
            && let Some(pipe) = slot.as_mut()
            && pipe.write_all(&data).await.is_err()
        {
            *slot = None;
        }
    }
    client_gone.cancel();
}
