//! [`ContainerdClient`]: a tonic channel to containerd's unix socket, opened with a bounded
//! timeout, and the small calls the rest of the crate builds on (namespaced requests, the
//! daemon's version).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anycri_core::{Error, ErrorKind, Result};
use containerd_client::services::v1::version_client::VersionClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long [`ContainerdClient::connect`] waits for the socket (5 s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The socket path of a `unix:///path` endpoint or a bare absolute path (the CRI endpoint of
/// a containerd is its API socket too). Anything else is InvalidArgument.
pub fn socket_path(endpoint: &str) -> Result<PathBuf> {
    let path = match endpoint.split_once("://") {
        Some(("unix", rest)) => rest,
        Some((scheme, _)) => {
            return Err(Error::invalid_argument(format!(
                "endpoint {endpoint:?}: scheme {scheme:?} is not a unix socket (use unix:///path)"
            )));
        }
        None => endpoint,
    };
    if !path.starts_with('/') || path.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "endpoint {endpoint:?}: expected an absolute socket path (unix:///path)"
        )));
    }
    Ok(PathBuf::from(path))
}

/// A client of containerd's own API (not the CRI) over its unix socket. Cheap to clone;
/// clones share the connection, which redials by itself after containerd restarts.
#[derive(Clone)]
pub struct ContainerdClient {
    channel: Channel,
    path: PathBuf,
}

impl std::fmt::Debug for ContainerdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdClient")
            .field("socket", &self.path)
            .finish()
    }
}

impl ContainerdClient {
    /// Connects to `endpoint` (`unix:///path` or `/path`) within [`DEFAULT_CONNECT_TIMEOUT`].
    pub async fn connect(endpoint: &str) -> Result<Self> {
        Self::connect_with_timeout(endpoint, DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Connects to `endpoint`, giving up after `timeout` (DeadlineExceeded; a socket that
    /// refuses is Unavailable).
    pub async fn connect_with_timeout(endpoint: &str, timeout: Duration) -> Result<Self> {
        let path = socket_path(endpoint)?;
        let dial = path.clone();
        // The URI is never resolved: the connector dials the socket.
        let connector = tower::service_fn(move |_: Uri| {
            let dial = dial.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(dial).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        });
        let endpoint = Endpoint::from_static("http://localhost").connect_timeout(timeout);
        let context = |e: Error| e.context(format!("containerd at unix://{}", path.display()));
        let channel = tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
            .await
            .map_err(|_| {
                context(Error::deadline_exceeded(format!(
                    "connecting took longer than {timeout:?}"
                )))
            })?
            .map_err(|e| {
                let message = format!("cannot connect: {}", error_chain(&e));
                context(Error::with_source(ErrorKind::Unavailable, message, e))
            })?;
        Ok(ContainerdClient { channel, path })
    }

    /// The socket path.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// The channel, for any other service of [`containerd_client`] (a request in a
    /// namespace carries the `containerd-namespace` header: see [`Self::request`]).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `message` as a request in containerd namespace `namespace`.
    pub fn request<T>(message: T, namespace: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = namespace.parse() {
            request.metadata_mut().insert("containerd-namespace", value);
        }
        request
    }

    /// containerd's version and git revision (its Version service, not the CRI's).
    pub async fn version(&self) -> Result<(String, String)> {
        let v = VersionClient::new(self.channel())
            .version(())
            .await
            .map_err(Error::from)?
            .into_inner();
        Ok((v.version, v.revision))
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").unwrap(),
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(socket_path("/a.sock").unwrap(), PathBuf::from("/a.sock"));
        for bad in ["", "unix://", "tcp://1.2.3.4:5", "relative.sock"] {
            assert_eq!(
                socket_path(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn missing_socket_is_unavailable() {
        let e = ContainerdClient::connect("unix:///nonexistent/anycri/containerd.sock")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains("/nonexistent/anycri"), "{e}");
    }
}
