//! A socket that speaks gRPC without the CRI (a containerd whose CRI plugin is disabled
//! answers every CRI call with "unknown service runtime.v1.RuntimeService"): connecting
//! fails with an error that suggests the CRI plugin may be disabled. The fake answers every
//! call that way (containerd's introspection service too), so the `containerd` feature
//! cannot find a containerd behind it either and gives the same hint.

use std::convert::Infallible;

use anycri_core::ErrorKind;
use anycri_grpc::GrpcRuntime;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};
use tokio::net::UnixListener;

/// gRPC's trailers-only answer: Unimplemented, as grpc-go words an unknown service.
async fn unknown_service(req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let service = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "12")
        .header("grpc-message", format!("unknown service {service}"))
        .body(Empty::new())
        .unwrap())
}

#[tokio::test]
async fn unknown_cri_service_suggests_the_cri_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-cri.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(unknown_service))
                    .await;
            });
        }
    });
    let err = GrpcRuntime::connect(format!("unix://{}", path.display()))
        .await
        .unwrap_err();
    server.abort();
    assert_eq!(err.kind(), ErrorKind::Unimplemented, "{err}");
    let message = err.message();
    assert!(
        message.contains("unknown service runtime.v1.RuntimeService"),
        "{message}"
    );
    assert!(message.contains("CRI plugin may be disabled"), "{message}");
    assert!(message.contains("disabled_plugins"), "{message}");
}
