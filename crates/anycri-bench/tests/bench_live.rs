//! Live: a short `anycri bench` run (two iterations of a few scenarios) against containerd,
//! the in-process Docker shim and the plain-Docker floor from `scripts/runtime-env up`;
//! checks that every report is written, that each target measured the operations, and
//! that nothing labelled with the run is left behind. Then a small soak (40 lifecycles by
//! 4 workers) on containerd, the shim with Docker's bridge and the shim with CNI, each with
//! no failed lifecycle and no object leak. Skips without the environment (fails under
//! `ANYCRI_REQUIRE_LIVE=1`).

use anycri_bench::{Scenario, cli::BenchArgs, leaks::CounterKind, report};
use anycri_testenv::{env_value, skip_or_fail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_short_bench_writes_reports_and_leaves_nothing() {
    let _not_beside_a_soak = SOAK.lock().await;
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
        soak_lifecycles: None,
        soak_workers: None,
        soak_settle: None,
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

/// The soak tests one at a time (their host-wide counts would see each other's pods), and
/// not beside the short bench above.
static SOAK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Lifecycles and workers of the live soaks: small, so a test takes seconds plus the wait
/// for Docker's 60 s namespace GC.
const SOAK_LIFECYCLES: u32 = 40;
const SOAK_WORKERS: u32 = 4;

/// The images and the Docker shim's endpoint, or `None` (skipped).
fn soak_env() -> Option<(String, String, String)> {
    let (Some(shim), Some(pause), Some(image)) = (
        env_value("ANYCRI_DOCKER_ENDPOINT"),
        env_value("ANYCRI_PAUSE_IMAGE"),
        env_value("ANYCRI_TEST_IMAGE"),
    ) else {
        skip_or_fail("the live environment (Docker shim, test images) is not set up");
        return None;
    };
    Some((shim, pause, image))
}

/// A soak of [`SOAK_LIFECYCLES`] lifecycles by [`SOAK_WORKERS`] workers on `endpoint`
/// (`NAME=URI`): no lifecycle fails, every object count is back where it was, and the
/// counters that matter for the target were counted.
async fn soak(endpoint: String, image: String, pause: String, expected: &[&str]) {
    let _one_at_a_time = SOAK.lock().await;
    let out = tempfile::tempdir().unwrap();
    let args = BenchArgs {
        runtime_endpoint: vec![endpoint],
        output_dir: out.path().to_owned(),
        scenarios: vec![Scenario::Soak],
        config: None,
        baseline: None,
        iterations: None,
        rounds: None,
        warmup: None,
        parallel: None,
        scale_sizes: vec![],
        stats_containers: None,
        churn_workers: None,
        churn_duration: None,
        soak_lifecycles: Some(SOAK_LIFECYCLES),
        soak_workers: Some(SOAK_WORKERS),
        soak_settle: None,
        image: Some(image),
        pause_image: Some(pause),
        pull_image: None,
        call_timeout: None,
        log_dir: Some(out.path().join("logs")),
        daemon_pids: vec![],
    };
    let result = anycri_bench::cli::run(args).await.expect("bench runs");
    let s = result.scenario("soak").expect("the soak ran");
    assert_eq!(s.targets.len(), 1);
    let t = &s.targets[0];
    assert_eq!(t.skipped, None);
    let soak = t.soak.as_ref().expect("soak figures");
    let counters: Vec<String> = soak
        .leaks
        .counters
        .iter()
        .map(|c| format!("{}: {} -> {}", c.name, c.before, c.after))
        .collect();
    assert_eq!(soak.lifecycles, SOAK_LIFECYCLES);
    assert_eq!(soak.workers, SOAK_WORKERS);
    let errors: Vec<&String> = t
        .operations
        .iter()
        .flat_map(|o| &o.stats.error_examples)
        .collect();
    assert_eq!(soak.failed, 0, "{errors:?}");
    assert_eq!(soak.left_by_run, Some(0));
    assert_eq!(soak.windows.len(), 10);
    assert!(soak.windows.iter().all(|w| w.p99_ms > 0.0), "{soak:?}");
    assert!(soak.p50_ms > 0.0 && soak.p99_ms >= soak.p50_ms);
    let leaks: Vec<String> = soak
        .leaks
        .leaks()
        .filter(|c| c.kind == CounterKind::Object)
        .map(|c| format!("{}: {} -> {}", c.name, c.before, c.after))
        .collect();
    assert!(
        leaks.is_empty(),
        "leaked: {leaks:?}\nall: {counters:#?}\nnotes: {:?}",
        soak.leaks.notes
    );
    assert!(soak.leaks.settled, "{counters:#?}");
    for want in expected
        .iter()
        .chain(&["netns files in", "iptables rules", "open fds"])
    {
        assert!(
            soak.leaks.counters.iter().any(|c| c.name.contains(want)),
            "no {want:?} counter: {counters:#?}\nnotes: {:?}",
            soak.leaks.notes
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("### Leak accounting: "), "{md}");
    for c in &result.cleanup {
        assert_eq!(c.leftovers, Some(0), "{c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_soak_on_containerd_has_no_errors_and_no_leaks() {
    let (Some(containerd), Some((_, pause, image))) =
        (env_value("CONTAINERD_ENDPOINT"), soak_env())
    else {
        skip_or_fail("containerd is not set up");
        return;
    };
    soak(
        format!("containerd={containerd}"),
        image,
        pause,
        &[
            "CRI containers",
            "CRI pod sandboxes",
            "CNI IPs of",
            "containerd-shim processes",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_soak_on_the_shim_with_docker_bridge_has_no_errors_and_no_leaks() {
    let Some((shim, pause, image)) = soak_env() else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    soak(
        format!(
            "docker-shim={shim}?pause_image={pause}&state_dir={}",
            state.path().display()
        ),
        image,
        pause,
        &[
            "CRI containers",
            "Docker containers",
            "Docker bridge network endpoints",
            "shim sandbox checkpoints",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_soak_on_the_shim_with_cni_has_no_errors_and_no_leaks() {
    let Some((shim, pause, image)) = soak_env() else {
        return;
    };
    // The environment's CNI config (bridge + host-local + portmap), the one containerd uses.
    let conf = anycri_testenv::env_dir().join("cni/net.d");
    let bin = std::path::Path::new("/usr/lib/cni");
    if !conf.is_dir() || !bin.join("bridge").exists() || !bin.join("host-local").exists() {
        skip_or_fail(&format!(
            "no CNI config in {} or no CNI plugins in {}",
            conf.display(),
            bin.display()
        ));
        return;
    }
    let state = tempfile::tempdir().unwrap();
    soak(
        format!(
            "docker-shim-cni={shim}?pause_image={pause}&state_dir={}&network_plugin=cni&cni_bin_dir={}&cni_conf_dir={}",
            state.path().display(),
            bin.display(),
            conf.display()
        ),
        image,
        pause,
        &["CRI containers", "Docker containers", "CNI IPs of", "shim sandbox checkpoints"],
    )
    .await;
}
