//! The streaming commands — `exec` (without `--sync`), `attach` and `port-forward` — on the
//! CRI's streaming URLs through `anycri_streaming::client`, so they work against any runtime.
//! With `-t` the local terminal is put in raw mode for the session and restored on every way
//! out (end, error, signal, panic), and its size is sent at the start and on every SIGWINCH.

use std::{
    io::{IsTerminal, Read},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use anycri::{Error, Result, RuntimeService, RuntimeServiceExt, api::PodSandboxState};
use anycri_streaming::client::{self, ChannelWriter, ExecOptions, ExecSession, OutputStream};
use rustix::termios::{self, OptionalActions, Termios};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    signal::unix::{Signal, SignalKind, signal},
    sync::mpsc,
};

/// Run `cmd` in container `id` with streams, like `crictl exec`: the command's exit code.
pub async fn exec(
    runtime: &dyn RuntimeService,
    id: &str,
    cmd: &[String],
    stdin: bool,
    tty: bool,
) -> Result<i32> {
    let session = client::exec(runtime, id, cmd, options(stdin, tty)).await?;
    run_session(session, tty).await
}

/// Attach to container `id`'s main process until its streams end (or a signal).
pub async fn attach(runtime: &dyn RuntimeService, id: &str, stdin: bool, tty: bool) -> Result<i32> {
    // Attach URLs are handed out for stopped containers too; say plainly why nothing comes.
    let status = runtime.get_container_status(id).await?;
    if status.state != anycri::api::ContainerState::ContainerRunning as i32 {
        return Err(Error::failed_precondition(format!(
            "container {id} is not running"
        )));
    }
    let session = client::attach(runtime, id, options(stdin, tty)).await?;
    run_session(session, tty).await
}

fn options(stdin: bool, tty: bool) -> ExecOptions {
    ExecOptions {
        stdin,
        stdout: true,
        stderr: !tty,
        tty,
    }
}

/// The local terminal in raw mode; dropping it puts the saved settings back.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Raw mode on stdin when it is a terminal (None otherwise: nothing to restore).
    fn enter() -> Option<RawTerminal> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            tracing::warn!("stdin is not a terminal: it stays as it is (-t still asks for one)");
            return None;
        }
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Drain, so output already written is shown with the settings it was written for.
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Drain, &self.saved);
    }
}

/// The local terminal's size as (width, height), from stdin or else stdout.
fn terminal_size() -> Option<(u16, u16)> {
    let from = |size: rustix::io::Result<termios::Winsize>| {
        size.ok()
            .filter(|w| w.ws_col > 0 && w.ws_row > 0)
            .map(|w| (w.ws_col, w.ws_row))
    };
    from(termios::tcgetwinsize(std::io::stdin()))
        .or_else(|| from(termios::tcgetwinsize(std::io::stdout())))
}

/// Signals that end a session: the exit code they leave (128 + number, as a shell does).
struct Interrupts {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupts {
    fn install() -> Result<Interrupts> {
        let on = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::internal(format!("installing a signal handler: {e}")))
        };
        Ok(Interrupts {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => 128 + 2,
            _ = self.term.recv() => 128 + 15,
            _ = self.hup.recv() => 128 + 1,
        }
    }
}

async fn run_session(mut session: ExecSession, tty: bool) -> Result<i32> {
    let mut interrupts = Interrupts::install()?;
    let winch = if tty {
        Some(
            signal(SignalKind::window_change())
                .map_err(|e| Error::internal(format!("installing a SIGWINCH handler: {e}")))?,
        )
    } else {
        None
    };
    let raw = if tty { RawTerminal::enter() } else { None };
    if tty && let Some((width, height)) = terminal_size() {
        session.resize(width, height).await?;
    }
    let can_close_stdin = session.can_close_stdin();
    let stdin = session
        .stdin
        .take()
        .map(|w| tokio::spawn(forward_stdin(w, can_close_stdin)));
    let stdout = session
        .stdout
        .take()
        .map(|r| tokio::spawn(copy_out(r, tokio::io::stdout())));
    let stderr = session
        .stderr
        .take()
        .map(|r| tokio::spawn(copy_out(r, tokio::io::stderr())));
    // Resizes go through a handle of their own, so the session can be waited for meanwhile.
    let resizes = winch.map(|mut winch| {
        let resizer = session.resizer();
        tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some((width, height)) = terminal_size() {
                    // A session that is ending cannot be resized; its end shows anyway.
                    let _ = resizer.resize(width, height).await;
                }
            }
        })
    });
    let result = tokio::select! {
        result = session.wait() => {
            // The outputs end with the session: let them finish writing locally.
            for task in [stdout, stderr].into_iter().flatten() {
                let _ = task.await;
            }
            result
        }
        code = interrupts.next() => Ok(code),
    };
    if let Some(task) = resizes {
        task.abort();
    }
    if let Some(task) = stdin {
        task.abort();
    }
    drop(raw);
    result
}

/// Copy one of the session's outputs to a local one, flushing as it goes.
async fn copy_out(mut from: OutputStream, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.flush().await;
}

/// Send local stdin to the session until it ends, then close it in the process (SPDY, which
/// the client picks for stdin, or WebSocket v5).
async fn forward_stdin(mut to: ChannelWriter, can_close: bool) {
    // A thread of its own: a blocking read of a terminal cannot be cancelled, and a thread
    // blocked in it must not hold up the end of the process (a runtime's blocking pool would).
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8);
    let spawned = std::thread::Builder::new()
        .name("anycri-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot read stdin");
        return;
    }
    while let Some(chunk) = rx.recv().await {
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    if !can_close {
        tracing::warn!(
            "end of stdin: the session's protocol (WebSocket v4) cannot pass it on; \
             the command does not see the end of its input"
        );
    }
    let _ = to.shutdown().await;
}

/// One `[LOCAL:]REMOTE` port pair; LOCAL 0 (or `:REMOTE`) picks a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// The local port (0: any free one).
    pub local: u16,
    /// The port in the pod.
    pub remote: u16,
}

/// Parse `REMOTE`, `LOCAL:REMOTE` or `:REMOTE` as kubectl does.
pub fn parse_port_spec(spec: &str) -> Result<PortSpec> {
    let bad = || {
        Error::invalid_argument(format!(
            "port spec {spec:?} must be [LOCAL:]REMOTE (ports 1-65535; LOCAL may be empty or 0 for any free port)"
        ))
    };
    let (local, remote) = match spec.split_once(':') {
        None => (None, spec),
        Some(("", remote)) => (Some(0), remote),
        Some((local, remote)) => (Some(local.parse::<u16>().map_err(|_| bad())?), remote),
    };
    let remote = remote.parse::<u16>().map_err(|_| bad())?;
    if remote == 0 {
        return Err(bad());
    }
    Ok(PortSpec {
        local: local.unwrap_or(remote),
        remote,
    })
}

/// The address to listen on: an IP, or `localhost`.
pub fn parse_listen_address(address: &str) -> Result<IpAddr> {
    if address == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    address.parse().map_err(|_| {
        Error::invalid_argument(format!(
            "address {address:?} must be an IP address or localhost"
        ))
    })
}

/// Forward local ports to ports in pod `pod` until interrupted; each accepted connection
/// gets a port-forward connection of its own.
pub async fn port_forward(
    runtime: Arc<dyn RuntimeService>,
    pod: &str,
    specs: &[String],
    address: &str,
) -> Result<i32> {
    let ports = specs
        .iter()
        .map(|s| parse_port_spec(s))
        .collect::<Result<Vec<_>>>()?;
    let ip = parse_listen_address(address)?;
    let status = runtime.get_pod_status(pod).await?;
    if status.state != PodSandboxState::SandboxReady as i32 {
        return Err(Error::failed_precondition(format!(
            "pod {pod} is not ready"
        )));
    }
    let mut interrupts = Interrupts::install()?;
    let mut listeners = Vec::with_capacity(ports.len());
    for port in ports {
        let listener = client::listen_port_forward(
            runtime.clone(),
            &status.id,
            port.remote,
            SocketAddr::new(ip, port.local),
        )
        .await?;
        out!(
            "Forwarding from {} -> {}",
            listener.local_addr(),
            port.remote
        );
        listeners.push(listener);
    }
    interrupts.next().await;
    drop(listeners);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_like_kubectl() {
        let spec = |local, remote| PortSpec { local, remote };
        assert_eq!(parse_port_spec("8080").unwrap(), spec(8080, 8080));
        assert_eq!(parse_port_spec("9000:80").unwrap(), spec(9000, 80));
        assert_eq!(parse_port_spec(":80").unwrap(), spec(0, 80));
        assert_eq!(parse_port_spec("0:80").unwrap(), spec(0, 80));
        for bad in ["", "0", "80:", "x:80", "80:x", "70000", "1:2:3", "-1"] {
            let e = parse_port_spec(bad).unwrap_err();
            assert_eq!(e.kind(), anycri::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_address("localhost").unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            parse_listen_address("::1").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_listen_address("example.com").is_err());
    }
}
