//! Helpers shared by anycri-server's integration tests.

use std::{path::Path, time::Duration};

/// Wait (2 s at most) until something accepts connections on the unix socket `path`.
pub async fn wait_for(path: &Path) {
    for _ in 0..200 {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never answered", path.display());
}
