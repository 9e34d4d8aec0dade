//! What a backend implements to be served by the streaming server: [`StreamingProvider`]
//! runs an exec, an attach or one port-forward connection over transport-neutral streams
//! ([`StreamIo`], [`PortStream`]). The provider never sees WebSocket or SPDY; it reads stdin,
//! writes stdout/stderr, follows resize events and returns the exit code, and it watches
//! [`StreamIo::client_gone`] to stop (kill the exec, close the attach) when the client leaves.

use anycri_core::Result;
use async_trait::async_trait;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

pub use crate::protocol::TerminalSize;

/// A boxed reader (the client's stdin).
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// A boxed writer (stdout or stderr to the client).
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Anything that reads and writes: one forwarded connection.
pub trait PortStreamIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PortStreamIo for T {}

/// One forwarded connection's bytes, from and to the client.
pub type PortStream = Box<dyn PortStreamIo>;

/// The client's side of an exec or attach session. Streams the client did not ask for are
/// `None`. Dropping `stdout`/`stderr` ends them; stdin reads EOF when the client closes it.
pub struct StreamIo {
    /// The client's input.
    pub stdin: Option<BoxRead>,
    /// The process's stdout (with a TTY: the terminal's output).
    pub stdout: Option<BoxWrite>,
    /// The process's stderr (never with a TTY).
    pub stderr: Option<BoxWrite>,
    /// Whether the session has a terminal.
    pub tty: bool,
    /// Terminal size changes (only with a TTY; the first arrives right after the start).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
    /// Cancelled when the client disconnects: stop the session and clean up.
    pub client_gone: CancellationToken,
}

impl std::fmt::Debug for StreamIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIo")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("tty", &self.tty)
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// A backend that can run streaming sessions. Object safe; the server holds it as
/// `Arc<dyn StreamingProvider>`.
#[async_trait]
pub trait StreamingProvider: Send + Sync + 'static {
    /// Run `cmd` in `container_id` with `io`; the command's exit code, or an error when it
    /// could not be run. When `io.client_gone` fires, kill the command and return.
    async fn exec(&self, container_id: &str, cmd: &[String], io: StreamIo) -> Result<i32>;

    /// Attach `io` to the main process of `container_id` until it exits or the client goes.
    async fn attach(&self, container_id: &str, io: StreamIo) -> Result<()>;

    /// Connect `stream` to `port` inside the network namespace of `pod_sandbox_id` and copy
    /// both ways until the connection ends or `client_gone` fires.
    async fn port_forward(
        &self,
        pod_sandbox_id: &str,
        port: u16,
        stream: PortStream,
        client_gone: CancellationToken,
    ) -> Result<()>;
}
