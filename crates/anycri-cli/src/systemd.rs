//! What a daemon started by systemd needs, in the way cri-dockerd does it, so cri-dockerd's
//! packaged units (`cri-docker.service` with `Type=notify`, `cri-docker.socket`) start
//! `anycri shim docker` unchanged: socket activation (`--container-runtime-endpoint fd://`: the
//! first listening socket systemd passes, LISTEN_FDS/LISTEN_PID, fd 3) and readiness
//! notification (`READY=1` once CRI is served, `STOPPING=1` on the way out, to NOTIFY_SOCKET).

use std::os::unix::net::{UnixDatagram, UnixListener};

use anycri::{Error, Result};

/// Whether `endpoint` asks for socket activation (`fd://`).
pub fn is_activation(endpoint: &str) -> bool {
    endpoint.starts_with("fd://")
}

/// The listening unix socket systemd passed (the first, as cri-dockerd takes it). Reads and
/// clears LISTEN_FDS/LISTEN_PID, so it must run before any other thread starts.
pub fn take_activated_listener(endpoint: &str) -> Result<UnixListener> {
    if endpoint != "fd://" {
        return Err(Error::invalid_argument(format!(
            "{endpoint:?}: only fd:// (the first socket systemd passes) is supported, as in cri-dockerd"
        )));
    }
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Err(Error::failed_precondition(
            "fd://: no socket was passed (LISTEN_FDS/LISTEN_PID); start the service through \
             its socket unit (cri-docker.socket), or listen on unix:///path",
        ));
    }
    if fds.len() > 1 {
        tracing::warn!(
            passed = fds.len(),
            "fd://: several sockets were passed; serving the first"
        );
    }
    let listener = fds
        .take_unix_listener(0)
        .map_err(|e| {
            Error::invalid_argument(format!("fd://: the passed socket is not usable: {e}"))
        })?
        .ok_or_else(|| Error::failed_precondition("fd://: the first socket was already taken"))?;
    listener.set_nonblocking(true).map_err(|e| {
        Error::with_source(
            anycri::ErrorKind::Internal,
            "fd://: making the socket non-blocking",
            e,
        )
    })?;
    Ok(listener)
}

/// Tell systemd `state` (`READY=1`, `STOPPING=1`) when it asked to be told (NOTIFY_SOCKET, a
/// path or an abstract `@name`); failures are logged, never fatal.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let sent = UnixDatagram::unbound().and_then(|socket| match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.send_to_addr(state.as_bytes(), &address)
        }
        None => socket.send_to(state.as_bytes(), &target),
    });
    match sent {
        Ok(_) => tracing::debug!(state, socket = %target, "told systemd"),
        Err(e) => tracing::warn!(state, socket = %target, error = %e, "could not tell systemd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_socket_form() {
        assert!(is_activation("fd://"));
        assert!(!is_activation("unix:///run/x.sock"));
        let err = take_activated_listener("fd://cri").unwrap_err();
        assert!(err.to_string().contains("only fd://"), "{err}");
    }
}
