//! Runs the scenarios: for each scenario, untimed preparation on every target, then the
//! timed part in interleaved rounds whose order rotates (round 1 on A, B, C, round 2 on B,
//! C, A, round 3 on C, A, B, ...: no target always follows the same one, so the work a
//! daemon defers after one target's slice does not always land on the next) with a
//! [`CostMeter`] around each slice, then the scenario's own teardown (listing at scale grows
//! and lists size by size; the soak runs each target whole, in turn, between its leak
//! counts). Every object carries the run's label; what a scenario leaves behind (after an
//! error, or when the run is cut short) is removed by the final sweep.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::{
    config::{BenchConfig, Scenario, slice},
    procstat::{Cost, CostMeter},
    result::{LifecycleDatapoint, Recorder, ScenarioResult, TargetScenario},
    target::{PodHandle, Target},
};

/// Grace period of StopContainer in the lifecycles: `sleep` as a container's PID 1 ignores
/// SIGTERM, so any grace would only be waited out; 0 makes the stop a kill on every runtime.
const STOP_GRACE: i64 = 0;

/// Objects a scenario prepared on one target before its timed part.
#[derive(Debug, Default)]
struct Prepared {
    pods: Vec<PodHandle>,
    containers: Vec<String>,
    /// The pull image was present before the image lifecycle (it is pulled again after).
    restore_pull_image: bool,
    /// Churn: time already spent in earlier slices.
    churn_offset: Duration,
    /// Event latency: the watches.
    probes: Vec<crate::events::EventProbe>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One container started and stopped; the delivery of its STARTED and STOPPED events to
/// each probe timed from the start of the call that caused it.
async fn event_latency(
    t: &Target,
    pod: &PodHandle,
    probes: &[crate::events::EventProbe],
    period: Duration,
    rec: &Recorder,
) {
    use anycri::api::ContainerEventType as E;
    let c = match t.create_container(pod, "events").await {
        Ok(c) => c,
        Err(e) => return rec.record_error("CreateContainer", e.to_string()),
    };
    let deadline = Duration::from_secs(30);
    for (event, kind) in [
        ("STARTED", E::ContainerStartedEvent),
        ("STOPPED", E::ContainerStoppedEvent),
    ] {
        // A random phase against the relisting watch's period: each iteration waits for the
        // relist, so without it every change would come right after a relist.
        tokio::time::sleep(jitter(period)).await;
        let start = Instant::now();
        let (called, _) = if kind == E::ContainerStartedEvent {
            timed(rec, "StartContainer", t.start_container(&c)).await
        } else {
            timed(rec, "StopContainer", t.stop_container(&c, STOP_GRACE)).await
        };
        if called.is_err() {
            break;
        }
        for probe in probes {
            match probe.wait(&c, kind, deadline).await {
                Some((at, origin)) => rec.record(
                    &probe.op(event, origin),
                    at.saturating_duration_since(start),
                ),
                None => rec.record_error(
                    &probe.op(event, anycri::watch::EventOrigin::Runtime),
                    format!("no {event} event within {deadline:?} ({})", probe.mode),
                ),
            }
        }
    }
    if let Err(e) = t.remove_container(&c).await {
        rec.record_error("RemoveContainer", e.to_string());
    }
}

/// A pseudo-random duration in `[0, period)` (from the clock's nanoseconds: spread, not secret).
fn jitter(period: Duration) -> Duration {
    let span = period.as_nanos().max(1) as u64;
    let seed = now_ns() as u64;
    // splitmix64, so consecutive calls do not step in lockstep with the clock.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    Duration::from_nanos((z ^ (z >> 31)) % span)
}

/// Time `fut`, record it as `op` (or its error), return its output.
async fn timed<T>(
    rec: &Recorder,
    op: &str,
    fut: impl Future<Output = anycri::Result<T>>,
) -> (anycri::Result<T>, i64) {
    let start = Instant::now();
    let r = fut.await;
    let d = start.elapsed();
    match &r {
        Ok(_) => rec.record(op, d),
        Err(e) => rec.record_error(op, e.to_string()),
    }
    let ns = if r.is_ok() { d.as_nanos() as i64 } else { -1 };
    (r, ns)
}

/// Everything the scenarios share.
pub struct Runner<'a> {
    /// Parameters.
    pub config: &'a BenchConfig,
    /// The targets, in the order given.
    pub targets: &'a [Arc<Target>],
    /// Image pulled and removed by the image lifecycle.
    pub pull_image: String,
    /// Image of the containers.
    pub image: String,
    /// Progress bars (hidden when stderr is not a terminal).
    pub progress: MultiProgress,
}

impl Runner<'_> {
    pub(crate) fn bar(&self, scenario: Scenario, len: u64) -> ProgressBar {
        let bar = self.progress.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(scenario.name());
        bar
    }

    /// Timed iterations per target of a scenario (churn: seconds).
    fn iterations(&self, scenario: Scenario) -> u32 {
        let c = self.config;
        match scenario {
            Scenario::ContainerLifecycle => c.container_lifecycle.iterations,
            Scenario::PodLifecycle => c.pod_lifecycle.iterations,
            Scenario::ImageLifecycle => c.image_lifecycle.iterations,
            Scenario::ImageList => c.image_list.iterations,
            Scenario::PodContainer => c.pod_container.iterations,
            Scenario::ListScale => c.list_scale.iterations,
            Scenario::ExecSync => c.exec_sync.iterations,
            Scenario::ContainerStats => c.container_stats.iterations,
            Scenario::Churn => c.churn.duration_secs as u32,
            Scenario::EventLatency => c.event_latency.iterations,
            Scenario::Soak => c.soak.lifecycles,
        }
    }

    fn parallel(&self, scenario: Scenario) -> u32 {
        let c = self.config;
        match scenario {
            Scenario::ContainerLifecycle => c.container_lifecycle.parallel,
            Scenario::PodLifecycle => c.pod_lifecycle.parallel,
            Scenario::ImageLifecycle => c.image_lifecycle.parallel,
            Scenario::ImageList => c.image_list.parallel,
            Scenario::PodContainer => c.pod_container.parallel,
            Scenario::ExecSync => c.exec_sync.parallel,
            _ => 1,
        }
        .max(1)
    }

    /// Run one scenario on every target.
    pub async fn run(&self, scenario: Scenario) -> ScenarioResult {
        if scenario == Scenario::ListScale {
            return self.run_list_scale().await;
        }
        if scenario == Scenario::Soak {
            return self.run_soak().await;
        }
        let n_targets = self.targets.len();
        let recorders: Vec<Recorder> = (0..n_targets).map(|_| Recorder::default()).collect();
        let mut costs: Vec<Cost> = vec![Cost::default(); n_targets];
        let mut prepared: Vec<Result<Prepared, String>> = Vec::new();
        for t in self.targets {
            prepared.push(self.prepare(scenario, t).await.map_err(|e| e.to_string()));
        }
        // Warm-up (untimed): images cached, connections open, first-call paths taken.
        if self.config.warmup > 0 && scenario != Scenario::Churn {
            for (i, t) in self.targets.iter().enumerate() {
                if let Ok(p) = prepared[i].as_mut() {
                    let scratch = Recorder::default();
                    self.slice(scenario, t, p, self.config.warmup, &scratch, 0)
                        .await;
                }
            }
        }
        let total = self.iterations(scenario);
        let bar = self.bar(scenario, total as u64 * n_targets as u64);
        for round in 0..self.config.rounds {
            let n = slice(total, self.config.rounds, round);
            if n == 0 {
                continue;
            }
            for i in round_order(n_targets, round) {
                let t = &self.targets[i];
                let Ok(p) = prepared[i].as_mut() else {
                    bar.inc(n as u64);
                    continue;
                };
                bar.set_message(t.name.clone());
                let meter = CostMeter::start(&t.daemons);
                self.slice(scenario, t, p, n, &recorders[i], round).await;
                costs[i].merge(&meter.finish(&t.daemons));
                bar.inc(n as u64);
            }
        }
        bar.finish_and_clear();
        for (i, t) in self.targets.iter().enumerate() {
            if let Ok(p) = prepared[i].as_mut() {
                self.teardown(scenario, t, p, &recorders[i]).await;
            }
        }
        ScenarioResult {
            scenario: scenario.name().to_owned(),
            targets: self
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let skipped = prepared[i].as_ref().err().cloned();
                    recorders[i].finish(&t.name, costs[i].clone(), skipped)
                })
                .collect(),
        }
    }

    /// Untimed preparation of a scenario on one target.
    async fn prepare(&self, scenario: Scenario, t: &Target) -> anycri::Result<Prepared> {
        let mut p = Prepared::default();
        match scenario {
            Scenario::ContainerLifecycle => {
                p.pods.push(t.run_pod("container-lifecycle").await?);
            }
            Scenario::ImageLifecycle => {
                p.restore_pull_image = t.image_status(&self.pull_image).await.is_ok();
                if p.restore_pull_image {
                    t.remove_image(&self.pull_image).await?;
                }
            }
            Scenario::ImageList => {
                t.prepare_images(&self.config.list_images).await?;
            }
            Scenario::ExecSync => {
                let pod = t.run_pod("exec-sync").await?;
                let c = t.create_container(&pod, "exec").await?;
                p.pods.push(pod);
                t.start_container(&c).await?;
                t.exec_sync(&c, &["true"]).await?;
                p.containers.push(c);
            }
            Scenario::EventLatency => {
                let Some(runtime) = t.runtime() else {
                    return Err(anycri::Error::new(
                        anycri::ErrorKind::Unimplemented,
                        "the Docker floor has no event stream",
                    ));
                };
                let period = Duration::from_millis(self.config.event_latency.relist_period_ms);
                for events in [true, false] {
                    p.probes.push(
                        crate::events::EventProbe::start(runtime.clone(), events, period).await?,
                    );
                }
                p.pods.push(t.run_pod("event-latency").await?);
            }
            Scenario::ContainerStats => {
                let pod = t.run_pod("container-stats").await?;
                p.pods.push(pod.clone());
                for _ in 0..self.config.container_stats.containers.max(1) {
                    let c = t.create_container(&pod, "stats").await?;
                    t.start_container(&c).await?;
                    p.containers.push(c);
                }
            }
            _ => {}
        }
        Ok(p)
    }

    /// The scenario's own teardown (untimed).
    async fn teardown(&self, scenario: Scenario, t: &Target, p: &mut Prepared, rec: &Recorder) {
        for pod in p.pods.drain(..) {
            let _ = t.stop_pod(&pod.id).await;
            if let Err(e) = t.remove_pod(&pod.id).await {
                rec.note("teardown", format!("removing pod {}: {e}", pod.id));
            }
        }
        if scenario == Scenario::ImageLifecycle
            && p.restore_pull_image
            && let Err(e) = t.pull_image(&self.pull_image).await
        {
            rec.note(
                "teardown",
                format!("pulling {} back failed: {e}", self.pull_image),
            );
        }
    }

    /// `n` timed iterations of `scenario` on `t`.
    async fn slice(
        &self,
        scenario: Scenario,
        t: &Target,
        p: &mut Prepared,
        n: u32,
        rec: &Recorder,
        round: u32,
    ) {
        let parallel = self.parallel(scenario) as usize;
        match scenario {
            Scenario::ContainerLifecycle => {
                let pod = p.pods[0].clone();
                let pod = &pod;
                futures::stream::iter(0..n)
                    .for_each_concurrent(parallel, |_| async move {
                        container_lifecycle(t, pod, rec).await;
                    })
                    .await;
            }
            Scenario::PodLifecycle => {
                futures::stream::iter(0..n)
                    .for_each_concurrent(parallel, |_| pod_lifecycle(t, rec))
                    .await;
            }
            Scenario::ImageLifecycle => {
                // Each iteration pulls and removes the same image, so they run one at a time.
                for _ in 0..n {
                    image_lifecycle(t, &self.pull_image, rec).await;
                }
            }
            Scenario::ImageList => {
                let image = &self.image;
                futures::stream::iter(0..n)
                    .for_each_concurrent(parallel, |_| async move {
                        let start = now_ns();
                        let (_, d1) = timed(rec, "ListImages", t.list_images()).await;
                        let (_, d2) = timed(rec, "ImageStatus", t.image_status(image)).await;
                        rec.lifecycle(LifecycleDatapoint {
                            start_ns: start,
                            end_ns: now_ns(),
                            durations_ns: vec![d1, d2],
                        });
                    })
                    .await;
            }
            Scenario::PodContainer => {
                futures::stream::iter(0..n)
                    .for_each_concurrent(parallel, |_| async move {
                        pod_container(t, rec).await;
                    })
                    .await;
            }
            Scenario::ExecSync => {
                let c = p.containers[0].clone();
                let c = &c;
                futures::stream::iter(0..n)
                    .for_each_concurrent(parallel, |_| async move {
                        let _ = timed(rec, "ExecSync", t.exec_sync(c, &["true"])).await;
                    })
                    .await;
            }
            Scenario::ContainerStats => {
                let running = p.containers.len();
                let op = format!("ListContainerStats ({running} running)");
                for _ in 0..n {
                    let _ = timed(rec, "ContainerStats", t.container_stats(&p.containers[0])).await;
                    if let (Ok(seen), _) = timed(rec, &op, t.list_container_stats()).await {
                        rec.note("ListContainerStats entries", seen.to_string());
                    }
                }
            }
            Scenario::Churn => {
                let secs = slice(
                    self.config.churn.duration_secs as u32,
                    self.config.rounds,
                    round,
                );
                let until = Instant::now() + Duration::from_secs(secs as u64);
                let offset = p.churn_offset;
                let started = Instant::now();
                lifecycle_workers(
                    t,
                    rec,
                    self.config.churn.workers,
                    Budget::Until(until),
                    |done| {
                        if done.ok {
                            rec.completion(offset + done.ended.duration_since(started));
                        }
                    },
                )
                .await;
                p.churn_offset += started.elapsed();
            }
            Scenario::EventLatency => {
                let period = Duration::from_millis(self.config.event_latency.relist_period_ms);
                let pod = p.pods[0].clone();
                for _ in 0..n {
                    event_latency(t, &pod, &p.probes, period, rec).await;
                }
            }
            Scenario::ListScale | Scenario::Soak => {}
        }
    }

    /// Listing at scale: for each size (ascending), grow every target to that many
    /// containers (created, not started, `containers_per_pod` to a pod), then list in
    /// interleaved rounds; everything is removed at the end.
    async fn run_list_scale(&self) -> ScenarioResult {
        let cfg = &self.config.list_scale;
        let n_targets = self.targets.len();
        let recorders: Vec<Recorder> = (0..n_targets).map(|_| Recorder::default()).collect();
        let mut costs: Vec<Cost> = vec![Cost::default(); n_targets];
        let mut skipped: Vec<Option<String>> = vec![None; n_targets];
        let mut prepared: Vec<Prepared> = (0..n_targets).map(|_| Prepared::default()).collect();
        let mut sizes = cfg.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let total_objects: u64 = sizes.last().copied().unwrap_or(0) as u64 * n_targets as u64;
        let build = self.bar(Scenario::ListScale, total_objects);
        let mut calls = 0;
        for &size in &sizes {
            // Grow (untimed).
            for (i, t) in self.targets.iter().enumerate() {
                if skipped[i].is_some() {
                    continue;
                }
                build.set_message(format!("creating {size} containers on {}", t.name));
                if let Err(e) =
                    grow(t, &mut prepared[i], size, cfg.containers_per_pod, &build).await
                {
                    skipped[i] = Some(format!("creating {size} containers: {e}"));
                }
            }
            // List (timed, interleaved).
            let pods = size.div_ceil(cfg.containers_per_pod);
            let ops = [
                format!("ListContainers ({size})"),
                format!("ListPodSandbox ({pods} pods)"),
                format!("ListContainerStats ({size})"),
            ];
            for round in 0..self.config.rounds {
                let n = slice(cfg.iterations, self.config.rounds, round);
                for i in round_order(n_targets, round) {
                    let t = &self.targets[i];
                    if skipped[i].is_some() || n == 0 {
                        continue;
                    }
                    let rec = &recorders[i];
                    build.set_message(format!("listing {size} on {}", t.name));
                    let meter = CostMeter::start(&t.daemons);
                    for _ in 0..n {
                        if let (Ok(seen), _) = timed(rec, &ops[0], t.list_containers()).await
                            && seen != size as usize
                        {
                            rec.note(&ops[0], format!("listed {seen}, expected {size}"));
                        }
                        let _ = timed(rec, &ops[1], t.list_pods()).await;
                        let _ = timed(rec, &ops[2], t.list_container_stats()).await;
                        calls += 3;
                    }
                    costs[i].merge(&meter.finish(&t.daemons));
                }
            }
        }
        build.set_message("removing");
        for (i, t) in self.targets.iter().enumerate() {
            let pods: Vec<PodHandle> = prepared[i].pods.drain(..).collect();
            let errors: Vec<String> = futures::stream::iter(pods)
                .map(|pod| async move {
                    let _ = t.stop_pod(&pod.id).await;
                    t.remove_pod(&pod.id).await.err().map(|e| e.to_string())
                })
                .buffer_unordered(4)
                .filter_map(|e| async move { e })
                .collect()
                .await;
            if !errors.is_empty() {
                recorders[i].note("teardown", errors.join("; "));
            }
        }
        build.finish_and_clear();
        tracing::debug!(calls, "list-scale done");
        ScenarioResult {
            scenario: Scenario::ListScale.name().to_owned(),
            targets: self
                .targets
                .iter()
                .enumerate()
                .map(|(i, t)| recorders[i].finish(&t.name, costs[i].clone(), skipped[i].clone()))
                .collect(),
        }
    }
}

/// Create pods and (unstarted) containers on `t` until it holds `size` containers.
async fn grow(
    t: &Target,
    p: &mut Prepared,
    size: u32,
    per_pod: u32,
    bar: &ProgressBar,
) -> anycri::Result<()> {
    while (p.containers.len() as u32) < size {
        let pod = t.run_pod("list-scale").await?;
        p.pods.push(pod.clone());
        let want = per_pod.min(size - p.containers.len() as u32);
        let pod = &pod;
        let made: Vec<anycri::Result<String>> = futures::stream::iter(0..want)
            .map(|_| async move { t.create_container(pod, "listed").await })
            .buffer_unordered(4)
            .collect()
            .await;
        for c in made {
            p.containers.push(c?);
            bar.inc(1);
        }
    }
    Ok(())
}

/// critest's container lifecycle in `pod`: create, start, status, stop, remove.
async fn container_lifecycle(t: &Target, pod: &PodHandle, rec: &Recorder) {
    let start = now_ns();
    let mut d = vec![-1; 5];
    let (id, d0) = timed(rec, "CreateContainer", t.create_container(pod, "lifecycle")).await;
    d[0] = d0;
    if let Ok(id) = id {
        d[1] = timed(rec, "StartContainer", t.start_container(&id)).await.1;
        d[2] = timed(rec, "ContainerStatus", t.container_status(&id))
            .await
            .1;
        d[3] = timed(rec, "StopContainer", t.stop_container(&id, STOP_GRACE))
            .await
            .1;
        d[4] = timed(rec, "RemoveContainer", t.remove_container(&id))
            .await
            .1;
        if d[4] < 0 {
            let _ = t.stop_container(&id, 0).await;
            let _ = t.remove_container(&id).await;
        }
    }
    rec.lifecycle(LifecycleDatapoint {
        start_ns: start,
        end_ns: now_ns(),
        durations_ns: d,
    });
}

/// The order of the targets in round `round`: rotated by one each round.
pub fn round_order(n_targets: usize, round: u32) -> impl Iterator<Item = usize> {
    let shift = if n_targets == 0 {
        0
    } else {
        round as usize % n_targets
    };
    (0..n_targets).map(move |k| (k + shift) % n_targets)
}

/// critest's pod lifecycle: run, status, stop, remove.
async fn pod_lifecycle(t: &Target, rec: &Recorder) {
    let start = now_ns();
    let mut d = vec![-1; 4];
    let (pod, d0) = timed(rec, "RunPodSandbox", t.run_pod("pod-lifecycle")).await;
    d[0] = d0;
    if let Ok(pod) = pod {
        d[1] = timed(rec, "PodSandboxStatus", t.pod_status(&pod.id))
            .await
            .1;
        d[2] = timed(rec, "StopPodSandbox", t.stop_pod(&pod.id)).await.1;
        d[3] = timed(rec, "RemovePodSandbox", t.remove_pod(&pod.id))
            .await
            .1;
    }
    rec.lifecycle(LifecycleDatapoint {
        start_ns: start,
        end_ns: now_ns(),
        durations_ns: d,
    });
}

/// critest's image lifecycle: pull, status, remove.
async fn image_lifecycle(t: &Target, image: &str, rec: &Recorder) {
    let start = now_ns();
    let mut d = vec![-1; 3];
    d[0] = timed(rec, "PullImage", t.pull_image(image)).await.1;
    if d[0] >= 0 {
        d[1] = timed(rec, "ImageStatus", t.image_status(image)).await.1;
        d[2] = timed(rec, "RemoveImage", t.remove_image(image)).await.1;
    }
    rec.lifecycle(LifecycleDatapoint {
        start_ns: start,
        end_ns: now_ns(),
        durations_ns: d,
    });
}

/// When a pool of lifecycle workers stops taking new lifecycles.
#[derive(Debug)]
pub(crate) enum Budget<'a> {
    /// At this instant (churn).
    Until(Instant),
    /// When this many, shared by the workers, have been taken (soak).
    Count(&'a AtomicU32),
}

impl Budget<'_> {
    /// Whether a worker may start one more lifecycle (taking it from a count).
    fn take(&self) -> bool {
        match self {
            Budget::Until(t) => Instant::now() < *t,
            Budget::Count(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// One lifecycle a worker finished.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finished {
    /// Whether every step succeeded.
    pub(crate) ok: bool,
    /// When it started.
    pub(crate) started: Instant,
    /// When it ended.
    pub(crate) ended: Instant,
}

/// `workers` workers, each running pod lifecycles ([`pod_container`]: RunPodSandbox with the
/// run's labels and a log directory, CreateContainer, StartContainer, StopPodSandbox,
/// RemovePodSandbox) back to back while `budget` lasts; `done` sees each one that ends.
/// Churn and the soak run on it.
pub(crate) async fn lifecycle_workers(
    t: &Target,
    rec: &Recorder,
    workers: u32,
    budget: Budget<'_>,
    done: impl Fn(Finished),
) {
    let (budget, done) = (&budget, &done);
    futures::stream::iter(0..workers)
        .for_each_concurrent(None, |_| async move {
            while budget.take() {
                let started = Instant::now();
                let ok = pod_container(t, rec).await;
                done(Finished {
                    ok,
                    started,
                    ended: Instant::now(),
                });
            }
        })
        .await;
}

/// A pod with one container from scratch and torn down; each step and the whole timed.
/// True when the whole lifecycle succeeded.
async fn pod_container(t: &Target, rec: &Recorder) -> bool {
    let start_ns = now_ns();
    let start = Instant::now();
    let mut d = vec![-1; 5];
    let (pod, d0) = timed(rec, "RunPodSandbox", t.run_pod("pod-container")).await;
    d[0] = d0;
    let Ok(pod) = pod else {
        rec.record_error("PodAndContainer", "RunPodSandbox failed");
        return false;
    };
    let (c, d1) = timed(rec, "CreateContainer", t.create_container(&pod, "app")).await;
    d[1] = d1;
    if let Ok(c) = &c {
        d[2] = timed(rec, "StartContainer", t.start_container(c)).await.1;
        if d[2] >= 0 {
            rec.record(
                "CreateContainer+StartContainer",
                Duration::from_nanos((d[1] + d[2]) as u64),
            );
        }
    }
    d[3] = timed(rec, "StopPodSandbox", t.stop_pod(&pod.id)).await.1;
    d[4] = timed(rec, "RemovePodSandbox", t.remove_pod(&pod.id))
        .await
        .1;
    let ok = d.iter().all(|x| *x >= 0);
    if ok {
        rec.record("PodAndContainer", start.elapsed());
    } else {
        rec.record_error("PodAndContainer", "a step failed");
    }
    rec.lifecycle(LifecycleDatapoint {
        start_ns,
        end_ns: now_ns(),
        durations_ns: d,
    });
    ok
}

/// The target-scenario result of a scenario that could not run at all on any target.
pub fn skipped_everywhere(
    scenario: Scenario,
    targets: &[Arc<Target>],
    why: &str,
) -> ScenarioResult {
    ScenarioResult {
        scenario: scenario.name().to_owned(),
        targets: targets
            .iter()
            .map(|t| TargetScenario {
                target: t.name.clone(),
                skipped: Some(why.to_owned()),
                ..Default::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_budget_hands_out_exactly_its_count() {
        let left = AtomicU32::new(3);
        let b = Budget::Count(&left);
        assert_eq!((0..5).filter(|_| b.take()).count(), 3);
        assert_eq!(left.load(Ordering::Relaxed), 0);
        assert!(!Budget::Until(Instant::now()).take());
        assert!(Budget::Until(Instant::now() + Duration::from_secs(60)).take());
    }

    #[test]
    fn round_order_rotates_so_each_target_leads_and_follows_every_other() {
        let orders: Vec<Vec<usize>> = (0..3).map(|r| round_order(3, r).collect()).collect();
        assert_eq!(orders, vec![vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1]]);
        // Over n rounds every target takes every position once.
        for pos in 0..3 {
            let mut at: Vec<usize> = orders.iter().map(|o| o[pos]).collect();
            at.sort_unstable();
            assert_eq!(at, vec![0, 1, 2]);
        }
        assert_eq!(round_order(2, 7).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(round_order(0, 3).count(), 0);
    }
}
