//! Live: a short `anycri bench` run (two iterations of a few scenarios) against containerd,
//! the in-process Docker shim and the plain-Docker floor from `scripts/runtime-env up`;
//! checks that every report is written, that each target measured the operations, and
//! that nothing labelled with the run is left behind. Skips without the environment
//! (fails under `ANYCRI_REQUIRE_LIVE=1`).

use anycri_bench::{Scenario, cli::BenchArgs, report};
use anycri_testenv::{env_value, skip_or_fail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_short_bench_writes_reports_and_leaves_nothing() {
    let (Some(containerd), Some(docker), Some(shim), Some(pause), Some(image)) = (
        env_value("CONTAINERD_ENDPOINT"),
        env_value("DOCKER_ENDPOINT"),
        env_value("ANYCRI_DOCKER_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
        env_value("ANYCRI_TEST_IMAGE"),
    ) else {
        skip_or_fail("the live environment (containerd, Docker, test images) is not set up");
        return;
    };
    let socket = docker.trim_start_matches("unix://").to_owned();
    if !std::path::Path::new(&socket).exists() {
        skip_or_fail(&format!("Docker socket {socket} does not exist"));
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let args = BenchArgs {
        runtime_endpoint: vec![
            containerd,
            format!(
                "{shim}?pause_image={pause}&state_dir={}",
                state.path().display()
            ),
            format!("docker-floor://{socket}"),
        ],
        output_dir: out.path().to_owned(),
        scenarios: vec![
            Scenario::PodContainer,
            Scenario::ContainerLifecycle,
            Scenario::ListScale,
            Scenario::ContainerStats,
        ],
        config: None,
        baseline: Some("docker-floor".into()),
        iterations: Some(2),
        rounds: Some(2),
        warmup: Some(0),
        parallel: None,
        scale_sizes: vec![3],
        stats_containers: Some(2),
        churn_workers: None,
        churn_duration: None,
        image: Some(image),
        pause_image: Some(pause),
        pull_image: None,
        call_timeout: None,
        log_dir: Some(out.path().join("logs")),
        daemon_pids: vec![],
    };
    let result = anycri_bench::cli::run(args).await.expect("bench runs");

    for file in ["results.json", "report.md", "report.html"] {
        assert!(out.path().join(file).exists(), "{file} missing");
    }
    for t in ["containerd", "docker-shim", "docker-floor"] {
        let p = out
            .path()
            .join(format!("critest/{t}/pod_container_benchmark_data.json"));
        assert!(p.exists(), "{} missing", p.display());
    }
    let back = report::read_json(&out.path().join("results.json")).unwrap();
    assert_eq!(back.run_id, result.run_id);

    let pc = result.scenario("pod-container").expect("pod-container ran");
    assert_eq!(pc.targets.len(), 3);
    for t in &pc.targets {
        assert_eq!(t.skipped, None, "{} skipped", t.target);
        let whole = t.operation("PodAndContainer").expect("measured");
        assert_eq!(whole.stats.count, 2, "{}: {:?}", t.target, whole.stats);
        assert_eq!(whole.stats.errors, 0, "{}: {:?}", t.target, whole.stats);
        assert!(whole.stats.p50_ms > 0.0);
    }
    let scale = result.scenario("list-scale").expect("list-scale ran");
    for t in &scale.targets {
        assert_eq!(t.skipped, None, "{} skipped", t.target);
        let list = t.operation("ListContainers (3)").expect("listed");
        assert_eq!(list.stats.errors, 0, "{}: {:?}", t.target, list.stats);
        assert!(
            !t.notes.iter().any(|n| n.contains("expected")),
            "{}: {:?}",
            t.target,
            t.notes
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("| pod-container | PodAndContainer |"), "{md}");

    // Nothing of the run is left on any target, and the clean-up saw no errors.
    assert_eq!(result.cleanup.len(), 3);
    for c in &result.cleanup {
        assert_eq!(c.leftovers, Some(0), "{c:?}");
        assert!(c.errors.is_empty(), "{c:?}");
    }
    assert!(!result.interrupted);
}
