//! containerd is killed and restarted under a live client: the same `GrpcRuntime` works
//! again once the daemon is back, without being rebuilt.

mod common;

use std::time::Duration;

use anycri::{RuntimeService, RuntimeServiceExt, api::*};

fn runtime_env(arg: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/runtime-env");
    let status = std::process::Command::new(script)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/runtime-env");
    assert!(status.success(), "scripts/runtime-env {arg} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_containerd_restart() {
    let Some(target) = common::containerd().await else {
        return;
    };
    let Some(pid) = common::env_value("CONTAINERD_PID") else {
        common::skip_or_fail("CONTAINERD_PID unknown");
        return;
    };
    let rt = target.runtime.clone();
    let pod = rt.run_pod(target.pod("restart")).await.unwrap();

    // Kill containerd hard, as a crash would.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Restart it in the background while the client is waiting to reconnect.
    let restart = tokio::task::spawn_blocking(|| runtime_env("up"));
    let after = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await;
    restart.await.unwrap();
    // Reads wait for the daemon within the reconnect window; either way the next call works.
    let status = match after {
        Ok(s) => s.status.unwrap(),
        Err(e) => {
            eprintln!("first call after restart failed ({e}); retrying once");
            rt.get_pod_status(&pod).await.unwrap()
        }
    };
    assert_eq!(status.id, pod, "the pod survived the restart");
    let v = rt.version(VersionRequest::default()).await.unwrap();
    assert_eq!(v.runtime_name, "containerd");
    common::with_cleanup(target, |_| async {}).await;
}
