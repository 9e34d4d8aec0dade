//! The cost side of a measurement: CPU seconds (utime + stime) and resident memory of a
//! runtime's daemons, read from `/proc`. A [`DaemonSpec`] names the processes (pids given on
//! the command line, or found from the endpoint's socket: the process listening on it, the
//! containerd that dockerd manages, and every `containerd-shim*` serving one of those
//! containerds); a [`CostMeter`] samples them on a thread of its own while a scenario runs,
//! so shims that come and go during the scenario are counted too.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// How often a [`CostMeter`] samples.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// Fields of `/proc/<pid>/stat` the meter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Parent pid.
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, in clock ticks (tells a reused pid apart).
    pub start_ticks: u64,
}

/// Parse the text of `/proc/<pid>/stat` (the command name may hold spaces and parentheses).
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) ... starttime(19).
    Some(ProcStat {
        ppid: f.get(1)?.parse().ok()?,
        cpu_ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat` of a live process.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&text, field).map(|kb| kb * 1024)
}

/// A `kB` field of a `/proc/<pid>/status` text, in kB.
pub fn parse_status_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// A plain number field of a `/proc/<pid>/status` text (`Threads`, `FDSize`).
pub fn parse_status_number(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().parse().ok()
    })
}

/// The command name (`/proc/<pid>/comm`).
pub fn comm(pid: u32) -> Option<String> {
    Some(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()?
            .trim_end()
            .to_owned(),
    )
}

/// The command line (`/proc/<pid>/cmdline`), split at NULs.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every pid in `/proc`.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// Inodes of the unix sockets bound to `path` (from `/proc/net/unix`).
fn socket_inodes(path: &Path) -> HashSet<u64> {
    let want = path.to_string_lossy();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[7] == want).then(|| f[6].parse().ok())?
        })
        .collect()
}

/// Socket inodes a process holds open.
fn open_socket_inodes(pid: u32) -> HashSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let target = std::fs::read_link(e.ok()?.path()).ok()?;
                let t = target.to_str()?;
                t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Paths of the unix sockets a process listens on (bound paths of sockets it holds).
fn bound_socket_paths(pid: u32) -> Vec<PathBuf> {
    let mine = open_socket_inodes(pid);
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = f.get(6)?.parse().ok()?;
            (f.len() >= 8 && mine.contains(&inode)).then(|| PathBuf::from(f[7]))
        })
        .collect()
}

/// The process listening on the unix socket at `path`, if this host can see it.
pub fn socket_owner(path: &Path) -> Option<u32> {
    let inodes = socket_inodes(path);
    if inodes.is_empty() {
        return None;
    }
    let mut owners: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&pid| !open_socket_inodes(pid).is_disjoint(&inodes))
        .collect();
    // The listener is the oldest holder (clients such as this process hold accepted ends of
    // other inodes, but a forked helper could share the listening one).
    owners.sort_by_key(|&p| stat(p).map(|s| s.start_ticks).unwrap_or(u64::MAX));
    owners.into_iter().next()
}

/// Which processes make up a runtime, for cost measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonSpec {
    /// Long-lived processes by role name (`containerd`, `dockerd`, `anycri (in-process shim)`, ...).
    pub fixed: BTreeMap<String, u32>,
    /// containerd addresses whose `containerd-shim*` processes count too.
    pub shim_addresses: Vec<PathBuf>,
    /// How the processes were found, for the report.
    pub notes: Vec<String>,
}

impl DaemonSpec {
    /// Find the daemons behind the unix socket `socket`: its listener, containerd children
    /// of a dockerd, and the shims of every containerd among them. `in_process` adds this
    /// process (the in-process Docker shim).
    pub fn discover(socket: &Path, in_process: bool) -> DaemonSpec {
        let mut spec = DaemonSpec::default();
        if in_process {
            spec.fixed.insert(
                "anycri (in-process shim + harness)".into(),
                std::process::id(),
            );
        }
        let Some(owner) = socket_owner(socket) else {
            spec.notes.push(format!(
                "no process found listening on {} (another pid namespace?); daemon cost not measured",
                socket.display()
            ));
            return spec;
        };
        let name = comm(owner).unwrap_or_else(|| "daemon".into());
        spec.fixed.insert(name.clone(), owner);
        spec.notes.push(format!(
            "{name} (pid {owner}) listens on {}",
            socket.display()
        ));
        let mut containerds = Vec::new();
        if name == "containerd" {
            containerds.push(owner);
        } else {
            for pid in all_pids() {
                if stat(pid).is_some_and(|s| s.ppid == owner)
                    && comm(pid).is_some_and(|c| c == "containerd")
                {
                    spec.fixed.insert(format!("{name}'s containerd"), pid);
                    spec.notes
                        .push(format!("containerd (pid {pid}) is a child of {name}"));
                    containerds.push(pid);
                }
            }
        }
        if spec.add_shims_of(&containerds) {
            spec.notes.push(spec.shims_note());
        }
        spec
    }

    /// Count the `containerd-shim*` processes of these containerds too; whether any new
    /// address was added.
    fn add_shims_of(&mut self, containerds: &[u32]) -> bool {
        let before = self.shim_addresses.len();
        for &pid in containerds {
            for path in bound_socket_paths(pid) {
                if !path.to_string_lossy().ends_with(".ttrpc")
                    && !self.shim_addresses.contains(&path)
                {
                    self.shim_addresses.push(path);
                }
            }
        }
        self.shim_addresses.len() > before
    }

    fn shims_note(&self) -> String {
        format!(
            "plus containerd-shim* processes with -address {}",
            self.shim_addresses
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    }

    /// Measure the process `pid` too (given by hand, for daemons discovery cannot find:
    /// CRI-O, a runtime behind a forwarded socket, another pid namespace seen from the
    /// host). Its role is its command name; a containerd brings its shims along. A pid
    /// already measured is not counted twice. InvalidArgument when no such process is
    /// visible here.
    pub fn add_pid(&mut self, pid: u32) -> anycri::Result<()> {
        if pid == 0 || stat(pid).is_none() {
            return Err(anycri::Error::invalid_argument(format!(
                "--daemon-pid: no process {pid} is visible in /proc"
            )));
        }
        if self.fixed.values().any(|&p| p == pid) {
            return Ok(());
        }
        let name = comm(pid).unwrap_or_else(|| "daemon".into());
        let mut role = name.clone();
        let mut k = 2;
        while self.fixed.contains_key(&role) {
            role = format!("{name} ({k})");
            k += 1;
        }
        self.fixed.insert(role, pid);
        self.notes
            .push(format!("{name} (pid {pid}) given with --daemon-pid"));
        if name == "containerd" && self.add_shims_of(&[pid]) {
            self.notes.push(self.shims_note());
        }
        Ok(())
    }

    /// The shims alive now: `containerd-shim*` processes whose `-address` is one of ours.
    pub(crate) fn shims(&self) -> Vec<u32> {
        if self.shim_addresses.is_empty() {
            return Vec::new();
        }
        all_pids()
            .into_iter()
            .filter(|&pid| comm(pid).is_some_and(|c| c.starts_with("containerd-shim")))
            .filter(|&pid| {
                let args = cmdline(pid);
                args.windows(2).any(|w| {
                    (w[0] == "-address" || w[0] == "--address")
                        && self.shim_addresses.iter().any(|a| Path::new(&w[1]) == a)
                })
            })
            .collect()
    }

    /// Every process of the runtime now, with a role name.
    fn processes(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = self.fixed.iter().map(|(n, p)| (n.clone(), *p)).collect();
        v.extend(
            self.shims()
                .into_iter()
                .map(|p| ("containerd-shim*".into(), p)),
        );
        v
    }
}

/// What a runtime's processes cost during a measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// CPU seconds (user + system) of all the runtime's processes.
    pub cpu_seconds: f64,
    /// CPU seconds by role name.
    pub cpu_seconds_by_role: BTreeMap<String, f64>,
    /// Highest sum of the processes' resident set sizes seen in one sample, bytes.
    pub peak_rss_bytes: u64,
    /// Highest resident set size by role (summed over the role's processes), bytes.
    pub peak_rss_bytes_by_role: BTreeMap<String, u64>,
    /// Largest number of shim processes seen at once.
    pub peak_shims: u32,
    /// CPU seconds of this process (the harness) in the same time.
    pub harness_cpu_seconds: f64,
    /// Wall-clock seconds measured.
    pub wall_seconds: f64,
}

impl Cost {
    /// Add another slice of the same scenario and target (CPU and time add, peaks max).
    pub fn merge(&mut self, other: &Cost) {
        self.cpu_seconds += other.cpu_seconds;
        for (k, v) in &other.cpu_seconds_by_role {
            *self.cpu_seconds_by_role.entry(k.clone()).or_default() += v;
        }
        self.peak_rss_bytes = self.peak_rss_bytes.max(other.peak_rss_bytes);
        for (k, v) in &other.peak_rss_bytes_by_role {
            let e = self.peak_rss_bytes_by_role.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
        self.peak_shims = self.peak_shims.max(other.peak_shims);
        self.harness_cpu_seconds += other.harness_cpu_seconds;
        self.wall_seconds += other.wall_seconds;
    }
}

#[derive(Default)]
struct MeterState {
    /// (pid, start) -> (role, ticks at first sight or 0 if started after the meter, last ticks).
    seen: HashMap<(u32, u64), (String, u64, u64)>,
    peak_rss: u64,
    peak_by_role: BTreeMap<String, u64>,
    peak_shims: u32,
}

/// Samples a [`DaemonSpec`]'s processes on a thread until [`CostMeter::finish`].
pub struct CostMeter {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<MeterState>>,
    thread: Option<JoinHandle<()>>,
    started: std::time::Instant,
    self_start: u64,
}

fn uptime_ticks() -> u64 {
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    (up * ticks_per_second() as f64) as u64
}

fn sample(spec: &DaemonSpec, state: &Mutex<MeterState>, meter_start: u64, first: bool) {
    let procs = spec.processes();
    let mut rss_sum = 0;
    let mut by_role: BTreeMap<String, u64> = BTreeMap::new();
    let mut shims = 0;
    let mut readings = Vec::new();
    for (role, pid) in procs {
        let Some(st) = stat(pid) else { continue };
        let rss = status_bytes(pid, "VmRSS").unwrap_or(0);
        rss_sum += rss;
        *by_role.entry(role.clone()).or_default() += rss;
        if role == "containerd-shim*" {
            shims += 1;
        }
        readings.push((role, pid, st));
    }
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    for (role, pid, st) in readings {
        let e = s.seen.entry((pid, st.start_ticks)).or_insert_with(|| {
            // A process that started after the meter did is counted from zero.
            let base = if first || st.start_ticks < meter_start {
                st.cpu_ticks
            } else {
                0
            };
            (role, base, st.cpu_ticks)
        });
        e.2 = st.cpu_ticks;
    }
    s.peak_rss = s.peak_rss.max(rss_sum);
    for (k, v) in by_role {
        let e = s.peak_by_role.entry(k).or_default();
        *e = (*e).max(v);
    }
    s.peak_shims = s.peak_shims.max(shims);
}

impl CostMeter {
    /// Start sampling `spec` now.
    pub fn start(spec: &DaemonSpec) -> CostMeter {
        let state = Arc::new(Mutex::new(MeterState::default()));
        let meter_start = uptime_ticks();
        sample(spec, &state, meter_start, true);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (spec, state, stop) = (spec.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("anycri-bench-meter".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(SAMPLE_EVERY);
                        sample(&spec, &state, meter_start, false);
                    }
                })
                .ok()
        };
        CostMeter {
            stop,
            state,
            thread,
            started: std::time::Instant::now(),
            self_start: stat(std::process::id()).map_or(0, |s| s.cpu_ticks),
        }
    }

    /// Stop sampling (one last sample) and return the cost.
    pub fn finish(mut self, spec: &DaemonSpec) -> Cost {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        sample(spec, &self.state, 0, false);
        let hz = ticks_per_second() as f64;
        let self_end = stat(std::process::id()).map_or(0, |s| s.cpu_ticks);
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_role: BTreeMap<String, f64> = BTreeMap::new();
        for (role, base, last) in s.seen.values() {
            *by_role.entry(role.clone()).or_default() += last.saturating_sub(*base) as f64 / hz;
        }
        Cost {
            cpu_seconds: by_role.values().sum(),
            cpu_seconds_by_role: by_role,
            peak_rss_bytes: s.peak_rss,
            peak_rss_bytes_by_role: s.peak_by_role.clone(),
            peak_shims: s.peak_shims,
            harness_cpu_seconds: self_end.saturating_sub(self.self_start) as f64 / hz,
            wall_seconds: self.started.elapsed().as_secs_f64(),
        }
    }
}

impl Drop for CostMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let text = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 9 0 5555 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(text).unwrap();
        assert_eq!(s.ppid, 1);
        assert_eq!(s.cpu_ticks, 325);
        assert_eq!(s.start_ticks, 5555);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(1024));
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(2048));
        assert_eq!(parse_status_kb(text, "VmSwap"), None);
        let text = "Name:\tx\nThreads:\t17\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_status_number(text, "Threads"), Some(17));
        assert_eq!(
            parse_status_number(text, "VmRSS"),
            None,
            "not a plain number"
        );
        assert_eq!(parse_status_number(text, "FDSize"), None);
    }

    #[test]
    fn this_process_is_measured() {
        let mut spec = DaemonSpec::default();
        spec.fixed.insert("self".into(), std::process::id());
        let meter = CostMeter::start(&spec);
        // Burn a little CPU so there is something to see.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let cost = meter.finish(&spec);
        assert!(cost.peak_rss_bytes > 0);
        assert!(cost.cpu_seconds >= 0.0);
        assert!(cost.harness_cpu_seconds >= 0.0);
        assert!(cost.peak_rss_bytes_by_role.contains_key("self"));
    }

    #[test]
    fn merge_adds_cpu_and_keeps_peaks() {
        let mut a = Cost {
            cpu_seconds: 1.0,
            peak_rss_bytes: 10,
            ..Default::default()
        };
        let b = Cost {
            cpu_seconds: 2.0,
            peak_rss_bytes: 5,
            harness_cpu_seconds: 0.5,
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!(a.cpu_seconds, 3.0);
        assert_eq!(a.peak_rss_bytes, 10);
        assert_eq!(a.harness_cpu_seconds, 0.5);
    }
}
