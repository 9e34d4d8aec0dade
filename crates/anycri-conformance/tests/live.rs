//! The suite against the live runtimes of `scripts/runtime-env` (containerd over its socket,
//! the Docker shim in-process): every failure must be a known limit of the runtime version
//! or this machine (`anycri_conformance::known_limits`), with its reason. Skips with a
//! printed reason without a runtime; fails under `ANYCRI_REQUIRE_LIVE=1`.

use anycri::RuntimeService;
use anycri_conformance::{Options, Outcome, Report, known_limits::known_limit, run};
use anycri_testenv::{env_value, skip_or_fail};

fn parallel() -> usize {
    std::env::var("ANYCRI_CONFORMANCE_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn check(report: &Report, runtime_name: &str) {
    println!("{}", report.summary_table());
    let unexplained: Vec<String> = report
        .checks
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed { message } if known_limit(runtime_name, &c.name).is_none() => {
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
    assert!(
        report.counts().passed > 50,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containerd_live_conformance() {
    let Some(endpoint) = env_value("CONTAINERD_ENDPOINT") else {
        skip_or_fail("CONTAINERD_ENDPOINT is not set and no runtime-env file was found");
        return;
    };
    let Some(c) = connect(&endpoint).await else {
        return;
    };
    let report = run(
        c.runtime,
        c.image,
        Options {
            parallel: parallel(),
            progress: anycri_conformance::Progress::Lines,
            ..Default::default()
        },
    )
    .await;
    check(&report, "containerd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_shim_live_conformance() {
    let (Some(docker), Some(pause)) = (
        env_value("ANYCRI_DOCKER_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
    ) else {
        skip_or_fail(
            "ANYCRI_DOCKER_ENDPOINT or ANYCRI_PAUSE_IMAGE is not set and no runtime-env file was found",
        );
        return;
    };
    let state_dir = anycri_testenv::env_dir().join("anycri-docker-conf");
    let endpoint = format!(
        "{docker}?pause_image={pause}&state_dir={}",
        state_dir.display()
    );
    let Some(c) = connect(&endpoint).await else {
        return;
    };
    let name = c
        .runtime
        .version(anycri::api::VersionRequest::default())
        .await
        .map(|v| v.runtime_name)
        .unwrap_or_default();
    let report = run(
        c.runtime,
        c.image,
        Options {
            parallel: parallel(),
            progress: anycri_conformance::Progress::Lines,
            ..Default::default()
        },
    )
    .await;
    check(&report, &name);
}
