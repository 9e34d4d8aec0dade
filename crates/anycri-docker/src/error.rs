//! Docker's errors as anycri's categories: the HTTP status of an API error picks the
//! category (404 NotFound, 409 AlreadyExists or FailedPrecondition, 400 InvalidArgument, ...),
//! a transport failure (dockerd down or restarting: the connection refused or dropped) is
//! Unavailable, and bollard's error is kept as the source.

use anycri_core::{Error, ErrorKind};
use bollard::errors::Error as DockerError;

/// The HTTP status of a Docker API error, if it is one.
pub(crate) fn status_code(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether Docker said "no such object".
pub(crate) fn is_not_found(e: &DockerError) -> bool {
    status_code(e) == Some(404)
}

/// Convert a Docker error met while doing `what`.
pub(crate) fn docker_error(what: impl std::fmt::Display, e: DockerError) -> Error {
    let (kind, detail) = match &e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => (
            match status_code {
                400 => ErrorKind::InvalidArgument,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                409 if message.contains("already in use") => ErrorKind::AlreadyExists,
                409 => ErrorKind::FailedPrecondition,
                304 => ErrorKind::FailedPrecondition,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            message.clone(),
        ),
        DockerError::RequestTimeoutError => (ErrorKind::DeadlineExceeded, e.to_string()),
        // hyper's client failed to connect or lost the connection before a response
        DockerError::HyperLegacyError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::SocketNotFoundError(_) => (ErrorKind::Unavailable, e.to_string()),
        _ => (ErrorKind::Internal, e.to_string()),
    };
    Error::with_source(kind, format!("{what}: {detail}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, msg: &str) -> DockerError {
        DockerError::DockerResponseServerError {
            status_code: code,
            message: msg.into(),
        }
    }

    #[test]
    fn categories_from_http_status() {
        assert_eq!(
            docker_error("x", server(404, "No such container: a")).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            docker_error(
                "x",
                server(
                    409,
                    "Conflict. The container name \"/k8s_x\" is already in use"
                )
            )
            .kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            docker_error("x", server(409, "container is not running")).kind(),
            ErrorKind::FailedPrecondition
        );
        assert_eq!(
            docker_error("x", server(400, "bad")).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            docker_error("x", server(500, "boom")).kind(),
            ErrorKind::Internal
        );
        let e = docker_error("starting container c1", server(500, "boom"));
        assert_eq!(e.message(), "starting container c1: boom");
    }

    /// A socket nobody listens on, as dockerd leaves while it restarts: Unavailable (the
    /// category clients retry), not Internal.
    #[tokio::test]
    async fn dockerd_gone_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let docker = bollard::Docker::connect_with_unix(
            &path.to_string_lossy(),
            5,
            bollard::API_DEFAULT_VERSION,
        )
        .unwrap();
        let e = docker.version().await.unwrap_err();
        let e = docker_error("asking Docker for its version", e);
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
    }
}
