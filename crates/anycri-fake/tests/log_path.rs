//! The fake refuses a `log_path` that leaves the pod's log directory, as the shim does, and
//! makes nothing.

use anycri_core::api::*;
use anycri_core::{
    ContainerConfigBuilder, ErrorKind, PodSandboxConfigBuilder, RuntimeService, RuntimeServiceExt,
};
use anycri_fake::FakeRuntime;

#[tokio::test]
async fn an_escaping_log_path_is_invalid_and_nothing_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let rt = FakeRuntime::new();
    rt.add_image("busybox").unwrap();
    let pod_config = PodSandboxConfigBuilder::new("p", "log-path")
        .log_directory(dir.path().to_string_lossy())
        .build();
    let pod = rt.run_pod(pod_config.clone()).await.unwrap();
    for bad in ["../x.log", "/etc/x.log"] {
        let mut config = ContainerConfigBuilder::new("c", "busybox").build();
        config.log_path = bad.into();
        let err = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(config.clone()),
                sandbox_config: Some(pod_config.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        // The kubelet-style helper refuses it before the call.
        let err = rt
            .create_container_in(&pod, &pod_config, config)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    let left = rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .containers;
    assert!(left.is_empty());
}
