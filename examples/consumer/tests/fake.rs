//! The tool's tests on anycri's in-memory fake: no runtime needed.

use anycri::{ContainerConfigBuilder, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt};

#[tokio::test]
async fn lists_containers_with_their_pods() {
    let runtime = anycri::fake::FakeRuntime::new();
    runtime.add_image("busybox:1.36").unwrap();
    let pod = PodSandboxConfigBuilder::new("web", "shop").build();
    let app = ContainerConfigBuilder::new("app", "busybox:1.36")
        .command(["sleep", "3600"])
        .build();
    let ids = runtime.run_pod_and_container(pod, app).await.unwrap();

    let rows = pod_lister::rows(&runtime).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].pod, "shop/web");
    assert_eq!(rows[0].container, "app");
    assert_eq!(rows[0].state, "running");

    runtime
        .stop_container(anycri::api::StopContainerRequest {
            container_id: ids.container_id.clone(),
            timeout: 0,
        })
        .await
        .unwrap();
    assert_eq!(pod_lister::rows(&runtime).await.unwrap()[0].state, "exited");
}

#[tokio::test]
async fn an_empty_node_has_no_rows() {
    let connected = anycri::connect("fake://").await.unwrap();
    assert!(pod_lister::rows(connected.runtime.as_ref()).await.unwrap().is_empty());
}
