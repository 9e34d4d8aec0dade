//! Where runtimes answer the same thing differently, the one behaviour anycri documents
//! (`docs/runtimes.md` lists each difference). [`GrpcRuntime`](crate::GrpcRuntime) passes
//! every answer through here, knowing the runtime's flavour from `Version`:
//!
//! - a missing object is NotFound: cri-dockerd reports it as Unknown with Docker's
//!   "No such container" / "No such image" text;
//! - an ExecSync that outlives its timeout fails with DeadlineExceeded: CRI-O answers exit
//!   code -1 with "command timed out" on stderr instead;
//! - streaming URLs are absolute `http(s)://` URLs: cri-dockerd returns scheme-less ones
//!   (`//127.0.0.1:10010/cri/exec/...`), which the kubelet completes to `http://`.

use anycri_core::{Error, ErrorKind, RuntimeFlavour, api::ExecSyncResponse};

/// Docker's words for a missing object, as cri-dockerd passes them on.
const DOCKER_NOT_FOUND: &[&str] = &["No such container", "No such image", "No such object"];

/// What CRI-O's conmon writes to stderr when it kills an ExecSync at its timeout.
const CRIO_EXEC_TIMED_OUT: &str = "command timed out";

/// Re-categorise a runtime's error where its flavour uses another category for the same thing.
pub(crate) fn error(flavour: Option<&RuntimeFlavour>, err: Error) -> Error {
    match flavour {
        Some(RuntimeFlavour::CriDockerd)
            if err.kind() == ErrorKind::Unknown
                && DOCKER_NOT_FOUND.iter().any(|m| err.message().contains(m)) =>
        {
            let message = err.message().to_owned();
            Error::with_source(ErrorKind::NotFound, message, err)
        }
        _ => err,
    }
}

/// An ExecSync answer that is a timeout in another form becomes DeadlineExceeded.
pub(crate) fn exec_sync(
    flavour: Option<&RuntimeFlavour>,
    timeout_secs: i64,
    response: ExecSyncResponse,
) -> Result<ExecSyncResponse, Error> {
    let crio_timeout = matches!(flavour, Some(RuntimeFlavour::CriO))
        && timeout_secs > 0
        && response.exit_code == -1
        && String::from_utf8_lossy(&response.stderr).contains(CRIO_EXEC_TIMED_OUT);
    if crio_timeout {
        return Err(Error::deadline_exceeded(format!(
            "ExecSync did not complete within its {timeout_secs} s timeout (CRI-O: {CRIO_EXEC_TIMED_OUT})"
        )));
    }
    Ok(response)
}

/// A streaming URL as an absolute URL (see [`anycri_core::kubelet::streaming_url`]).
pub(crate) fn streaming_url(url: String) -> String {
    match anycri_core::kubelet::streaming_url(&url) {
        std::borrow::Cow::Owned(absolute) => absolute,
        std::borrow::Cow::Borrowed(_) => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_dockerd_not_found() {
        let unknown = Error::new(
            ErrorKind::Unknown,
            "Error response from daemon: No such container: abc",
        );
        let mapped = error(Some(&RuntimeFlavour::CriDockerd), unknown);
        assert_eq!(mapped.kind(), ErrorKind::NotFound);
        assert!(mapped.message().contains("No such container"));
        // Other flavours and other texts are left alone.
        let unknown = Error::new(ErrorKind::Unknown, "No such container: abc");
        assert_eq!(
            error(Some(&RuntimeFlavour::Containerd), unknown).kind(),
            ErrorKind::Unknown
        );
        let other = Error::new(ErrorKind::Unknown, "daemon is busy");
        assert_eq!(
            error(Some(&RuntimeFlavour::CriDockerd), other).kind(),
            ErrorKind::Unknown
        );
    }

    #[test]
    fn crio_exec_timeout() {
        let timed_out = ExecSyncResponse {
            stdout: Vec::new(),
            stderr: b"command timed out".to_vec(),
            exit_code: -1,
        };
        let e = exec_sync(Some(&RuntimeFlavour::CriO), 1, timed_out.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DeadlineExceeded);
        // Without a timeout, or from another runtime, or a real -1 exit: kept.
        assert!(exec_sync(Some(&RuntimeFlavour::CriO), 0, timed_out.clone()).is_ok());
        assert!(exec_sync(Some(&RuntimeFlavour::Containerd), 1, timed_out).is_ok());
        let real = ExecSyncResponse {
            exit_code: -1,
            ..Default::default()
        };
        assert!(exec_sync(Some(&RuntimeFlavour::CriO), 1, real).is_ok());
    }

    #[test]
    fn scheme_less_urls() {
        assert_eq!(
            streaming_url("//127.0.0.1:10010/cri/exec/abc".into()),
            "http://127.0.0.1:10010/cri/exec/abc"
        );
        assert_eq!(streaming_url("http://h:1/x".into()), "http://h:1/x");
    }
}
