//! A socket that accepts connections but never answers (containerd's `.ttrpc` socket, a
//! wrong service): `connect` fails within its connect timeout with DeadlineExceeded, not
//! after the two-minute request timeout.

use std::time::{Duration, Instant};

use anycri_core::ErrorKind;
use anycri_grpc::GrpcRuntime;

#[tokio::test]
async fn connect_to_a_silent_socket_fails_within_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    // Accept and hold connections, reading nothing and writing nothing.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let err = GrpcRuntime::builder(format!("unix://{}", path.display()))
        .connect_timeout(Duration::from_millis(800))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(err.to_string().contains("connect timeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}
