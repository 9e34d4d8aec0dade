//! `RuntimeServiceExt::exec_collect` keeps a sub-second timeout: the CRI counts whole seconds,
//! and 500 ms must become 1 s, not 0 ("no timeout").

use std::time::{Duration, Instant};

use anycri_core::{ContainerConfigBuilder, ErrorKind, PodSandboxConfigBuilder, RuntimeServiceExt};
use anycri_fake::FakeRuntime;

#[tokio::test]
async fn a_sub_second_timeout_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let rt = FakeRuntime::new();
    rt.add_image("busybox").unwrap();
    let ids = rt
        .run_pod_and_container(
            PodSandboxConfigBuilder::new("exec", "timeout")
                .log_directory(dir.path().to_string_lossy())
                .build(),
            ContainerConfigBuilder::new("c", "busybox").build(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let err = rt
        .exec_collect(
            &ids.container_id,
            &["sleep", "30"],
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it ran to the end"
    );
    let out = rt
        .exec_collect(
            &ids.container_id,
            &["echo", "hi"],
            Duration::from_millis(500),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_str(), "hi\n");
}
