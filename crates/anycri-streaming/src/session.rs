//! The protocol-independent half of a streaming session: a transport (WebSocket today, SPDY
//! beside it) turns its connection into an [`ExecTransport`] (optional stdin/stdout/stderr,
//! resize events, a client-gone signal and a [`StatusSink`] for the exit status) or a list of
//! [`PortTransport`]s, and the functions here run the backend's [`StreamingProvider`] over
//! them and report the outcome the way the kubelet does.

use anycri_core::api::{AttachRequest, ExecRequest};
use async_trait::async_trait;
use futures::future::join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    protocol::{ExitStatus, TerminalSize},
    provider::{BoxRead, BoxWrite, PortStream, StreamIo, StreamingProvider},
};

/// Where a transport sends the exit status of an exec or attach.
#[async_trait]
pub trait StatusSink: Send {
    /// Send `status` to the client (after everything written to stdout/stderr).
    async fn report(self: Box<Self>, status: ExitStatus);
}

/// Where a transport sends the error of one forwarded port.
#[async_trait]
pub trait ErrorSink: Send {
    /// Send `message` on the port's error stream.
    async fn report(self: Box<Self>, message: String);
}

/// What a transport provides for an exec or attach; streams the request did not ask for are
/// `None`.
pub struct ExecTransport {
    /// The client's input.
    pub stdin: Option<BoxRead>,
    /// Output to the client's stdout.
    pub stdout: Option<BoxWrite>,
    /// Output to the client's stderr.
    pub stderr: Option<BoxWrite>,
    /// Terminal resize events (TTY sessions).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    /// Fires when the client disconnects.
    pub client_gone: CancellationToken,
    /// Takes the exit status.
    pub status: Box<dyn StatusSink>,
}

impl ExecTransport {
    fn split(self, tty: bool) -> (StreamIo, Box<dyn StatusSink>) {
        (
            StreamIo {
                stdin: self.stdin,
                stdout: self.stdout,
                stderr: self.stderr,
                tty,
                resize: self.resize,
                client_gone: self.client_gone,
            },
            self.status,
        )
    }
}

/// One forwarded port of a port-forward session.
pub struct PortTransport {
    /// The port in the pod.
    pub port: u16,
    /// The connection's bytes.
    pub stream: PortStream,
    /// The port's error stream.
    pub error: Box<dyn ErrorSink>,
}

/// Run an exec and report its exit status (or why it could not run).
pub async fn run_exec(
    provider: &dyn StreamingProvider,
    request: &ExecRequest,
    transport: ExecTransport,
) {
    let (io, status) = transport.split(request.tty);
    let outcome = provider.exec(&request.container_id, &request.cmd, io).await;
    let outcome = match outcome {
        Ok(code) => ExitStatus::Exited(code),
        Err(e) => {
            tracing::debug!(container = %request.container_id, error = %e, "exec failed");
            ExitStatus::Failed(e.to_string())
        }
    };
    status.report(outcome).await;
}

/// Run an attach and report how it ended.
pub async fn run_attach(
    provider: &dyn StreamingProvider,
    request: &AttachRequest,
    transport: ExecTransport,
) {
    let (io, status) = transport.split(request.tty);
    let outcome = match provider.attach(&request.container_id, io).await {
        Ok(()) => ExitStatus::Exited(0),
        Err(e) => {
            tracing::debug!(container = %request.container_id, error = %e, "attach failed");
            ExitStatus::Failed(e.to_string())
        }
    };
    status.report(outcome).await;
}

/// Forward every port of a session; each port's failure goes to its error stream.
pub async fn run_port_forward(
    provider: &dyn StreamingProvider,
    pod_sandbox_id: &str,
    ports: Vec<PortTransport>,
    client_gone: CancellationToken,
) {
    join_all(ports.into_iter().map(|p| {
        let client_gone = client_gone.clone();
        async move {
            let result = provider
                .port_forward(pod_sandbox_id, p.port, p.stream, client_gone)
                .await;
            if let Err(e) = result {
                tracing::debug!(pod = pod_sandbox_id, port = p.port, error = %e, "port-forward failed");
                p.error
                    .report(format!(
                        "error forwarding port {} to pod {pod_sandbox_id}: {e}",
                        p.port
                    ))
                    .await;
            }
        }
    }))
    .await;
}
