//! Runs the selected checks: discovers the runtime's capabilities and probes the host,
//! skips what cannot run (with the reasons), runs the exclusive checks one at a time and the
//! rest `parallel` at once, gives each a timeout, turns panics into failures, removes what
//! each check created, and sweeps the run's label at the end (also on Ctrl-C).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anycri::{ImageService, ImageServiceExt, RuntimeService, RuntimeServiceExt};
use regex::Regex;
use tokio::{sync::Semaphore, task::JoinSet};

use crate::{
    RUN_LABEL,
    context::{Failure, TestContext, sweep},
    features::{Features, HostFeatures},
    images::TestImages,
    registry::{Check, all_checks},
    report::{CheckReport, Outcome, Report},
};

/// How progress is shown while the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// Nothing.
    #[default]
    Quiet,
    /// One line per finished check on stderr (for logs and CI: stderr is not a terminal).
    Lines,
    /// A progress bar on stderr with the names of the checks running; failures are printed
    /// above it as they happen.
    Bar,
}

/// The progress display of a run: a bar, lines, or nothing.
struct Display {
    progress: Progress,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
    bar: Option<indicatif::ProgressBar>,
    running: Mutex<Vec<&'static str>>,
}

impl Display {
    fn new(progress: Progress, total: usize) -> Self {
        let bar = (progress == Progress::Bar).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed:>4} [{bar:30}] {pos}/{len} {wide_msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            progress,
            total,
            done: Default::default(),
            bar,
            running: Mutex::new(Vec::new()),
        }
    }

    fn set_message(&self, running: &[&'static str]) {
        if let Some(bar) = &self.bar {
            bar.set_message(running.join(", "));
        }
    }

    fn started(&self, name: &'static str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.push(name);
        self.set_message(&running);
    }

    fn finished(&self, r: &CheckReport) {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let total = self.total;
        let line = || {
            let detail = match &r.outcome {
                Outcome::Passed => String::new(),
                Outcome::Failed { message } => format!(": {message}"),
                Outcome::Skipped { reason } => format!(": {reason}"),
            };
            format!(
                "[{n:>3}/{total}] {:<7} {} ({:.2} s){detail}",
                r.outcome.label(),
                r.name,
                r.duration.as_secs_f64()
            )
        };
        match self.progress {
            Progress::Quiet => {}
            Progress::Lines => eprintln!("{}", line()),
            Progress::Bar => {
                let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(i) = running.iter().position(|c| *c == r.name) {
                    running.remove(i);
                }
                self.set_message(&running);
                if let Some(bar) = &self.bar {
                    if matches!(r.outcome, Outcome::Failed { .. }) {
                        bar.println(line());
                    }
                    bar.inc(1);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run only checks whose name matches.
    pub focus: Option<Regex>,
    /// Do not run checks whose name matches.
    pub skip: Option<Regex>,
    /// How many checks run at once (at least 1).
    pub parallel: usize,
    /// The images; None takes them from the live environment, else `busybox:latest` alone.
    pub images: Option<TestImages>,
    /// Where pod logs and host directories of checks go (default: the temp directory).
    pub work_dir: Option<PathBuf>,
    /// The run's ID (default: a fresh one).
    pub run_id: Option<String>,
    /// Progress display.
    pub progress: Progress,
    /// Stop on Ctrl-C, remove everything and report what ran (for the CLI).
    pub handle_ctrl_c: bool,
    /// Multiply every check's timeout by this (slow machines).
    pub timeout_scale: f64,
    /// Run the streaming session checks (exec, attach and port-forward through the
    /// runtime's streaming URL with anycri's streaming client); off, they are skipped.
    pub streaming_client: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            focus: None,
            skip: None,
            parallel: 4,
            images: None,
            work_dir: None,
            run_id: None,
            progress: Progress::Quiet,
            handle_ctrl_c: false,
            timeout_scale: 1.0,
            streaming_client: true,
        }
    }
}

/// The checks `focus` and `skip` select, in registry order.
///
/// ```
/// use anycri_conformance::{all_checks, select};
/// use regex::Regex;
/// let focus = Regex::new("^container::").unwrap();
/// let skip = Regex::new("exec").unwrap();
/// let chosen = select(all_checks(), Some(&focus), Some(&skip));
/// assert!(chosen.iter().all(|c| c.name.starts_with("container::") && !c.name.contains("exec")));
/// ```
pub fn select(checks: Vec<Check>, focus: Option<&Regex>, skip: Option<&Regex>) -> Vec<Check> {
    checks
        .into_iter()
        .filter(|c| focus.is_none_or(|f| f.is_match(c.name)))
        .filter(|c| skip.is_none_or(|s| !s.is_match(c.name)))
        .collect()
}

fn new_run_id() -> String {
    let uid = anycri::builders::new_uid();
    format!("{}-{}", std::process::id(), &uid[..8])
}

/// Run the suite against `runtime` and `images`.
pub async fn run(
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    options: Options,
) -> Report {
    let started = Instant::now();
    let run_id = options.run_id.clone().unwrap_or_else(new_run_id);
    let work_dir = options
        .work_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("anycri-conformance-{run_id}"));
    let mut report = Report {
        run_id: run_id.clone(),
        started_at: chrono::Utc::now().to_rfc3339(),
        parallel: options.parallel.max(1),
        ..Default::default()
    };
    let checks = select(all_checks(), options.focus.as_ref(), options.skip.as_ref());

    let work = async {
        let features = prepare(&runtime, &images, &options, &run_id, &work_dir).await;
        let features = match features {
            Ok(f) => f,
            Err(message) => {
                return (
                    String::from("unknown runtime"),
                    checks
                        .iter()
                        .map(|c| {
                            report_for(
                                c,
                                Outcome::Failed {
                                    message: message.clone(),
                                },
                                Duration::ZERO,
                            )
                        })
                        .collect(),
                    Vec::new(),
                    false,
                );
            }
        };
        let runtime_name = features
            .runtime
            .as_ref()
            .map(|r| format!("{} {}", r.runtime_name, r.runtime_version))
            .unwrap_or_default();
        let results: Arc<Mutex<Vec<Option<CheckReport>>>> =
            Arc::new(Mutex::new(vec![None; checks.len()]));
        let problems = Arc::new(Mutex::new(Vec::new()));
        let all = execute(
            &checks,
            Arc::new(features),
            &runtime,
            &images,
            &options,
            &run_id,
            &work_dir,
            results.clone(),
            problems.clone(),
        );
        let interrupted = if options.handle_ctrl_c {
            tokio::select! {
                _ = all => false,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: removing everything this run created");
                    true
                }
            }
        } else {
            all.await;
            false
        };
        let results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
        let reports = checks
            .iter()
            .zip(results)
            .map(|(c, r)| {
                r.unwrap_or_else(|| {
                    report_for(
                        c,
                        Outcome::Skipped {
                            reason: "not run: the run was interrupted".into(),
                        },
                        Duration::ZERO,
                    )
                })
            })
            .collect();
        let problems = std::mem::take(&mut *problems.lock().unwrap_or_else(|p| p.into_inner()));
        (runtime_name, reports, problems, interrupted)
    };
    let (runtime_name, reports, mut problems, interrupted) = work.await;
    // Whatever happened, nothing of this run stays: sweep by the run label.
    problems.extend(sweep(runtime.as_ref(), (RUN_LABEL, &run_id), (RUN_LABEL, &run_id)).await);
    if let Err(e) = std::fs::remove_dir_all(&work_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        problems.push(format!("removing {}: {e}", work_dir.display()));
    }
    report.runtime = runtime_name;
    report.checks = reports;
    report.cleanup_problems = problems;
    report.interrupted = interrupted;
    report.duration = started.elapsed();
    report
}

fn report_for(c: &Check, outcome: Outcome, duration: Duration) -> CheckReport {
    CheckReport {
        name: c.name.to_owned(),
        doc: c.doc.to_owned(),
        critest: c.critest.map(str::to_owned),
        outcome,
        duration,
    }
}

/// Discover the runtime, probe the host, make sure the busybox image is there and find out
/// whether the runtime runs programs. An error here fails every check with its message.
async fn prepare(
    runtime: &Arc<dyn RuntimeService>,
    images: &Arc<dyn ImageService>,
    options: &Options,
    run_id: &str,
    work_dir: &std::path::Path,
) -> Result<Features, String> {
    let info = anycri::discover(runtime.as_ref())
        .await
        .map_err(|e| format!("the runtime does not answer Version: {e}"))?;
    let test_images = match options
        .images
        .clone()
        .or_else(crate::images::from_environment)
    {
        Some(i) => i,
        None => crate::images::busybox_only("busybox:latest")
            .map_err(|e| format!("the default test image: {e}"))?,
    };
    std::fs::create_dir_all(work_dir)
        .map_err(|e| format!("creating the work directory {}: {e}", work_dir.display()))?;
    let busybox = test_images.busybox.reference();
    images
        .pull_image_if_absent(&busybox, None)
        .await
        .map_err(|e| format!("pulling the test image {busybox}: {e}"))?;
    let mut features = Features {
        capabilities: info.capabilities,
        runtime: Some(info),
        host: HostFeatures::probe(),
        processes: true,
        streaming_client: options.streaming_client,
        images: test_images,
    };
    features.processes = probe_processes(runtime, images, &features, run_id, work_dir).await;
    Ok(features)
}

/// Whether the runtime runs the image's programs: `cat /proc/self/status` in a container
/// works on a real runtime and is "not found" in a fake. Errors count as yes, so that the
/// checks run and report the real problem instead of being skipped.
async fn probe_processes(
    runtime: &Arc<dyn RuntimeService>,
    images: &Arc<dyn ImageService>,
    features: &Features,
    run_id: &str,
    work_dir: &std::path::Path,
) -> bool {
    let features = Arc::new(features.clone());
    let ctx = TestContext::new(
        runtime.clone(),
        images.clone(),
        features,
        run_id,
        "setup::probe_processes",
        work_dir,
    );
    let result = async {
        let r = ctx.run_sleeper().await?;
        let out = ctx
            .rt()
            .exec_collect(
                &r.container,
                &["cat", "/proc/self/status"],
                Duration::from_secs(10),
            )
            .await?;
        Ok::<_, Failure>(out.success() || !matches!(out.exit_code, 126 | 127))
    }
    .await;
    let _ = ctx.cleanup().await;
    result.unwrap_or(true)
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    checks: &[Check],
    features: Arc<Features>,
    runtime: &Arc<dyn RuntimeService>,
    images: &Arc<dyn ImageService>,
    options: &Options,
    run_id: &str,
    work_dir: &std::path::Path,
    results: Arc<Mutex<Vec<Option<CheckReport>>>>,
    problems: Arc<Mutex<Vec<String>>>,
) {
    let display = Arc::new(Display::new(options.progress, checks.len()));
    let record = {
        let results = results.clone();
        let display = display.clone();
        move |i: usize, r: CheckReport, p: Vec<String>| {
            display.finished(&r);
            results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            problems.lock().unwrap_or_else(|p| p.into_inner()).extend(p);
        }
    };
    let mut runnable = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let unmet = features.unmet(&c.needs);
        if unmet.is_empty() {
            runnable.push(i);
        } else {
            record(
                i,
                report_for(
                    c,
                    Outcome::Skipped {
                        reason: unmet.join("; "),
                    },
                    Duration::ZERO,
                ),
                Vec::new(),
            );
        }
    }
    let ctx_for = |c: &Check| {
        TestContext::new(
            runtime.clone(),
            images.clone(),
            features.clone(),
            run_id,
            c.name,
            work_dir,
        )
    };
    let scale = if options.timeout_scale > 0.0 {
        options.timeout_scale
    } else {
        1.0
    };
    // Checks that see or change what others use run first, one at a time.
    for &i in runnable.iter().filter(|&&i| checks[i].exclusive) {
        let c = &checks[i];
        display.started(c.name);
        let (r, p) = run_one(c.clone(), ctx_for(c), scale).await;
        record(i, r, p);
    }
    let semaphore = Arc::new(Semaphore::new(options.parallel.max(1)));
    let mut set = JoinSet::new();
    for &i in runnable.iter().filter(|&&i| !checks[i].exclusive) {
        let c = checks[i].clone();
        let ctx = ctx_for(&c);
        let semaphore = semaphore.clone();
        let display = display.clone();
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            display.started(c.name);
            (i, run_one(c, ctx, scale).await)
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((i, (r, p))) = joined {
            record(i, r, p);
        }
    }
    display.finish();
}

/// Aborts a task when dropped, so an interrupted run leaves no check running.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_one(c: Check, ctx: TestContext, scale: f64) -> (CheckReport, Vec<String>) {
    let start = Instant::now();
    let handle = tokio::spawn((c.func)(ctx.clone()));
    let _guard = AbortOnDrop(handle.abort_handle());
    let timeout = c.timeout.mul_f64(scale);
    let outcome = match tokio::time::timeout(timeout, handle).await {
        Ok(Ok(Ok(()))) => Outcome::Passed,
        Ok(Ok(Err(Failure::Fail(message)))) => Outcome::Failed { message },
        Ok(Ok(Err(Failure::Skip(reason)))) => Outcome::Skipped { reason },
        Ok(Err(e)) if e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            Outcome::Failed {
                message: format!("the check panicked: {msg}"),
            }
        }
        Ok(Err(e)) => Outcome::Failed {
            message: format!("the check was cancelled: {e}"),
        },
        Err(_) => Outcome::Failed {
            message: format!("timed out after {timeout:?}"),
        },
    };
    drop(_guard);
    let outcome = match outcome {
        Outcome::Failed { message } if c.informational => Outcome::Skipped {
            reason: format!("informational (the CRI does not require it): {message}"),
        },
        other => other,
    };
    let problems = ctx.cleanup().await;
    (report_for(&c, outcome, start.elapsed()), problems)
}
