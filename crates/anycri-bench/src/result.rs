//! The data a run produces, in the shape every report reads: per scenario and target, each
//! operation's latency summary and raw samples, critest-style lifecycle datapoints, the
//! daemons' cost, churn throughput, and what clean-up found. `results.json` is this
//! structure serialised as it is.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::{
    config::BenchConfig,
    leaks::LeakReport,
    procstat::{Cost, DaemonSpec},
    stats::{OpRecorder, OpStats},
};

/// A complete benchmark run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// The run's ID (also the value of the label on everything it created).
    pub run_id: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// The machine.
    pub host: HostInfo,
    /// Parameters used.
    pub config: BenchConfig,
    /// Name of the target ratios are computed against.
    pub baseline: Option<String>,
    /// The targets, in the order given.
    pub targets: Vec<TargetInfo>,
    /// One entry per scenario run.
    pub scenarios: Vec<ScenarioResult>,
    /// Clean-up outcome per target.
    pub cleanup: Vec<CleanupInfo>,
    /// Whether the run was cut short (Ctrl-C or a fatal error).
    pub interrupted: bool,
}

/// The machine a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Kernel release.
    pub kernel: String,
    /// CPUs online.
    pub cpus: usize,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// anycri-bench version.
    pub anycri_version: String,
}

impl HostInfo {
    /// Read what this machine says about itself.
    pub fn current() -> HostInfo {
        let mem_kb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| crate::procstat::parse_status_kb(&t, "MemTotal"))
            .unwrap_or(0);
        HostInfo {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: mem_kb * 1024,
            anycri_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A target as the reports name it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// Short name.
    pub name: String,
    /// Endpoint URI.
    pub uri: String,
    /// Runtime name and version.
    pub version: String,
    /// Processes whose cost was measured.
    pub daemons: DaemonSpec,
}

/// What clean-up did on one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupInfo {
    /// Target name.
    pub target: String,
    /// Objects the final sweep removed (0 when every scenario cleaned up after itself).
    pub removed: usize,
    /// Objects of the run still present after the sweep (should be 0).
    pub leftovers: Option<usize>,
    /// Errors met.
    pub errors: Vec<String>,
}

/// One scenario across all targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name (`pod-container`, ...).
    pub scenario: String,
    /// Per target, in target order.
    pub targets: Vec<TargetScenario>,
}

/// One scenario on one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetScenario {
    /// Target name.
    pub target: String,
    /// Why it did not run, when it did not.
    pub skipped: Option<String>,
    /// Operations in the order first measured.
    pub operations: Vec<OperationResult>,
    /// The runtime's cost while the scenario's timed part ran.
    pub cost: Cost,
    /// critest-style datapoints (one per lifecycle), for the critest-compatible files.
    pub lifecycles: Vec<LifecycleDatapoint>,
    /// Churn: lifecycles completed in each second of churn.
    pub throughput_per_second: Vec<u32>,
    /// Remarks (object counts seen by lists, ...).
    pub notes: Vec<String>,
    /// Soak: lifecycles, errors, latency over time and leak accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakResult>,
}

/// A soak on one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakResult {
    /// Lifecycles run (pod, container, stop, remove).
    pub lifecycles: u32,
    /// Workers that ran them.
    pub workers: u32,
    /// Lifecycles whose every step succeeded.
    pub succeeded: u32,
    /// Lifecycles with a failed step.
    pub failed: u32,
    /// `failed / lifecycles`.
    pub error_rate: f64,
    /// Median duration of a successful lifecycle, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Longest, ms.
    pub max_ms: f64,
    /// Lifecycles per second over the whole soak.
    pub per_second: f64,
    /// Seconds from the first lifecycle's start to the last one's end.
    pub wall_seconds: f64,
    /// The lifecycles in windows of equal count, in the order they ended.
    pub windows: Vec<SoakWindow>,
    /// Objects labelled with the run still listed when the lifecycles were over (what
    /// failed lifecycles left; removed before the counts after were taken).
    pub left_by_run: Option<usize>,
    /// Counts before and after.
    pub leaks: LeakReport,
}

/// A slice of a soak: consecutive lifecycles, by the order they ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoakWindow {
    /// Seconds into the soak when the window's first lifecycle ended, or the previous
    /// window ended.
    pub from_s: f64,
    /// ... and when its last one ended.
    pub to_s: f64,
    /// Lifecycles that ended in it.
    pub lifecycles: u32,
    /// Of which failed.
    pub errors: u32,
    /// Median of its successful lifecycles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Lifecycles per second.
    pub per_second: f64,
}

impl TargetScenario {
    /// The operation called `name`.
    pub fn operation(&self, name: &str) -> Option<&OperationResult> {
        self.operations.iter().find(|o| o.name == name)
    }
}

/// One operation's measurements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationResult {
    /// Operation name (the CRI RPC, or a compound such as `CreateContainer+StartContainer`).
    pub name: String,
    /// Summary.
    pub stats: OpStats,
    /// Every sample in microseconds, in the order taken.
    pub samples_us: Vec<u64>,
}

/// One lifecycle, as critest records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleDatapoint {
    /// Nanoseconds since the Unix epoch when it started.
    pub start_ns: i64,
    /// ... and ended.
    pub end_ns: i64,
    /// Each step's duration, nanoseconds, in order (-1 when a step failed or did not run).
    pub durations_ns: Vec<i64>,
}

/// Collects one scenario's measurements on one target; cheap to clone and share between
/// concurrent iterations.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderInner>>,
}

#[derive(Debug, Default)]
struct RecorderInner {
    ops: Vec<(String, OpRecorder)>,
    lifecycles: Vec<LifecycleDatapoint>,
    completions: Vec<Duration>,
    notes: BTreeMap<String, String>,
}

impl Recorder {
    fn with<R>(&self, f: impl FnOnce(&mut RecorderInner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn op<R>(&self, name: &str, f: impl FnOnce(&mut OpRecorder) -> R) -> R {
        self.with(|i| {
            if let Some((_, r)) = i.ops.iter_mut().find(|(n, _)| n == name) {
                return f(r);
            }
            i.ops.push((name.to_owned(), OpRecorder::new()));
            f(&mut i.ops.last_mut().expect("just pushed").1)
        })
    }

    /// Record a successful `name` that took `d`.
    pub fn record(&self, name: &str, d: Duration) {
        self.op(name, |r| r.record(d));
    }

    /// Record a failed `name`.
    pub fn record_error(&self, name: &str, message: impl Into<String>) {
        self.op(name, |r| r.record_error(message));
    }

    /// Record a lifecycle datapoint.
    pub fn lifecycle(&self, dp: LifecycleDatapoint) {
        self.with(|i| i.lifecycles.push(dp));
    }

    /// Record a churn completion `at` after the target's churn started.
    pub fn completion(&self, at: Duration) {
        self.with(|i| i.completions.push(at));
    }

    /// Set a note (the last value for a key wins).
    pub fn note(&self, key: &str, value: impl Into<String>) {
        self.with(|i| {
            i.notes.insert(key.to_owned(), value.into());
        });
    }

    /// The scenario result for `target` so far.
    pub fn finish(&self, target: &str, cost: Cost, skipped: Option<String>) -> TargetScenario {
        self.with(|i| {
            let mut per_second: Vec<u32> = Vec::new();
            for c in &i.completions {
                let s = c.as_secs() as usize;
                if per_second.len() <= s {
                    per_second.resize(s + 1, 0);
                }
                per_second[s] += 1;
            }
            TargetScenario {
                target: target.to_owned(),
                skipped,
                operations: i
                    .ops
                    .iter()
                    .map(|(n, r)| OperationResult {
                        name: n.clone(),
                        stats: r.stats(),
                        samples_us: r.samples_us().to_vec(),
                    })
                    .collect(),
                cost,
                lifecycles: i.lifecycles.clone(),
                throughput_per_second: per_second,
                notes: i.notes.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
                soak: None,
            }
        })
    }
}

impl BenchResult {
    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.scenario == name)
    }

    /// `p50(target) / p50(baseline)` of an operation in a scenario, when both have samples.
    pub fn ratio(&self, scenario: &str, target: &str, op: &str) -> Option<f64> {
        let base = self.baseline.as_deref()?;
        let s = self.scenario(scenario)?;
        let get = |t: &str| {
            s.targets
                .iter()
                .find(|x| x.target == t)?
                .operation(op)
                .map(|o| o.stats.p50_ms)
                .filter(|v| *v > 0.0)
        };
        Some(get(target)? / get(base)?)
    }
}
