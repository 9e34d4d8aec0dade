//! Live checks against a real containerd (CRI plugin) through `GrpcRuntime`. Needs
//! `scripts/runtime-env up`; skips with a reason without it, fails under ANYCRI_REQUIRE_LIVE=1.

mod common;

macro_rules! live {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(target) = common::containerd().await else { return };
                common::with_cleanup(target, common::$check).await;
            }
        )*
    };
}

live!(
    version_status_capabilities,
    pod_lifecycle,
    container_lifecycle,
    exec_sync_and_logs,
    container_stats,
    images,
    not_found,
    pod_sandbox_stats,
    follow_log,
);

/// The receive limit is the client's: a response larger than it is refused with a clear
/// error instead of being read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_limit_is_enforced() {
    use anycri::ImageService;
    let Some(target) = common::containerd().await else {
        return;
    };
    let endpoint = common::env_value("CONTAINERD_ENDPOINT").unwrap();
    let small = anycri::grpc::GrpcRuntime::builder(&endpoint)
        .max_message_size(64)
        .connect()
        .await;
    // Even the handshake's answer is larger than 64 bytes? Then connecting fails already.
    let err = match small {
        Ok(rt) => rt.list_images(Default::default()).await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(
            err.kind(),
            anycri::ErrorKind::OutOfRange | anycri::ErrorKind::ResourceExhausted
        ),
        "{err}"
    );
    assert!(err.message().contains("64"), "{err}");
    // The default limit reads the same list fine.
    target.images.list_images(Default::default()).await.unwrap();
}
