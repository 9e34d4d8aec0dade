//! A CRI client for a daemon a test has just started: connected once the daemon answers.

use std::{path::Path, time::Duration};

use anycri_grpc::GrpcRuntime;

/// How long a daemon may take to answer on its socket.
const UP_WITHIN: Duration = Duration::from_secs(30);

/// A client of the CRI daemon on the unix socket `socket`, once it answers Version (the
/// socket may not exist yet). The client's own reconnect window does the waiting: 30 s,
/// which stays its window for later calls; each connection attempt may take 1 s. Panics
/// when nothing answers in time.
pub async fn grpc_client(socket: impl AsRef<Path>) -> GrpcRuntime {
    let socket = socket.as_ref();
    let endpoint = match socket.to_str().and_then(|s| s.strip_prefix("unix://")) {
        Some(path) => format!("unix://{path}"),
        None => format!("unix://{}", socket.display()),
    };
    let client = GrpcRuntime::builder(&endpoint)
        .connect_timeout(Duration::from_secs(1))
        .reconnect_for(UP_WITHIN)
        .handshake(false)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    if let Err(e) = client.handshake().await {
        panic!("nothing answers on {endpoint} within {UP_WITHIN:?}: {e}");
    }
    client
}
