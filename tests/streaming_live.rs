//! Exec, Attach and PortForward end to end with anycri's streaming client: against
//! containerd's own streaming server (its URLs come from containerd's CRI), and against
//! anycri's streaming server behind the Docker shim (in-process and through anycri-server).
//! SPDY/3.1 on the shim's server with an independent client (exec, port-forward).
//! Bad input on our server: unknown, expired and reused tokens, SPDY protocols, a client that leaves
//! mid-exec (checked with Docker's API as an independent observer). Needs
//! `scripts/runtime-env up`; skips with a reason without it, fails under
//! ANYCRI_REQUIRE_LIVE=1.

mod common;

use std::{sync::Arc, time::Duration};

use anycri::{RuntimeService, RuntimeServiceExt, api::*};
use anycri_streaming::client::{self, ExecOptions, ExecSession, Transport};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

/// Read `r` to the end as text.
async fn read_all(r: Option<impl AsyncRead + Unpin>) -> String {
    let mut text = String::new();
    if let Some(mut r) = r {
        r.read_to_string(&mut text).await.unwrap();
    }
    text
}

/// stdout, stderr and the exit code of a finished session.
async fn collect(mut session: ExecSession) -> (String, String, i32) {
    let (out, err) = tokio::join!(
        read_all(session.stdout.take()),
        read_all(session.stderr.take())
    );
    let code = session.wait().await.unwrap();
    (out, err, code)
}

async fn running(t: &common::Target, name: &str, script: &str) -> (String, String) {
    let ids = t
        .runtime
        .run_pod_and_container(t.pod(name), t.container(name, script))
        .await
        .unwrap();
    t.runtime
        .wait_for_container_state(
            &ids.container_id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    (ids.pod_sandbox_id, ids.container_id)
}

async fn exec(
    rt: &dyn RuntimeService,
    id: &str,
    cmd: &[&str],
    options: ExecOptions,
) -> ExecSession {
    client::exec(rt, id, cmd, options).await.unwrap()
}

/// As [`exec`], over a chosen transport.
async fn exec_over(
    rt: &dyn RuntimeService,
    id: &str,
    cmd: &[&str],
    options: ExecOptions,
    transport: Transport,
) -> ExecSession {
    let response = rt
        .exec(ExecRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|c| c.to_string()).collect(),
            tty: options.tty,
            stdin: options.stdin,
            stdout: options.stdout,
            stderr: options.stderr && !options.tty,
        })
        .await
        .unwrap();
    client::connect_exec_with(&response.url, options, transport)
        .await
        .unwrap()
}

/// Exec without a terminal: stdout and stderr apart, exit codes; with a terminal; stdin.
async fn exec_streams(t: Arc<common::Target>) {
    let (_, id) = running(&t, "exec", "sleep 3600").await;
    let rt = t.runtime.as_ref();

    let session = exec(
        rt,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        ExecOptions::default(),
    )
    .await;
    let protocol = session.protocol();
    assert_eq!(
        collect(session).await,
        ("out\n".into(), "err\n".into(), 3),
        "{}",
        t.name
    );
    // containerd 1.6 speaks v4; anycri's server v5.
    let expected = if t.name == "containerd" {
        "v4.channel.k8s.io"
    } else {
        "v5.channel.k8s.io"
    };
    assert_eq!(protocol, expected);

    for code in [0, 1, 42] {
        let cmd = format!("exit {code}");
        let session = exec(rt, &id, &["sh", "-c", &cmd], ExecOptions::default()).await;
        assert_eq!(collect(session).await.2, code);
    }

    // `wait()` at once, reading nothing, while the command still runs: the connection must
    // stay open until the status comes (a close sent early loses it on containerd 1.6).
    let session = exec(
        rt,
        &id,
        &["sh", "-c", "sleep 0.5; exit 3"],
        ExecOptions::default(),
    )
    .await;
    assert_eq!(session.wait().await.unwrap(), 3, "{}", t.name);

    // A command that cannot run: a failure on the status channel, not an exit code.
    let mut session = exec(rt, &id, &["/no/such/binary"], ExecOptions::default()).await;
    let _ = tokio::join!(
        read_all(session.stdout.take()),
        read_all(session.stderr.take())
    );
    match session.wait().await {
        Ok(code) => assert_ne!(code, 0, "running a missing binary must not succeed"),
        Err(e) => assert!(e.message().contains("no such"), "{e}"),
    }

    // With a terminal: one output stream, the process sees a tty, newlines become CRLF.
    // (With stdin, as `exec -it` does: containerd 1.6 copies no output from a terminal
    // without stdin.)
    let session = exec(
        rt,
        &id,
        &["sh", "-c", "tty; echo hi >&2"],
        ExecOptions::interactive_tty(),
    )
    .await;
    let (out, err, code) = collect(session).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("/dev/pts/"), "no terminal: {out:?}");
    assert!(
        out.contains("hi\r\n"),
        "stderr goes to the terminal: {out:?}"
    );
    assert_eq!(err, "");

    // stdin reaches the process; one line back and `head` exits (works on v4 and v5).
    let mut session = exec(
        rt,
        &id,
        &["head", "-n", "1"],
        ExecOptions::default().with_stdin(),
    )
    .await;
    let mut stdin = session.stdin.take().unwrap();
    stdin.write_all(b"hello stdin\nnot read\n").await.unwrap();
    let (out, _, code) = collect(session).await;
    assert_eq!((out.as_str(), code), ("hello stdin\n", 0));
    drop(stdin);

    // Closing stdin reaches `cat`: over SPDY (what `client::exec` picks for stdin) on every
    // server, over WebSocket where the server speaks v5.
    let session = exec(rt, &id, &["cat"], ExecOptions::default().with_stdin()).await;
    assert_eq!(session.transport(), Transport::Spdy);
    drop(session);
    for transport in [Transport::Spdy, Transport::WebSocket] {
        let options = ExecOptions::default().with_stdin();
        let mut session = exec_over(rt, &id, &["cat"], options, transport).await;
        if !session.can_close_stdin() {
            assert_eq!(
                (t.name, transport),
                ("containerd", Transport::WebSocket),
                "only WebSocket v4 servers lack the close signal"
            );
            drop(session);
            continue;
        }
        let mut stdin = session.stdin.take().unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let writer = tokio::spawn(async move {
            stdin.write_all(&payload).await.unwrap();
            stdin.shutdown().await.unwrap();
            payload
        });
        let (out, _, code) = tokio::time::timeout(Duration::from_secs(60), collect(session))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: cat did not end after stdin closed ({transport:?})",
                    t.name
                )
            });
        let payload = writer.await.unwrap();
        assert_eq!(code, 0, "{transport:?}");
        assert_eq!(out.len(), payload.len(), "{transport:?}");
        assert_eq!(out.as_bytes(), payload.as_slice(), "{transport:?}");
    }

    // Terminal resize reaches the process.
    let mut session = exec(
        rt,
        &id,
        &["sh", "-c", "while read x; do stty size; done"],
        ExecOptions::interactive_tty(),
    )
    .await;
    session.resize(123, 45).await.unwrap();
    let mut stdin = session.stdin.take().unwrap();
    let mut lines = BufReader::new(session.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    // The resize and the newline travel separately (the resize through Docker's API on the
    // shim); ask until the new size shows, one `stty size` answer at a time (the echoed
    // newlines are empty lines).
    for _ in 0..100 {
        stdin.write_all(b"\r").await.unwrap();
        let line = loop {
            let line =
                lines.next_line().await.unwrap().unwrap_or_else(|| {
                    panic!("the session ended before the resize showed: {seen:?}")
                });
            if !line.trim().is_empty() {
                break line;
            }
        };
        if line.trim() == "45 123" {
            break;
        }
        seen.push(line);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.len() < 100,
        "the terminal never saw the resize: {seen:?}"
    );
    drop((stdin, lines, session));
}

/// Attach to a running container and read its output.
async fn attach_output(t: Arc<common::Target>) {
    let (_, id) = running(
        &t,
        "attach",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    )
    .await;
    let options = ExecOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut session = client::attach(t.runtime.as_ref(), &id, options)
        .await
        .unwrap();
    let mut lines = BufReader::new(session.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let second = lines.next_line().await.unwrap().unwrap();
    assert!(first.starts_with("tick "), "{first:?}");
    let n = |l: &str| l.trim_start_matches("tick ").parse::<u64>().unwrap();
    assert_eq!(n(&second), n(&first) + 1);
    drop((lines, session));
    // Detaching leaves the container running.
    let status = t.runtime.get_container_status(&id).await.unwrap();
    assert_eq!(status.state(), ContainerState::ContainerRunning);
}

/// Port-forward to a TCP echo server in the pod; a port nobody listens on is an error.
async fn port_forward_echo(t: Arc<common::Target>) {
    let (pod, _) = running(&t, "portfwd", "nc -ll -p 8080 -e cat").await;
    let rt = t.runtime.as_ref();
    // nc listens a moment after the container starts: retry the first connection.
    let mut connected = None;
    for _ in 0..100 {
        let mut stream = client::port_forward(rt, &pod, 8080).await.unwrap();
        stream.write_all(b"ping\n").await.unwrap();
        let mut buf = [0u8; 5];
        if stream.read_exact(&mut buf).await.is_ok() {
            assert_eq!(&buf, b"ping\n");
            connected = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stream = connected.expect("the echo server in the pod answers");
    // Bigger than any buffer on the way, written and read at once.
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = tokio::io::split(&mut stream);
    let send = async {
        w.write_all(&payload).await.unwrap();
    };
    let mut back = vec![0u8; payload.len()];
    let recv = async {
        r.read_exact(&mut back).await.unwrap();
    };
    tokio::join!(send, recv);
    assert!(back == payload, "the echoed bytes differ");
    drop(stream);

    // A second, independent connection.
    let mut stream = client::port_forward(rt, &pod, 8080).await.unwrap();
    stream.write_all(b"again\n").await.unwrap();
    let mut buf = [0u8; 6];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again\n");
    drop(stream);

    // Nothing listens on 8081: the read fails with the server's error.
    let mut stream = client::port_forward(rt, &pod, 8081).await.unwrap();
    let _ = stream.write_all(b"x").await;
    let mut sink = Vec::new();
    let result = stream.read_to_end(&mut sink).await;
    assert!(
        result.is_err() && sink.is_empty(),
        "expected an error, got {result:?} with {} bytes",
        sink.len()
    );
}

/// Port-forward reaches a server that listens on IPv6 loopback only (`[::1]`): the shim tries
/// 127.0.0.1, then ::1 inside the pod's network namespace. Docker turns IPv6 off in containers
/// unless asked, so the pod asks with sysctls (namespaced, allowed).
async fn port_forward_ipv6(t: Arc<common::Target>) {
    let mut pod_config = t.pod("portfwd6");
    let linux = pod_config.linux.get_or_insert_with(Default::default);
    for key in [
        "net.ipv6.conf.all.disable_ipv6",
        "net.ipv6.conf.lo.disable_ipv6",
    ] {
        linux.sysctls.insert(key.to_owned(), "0".to_owned());
    }
    let container = t.container(
        "portfwd6",
        "mkdir -p /w && echo served-over-six > /w/index.html && exec httpd -f -p '[::1]:8081' -h /w",
    );
    let ids = t
        .runtime
        .run_pod_and_container(pod_config, container)
        .await
        .unwrap();
    let rt = t.runtime.as_ref();
    // The server listens on ::1 only: 127.0.0.1 is refused, so a page proves the IPv6 path.
    let out = t
        .runtime
        .exec_collect(
            &ids.container_id,
            &["netstat", "-ltn"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let mut page = String::new();
    for _ in 0..100 {
        let mut stream = client::port_forward(rt, &ids.pod_sandbox_id, 8081)
            .await
            .unwrap();
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        page.clear();
        if stream.read_to_string(&mut page).await.is_ok() && page.contains("served-over-six") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("served-over-six"),
        "no page through port-forward to [::1]:8081; got {page:?}; sockets: {}",
        out.stdout_str()
    );
}

macro_rules! live {
    ($target:ident: $($check:ident),* $(,)?) => {
        mod $target {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(target) = common::$target().await else { return };
                    common::with_cleanup(target, super::$check).await;
                }
            )*
        }
    };
}

live!(containerd: exec_streams, attach_output, port_forward_echo);
live!(docker: exec_streams, attach_output, port_forward_echo, port_forward_ipv6);

/// The Docker shim served over CRI gRPC: the URLs its Exec returns work from a client that
/// only sees the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_through_anycri_server() {
    let Some(target) = common::docker().await else {
        return;
    };
    let (served, _stop) = common::served(target).await;
    common::with_cleanup(served, |t| async move {
        let (_, id) = running(&t, "served", "sleep 3600").await;
        let session = exec(
            t.runtime.as_ref(),
            &id,
            &["sh", "-c", "echo via-grpc; exit 5"],
            ExecOptions::default(),
        )
        .await;
        assert_eq!(
            collect(session).await,
            ("via-grpc\n".into(), String::new(), 5)
        );
    })
    .await;
}

/// Capabilities discovered from the shim now include the streaming RPCs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_reports_streaming_capabilities() {
    let Some(target) = common::docker().await else {
        return;
    };
    let info = anycri::discover(target.runtime.as_ref()).await.unwrap();
    assert!(info.capabilities.exec, "{:?}", info.capabilities);
    assert!(info.capabilities.attach);
    assert!(info.capabilities.port_forward);
}

/// Send `request` as is and read one response (headers and a Content-Length body), or what
/// came before the server closed.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return text,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
}

/// Unknown, expired and reused tokens are 404s; an unsupported SPDY stream protocol is a 403; a bad request
/// gets InvalidArgument from the RPC. The server keeps serving afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_bad_streaming_input() {
    let Some(target) = common::docker().await else {
        return;
    };
    common::with_cleanup(target, |t| async move {
        let (_, id) = running(&t, "badinput", "sleep 3600").await;
        let rt = t.runtime.as_ref();
        let request = |cmd: &[&str]| ExecRequest {
            container_id: id.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdout: true,
            ..Default::default()
        };
        let url = rt.exec(request(&["true"])).await.unwrap().url;
        let base = url.rsplit_once("/exec/").unwrap().0.to_owned();
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();

        // Unknown token.
        let err = client::connect_exec(&format!("{base}/exec/no-such-token"), ExecOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.message().contains("not found or expired"), "{err}");
        let raw = raw_http(addr, "GET /exec/bogus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(raw.starts_with("HTTP/1.1 404"), "{raw}");

        // Used once, gone.
        let session = client::connect_exec(&url, ExecOptions::default()).await.unwrap();
        assert_eq!(collect(session).await.2, 0);
        let err = client::connect_exec(&url, ExecOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");

        // SPDY with a stream protocol the server does not speak: 403, as from the kubelet.
        let url = rt.exec(request(&["true"])).await.unwrap().url;
        let path = url.trim_start_matches(&base);
        let raw = raw_http(
            addr,
            &format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v9.channel.k8s.io\r\n\r\n"),
        )
        .await;
        assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
        assert!(
            raw.to_ascii_lowercase().contains("x-accepted-stream-protocol-versions: v4.channel.k8s.io"),
            "{raw}"
        );

        // Not an upgrade at all; garbage.
        let url = rt.exec(request(&["true"])).await.unwrap().url;
        let path = url.trim_start_matches(&base);
        let raw = raw_http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
        let raw = raw_http(addr, "\x16\x03\x01garbage\r\n\r\n").await;
        assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 400"), "{raw}");

        // Invalid requests never get a URL.
        for bad in [
            request(&[]),
            ExecRequest {
                tty: true,
                stderr: true,
                ..request(&["true"])
            },
            ExecRequest {
                stdout: false,
                ..request(&["true"])
            },
        ] {
            let err = rt.exec(bad).await.unwrap_err();
            assert_eq!(err.kind(), anycri::ErrorKind::InvalidArgument, "{err}");
        }
        let err = rt
            .port_forward(PortForwardRequest {
                pod_sandbox_id: "no-such-pod".into(),
                port: vec![80],
            })
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");

        // Still serving.
        let session = exec(rt, &id, &["echo", "alive"], ExecOptions::default()).await;
        assert_eq!(collect(session).await.0, "alive\n");
    })
    .await;
}

/// The address and path of a streaming URL.
fn split_url(url: &str) -> (std::net::SocketAddr, String) {
    let rest = url.split_once("://").unwrap().1;
    let slash = rest.find('/').unwrap();
    (rest[..slash].parse().unwrap(), rest[slash..].to_owned())
}

/// SPDY/3.1 through the Docker shim's real streaming server, driven by the independent test
/// client: an exec (stdout and stderr apart, the exit code in the v4 status) and a
/// port-forward to a TCP echo server in the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_spdy_exec_and_port_forward() {
    use anycri_testenv::spdy_client::upgrade;
    const HANG_GUARD: Duration = Duration::from_secs(60);
    let Some(target) = common::docker().await else {
        return;
    };
    common::with_cleanup(target, |t| async move {
        let (pod, id) = running(&t, "spdy", "nc -ll -p 8080 -e cat").await;
        let rt = t.runtime.as_ref();

        let url = rt
            .exec(ExecRequest {
                container_id: id.clone(),
                cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"]
                    .map(String::from)
                    .to_vec(),
                stdout: true,
                stderr: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .url;
        let (addr, path) = split_url(&url);
        let response = upgrade(addr, &path, &["v4.channel.k8s.io"], &[])
            .await
            .unwrap();
        assert_eq!(response.status, 101, "{response:?}");
        assert_eq!(
            response.header("x-stream-protocol-version"),
            Some("v4.channel.k8s.io")
        );
        let mut c = response.into_client();
        tokio::time::timeout(HANG_GUARD, async {
            c.syn_stream(1, &[("streamtype", "error")], false).await;
            c.syn_stream(3, &[("streamtype", "stdout")], false).await;
            c.syn_stream(5, &[("streamtype", "stderr")], false).await;
            c.pump_until("FIN on every stream", |c| {
                [1, 3, 5].iter().all(|id| c.fins.contains(id))
            })
            .await;
        })
        .await
        .expect("exec over SPDY hung");
        assert_eq!((c.text(3).as_str(), c.text(5).as_str()), ("out\n", "err\n"));
        let status = c.text(1);
        assert!(status.contains(r#""reason":"NonZeroExitCode""#), "{status}");
        assert!(
            status.contains(r#""causes":[{"reason":"ExitCode","message":"3"}]"#),
            "{status}"
        );
        drop(c);

        // nc listens a moment after the container starts: retry until it answers.
        let mut echoed = None;
        for _ in 0..100 {
            let url = rt
                .port_forward(PortForwardRequest {
                    pod_sandbox_id: pod.clone(),
                    port: vec![8080],
                })
                .await
                .unwrap()
                .url;
            let (addr, path) = split_url(&url);
            let response = upgrade(addr, &path, &["portforward.k8s.io"], &[])
                .await
                .unwrap();
            assert_eq!(response.status, 101, "{response:?}");
            let mut c = response.into_client();
            let answered = tokio::time::timeout(HANG_GUARD, async {
                let pair = |kind| [("streamtype", kind), ("port", "8080"), ("requestid", "0")];
                c.syn_stream(1, &pair("error"), false).await;
                c.syn_stream(3, &pair("data"), false).await;
                c.data(3, false, b"ping over spdy\n").await;
                c.pump_until("the echo or an error", |c| {
                    c.text(3).len() >= 15 || c.fins.contains(&1)
                })
                .await;
                c.text(3).len() >= 15
            })
            .await
            .expect("port-forward over SPDY hung");
            if answered {
                echoed = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut c = echoed.expect("the echo server in the pod answers over SPDY");
        assert_eq!(c.text(3), "ping over spdy\n");
        // A second message on the same connection, then close it: FIN comes back, no error.
        tokio::time::timeout(HANG_GUARD, async {
            c.data(3, true, b"bye\n").await;
            c.pump_until("FIN on both streams", |c| {
                c.fins.contains(&1) && c.fins.contains(&3)
            })
            .await;
        })
        .await
        .expect("closing the forwarded connection hung");
        assert_eq!(c.text(3), "ping over spdy\nbye\n");
        assert_eq!(c.text(1), "", "no error for a connection that worked");
    })
    .await;
}

/// Tokens expire: a shim whose tokens live no time hands out URLs that are already gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_expired_token() {
    let Some(target) = common::docker().await else {
        return;
    };
    let docker = common::env_value("DOCKER_ENDPOINT").unwrap();
    let env_dir =
        common::env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let shim = anycri::docker::DockerRuntime::builder(&docker)
        .pause_image(common::env_value("ANYCRI_PAUSE_IMAGE").unwrap())
        .state_dir(format!("{env_dir}/anycri-docker"))
        .streaming_config(anycri::docker::StreamingConfig {
            token_ttl: Duration::ZERO,
            ..Default::default()
        })
        .connect()
        .await
        .unwrap();
    common::with_cleanup(target, move |t| async move {
        let (_, id) = running(&t, "expired", "sleep 3600").await;
        let err = client::exec(&shim, &id, &["true"], ExecOptions::default())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
    })
    .await;
}

/// A client that disconnects mid-exec leaves no exec process behind (Docker's own API says
/// so), and one that never reads its output does not block the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_disconnect_kills_the_exec() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("anycri_streaming=trace,anycri_docker=debug")
        .with_test_writer()
        .try_init();
    let Some(target) = common::docker().await else {
        return;
    };
    let socket = common::env_value("DOCKER_ENDPOINT").unwrap();
    let docker = bollard::Docker::connect_with_unix(
        socket.trim_start_matches("unix://"),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    common::with_cleanup(target, move |t| async move {
        let (_, id) = running(&t, "disconnect", "sleep 3600").await;
        let rt = t.runtime.as_ref();
        let marker = "4242";
        // One session that waits silently, one that streams output nobody reads.
        let quiet = exec(rt, &id, &["sleep", marker], ExecOptions::default()).await;
        let noisy = exec(
            rt,
            &id,
            &["sh", "-c", "while true; do echo spam; done"],
            ExecOptions::default().with_stdin(),
        )
        .await;
        // Both exec processes run.
        let running_execs = || async {
            let inspect = docker
                .inspect_container(
                    &id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .unwrap();
            let mut alive = Vec::new();
            for exec_id in inspect.exec_ids.unwrap_or_default() {
                let e = docker.inspect_exec(&exec_id).await.unwrap();
                if e.running == Some(true) {
                    alive.push(
                        e.process_config
                            .map(|p| p.arguments.unwrap_or_default().join(" "))
                            .unwrap_or_default(),
                    );
                }
            }
            alive
        };
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen = running_execs().await;
            if seen.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            seen.iter().any(|a| a == marker),
            "the exec did not start: {seen:?}"
        );
        drop((quiet, noisy));
        for _ in 0..200 {
            seen = running_execs().await;
            if seen.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen.is_empty(), "exec processes left behind: {seen:?}");
    })
    .await;
}
