//! Serve any anycri backend as a CRI v1 endpoint: [`CriServer`] implements tonic's
//! `RuntimeService` and `ImageService` servers by forwarding every RPC to an
//! `Arc<dyn RuntimeService>` and an `Arc<dyn ImageService>`, so the kubelet, crictl, critest
//! or any CRI client can use the Docker shim, the fake, or a proxied runtime over a unix socket.
//!
//! Errors go out as the very status the backend produced (anycri's `Error` converts to
//! `tonic::Status` losslessly); `Stream*` RPCs and `GetContainerEvents` stream what the
//! backend streams. [`serve_unix`] owns the socket: parent directory created, a stale socket
//! replaced (a live one refused), mode 0660 by default, removed again after a graceful
//! shutdown in which in-flight calls finish, and answers a message over the size limit with
//! RESOURCE_EXHAUSTED as other gRPC servers do (tonic alone says OUT_OF_RANGE). It also answers
//! grpc-core clients (Python's grpcio, C++, Ruby, ...) with their default options, whose
//! percent-encoded unix-socket `:authority` h2 alone refuses (see [`AuthorityFix`]).
//!
//! Any backend becomes a CRI endpoint: here the in-memory fake, served on a socket and
//! reached through anycri's own gRPC client (crictl or the kubelet would do as well):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anycri_core::Result<()> {
//! use std::sync::Arc;
//! use anycri_core::{RuntimeService, RuntimeFlavour};
//! use anycri_server::{CriServer, ServeOptions, serve_unix};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let socket = dir.path().join("cri.sock");
//! let backend = Arc::new(anycri_fake::FakeRuntime::new());
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve_unix(
//!     CriServer::new(backend.clone(), backend),
//!     socket.clone(),
//!     ServeOptions::default(),
//!     async { stopped.await.unwrap_or(()) },
//! ));
//! while !socket.exists() {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//! }
//!
//! // `crictl --runtime-endpoint unix://<socket> version` would print the same.
//! let client = anycri_grpc::GrpcRuntime::connect(format!("unix://{}", socket.display())).await?;
//! assert_eq!(client.version(Default::default()).await?.runtime_name, "anycri-fake");
//! assert_eq!(client.flavour(), Some(RuntimeFlavour::Anycri));
//!
//! // A graceful stop: in-flight calls finish, then the socket is removed.
//! stop.send(()).unwrap();
//! server.await.expect("the server task")?;
//! assert!(!socket.exists());
//! # Ok(()) }
//! ```

mod authority;
mod limits;
mod serve;

use std::{pin::Pin, sync::Arc};

use anycri_api::v1::{
    image_service_server::{ImageService as ImageServer, ImageServiceServer},
    runtime_service_server::{RuntimeService as RuntimeServer, RuntimeServiceServer},
    *,
};
use anycri_core::{ImageService, RuntimeService};
use futures::{Stream, StreamExt, TryStreamExt};
use tonic::{Request, Response, Status};

pub use authority::AuthorityFix;
pub use serve::{ServeOptions, bind_unix, group_id, serve_unix, serve_unix_listener};

/// A response stream as tonic's server wants it.
pub type StatusStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The kubelet's default message size limit; CRI-O allows 80 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The CRI gRPC services over an anycri backend.
///
/// [`serve_unix`] serves it on a unix socket; to serve it elsewhere (another listener, beside
/// services of your own), add its two tonic services to a tonic server:
///
/// ```
/// use std::sync::Arc;
/// use anycri_server::{CriServer, DEFAULT_MAX_MESSAGE_SIZE};
/// let backend = Arc::new(anycri_fake::FakeRuntime::new());
/// let cri = CriServer::new(backend.clone(), backend);
/// let router = tonic::transport::Server::builder()
///     .add_service(cri.runtime_service(DEFAULT_MAX_MESSAGE_SIZE))
///     .add_service(cri.image_service(DEFAULT_MAX_MESSAGE_SIZE));
/// // router.serve_with_incoming(listener_stream).await
/// # drop(router);
/// ```
#[derive(Clone)]
pub struct CriServer {
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
}

impl std::fmt::Debug for CriServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriServer").finish_non_exhaustive()
    }
}

impl CriServer {
    /// Serve `runtime` and `images` (often the same backend).
    pub fn new(runtime: Arc<dyn RuntimeService>, images: Arc<dyn ImageService>) -> Self {
        CriServer { runtime, images }
    }

    /// The tonic RuntimeService server, with `max_message_size` for both directions.
    pub fn runtime_service(&self, max_message_size: usize) -> RuntimeServiceServer<Self> {
        RuntimeServiceServer::new(self.clone())
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size)
    }

    /// The tonic ImageService server, with `max_message_size` for both directions.
    pub fn image_service(&self, max_message_size: usize) -> ImageServiceServer<Self> {
        ImageServiceServer::new(self.clone())
            .max_decoding_message_size(max_message_size)
            .max_encoding_message_size(max_message_size)
    }
}

/// The longest status message sent. A backend's message may quote the request (an image
/// reference, a label) at any length, and a status travels in HTTP/2 headers, which clients
/// limit (h2 and grpc-go to 16 KiB by default; the message is percent-encoded on the way, up
/// to three times as long): a longer message is cut, saying how much was left out.
const MAX_STATUS_MESSAGE: usize = 2048;

/// The status that answers `err`, its message cut to [`MAX_STATUS_MESSAGE`].
fn status(err: anycri_core::Error) -> Status {
    let status = Status::from(err);
    let message = status.message();
    if message.len() <= MAX_STATUS_MESSAGE {
        return status;
    }
    let mut cut = MAX_STATUS_MESSAGE;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let message = format!(
        "{}... ({} more bytes)",
        &message[..cut],
        message.len() - cut
    );
    Status::with_details_and_metadata(
        status.code(),
        message,
        status.details().to_vec().into(),
        status.metadata().clone(),
    )
}

/// Return types by RPC shape (see `anycri_core::ops::shape`).
#[allow(non_camel_case_types)]
mod shape {
    pub type unary<T> = tonic::Response<T>;
    pub type stream<T> = tonic::Response<super::StatusStream<T>>;
}

macro_rules! body {
    (unary $backend:ident $method:ident, $self:ident, $request:ident) => {
        $self
            .$backend
            .$method($request.into_inner())
            .await
            .map(Response::new)
            .map_err(status)
    };
    (stream $backend:ident $method:ident, $self:ident, $request:ident) => {{
        let stream = $self
            .$backend
            .$method($request.into_inner())
            .await
            .map_err(status)?;
        let stream: StatusStream<_> = stream.map_err(status).boxed();
        Ok(Response::new(stream))
    }};
}

macro_rules! server_impl {
    ($trait:ident, $backend:ident; { $($types:tt)* } $($kind:ident $method:ident($req:ident) -> $resp:ident = $op:ident;)*) => {
        #[tonic::async_trait]
        impl $trait for CriServer {
            $($types)*
            $(
                async fn $method(&self, request: Request<$req>) -> Result<shape::$kind<$resp>, Status> {
                    body!($kind $backend $method, self, request)
                }
            )*
        }
    };
}

anycri_core::for_each_runtime_rpc!(server_impl, RuntimeServer, runtime; {
    type StreamPodSandboxesStream = StatusStream<StreamPodSandboxesResponse>;
    type StreamContainersStream = StatusStream<StreamContainersResponse>;
    type StreamContainerStatsStream = StatusStream<StreamContainerStatsResponse>;
    type StreamPodSandboxStatsStream = StatusStream<StreamPodSandboxStatsResponse>;
    type GetContainerEventsStream = StatusStream<ContainerEventResponse>;
    type StreamPodSandboxMetricsStream = StatusStream<StreamPodSandboxMetricsResponse>;
});
anycri_core::for_each_image_rpc!(server_impl, ImageServer, images; {
    type StreamImagesStream = StatusStream<StreamImagesResponse>;
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_status_messages_are_cut() {
        let short = status(anycri_core::Error::not_found("pod x not found"));
        assert_eq!(short.code(), tonic::Code::NotFound);
        assert_eq!(short.message(), "pod x not found");
        // A message quoting a 1 MiB input, with a multi-byte character at the cut.
        let long = format!("invalid image {}", "é".repeat(512 * 1024));
        let cut = status(anycri_core::Error::invalid_argument(long.clone()));
        assert_eq!(cut.code(), tonic::Code::InvalidArgument);
        assert!(cut.message().len() < MAX_STATUS_MESSAGE + 32);
        assert!(cut.message().starts_with("invalid image é"));
        assert!(cut.message().ends_with("more bytes)"), "{}", cut.message());
    }
}
