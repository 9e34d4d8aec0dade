//! Report writers: everything a run measured goes into `--output-dir` as `results.json`
//! (complete data), `critest/<target>/*_benchmark_data.json` (cri-tools' benchmark output
//! format), `report.md` (tables) and `report.html` (tables and SVG plots).

pub mod critest;
pub mod html;
pub mod markdown;
mod soak_tables;
pub mod svg;

use std::path::{Path, PathBuf};

use anycri::Error;

use crate::result::BenchResult;

fn io_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::with_source(
        anycri::ErrorKind::Internal,
        format!("writing {}", path.display()),
        e,
    )
}

/// Write `bytes` to `path`, creating its directory.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> anycri::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))
}

/// `results.json`: the whole [`BenchResult`].
pub fn write_json(result: &BenchResult, dir: &Path) -> anycri::Result<PathBuf> {
    let path = dir.join("results.json");
    let text = serde_json::to_vec_pretty(result).map_err(|e| io_err(&path, e))?;
    write(&path, &text)?;
    Ok(path)
}

/// Read a `results.json` back.
pub fn read_json(path: &Path) -> anycri::Result<BenchResult> {
    let text = std::fs::read(path)
        .map_err(|e| Error::invalid_argument(format!("reading {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::invalid_argument(format!("parsing {}: {e}", path.display())))
}

/// Write every report into `dir`; the paths written.
pub fn write_all(result: &BenchResult, dir: &Path) -> anycri::Result<Vec<PathBuf>> {
    let mut paths = vec![write_json(result, dir)?];
    paths.extend(critest::write(result, &dir.join("critest"))?);
    let md = dir.join("report.md");
    write(&md, markdown::render(result).as_bytes())?;
    paths.push(md);
    let html_path = dir.join("report.html");
    write(&html_path, html::render(result).as_bytes())?;
    paths.push(html_path);
    Ok(paths)
}

/// Milliseconds with a precision that suits their size.
pub fn fmt_ms(ms: f64) -> String {
    if ms == 0.0 {
        "-".into()
    } else if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

/// Bytes as MiB.
pub fn fmt_mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small synthetic result the writers' tests share.
    use std::time::Duration;

    use crate::{
        leaks::{CounterKind, LeakCounter, LeakReport},
        procstat::Cost,
        result::{
            BenchResult, LifecycleDatapoint, Recorder, ScenarioResult, SoakResult, SoakWindow,
            TargetInfo,
        },
    };

    /// A soak on containerd: one failed lifecycle, a leaked network namespace.
    fn soak() -> ScenarioResult {
        let mut t = Recorder::default().finish("containerd", Cost::default(), None);
        let counter = |name: &str, kind, before: u64, after: u64, leak| LeakCounter {
            name: name.into(),
            kind,
            before,
            after,
            delta: after as i64 - before as i64,
            leak,
        };
        t.soak = Some(SoakResult {
            lifecycles: 20,
            workers: 8,
            succeeded: 19,
            failed: 1,
            error_rate: 0.05,
            p50_ms: 1000.0,
            p99_ms: 1900.0,
            max_ms: 1900.0,
            per_second: 2.0,
            wall_seconds: 10.0,
            windows: vec![
                SoakWindow {
                    from_s: 0.0,
                    to_s: 5.0,
                    lifecycles: 10,
                    errors: 0,
                    p50_ms: 900.0,
                    p99_ms: 1000.0,
                    per_second: 2.0,
                },
                SoakWindow {
                    from_s: 5.0,
                    to_s: 10.0,
                    lifecycles: 10,
                    errors: 1,
                    p50_ms: 1000.0,
                    p99_ms: 1900.0,
                    per_second: 2.0,
                },
            ],
            left_by_run: Some(0),
            leaks: LeakReport {
                counters: vec![
                    counter("CRI containers", CounterKind::Object, 4, 4, false),
                    counter("netns files in /run/netns", CounterKind::Object, 2, 3, true),
                    counter(
                        "containerd (pid 1): open fds",
                        CounterKind::Fds,
                        50,
                        52,
                        false,
                    ),
                    counter(
                        "containerd (pid 1): RSS",
                        CounterKind::RssBytes,
                        10 << 20,
                        12 << 20,
                        false,
                    ),
                ],
                fd_slack: 16,
                settle_seconds: 90.0,
                settled: false,
                new_iptables_rules: vec!["nat -A CNI-x".into()],
                new_netns_files: vec!["/run/netns/cni-1 (mounted: a live namespace)".into()],
                notes: vec!["found <here>".into()],
            },
        });
        ScenarioResult {
            scenario: "soak".into(),
            targets: vec![t],
        }
    }

    pub fn result() -> BenchResult {
        let mut scenarios = Vec::new();
        let mut pc = ScenarioResult {
            scenario: "pod-container".into(),
            targets: Vec::new(),
        };
        for (target, base) in [("containerd", 200u64), ("docker-shim", 400)] {
            let rec = Recorder::default();
            for i in 0..10 {
                rec.record("RunPodSandbox", Duration::from_millis(base + i));
                rec.record("PodAndContainer", Duration::from_millis(2 * base + i));
                rec.lifecycle(LifecycleDatapoint {
                    start_ns: 1_000,
                    end_ns: 2_000,
                    durations_ns: vec![1, 2, 3, 4, 5],
                });
            }
            rec.record_error("RunPodSandbox", "boom <&>");
            let cost = Cost {
                cpu_seconds: 1.5,
                peak_rss_bytes: 64 * 1024 * 1024,
                harness_cpu_seconds: 0.25,
                wall_seconds: 10.0,
                ..Default::default()
            };
            pc.targets.push(rec.finish(target, cost, None));
        }
        scenarios.push(pc);
        let mut churn = ScenarioResult {
            scenario: "churn".into(),
            targets: Vec::new(),
        };
        let rec = Recorder::default();
        for s in 0..5u64 {
            rec.completion(Duration::from_millis(s * 1000 + 10));
            rec.completion(Duration::from_millis(s * 1000 + 20));
        }
        churn
            .targets
            .push(rec.finish("containerd", Cost::default(), None));
        churn.targets.push(Recorder::default().finish(
            "docker-shim",
            Cost::default(),
            Some("no Docker".into()),
        ));
        scenarios.push(churn);
        scenarios.push(soak());
        BenchResult {
            run_id: "test-run".into(),
            baseline: Some("containerd".into()),
            targets: vec![
                TargetInfo {
                    name: "containerd".into(),
                    uri: "unix:///run/containerd.sock".into(),
                    version: "containerd 1.6".into(),
                    ..Default::default()
                },
                TargetInfo {
                    name: "docker-shim".into(),
                    uri: "docker:///var/run/docker.sock".into(),
                    version: "docker 20.10".into(),
                    ..Default::default()
                },
            ],
            scenarios,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_all_reports_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let result = sample::result();
        let paths = write_all(&result, dir.path()).unwrap();
        let back = read_json(&dir.path().join("results.json")).unwrap();
        assert_eq!(back, result);
        for p in &paths {
            assert!(p.exists(), "{} missing", p.display());
        }
        assert!(dir.path().join("report.md").exists());
        assert!(dir.path().join("report.html").exists());
        assert!(
            dir.path()
                .join("critest/containerd/pod_container_benchmark_data.json")
                .exists()
        );
        let ratio = result
            .ratio("pod-container", "docker-shim", "RunPodSandbox")
            .unwrap();
        assert!((ratio - 404.0 / 204.0).abs() < 0.005, "{ratio}");
        assert_eq!(
            result.ratio("pod-container", "docker-shim", "NoSuchOp"),
            None
        );
    }

    #[test]
    fn unreadable_results_are_invalid_argument() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.json");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(
            read_json(&p).unwrap_err().kind(),
            anycri::ErrorKind::InvalidArgument
        );
    }
}
