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

/// `--socket-group`: the socket belongs to the group given, mode 0660.
#[tokio::test]
async fn socket_group() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cri.sock");
    // A group other than ours where we may give one (root); else our own.
    let gid = if is_root() {
        anycri_server::group_id("nogroup").unwrap_or(65534)
    } else {
        std::fs::metadata(dir.path()).unwrap().gid()
    };
    let options = ServeOptions {
        group: Some(gid),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_unix(server(), path.clone(), options, async move {
        let _ = stopped.await;
    }));
    wait_for(&path).await;
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.gid(), gid);
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    stop.send(()).unwrap();
    let _ = task.await;
    assert_eq!(anycri_server::group_id("0").unwrap(), 0);
    assert_eq!(anycri_server::group_id("root").unwrap(), 0);
    assert_eq!(
        anycri_server::group_id("no-such-group-anycri")
            .unwrap_err()
            .kind(),
        anycri_core::ErrorKind::InvalidArgument
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}
