//! `pod-lister [ENDPOINT]`: the node's runtime (found as crictl finds it) or ENDPOINT.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connected = match std::env::args().nth(1) {
        Some(uri) => anycri::connect(&uri).await?,
        None => anycri::connect_auto().await?,
    };
    for row in pod_lister::rows(connected.runtime.as_ref()).await? {
        println!("{:<30} {:<20} {:<8} {}", row.pod, row.container, row.state, row.image);
    }
    Ok(())
}
