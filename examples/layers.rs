//! Layers: wrap any backend in timeouts (the kubelet's deadlines), retries (read-only calls,
//! with backoff) and tracing (a span per call), or in a layer of your own. The wrapped
//! backend is a backend again, so a tool does not change.
//!
//! ```sh
//! cargo run --example layers                  # against the in-memory fake
//! cargo run --example layers -- unix:///run/containerd/containerd.sock
//! RUST_LOG=anycri_core=debug cargo run --example layers   # successful calls too, not only failures
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anycri::{
    ContainerConfigBuilder, Error, Layer, LayerExt, Layered, PodSandboxConfigBuilder, Result,
    RetryLayer, RuntimeService, RuntimeServiceExt,
    fake::{ExecHandler, ExecResult, FakeRuntime, ShellExec},
    layer::Call,
};

#[tokio::main]
async fn main() -> Result<()> {
    // TracingLayer writes through `tracing`: install a subscriber to see it. Failures log at
    // warn, successes at debug.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "anycri_core=info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    // 1. The usual stack on a real connection, innermost first: each attempt bounded in
    //    time, read-only calls retried, one span around it all.
    if let Some(endpoint) = std::env::args().nth(1) {
        let runtime = anycri::connect(&endpoint)
            .await?
            .runtime
            .with_timeouts(Duration::from_secs(120))
            .with_retries(RetryLayer::default())
            .with_tracing();
        let pods = runtime.list_pod_sandbox(Default::default()).await?;
        println!("{endpoint}: {} pods", pods.items.len());
        return Ok(());
    }

    // 2. Timeouts: a runtime whose exec never answers (the fake's exec handler decides
    //    what commands do). Without the layer this call would wait for ever.
    let fake = FakeRuntime::with_exec_handler(HangsOn("hang"));
    fake.add_image("busybox:1.36")?;
    let runtime = fake
        .clone()
        .with_timeouts(Duration::from_millis(500))
        .with_tracing();
    let pod = PodSandboxConfigBuilder::new("layers", "default").build();
    let app = ContainerConfigBuilder::new("app", "busybox:1.36").command(["sleep", "3600"]);
    let ids = runtime.run_pod_and_container(pod, app.build()).await?;
    let started = Instant::now();
    // ExecSync's deadline: the request timeout plus the exec's own timeout (1 s).
    let err = runtime
        .exec_collect(&ids.container_id, &["hang"], Duration::from_secs(1))
        .await
        .unwrap_err();
    println!(
        "timeouts: {} after {:.1?} ({})",
        err.kind(),
        started.elapsed(),
        err.message()
    );

    // 3. Retries: a runtime that fails every other call with Unavailable (a layer of our
    //    own, below). Reads are retried; writes never are, since the first attempt may
    //    have taken effect.
    let flaky = Layered::new(fake.clone(), FailEveryOther::default());
    let runtime = flaky
        .with_retries(
            RetryLayer::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(50))
                .max_backoff(Duration::from_secs(1)),
        )
        .with_tracing();
    for _ in 0..3 {
        let status = runtime.get_container_status(&ids.container_id).await?;
        println!("retries: ContainerStatus answered ({:?})", status.state());
    }
    let attempts = runtime
        .inner()
        .inner()
        .layer()
        .attempts
        .load(Ordering::Relaxed);
    println!("retries: 3 calls took {attempts} attempts");
    // The next attempt fails, and StopContainer is not read-only: the error comes back.
    let stop = runtime
        .stop_container(anycri::api::StopContainerRequest {
            container_id: ids.container_id.clone(),
            timeout: 0,
        })
        .await;
    println!("retries: StopContainer -> {:?}", stop.map_err(|e| e.kind()));

    // 4. All of it behind the trait object a tool takes.
    let runtime: Arc<dyn RuntimeService> = Arc::new(
        fake.with_timeouts(Duration::from_secs(120))
            .with_retries(RetryLayer::default())
            .with_tracing(),
    );
    runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await?;
    println!("cleaned up through the layered trait object");
    Ok(())
}

/// Exec handler: `cmd` never ends; everything else as the fake's shell.
struct HangsOn(&'static str);

#[async_trait::async_trait]
impl ExecHandler for HangsOn {
    async fn run(&self, container_id: &str, cmd: &[String]) -> ExecResult {
        if cmd.first().is_some_and(|c| c == self.0) {
            std::future::pending::<()>().await;
        }
        ShellExec.run(container_id, cmd).await
    }
}

/// A layer of our own: every other attempt fails with Unavailable before reaching the
/// backend, as calls to a restarting runtime do. A layer sees each call's `Operation` (name,
/// read-only or not, deadline policy) and the IDs it names.
#[derive(Default)]
struct FailEveryOther {
    attempts: AtomicU32,
}

impl Layer for FailEveryOther {
    async fn around<'a, T, F, Fut>(&'a self, call: Call<'a>, attempt: F) -> Result<T>
    where
        T: Send + 'a,
        F: Fn() -> Fut + Send + Sync + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
            return Err(Error::unavailable(format!(
                "{}: connection refused",
                call.operation.name
            )));
        }
        attempt().await
    }
}
