//! Streaming: Exec, Attach and PortForward return a URL of the runtime's streaming server;
//! sessions through it (exec with and without a TTY and stdin, attach, port-forward) need
//! anycri's streaming client. The session checks are registered here, in one place, and
//! skipped through [`Need::StreamingClient`] until that client exists.

use super::prelude::*;

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
            "exec through the streaming URL returns the command's output",
            needs_client
        )
        .critest("[k8s.io] Streaming runtime should support streaming exec")
        .needs(&[Need::Exec, Need::StreamingClient]),
        check!(
            "streaming::exec_tty_stdin",
            "exec with a TTY and stdin echoes what is typed",
            needs_client
        )
        .critest("[k8s.io] Streaming runtime should support streaming exec with tty and stdin")
        .needs(&[Need::Exec, Need::StreamingClient]),
        check!(
            "streaming::attach",
            "attach to a container's stdin and stdout",
            needs_client
        )
        .critest("[k8s.io] Streaming runtime should support streaming attach")
        .needs(&[Need::Attach, Need::StreamingClient]),
        check!(
            "streaming::port_forward",
            "port-forward reaches a server in the pod",
            needs_client
        )
        .critest("[k8s.io] Streaming runtime should support streaming port forward")
        .needs(&[Need::PortForward, Need::StreamingClient]),
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

/// The session checks, until the streaming client lands (their need keeps them skipped).
async fn needs_client(_t: TestContext) -> CheckResult {
    Err(Failure::Skip("needs the streaming client".into()))
}
