//! The live checks that run against containerd, unchanged, against Docker Engine through
//! anycri's in-process Docker shim (`docker://` endpoint). Needs `scripts/runtime-env up`;
//! skips with a reason without it, fails under ANYCRI_REQUIRE_LIVE=1.

mod common;

macro_rules! live {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(target) = common::docker().await else { return };
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
