//! Round trips through anycri-server: `GrpcRuntime` → anycri-server → backend, for the fake,
//! the Docker shim and (through a second `GrpcRuntime`) containerd. The shared checks must pass
//! unchanged one CRI hop away, and errors must come back as the backend made them.

mod common;

use anycri::{RuntimeService, api::*};

macro_rules! served {
    ($target:ident: $($check:ident),* $(,)?) => {
        mod $target {
            use super::common;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(inner) = super::$target().await else { return };
                    let (target, _stop) = common::served(inner).await;
                    common::with_cleanup(target, common::$check).await;
                }
            )*
        }
    };
}

async fn fake() -> Option<common::Target> {
    Some(common::fake())
}

async fn docker() -> Option<common::Target> {
    common::docker().await
}

async fn containerd() -> Option<common::Target> {
    common::containerd().await
}

served!(fake: version_status_capabilities, pod_lifecycle, container_lifecycle, exec_sync_and_logs, container_stats, images, not_found, pod_sandbox_stats);
served!(docker: version_status_capabilities, pod_lifecycle, container_lifecycle, exec_sync_and_logs, container_stats, images, not_found, pod_sandbox_stats);
served!(containerd: version_status_capabilities, pod_lifecycle, container_lifecycle, exec_sync_and_logs, not_found);

/// One CRI call against a runtime.
type Call = Box<
    dyn Fn(
        std::sync::Arc<dyn RuntimeService>,
    ) -> futures::future::BoxFuture<'static, anycri::Result<()>>,
>;

/// The same bad calls, directly and through the server, fail with the same code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_identical_through_the_server() {
    let direct = common::fake();
    let backend = direct.runtime.clone();
    let (served, _stop) = common::served(common::fake()).await;
    let calls: Vec<(&str, Call)> = vec![
        (
            "unknown container",
            Box::new(|rt| {
                Box::pin(async move {
                    rt.container_status(ContainerStatusRequest {
                        container_id: "nope".into(),
                        verbose: false,
                    })
                    .await
                    .map(|_| ())
                })
            }),
        ),
        (
            "empty config",
            Box::new(|rt| {
                Box::pin(async move {
                    rt.run_pod_sandbox(RunPodSandboxRequest::default())
                        .await
                        .map(|_| ())
                })
            }),
        ),
        (
            "unimplemented",
            Box::new(|rt| {
                Box::pin(async move {
                    rt.checkpoint_container(CheckpointContainerRequest::default())
                        .await
                        .map(|_| ())
                })
            }),
        ),
    ];
    for (what, call) in calls {
        let a = call(backend.clone()).await.unwrap_err();
        let b = call(served.runtime.clone()).await.unwrap_err();
        assert_eq!((a.code(), a.message()), (b.code(), b.message()), "{what}");
    }
}
