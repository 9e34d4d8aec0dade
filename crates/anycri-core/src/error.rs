//! anycri's one error type: a category per gRPC status code, the backend's own error kept as
//! `source`, and a lossless round trip to and from [`tonic::Status`] so that a server built
//! on anycri returns exactly the status its backend produced.

use std::fmt;

/// A boxed error from a backend, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with anycri's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The category of an error; each matches one gRPC status code.
///
/// ```
/// use anycri_core::ErrorKind;
/// assert_eq!(ErrorKind::NotFound.code(), tonic::Code::NotFound);
/// assert_eq!(ErrorKind::from_code(tonic::Code::Unavailable), ErrorKind::Unavailable);
/// assert_eq!(ErrorKind::DeadlineExceeded.to_string(), "deadline exceeded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation was cancelled, typically by the caller.
    Cancelled,
    /// An error with no better category.
    Unknown,
    /// The caller sent something invalid (a bad ID, a malformed config, a bad endpoint).
    InvalidArgument,
    /// The deadline expired before the operation completed.
    DeadlineExceeded,
    /// The pod, container, image or other object does not exist.
    NotFound,
    /// The object (a name, a container) already exists.
    AlreadyExists,
    /// The caller may not do this.
    PermissionDenied,
    /// A resource (memory, a size limit, a quota) is exhausted.
    ResourceExhausted,
    /// The object is not in a state that allows the operation.
    FailedPrecondition,
    /// The operation was aborted, e.g. by a concurrent conflicting one.
    Aborted,
    /// A value was outside its valid range.
    OutOfRange,
    /// The runtime or backend does not implement the operation.
    Unimplemented,
    /// The runtime or backend failed internally.
    Internal,
    /// The runtime cannot be reached right now; trying again may work.
    Unavailable,
    /// Data was lost or corrupted.
    DataLoss,
    /// The caller is not authenticated.
    Unauthenticated,
}

impl ErrorKind {
    /// The gRPC code of this category.
    pub fn code(self) -> tonic::Code {
        use tonic::Code as C;
        match self {
            ErrorKind::Cancelled => C::Cancelled,
            ErrorKind::Unknown => C::Unknown,
            ErrorKind::InvalidArgument => C::InvalidArgument,
            ErrorKind::DeadlineExceeded => C::DeadlineExceeded,
            ErrorKind::NotFound => C::NotFound,
            ErrorKind::AlreadyExists => C::AlreadyExists,
            ErrorKind::PermissionDenied => C::PermissionDenied,
            ErrorKind::ResourceExhausted => C::ResourceExhausted,
            ErrorKind::FailedPrecondition => C::FailedPrecondition,
            ErrorKind::Aborted => C::Aborted,
            ErrorKind::OutOfRange => C::OutOfRange,
            ErrorKind::Unimplemented => C::Unimplemented,
            ErrorKind::Internal => C::Internal,
            ErrorKind::Unavailable => C::Unavailable,
            ErrorKind::DataLoss => C::DataLoss,
            ErrorKind::Unauthenticated => C::Unauthenticated,
        }
    }

    /// The category of a gRPC code (`Ok` has none and maps to `Unknown`).
    pub fn from_code(code: tonic::Code) -> Self {
        use tonic::Code as C;
        match code {
            C::Cancelled => ErrorKind::Cancelled,
            C::InvalidArgument => ErrorKind::InvalidArgument,
            C::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            C::NotFound => ErrorKind::NotFound,
            C::AlreadyExists => ErrorKind::AlreadyExists,
            C::PermissionDenied => ErrorKind::PermissionDenied,
            C::ResourceExhausted => ErrorKind::ResourceExhausted,
            C::FailedPrecondition => ErrorKind::FailedPrecondition,
            C::Aborted => ErrorKind::Aborted,
            C::OutOfRange => ErrorKind::OutOfRange,
            C::Unimplemented => ErrorKind::Unimplemented,
            C::Internal => ErrorKind::Internal,
            C::Unavailable => ErrorKind::Unavailable,
            C::DataLoss => ErrorKind::DataLoss,
            C::Unauthenticated => ErrorKind::Unauthenticated,
            C::Ok | C::Unknown => ErrorKind::Unknown,
        }
    }

    /// A short lower-case name ("not found").
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unknown => "unknown error",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::ResourceExhausted => "resource exhausted",
            ErrorKind::FailedPrecondition => "failed precondition",
            ErrorKind::Aborted => "aborted",
            ErrorKind::OutOfRange => "out of range",
            ErrorKind::Unimplemented => "unimplemented",
            ErrorKind::Internal => "internal error",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DataLoss => "data loss",
            ErrorKind::Unauthenticated => "unauthenticated",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a runtime, a backend or anycri itself.
///
/// Every variant is a category that matches a gRPC status code ([`Error::kind`],
/// [`Error::code`]); `message` is the human-readable text (the gRPC status message when the
/// error came from a runtime), and `source` keeps the backend's own error. Converting a
/// [`tonic::Status`] into an `Error` and back gives the same status: code, message, details
/// and metadata.
///
/// Tools branch on the category, never on message text:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
/// use anycri_core::{Error, ErrorKind, RuntimeService, api::StopContainerRequest};
/// let runtime = anycri_fake::FakeRuntime::new();
/// let request = StopContainerRequest { container_id: String::new(), timeout: 0 };
/// match runtime.stop_container(request).await {
///     Ok(_) => {}
///     Err(e) if e.is_not_found() => {} // already gone
///     Err(e) if e.kind() == ErrorKind::InvalidArgument => println!("bad request: {}", e.message()),
///     Err(e) => return Err(e.context("stopping the container")),
/// }
///
/// let err = Error::not_found("container \"abc\" not found").context("stopping pod web");
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(!err.is_retryable());
/// assert_eq!(err.to_string(), "not found: stopping pod web: container \"abc\" not found");
/// # Ok(()) }
/// ```
///
/// A runtime's gRPC status goes through unchanged:
///
/// ```
/// use anycri_core::Error;
/// let status = tonic::Status::unavailable("connection refused");
/// let err = Error::from(status.clone());
/// assert!(err.is_retryable());
/// assert_eq!(err.as_status().map(|s| s.message()), Some("connection refused"));
/// let back = tonic::Status::from(err);
/// assert_eq!((back.code(), back.message()), (status.code(), status.message()));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::Cancelled`].
    #[error("cancelled: {message}")]
    Cancelled {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Unknown`].
    #[error("{message}")]
    Unknown {
        /// What happened.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::InvalidArgument`].
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong, naming the field.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::DeadlineExceeded`].
    #[error("deadline exceeded: {message}")]
    DeadlineExceeded {
        /// What timed out.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::NotFound`].
    #[error("not found: {message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::AlreadyExists`].
    #[error("already exists: {message}")]
    AlreadyExists {
        /// What exists already.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::PermissionDenied`].
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// What was denied.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::ResourceExhausted`].
    #[error("resource exhausted: {message}")]
    ResourceExhausted {
        /// What ran out.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::FailedPrecondition`].
    #[error("failed precondition: {message}")]
    FailedPrecondition {
        /// Which state prevented the operation.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Aborted`].
    #[error("aborted: {message}")]
    Aborted {
        /// What was aborted.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::OutOfRange`].
    #[error("out of range: {message}")]
    OutOfRange {
        /// What was out of range.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend does not implement `operation`; its capability reports it as absent.
    #[error("unimplemented: {message}")]
    Unimplemented {
        /// The CRI operation ("Exec", "CheckpointContainer").
        operation: String,
        /// The backend that lacks it ("docker", "containerd 1.6.20").
        backend: String,
        /// The full message (from the runtime, or built from `operation` and `backend`).
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Internal`].
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Unavailable`].
    #[error("unavailable: {message}")]
    Unavailable {
        /// What could not be reached.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::DataLoss`].
    #[error("data loss: {message}")]
    DataLoss {
        /// What was lost.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
    /// See [`ErrorKind::Unauthenticated`].
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// What needed authentication.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

macro_rules! kinds {
    ($($variant:ident => $ctor:ident),* $(,)?) => {
        impl Error {
            /// An error of category `kind` with `message` and no source.
            pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
                Self::with_source_opt(kind, message.into(), None)
            }

            /// An error of category `kind` with `message`, keeping `source`.
            pub fn with_source(
                kind: ErrorKind,
                message: impl Into<String>,
                source: impl Into<BoxError>,
            ) -> Self {
                Self::with_source_opt(kind, message.into(), Some(source.into()))
            }

            fn with_source_opt(kind: ErrorKind, message: String, source: Option<BoxError>) -> Self {
                match kind {
                    ErrorKind::Unimplemented => Error::Unimplemented {
                        operation: String::new(),
                        backend: String::new(),
                        message,
                        source,
                    },
                    $(ErrorKind::$variant => Error::$variant { message, source },)*
                }
            }

            /// The category.
            pub fn kind(&self) -> ErrorKind {
                match self {
                    Error::Unimplemented { .. } => ErrorKind::Unimplemented,
                    $(Error::$variant { .. } => ErrorKind::$variant,)*
                }
            }

            /// The message without the category prefix (the gRPC status message).
            pub fn message(&self) -> &str {
                match self {
                    Error::Unimplemented { message, .. } => message,
                    $(Error::$variant { message, .. } => message,)*
                }
            }

            fn source_ref(&self) -> Option<&BoxError> {
                match self {
                    Error::Unimplemented { source, .. } => source.as_ref(),
                    $(Error::$variant { source, .. } => source.as_ref(),)*
                }
            }

            $(
                #[doc = concat!("An [`ErrorKind::", stringify!($variant), "`] error with `message`.")]
                pub fn $ctor(message: impl Into<String>) -> Self {
                    Self::new(ErrorKind::$variant, message)
                }
            )*
        }
    };
}

kinds! {
    Cancelled => cancelled,
    Unknown => unknown,
    InvalidArgument => invalid_argument,
    DeadlineExceeded => deadline_exceeded,
    NotFound => not_found,
    AlreadyExists => already_exists,
    PermissionDenied => permission_denied,
    ResourceExhausted => resource_exhausted,
    FailedPrecondition => failed_precondition,
    Aborted => aborted,
    OutOfRange => out_of_range,
    Internal => internal,
    Unavailable => unavailable,
    DataLoss => data_loss,
    Unauthenticated => unauthenticated,
}

impl Error {
    /// `operation` is not implemented by `backend`.
    ///
    /// ```
    /// let err = anycri_core::Error::unimplemented("Attach", "my-runtime");
    /// assert!(err.is_unimplemented());
    /// assert_eq!(err.message(), "Attach is not implemented by my-runtime");
    /// ```
    pub fn unimplemented(operation: impl Into<String>, backend: impl Into<String>) -> Self {
        let operation = operation.into();
        let backend = backend.into();
        let message = format!("{operation} is not implemented by {backend}");
        Error::Unimplemented {
            operation,
            backend,
            message,
            source: None,
        }
    }

    /// The gRPC code of the category.
    pub fn code(&self) -> tonic::Code {
        self.kind().code()
    }

    /// Whether the same call may succeed if made again unchanged: the runtime was unreachable,
    /// the call was aborted by a conflict, or a deadline expired.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unavailable | ErrorKind::Aborted | ErrorKind::DeadlineExceeded
        )
    }

    /// Whether this is a [`ErrorKind::NotFound`] error.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Whether this is a [`ErrorKind::Unimplemented`] error.
    pub fn is_unimplemented(&self) -> bool {
        self.kind() == ErrorKind::Unimplemented
    }

    /// The `tonic::Status` this error was made from, if it was.
    pub fn as_status(&self) -> Option<&tonic::Status> {
        self.source_ref()
            .and_then(|s| s.downcast_ref::<tonic::Status>())
    }

    /// The same error with `context: ` put before its message.
    pub fn context(self, context: impl fmt::Display) -> Self {
        let kind = self.kind();
        let message = format!("{context}: {}", self.message());
        match self {
            Error::Unimplemented {
                operation,
                backend,
                source,
                ..
            } => Error::Unimplemented {
                operation,
                backend,
                message,
                source,
            },
            other => {
                let source = other.into_source();
                Self::with_source_opt(kind, message, source)
            }
        }
    }

    fn into_source(self) -> Option<BoxError> {
        match self {
            Error::Unimplemented { source, .. } => source,
            Error::Cancelled { source, .. }
            | Error::Unknown { source, .. }
            | Error::InvalidArgument { source, .. }
            | Error::DeadlineExceeded { source, .. }
            | Error::NotFound { source, .. }
            | Error::AlreadyExists { source, .. }
            | Error::PermissionDenied { source, .. }
            | Error::ResourceExhausted { source, .. }
            | Error::FailedPrecondition { source, .. }
            | Error::Aborted { source, .. }
            | Error::OutOfRange { source, .. }
            | Error::Internal { source, .. }
            | Error::Unavailable { source, .. }
            | Error::DataLoss { source, .. }
            | Error::Unauthenticated { source, .. } => source,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let kind = ErrorKind::from_code(status.code());
        let message = status.message().to_owned();
        Error::with_source_opt(kind, message, Some(Box::new(status)))
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        // An error that came from a status (and kept its message) goes back as that very
        // status, with its details and metadata.
        if let Some(status) = err.as_status()
            && status.code() == err.code()
            && status.message() == err.message()
        {
            return status.clone();
        }
        tonic::Status::new(err.code(), err.message().to_owned())
    }
}

impl From<tokio::time::error::Elapsed> for Error {
    fn from(e: tokio::time::error::Elapsed) -> Self {
        Error::with_source(ErrorKind::DeadlineExceeded, "operation timed out", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trip_keeps_code_message_and_metadata() {
        let mut status = tonic::Status::with_details(
            tonic::Code::NotFound,
            "container \"abc\" not found",
            bytes_of(b"detail"),
        );
        status
            .metadata_mut()
            .insert("x-anycri", "1".parse().unwrap());
        let err = Error::from(status);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "container \"abc\" not found");
        assert_eq!(err.to_string(), "not found: container \"abc\" not found");
        let back = tonic::Status::from(err);
        assert_eq!(back.code(), tonic::Code::NotFound);
        assert_eq!(back.message(), "container \"abc\" not found");
        assert_eq!(back.details(), b"detail");
        assert_eq!(back.metadata().get("x-anycri").unwrap(), "1");
    }

    fn bytes_of(b: &'static [u8]) -> tonic::codegen::Bytes {
        tonic::codegen::Bytes::from_static(b)
    }

    #[test]
    fn every_code_maps_both_ways() {
        use tonic::Code as C;
        for code in [
            C::Cancelled,
            C::Unknown,
            C::InvalidArgument,
            C::DeadlineExceeded,
            C::NotFound,
            C::AlreadyExists,
            C::PermissionDenied,
            C::ResourceExhausted,
            C::FailedPrecondition,
            C::Aborted,
            C::OutOfRange,
            C::Unimplemented,
            C::Internal,
            C::Unavailable,
            C::DataLoss,
            C::Unauthenticated,
        ] {
            let err = Error::from(tonic::Status::new(code, "m"));
            assert_eq!(err.code(), code);
            let fresh = Error::new(err.kind(), "m");
            let status = tonic::Status::from(fresh);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "m");
        }
    }

    #[test]
    fn unimplemented_names_operation_and_backend() {
        let err = Error::unimplemented("Exec", "docker");
        assert!(err.is_unimplemented());
        assert_eq!(err.message(), "Exec is not implemented by docker");
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }

    #[test]
    fn retryable_categories() {
        assert!(Error::unavailable("x").is_retryable());
        assert!(Error::deadline_exceeded("x").is_retryable());
        assert!(!Error::not_found("x").is_retryable());
        assert!(!Error::invalid_argument("x").is_retryable());
    }

    #[test]
    fn context_keeps_kind_and_source() {
        let err = Error::from(tonic::Status::not_found("gone")).context("stopping pod p1");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.message(), "stopping pod p1: gone");
        assert!(std::error::Error::source(&err).is_some());
        // The message changed, so the status is rebuilt with the new message.
        assert_eq!(tonic::Status::from(err).message(), "stopping pod p1: gone");
    }
}
