//! What a misbehaving client can send `serve_unix`, and what it gets back: request bodies that
//! are not the method's protobuf message (sent with a raw HTTP/2 client, frame by frame), unknown
//! services and methods, messages over the server's size limit in either direction, and clients
//! that go away in the middle of a slow call or of a `GetContainerEvents` stream. Each gets a
//! clear gRPC status of the right code (or the call simply ends), nothing panics, the backend's
//! call is cancelled rather than left running, and the server answers the next call.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Once,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anycri_core::{
    ContainerConfigBuilder, ErrorKind, Layer, Layered, PodSandboxConfigBuilder, Result,
    RuntimeService, RuntimeServiceExt, api::*, layer::Call,
};
use anycri_server::{CriServer, ServeOptions, serve_unix};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{Notify, oneshot};

/// The server's message limit in these tests.
const LIMIT: usize = 64 * 1024;

/// Panics on tokio's worker threads, where the server's tasks run (a panicking task would
/// otherwise go unnoticed; the tests' own assertions fail on their own threads).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// Holds every `Status` call until the client goes away, and says when one starts and when
/// one is dropped (cancelled) unfinished.
#[derive(Default)]
struct HoldStatus {
    started: Notify,
    cancelled: Notify,
    cancellations: AtomicUsize,
}

/// Runs when a held call's future is dropped.
struct OnDrop<'a>(&'a HoldStatus);

impl Drop for OnDrop<'_> {
    fn drop(&mut self) {
        self.0.cancellations.fetch_add(1, Ordering::SeqCst);
        self.0.cancelled.notify_one();
    }
}

/// The layer over the fake that holds `Status` calls.
#[derive(Clone, Default)]
struct Hold(Arc<HoldStatus>);

impl Layer for Hold {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        if call.operation.name == "Status" {
            let _guard = OnDrop(&self.0);
            self.0.started.notify_one();
            std::future::pending::<()>().await;
        }
        attempt().await
    }
}

/// A server on a fresh socket, over the fake with the [`Hold`] layer, limited to [`LIMIT`].
struct Served {
    path: PathBuf,
    fake: Arc<anycri_fake::FakeRuntime>,
    hold: Arc<HoldStatus>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    count_panics();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cri.sock");
    let fake = Arc::new(anycri_fake::FakeRuntime::new());
    let hold = Hold::default();
    let backend = Arc::new(Layered::new(fake.clone(), hold.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions {
        max_message_size: LIMIT,
        ..Default::default()
    };
    let task = tokio::spawn(serve_unix(
        CriServer::new(backend.clone(), backend),
        path.clone(),
        options,
        async move {
            let _ = stopped.await;
        },
    ));
    for _ in 0..500 {
        if tokio::net::UnixStream::connect(&path).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Served {
        path,
        fake,
        hold: hold.0,
        stop,
        task,
        _dir: dir,
    }
}

impl Served {
    /// A `GrpcRuntime` whose own limit is far above the server's, so the server's is the one
    /// that matters.
    async fn client(&self) -> anycri_grpc::GrpcRuntime {
        anycri_grpc::GrpcRuntime::builder(format!("unix://{}", self.path.display()))
            .max_message_size(64 * 1024 * 1024)
            .reconnect_for(Duration::ZERO)
            .connect()
            .await
            .unwrap()
    }

    /// The server still answers: a fresh connection's Version works.
    async fn answers(&self) {
        let v = self
            .client()
            .await
            .version(Default::default())
            .await
            .unwrap();
        assert_eq!(v.runtime_name, anycri_fake::RUNTIME_NAME);
    }

    /// Graceful shutdown ends (nothing in flight is left behind), the socket is gone, and
    /// nothing panicked.
    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("graceful shutdown hung: a call or stream was left in flight")
            .unwrap()
            .unwrap();
        assert!(!self.path.exists());
        assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a server task panicked");
    }
}

/// A gRPC length-prefixed message: compression flag, 4-byte big-endian length, bytes.
fn frame(flag: u8, declared_len: u32, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + body.len());
    b.put_u8(flag);
    b.put_u32(declared_len);
    b.put_slice(body);
    b.freeze()
}

fn message(body: &[u8]) -> Bytes {
    frame(0, body.len() as u32, body)
}

/// What came back from a raw call.
#[derive(Debug)]
struct Reply {
    http: u16,
    grpc_status: Option<i32>,
    grpc_message: String,
}

fn grpc_status(headers: &http::HeaderMap) -> Option<(i32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some((code, message))
}

/// One HTTP/2 request to `path` with a gRPC `content_type` and `body`, over a new connection,
/// built by hand (h2, no gRPC library) so it can carry what no gRPC client sends.
async fn raw_call(socket: &Path, path: &str, content_type: &str, body: Bytes) -> Reply {
    let io = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (client, connection) = h2::client::handshake(io).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(body, true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .expect("no response")
        .unwrap();
    let (parts, mut recv) = response.into_parts();
    let mut status = grpc_status(&parts.headers);
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.unwrap();
        let _ = recv.flow_control().release_capacity(chunk.len());
    }
    if status.is_none() {
        status = recv
            .trailers()
            .await
            .unwrap()
            .as_ref()
            .and_then(grpc_status);
    }
    drop(client);
    connection.abort();
    Reply {
        http: parts.status.as_u16(),
        grpc_status: status.as_ref().map(|s| s.0),
        grpc_message: status.map(|s| s.1).unwrap_or_default(),
    }
}

async fn grpc_call(socket: &Path, path: &str, body: Bytes) -> Reply {
    raw_call(socket, path, "application/grpc", body).await
}

const VERSION: &str = "/runtime.v1.RuntimeService/Version";

/// Wait for `what`; a generous bound only turns a hang into a failure.
async fn wait(what: &str, f: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("waited in vain for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_statuses() {
    let served = serve().await;
    let s = &served.path;
    // The well-formed request, for contrast: VersionRequest { version: "v1" }.
    let ok = grpc_call(s, VERSION, message(b"\x0a\x02v1")).await;
    assert_eq!((ok.http, ok.grpc_status), (200, Some(0)), "{ok:?}");

    let internal = tonic::Code::Internal as i32;
    for (what, body) in [
        ("bytes that are no protobuf", message(&[0xff; 8])),
        // field 1 (a string) sent as a varint: valid protobuf, not a VersionRequest
        ("a field of the wrong wire type", message(b"\x08\x01")),
        ("a string that is not UTF-8", message(b"\x0a\x02\xff\xfe")),
        (
            "a length beyond the end of the message",
            message(b"\x0a\x10v1"),
        ),
        // the frame says 10 bytes, 3 come, then the stream ends
        ("a truncated frame", frame(0, 10, b"\x0a\x01v")),
        ("half a frame header", Bytes::from_static(&[0, 0])),
        // compressed, without saying how (grpc-encoding)
        (
            "the compressed flag without an encoding",
            frame(1, 4, b"\x0a\x02v1"),
        ),
        ("an unknown flag", frame(7, 4, b"\x0a\x02v1")),
    ] {
        let reply = grpc_call(s, VERSION, body).await;
        assert_eq!(reply.grpc_status, Some(internal), "{what}: {reply:?}");
        assert!(!reply.grpc_message.is_empty(), "{what}: says why");
        served.answers().await;
    }
    // A server-streaming RPC's request is decoded the same way.
    let reply = grpc_call(
        s,
        "/runtime.v1.RuntimeService/StreamContainers",
        message(&[0xff; 3]),
    )
    .await;
    assert_eq!(reply.grpc_status, Some(internal), "{reply:?}");

    // Not gRPC at all: a JSON body, whose first byte is no gRPC frame flag.
    let reply = raw_call(s, VERSION, "application/json", Bytes::from_static(b"{}")).await;
    assert_eq!(reply.grpc_status, Some(internal), "{reply:?}");
    served.answers().await;
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_unimplemented() {
    let served = serve().await;
    let unimplemented = tonic::Code::Unimplemented as i32;
    for path in [
        "/runtime.v1.RuntimeService/NoSuchMethod",
        "/runtime.v1.ImageService/Version",
        // the CRI before v1, which old kubelets and crictls try first
        "/runtime.v1alpha2.RuntimeService/Version",
        "/no.such.Service/Call",
        "/",
    ] {
        let reply = grpc_call(&served.path, path, message(b"")).await;
        assert_eq!(reply.grpc_status, Some(unimplemented), "{path}: {reply:?}");
        served.answers().await;
    }
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused() {
    let served = serve().await;
    let client = served.client().await;
    // A request over the server's limit.
    let err = client
        .version(VersionRequest {
            version: "v".repeat(LIMIT + 1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    assert!(err.message().contains("too large"), "{err}");
    // A frame that claims 4 GiB: refused from its header, nothing is buffered.
    let reply = grpc_call(&served.path, VERSION, frame(0, u32::MAX, b"\x0a\x02v1")).await;
    assert_eq!(
        reply.grpc_status,
        Some(tonic::Code::ResourceExhausted as i32),
        "{reply:?}"
    );
    // Just under the limit passes.
    client
        .version(VersionRequest {
            version: "v".repeat(LIMIT - 16),
        })
        .await
        .unwrap();

    // A response over the limit: three pods with 30 KiB annotations each, listed at once.
    for i in 0..3 {
        let config = PodSandboxConfigBuilder::new(format!("big-{i}"), "bad-input")
            .annotation("big", "x".repeat(30 * 1024))
            .build();
        client.run_pod(config).await.unwrap();
    }
    let err = client
        .list_pod_sandbox(Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    // Each one alone fits.
    let pods = served
        .fake
        .list_pod_sandbox(Default::default())
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 3);
    for p in pods.items {
        let one = client
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    id: p.id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
        assert_eq!(one.items.len(), 1);
    }
    drop(client);
    served.answers().await;
    served.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_call_cancels_it() {
    let served = serve().await;
    let hold = served.hold.clone();

    // The client gives up on a slow call (its future is dropped: the stream is reset).
    let client = served.client().await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.status(Default::default()).await }
    });
    wait("the held call to start", hold.started.notified()).await;
    call.abort();
    wait("the held call to be cancelled", hold.cancelled.notified()).await;
    assert_eq!(hold.cancellations.load(Ordering::SeqCst), 1);
    // The same connection goes on working.
    client.version(Default::default()).await.unwrap();

    // The client's connection closes under a slow call.
    let socket = served.path.clone();
    let call = tokio::spawn(async move {
        grpc_call(&socket, "/runtime.v1.RuntimeService/Status", message(b"")).await
    });
    wait("the held call to start", hold.started.notified()).await;
    call.abort();
    wait("the held call to be cancelled", hold.cancelled.notified()).await;
    assert_eq!(hold.cancellations.load(Ordering::SeqCst), 2);
    served.answers().await;
    drop(client);
    served.shut_down().await;
}

const IMAGE: &str = "example.com/bad-input:1";

/// A pod with one container (running `sleep 3600`) on the fake, through `client`.
async fn run(client: &anycri_grpc::GrpcRuntime, name: &str) -> anycri_core::PodAndContainer {
    client
        .run_pod_and_container(
            PodSandboxConfigBuilder::new(name, "bad-input").build(),
            ContainerConfigBuilder::new("c", IMAGE)
                .command(["sleep", "3600"])
                .build(),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_an_event_stream_ends_it() {
    let served = serve().await;
    let client = served.client().await;
    served.fake.add_image(IMAGE).unwrap();
    let mut events = client
        .get_container_events(Default::default())
        .await
        .unwrap();
    let ids = run(&client, "events").await;
    let pod = ids.pod_sandbox_id;
    let event = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(event.container_id, ids.container_id);
    // The client goes away mid-stream; the server goes on producing events for nobody.
    drop(events);
    client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .unwrap();

    // A raw client that closes its whole connection in the middle of a stream.
    {
        let io = tokio::net::UnixStream::connect(&served.path).await.unwrap();
        let (client, connection) = h2::client::handshake(io).await.unwrap();
        let connection = tokio::spawn(connection);
        let mut client = client.ready().await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri("http://localhost/runtime.v1.RuntimeService/GetContainerEvents")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut send) = client.send_request(request, false).unwrap();
        send.send_data(message(b""), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        connection.abort();
    }
    client.remove_pod_with_containers(&pod).await.unwrap();

    // A new subscriber gets the events that follow.
    let mut events = client
        .get_container_events(Default::default())
        .await
        .unwrap();
    let ids = run(&client, "events-2").await;
    let event = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(event.container_id, ids.container_id);
    drop(events);
    drop(client);
    // Graceful shutdown does not wait for the streams the clients left.
    served.shut_down().await;
}

/// Timeouts of `i64::MAX` seconds reach the server (the client caps the `grpc-timeout` it
/// sends, which tonic cannot encode beyond 99,999,999 hours, instead of panicking), and an
/// answer whose message quotes a 32 KiB input arrives with its code and the message cut,
/// instead of as a status too large for the client's header limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_timeouts_and_huge_messages() {
    let served = serve().await;
    let client = served.client().await;
    let err = client
        .exec_sync(ExecSyncRequest {
            container_id: "unknown".into(),
            cmd: vec!["true".into()],
            timeout: i64::MAX,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    client
        .stop_container(StopContainerRequest {
            container_id: "unknown".into(),
            timeout: i64::MAX,
        })
        .await
        .unwrap();
    let _ = client
        .checkpoint_container(CheckpointContainerRequest {
            container_id: "unknown".into(),
            location: "/tmp/x.tar".into(),
            timeout: i64::MAX,
        })
        .await;
    let err = client
        .container_status(ContainerStatusRequest {
            // Over any client's header limit, under the server's message limit.
            container_id: "x".repeat(LIMIT / 2),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().len() < 4096, "{} bytes", err.message().len());
    assert!(err.message().ends_with("more bytes)"), "{}", err.message());
    served.answers().await;
    served.shut_down().await;
}
