//! Streaming: Exec, Attach and PortForward return a URL of the runtime's streaming server,
//! and sessions run through it. The URL checks call the RPCs alone; the session checks follow
//! critest's streaming specs with anycri's streaming client (`anycri-streaming`, WebSocket
//! channel protocols v5/v4): exec's output, exec with a TTY and stdin, attach to a shell's
//! stdin, port-forward to the web server image, and the exit code carried by the stream.

use std::sync::{Arc, Mutex};

use anycri_streaming::client::{self, ExecOptions, OutputStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::prelude::*;

/// How long a session may take to show what a check waits for: a bound that turns a hung
/// session into a failure with what was read, not a timing assertion.
const SESSION_LIMIT: Duration = Duration::from_secs(30);

pub(crate) fn checks() -> Vec<Check> {
    vec![
        check!(
            "streaming::exec_returns_url",
            "Exec of a running container returns an http(s) URL",
            exec_url
        )
        .needs(&[Need::Exec]),
        check!(
            "streaming::attach_returns_url",
            "Attach to a running container returns an http(s) URL",
            attach_url
        )
        .needs(&[Need::Attach]),
        check!(
            "streaming::port_forward_returns_url",
            "PortForward to a ready pod returns an http(s) URL",
            port_forward_url
        )
        .needs(&[Need::PortForward]),
        check!(
            "streaming::exec",
            "exec (no TTY, no stdin) through the streaming URL returns the command's stdout, an empty stderr and exit code 0",
            exec_output
        )
        .critest("[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec with tty=false and stdin=false [Conformance]")
        .needs(&[Need::Exec, Need::StreamingClient]),
        check!(
            "streaming::exec_tty_stdin",
            "exec with a TTY and stdin: what is typed reaches the command and its output comes back through the terminal",
            exec_tty_stdin
        )
        .critest("[k8s.io] Streaming runtime should support streaming interfaces runtime should support exec with tty=true and stdin=true [Conformance]")
        .needs(&[Need::Exec, Need::StreamingClient]),
        check!(
            "streaming::exec_exit_code",
            "exec through the streaming URL reports the command's non-zero exit code",
            exec_exit_code
        )
        .needs(&[Need::Exec, Need::StreamingClient]),
        check!(
            "streaming::attach",
            "attach to a shell's stdin (no TTY): a command typed runs and its output alone comes back on stdout, nothing on stderr",
            attach_shell
        )
        .critest("[k8s.io] Streaming runtime should support streaming interfaces runtime should support attach [Conformance]")
        .needs(&[Need::Attach, Need::StreamingClient]),
        check!(
            "streaming::attach_tty",
            "attach to a shell with a TTY and stdin: a command typed runs and its output comes back through the terminal",
            attach_tty
        )
        .needs(&[Need::Attach, Need::StreamingClient]),
        check!(
            "streaming::port_forward",
            "port-forward to the web server image's port fetches the same page the server gives at the pod IP",
            port_forward_page
        )
        .critest("[k8s.io] Streaming runtime should support streaming interfaces runtime should support portforward [Conformance]")
        .needs(&[
            Need::PortForward,
            Need::StreamingClient,
            Need::Image(ImageKind::WebServer),
        ]),
    ]
}

fn check_url(url: &str, what: &str) -> CheckResult {
    ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{what} returned {url:?}, not an http(s) URL"
    );
    Ok(())
}

async fn exec_url(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let resp = t
        .rt()
        .exec(ExecRequest {
            container_id: r.container,
            cmd: vec!["echo".into(), "hi".into()],
            stdout: true,
            ..Default::default()
        })
        .await
        .step("Exec")?;
    check_url(&resp.url, "Exec")
}

async fn attach_url(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let resp = t
        .rt()
        .attach(AttachRequest {
            container_id: r.container,
            stdout: true,
            ..Default::default()
        })
        .await
        .step("Attach")?;
    check_url(&resp.url, "Attach")
}

async fn port_forward_url(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let resp = t
        .rt()
        .port_forward(PortForwardRequest {
            pod_sandbox_id: r.pod,
            port: vec![8080],
        })
        .await
        .step("PortForward")?;
    check_url(&resp.url, "PortForward")
}

/// Read `stream` until what was read satisfies `done`, the stream ends, or
/// [`SESSION_LIMIT`] passes; what was read (lossy UTF-8) and whether `done` held.
async fn read_until<R: AsyncRead + Unpin>(
    stream: &mut R,
    done: impl Fn(&str) -> bool,
) -> (String, bool) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + SESSION_LIMIT;
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if done(&text) {
            return (text, true);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&chunk[..n]),
            _ => return (text, false),
        }
    }
}

/// Read a session's output to its end (bounded by [`SESSION_LIMIT`]).
async fn read_all(stream: Option<OutputStream>) -> String {
    match stream {
        Some(mut s) => read_until(&mut s, |_| false).await.0,
        None => String::new(),
    }
}

/// Collect `stream` in the background into a buffer the check can look at any time (for
/// sessions that do not end by themselves, such as attach).
fn collect(stream: Option<OutputStream>) -> (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let task = tokio::spawn(async move {
        let Some(mut s) = stream else { return };
        let mut chunk = [0u8; 4096];
        while let Ok(n) = s.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, task)
}

fn collected(buffer: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// Wait for a session's exit code, bounded by [`SESSION_LIMIT`].
async fn wait_exit(session: client::ExecSession, what: &str) -> Result<i32, Failure> {
    match tokio::time::timeout(SESSION_LIMIT, session.wait()).await {
        Ok(r) => r.step(&format!("{what}: waiting for the exit status")),
        Err(_) => Err(Failure::Fail(format!(
            "{what}: the session did not end within {SESSION_LIMIT:?}"
        ))),
    }
}

async fn exec_output(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let mut session = client::exec(
        t.rt(),
        &r.container,
        &["echo", "hello"],
        ExecOptions::default(),
    )
    .await
    .step("exec session")?;
    let (stdout, stderr) = tokio::join!(
        read_all(session.stdout.take()),
        read_all(session.stderr.take())
    );
    let code = wait_exit(session, "exec").await?;
    ensure_eq!(stdout, "hello\n", "stdout of `echo hello`");
    ensure_eq!(stderr, "", "stderr of `echo hello`");
    ensure_eq!(code, 0, "exit code of `echo hello`");
    Ok(())
}

async fn exec_tty_stdin(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    // The command ends by itself once it has read a line: containerd's v4 WebSocket server
    // cannot pass on a closed stdin.
    let mut session = client::exec(
        t.rt(),
        &r.container,
        &["sh", "-c", "read line; echo \"got $line\""],
        ExecOptions::interactive_tty(),
    )
    .await
    .step("exec session with a TTY and stdin")?;
    let mut stdin = session
        .stdin
        .take()
        .ok_or_else(|| Failure::Fail("the exec session has no stdin".into()))?;
    let mut stdout = session
        .stdout
        .take()
        .ok_or_else(|| Failure::Fail("the exec session has no stdout".into()))?;
    stdin
        .write_all(b"typed-in\n")
        .await
        .map_err(|e| Failure::Fail(format!("writing to the exec's stdin: {e}")))?;
    let _ = stdin.flush().await;
    // A terminal turns the command's "\n" into "\r\n": that shows the TTY is there.
    let (out, seen) = read_until(&mut stdout, |s| s.contains("got typed-in\r\n")).await;
    ensure!(
        seen,
        "the terminal never showed \"got typed-in\\r\\n\" (TTY output so far: {out:?})"
    );
    // Read the terminal to its end before waiting: closing the session's writer first makes
    // a v4 server (containerd 1.6) drop the connection before it sends the exit status.
    let _ = read_until(&mut stdout, |_| false).await;
    drop((stdin, stdout));
    let code = wait_exit(session, "exec with a TTY").await?;
    ensure_eq!(code, 0, "exit code of the TTY exec");
    Ok(())
}

async fn exec_exit_code(t: TestContext) -> CheckResult {
    let r = t.run_sleeper().await?;
    let mut session = client::exec(
        t.rt(),
        &r.container,
        &["sh", "-c", "echo out; echo err >&2; exit 7"],
        ExecOptions::default(),
    )
    .await
    .step("exec session")?;
    let (stdout, stderr) = tokio::join!(
        read_all(session.stdout.take()),
        read_all(session.stderr.take())
    );
    let code = wait_exit(session, "exec").await?;
    ensure_eq!(code, 7, "exit code of `exit 7` through the stream");
    ensure_eq!(stdout, "out\n", "stdout");
    ensure_eq!(stderr, "err\n", "stderr");
    Ok(())
}

/// A pod with a container running a shell that reads its stdin (`stdin`, not once).
async fn run_shell(t: &TestContext, tty: bool) -> Result<Running, Failure> {
    let container = t
        .container()
        .command(["sh"])
        .stdin(true, false)
        .tty(tty)
        .build();
    t.run(t.pod().build(), container).await
}

async fn attach_shell(t: TestContext) -> CheckResult {
    let r = run_shell(&t, false).await?;
    let mut session = client::attach(t.rt(), &r.container, ExecOptions::default().with_stdin())
        .await
        .step("attach session")?;
    let (err_buffer, err_task) = collect(session.stderr.take());
    let mut stdin = session
        .stdin
        .take()
        .ok_or_else(|| Failure::Fail("the attach session has no stdin".into()))?;
    let mut stdout = session
        .stdout
        .take()
        .ok_or_else(|| Failure::Fail("the attach session has no stdout".into()))?;
    stdin
        .write_all(b"echo hello\n")
        .await
        .map_err(|e| Failure::Fail(format!("writing to the attached stdin: {e}")))?;
    let _ = stdin.flush().await;
    let (out, seen) = read_until(&mut stdout, |s| s.contains('\n')).await;
    let stderr = collected(&err_buffer);
    err_task.abort();
    ensure!(
        seen,
        "the attached shell's stdout never showed a line (so far: {out:?})"
    );
    ensure_eq!(out, "hello\n", "stdout of the attached shell");
    ensure_eq!(stderr, "", "stderr of the attached shell");
    // The shell keeps running (its stdin is not closed): the session ends with the check.
    drop((stdin, stdout, session));
    Ok(())
}

async fn attach_tty(t: TestContext) -> CheckResult {
    let r = run_shell(&t, true).await?;
    let mut session = client::attach(t.rt(), &r.container, ExecOptions::interactive_tty())
        .await
        .step("attach session with a TTY")?;
    let mut stdin = session
        .stdin
        .take()
        .ok_or_else(|| Failure::Fail("the attach session has no stdin".into()))?;
    let mut stdout = session
        .stdout
        .take()
        .ok_or_else(|| Failure::Fail("the attach session has no stdout".into()))?;
    // The terminal echoes what is typed, so the answer must be one only running the command
    // prints: the shell's arithmetic.
    stdin
        .write_all(b"echo $((40+2))-answer\n")
        .await
        .map_err(|e| Failure::Fail(format!("writing to the attached terminal: {e}")))?;
    let _ = stdin.flush().await;
    let (out, seen) = read_until(&mut stdout, |s| s.contains("42-answer\r\n")).await;
    ensure!(
        seen,
        "the attached terminal never showed \"42-answer\\r\\n\" (output so far: {out:?})"
    );
    drop((stdin, stdout, session));
    Ok(())
}

/// GET / through one forwarded connection to `port` in `pod`; the whole answer, or why not.
async fn get_through_port_forward(
    rt: &dyn anycri::RuntimeService,
    pod: &str,
    port: u16,
) -> Result<String, String> {
    let mut stream = client::port_forward(rt, pod, port)
        .await
        .map_err(|e| format!("port-forward session: {} error: {e}", e.kind().as_str()))?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: conformance\r\n\r\n")
        .await
        .map_err(|e| format!("writing the request: {e}"))?;
    let _ = stream.flush().await;
    // HTTP/1.0: the server closes the connection after the answer.
    let mut bytes = Vec::new();
    match tokio::time::timeout(SESSION_LIMIT, stream.read_to_end(&mut bytes)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if bytes.is_empty() => return Err(format!("reading the answer: {e}")),
        // What arrived before an error (some servers reset instead of closing) still counts.
        Ok(Err(_)) | Err(_) => {}
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.is_empty() {
        return Err("no answer".into());
    }
    Ok(text)
}

fn body(answer: &str) -> Option<&str> {
    answer.split_once("\r\n\r\n").map(|(_, b)| b)
}

async fn port_forward_page(t: TestContext) -> CheckResult {
    let image = t.image(ImageKind::WebServer)?;
    t.ensure_image(&image).await?;
    let container_port: u16 = 80;
    let pod = t
        .pod()
        .port_mapping(Protocol::Tcp, i32::from(container_port), 0)
        .build();
    let mut container = t.container_on(&image).build();
    // The image's own entrypoint and command start the server.
    container.command.clear();
    container.args.clear();
    let r = t.run(pod, container).await?;
    // As critest does, first make sure the server serves at the pod IP.
    let ip = t
        .pod_status(&r.pod)
        .await?
        .network
        .map(|n| n.ip)
        .unwrap_or_default();
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| Failure::Fail(format!("pod IP {ip:?} is not an address")))?;
    let at_pod = poll(
        Duration::from_secs(15),
        &format!("the web server never answered at {ip}:{container_port}"),
        || async { Ok(super::network::http_get((ip, container_port).into()).await) },
    )
    .await?;
    let last = Mutex::new(String::new());
    let forwarded = poll(
        Duration::from_secs(15),
        "no answer through the port-forward",
        || async {
            match get_through_port_forward(t.rt(), &r.pod, container_port).await {
                Ok(answer) => Ok(Some(answer)),
                Err(e) => {
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = e;
                    Ok(None)
                }
            }
        },
    )
    .await
    .map_err(|f| match f {
        Failure::Fail(m) => Failure::Fail(format!(
            "{m}; last attempt: {}",
            last.lock().unwrap_or_else(|p| p.into_inner())
        )),
        other => other,
    })?;
    ensure!(
        forwarded.starts_with("HTTP/1.") && forwarded.contains(" 200 "),
        "the answer through the port-forward is not a 200: {forwarded:?}"
    );
    ensure_eq!(
        body(&forwarded),
        body(&at_pod),
        "page through the port-forward and at the pod IP"
    );
    Ok(())
}
