//! Container and pod sandbox stats from Docker, kept cheap: one-shot stats (no one-second
//! sampling wait), CPU rate from the previous sample the shim remembers, memory working set
//! without page cache (usage minus inactive file pages), and writable-layer sizes from a
//! cache refreshed at most once per TTL — Docker computes them by walking the filesystem,
//! which is what makes cri-dockerd's stats slow. Lists run a bounded number of requests at once.
//!
//! Docker answers a one-shot stats request at its stats collector's next tick (it samples
//! every container once a second), so a request waits up to a second whatever it asks for;
//! a list sends its stats requests together (up to `STATS_REQUESTS`) so they share one
//! tick, while the writable-layer inspects, which make Docker walk filesystems, stay
//! `CONCURRENCY` at a time.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use anycri_core::{Error, Result, api::*};
use bollard::{
    models::{ContainerStatsResponse as DockerStats, ContainerSummary},
    query_parameters::{InspectContainerOptionsBuilder, StatsOptionsBuilder},
};
use futures::{StreamExt, TryStreamExt};

use crate::{
    DockerRuntime,
    cgroups::{self, CgroupPaths, Usage},
    error::docker_error,
    labels,
};

/// Writable-layer inspects (`size=1`, a filesystem walk in Docker) made at once, and pods a
/// pod stats list works on at once.
const CONCURRENCY: usize = 8;
/// One-shot stats requests a container stats list makes at once. Each only waits for
/// Docker's next collector tick, so a bound of [`CONCURRENCY`] would make a list of 20
/// containers wait three ticks (about 3 s) instead of one.
const STATS_REQUESTS: usize = 64;

#[derive(Clone, Copy)]
struct CpuSample {
    at_nanos: i64,
    total: u64,
}

/// Remembered CPU samples and cached writable-layer sizes.
pub(crate) struct StatsCache {
    ttl: Duration,
    sizes: Mutex<HashMap<String, (Instant, u64)>>,
    cpu: Mutex<HashMap<String, CpuSample>>,
    /// Bounds the writable-layer inspects in flight to [`CONCURRENCY`].
    size_inspects: tokio::sync::Semaphore,
    /// Each running container's init PID and cgroup directories.
    cgroups: Mutex<HashMap<String, (i64, CgroupPaths)>>,
    /// Docker's root directory, the writable layers' filesystem (as ImageFsInfo names it).
    root_dir: tokio::sync::OnceCell<String>,
}

impl StatsCache {
    pub fn new(ttl: Duration) -> Self {
        StatsCache {
            ttl,
            sizes: Mutex::new(HashMap::new()),
            cpu: Mutex::new(HashMap::new()),
            size_inspects: tokio::sync::Semaphore::new(CONCURRENCY),
            cgroups: Mutex::new(HashMap::new()),
            root_dir: tokio::sync::OnceCell::new(),
        }
    }

    fn cached_size(&self, id: &str) -> Option<u64> {
        let sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        sizes
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| *s)
    }

    fn store_size(&self, id: &str, size: u64) {
        let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        sizes.insert(id.to_owned(), (Instant::now(), size));
    }

    /// Nanocores since the previous sample of `id`, remembering this one.
    fn nano_cores(&self, id: &str, sample: CpuSample) -> Option<u64> {
        let mut cpu = self.cpu.lock().unwrap_or_else(|p| p.into_inner());
        let prev = cpu.insert(id.to_owned(), sample)?;
        let dt = sample.at_nanos - prev.at_nanos;
        (dt > 0 && sample.total >= prev.total)
            .then(|| ((sample.total - prev.total) as u128 * 1_000_000_000 / dt as u128) as u64)
    }

    /// Forget containers that are gone.
    fn retain(&self, alive: &[String]) {
        let keep = |k: &String| alive.contains(k);
        self.sizes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| keep(k));
        self.cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| keep(k));
        self.cgroups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| keep(k));
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

fn u64v(value: u64) -> Option<UInt64Value> {
    Some(UInt64Value { value })
}

/// Memory usage without page cache that could be dropped (cgroup v1 and v2 key names).
fn working_set(s: &DockerStats) -> (u64, u64, u64) {
    let m = s.memory_stats.clone().unwrap_or_default();
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.unwrap_or_default();
    let inactive = stats
        .get("total_inactive_file")
        .or_else(|| stats.get("inactive_file"))
        .copied()
        .unwrap_or(0);
    let rss = stats
        .get("total_rss")
        .or_else(|| stats.get("anon"))
        .copied()
        .unwrap_or(0);
    (usage.saturating_sub(inactive), usage, rss)
}

/// The same figures from Docker's stats API.
fn usage_of(raw: &DockerStats) -> Usage {
    let (working_set, usage, rss) = working_set(raw);
    Usage {
        cpu_total: raw
            .cpu_stats
            .as_ref()
            .and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0),
        usage,
        working_set,
        rss,
        limit: raw.memory_stats.as_ref().and_then(|m| m.limit),
        pids: raw.pids_stats.as_ref().and_then(|p| p.current),
        networks: raw
            .networks
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, n)| {
                let v = |x: Option<u64>| x.unwrap_or(0);
                (
                    name,
                    v(n.rx_bytes),
                    v(n.rx_errors),
                    v(n.tx_bytes),
                    v(n.tx_errors),
                )
            })
            .collect(),
    }
}

impl DockerRuntime {
    /// A container's usage: from its cgroup files when they can be read (microseconds),
    /// else from Docker's stats API (which waits for Docker's next collector tick).
    async fn usage(&self, id: &str) -> Result<Usage> {
        let cached = self
            .inner
            .stats
            .cgroups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some((pid, paths)) = cached {
            if let Some(u) = cgroups::read(&paths, pid) {
                return Ok(u);
            }
            self.inner
                .stats
                .cgroups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
        let pid = self
            .docker()
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| docker_error(format!("container {id}"), e))?
            .state
            .and_then(|s| s.pid)
            .filter(|p| *p > 0);
        if let Some(pid) = pid
            && let Some(paths) = cgroups::paths_of(pid, std::path::Path::new("/sys/fs/cgroup"))
            && let Some(u) = cgroups::read(&paths, pid)
        {
            self.inner
                .stats
                .cgroups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_owned(), (pid, paths));
            return Ok(u);
        }
        Ok(usage_of(&self.docker_stats(id).await?))
    }

    async fn docker_stats(&self, id: &str) -> Result<DockerStats> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        self.docker()
            .stats(id, Some(options))
            .try_next()
            .await
            .map_err(|e| docker_error(format!("stats of container {id}"), e))?
            .ok_or_else(|| Error::unavailable(format!("Docker returned no stats for {id}")))
    }

    async fn writable_layer(&self, id: &str) -> u64 {
        if let Some(size) = self.inner.stats.cached_size(id) {
            return size;
        }
        // The semaphore is never closed.
        let _permit = self.inner.stats.size_inspects.acquire().await.ok();
        let options = InspectContainerOptionsBuilder::default().size(true).build();
        let size = match self.docker().inspect_container(id, Some(options)).await {
            Ok(i) => i.size_rw.unwrap_or(0).max(0) as u64,
            Err(_) => 0,
        };
        self.inner.stats.store_size(id, size);
        size
    }

    /// Docker's root directory, asked once; the same default as ImageFsInfo when unknown.
    async fn root_dir(&self) -> String {
        self.inner
            .stats
            .root_dir
            .get_or_init(|| async {
                self.docker()
                    .info()
                    .await
                    .ok()
                    .and_then(|i| i.docker_root_dir)
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "/var/lib/docker".to_owned())
            })
            .await
            .clone()
    }

    async fn stats_of(&self, summary: &ContainerSummary) -> Result<ContainerStats> {
        let id = summary.id.clone().unwrap_or_default();
        let (raw, layer, root_dir) =
            tokio::join!(self.usage(&id), self.writable_layer(&id), self.root_dir());
        let raw = raw?;
        let ts = now_nanos();
        let total = raw.cpu_total;
        let nano_cores = self.inner.stats.nano_cores(
            &id,
            CpuSample {
                at_nanos: ts,
                total,
            },
        );
        let (ws, usage, rss) = (raw.working_set, raw.usage, raw.rss);
        let docker_labels = summary.labels.clone().unwrap_or_default();
        let (labels, annotations) = labels::split_labels(&docker_labels);
        let metadata = summary
            .names
            .as_ref()
            .and_then(|n| n.first())
            .and_then(|n| labels::parse_container_name(n).ok())
            .map(|(m, _)| m);
        Ok(ContainerStats {
            attributes: Some(ContainerAttributes {
                id,
                metadata,
                labels,
                annotations,
            }),
            cpu: Some(CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: u64v(total),
                usage_nano_cores: nano_cores.and_then(u64v),
                psi: None,
            }),
            memory: Some(MemoryUsage {
                timestamp: ts,
                working_set_bytes: u64v(ws),
                usage_bytes: u64v(usage),
                rss_bytes: u64v(rss),
                available_bytes: raw.limit.and_then(|l| u64v(l.saturating_sub(ws))),
                ..Default::default()
            }),
            writable_layer: Some(FilesystemUsage {
                timestamp: ts,
                fs_id: Some(FilesystemIdentifier {
                    mountpoint: root_dir,
                }),
                used_bytes: u64v(layer),
                inodes_used: None,
            }),
            ..Default::default()
        })
    }

    pub(crate) async fn container_stats_impl(
        &self,
        request: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse> {
        let inspect = self.inspect_container(&request.container_id).await?;
        let id = inspect.id.clone().unwrap_or_default();
        let summary = ContainerSummary {
            id: Some(id),
            names: inspect.name.map(|n| vec![n]),
            labels: inspect.config.and_then(|c| c.labels),
            ..Default::default()
        };
        Ok(ContainerStatsResponse {
            stats: Some(self.stats_of(&summary).await?),
        })
    }

    pub(crate) async fn list_container_stats_impl(
        &self,
        request: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse> {
        let f = request.filter.unwrap_or_default();
        let in_sandbox = (f.pod_sandbox_id.len() == 64)
            .then(|| format!("{}={}", labels::SANDBOX_ID_LABEL, f.pod_sandbox_id));
        let running = self
            .list_kind(
                labels::TYPE_CONTAINER,
                &f.label_selector,
                in_sandbox,
                &f.id,
                true,
            )
            .await?;
        let running: Vec<_> = running
            .into_iter()
            .filter(|c| {
                f.pod_sandbox_id.is_empty()
                    || c.labels
                        .as_ref()
                        .and_then(|l| l.get(labels::SANDBOX_ID_LABEL))
                        .is_some_and(|s| s.starts_with(&f.pod_sandbox_id))
            })
            .collect();
        if f.id.is_empty() && f.pod_sandbox_id.is_empty() && f.label_selector.is_empty() {
            let alive: Vec<String> = running.iter().filter_map(|c| c.id.clone()).collect();
            self.inner.stats.retain(&alive);
        }
        let stats: Vec<ContainerStats> = futures::stream::iter(running.into_iter().map(|c| {
            let this = self.clone();
            async move { this.stats_of(&c).await }
        }))
        .buffer_unordered(STATS_REQUESTS)
        // A container that exited between the list and its stats is skipped.
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
        Ok(ListContainerStatsResponse { stats })
    }

    async fn pod_stats(&self, pause: &ContainerSummary) -> Result<PodSandboxStats> {
        let id = pause.id.clone().unwrap_or_default();
        // Together: where Docker's stats API is used, both wait for the same collector tick.
        let (containers, raw) = tokio::join!(
            self.list_container_stats_impl(ListContainerStatsRequest {
                filter: Some(ContainerStatsFilter {
                    pod_sandbox_id: id.clone(),
                    ..Default::default()
                }),
            }),
            self.usage(&id)
        );
        let (containers, raw) = (containers?.stats, raw?);
        let ts = now_nanos();
        let sum = |f: &dyn Fn(&ContainerStats) -> u64| containers.iter().map(f).sum::<u64>();
        let pause_cpu = raw.cpu_total;
        let cpu = pause_cpu
            + sum(&|c| {
                c.cpu
                    .as_ref()
                    .and_then(|c| c.usage_core_nano_seconds)
                    .map_or(0, |v| v.value)
            });
        let nano = sum(&|c| {
            c.cpu
                .as_ref()
                .and_then(|c| c.usage_nano_cores)
                .map_or(0, |v| v.value)
        });
        let (pause_ws, pause_usage) = (raw.working_set, raw.usage);
        let ws = pause_ws
            + sum(&|c| {
                c.memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes)
                    .map_or(0, |v| v.value)
            });
        let usage = pause_usage
            + sum(&|c| {
                c.memory
                    .as_ref()
                    .and_then(|m| m.usage_bytes)
                    .map_or(0, |v| v.value)
            });
        let interfaces: Vec<NetworkInterfaceUsage> = raw
            .networks
            .iter()
            .map(|(name, rx, rx_err, tx, tx_err)| NetworkInterfaceUsage {
                name: name.clone(),
                rx_bytes: u64v(*rx),
                rx_errors: u64v(*rx_err),
                tx_bytes: u64v(*tx),
                tx_errors: u64v(*tx_err),
            })
            .collect();
        let docker_labels = pause.labels.clone().unwrap_or_default();
        let (labels, annotations) = labels::split_labels(&docker_labels);
        let metadata = pause
            .names
            .as_ref()
            .and_then(|n| n.first())
            .and_then(|n| labels::parse_sandbox_name(n).ok());
        let processes = raw.pids.unwrap_or(0);
        Ok(PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id,
                metadata,
                labels,
                annotations,
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: Some(CpuUsage {
                    timestamp: ts,
                    usage_core_nano_seconds: u64v(cpu),
                    usage_nano_cores: u64v(nano),
                    psi: None,
                }),
                memory: Some(MemoryUsage {
                    timestamp: ts,
                    working_set_bytes: u64v(ws),
                    usage_bytes: u64v(usage),
                    ..Default::default()
                }),
                network: Some(NetworkUsage {
                    timestamp: ts,
                    default_interface: interfaces.first().cloned(),
                    interfaces,
                }),
                process: Some(ProcessUsage {
                    timestamp: ts,
                    process_count: u64v(processes),
                }),
                containers,
                ..Default::default()
            }),
            windows: None,
        })
    }

    pub(crate) async fn pod_sandbox_stats_impl(
        &self,
        request: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse> {
        let inspect = self.inspect_sandbox(&request.pod_sandbox_id).await?;
        if !inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
        {
            return Err(Error::failed_precondition(format!(
                "pod sandbox {} is not running",
                request.pod_sandbox_id
            )));
        }
        let summary = ContainerSummary {
            id: inspect.id,
            names: inspect.name.map(|n| vec![n]),
            labels: inspect.config.and_then(|c| c.labels),
            ..Default::default()
        };
        Ok(PodSandboxStatsResponse {
            stats: Some(self.pod_stats(&summary).await?),
        })
    }

    pub(crate) async fn list_pod_sandbox_stats_impl(
        &self,
        request: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse> {
        let f = request.filter.unwrap_or_default();
        let pauses = self
            .list_kind(labels::TYPE_SANDBOX, &f.label_selector, [], &f.id, true)
            .await?;
        let stats = futures::stream::iter(pauses.into_iter().map(|p| {
            let this = self.clone();
            async move { this.pod_stats(&p).await }
        }))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
        Ok(ListPodSandboxStatsResponse { stats })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nano_cores_from_two_samples() {
        let cache = StatsCache::new(Duration::from_secs(1));
        assert_eq!(
            cache.nano_cores(
                "a",
                CpuSample {
                    at_nanos: 1_000_000_000,
                    total: 0
                }
            ),
            None
        );
        // Half a core for one second.
        assert_eq!(
            cache.nano_cores(
                "a",
                CpuSample {
                    at_nanos: 2_000_000_000,
                    total: 500_000_000
                }
            ),
            Some(500_000_000)
        );
        cache.retain(&[]);
        assert_eq!(
            cache.nano_cores(
                "a",
                CpuSample {
                    at_nanos: 3_000_000_000,
                    total: 1
                }
            ),
            None
        );
    }

    #[test]
    fn working_set_excludes_inactive_file() {
        let s = DockerStats {
            memory_stats: Some(bollard::models::ContainerMemoryStats {
                usage: Some(100),
                stats: Some(HashMap::from([
                    ("total_inactive_file".to_owned(), 30),
                    ("total_rss".to_owned(), 50),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(working_set(&s), (70, 100, 50));
    }
}
