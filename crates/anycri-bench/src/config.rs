//! Benchmark parameters: which scenarios run, how many iterations, in how many interleaved
//! rounds, with which images and timeouts. They come from defaults, then a parameter file
//! (anycri's own YAML or TOML, or critest's `--benchmarking-params-file` YAML), then flags.

use std::{path::Path, time::Duration};

use anycri::Error;
use serde::{Deserialize, Serialize};

/// One benchmark scenario.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// critest's container lifecycle: CreateContainer, StartContainer, ContainerStatus,
    /// StopContainer, RemoveContainer, each timed, in a pod made beforehand.
    ContainerLifecycle,
    /// critest's pod lifecycle: RunPodSandbox, PodSandboxStatus, StopPodSandbox, RemovePodSandbox.
    PodLifecycle,
    /// critest's image lifecycle: PullImage, ImageStatus, RemoveImage.
    ImageLifecycle,
    /// critest's image listing: ListImages (and ImageStatus of the test image).
    ImageList,
    /// critest's pod and container from scratch: run a pod, create and start a container,
    /// stop and remove the pod; the whole and each step timed.
    PodContainer,
    /// ListContainers, ListPodSandbox and ListContainerStats with many objects present.
    ListScale,
    /// ExecSync round trip (`true` in a running container).
    ExecSync,
    /// ContainerStats of one running container and ListContainerStats of several.
    ContainerStats,
    /// N workers running pod lifecycles for a fixed time: throughput over time and errors.
    Churn,
    /// Event latency: from StartContainer/StopContainer to the STARTED/STOPPED event, through
    /// `anycri::watch` on the runtime's event stream and through relisting, side by side.
    EventLatency,
    /// Soak with leak accounting: a fixed number of pod lifecycles (pod, container, stop,
    /// remove) by N workers on each target in turn, with error rate, p50/p99 overall and
    /// per window of the run, and the runtime's and host's object counts (containers,
    /// network namespaces, CNI IPs, iptables rules, ...) and daemons' fds, threads and RSS
    /// before and after, once settled. Opt-in: not in [`Scenario::ALL`].
    Soak,
}

impl Scenario {
    /// The scenarios a run without `--scenario` runs, in the order they run: all but the
    /// soak, which takes minutes per target and runs only when asked for.
    pub const ALL: [Scenario; 10] = [
        Scenario::ContainerLifecycle,
        Scenario::PodLifecycle,
        Scenario::ImageLifecycle,
        Scenario::ImageList,
        Scenario::PodContainer,
        Scenario::ListScale,
        Scenario::ExecSync,
        Scenario::ContainerStats,
        Scenario::Churn,
        Scenario::EventLatency,
    ];

    /// The scenario's name in flags, files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ContainerLifecycle => "container-lifecycle",
            Scenario::PodLifecycle => "pod-lifecycle",
            Scenario::ImageLifecycle => "image-lifecycle",
            Scenario::ImageList => "image-list",
            Scenario::PodContainer => "pod-container",
            Scenario::ListScale => "list-scale",
            Scenario::ExecSync => "exec-sync",
            Scenario::ContainerStats => "container-stats",
            Scenario::Churn => "churn",
            Scenario::EventLatency => "event-latency",
            Scenario::Soak => "soak",
        }
    }
}

/// Iterations and parallelism of a lifecycle scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// Timed iterations per target (split over the rounds).
    pub iterations: u32,
    /// Iterations in flight at once (1: sequential).
    pub parallel: u32,
}

impl Lifecycle {
    fn new(iterations: u32) -> Self {
        Lifecycle {
            iterations,
            parallel: 1,
        }
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new(20)
    }
}

/// Listing at scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListScale {
    /// Numbers of containers present while listing (each size measured in turn).
    pub sizes: Vec<u32>,
    /// Containers per pod (created, not started); the pods are listed too.
    pub containers_per_pod: u32,
    /// Calls of each list per size and target.
    pub iterations: u32,
}

impl Default for ListScale {
    fn default() -> Self {
        ListScale {
            sizes: vec![100, 500],
            containers_per_pod: 25,
            iterations: 30,
        }
    }
}

/// Container stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerStats {
    /// Running containers whose stats are listed.
    pub containers: u32,
    /// Calls of ContainerStats and ListContainerStats per target.
    pub iterations: u32,
}

impl Default for ContainerStats {
    fn default() -> Self {
        ContainerStats {
            containers: 20,
            iterations: 30,
        }
    }
}

/// Churn under concurrency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Churn {
    /// Workers, each running pod lifecycles back to back.
    pub workers: u32,
    /// Seconds of churn per target (split over the rounds).
    pub duration_secs: u64,
}

impl Default for Churn {
    fn default() -> Self {
        Churn {
            workers: 4,
            duration_secs: 20,
        }
    }
}

/// Event latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventLatency {
    /// Containers started and stopped per target (split over the rounds).
    pub iterations: u32,
    /// Period of the relisting watch, in milliseconds (the kubelet's generic PLEG: 1000).
    pub relist_period_ms: u64,
}

impl Default for EventLatency {
    fn default() -> Self {
        EventLatency {
            iterations: 20,
            relist_period_ms: 1000,
        }
    }
}

/// Soak with leak accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Soak {
    /// Pod lifecycles per target.
    pub lifecycles: u32,
    /// Workers, each running lifecycles back to back until all are done.
    pub workers: u32,
    /// Windows the lifecycles are split into, in the order they ended, for the error rate
    /// and p99 over time.
    pub windows: u32,
    /// Longest wait, in seconds, after the lifecycles for the object counts to come back
    /// (Docker deletes a removed sandbox's network namespace file in a GC every 60 s).
    pub settle_secs: u64,
    /// Open fds a daemon may gain over the soak before it is flagged.
    pub fd_slack: u32,
}

impl Default for Soak {
    fn default() -> Self {
        Soak {
            lifecycles: 1000,
            workers: 8,
            windows: 10,
            settle_secs: 150,
            fd_slack: 16,
        }
    }
}

/// Everything a benchmark run needs besides its endpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchConfig {
    /// Scenarios to run (empty: all).
    pub scenarios: Vec<Scenario>,
    /// Interleaved rounds: each scenario's iterations are split into this many slices, run
    /// for each target in turn, the order rotating each round (A B C, B C A, C A B, ...), so
    /// drift of the machine, and work a daemon defers after a slice, hit every target alike.
    pub rounds: u32,
    /// Untimed iterations per target before a lifecycle scenario starts (images warm, caches full).
    pub warmup: u32,
    /// Image of the containers (a busybox-like userland: `sleep`, `true`); default from the
    /// environment (`ANYCRI_TEST_IMAGE`).
    pub image: Option<String>,
    /// Pause image of the Docker floor's sandboxes (`ANYCRI_PAUSE_IMAGE`).
    pub pause_image: Option<String>,
    /// Image pulled and removed by the image lifecycle (`ANYCRI_PULL_IMAGE`).
    pub pull_image: Option<String>,
    /// Images made present before the image listing (critest's `imageListingBenchmarkImages`).
    pub list_images: Vec<String>,
    /// Deadline of each call, in seconds.
    pub timeout_secs: u64,
    /// critest's container lifecycle.
    pub container_lifecycle: Lifecycle,
    /// critest's pod lifecycle.
    pub pod_lifecycle: Lifecycle,
    /// critest's image lifecycle.
    pub image_lifecycle: Lifecycle,
    /// critest's image listing.
    pub image_list: Lifecycle,
    /// critest's pod and container from scratch.
    pub pod_container: Lifecycle,
    /// Listing at scale.
    pub list_scale: ListScale,
    /// ExecSync round trips.
    pub exec_sync: Lifecycle,
    /// Container stats.
    pub container_stats: ContainerStats,
    /// Churn.
    pub churn: Churn,
    /// Event latency.
    pub event_latency: EventLatency,
    /// Soak with leak accounting.
    pub soak: Soak,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            scenarios: Vec::new(),
            rounds: 5,
            warmup: 1,
            image: None,
            pause_image: None,
            pull_image: None,
            list_images: Vec::new(),
            timeout_secs: 120,
            container_lifecycle: Lifecycle::default(),
            pod_lifecycle: Lifecycle::default(),
            image_lifecycle: Lifecycle::new(10),
            image_list: Lifecycle::new(50),
            pod_container: Lifecycle::default(),
            list_scale: ListScale::default(),
            exec_sync: Lifecycle::new(50),
            container_stats: ContainerStats::default(),
            churn: Churn::default(),
            event_latency: EventLatency::default(),
            soak: Soak::default(),
        }
    }
}

/// critest's benchmark parameter file (`--benchmarking-params-file`), as cri-tools reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CritestParams {
    /// Container lifecycles to run.
    pub containers_number: u32,
    /// Container lifecycles in parallel.
    pub containers_number_parallel: u32,
    /// Longest acceptable container lifecycle, seconds.
    pub container_benchmark_timeout_seconds: u64,
    /// Pod lifecycles to run.
    pub pods_number: u32,
    /// Pod lifecycles in parallel.
    pub pods_number_parallel: u32,
    /// Longest acceptable pod lifecycle, seconds.
    pub pod_benchmark_timeout_seconds: u64,
    /// Image lifecycles (and listings) to run.
    pub images_number: u32,
    /// Image lifecycles in parallel.
    pub images_number_parallel: u32,
    /// Longest acceptable image operation, seconds.
    pub image_benchmark_timeout_seconds: u64,
    /// Image pulled by the image lifecycle.
    pub image_pulling_benchmark_image: String,
    /// Images present for the listing benchmark.
    pub image_listing_benchmark_images: Vec<String>,
    /// Longest acceptable pod and container start, seconds.
    pub pod_container_start_benchmark_timeout_seconds: u64,
}

const CRITEST_KEYS: &[&str] = &[
    "containersNumber",
    "containersNumberParallel",
    "containerBenchmarkTimeoutSeconds",
    "podsNumber",
    "podsNumberParallel",
    "podBenchmarkTimeoutSeconds",
    "imagesNumber",
    "imagesNumberParallel",
    "imageBenchmarkTimeoutSeconds",
    "imagePullingBenchmarkImage",
    "imageListingBenchmarkImages",
    "podContainerStartBenchmarkTimeoutSeconds",
];

impl CritestParams {
    /// Apply to `config` the way critest uses them: a count of 0 leaves that scenario out,
    /// as critest skips it; the longest timeout given becomes the per-call deadline.
    pub fn apply(&self, config: &mut BenchConfig) {
        let mut scenarios = Vec::new();
        let par = |p: u32| p.max(1);
        if self.containers_number > 0 {
            config.container_lifecycle = Lifecycle {
                iterations: self.containers_number,
                parallel: par(self.containers_number_parallel),
            };
            scenarios.push(Scenario::ContainerLifecycle);
        }
        if self.pods_number > 0 {
            config.pod_lifecycle = Lifecycle {
                iterations: self.pods_number,
                parallel: par(self.pods_number_parallel),
            };
            scenarios.push(Scenario::PodLifecycle);
            // critest's pod+container benchmark always runs; size it like the pod one.
            config.pod_container = Lifecycle::new(self.pods_number);
            scenarios.push(Scenario::PodContainer);
        }
        if self.images_number > 0 {
            config.image_lifecycle = Lifecycle {
                iterations: self.images_number,
                parallel: par(self.images_number_parallel),
            };
            config.image_list = Lifecycle {
                iterations: self.images_number,
                parallel: par(self.images_number_parallel),
            };
            scenarios.push(Scenario::ImageLifecycle);
            scenarios.push(Scenario::ImageList);
        }
        if scenarios.is_empty() {
            scenarios.push(Scenario::PodContainer);
        }
        scenarios.sort();
        config.scenarios = scenarios;
        if !self.image_pulling_benchmark_image.is_empty() {
            config.pull_image = Some(self.image_pulling_benchmark_image.clone());
        }
        if !self.image_listing_benchmark_images.is_empty() {
            config.list_images = self.image_listing_benchmark_images.clone();
        }
        let timeout = [
            self.container_benchmark_timeout_seconds,
            self.pod_benchmark_timeout_seconds,
            self.image_benchmark_timeout_seconds,
            self.pod_container_start_benchmark_timeout_seconds,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if timeout > 0 {
            config.timeout_secs = timeout;
        }
    }
}

/// What a parameter file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamsFile {
    /// anycri's own format ([`BenchConfig`]).
    Anycri(Box<BenchConfig>),
    /// critest's benchmark parameters.
    Critest(CritestParams),
}

impl ParamsFile {
    /// Parse `text`; TOML when `toml` is true, YAML otherwise. A YAML document whose keys
    /// are critest's is read as critest's parameters.
    pub fn parse(text: &str, toml: bool) -> anycri::Result<ParamsFile> {
        if toml {
            let config: BenchConfig = ::toml::from_str(text).map_err(|e| {
                Error::invalid_argument(format!("benchmark parameters (TOML): {e}"))
            })?;
            return Ok(ParamsFile::Anycri(Box::new(config)));
        }
        let value: serde_norway::Value = serde_norway::from_str(text)
            .map_err(|e| Error::invalid_argument(format!("benchmark parameters (YAML): {e}")))?;
        let is_critest = value.as_mapping().is_some_and(|m| {
            m.keys()
                .filter_map(|k| k.as_str())
                .any(|k| CRITEST_KEYS.contains(&k))
        });
        if is_critest {
            let params: CritestParams = serde_norway::from_value(value).map_err(|e| {
                Error::invalid_argument(format!("critest benchmark parameters: {e}"))
            })?;
            Ok(ParamsFile::Critest(params))
        } else if value.is_null() {
            Ok(ParamsFile::Anycri(Box::default()))
        } else {
            let config: BenchConfig = serde_norway::from_value(value).map_err(|e| {
                Error::invalid_argument(format!("benchmark parameters (YAML): {e}"))
            })?;
            Ok(ParamsFile::Anycri(Box::new(config)))
        }
    }

    /// Read and parse the file at `path` (`.toml`: TOML, anything else: YAML).
    pub fn load(path: &Path) -> anycri::Result<ParamsFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_argument(format!(
                "reading benchmark parameters {}: {e}",
                path.display()
            ))
        })?;
        let toml = path.extension().is_some_and(|e| e == "toml");
        Self::parse(&text, toml).map_err(|e| e.context(path.display()))
    }

    /// The configuration this file gives, over the defaults.
    pub fn into_config(self) -> BenchConfig {
        match self {
            ParamsFile::Anycri(c) => *c,
            ParamsFile::Critest(p) => {
                let mut c = BenchConfig::default();
                p.apply(&mut c);
                c
            }
        }
    }
}

impl BenchConfig {
    /// The scenarios to run, in running order.
    pub fn selected(&self) -> Vec<Scenario> {
        if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            let mut s = self.scenarios.clone();
            s.sort();
            s.dedup();
            s
        }
    }

    /// The per-call deadline.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Check the values make sense (InvalidArgument naming the field otherwise).
    pub fn validate(&self) -> anycri::Result<()> {
        let bad = |field: &str, why: &str| {
            Err(Error::invalid_argument(format!(
                "benchmark parameter {field}: {why}"
            )))
        };
        if self.rounds == 0 {
            return bad("rounds", "must be at least 1");
        }
        if self.list_scale.containers_per_pod == 0 {
            return bad("list_scale.containers_per_pod", "must be at least 1");
        }
        if self.list_scale.sizes.contains(&0) {
            return bad("list_scale.sizes", "sizes must be at least 1");
        }
        if self.churn.workers == 0 {
            return bad("churn.workers", "must be at least 1");
        }
        for (field, v) in [
            ("soak.lifecycles", self.soak.lifecycles),
            ("soak.workers", self.soak.workers),
            ("soak.windows", self.soak.windows),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1");
            }
        }
        for (name, l) in [
            ("container_lifecycle", &self.container_lifecycle),
            ("pod_lifecycle", &self.pod_lifecycle),
            ("image_lifecycle", &self.image_lifecycle),
            ("image_list", &self.image_list),
            ("pod_container", &self.pod_container),
            ("exec_sync", &self.exec_sync),
        ] {
            if l.parallel == 0 {
                return bad(&format!("{name}.parallel"), "must be at least 1");
            }
        }
        Ok(())
    }
}

/// Iterations of slice `round` (0-based) when `total` are split over `rounds` slices.
pub fn slice(total: u32, rounds: u32, round: u32) -> u32 {
    let rounds = rounds.max(1);
    total / rounds + u32::from(round < total % rounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRITEST_FILE: &str = "\
containersNumber: 50
containersNumberParallel: 2
containerBenchmarkTimeoutSeconds: 60
podsNumber: 30
podsNumberParallel: 1
podBenchmarkTimeoutSeconds: 90
imagesNumber: 10
imagesNumberParallel: 1
imageBenchmarkTimeoutSeconds: 30
imagePullingBenchmarkImage: 127.0.0.1:5000/anycri/pulltest:1.0
imageListingBenchmarkImages:
  - 127.0.0.1:5000/anycri/busybox:1.0
  - 127.0.0.1:5000/anycri/pause:1.0
podContainerStartBenchmarkTimeoutSeconds: 5
";

    #[test]
    fn critest_params_file_is_recognised_and_applied() {
        let parsed = ParamsFile::parse(CRITEST_FILE, false).unwrap();
        let ParamsFile::Critest(p) = &parsed else {
            panic!("not recognised as critest's: {parsed:?}");
        };
        assert_eq!(p.containers_number, 50);
        assert_eq!(p.image_listing_benchmark_images.len(), 2);
        let c = parsed.into_config();
        assert_eq!(
            c.container_lifecycle,
            Lifecycle {
                iterations: 50,
                parallel: 2
            }
        );
        assert_eq!(c.pod_lifecycle.iterations, 30);
        assert_eq!(c.pod_container.iterations, 30);
        assert_eq!(c.image_lifecycle.iterations, 10);
        assert_eq!(
            c.pull_image.as_deref(),
            Some("127.0.0.1:5000/anycri/pulltest:1.0")
        );
        assert_eq!(c.timeout_secs, 90);
        assert_eq!(
            c.selected(),
            vec![
                Scenario::ContainerLifecycle,
                Scenario::PodLifecycle,
                Scenario::ImageLifecycle,
                Scenario::ImageList,
                Scenario::PodContainer
            ]
        );
        c.validate().unwrap();
    }

    #[test]
    fn critest_zero_counts_leave_scenarios_out() {
        let c = ParamsFile::parse("podsNumber: 5\n", false)
            .unwrap()
            .into_config();
        assert_eq!(
            c.selected(),
            vec![Scenario::PodLifecycle, Scenario::PodContainer]
        );
    }

    #[test]
    fn own_yaml_and_toml_formats() {
        let yaml = "rounds: 3\nscenarios: [pod-container, churn]\nchurn:\n  workers: 8\n  duration_secs: 5\nlist_scale:\n  sizes: [10]\n";
        let c = ParamsFile::parse(yaml, false).unwrap().into_config();
        assert_eq!(c.rounds, 3);
        assert_eq!(c.selected(), vec![Scenario::PodContainer, Scenario::Churn]);
        assert_eq!(c.churn.workers, 8);
        assert_eq!(c.list_scale.sizes, vec![10]);
        assert_eq!(c.list_scale.containers_per_pod, 25, "defaults kept");
        assert_eq!(c.soak, Soak::default());

        let toml =
            "rounds = 2\nimage = \"busybox\"\n[pod_lifecycle]\niterations = 7\nparallel = 3\n";
        let c = ParamsFile::parse(toml, true).unwrap().into_config();
        assert_eq!(c.rounds, 2);
        assert_eq!(c.image.as_deref(), Some("busybox"));
        assert_eq!(
            c.pod_lifecycle,
            Lifecycle {
                iterations: 7,
                parallel: 3
            }
        );
    }

    #[test]
    fn bad_files_are_invalid_argument_naming_the_problem() {
        let e = ParamsFile::parse("rounds: [\n", false).unwrap_err();
        assert_eq!(e.kind(), anycri::ErrorKind::InvalidArgument);
        let e = ParamsFile::parse("roundz: 3\n", false).unwrap_err();
        assert!(e.to_string().contains("roundz"), "{e}");
        let e = ParamsFile::parse("containersNumber: many\n", false).unwrap_err();
        assert_eq!(e.kind(), anycri::ErrorKind::InvalidArgument);
        let e = ParamsFile::parse("rounds = \"x\"", true).unwrap_err();
        assert_eq!(e.kind(), anycri::ErrorKind::InvalidArgument);
        let c = ParamsFile::parse("rounds: 0\n", false)
            .unwrap()
            .into_config();
        assert!(c.validate().unwrap_err().to_string().contains("rounds"));
    }

    #[test]
    fn soak_is_opt_in_and_configurable() {
        let c = BenchConfig::default();
        assert!(!c.selected().contains(&Scenario::Soak));
        assert_eq!(c.soak.lifecycles, 1000);
        assert_eq!(c.soak.workers, 8);
        let yaml = "scenarios: [soak]\nsoak:\n  lifecycles: 40\n  workers: 4\n  settle_secs: 5\n";
        let c = ParamsFile::parse(yaml, false).unwrap().into_config();
        assert_eq!(c.selected(), vec![Scenario::Soak]);
        assert_eq!(c.soak.lifecycles, 40);
        assert_eq!(c.soak.workers, 4);
        assert_eq!(c.soak.settle_secs, 5);
        assert_eq!(c.soak.windows, 10, "defaults kept");
        c.validate().unwrap();
        let c = ParamsFile::parse("soak:\n  workers: 0\n", false)
            .unwrap()
            .into_config();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("soak.workers")
        );
        let e = ParamsFile::parse("soak:\n  worker: 3\n", false).unwrap_err();
        assert!(e.to_string().contains("worker"), "{e}");
    }

    #[test]
    fn slices_add_up() {
        for total in [0, 1, 7, 20, 101] {
            for rounds in [1, 3, 5] {
                let sum: u32 = (0..rounds).map(|r| slice(total, rounds, r)).sum();
                assert_eq!(sum, total, "total {total} rounds {rounds}");
            }
        }
    }
}
