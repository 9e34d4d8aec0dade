//! Memory under churn: a process serving the Docker shim in-process runs N pod lifecycles
//! (RunPodSandbox, CreateContainer + StartContainer of one `sleep 3600` container,
//! StopPodSandbox, RemovePodSandbox) through [`anycri::docker::DockerRuntime`] and prints its
//! resident set size (`VmRSS` from `/proc/self/status`) before the first lifecycle, after
//! every 100 and at the end, for the target "under 30 MB resident after 500 pod lifecycles,
//! not growing with churn".
//!
//! ```sh
//! cargo run --release --example shim_churn -- 500
//! ```
//!
//! Argument: the number of lifecycles (default 500). Needs Docker from
//! `scripts/runtime-env up` (`DOCKER_ENDPOINT`, `ANYCRI_PAUSE_IMAGE`, `ANYCRI_TEST_IMAGE`,
//! from the environment or the env file it writes); without it the example prints why and
//! exits successfully. Everything it creates is labelled `anycri.bench=shim_churn` and
//! removed at the end, also after a failure.

use anycri_testenv::env_value;
use std::{collections::HashMap, path::PathBuf, time::Instant};

use anycri::{
    ContainerConfigBuilder, ImageServiceExt, PodSandboxConfigBuilder, RuntimeService,
    RuntimeServiceExt,
    api::{
        ListPodSandboxRequest, PodSandboxFilter, RemovePodSandboxRequest, StopPodSandboxRequest,
    },
    docker::DockerRuntime,
};

const LABEL_KEY: &str = "anycri.bench";
const LABEL_VALUE: &str = "shim_churn";
const REPORT_EVERY: usize = 100;

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn report(done: usize, started: Instant) {
    let (rss, hwm) = rss_kib();
    println!(
        "lifecycles {done:>5}: VmRSS {:>7.1} MiB ({rss} kB), VmHWM {:>7.1} MiB, {:.1} s",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
}

/// One pod lifecycle: run, one container created and started, stop, remove.
async fn lifecycle(
    shim: &DockerRuntime,
    image: &str,
    log_root: &std::path::Path,
    i: usize,
) -> anycri::Result<()> {
    let uid = anycri::builders::new_uid();
    let pod = PodSandboxConfigBuilder::new(format!("churn-{i}"), "anycri-bench")
        .uid(uid.clone())
        .label(LABEL_KEY, LABEL_VALUE)
        .log_directory(log_root.join(&uid).to_string_lossy())
        .build();
    let container = ContainerConfigBuilder::new("app", image)
        .command(["sleep", "3600"])
        .label(LABEL_KEY, LABEL_VALUE)
        .build();
    let ids = shim.run_pod_and_container(pod, container).await?;
    shim.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: ids.pod_sandbox_id.clone(),
    })
    .await?;
    shim.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: ids.pod_sandbox_id,
    })
    .await?;
    // The kubelet removes a pod's log directory; do the same so the disk does not fill.
    let _ = tokio::fs::remove_dir_all(log_root.join(&uid)).await;
    Ok(())
}

/// Remove every pod labelled for this example.
async fn cleanup(shim: &DockerRuntime) {
    let pods = shim
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: HashMap::from([(LABEL_KEY.to_string(), LABEL_VALUE.to_string())]),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.items)
        .unwrap_or_default();
    for p in pods {
        if let Err(e) = shim.remove_pod_with_containers(&p.id).await {
            eprintln!("shim_churn: removing pod {} failed: {e}", p.id);
        }
    }
}

#[tokio::main]
async fn main() {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the number of lifecycles"),
        None => 500,
    };
    let Some(socket) = env_value("DOCKER_ENDPOINT") else {
        eprintln!(
            "shim_churn: SKIPPED: DOCKER_ENDPOINT is not set and no runtime-env file was found \
             (start Docker with `scripts/runtime-env up`)"
        );
        return;
    };
    let registry = env_value("REGISTRY").unwrap_or_else(|| "127.0.0.1:5000".into());
    let pause =
        env_value("ANYCRI_PAUSE_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/pause:1.0"));
    let image =
        env_value("ANYCRI_TEST_IMAGE").unwrap_or_else(|| format!("{registry}/anycri/busybox:1.0"));
    let env_dir = env_value("ANYCRI_ENV_DIR").unwrap_or_else(|| "/var/tmp/anycri-env".into());
    let log_root =
        PathBuf::from(env_value("ANYCRI_LOG_DIR").unwrap_or_else(|| format!("{env_dir}/logs")))
            .join("shim_churn");

    let shim = match DockerRuntime::builder(&socket)
        .state_dir(format!("{env_dir}/anycri-docker-churn"))
        .pause_image(&pause)
        .connect()
        .await
    {
        Ok(shim) => shim,
        Err(e) => {
            eprintln!("shim_churn: SKIPPED: Docker at {socket} does not answer: {e}");
            return;
        }
    };
    for image in [&pause, &image] {
        shim.pull_image_if_absent(image, None)
            .await
            .expect("pulling the images");
    }
    cleanup(&shim).await;

    println!("shim_churn: {n} pod lifecycles through the in-process Docker shim");
    let started = Instant::now();
    report(0, started);
    let mut failed = None;
    for i in 0..n {
        if let Err(e) = lifecycle(&shim, &image, &log_root, i).await {
            failed = Some(format!("lifecycle {i} failed: {e}"));
            break;
        }
        let done = i + 1;
        if done % REPORT_EVERY == 0 && done != n {
            report(done, started);
        }
    }
    cleanup(&shim).await;
    let _ = tokio::fs::remove_dir_all(&log_root).await;
    if let Some(why) = failed {
        eprintln!("shim_churn: {why}");
        std::process::exit(1);
    }
    report(n, started);
}
