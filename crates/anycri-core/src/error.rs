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
/// One struct: a category ([`Error::kind`], one per gRPC status code), the human-readable
/// `message` (the gRPC status message when the error came from a runtime), where it came
/// from ([`Error::operation`], [`Error::endpoint`], [`Error::backend`]), and the backend's
/// own error as its [`source`](std::error::Error::source). Converting a [`tonic::Status`]
/// into an `Error` and back gives the same status: code, message, details and metadata.
/// New fields can come without breaking callers: the fields are private, read through
/// methods and set through constructors.
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
///
/// // Where it came from, shown after the message.
/// let err = Error::unknown("exit status 1")
///     .with_origin("ExecSync", "unix:///run/containerd/containerd.sock");
/// assert_eq!(err.operation(), Some("ExecSync"));
/// assert_eq!(
///     err.to_string(),
///     "unknown error: exit status 1 (ExecSync on unix:///run/containerd/containerd.sock)"
/// );
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
pub struct Error {
    kind: ErrorKind,
    message: String,
    operation: Option<String>,
    endpoint: Option<String>,
    backend: Option<String>,
    source: Option<BoxError>,
}

/// `{:?}` is the message and its causes, one per line, so that `fn main() -> anycri::Result<()>`
/// prints something a person can read (a runtime's gRPC status, whose message is already in
/// the error's, is not repeated); `{:#?}` shows every field.
///
/// ```
/// use anycri_core::{Error, ErrorKind};
/// let err = Error::from(tonic::Status::unavailable("connection refused"))
///     .with_origin("Version", "unix:///run/containerd/containerd.sock");
/// assert_eq!(
///     format!("{err:?}"),
///     "unavailable: connection refused (Version on unix:///run/containerd/containerd.sock)"
/// );
/// assert!(format!("{err:#?}").contains("kind: Unavailable"));
///
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let err = Error::with_source(ErrorKind::Internal, "reading the checkpoint", io);
/// assert_eq!(format!("{err:?}"), "internal error: reading the checkpoint\n\ncaused by: no such file");
/// ```
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            write!(f, "{self}")?;
            let mut source = std::error::Error::source(self);
            if let Some(status) = self.as_status()
                && self.message.ends_with(status.message())
            {
                source = std::error::Error::source(status);
            }
            if source.is_some() {
                writeln!(f)?;
            }
            while let Some(cause) = source {
                write!(f, "\ncaused by: {cause}")?;
                source = cause.source();
            }
            return Ok(());
        }
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(operation) = &self.operation {
            s.field("operation", operation);
        }
        if let Some(endpoint) = &self.endpoint {
            s.field("endpoint", endpoint);
        }
        if let Some(backend) = &self.backend {
            s.field("backend", backend);
        }
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        match (&self.operation, &self.endpoint) {
            (Some(operation), Some(endpoint)) => write!(f, " ({operation} on {endpoint})"),
            (Some(operation), None) => write!(f, " ({operation})"),
            (None, Some(endpoint)) => write!(f, " (on {endpoint})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

macro_rules! constructors {
    ($($variant:ident => $ctor:ident),* $(,)?) => {
        impl Error {
            $(
                #[doc = concat!("An [`ErrorKind::", stringify!($variant), "`] error with `message`.")]
                pub fn $ctor(message: impl Into<String>) -> Self {
                    Self::new(ErrorKind::$variant, message)
                }
            )*
        }
    };
}

constructors! {
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
    /// An error of category `kind` with `message` and no source.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            operation: None,
            endpoint: None,
            backend: None,
            source: None,
        }
    }

    /// An error of category `kind` with `message`, keeping `source`.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error {
            source: Some(source.into()),
            ..Self::new(kind, message)
        }
    }

    /// `operation` is not implemented by `backend`.
    ///
    /// ```
    /// let err = anycri_core::Error::unimplemented("Attach", "my-runtime");
    /// assert!(err.is_unimplemented());
    /// assert_eq!(err.message(), "Attach is not implemented by my-runtime");
    /// assert_eq!((err.operation(), err.backend()), (Some("Attach"), Some("my-runtime")));
    /// ```
    pub fn unimplemented(operation: impl Into<String>, backend: impl Into<String>) -> Self {
        let operation = operation.into();
        let backend = backend.into();
        Error {
            message: format!("{operation} is not implemented by {backend}"),
            operation: Some(operation),
            backend: Some(backend),
            ..Self::new(ErrorKind::Unimplemented, "")
        }
    }

    /// The same error, naming the CRI operation (`"ContainerStatus"`) and the endpoint
    /// (`"unix:///run/containerd/containerd.sock"`) it came from. An origin already set is
    /// kept: the innermost call knows best.
    pub fn with_origin(
        mut self,
        operation: impl Into<String>,
        endpoint: impl Into<String>,
    ) -> Self {
        if self.operation.is_none() {
            self.operation = Some(operation.into());
        }
        if self.endpoint.is_none() {
            self.endpoint = Some(endpoint.into());
        }
        self
    }

    /// The same error, naming the backend that produced it (`"docker 28.5.2"`) unless one
    /// is named already.
    pub fn with_backend(mut self, backend: impl Into<String>) -> Self {
        if self.backend.is_none() {
            self.backend = Some(backend.into());
        }
        self
    }

    /// The category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the category prefix or origin (the gRPC status message).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The CRI operation that failed, when known (`"ExecSync"`).
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }

    /// The endpoint the failed call went to, when known.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The backend that produced the error, when named (always for
    /// [`Error::unimplemented`]).
    pub fn backend(&self) -> Option<&str> {
        self.backend.as_deref()
    }

    /// The gRPC status details (`grpc-status-details-bin`) of the runtime's answer, when the
    /// error came from one and it had any.
    pub fn details(&self) -> Option<&[u8]> {
        self.as_status()
            .map(|s| s.details())
            .filter(|d| !d.is_empty())
    }

    /// The gRPC code of the category.
    pub fn code(&self) -> tonic::Code {
        self.kind.code()
    }

    /// Whether the same call may succeed if made again unchanged: the runtime was unreachable,
    /// the call was aborted by a conflict, or a deadline expired.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::Aborted | ErrorKind::DeadlineExceeded
        )
    }

    /// Whether this is a [`ErrorKind::NotFound`] error.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Whether this is a [`ErrorKind::Unimplemented`] error.
    pub fn is_unimplemented(&self) -> bool {
        self.kind == ErrorKind::Unimplemented
    }

    /// The `tonic::Status` this error was made from, if it was.
    pub fn as_status(&self) -> Option<&tonic::Status> {
        self.source
            .as_ref()
            .and_then(|s| s.downcast_ref::<tonic::Status>())
    }

    /// The same error with `context: ` put before its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let kind = ErrorKind::from_code(status.code());
        let message = status.message().to_owned();
        Error::with_source(kind, message, status)
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
