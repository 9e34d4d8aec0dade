//! Unix-socket transport: parsing `unix:///path` endpoints and opening tonic channels whose
//! connector dials the socket (the URI tonic sees is a placeholder).

use std::{path::PathBuf, time::Duration};

use anycri_core::{Error, ErrorKind, Result};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The socket path of a `unix:///path` URI or a bare absolute path. Anything else is an
/// InvalidArgument error.
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
    if path.is_empty() {
        return Err(Error::invalid_argument(format!(
            "endpoint {endpoint:?} has no socket path"
        )));
    }
    if !path.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "endpoint {endpoint:?}: the socket path must be absolute (unix:///path)"
        )));
    }
    if path.contains('\0') {
        return Err(Error::invalid_argument(format!(
            "endpoint {endpoint:?} contains a NUL byte"
        )));
    }
    Ok(PathBuf::from(path))
}

/// A tonic channel to the socket at `path`. With `eager`, the first connection is made now
/// (bounded by `connect_timeout`); the channel reconnects by itself afterwards.
pub(crate) async fn channel(
    path: PathBuf,
    connect_timeout: Duration,
    eager: bool,
) -> Result<Channel> {
    // The authority is never resolved: the connector below ignores the URI.
    let endpoint = Endpoint::from_static("http://localhost")
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true);
    let connector = tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    if eager {
        tokio::time::timeout(connect_timeout, endpoint.connect_with_connector(connector))
            .await
            .map_err(|_| {
                Error::deadline_exceeded(format!("connecting took longer than {connect_timeout:?}"))
            })?
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::Unavailable,
                    format!("cannot connect: {}", error_chain(&e)),
                    e,
                )
            })
    } else {
        Ok(endpoint.connect_with_connector_lazy(connector))
    }
}

/// An error and its sources, joined with ": ".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
    fn parses_endpoints() {
        assert_eq!(
            socket_path("unix:///run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(
            socket_path("/run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        for bad in [
            "",
            "unix://",
            "unix://relative.sock",
            "tcp://1.2.3.4:5",
            "relative",
            "unix:///a\0b",
        ] {
            let err = socket_path(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
    }
}
