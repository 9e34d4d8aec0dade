//! `GrpcRuntime` against a recorded CRI-O: CRI-O itself cannot be installed here, so a small
//! server on a unix socket plays its part. Like CRI-O, which splits one listener with cmux
//! (HTTP/2 carrying `content-type: application/grpc` goes to gRPC, HTTP/1.1 to its info
//! mux), the fake answers both protocols on the same socket: gRPC `Version` (every other RPC
//! is UNIMPLEMENTED) and the HTTP/1.1 info endpoint (`/info`, `/config`, `/containers/<id>`).
//!
//! The recorded bodies follow CRI-O's own shapes: the JSON field names of `ContainerInfo`,
//! `CrioInfo` and `IDMappings` in cri-o's `pkg/types/types.go` (ID ranges use
//! containers/storage's `idtools.IDMap` names), the handlers and error texts in
//! `server/inspect.go` (`/config` is the TOML config served as `application/toml`, an
//! unknown container is a 404 with a "can't find the container with id ..." text, Go's
//! `http.Error` style), and the cmux split in `cmd/crio/main.go`. The same fake, answering
//! `Version` as containerd, checks that nothing is sent to the info endpoint elsewhere.
//!
//! Beside the info endpoint, the fake replays answers recorded from CRI-O 1.36.3 and
//! cri-dockerd 0.4.3 (built and run by hand; neither is in a package registry) where they
//! differ from other runtimes, and the tests check that anycri maps them to its one
//! behaviour (`docs/runtimes.md`).

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use anycri_api::{
    prost::Message,
    v1::{
        ContainerStatusRequest, ExecRequest, ExecResponse, ExecSyncRequest, ExecSyncResponse,
        StreamContainersRequest, VersionResponse,
    },
};
use anycri_core::{ErrorKind, RuntimeFlavour, RuntimeService};
use anycri_grpc::GrpcRuntime;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{
    Method, Request, Response, StatusCode, Version,
    body::Incoming,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
};
use tokio::{net::UnixListener, task::JoinHandle};

/// The container ID the recorded `/containers/<id>` knows.
const KNOWN_CONTAINER: &str = "abc123";

/// `GET /info`: overlay storage, the systemd cgroup manager and, with no user-namespace
/// mappings configured, the full identity range CRI-O reports by default.
const INFO_JSON: &str = r#"{"storage_driver":"overlay","storage_image":"","storage_root":"/var/lib/containers/storage","cgroup_driver":"systemd","default_id_mappings":{"uids":[{"container_id":0,"host_id":0,"size":4294967295}],"gids":[{"container_id":0,"host_id":0,"size":4294967295}]}}"#;

/// `GET /config`: the start of what CRI-O renders from its live configuration.
const CONFIG_TOML: &str = r#"[crio]
  root = "/var/lib/containers/storage"
  runroot = "/run/containers/storage"
  storage_driver = "overlay"
  log_dir = "/var/log/crio/pods"
  version_file = "/var/run/crio/version"

[crio.api]
  listen = "/var/run/crio/crio.sock"

[crio.runtime]
  default_runtime = "crun"
  cgroup_manager = "systemd"
  conmon_cgroup = "pod"
"#;

/// A container of a host-network pod: CRI-O gives such a sandbox no IPs, and Go encodes the
/// nil slice as `null`.
const HOST_NETWORK_CONTAINER: &str = "hostnet1";

/// `GET /containers/abc123`, fields in CRI-O's order (Go sorts map keys). `host_network`
/// is a newer addition the client does not model and must ignore.
const CONTAINER_JSON: &str = r#"{"name":"k8s_web_web-0_default_5d3c8e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6_0","pid":4242,"image":"docker.io/library/nginx:1.27","image_ref":"9bea9f2796e236cb18c2b3ad561ff29f655d1001f9ec7247a0bc5e08d25652a1","created_time":1718000000123456789,"labels":{"io.kubernetes.container.name":"web","io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"default","io.kubernetes.pod.uid":"5d3c8e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6"},"annotations":{"io.kubernetes.container.hash":"6b1d9f3e","io.kubernetes.container.restartCount":"0"},"crio_annotations":{"io.kubernetes.cri-o.ContainerID":"abc123","io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.cri-o.SandboxID":"f00dfeed"},"log_path":"/var/log/pods/default_web-0_5d3c8e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6/web/0.log","root":"/var/lib/containers/storage/overlay/3c5e7a9b/merged","sandbox":"f00dfeed","ip_addresses":["10.85.0.12","1100:200::c"],"host_network":false}"#;

/// `GET /containers/hostnet1`.
const HOST_NETWORK_CONTAINER_JSON: &str = r#"{"name":"k8s_agent_node-agent-x7k2p_kube-system_0b6f1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d_0","pid":777,"image":"registry.k8s.io/node-agent:v1","image_ref":"4e1d7f0c2a9b8d3e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e","created_time":1718000100000000000,"labels":{"io.kubernetes.container.name":"agent"},"annotations":{},"crio_annotations":{"io.kubernetes.cri-o.ContainerType":"container"},"log_path":"/var/log/pods/kube-system_node-agent-x7k2p_0b6f1c2d-3e4f-4a5b-9c6d-7e8f9a0b1c2d/agent/0.log","root":"/var/lib/containers/storage/overlay/8d2f4b6a/merged","sandbox":"beefcafe","ip_addresses":null,"host_network":true}"#;

type Body = BoxBody<Bytes, Infallible>;

/// What the fake saw.
#[derive(Default)]
struct Seen {
    /// Every gRPC method path, in order.
    grpc: Mutex<Vec<String>>,
    /// HTTP/1.1 requests of any path.
    http: AtomicUsize,
    /// `GET /info` requests.
    info: AtomicUsize,
}

impl Seen {
    fn grpc_paths(&self) -> Vec<String> {
        self.grpc.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// A fake runtime serving on `<tempdir>/crio.sock` until dropped.
struct FakeRuntime {
    endpoint: String,
    seen: Arc<Seen>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a fake whose `Version` reports `runtime_name`.
fn start(runtime_name: &'static str) -> FakeRuntime {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crio.sock");
    let listener = UnixListener::bind(&path).expect("bind the fake's socket");
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn(serve(listener, runtime_name, seen.clone()));
    FakeRuntime {
        endpoint: format!("unix://{}", path.display()),
        seen,
        task,
        _dir: dir,
    }
}

/// Accept connections; each one may speak HTTP/2 (gRPC) or HTTP/1.1 (info).
async fn serve(listener: UnixListener, runtime_name: &'static str, seen: Arc<Seen>) {
    while let Ok((stream, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(req, runtime_name, seen.clone()));
            // A client hanging up only ends its own connection.
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// cmux's split: HTTP/2 with a gRPC content type is gRPC, anything else the info mux.
async fn route(
    req: Request<Incoming>,
    runtime_name: &'static str,
    seen: Arc<Seen>,
) -> Result<Response<Body>, Infallible> {
    let is_grpc = req.version() == Version::HTTP_2
        && req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        return Ok(info_endpoint(req.method(), req.uri().path(), &seen));
    }
    let path = req.uri().path().to_owned();
    if let Ok(mut paths) = seen.grpc.lock() {
        paths.push(path.clone());
    }
    // Read the request to its end, as a gRPC server does, before answering.
    let _ = req.into_body().collect().await;
    const RS: &str = "/runtime.v1.RuntimeService/";
    let rpc = path.strip_prefix(RS).unwrap_or(&path);
    Ok(match (runtime_name, rpc) {
        (_, "Version") => grpc_ok(&VersionResponse {
            version: "0.1.0".into(),
            runtime_name: runtime_name.into(),
            runtime_version: "1.31.0".into(),
            runtime_api_version: "v1".into(),
        }),
        // CRI-O 1.36.3 (conmon 2.1.6) when an ExecSync outlives its timeout: no error, exit
        // code -1 and conmon's text on stderr.
        ("cri-o", "ExecSync") => grpc_ok(&ExecSyncResponse {
            stdout: Vec::new(),
            stderr: b"command timed out".to_vec(),
            exit_code: -1,
        }),
        // CRI-O with enable_pod_events = false: GetContainerEvents returns at once, so the
        // stream ends with OK and no event.
        ("cri-o", "GetContainerEvents") => grpc_end_of_stream(),
        // CRI-O with enable_criu_support = false (server/container_checkpoint.go: a plain Go
        // error, so gRPC's Unknown).
        ("cri-o", "CheckpointContainer") => {
            grpc_status(2, "checkpoint/restore support not available")
        }
        // cri-dockerd 0.4.3: streaming URLs without a scheme, a missing container as Unknown
        // with Docker's text.
        ("docker", "Exec") => grpc_ok(&ExecResponse {
            url: "//127.0.0.1:10011/cri/exec/Aq3xYtQk".into(),
        }),
        ("docker", "ContainerStatus") => grpc_status(
            2,
            "Error response from daemon: No such container: 0123456789ab",
        ),
        _ => grpc_status(12, "unknown method for service runtime.v1.RuntimeService"),
    })
}

/// A server stream that ends at once: no message, `grpc-status: 0` in the trailers-only
/// headers.
fn grpc_end_of_stream() -> Response<Body> {
    let mut response = grpc_response(Empty::new().boxed());
    response.headers_mut().insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from_static("0"),
    );
    response
}

/// CRI-O's HTTP/1.1 info mux.
fn info_endpoint(method: &Method, path: &str, seen: &Seen) -> Response<Body> {
    seen.http.fetch_add(1, Ordering::SeqCst);
    if method != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method Not Allowed\n".into(),
        );
    }
    match path {
        "/info" => {
            seen.info.fetch_add(1, Ordering::SeqCst);
            text(StatusCode::OK, "application/json", INFO_JSON.into())
        }
        "/config" => text(StatusCode::OK, "application/toml", CONFIG_TOML.into()),
        _ => match path.strip_prefix("/containers/") {
            Some(KNOWN_CONTAINER) => {
                text(StatusCode::OK, "application/json", CONTAINER_JSON.into())
            }
            Some(HOST_NETWORK_CONTAINER) => text(
                StatusCode::OK,
                "application/json",
                HOST_NETWORK_CONTAINER_JSON.into(),
            ),
            Some(id) => text(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                format!("can't find the container with id {id}\n"),
            ),
            None => text(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n".into(),
            ),
        },
    }
}

/// A plain HTTP response.
fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A gRPC response carrying one message, then `grpc-status: 0` in the trailers.
fn grpc_ok(message: &impl Message) -> Response<Body> {
    let payload = message.encode_to_vec();
    let Ok(len) = u32::try_from(payload.len()) else {
        return grpc_status(13, "message too large");
    };
    // Length-prefixed message: no compression, big-endian length, the protobuf bytes.
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(0);
    frame.put_u32(len);
    frame.put_slice(&payload);
    let mut trailers = HeaderMap::new();
    trailers.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from_static("0"),
    );
    let body = Full::new(frame.freeze())
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    grpc_response(body)
}

/// A trailers-only gRPC response: the status travels in the headers, with no body.
fn grpc_status(code: u16, message: &'static str) -> Response<Body> {
    let mut response = grpc_response(Empty::new().boxed());
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from(code),
    );
    headers.insert(
        HeaderName::from_static("grpc-message"),
        HeaderValue::from_static(message),
    );
    response
}

fn grpc_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

async fn connect(fake: &FakeRuntime) -> GrpcRuntime {
    GrpcRuntime::connect(fake.endpoint.clone())
        .await
        .expect("connect and handshake")
}

#[tokio::test]
async fn handshake_recognises_crio() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    assert_eq!(rt.flavour(), Some(RuntimeFlavour::CriO));
    let version = rt.version_info().expect("version after the handshake");
    assert_eq!(version.runtime_name, "cri-o");
    assert_eq!(version.runtime_version, "1.31.0");
    assert_eq!(version.runtime_api_version, "v1");
    assert_eq!(
        fake.seen.grpc_paths(),
        ["/runtime.v1.RuntimeService/Version"]
    );
    assert_eq!(fake.seen.http.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn info_decodes_storage_cgroups_and_id_mappings() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let info = rt.crio_info().await.expect("crio_info");
    assert_eq!(info.storage_driver, "overlay");
    assert_eq!(info.storage_root, "/var/lib/containers/storage");
    assert_eq!(info.storage_image, "");
    assert_eq!(info.cgroup_driver, "systemd");
    let mappings = info.default_id_mappings.expect("default_id_mappings");
    for ranges in [&mappings.uids, &mappings.gids] {
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0].container_id, 0);
        assert_eq!(ranges[0].host_id, 0);
        assert_eq!(ranges[0].size, u32::MAX);
    }
    assert_eq!(fake.seen.info.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn config_is_the_toml_text() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let config = rt.crio_config().await.expect("crio_config");
    assert_eq!(config, CONFIG_TOML);
    assert!(config.starts_with("[crio]\n"));
    assert!(config.contains("[crio.runtime]\n  default_runtime = \"crun\"\n"));
}

#[tokio::test]
async fn container_info_decodes_every_field() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let info = rt
        .crio_container_info(KNOWN_CONTAINER)
        .await
        .expect("crio_container_info");
    assert_eq!(
        info.name,
        "k8s_web_web-0_default_5d3c8e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6_0"
    );
    assert_eq!(info.pid, 4242);
    assert_eq!(info.image, "docker.io/library/nginx:1.27");
    assert_eq!(
        info.image_ref,
        "9bea9f2796e236cb18c2b3ad561ff29f655d1001f9ec7247a0bc5e08d25652a1"
    );
    assert_eq!(info.created_time, 1_718_000_000_123_456_789);
    assert_eq!(info.labels.len(), 4);
    assert_eq!(info.labels["io.kubernetes.pod.name"], "web-0");
    assert_eq!(info.labels["io.kubernetes.container.name"], "web");
    assert_eq!(info.annotations.len(), 2);
    assert_eq!(
        info.annotations["io.kubernetes.container.restartCount"],
        "0"
    );
    assert_eq!(info.crio_annotations.len(), 3);
    assert_eq!(
        info.crio_annotations["io.kubernetes.cri-o.ContainerType"],
        "container"
    );
    assert_eq!(
        info.log_path,
        "/var/log/pods/default_web-0_5d3c8e0a-1b2c-4d5e-8f90-a1b2c3d4e5f6/web/0.log"
    );
    assert_eq!(
        info.root,
        "/var/lib/containers/storage/overlay/3c5e7a9b/merged"
    );
    assert_eq!(info.sandbox, "f00dfeed");
    assert_eq!(info.ip_addresses, ["10.85.0.12", "1100:200::c"]);
}

#[tokio::test]
async fn container_info_of_a_host_network_pod_has_no_ips() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let info = rt
        .crio_container_info(HOST_NETWORK_CONTAINER)
        .await
        .expect("crio_container_info with \"ip_addresses\": null");
    assert_eq!(info.pid, 777);
    assert_eq!(info.sandbox, "beefcafe");
    assert!(info.ip_addresses.is_empty());
    assert!(info.annotations.is_empty());
}

#[tokio::test]
async fn container_info_unknown_and_invalid_ids() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;

    let err = rt
        .crio_container_info("nope42")
        .await
        .expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains("can't find the container with id nope42"),
        "{err}"
    );
    assert_eq!(fake.seen.http.load(Ordering::SeqCst), 1);

    for bad in ["../etc", "", "abc/123", "abc?x=1"] {
        let err = rt.crio_container_info(bad).await.expect_err("invalid id");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}: {err}");
    }
    // Rejected before any request was made.
    assert_eq!(fake.seen.http.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn stream_rpc_falls_back_to_the_unary_list() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let Err(err) = rt
        .stream_containers(StreamContainersRequest { filter: None })
        .await
    else {
        panic!("StreamContainers and ListContainers are both UNIMPLEMENTED here");
    };
    assert_eq!(err.kind(), ErrorKind::Unimplemented, "{err}");
    // The stream was tried first, then the unary list.
    assert_eq!(
        fake.seen.grpc_paths(),
        [
            "/runtime.v1.RuntimeService/Version",
            "/runtime.v1.RuntimeService/StreamContainers",
            "/runtime.v1.RuntimeService/ListContainers",
        ]
    );
}

#[tokio::test]
async fn info_endpoint_is_crio_only() {
    let fake = start("containerd");
    let rt = connect(&fake).await;
    assert_eq!(rt.flavour(), Some(RuntimeFlavour::Containerd));

    let err = rt.crio_info().await.expect_err("not CRI-O");
    assert_eq!(err.kind(), ErrorKind::Unimplemented, "{err}");
    let err = rt.crio_config().await.expect_err("not CRI-O");
    assert_eq!(err.kind(), ErrorKind::Unimplemented, "{err}");
    let err = rt
        .crio_container_info(KNOWN_CONTAINER)
        .await
        .expect_err("not CRI-O");
    assert_eq!(err.kind(), ErrorKind::Unimplemented, "{err}");

    assert_eq!(fake.seen.info.load(Ordering::SeqCst), 0);
    assert_eq!(fake.seen.http.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn crio_exec_sync_timeout_is_deadline_exceeded() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let err = rt
        .exec_sync(ExecSyncRequest {
            container_id: KNOWN_CONTAINER.into(),
            cmd: vec!["sleep".into(), "60".into()],
            timeout: 1,
        })
        .await
        .expect_err("a timed-out ExecSync is an error through anycri");
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
}

#[tokio::test]
async fn crio_capabilities_say_what_is_turned_off() {
    let fake = start("cri-o");
    let rt = connect(&fake).await;
    let info = anycri_core::discover(&rt).await.expect("discover");
    assert!(!info.capabilities.container_events);
    assert!(
        info.capability_reasons["container_events"].contains("enable_pod_events"),
        "{:?}",
        info.capability_reasons
    );
    assert!(!info.capabilities.checkpoint_container);
    assert!(
        info.capability_reasons["checkpoint_container"]
            .contains("checkpoint/restore support not available"),
        "{:?}",
        info.capability_reasons
    );
}

#[tokio::test]
async fn cri_dockerd_urls_get_a_scheme_and_missing_containers_are_not_found() {
    let fake = start("docker");
    let rt = connect(&fake).await;
    assert_eq!(rt.flavour(), Some(RuntimeFlavour::CriDockerd));
    let exec = rt
        .exec(ExecRequest {
            container_id: KNOWN_CONTAINER.into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .expect("exec");
    assert_eq!(exec.url, "http://127.0.0.1:10011/cri/exec/Aq3xYtQk");
    let err = rt
        .container_status(ContainerStatusRequest {
            container_id: "0123456789ab".into(),
            verbose: false,
        })
        .await
        .expect_err("a missing container");
    assert!(err.is_not_found(), "{err}");
    assert!(err.message().contains("No such container"), "{err}");
}
