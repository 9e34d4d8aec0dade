//! Run a pod with one container, exec in it, read its log, and clean up — on any runtime.
//!
//! ```sh
//! cargo run --example run_pod -- unix:///run/containerd/containerd.sock busybox:1.36 /tmp/pod-logs
//! ```
//!
//! Arguments: endpoint (default: auto-detect), image (default `$ANYCRI_TEST_IMAGE`),
//! base log directory (default one under the temporary directory; each run's pod logs in a
//! directory of its own inside it).

use std::time::Duration;

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeServiceExt,
    api::ContainerState,
};

#[tokio::main]
async fn main() -> anycri::Result<()> {
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().filter(|a| !a.is_empty());
    let image = args
        .next()
        .or_else(|| std::env::var("ANYCRI_TEST_IMAGE").ok())
        .unwrap_or_else(|| "busybox:latest".into());
    let log_dir = args.next().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("anycri-example-logs")
            .to_string_lossy()
            .into_owned()
    });

    let connected = match endpoint {
        Some(e) => anycri::connect(&e).await?,
        None => anycri::connect_auto().await?,
    };
    let (runtime, images) = (connected.runtime, connected.image);
    println!("connected to {}", connected.endpoint);

    let image_id = images.pull_image_if_absent(&image, None).await?;
    println!("image {image} is {image_id}");

    // A log directory of this pod's own, named as the kubelet names them under /var/log/pods
    // (`<namespace>_<name>_<uid>`), so no run reads an earlier run's log.
    let uid = anycri::builders::new_uid();
    let pod = PodSandboxConfigBuilder::new("anycri-example", "default")
        .uid(&uid)
        .label("app", "anycri-example")
        .log_directory(
            std::path::Path::new(&log_dir)
                .join(format!("default_anycri-example_{uid}"))
                .to_string_lossy(),
        )
        .build();
    let container = ContainerConfigBuilder::new("hello", &image)
        .command(["sh", "-c", "echo hello from $(hostname); sleep 3600"])
        .build();
    let ids = runtime.run_pod_and_container(pod, container).await?;
    println!(
        "pod {} running container {}",
        ids.pod_sandbox_id, ids.container_id
    );

    let result = async {
        runtime
            .wait_for_container_state(
                &ids.container_id,
                ContainerState::ContainerRunning,
                Duration::from_secs(30),
            )
            .await?;
        let out = runtime
            .exec_collect(
                &ids.container_id,
                &["sh", "-c", "echo $((6 * 7))"],
                Duration::from_secs(10),
            )
            .await?;
        println!("exec: exit {} stdout {:?}", out.exit_code, out.stdout_str());
        tokio::time::sleep(Duration::from_millis(200)).await;
        for line in runtime.read_container_log(&ids.container_id).await? {
            println!(
                "log: {} {} {}",
                line.timestamp,
                line.stream.as_str(),
                line.content
            );
        }
        anycri::Result::Ok(())
    }
    .await;

    runtime
        .remove_pod_with_containers(&ids.pod_sandbox_id)
        .await?;
    println!("removed pod {}", ids.pod_sandbox_id);
    result
}
