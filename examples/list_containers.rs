//! List the containers on whatever runtime this node has.
//!
//! ```sh
//! cargo run --example list_containers                       # auto-detect, as crictl does
//! cargo run --example list_containers -- unix:///run/containerd/containerd.sock
//! ```

use anycri::{RuntimeService, api::ListContainersRequest};

#[tokio::main]
async fn main() -> anycri::Result<()> {
    let runtime = match std::env::args().nth(1) {
        Some(endpoint) => anycri::connect(&endpoint).await?,
        None => anycri::connect_auto().await?,
    }
    .runtime;
    let version = runtime.version(Default::default()).await?;
    println!("{} {}", version.runtime_name, version.runtime_version);
    for c in runtime
        .list_containers(ListContainersRequest::default())
        .await?
        .containers
    {
        let name = c.metadata.map(|m| m.name).unwrap_or_default();
        println!(
            "{}  {name}  (pod {})",
            &c.id[..c.id.len().min(13)],
            &c.pod_sandbox_id[..c.pod_sandbox_id.len().min(13)]
        );
    }
    Ok(())
}
