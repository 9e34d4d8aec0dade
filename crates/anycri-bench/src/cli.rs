//! The `anycri bench` command: parse endpoints and parameters, connect, run the scenarios
//! (interrupted cleanly by Ctrl-C), sweep everything the run created, and write the reports.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anycri::Error;
use indicatif::{MultiProgress, ProgressDrawTarget};

use crate::{
    config::{BenchConfig, ParamsFile, Scenario},
    report,
    result::{BenchResult, CleanupInfo, HostInfo, TargetInfo},
    runner::{Runner, skipped_everywhere},
    target::{RunEnv, Target, default_name},
};

/// Benchmark CRI runtimes side by side: the same scenarios on every endpoint, interleaved.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Endpoint to measure (repeatable): unix:///path (containerd, CRI-O, cri-dockerd),
    /// docker:///path?pause_image=... (the Docker shim, in-process), fake://, or
    /// docker-floor:///path/to/docker.sock (plain Docker API calls doing the same work).
    /// Prefix NAME= to name it in reports.
    #[arg(short = 'r', long = "runtime-endpoint", required = true)]
    pub runtime_endpoint: Vec<String>,

    /// Directory the reports are written to (created).
    #[arg(long)]
    pub output_dir: PathBuf,

    /// Scenarios to run (repeatable or comma-separated; default: all but `soak`, or the
    /// file's).
    #[arg(long = "scenario", value_enum, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,

    /// Parameter file: anycri's YAML or TOML (`.toml`), or critest's
    /// `--benchmarking-params-file` YAML.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Target the ratios are computed against (its name or URI; default: the first).
    #[arg(long)]
    pub baseline: Option<String>,

    /// Timed iterations of every lifecycle, listing, exec and stats scenario per target.
    #[arg(long)]
    pub iterations: Option<u32>,

    /// Interleaved rounds each scenario's iterations are split into.
    #[arg(long)]
    pub rounds: Option<u32>,

    /// Untimed warm-up iterations per target before each scenario.
    #[arg(long)]
    pub warmup: Option<u32>,

    /// Lifecycles in flight at once in the lifecycle scenarios.
    #[arg(long)]
    pub parallel: Option<u32>,

    /// Container counts of the listing-at-scale scenario (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub scale_sizes: Vec<u32>,

    /// Running containers of the container-stats scenario.
    #[arg(long)]
    pub stats_containers: Option<u32>,

    /// Churn workers.
    #[arg(long)]
    pub churn_workers: Option<u32>,

    /// Churn time per target (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub churn_duration: Option<Duration>,

    /// Soak: pod lifecycles per target (default 1000).
    #[arg(long)]
    pub soak_lifecycles: Option<u32>,

    /// Soak: workers running them (default 8).
    #[arg(long)]
    pub soak_workers: Option<u32>,

    /// Soak: longest wait after the lifecycles for the object counts to come back
    /// (default 150s; Docker removes network namespace files in a GC every 60 s, which can take
    /// two rounds to reach a file).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub soak_settle: Option<Duration>,

    /// Container image (default: ANYCRI_TEST_IMAGE, else busybox).
    #[arg(long)]
    pub image: Option<String>,

    /// Pause image of the docker-floor sandboxes (default: ANYCRI_PAUSE_IMAGE).
    #[arg(long)]
    pub pause_image: Option<String>,

    /// Image the image lifecycle pulls and removes (default: ANYCRI_PULL_IMAGE, else the
    /// container image).
    #[arg(long)]
    pub pull_image: Option<String>,

    /// Deadline of each call (e.g. 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub call_timeout: Option<Duration>,

    /// Directory the pods' log directories go under (default: ANYCRI_LOG_DIR or
    /// /var/tmp/anycri-bench-logs); the run's part is removed at the end.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,

    /// Also measure process PID as a daemon of target NAME (repeatable): for daemons the
    /// harness cannot find from the socket (CRI-O, a socket forwarded from elsewhere, another
    /// pid namespace). NAME is the target's name in the reports (its NAME= prefix, or the
    /// default: containerd, docker-shim, docker-floor, the socket's file name).
    #[arg(long = "daemon-pid", value_name = "NAME=PID", value_parser = parse_daemon_pid)]
    pub daemon_pids: Vec<(String, u32)>,
}

/// Parse `NAME=PID` of `--daemon-pid`.
pub fn parse_daemon_pid(arg: &str) -> Result<(String, u32), String> {
    let (name, pid) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not NAME=PID"))?;
    if name.is_empty() {
        return Err(format!("{arg:?}: the target name is empty"));
    }
    match pid.trim().parse::<u32>() {
        Ok(p) if p > 0 => Ok((name.to_owned(), p)),
        _ => Err(format!("{arg:?}: {pid:?} is not a process ID")),
    }
}

/// Add the `--daemon-pid` processes to their targets' measured daemons. InvalidArgument
/// for a name that is no target's or a pid that is not visible.
pub fn apply_daemon_pids(targets: &mut [Target], pids: &[(String, u32)]) -> anycri::Result<()> {
    for (name, pid) in pids {
        let names = || {
            targets
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(i) = targets.iter().position(|t| &t.name == name) else {
            return Err(Error::invalid_argument(format!(
                "--daemon-pid {name}={pid}: {name:?} names none of the targets ({})",
                names()
            )));
        };
        targets[i]
            .daemons
            .add_pid(*pid)
            .map_err(|e| e.context(format!("target {name}")))?;
    }
    Ok(())
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl BenchArgs {
    /// The parameters: defaults, then the file, then flags.
    pub fn config(&self) -> anycri::Result<BenchConfig> {
        let mut c = match &self.config {
            Some(path) => ParamsFile::load(path)?.into_config(),
            None => BenchConfig::default(),
        };
        if !self.scenarios.is_empty() {
            c.scenarios = self.scenarios.clone();
        }
        if let Some(n) = self.iterations {
            for l in [
                &mut c.container_lifecycle,
                &mut c.pod_lifecycle,
                &mut c.image_lifecycle,
                &mut c.image_list,
                &mut c.pod_container,
                &mut c.exec_sync,
            ] {
                l.iterations = n;
            }
            c.list_scale.iterations = n;
            c.container_stats.iterations = n;
            c.event_latency.iterations = n;
        }
        if let Some(p) = self.parallel {
            for l in [
                &mut c.container_lifecycle,
                &mut c.pod_lifecycle,
                &mut c.image_list,
                &mut c.pod_container,
                &mut c.exec_sync,
            ] {
                l.parallel = p;
            }
        }
        if let Some(r) = self.rounds {
            c.rounds = r;
        }
        if let Some(w) = self.warmup {
            c.warmup = w;
        }
        if !self.scale_sizes.is_empty() {
            c.list_scale.sizes = self.scale_sizes.clone();
        }
        if let Some(n) = self.stats_containers {
            c.container_stats.containers = n;
        }
        if let Some(n) = self.churn_workers {
            c.churn.workers = n;
        }
        if let Some(d) = self.churn_duration {
            c.churn.duration_secs = secs_rounded_up(d).max(1);
        }
        if let Some(n) = self.soak_lifecycles {
            c.soak.lifecycles = n;
        }
        if let Some(n) = self.soak_workers {
            c.soak.workers = n;
        }
        if let Some(d) = self.soak_settle {
            c.soak.settle_secs = secs_rounded_up(d);
        }
        if let Some(t) = self.call_timeout {
            c.timeout_secs = secs_rounded_up(t).max(1);
        }
        for (field, flag, var) in [
            (&mut c.image, &self.image, "ANYCRI_TEST_IMAGE"),
            (&mut c.pause_image, &self.pause_image, "ANYCRI_PAUSE_IMAGE"),
            (&mut c.pull_image, &self.pull_image, "ANYCRI_PULL_IMAGE"),
        ] {
            if flag.is_some() {
                field.clone_from(flag);
            } else if field.is_none() {
                *field = env(var);
            }
        }
        c.validate()?;
        Ok(c)
    }
}

/// Split `NAME=URI` (a name has no `:` or `/`) from a plain URI.
pub fn split_name(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((name, uri))
            if !name.is_empty()
                && !name.contains(':')
                && !name.contains('/')
                && !name.contains('?') =>
        {
            (Some(name), uri)
        }
        _ => (None, arg),
    }
}

/// A run ID: time and pid, unique on a host.
fn run_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        std::process::id()
    )
}

/// Run the command; the result, after the reports are written.
pub async fn run(args: BenchArgs) -> anycri::Result<BenchResult> {
    let config = args.config()?;
    let image = config
        .image
        .clone()
        .unwrap_or_else(|| "busybox:latest".into());
    let pause_image = config.pause_image.clone().unwrap_or_else(|| image.clone());
    let pull_image = config.pull_image.clone().unwrap_or_else(|| image.clone());
    let run_id = run_id();
    let log_root = args
        .log_dir
        .clone()
        .or_else(|| env("ANYCRI_LOG_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/tmp/anycri-bench-logs"))
        .join(format!("bench-{run_id}"));
    let run_env = RunEnv {
        run_id: run_id.clone(),
        image: image.clone(),
        pause_image: pause_image.clone(),
        log_root: log_root.clone(),
        timeout: config.timeout(),
    };
    std::fs::create_dir_all(&args.output_dir).map_err(|e| {
        Error::invalid_argument(format!(
            "creating the output directory {}: {e}",
            args.output_dir.display()
        ))
    })?;

    let mut targets: Vec<Target> = Vec::new();
    for arg in &args.runtime_endpoint {
        let (name, uri) = split_name(arg);
        let mut name = name.map_or_else(|| default_name(uri), str::to_owned);
        let base = name.clone();
        let mut k = 2;
        while targets.iter().any(|t| t.name == name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        let t = Target::connect(name, uri, run_env.clone())
            .await
            .map_err(|e| e.context(format!("endpoint {uri}")))?;
        targets.push(t);
    }
    apply_daemon_pids(&mut targets, &args.daemon_pids)?;
    for t in &targets {
        eprintln!("{}: {} ({})", t.name, t.version, t.uri);
        for n in &t.daemons.notes {
            eprintln!("  {n}");
        }
    }
    let targets: Vec<Arc<Target>> = targets.into_iter().map(Arc::new).collect();
    let baseline = match &args.baseline {
        None => targets.first().map(|t| t.name.clone()),
        Some(b) => Some(
            targets
                .iter()
                .find(|t| &t.name == b || &t.uri == b)
                .map(|t| t.name.clone())
                .ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "--baseline {b:?} names none of the endpoints ({})",
                        targets
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        ),
    };

    let mut result = BenchResult {
        run_id: run_id.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        host: HostInfo::current(),
        config: config.clone(),
        baseline,
        targets: targets
            .iter()
            .map(|t| TargetInfo {
                name: t.name.clone(),
                uri: t.uri.clone(),
                version: t.version.clone(),
                daemons: t.daemons.clone(),
            })
            .collect(),
        ..Default::default()
    };

    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let runner = Runner {
        config: &config,
        targets: &targets,
        pull_image,
        image: image.clone(),
        progress,
    };
    let scenarios = config.selected();
    let work = async {
        let mut images = vec![image.clone()];
        if !targets.iter().all(|t| !t.is_floor()) {
            images.push(pause_image.clone());
        }
        let mut ready = Vec::new();
        for t in &targets {
            let wanted: Vec<String> = if t.is_floor() {
                images.clone()
            } else {
                vec![image.clone()]
            };
            ready.push(t.prepare_images(&wanted).await.err().map(|e| e.to_string()));
        }
        for (i, t) in targets.iter().enumerate() {
            if let Some(e) = &ready[i] {
                eprintln!("{}: {e}", t.name);
            }
        }
        for s in scenarios {
            let mut r = if ready.iter().all(Option::is_some) {
                skipped_everywhere(s, &targets, "the images could not be made present")
            } else {
                runner.run(s).await
            };
            for (i, t) in r.targets.iter_mut().enumerate() {
                if t.skipped.is_none()
                    && let Some(e) = &ready[i]
                {
                    t.skipped = Some(e.clone());
                }
            }
            eprintln!("{} done", s.name());
            result.scenarios.push(r);
        }
    };
    tokio::select! {
        () = work => {}
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: removing what the run created");
            result.interrupted = true;
        }
    }

    // Sweep: everything labelled with the run's ID, on every target, also after an error
    // or Ctrl-C (a second Ctrl-C ends the process).
    for t in &targets {
        let (removed, errors) = t.sweep().await;
        let leftovers = t.leftovers().await.ok();
        result.cleanup.push(CleanupInfo {
            target: t.name.clone(),
            removed,
            leftovers,
            errors,
        });
    }
    let _ = std::fs::remove_dir_all(&log_root);
    result.finished_at = chrono::Utc::now().to_rfc3339();
    let paths = report::write_all(&result, &args.output_dir)?;
    for p in paths
        .iter()
        .filter(|p| !p.starts_with(args.output_dir.join("critest")))
    {
        eprintln!("wrote {}", p.display());
    }
    Ok(result)
}

/// Whole seconds for a config field, rounded up: `1.5s` is 2, never 1 (nor 0 for `500ms`).
fn secs_rounded_up(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_round_up_to_whole_seconds() {
        use std::time::Duration;
        assert_eq!(super::secs_rounded_up(Duration::from_millis(500)), 1);
        assert_eq!(super::secs_rounded_up(Duration::from_millis(1500)), 2);
        assert_eq!(super::secs_rounded_up(Duration::from_secs(3)), 3);
        assert_eq!(super::secs_rounded_up(Duration::ZERO), 0);
    }

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        args: BenchArgs,
    }

    #[test]
    fn names_split_only_when_they_are_names() {
        assert_eq!(
            split_name("cd=unix:///x.sock"),
            (Some("cd"), "unix:///x.sock")
        );
        assert_eq!(
            split_name("docker:///x.sock?pause_image=p"),
            (None, "docker:///x.sock?pause_image=p")
        );
        assert_eq!(
            split_name("shim=docker:///x.sock?pause_image=p"),
            (Some("shim"), "docker:///x.sock?pause_image=p")
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        std::fs::write(&file, "podsNumber: 7\ncontainersNumber: 3\n").unwrap();
        let cmd = Cmd::try_parse_from([
            "x",
            "-r",
            "fake://",
            "-r",
            "unix:///a.sock",
            "--output-dir",
            "/tmp/o",
            "--config",
            file.to_str().unwrap(),
            "--rounds",
            "2",
            "--scenario",
            "pod-lifecycle,churn",
            "--churn-duration",
            "3s",
            "--image",
            "img",
            "--soak-lifecycles",
            "40",
            "--soak-workers",
            "4",
            "--soak-settle",
            "1m",
        ])
        .unwrap();
        assert_eq!(cmd.args.runtime_endpoint.len(), 2);
        let c = cmd.args.config().unwrap();
        assert_eq!(c.rounds, 2);
        assert_eq!(c.pod_lifecycle.iterations, 7);
        assert_eq!(c.selected(), vec![Scenario::PodLifecycle, Scenario::Churn]);
        assert_eq!(c.churn.duration_secs, 3);
        assert_eq!(c.image.as_deref(), Some("img"));
        assert_eq!(
            (c.soak.lifecycles, c.soak.workers, c.soak.settle_secs),
            (40, 4, 60)
        );
        let soak = Cmd::try_parse_from([
            "x",
            "-r",
            "fake://",
            "--output-dir",
            "/o",
            "--scenario",
            "soak",
        ])
        .unwrap()
        .args
        .config()
        .unwrap();
        assert_eq!(soak.selected(), vec![Scenario::Soak]);
        let zero = Cmd::try_parse_from([
            "x",
            "-r",
            "fake://",
            "--output-dir",
            "/o",
            "--soak-workers",
            "0",
        ])
        .unwrap()
        .args
        .config()
        .unwrap_err();
        assert!(zero.to_string().contains("soak.workers"), "{zero}");
    }

    #[test]
    fn daemon_pids_parse() {
        assert_eq!(parse_daemon_pid("crio=42"), Ok(("crio".into(), 42)));
        for bad in ["crio", "=42", "crio=", "crio=0", "crio=-1", "crio=x"] {
            assert!(parse_daemon_pid(bad).is_err(), "{bad} accepted");
        }
        let cmd = Cmd::try_parse_from([
            "x",
            "-r",
            "fake://",
            "--output-dir",
            "/tmp/o",
            "--daemon-pid",
            "fake=7",
            "--daemon-pid",
            "fake=8",
        ])
        .unwrap();
        assert_eq!(
            cmd.args.daemon_pids,
            vec![("fake".to_string(), 7), ("fake".to_string(), 8)]
        );
        assert!(
            Cmd::try_parse_from([
                "x",
                "-r",
                "fake://",
                "--output-dir",
                "/o",
                "--daemon-pid",
                "7"
            ])
            .is_err()
        );
    }

    fn run_env() -> RunEnv {
        RunEnv {
            run_id: "test".into(),
            image: "busybox".into(),
            pause_image: "pause".into(),
            log_root: std::env::temp_dir(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn daemon_pids_join_their_target_and_are_measured() {
        let mut targets = vec![
            Target::connect("a".into(), "fake://", run_env())
                .await
                .unwrap(),
            Target::connect("b".into(), "fake://", run_env())
                .await
                .unwrap(),
        ];
        // A child process of ours stands in for a daemon discovery cannot find.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let applied = apply_daemon_pids(&mut targets, &[("b".into(), pid), ("b".into(), pid)]);
        let unknown = apply_daemon_pids(&mut targets, &[("nope".into(), pid)]);
        let gone = apply_daemon_pids(&mut targets, &[("a".into(), u32::MAX)]);
        let meter = crate::procstat::CostMeter::start(&targets[1].daemons);
        let cost = meter.finish(&targets[1].daemons);
        let _ = child.kill();
        let _ = child.wait();

        applied.unwrap();
        let b = &targets[1].daemons;
        assert_eq!(b.fixed.get("sleep"), Some(&pid), "{:?}", b.fixed);
        assert_eq!(b.fixed.values().filter(|&&p| p == pid).count(), 1);
        assert!(b.notes.iter().any(|n| n.contains("--daemon-pid")));
        assert!(!targets[0].daemons.fixed.values().any(|&p| p == pid));
        assert!(
            cost.peak_rss_bytes_by_role
                .get("sleep")
                .is_some_and(|&r| r > 0)
        );

        let unknown = unknown.unwrap_err();
        assert_eq!(unknown.kind(), anycri::ErrorKind::InvalidArgument);
        assert!(unknown.message().contains("a, b"), "{unknown}");
        assert_eq!(gone.unwrap_err().kind(), anycri::ErrorKind::InvalidArgument);
    }

    #[test]
    fn bad_values_are_rejected() {
        let cmd = Cmd::try_parse_from([
            "x",
            "-r",
            "fake://",
            "--output-dir",
            "/tmp/o",
            "--rounds",
            "0",
        ])
        .unwrap();
        assert_eq!(
            cmd.args.config().unwrap_err().kind(),
            anycri::ErrorKind::InvalidArgument
        );
        assert!(Cmd::try_parse_from(["x", "--output-dir", "/tmp/o"]).is_err());
        assert!(
            Cmd::try_parse_from([
                "x",
                "-r",
                "fake://",
                "--output-dir",
                "/o",
                "--scenario",
                "nope"
            ])
            .is_err()
        );
    }
}
