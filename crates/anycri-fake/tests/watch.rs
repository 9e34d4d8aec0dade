//! `anycri_core::watch` on the in-memory runtime: events in lifecycle order from the
//! runtime's stream and from relisting, duplicates dropped, and a broken stream's gap
//! covered by a relist. (The watch on real runtimes is tested in the live suites.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anycri_core::api::*;
use anycri_core::watch::{self, EventOrigin, EventSource, SourceEvent, WatchEvent, WatchOptions};
use anycri_core::{
    ContainerConfigBuilder, CriStream, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt,
};
use anycri_fake::FakeRuntime;
use futures::StreamExt;

const CREATED: ContainerEventType = ContainerEventType::ContainerCreatedEvent;
const STARTED: ContainerEventType = ContainerEventType::ContainerStartedEvent;
const STOPPED: ContainerEventType = ContainerEventType::ContainerStoppedEvent;
const DELETED: ContainerEventType = ContainerEventType::ContainerDeletedEvent;

fn fake() -> FakeRuntime {
    let rt = FakeRuntime::new();
    rt.add_image("busybox").unwrap();
    rt
}

fn fast() -> WatchOptions {
    WatchOptions::default().relist_period(Duration::from_millis(20))
}

/// Runs a pod and a container through their whole lifecycle; returns (pod, container).
async fn lifecycle(rt: &FakeRuntime, log_dir: &std::path::Path) -> (String, String) {
    let pod_config = PodSandboxConfigBuilder::new("web", "watch")
        .log_directory(log_dir.join("pod").to_string_lossy())
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let c = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("app", "busybox").build(),
        )
        .await
        .unwrap();
    // Let a relisting watch see the running state before the stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    rt.stop_container(StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .unwrap();
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    (pod, c)
}

/// Events of `id` until its DELETED (or 5 s); with `all`, every event until then.
async fn collect(stream: &mut CriStream<WatchEvent>, id: &str, all: bool) -> Vec<WatchEvent> {
    let mut seen = Vec::new();
    let collect = async {
        while let Some(e) = stream.next().await {
            let e = e.unwrap();
            if e.id() == id || all {
                let done = e.id() == id && e.kind() == DELETED;
                seen.push(e);
                if done {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
    seen
}

/// Events of `id` until its DELETED (or 5 s).
async fn events_of(stream: &mut CriStream<WatchEvent>, id: &str) -> Vec<WatchEvent> {
    collect(stream, id, false).await
}

fn kinds(events: &[WatchEvent]) -> Vec<ContainerEventType> {
    events.iter().map(WatchEvent::kind).collect()
}

#[tokio::test]
async fn relisting_reports_every_step_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rt = fake();
    let shared: Arc<dyn RuntimeService> = Arc::new(rt.clone());
    let mut stream = watch::watch(shared, fast().use_runtime_events(false))
        .await
        .unwrap();
    let (pod, c) = lifecycle(&rt, dir.path()).await;
    // Everything until the pod's DELETED (the last step of the lifecycle).
    let all = collect(&mut stream, &pod, true).await;
    let seen: Vec<WatchEvent> = all.iter().filter(|e| e.id() == c).cloned().collect();
    let pod_events: Vec<WatchEvent> = all.iter().filter(|e| e.id() == pod).cloned().collect();
    assert_eq!(kinds(&seen), [CREATED, STARTED, STOPPED, DELETED]);
    assert!(seen.iter().all(|e| e.origin == EventOrigin::Relist));
    assert!(
        seen.iter()
            .all(|e| e.pod_sandbox_id == pod && !e.is_sandbox)
    );
    // The started event carries the pod's status and the container's, as the evented PLEG
    // reads them.
    let started = &seen[1].event;
    assert_eq!(
        started.pod_sandbox_status.as_ref().map(|s| s.id.as_str()),
        Some(pod.as_str())
    );
    assert!(started.containers_statuses.iter().any(|s| s.id == c));
    // The sandbox: the same four steps.
    assert!(pod_events.iter().all(|e| e.is_sandbox));
    assert_eq!(kinds(&pod_events), [CREATED, STARTED, STOPPED, DELETED]);
}

#[tokio::test]
async fn runtime_events_are_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let rt = fake();
    let shared: Arc<dyn RuntimeService> = Arc::new(rt.clone());
    let mut stream = watch::watch(shared, fast()).await.unwrap();
    let (_, c) = lifecycle(&rt, dir.path()).await;
    let seen = events_of(&mut stream, &c).await;
    assert_eq!(kinds(&seen), [CREATED, STARTED, STOPPED, DELETED]);
    assert!(
        seen.iter().all(|e| e.origin == EventOrigin::Runtime),
        "{seen:?}"
    );
}

#[tokio::test]
async fn initial_events_report_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let rt = fake();
    let pod_config = PodSandboxConfigBuilder::new("web", "watch")
        .log_directory(dir.path().to_string_lossy())
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let c = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("app", "busybox").build(),
        )
        .await
        .unwrap();
    let shared: Arc<dyn RuntimeService> = Arc::new(rt.clone());
    let mut stream = watch::watch(shared, fast().initial_events(true))
        .await
        .unwrap();
    let first: Vec<WatchEvent> = (&mut stream).take(4).map(Result::unwrap).collect().await;
    // The sandbox first, then the container's steps.
    assert_eq!(first[0].id(), pod);
    assert_eq!(kinds(&first[..2]), [CREATED, STARTED]);
    assert_eq!(first[2].id(), c);
    assert_eq!(kinds(&first[2..]), [CREATED, STARTED]);
}

/// A source whose stream breaks after `good` events on its first subscription, repeats
/// every event twice, and counts subscriptions.
fn flaky_source(rt: FakeRuntime, subscriptions: Arc<AtomicUsize>) -> EventSource {
    Arc::new(move || {
        let rt = rt.clone();
        let n = subscriptions.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let events = rt.get_container_events(GetEventsRequest {}).await?;
            let doubled = events.flat_map(|e| {
                let twice: Vec<_> = match e {
                    Ok(e) => vec![Ok(e.clone()), Ok(e)],
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(
                    twice
                        .into_iter()
                        .map(|e| e.map(|e| SourceEvent::Response(Box::new(e)))),
                )
            });
            // The first subscription breaks at once: everything until the next one is a gap.
            if n == 0 {
                let gap = futures::stream::once(async {
                    Err(anycri_core::Error::new(
                        anycri_core::ErrorKind::Unavailable,
                        "connection reset",
                    ))
                });
                Ok(gap.boxed())
            } else {
                Ok(doubled.boxed())
            }
        })
    })
}

#[tokio::test]
async fn a_gap_is_relisted_and_duplicates_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let rt = fake();
    let shared: Arc<dyn RuntimeService> = Arc::new(rt.clone());
    let subscriptions = Arc::new(AtomicUsize::new(0));
    let source = flaky_source(rt.clone(), subscriptions.clone());
    let mut options = fast().safety_relist_period(None);
    options.backoff = Duration::from_millis(300);
    let mut stream = watch::watch_with_source(shared, source, options)
        .await
        .unwrap();
    // Changes made while the first stream is broken and before the resubscription.
    let pod_config = PodSandboxConfigBuilder::new("web", "watch")
        .log_directory(dir.path().to_string_lossy())
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    let c = rt
        .create_and_start_container(
            &pod,
            &pod_config,
            ContainerConfigBuilder::new("app", "busybox").build(),
        )
        .await
        .unwrap();
    // Then changes the (doubled) second stream reports.
    tokio::time::sleep(Duration::from_millis(800)).await;
    rt.stop_container(StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    rt.remove_container(RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .unwrap();
    let seen = events_of(&mut stream, &c).await;
    assert_eq!(
        kinds(&seen),
        [CREATED, STARTED, STOPPED, DELETED],
        "{seen:?}"
    );
    assert_eq!(
        seen[0].origin,
        EventOrigin::Relist,
        "the gap came from the relist"
    );
    assert_eq!(seen[2].origin, EventOrigin::Runtime);
    assert!(subscriptions.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn an_unimplemented_source_falls_back_to_relisting() {
    let dir = tempfile::tempdir().unwrap();
    let rt = fake();
    let shared: Arc<dyn RuntimeService> = Arc::new(rt.clone());
    let source: EventSource = Arc::new(|| {
        Box::pin(async {
            Err(anycri_core::Error::unimplemented(
                "GetContainerEvents",
                "test",
            ))
        })
    });
    // Relisting works on the fake; an unimplemented source means relisting only.
    let mut stream = watch::watch_with_source(shared, source, fast())
        .await
        .unwrap();
    let pod_config = PodSandboxConfigBuilder::new("web", "watch")
        .log_directory(dir.path().to_string_lossy())
        .build();
    let pod = rt.run_pod(pod_config).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.id(), pod);
    assert_eq!(first.origin, EventOrigin::Relist);
}
