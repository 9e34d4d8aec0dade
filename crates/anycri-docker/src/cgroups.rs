//! Container usage read straight from the kernel: the container's cgroup files (cgroup v1 or
//! v2, found from its init process's `/proc/<pid>/cgroup`) and `/proc/<pid>/net/dev`. Docker's
//! stats API answers only at its collector's next once-a-second tick; these reads take
//! microseconds. They work when the shim runs on the node, as it does; where they cannot be
//! read, the stats code falls back to Docker's API.

use std::path::{Path, PathBuf};

/// What the stats code needs from one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// CPU time used, nanoseconds.
    pub cpu_total: u64,
    /// Memory in use, bytes (with page cache).
    pub usage: u64,
    /// Memory in use without inactive page cache.
    pub working_set: u64,
    /// Anonymous memory.
    pub rss: u64,
    /// The memory limit, when there is one.
    pub limit: Option<u64>,
    /// Processes in the cgroup.
    pub pids: Option<u64>,
    /// Per interface: name, rx bytes, rx errors, tx bytes, tx errors.
    pub networks: Vec<(String, u64, u64, u64, u64)>,
}

/// Where one container's cgroups are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPaths {
    /// cgroup v1: the cpuacct, memory and pids directories.
    V1 {
        cpuacct: PathBuf,
        memory: PathBuf,
        pids: Option<PathBuf>,
    },
    /// cgroup v2: the unified directory.
    V2(PathBuf),
}

/// The cgroups of process `pid`, from `/proc/<pid>/cgroup` under `root` (`/sys/fs/cgroup`).
pub(crate) fn paths_of(pid: i64, root: &Path) -> Option<CgroupPaths> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    paths_from(&text, root)
}

fn paths_from(proc_cgroup: &str, root: &Path) -> Option<CgroupPaths> {
    let mut cpuacct = None;
    let mut memory = None;
    let mut pids = None;
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            unified = Some(rel.to_owned());
        }
        for c in controllers.split(',') {
            match c {
                "cpuacct" => cpuacct = Some(root.join(controllers).join(rel)),
                "memory" => memory = Some(root.join(controllers).join(rel)),
                "pids" => pids = Some(root.join(controllers).join(rel)),
                _ => {}
            }
        }
    }
    match (cpuacct, memory) {
        (Some(cpuacct), Some(memory)) => Some(CgroupPaths::V1 {
            cpuacct,
            memory,
            pids,
        }),
        _ if root.join("cgroup.controllers").exists() => {
            unified.map(|u| CgroupPaths::V2(root.join(u)))
        }
        _ => None,
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Read a container's usage. None when a file is missing (the container exited).
pub(crate) fn read(paths: &CgroupPaths, pid: i64) -> Option<Usage> {
    let mut usage = match paths {
        CgroupPaths::V1 {
            cpuacct,
            memory,
            pids,
        } => {
            let stat = std::fs::read_to_string(memory.join("memory.stat")).ok()?;
            let used = read_u64(&memory.join("memory.usage_in_bytes"))?;
            let inactive = stat_value(&stat, "total_inactive_file").unwrap_or(0);
            // v1 reports "no limit" as a huge page-aligned number.
            let limit = read_u64(&memory.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 60));
            Usage {
                cpu_total: read_u64(&cpuacct.join("cpuacct.usage"))?,
                usage: used,
                working_set: used.saturating_sub(inactive),
                rss: stat_value(&stat, "total_rss").unwrap_or(0),
                limit,
                pids: pids
                    .as_ref()
                    .and_then(|p| read_u64(&p.join("pids.current"))),
                networks: Vec::new(),
            }
        }
        CgroupPaths::V2(dir) => {
            let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
            let stat = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
            let used = read_u64(&dir.join("memory.current"))?;
            Usage {
                cpu_total: stat_value(&cpu, "usage_usec")?.saturating_mul(1000),
                usage: used,
                working_set: used.saturating_sub(stat_value(&stat, "inactive_file").unwrap_or(0)),
                rss: stat_value(&stat, "anon").unwrap_or(0),
                limit: read_u64(&dir.join("memory.max")),
                pids: read_u64(&dir.join("pids.current")),
                networks: Vec::new(),
            }
        }
    };
    usage.networks = net_dev(pid);
    Some(usage)
}

/// Interface counters of `pid`'s network namespace, loopback excluded.
fn net_dev(pid: i64) -> Vec<(String, u64, u64, u64, u64)> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return Vec::new();
    };
    parse_net_dev(&text)
}

fn parse_net_dev(text: &str) -> Vec<(String, u64, u64, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            // rx: bytes packets errs ...; tx starts at the ninth field.
            (f.len() >= 11).then(|| (name.to_owned(), f[0], f[2], f[8], f[10]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_paths() {
        let text = "12:pids:/docker/abc\n5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        let p = paths_from(text, Path::new("/sys/fs/cgroup")).unwrap();
        assert_eq!(
            p,
            CgroupPaths::V1 {
                cpuacct: "/sys/fs/cgroup/cpu,cpuacct/docker/abc".into(),
                memory: "/sys/fs/cgroup/memory/docker/abc".into(),
                pids: Some("/sys/fs/cgroup/pids/docker/abc".into()),
            }
        );
    }

    #[test]
    fn net_dev_counters() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 1500 10 2 0 0 0 0 0 900 8 1 0 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(text),
            vec![("eth0".to_owned(), 1500, 2, 900, 1)]
        );
    }

    #[test]
    fn reads_this_process() {
        // Our own cgroups are readable on any Linux host that has the controllers.
        if let Some(paths) = paths_of(std::process::id() as i64, Path::new("/sys/fs/cgroup")) {
            let u = read(&paths, std::process::id() as i64).unwrap();
            assert!(u.cpu_total > 0);
            assert!(u.usage > 0);
        }
    }
}
