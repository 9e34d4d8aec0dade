//! The decorators over real implementations: the timeout layer bounds a call that hangs, the
//! retry layer repeats read-only calls on retryable errors and never repeats a mutation, the
//! tracing layer passes results through, and the mockall mock works as `Arc<dyn ...>`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anycri::{
    Error, ErrorKind, LayerExt, MockRuntimeService, RetryLayer, RuntimeService, RuntimeServiceExt,
    api::*,
    fake::{ExecHandler, ExecResult, FakeRuntime},
};
use async_trait::async_trait;

/// A command that blocks for ten seconds, as a hung process would.
struct Hang;

#[async_trait]
impl ExecHandler for Hang {
    async fn run(&self, _container_id: &str, cmd: &[String]) -> ExecResult {
        if cmd.first().is_some_and(|c| c == "hang") {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        ExecResult {
            sleeping: (cmd.is_empty() || cmd[0] != "hang").then_some(Duration::from_secs(3600)),
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn timeout_layer_bounds_exec_sync_by_its_own_timeout() {
    let fake = FakeRuntime::with_exec_handler(Hang);
    fake.add_image("busybox").unwrap();
    let rt = fake.with_timeouts(Duration::from_millis(200));
    let ids = rt
        .run_pod_and_container(
            anycri::PodSandboxConfigBuilder::new("p", "ns").build(),
            anycri::ContainerConfigBuilder::new("c", "busybox")
                .command(["sleep", "3600"])
                .build(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let err = rt
        .exec_collect(&ids.container_id, &["hang"], Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    // The deadline is the request timeout plus the exec's own timeout: 1.2 s, not 10 s.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1150) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn retry_layer_repeats_reads_only() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut mock = MockRuntimeService::new();
    let seen = calls.clone();
    mock.expect_list_containers().times(3).returning(move |_| {
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(Error::unavailable("runtime restarting")),
            _ => Ok(ListContainersResponse::default()),
        }
    });
    mock.expect_run_pod_sandbox()
        .times(1)
        .returning(|_| Err(Error::unavailable("runtime restarting")));
    mock.expect_container_status()
        .times(1)
        .returning(|_| Err(Error::not_found("no such container")));
    let policy = RetryLayer::default()
        .max_attempts(4)
        .initial_backoff(Duration::from_millis(1))
        .max_backoff(Duration::from_millis(2));
    let rt: Arc<dyn RuntimeService> = Arc::new(mock.with_retries(policy));

    rt.list_containers(ListContainersRequest::default())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // A mutation is never repeated, whatever the error.
    let err = rt
        .run_pod_sandbox(RunPodSandboxRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // A read with a non-retryable error is not repeated either.
    let err = rt
        .container_status(ContainerStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn tracing_layer_passes_results_through() {
    let fake = FakeRuntime::new();
    let rt: Arc<dyn RuntimeService> =
        Arc::new(fake.with_tracing().with_timeouts(Duration::from_secs(5)));
    let v = rt.version(VersionRequest::default()).await.unwrap();
    assert_eq!(v.runtime_name, anycri::fake::RUNTIME_NAME);
    let err = rt.get_pod_status("missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn fake_streams_events_and_lists() {
    use futures::StreamExt;
    let fake = FakeRuntime::new();
    fake.add_image("busybox").unwrap();
    let mut events = fake
        .get_container_events(GetEventsRequest {})
        .await
        .unwrap();
    let ids = fake
        .run_pod_and_container(
            anycri::PodSandboxConfigBuilder::new("p", "ns").build(),
            anycri::ContainerConfigBuilder::new("c", "busybox")
                .command(["sleep", "3600"])
                .build(),
        )
        .await
        .unwrap();
    let kinds: Vec<i32> = vec![
        events.next().await.unwrap().unwrap().container_event_type,
        events.next().await.unwrap().unwrap().container_event_type,
    ];
    assert_eq!(
        kinds,
        vec![
            ContainerEventType::ContainerCreatedEvent as i32,
            ContainerEventType::ContainerStartedEvent as i32
        ]
    );
    let batches: Vec<_> = fake
        .stream_containers(StreamContainersRequest::default())
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await;
    let streamed: Vec<String> = batches
        .into_iter()
        .flat_map(|b| b.unwrap().containers)
        .map(|c| c.id)
        .collect();
    assert_eq!(streamed, vec![ids.container_id]);
}
