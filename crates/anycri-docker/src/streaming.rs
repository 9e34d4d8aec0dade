//! Exec, Attach and PortForward on Docker, served by anycri's streaming server: the CRI RPCs
//! validate the request, check the container or pod, and return a URL of the shim's own
//! [`StreamingServer`] (started on first use). The sessions behind the URLs run here as a
//! [`StreamingProvider`]: exec through Docker's exec API with a hijacked stdin/stdout
//! connection (`resize_exec` for terminals; the process tree is killed when the client
//! goes), attach through Docker's attach API, and port-forward natively — a short-lived
//! dedicated thread enters the pause container's network namespace (`setns`), connects to
//! the port on loopback (IPv4, then IPv6) and hands the socket back to tokio.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream as StdTcpStream},
    sync::{Arc, Weak},
    time::Duration,
};

use anycri_core::{Error, Result, api::*};
use anycri_streaming::{PortStream, StreamIo, StreamingProvider, StreamingServer, TerminalSize};
use async_trait::async_trait;
use bollard::{
    container::LogOutput,
    exec::StartExecResults,
    models::ExecConfig,
    query_parameters::{AttachContainerOptions, ResizeContainerTTYOptions, ResizeExecOptions},
};
use futures::StreamExt;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use crate::{DockerRuntime, error::docker_error, runtime::Inner};

/// How long a port-forward connect inside the pod may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client's data may still flow to the pod after the pod closed its side.
const DRAIN: Duration = Duration::from_millis(100);

/// The shim's side of the streaming server: holds the runtime weakly, so the server (which
/// the runtime owns) does not keep the runtime alive.
struct DockerStreaming {
    runtime: Weak<Inner>,
}

impl DockerStreaming {
    fn runtime(&self) -> Result<DockerRuntime> {
        self.runtime
            .upgrade()
            .map(|inner| DockerRuntime { inner })
            .ok_or_else(|| Error::unavailable("the Docker shim has shut down"))
    }
}

impl DockerRuntime {
    /// The streaming server, started on first use.
    pub(crate) async fn streaming(&self) -> Result<&StreamingServer> {
        self.inner
            .streaming
            .get_or_try_init(|| async {
                let provider = Arc::new(DockerStreaming {
                    runtime: Arc::downgrade(&self.inner),
                });
                StreamingServer::start(self.inner.streaming_config.clone(), provider).await
            })
            .await
    }

    /// Ends every streaming session — each exec's process tree is killed, as when its client
    /// leaves — and stops the streaming server, waiting at most its shutdown timeout. Call it
    /// when the process is about to exit: sessions cut off by the exit would leave their exec
    /// processes running in the containers. Exec, Attach and PortForward URLs handed out
    /// afterwards do not work.
    pub async fn shutdown_streaming(&self) {
        if let Some(server) = self.inner.streaming.get() {
            server.shutdown().await;
        }
    }

    /// The streaming server's address, once it has started (after the first Exec, Attach
    /// or PortForward).
    pub fn streaming_address(&self) -> Option<SocketAddr> {
        self.inner.streaming.get().map(|s| s.local_addr())
    }

    async fn running_container(&self, id: &str) -> Result<String> {
        let inspect = self.inspect_container(id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        if !inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::failed_precondition(format!(
                "container {id} is not running"
            )));
        }
        Ok(id)
    }

    pub(crate) async fn exec_impl(&self, request: ExecRequest) -> Result<ExecResponse> {
        anycri_streaming::token::validate_exec(&request)?;
        self.running_container(&request.container_id).await?;
        self.streaming().await?.get_exec(request)
    }

    pub(crate) async fn attach_impl(&self, request: AttachRequest) -> Result<AttachResponse> {
        anycri_streaming::token::validate_attach(&request)?;
        self.running_container(&request.container_id).await?;
        self.streaming().await?.get_attach(request)
    }

    pub(crate) async fn port_forward_impl(
        &self,
        request: PortForwardRequest,
    ) -> Result<PortForwardResponse> {
        anycri_streaming::token::validate_port_forward(&request)?;
        self.sandbox_pid(&request.pod_sandbox_id).await?;
        self.streaming().await?.get_port_forward(request)
    }

    /// The PID of a running pod's pause process.
    async fn sandbox_pid(&self, pod_sandbox_id: &str) -> Result<i64> {
        let inspect = self.inspect_sandbox(pod_sandbox_id).await?;
        let state = inspect.state.unwrap_or_default();
        match state.pid {
            Some(pid) if state.running == Some(true) && pid > 0 => Ok(pid),
            _ => Err(Error::failed_precondition(format!(
                "pod sandbox {pod_sandbox_id} is not running"
            ))),
        }
    }
}

/// Copy the client's stdin into Docker's hijacked connection; closing it closes the
/// process's stdin.
async fn pump_stdin(
    mut stdin: Box<dyn AsyncRead + Send + Unpin>,
    mut input: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
) {
    let _ = tokio::io::copy(&mut stdin, &mut input).await;
    let _ = input.shutdown().await;
}

/// Docker's output frames to the client's stdout/stderr. Ends when Docker's stream does;
/// an error writing to the client means the client is gone.
async fn pump_output(
    mut output: std::pin::Pin<
        Box<
            dyn futures::Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>>
                + Send,
        >,
    >,
    mut stdout: Option<anycri_streaming::BoxWrite>,
    mut stderr: Option<anycri_streaming::BoxWrite>,
) -> io::Result<()> {
    while let Some(chunk) = output.next().await {
        let (target, message) = match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                (&mut stdout, message)
            }
            Ok(LogOutput::StdErr { message }) => (&mut stderr, message),
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        if let Some(w) = target.as_mut() {
            w.write_all(&message).await?;
        }
    }
    for w in [stdout, stderr].iter_mut().flatten() {
        let _ = w.flush().await;
    }
    Ok(())
}

/// Apply each terminal size from `resize`. The first one usually arrives while Docker is
/// still starting the process and refuses to resize it, so a refused size is retried for a
/// while (until it works or a newer size arrives). Never finishes.
async fn follow_resizes<F, Fut>(resize: Option<mpsc::Receiver<TerminalSize>>, apply: F)
where
    F: Fn(TerminalSize) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), bollard::errors::Error>>,
{
    let Some(mut resize) = resize else {
        return std::future::pending().await;
    };
    while let Some(mut size) = resize.recv().await {
        for _ in 0..100 {
            match apply(size).await {
                Ok(()) => break,
                Err(e) => tracing::debug!(error = %e, "resizing the terminal failed; retrying"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(newer) = resize.try_recv() {
                size = newer;
            }
        }
    }
    std::future::pending().await
}

#[async_trait]
impl StreamingProvider for DockerStreaming {
    async fn exec(&self, container_id: &str, cmd: &[String], io: StreamIo) -> Result<i32> {
        let rt = self.runtime()?;
        // The Exec RPC checked that this is a running CRI container; a container that
        // stopped since makes Docker refuse the exec (FailedPrecondition).
        let id = container_id.to_owned();
        let docker = rt.docker().clone();
        let exec = docker
            .create_exec(
                &id,
                ExecConfig {
                    attach_stdin: Some(io.stdin.is_some()),
                    attach_stdout: Some(io.stdout.is_some()),
                    attach_stderr: Some(io.stderr.is_some()),
                    tty: Some(io.tty),
                    cmd: Some(cmd.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| docker_error(format!("creating an exec in container {id}"), e))?;
        let exec_id = exec.id;
        let started = docker
            .start_exec(
                &exec_id,
                Some(bollard::exec::StartExecOptions {
                    detach: false,
                    tty: io.tty,
                    output_capacity: Some(64 * 1024),
                }),
            )
            .await
            .map_err(|e| docker_error(format!("starting exec in container {id}"), e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(Error::internal("Docker started the exec detached"));
        };
        let stdin_task = io.stdin.map(|stdin| tokio::spawn(pump_stdin(stdin, input)));
        let resizes = follow_resizes(io.resize, |size| {
            let docker = docker.clone();
            let exec_id = exec_id.clone();
            async move {
                let options = ResizeExecOptions {
                    h: i32::from(size.height),
                    w: i32::from(size.width),
                };
                docker.resize_exec(&exec_id, options).await
            }
        });
        let client_stayed = tokio::select! {
            r = pump_output(output, io.stdout, io.stderr) => r.is_ok(),
            _ = resizes => true,
            _ = io.client_gone.cancelled() => false,
        };
        if let Some(task) = stdin_task {
            task.abort();
        }
        if !client_stayed {
            tracing::debug!(exec_id, "the streaming client left; killing the exec");
            // Nobody is left to see the output: end the process (and what it started)
            // rather than leave it running in the container.
            rt.kill_exec(&exec_id).await;
            return Err(Error::cancelled("the streaming client disconnected"));
        }
        rt.exec_exit_code(&exec_id).await
    }

    async fn attach(&self, container_id: &str, io: StreamIo) -> Result<()> {
        let rt = self.runtime()?;
        let id = rt.running_container(container_id).await?;
        let docker = rt.docker().clone();
        let attached = docker
            .attach_container(
                &id,
                Some(AttachContainerOptions {
                    stream: true,
                    logs: false,
                    stdin: io.stdin.is_some(),
                    stdout: io.stdout.is_some(),
                    stderr: io.stderr.is_some(),
                    detach_keys: None,
                }),
            )
            .await
            .map_err(|e| docker_error(format!("attaching to container {id}"), e))?;
        let stdin_task = io
            .stdin
            .map(|stdin| tokio::spawn(pump_stdin(stdin, attached.input)));
        let resizes = follow_resizes(io.resize, |size| {
            let docker = docker.clone();
            let id = id.clone();
            async move {
                let options = ResizeContainerTTYOptions {
                    h: i32::from(size.height),
                    w: i32::from(size.width),
                };
                docker.resize_container_tty(&id, options).await
            }
        });
        // Detaching leaves the container running; only the attach connection is dropped.
        tokio::select! {
            r = pump_output(attached.output, io.stdout, io.stderr) => {
                if let Err(e) = r {
                    tracing::debug!(container = id, error = %e, "attach ended");
                }
            }
            _ = resizes => {}
            _ = io.client_gone.cancelled() => {}
        }
        if let Some(task) = stdin_task {
            task.abort();
        }
        Ok(())
    }

    async fn port_forward(
        &self,
        pod_sandbox_id: &str,
        port: u16,
        mut stream: PortStream,
        client_gone: CancellationToken,
    ) -> Result<()> {
        let rt = self.runtime()?;
        let pid = rt.sandbox_pid(pod_sandbox_id).await?;
        drop(rt);
        let tcp = connect_in_netns(pid, port).await?;
        let _ = tcp.set_nodelay(true);
        forward(&mut stream, tcp, client_gone).await;
        Ok(())
    }
}

/// Copy both ways. When the pod's side closes, what the client already sent gets
/// [`DRAIN`] to reach the pod, then the session ends: the WebSocket port-forward protocol
/// cannot half-close, so the client sees EOF only when the session ends (containerd waits a
/// whole second here). The client leaving ends it at once.
async fn forward(
    stream: &mut PortStream,
    tcp: tokio::net::TcpStream,
    client_gone: CancellationToken,
) {
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_pod, &mut to_client).await;
        let _ = to_client.flush().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        _ = &mut down => {
            let _ = tokio::time::timeout(DRAIN, &mut up).await;
        }
        _ = &mut up => {
            tokio::select! {
                _ = &mut down => {}
                _ = client_gone.cancelled() => {}
            }
        }
        _ = client_gone.cancelled() => {}
    }
}

/// Connect to `port` on loopback inside the network namespace of process `pid`.
async fn connect_in_netns(pid: i64, port: u16) -> Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // setns changes the calling thread's namespace for good, so it runs on a thread of its
    // own that exits right after; the connected socket keeps the pod's namespace.
    std::thread::Builder::new()
        .name("anycri-portfwd".into())
        .spawn(move || {
            let _ = tx.send(connect_on_this_thread(pid, port));
        })
        .map_err(|e| Error::internal(format!("spawning the port-forward thread: {e}")))?;
    let std_stream = rx
        .await
        .map_err(|_| Error::internal("the port-forward thread died"))??;
    std_stream
        .set_nonblocking(true)
        .map_err(|e| Error::internal(format!("port-forward socket: {e}")))?;
    tokio::net::TcpStream::from_std(std_stream)
        .map_err(|e| Error::internal(format!("port-forward socket: {e}")))
}

fn connect_on_this_thread(pid: i64, port: u16) -> Result<StdTcpStream> {
    use nix::sched::{CloneFlags, setns};
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).map_err(|e| {
        Error::failed_precondition(format!("opening the pod's network namespace {path}: {e}"))
    })?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::internal(format!("entering the pod's network namespace {path}: {e}"))
    })?;
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match StdTcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => StdTcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|e6| {
            Error::unavailable(format!(
                "nothing accepts connections on port {port} in the pod ({v4}: {e4}; {v6}: {e6})"
            ))
        }),
    }
}
