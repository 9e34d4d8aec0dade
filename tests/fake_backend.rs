//! The live checks, unchanged, against the in-memory fake runtime.

mod common;

macro_rules! fake {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                common::with_cleanup(common::fake(), common::$check).await;
            }
        )*
    };
}

fake!(
    version_status_capabilities,
    pod_lifecycle,
    container_lifecycle,
    exec_sync_and_logs,
    container_stats,
    images,
    not_found,
    pod_sandbox_stats,
);
