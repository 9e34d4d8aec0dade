//! Streaming exec on any runtime: run a pod, then `kubectl exec -i`-style sessions through
//! the runtime's streaming server with `anycri_streaming::client` — stdin sent and closed,
//! stdout and stderr read apart, the exit code — and one with a terminal.
//!
//! ```sh
//! cargo run --example streaming_exec -- unix:///run/containerd/containerd.sock busybox:1.36 /tmp/pod-logs
//! cargo run --example streaming_exec -- "docker:///var/run/docker.sock?pause_image=registry.k8s.io/pause:3.9"
//! ```
//!
//! Arguments: endpoint (default: auto-detect), image (default `$ANYCRI_TEST_IMAGE`, else
//! `busybox:latest`), base log directory (default under the temporary directory). The
//! in-memory fake (`fake://`) has no streaming server: the example says so and stops.

use std::time::Duration;

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, Result, RuntimeService,
    RuntimeServiceExt, api::ContainerState,
};
use anycri_streaming::client::{self, ExecOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().filter(|a| !a.is_empty());
    let image = args
        .next()
        .or_else(|| std::env::var("ANYCRI_TEST_IMAGE").ok())
        .unwrap_or_else(|| "busybox:latest".into());
    let log_dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("anycri-example-logs"));

    let connected = match endpoint {
        Some(e) => anycri::connect(&e).await?,
        None => anycri::connect_auto().await?,
    };
    let (runtime, images) = (connected.runtime, connected.image);
    let info = anycri::discover(&*runtime).await?;
    if !info.capabilities.exec {
        println!(
            "{} has no streaming Exec; nothing to show",
            info.runtime_name
        );
        return Ok(());
    }
    images.pull_image_if_absent(&image, None).await?;

    let uid = anycri::builders::new_uid();
    let pod = PodSandboxConfigBuilder::new("anycri-streaming-example", "default")
        .uid(&uid)
        .log_directory(
            log_dir
                .join(format!("default_anycri-streaming-example_{uid}"))
                .to_string_lossy(),
        )
        .build();
    let container = ContainerConfigBuilder::new("shell", &image)
        .command(["sleep", "3600"])
        .build();
    let ids = runtime.run_pod_and_container(pod, container).await?;
    let result = sessions(&*runtime, &ids.container_id).await;
    runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await?;
    println!("removed pod {}", ids.pod_sandbox_id);
    result
}

async fn sessions(runtime: &dyn RuntimeService, container_id: &str) -> Result<()> {
    runtime
        .wait_for_container_state(
            container_id,
            ContainerState::ContainerRunning,
            Duration::from_secs(30),
        )
        .await?;

    // 1. stdin, stdout and stderr apart. With stdin the client takes SPDY/3.1, whose
    //    half-close reaches the process as end of input on every runtime.
    let script = r#"while read line; do echo "got: $line"; done; echo "stdin closed" >&2; exit 3"#;
    let mut session = client::exec(
        runtime,
        container_id,
        &["sh", "-c", script],
        ExecOptions::default().with_stdin(),
    )
    .await?;
    println!(
        "session over {:?} ({})",
        session.transport(),
        session.protocol()
    );
    let mut stdin = session.stdin.take().expect("asked for stdin");
    let mut stdout = session.stdout.take().expect("asked for stdout");
    let mut stderr = session.stderr.take().expect("asked for stderr");
    // Read both outputs while writing: a stream nobody reads holds the session up.
    let read_out = tokio::spawn(async move {
        let mut s = String::new();
        stdout.read_to_string(&mut s).await.map(|_| s)
    });
    let read_err = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.map(|_| s)
    });
    for line in ["one", "two"] {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| anycri::Error::internal(format!("writing stdin: {e}")))?;
    }
    stdin
        .shutdown()
        .await
        .map_err(|e| anycri::Error::internal(format!("closing stdin: {e}")))?;
    let code = session.wait().await?;
    let out = read_out.await.expect("reader").unwrap_or_default();
    let err = read_err.await.expect("reader").unwrap_or_default();
    print!("stdout:\n{out}stderr:\n{err}");
    println!("exit code {code}");

    // 2. A terminal, as `kubectl exec -it` opens one: stdin and a TTY, whose output (the
    //    echo of what is typed included) comes on stdout; its size is sent on resize.
    let mut session = client::exec(
        runtime,
        container_id,
        &["sh", "-c", "tty; read name; echo \"hello, $name\"; exit 5"],
        ExecOptions::interactive_tty(),
    )
    .await?;
    session.resize(100, 30).await?;
    let mut stdin = session.stdin.take().expect("asked for stdin");
    let mut stdout = session.stdout.take().expect("asked for stdout");
    let read_out = tokio::spawn(async move {
        let mut s = Vec::new();
        stdout.read_to_end(&mut s).await.map(|_| s)
    });
    stdin
        .write_all(b"anycri\n")
        .await
        .map_err(|e| anycri::Error::internal(format!("writing stdin: {e}")))?;
    let code = session.wait().await?;
    drop(stdin);
    let out = read_out.await.expect("reader").unwrap_or_default();
    print!(
        "with a TTY (exit {code}):\n{}",
        String::from_utf8_lossy(&out).replace('\r', "")
    );
    Ok(())
}
