//! The suite against the live runtimes of `scripts/runtime-env`, with anycri's test images
//! built and pushed to the environment's registry first: containerd over its socket, the
//! Docker shim in-process, and the Docker shim served by anycri-server on a unix socket and
//! reached as a remote runtime (`unix://`). Every failure must be a known limit of the
//! runtime version or this machine (`anycri_conformance::known_limits`), with its reason.
//! (The fake runs in `tests/fake.rs`: it needs no live environment.) Skips with a printed
//! reason without a runtime; fails under `ANYCRI_REQUIRE_LIVE=1`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anycri::RuntimeService;
use anycri_conformance::{
    Options, Outcome, Progress, Report, TestImages, known_limits::known_limit, push_test_images,
    run,
};
use anycri_testenv::{env_value, skip_or_fail};

fn parallel() -> usize {
    std::env::var("ANYCRI_CONFORMANCE_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// anycri's test images, built and pushed to the environment's registry (once per process).
async fn images() -> Option<TestImages> {
    static IMAGES: tokio::sync::OnceCell<Option<TestImages>> = tokio::sync::OnceCell::const_new();
    IMAGES
        .get_or_init(|| async {
            let Some(registry) = env_value("REGISTRY") else {
                skip_or_fail("REGISTRY is not set and no runtime-env file was found");
                return None;
            };
            match push_test_images(&registry, "anycri-conformance", None, Default::default()).await
            {
                Ok(images) => Some(images),
                Err(e) => {
                    skip_or_fail(&format!("pushing the test images to {registry}: {e}"));
                    None
                }
            }
        })
        .await
        .clone()
}

fn options(images: TestImages) -> Options {
    Options {
        parallel: parallel(),
        progress: Progress::Lines,
        images: Some(images),
        streaming_client: true,
        ..Default::default()
    }
}

fn check(report: &Report, runtime_name: &str) {
    println!("{}", report.summary_table());
    let unexplained: Vec<String> = report
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed { message } if known_limit(&report.runtime, &c.name).is_none() => {
                Some(format!("{}: {message}", c.name))
            }
            _ => None,
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "checks failed on {runtime_name} that are not known limits:\n{}",
        unexplained.join("\n")
    );
    assert!(!report.interrupted);
    assert!(
        report.cleanup_problems.is_empty(),
        "cleanup left things behind: {:?}",
        report.cleanup_problems
    );
    // With the full image set, no check lacks its image.
    for c in &report.checks {
        if let Outcome::Skipped { reason } = &c.outcome {
            assert!(
                !reason.contains("test image in the image set"),
                "{} lacks an image: {reason}",
                c.name
            );
        }
    }
    assert!(
        report.counts().passed > 80,
        "too few checks passed: {:?}",
        report.counts()
    );
}

async fn connect(endpoint: &str) -> Option<anycri::Connected> {
    match anycri::connect(endpoint).await {
        Ok(c) => Some(c),
        Err(e) => {
            skip_or_fail(&format!("{endpoint} does not answer: {e}"));
            None
        }
    }
}

async fn runtime_name(rt: &dyn RuntimeService) -> String {
    rt.version(anycri::api::VersionRequest::default())
        .await
        .map(|v| v.runtime_name)
        .unwrap_or_default()
}

/// The in-process Docker shim's endpoint, with a state directory of this test's own.
fn docker_shim_endpoint(state: &str) -> Option<String> {
    let (Some(docker), Some(pause)) = (
        env_value("ANYCRI_DOCKER_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
    ) else {
        skip_or_fail(
            "ANYCRI_DOCKER_ENDPOINT or ANYCRI_PAUSE_IMAGE is not set and no runtime-env file was found",
        );
        return None;
    };
    let state_dir = anycri_testenv::env_dir().join(state);
    Some(format!(
        "{docker}?pause_image={pause}&state_dir={}",
        state_dir.display()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containerd_live_conformance() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return;
    };
    let Some(c) = connect(&endpoint).await else {
        return;
    };
    let Some(images) = images().await else {
        return;
    };
    let name = runtime_name(c.runtime.as_ref()).await;
    let report = run(c.runtime, c.image, options(images)).await;
    check(&report, &name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_shim_live_conformance() {
    let Some(endpoint) = docker_shim_endpoint("anycri-docker-conf") else {
        return;
    };
    let Some(c) = connect(&endpoint).await else {
        return;
    };
    let Some(images) = images().await else {
        return;
    };
    let name = runtime_name(c.runtime.as_ref()).await;
    let report = run(c.runtime, c.image, options(images)).await;
    check(&report, &name);
}

/// Removes the served socket's directory when the test ends, however it ends.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_shim_served_live_conformance() {
    let Some(endpoint) = docker_shim_endpoint("anycri-docker-conf-served") else {
        return;
    };
    let Some(shim) = connect(&endpoint).await else {
        return;
    };
    let Some(images) = images().await else {
        return;
    };
    // The shim behind anycri-server on a socket of its own; the suite reaches it over CRI
    // gRPC, as any remote runtime.
    let dir = std::env::temp_dir().join(format!(
        "anycri-conformance-served-{}",
        anycri::builders::new_uid()
    ));
    std::fs::create_dir_all(&dir).expect("creating the socket directory");
    let _remove = RemoveDir(dir.clone());
    let socket = dir.join("cri.sock");
    let server = anycri_server::CriServer::new(shim.runtime.clone(), shim.image.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let path = socket.clone();
    let serving = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        anycri_server::serve_unix(server, &path, Default::default(), shutdown).await
    });
    let uri = format!("unix://{}", socket.display());
    let mut served = None;
    for _ in 0..100 {
        if socket.exists()
            && let Ok(c) = anycri::connect(&uri).await
        {
            served = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = served.unwrap_or_else(|| panic!("anycri-server never answered on {uri}"));
    let name = runtime_name(served.runtime.as_ref()).await;
    assert_eq!(
        name,
        runtime_name(shim.runtime.as_ref()).await,
        "the served runtime is the shim"
    );
    let report = run(
        Arc::clone(&served.runtime),
        Arc::clone(&served.image),
        options(images),
    )
    .await;
    let _ = stop.send(());
    serving
        .await
        .expect("the server task")
        .expect("the server ran and stopped cleanly");
    check(&report, &name);
}
