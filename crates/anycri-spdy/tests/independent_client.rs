//! Drives `SpdySession::server` with an independent SPDY/3.1 client
//! (`anycri_testenv::spdy_client`, written from the spec): frames are assembled byte by byte
//! and header blocks are built and (de)compressed with the client's own zlib contexts and its
//! own copy of the SPDY/3 dictionary — nothing of this crate is used on the client side (the
//! DICTID of the server's first header block is checked here too).

use std::time::Duration;

use anycri_spdy::k8s::{self, ExitStatus, ExpectedStreams, RemoteCommandProtocol};
use anycri_spdy::{Headers, SpdySession};
use anycri_testenv::spdy_client::SpdyTestClient;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Guard against a hang turning into a stuck test run; not a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(20);

type RawClient = SpdyTestClient<DuplexStream>;

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

fn pair() -> (RawClient, DuplexStream) {
    let (client, server) = tokio::io::duplex(256 * 1024);
    (RawClient::new(client), server)
}

#[tokio::test]
async fn exec_v4_like_kubectl() {
    let (mut client, server_io) = pair();
    let server = tokio::spawn(async move {
        let mut session = SpdySession::server(server_io);
        let expected = ExpectedStreams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let mut streams = k8s::accept_remote_command(
            &mut session,
            RemoteCommandProtocol::V4,
            expected,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(streams.resize.is_none());
        let mut input = Vec::new();
        streams
            .stdin
            .as_mut()
            .unwrap()
            .read_to_end(&mut input)
            .await
            .unwrap();
        let stdout = streams.stdout.as_mut().unwrap();
        stdout.write_all(&input.to_ascii_uppercase()).await.unwrap();
        streams
            .stderr
            .as_mut()
            .unwrap()
            .write_all(b"warning\n")
            .await
            .unwrap();
        streams.finish(&ExitStatus::Exited(3)).await.unwrap();
        session.close().await;
    });
    tokio::time::timeout(HANG_GUARD, async {
        // kubectl's order: error first, then stdin, stdout, stderr.
        client
            .syn_stream(1, &[("streamtype", "error")], false)
            .await;
        client
            .syn_stream(3, &[("streamtype", "stdin")], false)
            .await;
        client
            .syn_stream(5, &[("streamtype", "stdout")], false)
            .await;
        client
            .syn_stream(7, &[("streamtype", "stderr")], false)
            .await;
        client
            .pump_until("4 replies", |c| c.replies.len() == 4)
            .await;
        assert_eq!(
            client.dict_id,
            Some(0xe3c6_a7c2),
            "SPDY/3 dictionary DICTID"
        );
        client.data(3, false, b"hello ").await;
        client.data(3, true, b"spdy\n").await;
        client
            .pump_until("stdout, stderr and error FIN", |c| {
                [1, 5, 7].iter().all(|id| c.fins.contains(id))
            })
            .await;
        assert_eq!(client.data[&5], b"HELLO SPDY\n");
        assert_eq!(client.data[&7], b"warning\n");
        let status: serde_json::Value = serde_json::from_slice(&client.data[&1]).unwrap();
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(status["details"]["causes"][0]["message"], "3");
        client.pump_to_eof().await;
        assert_eq!(
            client.goaway,
            Some((7, 0)),
            "GOAWAY OK naming the last stream"
        );
        assert!(
            client.resets.is_empty(),
            "no stream was reset: {:?}",
            client.resets
        );
    })
    .await
    .expect("exec exchange hung");
    server.await.unwrap();
}

#[tokio::test]
async fn exec_tty_v3_gets_resize_and_plain_text_status() {
    let (mut client, server_io) = pair();
    let server = tokio::spawn(async move {
        let mut session = SpdySession::server(server_io);
        let expected = ExpectedStreams {
            stdin: false,
            stdout: true,
            stderr: true,
            tty: true,
        };
        let mut streams = k8s::accept_remote_command(
            &mut session,
            RemoteCommandProtocol::V3,
            expected,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(streams.stderr.is_none(), "no stderr with a tty");
        let resize = streams
            .resize
            .as_mut()
            .expect("resize stream on v3 with tty");
        let mut sizes = Vec::new();
        while let Some(size) = resize.next().await {
            sizes.push(size.unwrap());
        }
        streams.finish(&ExitStatus::Exited(2)).await.unwrap();
        session.close().await;
        sizes
    });
    tokio::time::timeout(HANG_GUARD, async {
        client
            .syn_stream(1, &[("streamtype", "error")], false)
            .await;
        client
            .syn_stream(3, &[("streamtype", "stdout")], false)
            .await;
        client
            .syn_stream(5, &[("streamtype", "resize")], false)
            .await;
        client
            .pump_until("3 replies", |c| c.replies.len() == 3)
            .await;
        // Two messages in one frame, one split across two frames.
        client
            .data(5, false, br#"{"Width":80,"Height":24}{"Width":100,"#)
            .await;
        client.data(5, true, br#""Height":40}"#).await;
        client.pump_to_eof().await;
        assert_eq!(
            String::from_utf8_lossy(&client.data[&1]),
            "command terminated with non-zero exit code: exit status 2"
        );
    })
    .await
    .expect("exec exchange hung");
    let sizes = server.await.unwrap();
    assert_eq!(
        sizes,
        [
            k8s::TerminalSize {
                width: 80,
                height: 24
            },
            k8s::TerminalSize {
                width: 100,
                height: 40
            }
        ]
    );
}

#[tokio::test]
async fn missing_streams_time_out() {
    let (mut client, server_io) = pair();
    let server = tokio::spawn(async move {
        let mut session = SpdySession::server(server_io);
        let expected = ExpectedStreams {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: false,
        };
        k8s::accept_remote_command(
            &mut session,
            RemoteCommandProtocol::V4,
            expected,
            Duration::from_millis(200),
        )
        .await
    });
    client
        .syn_stream(1, &[("streamtype", "error")], false)
        .await;
    let result = tokio::time::timeout(HANG_GUARD, server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(anycri_spdy::SpdyError::Timeout(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn port_forward_pairs_streams_and_echoes() {
    let (mut client, server_io) = pair();
    let server = tokio::spawn(async move {
        let session = SpdySession::server(server_io);
        let mut requests = k8s::accept_port_forward(session, Duration::from_secs(10));
        let mut seen = Vec::new();
        let mut tasks = Vec::new();
        // One task per forwarded connection, as the kubelet does.
        while let Some(mut req) = requests.next().await {
            seen.push((req.port, req.request_id.clone()));
            tasks.push(tokio::spawn(async move {
                let mut buf = Vec::new();
                req.data.read_to_end(&mut buf).await.unwrap();
                if req.port == 81 {
                    req.fail("error forwarding port 81 to pod p, uid u: refused")
                        .await
                        .unwrap();
                } else {
                    req.data.write_all(&buf).await.unwrap();
                    req.finish().await.unwrap();
                }
            }));
            if seen.len() == 2 {
                break;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        seen
    });
    tokio::time::timeout(HANG_GUARD, async {
        // Request 0: error then data (kubectl's order). Request 1: data first.
        client
            .syn_stream(
                1,
                &[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ],
                false,
            )
            .await;
        client
            .syn_stream(
                3,
                &[("streamtype", "data"), ("port", "8080"), ("requestid", "0")],
                false,
            )
            .await;
        client
            .syn_stream(
                5,
                &[("streamtype", "data"), ("port", "81"), ("requestid", "1")],
                false,
            )
            .await;
        // A stream without a port header is rejected.
        client.syn_stream(7, &[("streamtype", "data")], false).await;
        client
            .syn_stream(
                9,
                &[("streamtype", "error"), ("port", "81"), ("requestid", "1")],
                false,
            )
            .await;
        client
            .pump_until("replies and the reset", |c| {
                c.replies.len() == 4 && !c.resets.is_empty()
            })
            .await;
        assert_eq!(
            client.replies,
            [1, 3, 5, 9],
            "the bad stream is never answered"
        );
        client.data(3, true, b"echo me").await;
        client.data(5, true, b"to 81").await;
        client
            .pump_until("all FINs and the reset", |c| {
                [1, 3, 5, 9].iter().all(|id| c.fins.contains(id)) && !c.resets.is_empty()
            })
            .await;
        assert_eq!(client.data[&3], b"echo me");
        assert!(
            client.data.get(&1).is_none_or(|d| d.is_empty()),
            "no error for request 0"
        );
        assert_eq!(
            String::from_utf8_lossy(&client.data[&9]),
            "error forwarding port 81 to pod p, uid u: refused"
        );
        assert_eq!(client.resets, [(7, 5)], "stream 7 reset with CANCEL");
    })
    .await
    .expect("port-forward exchange hung");
    let mut seen = server.await.unwrap();
    seen.sort();
    assert_eq!(seen, [(81, "1".to_string()), (8080, "0".to_string())]);
}

#[tokio::test]
async fn pings_are_answered_and_bad_streams_reset_without_ending_the_session() {
    let (mut client, server_io) = pair();
    let server = tokio::spawn(async move {
        let mut session = SpdySession::server(server_io);
        let mut accepted = Vec::new();
        while let Some(s) = session.accept().await {
            accepted.push(s.id());
        }
        accepted
    });
    tokio::time::timeout(HANG_GUARD, async {
        client.ping(1).await;
        client.pump_until("ping echo", |c| c.pings == [1]).await;
        // A header name in upper case: that stream is reset, the session goes on.
        client
            .syn_stream(1, &[("StreamType", "error")], false)
            .await;
        // Data on a stream that was never opened.
        client.data(11, false, b"x").await;
        // An even (server-side) stream ID from the client.
        client
            .syn_stream(2, &[("streamtype", "error")], false)
            .await;
        client
            .syn_stream(3, &[("streamtype", "error")], false)
            .await;
        client.ping(3).await;
        client
            .pump_until("second ping echo and the reply", |c| {
                c.pings == [1, 3] && c.replies == [3]
            })
            .await;
        assert_eq!(client.resets, [(1, 1), (11, 2), (2, 1)]);
        assert_eq!(client.replies, [3]);
        // A stream ID going backwards ends the session with GOAWAY PROTOCOL_ERROR.
        client
            .syn_stream(3, &[("streamtype", "stdin")], false)
            .await;
        client.pump_to_eof().await;
        assert_eq!(client.goaway, Some((3, 1)));
    })
    .await
    .expect("exchange hung");
    assert_eq!(server.await.unwrap(), [3]);
}

#[tokio::test]
async fn garbage_ends_the_session_cleanly() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP instead of SPDY",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("data frame on stream 0", vec![0, 0, 0, 0, 0, 0, 0, 1, 0]),
        ("wrong version", vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]),
        (
            "oversized control frame",
            vec![0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff],
        ),
        (
            "corrupt header block",
            [
                &[0x80, 3, 0, 1, 0, 0, 0, 20][..],
                &be32(1),
                &be32(0),
                &[0, 0],
                b"not zlib!!",
            ]
            .concat(),
        ),
        (
            "truncated frame then EOF",
            vec![0x80, 3, 0, 6, 0, 0, 0, 4, 0],
        ),
    ];
    for (what, bytes) in cases {
        let (mut client, server_io) = pair();
        let server = tokio::spawn(async move {
            let mut session = SpdySession::server(server_io);
            let accepted = session.accept().await;
            session.closed().await;
            (accepted.is_none(), session.close_reason())
        });
        tokio::time::timeout(HANG_GUARD, async {
            client.send(&bytes).await;
            // The peer stops sending: the HTTP request and the truncated frame stay
            // incomplete frames, which the session must not wait on forever.
            client.io.shutdown().await.unwrap();
            client.pump_to_eof().await;
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: session did not end"));
        let (no_stream, reason) = server.await.unwrap();
        assert!(no_stream, "{what}: no stream accepted");
        assert!(reason.is_some(), "{what}: a close reason");
        assert_eq!(
            client.goaway.map(|g| g.1),
            Some(1),
            "{what}: GOAWAY PROTOCOL_ERROR"
        );
    }
}

#[tokio::test]
async fn peer_reset_fails_the_servers_read() {
    let (mut client, server_io) = pair();
    let (sent, sent_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(async move {
        let mut session = SpdySession::server(server_io);
        let mut stream = session.accept().await.unwrap();
        // Read only once the data and the reset are both in.
        sent_rx.await.unwrap();
        let mut buf = Vec::new();
        let kind = stream.read_to_end(&mut buf).await.unwrap_err().kind();
        (buf, kind)
    });
    tokio::time::timeout(HANG_GUARD, async {
        client
            .syn_stream(1, &[("streamtype", "stdin")], false)
            .await;
        client.pump_until("reply", |c| c.replies == [1]).await;
        client.data(1, false, b"before the reset").await;
        client.rst(1, 5).await;
        client.ping(1).await;
        client.pump_until("ping echo", |c| c.pings == [1]).await;
        sent.send(()).unwrap();
    })
    .await
    .unwrap();
    // Data that arrived before the reset is still read out (as spdystream delivers it: the
    // kubelet writes the exit status and then resets the stream), then the read fails.
    let (buf, kind) = server.await.unwrap();
    assert_eq!(buf, b"before the reset");
    assert_eq!(kind, std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn crate_client_and_server_talk() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let mut server = SpdySession::server(b);
    let client = SpdySession::client(a);
    let echo = tokio::spawn(async move {
        while let Some(mut s) = server.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
                s.shutdown().await.unwrap();
            });
        }
    });
    tokio::time::timeout(HANG_GUARD, async {
        client.ping().await.unwrap();
        // More than the stream buffer and window thresholds, to exercise both.
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut headers = Headers::new();
        headers.insert("streamType", "data");
        let stream = client.open_stream(headers, false).await.unwrap();
        assert_eq!(stream.id(), 1);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let p = payload.clone();
        let writer = tokio::spawn(async move {
            wr.write_all(&p).await.unwrap();
            wr.shutdown().await.unwrap();
            wr
        });
        let mut back = Vec::new();
        rd.read_to_end(&mut back).await.unwrap();
        let _wr = writer.await.unwrap();
        assert!(back == payload, "echoed bytes differ");
        client.close().await;
    })
    .await
    .expect("echo hung");
    echo.await.unwrap();
}

/// The server side of a connection whose reads can be held back and whose writes can be made
/// to fail, as when the peer has closed (a reset) while its last frames are still unread.
struct Gated {
    inner: DuplexStream,
    reads_open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writes_fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for Gated {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.reads_open.load(std::sync::atomic::Ordering::SeqCst) {
            // Look again shortly (a test helper: no waker registry needed).
            let waker = cx.waker().clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                waker.wake();
            });
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Gated {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.writes_fail.load(std::sync::atomic::Ordering::SeqCst) {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A write that fails because the peer has gone does not throw away what the peer sent
/// before it went: the kubelet's server writes the exit status and closes at once, and a
/// frame the client sends meanwhile fails. Here the data sits unread when the write fails.
#[tokio::test]
async fn a_failed_write_still_delivers_what_the_peer_sent() {
    use std::sync::{Arc, atomic::AtomicBool, atomic::Ordering::SeqCst};
    let (mut client, server_io) = pair();
    let reads_open = Arc::new(AtomicBool::new(true));
    let writes_fail = Arc::new(AtomicBool::new(false));
    let io = Gated {
        inner: server_io,
        reads_open: reads_open.clone(),
        writes_fail: writes_fail.clone(),
    };
    let mut session = SpdySession::server(io);
    client
        .syn_stream(1, &[("streamtype", "error")], false)
        .await;
    let mut stream = tokio::time::timeout(HANG_GUARD, session.accept())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(HANG_GUARD, client.pump_until("reply", |c| c.replies == [1]))
        .await
        .unwrap();
    // The peer's last frames arrive but are not read yet; then it is gone.
    reads_open.store(false, SeqCst);
    client.data(1, true, b"last words").await;
    writes_fail.store(true, SeqCst);
    // This side writes (it fails), then the reader may go on.
    let _ = stream.write_all(b"into the void").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    reads_open.store(true, SeqCst);
    drop(client);
    let mut got = Vec::new();
    let read = tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(read.is_ok(), "{read:?}");
    assert_eq!(got, b"last words");
}
