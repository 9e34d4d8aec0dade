//! The streaming server and client against an in-memory provider (no runtime needed): the
//! channel protocols as a v5, v4 and base64 peer sees them, stdin closing, resize, exit
//! statuses, port-forward data and errors, bad tokens, a client that leaves, and shutdown.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anycri_core::{
    Error, Result,
    api::{AttachRequest, ExecRequest, PortForwardRequest},
};
use anycri_streaming::{
    PortStream, StreamIo, StreamingConfig, StreamingProvider, StreamingServer,
    client::{self, ExecOptions, Transport},
};
use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
use tokio_util::sync::CancellationToken;

/// Commands: `echo WORDS`, `err WORDS` (to stderr), `exit N`, `late N` (prints, exits N a
/// moment later unless the client leaves first), `cat`, `size` (the first resize), `width`
/// (exits with the first resize's width), `wait` (until the client leaves), `fail`.
#[derive(Default)]
struct Provider {
    gone: AtomicUsize,
}

#[async_trait]
impl StreamingProvider for Provider {
    async fn exec(&self, _container_id: &str, cmd: &[String], mut io: StreamIo) -> Result<i32> {
        let rest = cmd[1..].join(" ") + "\n";
        match cmd[0].as_str() {
            "echo" => io
                .stdout
                .as_mut()
                .unwrap()
                .write_all(rest.as_bytes())
                .await
                .unwrap(),
            "err" => io
                .stderr
                .as_mut()
                .unwrap()
                .write_all(rest.as_bytes())
                .await
                .unwrap(),
            "exit" => return Ok(cmd[1].parse().unwrap()),
            "cat" => {
                let mut stdin = io.stdin.take().unwrap();
                tokio::io::copy(&mut stdin, io.stdout.as_mut().unwrap())
                    .await
                    .unwrap();
            }
            "size" => {
                let size = io.resize.as_mut().unwrap().recv().await.unwrap();
                let text = format!("{}x{}\n", size.width, size.height);
                io.stdout
                    .as_mut()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .await
                    .unwrap();
            }
            "late" => {
                io.stdout
                    .as_mut()
                    .unwrap()
                    .write_all(b"late\n")
                    .await
                    .unwrap();
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(300)) => {
                        return Ok(cmd[1].parse().unwrap());
                    }
                    () = io.client_gone.cancelled() => {
                        return Err(Error::cancelled("client gone before the exit"));
                    }
                }
            }
            "width" => {
                let size = io.resize.as_mut().unwrap().recv().await.unwrap();
                return Ok(i32::from(size.width));
            }
            "wait" => {
                io.client_gone.cancelled().await;
                self.gone.fetch_add(1, Ordering::SeqCst);
                return Err(Error::cancelled("client gone"));
            }
            _ => return Err(Error::failed_precondition("container c1 is not running")),
        }
        Ok(0)
    }

    async fn attach(&self, _container_id: &str, mut io: StreamIo) -> Result<()> {
        io.stdout
            .as_mut()
            .unwrap()
            .write_all(b"attached\n")
            .await
            .unwrap();
        Ok(())
    }

    async fn port_forward(
        &self,
        _pod: &str,
        port: u16,
        stream: PortStream,
        client_gone: CancellationToken,
    ) -> Result<()> {
        if port != 7 {
            return Err(Error::unavailable(format!("nothing listens on {port}")));
        }
        let (mut r, mut w) = tokio::io::split(stream);
        tokio::select! {
            _ = tokio::io::copy(&mut r, &mut w) => {}
            _ = client_gone.cancelled() => {}
        }
        Ok(())
    }
}

async fn server(config: StreamingConfig) -> (StreamingServer, Arc<Provider>) {
    let provider = Arc::new(Provider::default());
    let server = StreamingServer::start(config, provider.clone())
        .await
        .unwrap();
    (server, provider)
}

fn exec_request(cmd: &str, stdin: bool, stderr: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: "c1".into(),
        cmd: cmd.split(' ').map(String::from).collect(),
        stdin,
        stdout: true,
        stderr,
        tty,
    }
}

/// Both client transports, and the protocol each negotiates with this server.
const TRANSPORTS: [(Transport, &str); 2] = [
    (Transport::WebSocket, "v5.channel.k8s.io"),
    (Transport::Spdy, "v4.channel.k8s.io"),
];

async fn run(
    server: &StreamingServer,
    cmd: &str,
    transport: Transport,
) -> (String, String, Result<i32>) {
    let url = server
        .get_exec(exec_request(cmd, false, true, false))
        .unwrap()
        .url;
    let mut session = client::connect_exec_with(&url, ExecOptions::default(), transport)
        .await
        .unwrap();
    assert_eq!(session.transport(), transport);
    let expected = TRANSPORTS.iter().find(|t| t.0 == transport).unwrap().1;
    assert_eq!(session.protocol(), expected);
    let (mut out, mut err) = (String::new(), String::new());
    let (mut so, mut se) = (
        session.stdout.take().unwrap(),
        session.stderr.take().unwrap(),
    );
    let (a, b) = tokio::join!(so.read_to_string(&mut out), se.read_to_string(&mut err));
    a.unwrap();
    b.unwrap();
    (out, err, session.wait().await)
}

#[tokio::test]
async fn exec_output_and_exit_codes() {
    let (server, _) = server(StreamingConfig::default()).await;
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    for (t, _) in TRANSPORTS {
        let (out, err, code) = run(&server, "echo hello world", t).await;
        assert_eq!(
            (out.as_str(), err.as_str(), code.unwrap()),
            ("hello world\n", "", 0),
            "{t:?}"
        );
        let (out, err, code) = run(&server, "err oops", t).await;
        assert_eq!(
            (out.as_str(), err.as_str(), code.unwrap()),
            ("", "oops\n", 0),
            "{t:?}"
        );
        assert_eq!(run(&server, "exit 7", t).await.2.unwrap(), 7, "{t:?}");
        let err = run(&server, "fail", t).await.2.unwrap_err();
        assert!(err.message().contains("is not running"), "{t:?}: {err}");
    }
}

#[tokio::test]
async fn stdin_closes_and_resize_arrives() {
    let (server, _) = server(StreamingConfig::default()).await;
    // Auto sends stdin over SPDY.
    let url = server
        .get_exec(exec_request("cat", true, false, false))
        .unwrap()
        .url;
    let options = ExecOptions {
        stderr: false,
        ..ExecOptions::default().with_stdin()
    };
    let session = client::connect_exec(&url, options).await.unwrap();
    assert_eq!(session.transport(), Transport::Spdy);
    drop(session);
    for (t, _) in TRANSPORTS {
        stdin_and_resize(&server, t).await;
    }
}

async fn stdin_and_resize(server: &StreamingServer, transport: Transport) {
    let url = server
        .get_exec(exec_request("cat", true, false, false))
        .unwrap()
        .url;
    // The options match the request (no stderr): over SPDY a stream the server does not
    // expect is never accepted.
    let options = ExecOptions {
        stderr: false,
        ..ExecOptions::default().with_stdin()
    };
    let mut session = client::connect_exec_with(&url, options, transport)
        .await
        .unwrap();
    assert!(session.can_close_stdin());
    let mut stdin = session.stdin.take().unwrap();
    let payload = vec![b'z'; 1_000_000];
    let sent = payload.clone();
    tokio::spawn(async move {
        stdin.write_all(&sent).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let mut out = Vec::new();
    session
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert!(out == payload);
    assert_eq!(session.wait().await.unwrap(), 0);

    let url = server
        .get_exec(exec_request("size", true, false, true))
        .unwrap()
        .url;
    let mut session = client::connect_exec_with(&url, ExecOptions::interactive_tty(), transport)
        .await
        .unwrap();
    session.resize(132, 43).await.unwrap();
    let mut out = String::new();
    session
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "132x43\n");
    assert_eq!(session.wait().await.unwrap(), 0);
}

/// `wait()` right away, with output nobody reads: the connection stays open until the
/// command ends, so the exit code arrives (a close sent early would end the command).
#[tokio::test]
async fn wait_keeps_the_connection_until_the_status() {
    let (server, provider) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("late 3", false, true, false))
        .unwrap()
        .url;
    let session = client::connect_exec(&url, ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(session.wait().await.unwrap(), 3);

    // With stdin the caller never closed: waiting does not close it either.
    for (t, _) in TRANSPORTS {
        let url = server
            .get_exec(exec_request("late 4", true, true, false))
            .unwrap()
            .url;
        let session = client::connect_exec_with(&url, ExecOptions::default().with_stdin(), t)
            .await
            .unwrap();
        assert_eq!(session.wait().await.unwrap(), 4, "{t:?}");
    }
    assert_eq!(provider.gone.load(Ordering::SeqCst), 0);
}

/// A `Resizer` sends sizes while another task waits, and fails once the session is over.
#[tokio::test]
async fn resizer_works_while_waiting() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("width", true, false, true))
        .unwrap()
        .url;
    let session = client::connect_exec(&url, ExecOptions::interactive_tty())
        .await
        .unwrap();
    let resizer = session.resizer();
    let waiting = tokio::spawn(session.wait());
    resizer.clone().resize(97, 30).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 97);
    let err = resizer.resize(1, 1).await.unwrap_err();
    assert_eq!(err.kind(), anycri_core::ErrorKind::Unavailable, "{err}");

    // A dropped session is not kept open by its resizer.
    let url = server
        .get_exec(exec_request("width", true, false, true))
        .unwrap()
        .url;
    let session = client::connect_exec(&url, ExecOptions::interactive_tty())
        .await
        .unwrap();
    let resizer = session.resizer();
    drop(session);
    let err = resizer.resize(5, 5).await.unwrap_err();
    assert_eq!(err.kind(), anycri_core::ErrorKind::Unavailable, "{err}");
}

/// A raw WebSocket peer offering only `protocol`.
async fn raw_peer(
    url: &str,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).unwrap(),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        protocol
    );
    ws
}

/// Every data message a peer gets until the server closes: (channel, payload).
async fn drain(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    base64: bool,
) -> Vec<(u8, Vec<u8>)> {
    use base64::Engine as _;
    let mut frames = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        match message {
            Message::Binary(b) if !base64 => frames.push((b[0], b[1..].to_vec())),
            Message::Text(t) if base64 => frames.push((
                t.as_bytes()[0] - b'0',
                base64::engine::general_purpose::STANDARD
                    .decode(&t.as_bytes()[1..])
                    .unwrap(),
            )),
            Message::Close(_) => break,
            other => panic!("unexpected message {other:?}"),
        }
    }
    frames
}

#[tokio::test]
async fn v4_peers_get_status_json_on_channel_3() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("exit 3", false, false, false))
        .unwrap()
        .url;
    let mut ws = raw_peer(&url, "v4.channel.k8s.io").await;
    let frames = drain(&mut ws, false).await;
    // The kubelet's opening empty frame on stdout, then the status.
    assert_eq!(frames[0], (1, Vec::new()));
    let (channel, status) = &frames[1];
    assert_eq!(*channel, 3);
    let status: serde_json::Value = serde_json::from_slice(status).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
}

#[tokio::test]
async fn base64_peers_get_text_frames() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("echo b64", false, false, false))
        .unwrap()
        .url;
    let mut ws = raw_peer(&url, "v4.base64.channel.k8s.io").await;
    let frames = drain(&mut ws, true).await;
    assert!(frames.contains(&(1, b"b64\n".to_vec())), "{frames:?}");
    let status = &frames.iter().find(|(c, _)| *c == 3).unwrap().1;
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(status).unwrap()["status"],
        "Success"
    );
}

#[tokio::test]
async fn malformed_frames_and_unknown_protocols_do_not_break_the_server() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("cat", true, false, false))
        .unwrap()
        .url;
    let mut ws = raw_peer(&url, "v5.channel.k8s.io").await;
    ws.send(Message::binary(Vec::new())).await.unwrap();
    ws.send(Message::text("not binary")).await.unwrap();
    ws.send(Message::binary(vec![4, b'{'])).await.unwrap();
    ws.send(Message::binary(vec![9, 1, 2])).await.unwrap();
    ws.send(Message::binary(b"\x00still works".to_vec()))
        .await
        .unwrap();
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let frames = drain(&mut ws, false).await;
    assert!(frames.contains(&(1, b"still works".to_vec())), "{frames:?}");

    let url = server
        .get_exec(exec_request("echo x", false, false, false))
        .unwrap()
        .url;
    let mut request = url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("nonsense.k8s.io"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    assert_eq!(run(&server, "echo fine", Transport::Spdy).await.0, "fine\n");
}

#[tokio::test]
async fn tokens_are_single_use_and_kind_bound() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("echo x", false, false, false))
        .unwrap()
        .url;
    assert_eq!(server.pending_tokens(), 1);
    // An exec token on the attach path is refused (and spent).
    let wrong = url.replace("/exec/", "/attach/");
    let err = client::connect_exec(&wrong, ExecOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = client::connect_exec(&url, ExecOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(server.pending_tokens(), 0);
    // Over SPDY too: a used token is a 404, reported as NotFound.
    let err = client::connect_exec_with(&url, ExecOptions::default(), Transport::Spdy)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.message().contains("HTTP 404"), "{err}");

    let expired = StreamingConfig {
        token_ttl: Duration::ZERO,
        ..Default::default()
    };
    let (short, _) = self::server(expired).await;
    let url = short
        .get_exec(exec_request("echo x", false, false, false))
        .unwrap()
        .url;
    let err = client::connect_exec(&url, ExecOptions::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.message().contains("not found or expired"), "{err}");

    let err = server
        .get_exec(exec_request("echo x", false, true, true))
        .unwrap_err();
    assert_eq!(err.kind(), anycri_core::ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn attach_reports_success() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = server
        .get_attach(AttachRequest {
            container_id: "c1".into(),
            stdout: true,
            ..Default::default()
        })
        .unwrap()
        .url;
    let options = ExecOptions {
        stderr: false,
        ..Default::default()
    };
    let mut session = client::connect_exec(&url, options).await.unwrap();
    let mut out = String::new();
    session
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "attached\n");
    assert_eq!(session.wait().await.unwrap(), 0);
}

#[tokio::test]
async fn port_forward_data_and_errors() {
    let (server, _) = server(StreamingConfig::default()).await;
    let url = |port| {
        server
            .get_port_forward(PortForwardRequest {
                pod_sandbox_id: "p1".into(),
                port: vec![port],
            })
            .unwrap()
            .url
    };
    let mut stream = client::connect_port_forward(&url(7), 7).await.unwrap();
    let payload: Vec<u8> = (0..500_000u32).map(|i| i as u8).collect();
    let (mut r, mut w) = tokio::io::split(&mut stream);
    let mut back = vec![0; payload.len()];
    let (a, b) = tokio::join!(w.write_all(&payload), r.read_exact(&mut back));
    a.unwrap();
    b.unwrap();
    assert!(back == payload);
    drop(stream);

    let mut stream = client::connect_port_forward(&url(9), 9).await.unwrap();
    let mut sink = Vec::new();
    let err = stream.read_to_end(&mut sink).await.unwrap_err();
    assert!(err.to_string().contains("nothing listens on 9"), "{err}");

    // The raw protocol: both channels open with the port, little-endian.
    let mut ws = raw_peer(&url(7), "v4.channel.k8s.io").await;
    let first = ws.next().await.unwrap().unwrap();
    let second = ws.next().await.unwrap().unwrap();
    assert_eq!(first, Message::binary(vec![0, 7, 0]));
    assert_eq!(second, Message::binary(vec![1, 7, 0]));
}

#[tokio::test]
async fn a_client_that_leaves_is_noticed() {
    let (server, provider) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("wait", false, false, false))
        .unwrap()
        .url;
    let session = client::connect_exec(&url, ExecOptions::default())
        .await
        .unwrap();
    drop(session);
    for _ in 0..500 {
        if provider.gone.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the provider never learned that the client left");
}

#[tokio::test]
async fn shutdown_ends_sessions_and_stops_listening() {
    let (server, provider) = server(StreamingConfig::default()).await;
    let url = server
        .get_exec(exec_request("wait", false, false, false))
        .unwrap()
        .url;
    let session = client::connect_exec(&url, ExecOptions::default())
        .await
        .unwrap();
    server.shutdown().await;
    assert_eq!(provider.gone.load(Ordering::SeqCst), 1);
    // The session ended with the provider's error as its status.
    let err = session.wait().await.unwrap_err();
    assert!(err.message().contains("client gone"), "{err}");
    assert!(
        tokio::net::TcpStream::connect(server.local_addr())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn sessions_beyond_the_bound_are_refused_until_one_ends() {
    let config = StreamingConfig {
        max_sessions: 1,
        ..Default::default()
    };
    let (server, _) = server(config).await;
    let first = server
        .get_exec(exec_request("wait", false, false, false))
        .unwrap()
        .url;
    let session = client::connect_exec(&first, ExecOptions::default())
        .await
        .unwrap();
    // A second session is refused (429) before its token is spent.
    let url = server
        .get_exec(exec_request("echo again", false, false, false))
        .unwrap()
        .url;
    for transport in [Transport::WebSocket, Transport::Spdy] {
        let err = client::connect_exec_with(&url, ExecOptions::default(), transport)
            .await
            .unwrap_err();
        assert!(err.message().contains("429"), "{transport:?}: {err}");
    }
    assert_eq!(
        server.pending_tokens(),
        1,
        "the refused token is still valid"
    );
    // Once the first session ends, the same URL works.
    drop(session);
    for _ in 0..500 {
        match client::connect_exec(&url, ExecOptions::default()).await {
            Ok(mut s) => {
                let mut out = String::new();
                s.stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .await
                    .unwrap();
                assert_eq!(out, "again\n");
                return;
            }
            Err(e) => assert!(e.message().contains("429"), "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the session's slot was never released");
}
