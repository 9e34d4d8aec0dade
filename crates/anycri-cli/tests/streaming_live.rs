//! The `anycri` binary's streaming commands end to end — `exec` (piped stdin, exit codes, a
//! terminal driven through a pseudo-terminal), `attach` and `port-forward` — against the live
//! containerd and the Docker shim from `scripts/runtime-env`, plus their one-line errors on
//! the fake. The live part skips with a reason without a runtime, and fails under
//! ANYCRI_REQUIRE_LIVE=1.

use std::{
    io::{BufRead, Read, Write},
    os::fd::AsFd,
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    time::Duration,
};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt, api::ContainerState,
};
use anycri_testenv::{env_value, skip_or_fail};
use rustix::{
    process::{Pid, Signal, kill_process},
    pty::{self, OpenptFlags},
    termios::{self, LocalModes, Winsize},
};

/// A hang guard for reads from a child, not a timing check.
const GUARD: Duration = Duration::from_secs(60);

fn anycri_cmd(endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anycri"));
    // Errors only: the in-process Docker shim's warnings would mix with the command's stderr.
    c.args(["--log-level", "error", "-r", endpoint])
        .args(args)
        .env_remove("CONTAINER_RUNTIME_ENDPOINT")
        .env_remove("IMAGE_SERVICE_ENDPOINT");
    c
}

/// Run anycri with `stdin` piped in: exit code, stdout, stderr.
fn anycri(endpoint: &str, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = anycri_cmd(endpoint, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run anycri");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for anycri");
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_line_error(code: i32, err: &str, needle: &str, what: &str) {
    assert_eq!(code, 1, "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(
        err.starts_with("anycri: error: ") && err.contains(needle),
        "{what}: {err}"
    );
}

#[test]
fn streaming_errors_are_one_line_on_the_fake() {
    for (args, needle) in [
        // The fake hands out no streaming URLs.
        (vec!["exec", "nope", "--", "true"], "unimplemented"),
        (
            vec!["exec", "-i", "-t", "nope", "--", "sh"],
            "unimplemented",
        ),
        (vec!["attach", "nope"], "not found"),
        (vec!["port-forward", "nope", "8080"], "not found"),
        (vec!["port-forward", "nope", "x:80"], "[LOCAL:]REMOTE"),
        (vec!["port-forward", "nope", "80:0"], "[LOCAL:]REMOTE"),
        (
            vec!["port-forward", "--address", "nowhere", "nope", "80"],
            "IP address",
        ),
    ] {
        let (code, out, err) = anycri("fake://", &args, b"");
        assert_one_line_error(code, &err, needle, &format!("{args:?} {out}"));
    }
}

/// A pod on a live runtime, removed (through the CLI) when dropped, even after a failure.
struct Pod {
    endpoint: String,
    id: String,
    config: anycri::api::PodSandboxConfig,
    runtime: Arc<dyn RuntimeService>,
    image: String,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = anycri_cmd(&self.endpoint, &["rmp", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Pod {
    async fn run(endpoint: String, name: &str) -> Pod {
        let connected = anycri::connect(&endpoint).await.expect("connect");
        let image = env_value("ANYCRI_TEST_IMAGE").expect("ANYCRI_TEST_IMAGE");
        connected
            .image
            .pull_image_if_absent(&image, None)
            .await
            .expect("pull the test image");
        let log_dir = format!(
            "{}/cli-streaming-{}",
            env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| "/var/tmp/anycri-env/logs".into()),
            anycri::builders::new_uid()
        );
        let config = PodSandboxConfigBuilder::new(name, "anycri-test")
            .log_directory(&log_dir)
            .build();
        let id = connected
            .runtime
            .run_pod(config.clone())
            .await
            .expect("run a pod");
        Pod {
            endpoint,
            id,
            config,
            runtime: connected.runtime,
            image,
        }
    }

    /// Start a container running `script` (sh -c) and wait until it runs.
    async fn container(&self, name: &str, script: &str) -> String {
        let ctr = ContainerConfigBuilder::new(name, &self.image)
            .command(["sh", "-c", script])
            .build();
        let id = self
            .runtime
            .create_and_start_container(&self.id, &self.config, ctr)
            .await
            .expect("start a container");
        self.runtime
            .wait_for_container_state(&id, ContainerState::ContainerRunning, GUARD)
            .await
            .expect("container running");
        id
    }
}

/// Bytes a child writes, read on a thread of their own so a test can wait with a guard.
struct Reader {
    rx: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Reader {
    fn new(mut from: impl Read + Send + 'static) -> Reader {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Reader {
            rx,
            seen: Vec::new(),
        }
    }

    /// Read until `needle` shows up (after what `wait_for` consumed before); false at EOF.
    fn wait_for(&mut self, needle: &str) -> bool {
        loop {
            if let Some(at) = find(&self.seen, needle.as_bytes()) {
                self.seen.drain(..at + needle.len());
                return true;
            }
            match self.rx.recv_timeout(GUARD) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {needle:?} after {GUARD:?}; got {:?}",
                        String::from_utf8_lossy(&self.seen)
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Whatever arrives within a short while (for polling loops; never asserted on).
    fn poll(&mut self) {
        while let Ok(chunk) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.seen.extend_from_slice(&chunk);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn wait_child(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    for _ in 0..(GUARD.as_millis() / 100) {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("{what} did not end");
}

fn signal(child: &std::process::Child, signal: Signal) {
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    kill_process(pid, signal).unwrap();
}

/// Everything the streaming commands do, on one runtime.
async fn check(endpoint: String) {
    let pod = Pod::run(endpoint.clone(), "cli-streaming").await;
    let ticker = pod
        .container(
            "ticker",
            "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done",
        )
        .await;
    let server = pod
        .container(
            "server",
            "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www",
        )
        .await;
    let ep = endpoint.as_str();

    // Streaming exec (the default): output on the right streams, exit code passed on.
    let (code, out, err) = tokio::task::spawn_blocking({
        let (e, c) = (ep.to_owned(), server.clone());
        move || {
            anycri(
                &e,
                &[
                    "exec",
                    &c,
                    "--",
                    "sh",
                    "-c",
                    "echo out; echo err >&2; exit 7",
                ],
                b"",
            )
        }
    })
    .await
    .unwrap();
    assert_eq!((code, out.as_str(), err.as_str()), (7, "out\n", "err\n"));

    // exec -i: stdin reaches the command.
    let (code, out, err) = tokio::task::spawn_blocking({
        let (e, c) = (ep.to_owned(), server.clone());
        move || {
            anycri(
                &e,
                &["exec", "-i", &c, "--", "sh", "-c", "read l; echo got:$l"],
                b"piped-line\n",
            )
        }
    })
    .await
    .unwrap();
    assert_eq!((code, out.as_str()), (0, "got:piped-line\n"), "{err}");
    // The end of stdin reaches the command too: cat ends (stdin goes over SPDY, which can
    // close it on containerd 1.6, whose WebSocket protocol cannot).
    let (code, out, err) = tokio::task::spawn_blocking({
        let (e, c) = (ep.to_owned(), server.clone());
        move || anycri(&e, &["exec", "-i", &c, "--", "cat"], b"one\ntwo\n")
    })
    .await
    .unwrap();
    assert_eq!((code, out.as_str()), (0, "one\ntwo\n"), "{err}");

    // An unknown container: one line, non-zero.
    let (code, _, err) = tokio::task::spawn_blocking({
        let e = ep.to_owned();
        move || anycri(&e, &["exec", "no-such-container-0000", "--", "true"], b"")
    })
    .await
    .unwrap();
    assert_one_line_error(code, &err, "not found", "exec on an unknown container");

    // exec -it on a pseudo-terminal: raw mode, the size, its change, the exit code, and the
    // terminal's settings put back afterwards.
    tokio::task::spawn_blocking({
        let (e, c) = (ep.to_owned(), server.clone());
        move || check_tty(&e, &c)
    })
    .await
    .unwrap();

    // attach: the running container's output, until interrupted.
    tokio::task::spawn_blocking({
        let (e, c) = (ep.to_owned(), ticker.clone());
        move || {
            let mut child = anycri_cmd(&e, &["attach", &c])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = Reader::new(child.stdout.take().unwrap());
            assert!(out.wait_for("tick-"), "attach printed nothing");
            assert!(out.wait_for("\ntick-"), "attach printed one line only");
            signal(&child, Signal::INT);
            let status = wait_child(&mut child, "attach after SIGINT");
            assert_eq!(status.code(), Some(130), "{status}");
        }
    })
    .await
    .unwrap();

    // port-forward: a free local port, one connection per accepted connection.
    tokio::task::spawn_blocking({
        let (e, p) = (ep.to_owned(), pod.id.clone());
        move || {
            let mut child = anycri_cmd(&e, &["port-forward", &p, ":8080"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let addr = line
                .strip_prefix("Forwarding from ")
                .and_then(|l| l.trim().strip_suffix(" -> 8080"))
                .unwrap_or_else(|| panic!("{line:?}"))
                .to_owned();
            assert!(addr.starts_with("127.0.0.1:"), "{addr}");
            for _ in 0..2 {
                let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
                tcp.set_read_timeout(Some(GUARD)).unwrap();
                tcp.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
                let mut response = String::new();
                tcp.read_to_string(&mut response).unwrap();
                assert!(response.starts_with("HTTP/1."), "{response}");
                assert!(response.ends_with("hello-from-pod\n"), "{response}");
            }
            signal(&child, Signal::INT);
            let status = wait_child(&mut child, "port-forward after SIGINT");
            assert!(status.success(), "{status}");
        }
    })
    .await
    .unwrap();

    // A port spec that is no port: one line, non-zero.
    let (code, _, err) = tokio::task::spawn_blocking({
        let (e, p) = (ep.to_owned(), pod.id.clone());
        move || anycri(&e, &["port-forward", &p, "80:99999"], b"")
    })
    .await
    .unwrap();
    assert_one_line_error(code, &err, "[LOCAL:]REMOTE", "a bad port spec");
}

fn check_tty(endpoint: &str, container: &str) {
    let master = pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    pty::grantpt(&master).unwrap();
    pty::unlockpt(&master).unwrap();
    let name = pty::ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let size = |rows, cols| Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(&master, size(33, 101)).unwrap();
    let before = termios::tcgetattr(&slave).unwrap();
    assert!(
        before
            .local_modes
            .contains(LocalModes::ICANON | LocalModes::ECHO)
    );
    let mut child = anycri_cmd(
        endpoint,
        &[
            "exec",
            "-i",
            "-t",
            container,
            "--",
            "sh",
            "-c",
            "stty size; while read l; do stty size; done; exit 5",
        ],
    )
    .stdin(slave.try_clone().unwrap())
    .stdout(slave.try_clone().unwrap())
    .stderr(slave.try_clone().unwrap())
    .spawn()
    .unwrap();
    let mut master_w = std::fs::File::from(master.as_fd().try_clone_to_owned().unwrap());
    let mut out = Reader::new(std::fs::File::from(master));
    // The first `stty size` may run before the size arrives: ask again until it shows.
    let mut seen = false;
    for _ in 0..100 {
        out.poll();
        if find(&out.seen, b"33 101").is_some() {
            seen = true;
            break;
        }
        master_w.write_all(b"\r").unwrap();
    }
    assert!(
        seen,
        "no 33 101 in {:?}",
        String::from_utf8_lossy(&out.seen)
    );
    // While the session runs, the local terminal is raw.
    let during = termios::tcgetattr(&slave).unwrap();
    assert!(!during.local_modes.contains(LocalModes::ICANON));
    // A new size, announced by SIGWINCH as a terminal would.
    termios::tcsetwinsize(&slave, size(40, 120)).unwrap();
    out.seen.clear();
    let mut resized = false;
    for _ in 0..100 {
        signal(&child, Signal::WINCH);
        master_w.write_all(b"\r").unwrap();
        out.poll();
        if find(&out.seen, b"40 120").is_some() {
            resized = true;
            break;
        }
    }
    assert!(
        resized,
        "no 40 120 in {:?}",
        String::from_utf8_lossy(&out.seen)
    );
    // Ctrl-D ends the remote shell's input: the loop ends and the shell exits 5.
    master_w.write_all(&[4]).unwrap();
    let status = wait_child(&mut child, "exec -it after Ctrl-D");
    assert_eq!(status.code(), Some(5), "{status}");
    let after = termios::tcgetattr(&slave).unwrap();
    assert_eq!(after.local_modes, before.local_modes);
    assert_eq!(after.input_modes, before.input_modes);
    assert_eq!(after.output_modes, before.output_modes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_commands_on_containerd() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is unknown");
        return;
    };
    check(endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_commands_on_the_docker_shim() {
    let Some(endpoint) = env_value("ANYCRI_DOCKER_ENDPOINT") else {
        skip_or_fail("ANYCRI_DOCKER_ENDPOINT is unknown");
        return;
    };
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let pause = env_value("ANYCRI_PAUSE_IMAGE").expect("ANYCRI_PAUSE_IMAGE");
    let uri = format!("{endpoint}?pause_image={pause}&state_dir={env_dir}/anycri-docker");
    check(uri).await;
}
