//! The streaming server's SPDY/3.1 transport over real TCP, driven by an independent SPDY
//! client (`anycri_testenv::spdy_client`: the HTTP/1.1 upgrade and every frame built by hand)
//! against an in-memory provider: protocol negotiation (v4 to v1, `portforward.k8s.io`,
//! 403 for an offer the server does not speak), exec with separate stdout/stderr and exit
//! statuses, stdin, tty with resize, attach, port-forward data and errors, unknown tokens,
//! and a client that leaves.

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
use anycri_streaming::{PortStream, StreamIo, StreamingConfig, StreamingProvider, StreamingServer};
use anycri_testenv::spdy_client::{SpdyTestClient, UpgradeResponse, upgrade};
use async_trait::async_trait;
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_util::sync::CancellationToken;

/// Guard against a hang turning into a stuck test run; not a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// Commands: `both` (stdout `out`, stderr `err`, exit 3), `cat`, `sizes N` (the first N
/// resizes, one per line), `wait` (until the client leaves), anything else fails.
#[derive(Default)]
struct Provider {
    gone: AtomicUsize,
}

#[async_trait]
impl StreamingProvider for Provider {
    async fn exec(&self, _container_id: &str, cmd: &[String], mut io: StreamIo) -> Result<i32> {
        match cmd[0].as_str() {
            "both" => {
                io.stdout
                    .as_mut()
                    .unwrap()
                    .write_all(b"out\n")
                    .await
                    .unwrap();
                io.stderr
                    .as_mut()
                    .unwrap()
                    .write_all(b"err\n")
                    .await
                    .unwrap();
                Ok(3)
            }
            "cat" => {
                let mut stdin = io.stdin.take().unwrap();
                tokio::io::copy(&mut stdin, io.stdout.as_mut().unwrap())
                    .await
                    .unwrap();
                Ok(0)
            }
            "sizes" => {
                let n: usize = cmd[1].parse().unwrap();
                assert!(io.tty && io.stderr.is_none(), "a tty has no stderr");
                for _ in 0..n {
                    let size = io.resize.as_mut().unwrap().recv().await.unwrap();
                    let line = format!("{}x{}\n", size.width, size.height);
                    io.stdout
                        .as_mut()
                        .unwrap()
                        .write_all(line.as_bytes())
                        .await
                        .unwrap();
                }
                Ok(0)
            }
            "wait" => {
                io.client_gone.cancelled().await;
                self.gone.fetch_add(1, Ordering::SeqCst);
                Err(Error::cancelled("client gone"))
            }
            _ => Err(Error::failed_precondition("container c1 is not running")),
        }
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

async fn server() -> (StreamingServer, Arc<Provider>) {
    let provider = Arc::new(Provider::default());
    let server = StreamingServer::start(StreamingConfig::default(), provider.clone())
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

/// The path of a streaming URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    &rest[rest.find('/').unwrap()..]
}

/// Upgrades to SPDY offering `protocols`, expecting 101 with `expected` negotiated.
async fn connect(
    server: &StreamingServer,
    url: &str,
    protocols: &[&str],
    expected: &str,
) -> SpdyTestClient<TcpStream> {
    let response = upgrade(server.local_addr(), path_of(url), protocols, &[])
        .await
        .unwrap();
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("upgrade"), Some("SPDY/3.1"));
    assert_eq!(response.header("connection"), Some("Upgrade"));
    assert_eq!(response.header("x-stream-protocol-version"), Some(expected));
    response.into_client()
}

async fn refused(server: &StreamingServer, path: &str, protocols: &[&str]) -> UpgradeResponse {
    upgrade(server.local_addr(), path, protocols, &[])
        .await
        .unwrap()
}

#[tokio::test]
async fn exec_v4_separates_streams_and_reports_the_exit_code() {
    let (server, _) = server().await;
    let url = server
        .get_exec(exec_request("both", false, true, false))
        .unwrap()
        .url;
    let mut c = connect(
        &server,
        &url,
        &["v4.channel.k8s.io", "v3.channel.k8s.io"],
        "v4.channel.k8s.io",
    )
    .await;
    tokio::time::timeout(HANG_GUARD, async {
        // kubectl's order: error first, then stdout, stderr.
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdout")], false).await;
        c.syn_stream(5, &[("streamtype", "stderr")], false).await;
        c.pump_until("FIN on error, stdout and stderr", |c| {
            [1, 3, 5].iter().all(|id| c.fins.contains(id))
        })
        .await;
    })
    .await
    .expect("exec hung");
    assert_eq!(c.replies, [1, 3, 5]);
    assert_eq!(c.dict_id, Some(0xe3c6_a7c2), "SPDY/3 dictionary DICTID");
    assert_eq!(c.text(3), "out\n");
    assert_eq!(c.text(5), "err\n");
    let status: serde_json::Value = serde_json::from_str(&c.text(1)).unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    assert!(c.resets.is_empty(), "{:?}", c.resets);
}

#[tokio::test]
async fn exec_v4_stdin_is_echoed_by_cat() {
    let (server, _) = server().await;
    let url = server
        .get_exec(exec_request("cat", true, false, false))
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &["v4.channel.k8s.io"], "v4.channel.k8s.io").await;
    tokio::time::timeout(HANG_GUARD, async {
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdin")], false).await;
        c.syn_stream(5, &[("streamtype", "stdout")], false).await;
        c.pump_until("3 replies", |c| c.replies.len() == 3).await;
        c.data(3, false, b"hello ").await;
        c.data(3, true, b"spdy\n").await;
        c.pump_until("FIN on error and stdout", |c| {
            [1, 5].iter().all(|id| c.fins.contains(id))
        })
        .await;
    })
    .await
    .expect("exec hung");
    assert_eq!(c.text(5), "hello spdy\n");
    assert_eq!(c.text(1), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn tty_exec_on_v3_follows_resizes() {
    let (server, _) = server().await;
    let url = server
        .get_exec(exec_request("sizes 2", false, false, true))
        .unwrap()
        .url;
    let mut c = connect(
        &server,
        &url,
        &["v3.channel.k8s.io, v2.channel.k8s.io"],
        "v3.channel.k8s.io",
    )
    .await;
    tokio::time::timeout(HANG_GUARD, async {
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdout")], false).await;
        // With a tty there is no stderr: the server resets this stream.
        c.syn_stream(5, &[("streamtype", "stderr")], false).await;
        c.syn_stream(7, &[("streamtype", "resize")], false).await;
        c.pump_until("replies and the reset", |c| {
            c.replies.len() == 4 && !c.resets.is_empty()
        })
        .await;
        c.data(7, false, br#"{"Width":80,"Height":24}{"Width":100,"#)
            .await;
        c.data(7, false, br#""Height":40}"#).await;
        c.pump_until("FIN on error and stdout", |c| {
            [1, 3].iter().all(|id| c.fins.contains(id))
        })
        .await;
    })
    .await
    .expect("exec hung");
    assert_eq!(c.resets, [(5, 5)], "stderr reset with CANCEL");
    assert_eq!(c.text(3), "80x24\n100x40\n");
    assert_eq!(c.text(1), "", "v3 writes nothing on success");
}

#[tokio::test]
async fn no_offer_means_v1_and_failures_are_reported() {
    let (server, _) = server().await;
    let url = server
        .get_exec(exec_request("both", false, true, false))
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &[], "channel.k8s.io").await;
    let url = server
        .get_exec(exec_request("nope", false, false, false))
        .unwrap()
        .url;
    let mut failing = connect(&server, &url, &["v4.channel.k8s.io"], "v4.channel.k8s.io").await;
    tokio::time::timeout(HANG_GUARD, async {
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdout")], false).await;
        c.syn_stream(5, &[("streamtype", "stderr")], false).await;
        c.pump_until("FIN on error", |c| c.fins.contains(&1)).await;
        failing
            .syn_stream(1, &[("streamtype", "error")], false)
            .await;
        failing
            .syn_stream(3, &[("streamtype", "stdout")], false)
            .await;
        failing
            .pump_until("FIN on error", |c| c.fins.contains(&1))
            .await;
    })
    .await
    .expect("exec hung");
    assert_eq!(
        c.text(1),
        "command terminated with non-zero exit code: exit status 3"
    );
    let status: serde_json::Value = serde_json::from_str(&failing.text(1)).unwrap();
    assert_eq!(status["reason"], "InternalError");
    let cause = status["details"]["causes"][0]["message"].as_str().unwrap();
    assert!(cause.contains("container c1 is not running"), "{cause}");
}

#[tokio::test]
async fn attach_over_spdy() {
    let (server, _) = server().await;
    let url = server
        .get_attach(AttachRequest {
            container_id: "c1".into(),
            stdin: false,
            stdout: true,
            stderr: false,
            tty: false,
        })
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &["v4.channel.k8s.io"], "v4.channel.k8s.io").await;
    tokio::time::timeout(HANG_GUARD, async {
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdout")], false).await;
        c.pump_until("FIN on error", |c| c.fins.contains(&1)).await;
    })
    .await
    .expect("attach hung");
    assert_eq!(c.text(3), "attached\n");
    assert_eq!(c.text(1), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn port_forward_echoes_and_reports_errors() {
    let (server, _) = server().await;
    let url = server
        .get_port_forward(PortForwardRequest {
            pod_sandbox_id: "p1".into(),
            port: vec![7, 9],
        })
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &["portforward.k8s.io"], "portforward.k8s.io").await;
    let payload: Vec<u8> = (0..32_768u32).map(|i| (i % 251) as u8).collect();
    tokio::time::timeout(HANG_GUARD, async {
        let pair = |kind, port, id| [("streamtype", kind), ("port", port), ("requestid", id)];
        c.syn_stream(1, &pair("error", "7", "0"), false).await;
        c.syn_stream(3, &pair("data", "7", "0"), false).await;
        c.syn_stream(5, &pair("error", "9", "1"), false).await;
        c.syn_stream(7, &pair("data", "9", "1"), false).await;
        // Not one of the request's ports.
        c.syn_stream(9, &pair("error", "8", "2"), false).await;
        c.syn_stream(11, &pair("data", "8", "2"), false).await;
        c.pump_until("6 replies", |c| c.replies.len() == 6).await;
        c.data(3, false, &payload).await;
        c.pump_until("the echo", |c| {
            c.data.get(&3).is_some_and(|d| d.len() == payload.len())
        })
        .await;
        // Closing the connection's data stream ends it: FIN on both streams, no error.
        c.data(3, true, b"").await;
        c.pump_until("FIN on every stream", |c| {
            [1, 3, 5, 7, 9, 11].iter().all(|id| c.fins.contains(id))
        })
        .await;
    })
    .await
    .expect("port-forward hung");
    assert!(c.data[&3] == payload, "echoed bytes differ");
    assert_eq!(c.text(1), "");
    assert_eq!(
        c.text(5),
        "error forwarding port 9 to pod p1: unavailable: nothing listens on 9"
            .replace("unavailable: ", &expected_prefix())
    );
    assert!(
        c.text(9).contains("port 8 is not one of the ports"),
        "{}",
        c.text(9)
    );
    assert!(c.resets.is_empty(), "{:?}", c.resets);
}

/// How `anycri_core::Error::unavailable` displays its category (checked, not assumed).
fn expected_prefix() -> String {
    let shown = Error::unavailable("x").to_string();
    shown.strip_suffix('x').unwrap().to_owned()
}

#[tokio::test]
async fn unsupported_protocols_get_403_and_unknown_tokens_404() {
    let (server, _) = server().await;
    let url = server
        .get_exec(exec_request("both", false, true, false))
        .unwrap()
        .url;
    let response = refused(&server, path_of(&url), &["v9.channel.k8s.io"]).await;
    assert_eq!(response.status, 403, "{response:?}");
    let accepted = response
        .header("x-accepted-stream-protocol-versions")
        .unwrap();
    assert_eq!(
        accepted,
        "v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io"
    );
    assert!(
        response.body.contains("unable to negotiate protocol"),
        "{}",
        response.body
    );

    let url = server
        .get_port_forward(PortForwardRequest {
            pod_sandbox_id: "p1".into(),
            port: vec![7],
        })
        .unwrap()
        .url;
    let response = refused(&server, path_of(&url), &["v4.channel.k8s.io"]).await;
    assert_eq!(response.status, 403);
    assert_eq!(
        response.header("x-accepted-stream-protocol-versions"),
        Some("portforward.k8s.io")
    );

    let response = refused(&server, "/exec/no-such-token", &["v4.channel.k8s.io"]).await;
    assert_eq!(response.status, 404, "{response:?}");
    // The token of the refused request above was used up.
    let response = refused(&server, path_of(&url), &["portforward.k8s.io"]).await;
    assert_eq!(response.status, 404);
    assert_eq!(server.pending_tokens(), 0);
}

#[tokio::test]
async fn a_client_that_leaves_is_noticed() {
    let (server, provider) = server().await;
    let url = server
        .get_exec(exec_request("wait", false, false, false))
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &["v4.channel.k8s.io"], "v4.channel.k8s.io").await;
    tokio::time::timeout(HANG_GUARD, async {
        c.syn_stream(1, &[("streamtype", "error")], false).await;
        c.syn_stream(3, &[("streamtype", "stdout")], false).await;
        c.pump_until("2 replies", |c| c.replies.len() == 2).await;
    })
    .await
    .expect("exec hung");
    drop(c);
    for _ in 0..500 {
        if provider.gone.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the provider never learned that the client left");
}

#[tokio::test]
async fn garbage_after_the_upgrade_ends_the_session() {
    let (server, provider) = server().await;
    let url = server
        .get_exec(exec_request("wait", false, false, false))
        .unwrap()
        .url;
    let mut c = connect(&server, &url, &["v4.channel.k8s.io"], "v4.channel.k8s.io").await;
    tokio::time::timeout(HANG_GUARD, async {
        // A PING of SPDY version 2.
        c.send(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]).await;
        c.pump_to_eof().await;
    })
    .await
    .expect("the session did not end");
    assert_eq!(c.goaway.map(|g| g.1), Some(1), "GOAWAY PROTOCOL_ERROR");
    // The exec never started: the client opened no streams.
    assert_eq!(provider.gone.load(Ordering::SeqCst), 0);
}
