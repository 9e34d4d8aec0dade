//! The socket `serve_unix` owns: parent directory created, mode 0660, a stale socket
//! replaced, a live one refused, the socket removed after a graceful shutdown.

use std::{os::unix::fs::PermissionsExt, sync::Arc, time::Duration};

use anycri_core::RuntimeService;
use anycri_server::{CriServer, ServeOptions, serve_unix};

mod common;
use common::wait_for;

fn server() -> CriServer {
    let fake = Arc::new(anycri_fake::FakeRuntime::new());
    CriServer::new(fake.clone(), fake)
}

#[tokio::test]
async fn socket_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/cri.sock");
    // A stale socket file from a crashed server.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_unix(
        server(),
        path.clone(),
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for(&path).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    // A second server on the same, live socket is refused.
    let err = serve_unix(server(), path.clone(), ServeOptions::default(), async {})
        .await
        .unwrap_err();
    assert_eq!(err.kind(), anycri_core::ErrorKind::AlreadyExists, "{err}");

    // A client works, then the server stops and removes its socket.
    let client = anycri_grpc::GrpcRuntime::connect(format!("unix://{}", path.display()))
        .await
        .unwrap();
    let v = client.version(Default::default()).await.unwrap();
    assert_eq!(v.runtime_name, anycri_fake::RUNTIME_NAME);
    stop.send(()).unwrap();
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!path.exists());
}
