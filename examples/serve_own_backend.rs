//! Implement `RuntimeService` and `ImageService` for a backend of your own
//! (`examples/support/my_runtime.rs`) and serve it as a CRI v1 endpoint with anycri-server,
//! so crictl, the kubelet, critest or any CRI client can use it.
//!
//! ```sh
//! cargo run --example serve_own_backend                     # serve on a temporary socket, drive it, stop
//! cargo run --example serve_own_backend -- /tmp/my-cri.sock # serve until Ctrl-C, then e.g.:
//! crictl --runtime-endpoint unix:///tmp/my-cri.sock version
//! ```

#[path = "support/my_runtime.rs"]
mod my_runtime;

use std::{path::PathBuf, sync::Arc, time::Duration};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
};
use anycri_server::{CriServer, ServeOptions, serve_unix};
use my_runtime::MyRuntime;

#[tokio::main]
async fn main() -> anycri::Result<()> {
    // One object serves both CRI services here; they may be two.
    let backend = Arc::new(MyRuntime::new());
    let server = CriServer::new(backend.clone(), backend);

    if let Some(path) = std::env::args().nth(1) {
        // A daemon: serve until Ctrl-C; the socket is removed afterwards.
        println!(
            "serving {} on unix://{path} (Ctrl-C stops)",
            my_runtime::NAME
        );
        let ctrl_c = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
        return serve_unix(server, path, ServeOptions::default(), ctrl_c).await;
    }

    // A demonstration: serve on a temporary socket and be our own CRI client.
    let dir = std::env::temp_dir().join(format!("anycri-serve-example-{}", std::process::id()));
    let socket: PathBuf = dir.join("cri.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve_unix(
        server,
        socket.clone(),
        ServeOptions::default(),
        async { stopped.await.unwrap_or(()) },
    ));
    while !socket.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let endpoint = format!("unix://{}", socket.display());
    println!("serving {} on {endpoint}", my_runtime::NAME);

    // Exactly what a tool does with containerd's socket: nothing here knows the backend.
    let result = drive(&endpoint).await;

    stop.send(()).ok();
    serving.await.expect("the server task")?;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn drive(endpoint: &str) -> anycri::Result<()> {
    let client = anycri::connect(endpoint).await?;
    let version = client.runtime.version(Default::default()).await?;
    println!(
        "Version: {} {} (CRI {})",
        version.runtime_name, version.runtime_version, version.runtime_api_version
    );
    let info = anycri::discover(&*client.runtime).await?;
    println!("flavour {:?}, ready {}", info.flavour, info.ready());
    for (name, works) in info.capabilities.entries() {
        println!("  {name:30} {}", if works { "yes" } else { "no" });
    }

    client
        .image
        .pull_image_if_absent("busybox:1.36", None)
        .await?;
    let pod = PodSandboxConfigBuilder::new("served", "default").build();
    let container = ContainerConfigBuilder::new("app", "busybox:1.36")
        .command(["sleep", "3600"])
        .build();
    let ids = client.runtime.run_pod_and_container(pod, container).await?;
    let out = client
        .runtime
        .exec_collect(
            &ids.container_id,
            &["echo", "hello over gRPC"],
            Duration::from_secs(5),
        )
        .await?;
    print!("ExecSync through the socket: {}", out.stdout_str());
    client
        .runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await?;
    println!("pod {} removed", ids.pod_sandbox_id);
    Ok(())
}
