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
pub use serve::{ServeOptions, group_id, serve_unix};

/// A response stream as tonic's server wants it.
pub type StatusStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The kubelet's default message size limit; CRI-O allows 80 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// The CRI gRPC services over an anycri backend.
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
            .map_err(Status::from)
    };
    (stream $backend:ident $method:ident, $self:ident, $request:ident) => {{
        let stream = $self
            .$backend
            .$method($request.into_inner())
            .await
            .map_err(Status::from)?;
        let stream: StatusStream<_> = stream.map_err(Status::from).boxed();
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
