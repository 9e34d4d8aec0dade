//! The soak scenario: on each target in turn (never interleaved: the host-wide counters —
//! network namespaces, CNI IPs, iptables — would mix the targets), count what the runtime
//! and the host hold ([`LeakProbe`]), run `soak.lifecycles` pod lifecycles with
//! `soak.workers` workers (the churn's workers, [`lifecycle_workers`]), remove whatever
//! failed lifecycles left, then count again once the object counts are back where they
//! were or `soak.settle_secs` have passed, and report error rate, latency overall and per
//! window, and every counter before, after and its delta.

use std::{
    sync::{Mutex, atomic::AtomicU32},
    time::{Duration, Instant},
};

use crate::{
    config::Scenario,
    leaks::{CounterKind, LeakProbe, LeakReport, objects_back},
    procstat::CostMeter,
    result::{Recorder, ScenarioResult, SoakResult, SoakWindow, TargetScenario},
    runner::{Budget, Runner, lifecycle_workers},
    target::Target,
};

/// How often the counts are taken while waiting for them to come back.
const SETTLE_POLL: Duration = Duration::from_secs(3);

/// One lifecycle of a soak.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    /// When it ended, from the soak's start.
    end: Duration,
    /// How long it took.
    took: Duration,
    /// Whether every step succeeded.
    ok: bool,
}

/// The nearest-rank `q` quantile of sorted values (0 when there are none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Successful durations of `samples` in ms, sorted.
fn ok_ms(samples: &[Sample]) -> Vec<f64> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok)
        .map(|s| ms(s.took))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The figures of a soak's lifecycles: overall, and in `windows` windows of equal count
/// in the order they ended. The leak accounting is left empty.
fn summarize(samples: &[Sample], windows: u32, wall: Duration) -> SoakResult {
    let mut s = samples.to_vec();
    s.sort_by_key(|x| x.end);
    let n = s.len();
    let failed = s.iter().filter(|x| !x.ok).count();
    let ok = ok_ms(&s);
    let w = (windows.max(1) as usize).min(n);
    let windows = (0..w)
        .map(|k| {
            let (lo, hi) = (k * n / w, (k + 1) * n / w);
            let part = &s[lo..hi];
            let from = if lo == 0 {
                0.0
            } else {
                s[lo - 1].end.as_secs_f64()
            };
            let to = part.last().map_or(from, |x| x.end.as_secs_f64());
            let ok = ok_ms(part);
            SoakWindow {
                from_s: from,
                to_s: to,
                lifecycles: part.len() as u32,
                errors: part.iter().filter(|x| !x.ok).count() as u32,
                p50_ms: percentile(&ok, 0.50),
                p99_ms: percentile(&ok, 0.99),
                per_second: if to > from {
                    part.len() as f64 / (to - from)
                } else {
                    0.0
                },
            }
        })
        .collect();
    let wall_s = wall.as_secs_f64();
    SoakResult {
        lifecycles: n as u32,
        succeeded: (n - failed) as u32,
        failed: failed as u32,
        error_rate: if n == 0 {
            0.0
        } else {
            failed as f64 / n as f64
        },
        p50_ms: percentile(&ok, 0.50),
        p99_ms: percentile(&ok, 0.99),
        max_ms: ok.last().copied().unwrap_or(0.0),
        per_second: if wall_s > 0.0 { n as f64 / wall_s } else { 0.0 },
        wall_seconds: wall_s,
        windows,
        ..Default::default()
    }
}

/// A counter's value for people (RSS in MiB).
pub(crate) fn fmt_count(kind: CounterKind, v: u64) -> String {
    match kind {
        CounterKind::RssBytes => format!("{:.1} MiB", v as f64 / (1024.0 * 1024.0)),
        _ => v.to_string(),
    }
}

/// A delta for people (RSS in MiB), with its sign.
pub(crate) fn fmt_delta(kind: CounterKind, d: i64) -> String {
    match kind {
        CounterKind::RssBytes => format!("{:+.1} MiB", d as f64 / (1024.0 * 1024.0)),
        _ => format!("{d:+}"),
    }
}

/// The verdict on one counter.
pub(crate) fn verdict(c: &crate::leaks::LeakCounter, fd_slack: u64) -> String {
    match (c.kind, c.leak) {
        (CounterKind::Object, true) => "LEAK".into(),
        (CounterKind::Fds, true) => format!("LEAK (more than {fd_slack} fds)"),
        (CounterKind::Object | CounterKind::Fds, false) => "ok".into(),
        _ => "reported".into(),
    }
}

/// The soak's summary lines for the terminal.
fn summary_lines(target: &str, s: &SoakResult) -> Vec<String> {
    let leaks: Vec<&str> = s.leaks.leaks().map(|c| c.name.as_str()).collect();
    let mut lines = vec![format!(
        "soak on {target}: {} lifecycles by {} workers in {:.1} s ({:.2}/s), {} failed ({:.2} %), p50 {:.0} ms, p99 {:.0} ms; counts {} after {:.0} s; leaks: {}",
        s.lifecycles,
        s.workers,
        s.wall_seconds,
        s.per_second,
        s.failed,
        100.0 * s.error_rate,
        s.p50_ms,
        s.p99_ms,
        if s.leaks.settled {
            "back"
        } else {
            "not all back"
        },
        s.leaks.settle_seconds,
        if leaks.is_empty() {
            "none".into()
        } else {
            leaks.join(", ")
        }
    )];
    lines.push(format!(
        "  p99 per window (ms): {}",
        s.windows
            .iter()
            .map(|w| format!("{:.0}", w.p99_ms))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for c in &s.leaks.counters {
        lines.push(format!(
            "  {}: {} -> {} ({}){}",
            c.name,
            fmt_count(c.kind, c.before),
            fmt_count(c.kind, c.after),
            fmt_delta(c.kind, c.delta),
            if c.leak { "  LEAK" } else { "" }
        ));
    }
    lines
}

impl Runner<'_> {
    /// The soak on every target, one after the other.
    pub(crate) async fn run_soak(&self) -> ScenarioResult {
        let mut targets = Vec::new();
        for t in self.targets {
            targets.push(self.soak_one(t).await);
        }
        ScenarioResult {
            scenario: Scenario::Soak.name().to_owned(),
            targets,
        }
    }

    async fn soak_one(&self, t: &Target) -> TargetScenario {
        let cfg = &self.config.soak;
        let rec = Recorder::default();
        let bar = self.bar(Scenario::Soak, cfg.lifecycles as u64);
        bar.set_message(format!("{}: counting", t.name));
        let probe = LeakProbe::discover(t).await;
        let mut before = probe.snapshot().await;
        // Namespace files of earlier work still waiting for deletion would make the counts
        // before too high, and hide as many left by the soak: wait for them first.
        let mut waited = None;
        if before.pending_netns_files() > 0 {
            let pending = before.pending_netns_files();
            bar.set_message(format!(
                "{}: waiting for {pending} namespace files of earlier work to be deleted",
                t.name
            ));
            let start = Instant::now();
            let deadline = start + Duration::from_secs(cfg.settle_secs);
            while before.pending_netns_files() > 0 && Instant::now() < deadline {
                tokio::time::sleep(
                    SETTLE_POLL.min(deadline.saturating_duration_since(Instant::now())),
                )
                .await;
                before = probe.snapshot().await;
            }
            waited = Some(format!(
                "before counting, waited {:.0} s for {pending} namespace files of earlier work (not mounted) to be deleted; {} were left",
                start.elapsed().as_secs_f64(),
                before.pending_netns_files()
            ));
        }

        bar.set_message(t.name.clone());
        let left = AtomicU32::new(cfg.lifecycles);
        let samples = Mutex::new(Vec::with_capacity(cfg.lifecycles as usize));
        let meter = CostMeter::start(probe.daemons());
        let origin = Instant::now();
        lifecycle_workers(t, &rec, cfg.workers, Budget::Count(&left), |f| {
            let end = f.ended.duration_since(origin);
            if f.ok {
                rec.completion(end);
            }
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Sample {
                    end,
                    took: f.ended.duration_since(f.started),
                    ok: f.ok,
                });
            bar.inc(1);
        })
        .await;
        let wall = origin.elapsed();
        let cost = meter.finish(probe.daemons());

        // What failed lifecycles left is removed (as the kubelet's clean-up would) before
        // the counts after: a leak is what stays once everything was removed through the API.
        bar.set_message(format!("{}: settling", t.name));
        let left_by_run = t.leftovers().await.ok();
        if left_by_run.is_some_and(|n| n > 0) {
            let (removed, errors) = t.sweep().await;
            rec.note(
                "soak clean-up",
                format!(
                    "{} objects of the run were left by failed lifecycles; removed {removed}{}",
                    left_by_run.unwrap_or(0),
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(", errors: {}", errors.join("; "))
                    }
                ),
            );
        }
        let settle_start = Instant::now();
        let deadline = settle_start + Duration::from_secs(cfg.settle_secs);
        let (after, settled) = loop {
            let now = probe.snapshot().await;
            let back = objects_back(&before, &now);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if back || remaining.is_zero() {
                break (now, back);
            }
            tokio::time::sleep(SETTLE_POLL.min(remaining)).await;
        };
        let mut leaks = LeakReport::compare(&before, &after, u64::from(cfg.fd_slack));
        leaks.settle_seconds = settle_start.elapsed().as_secs_f64();
        leaks.settled = settled;
        leaks
            .notes
            .splice(0..0, probe.notes.iter().cloned().chain(waited));

        let samples = samples.into_inner().unwrap_or_else(|e| e.into_inner());
        let soak = SoakResult {
            workers: cfg.workers,
            left_by_run,
            leaks,
            ..summarize(&samples, cfg.windows, wall)
        };
        bar.finish_and_clear();
        self.progress.suspend(|| {
            for l in summary_lines(&t.name, &soak) {
                eprintln!("{l}");
            }
        });
        let mut result = rec.finish(&t.name, cost, None);
        result.soak = Some(soak);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaks::{LeakCounter, Snapshot};

    fn sample(end_ms: u64, took_ms: u64, ok: bool) -> Sample {
        Sample {
            end: Duration::from_millis(end_ms),
            took: Duration::from_millis(took_ms),
            ok,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn windows_split_by_end_order_with_errors_and_p99() {
        // 20 lifecycles ending every 100 ms (given out of order), the second half slower;
        // two failures in the last window.
        let mut samples: Vec<Sample> = (1..=20u64)
            .map(|i| {
                sample(
                    i * 100,
                    if i <= 10 { 50 } else { 500 },
                    !(i == 19 || i == 20),
                )
            })
            .collect();
        samples.reverse();
        let s = summarize(&samples, 4, Duration::from_secs(2));
        assert_eq!(s.lifecycles, 20);
        assert_eq!(s.failed, 2);
        assert_eq!(s.succeeded, 18);
        assert!((s.error_rate - 0.1).abs() < 1e-9);
        assert!((s.per_second - 10.0).abs() < 1e-9);
        assert_eq!(s.p50_ms, 50.0, "the 9th of 18 successes took 50 ms");
        assert_eq!(s.p99_ms, 500.0);
        assert_eq!(s.windows.len(), 4);
        let w = &s.windows;
        assert_eq!(
            w.iter().map(|w| w.lifecycles).collect::<Vec<_>>(),
            vec![5; 4]
        );
        assert_eq!(w[0].from_s, 0.0);
        assert!((w[0].to_s - 0.5).abs() < 1e-9);
        assert!((w[1].from_s - 0.5).abs() < 1e-9, "{:?}", w[1]);
        assert_eq!(w[0].p99_ms, 50.0);
        assert_eq!(w[1].p99_ms, 50.0);
        assert_eq!(w[2].p99_ms, 500.0);
        assert_eq!(w[3].errors, 2);
        assert_eq!(w[3].p99_ms, 500.0);
        assert!((w[1].per_second - 10.0).abs() < 1e-6, "{:?}", w[1]);
    }

    #[test]
    fn fewer_lifecycles_than_windows_and_none_at_all() {
        let s = summarize(
            &[sample(100, 10, true), sample(200, 20, false)],
            10,
            Duration::from_millis(200),
        );
        assert_eq!(s.windows.len(), 2);
        assert_eq!(s.windows[1].p99_ms, 0.0, "no success in it");
        let s = summarize(&[], 10, Duration::ZERO);
        assert_eq!(s.lifecycles, 0);
        assert!(s.windows.is_empty());
        assert_eq!(s.error_rate, 0.0);
        assert_eq!(s.per_second, 0.0);
    }

    #[test]
    fn summary_names_the_leaks() {
        let before = Snapshot {
            values: vec![
                ("netns".into(), CounterKind::Object, 1),
                ("d: RSS".into(), CounterKind::RssBytes, 1 << 20),
            ],
            ..Default::default()
        };
        let after = Snapshot {
            values: vec![
                ("netns".into(), CounterKind::Object, 3),
                ("d: RSS".into(), CounterKind::RssBytes, 3 << 20),
            ],
            ..Default::default()
        };
        let mut s = summarize(&[sample(100, 10, true)], 1, Duration::from_millis(100));
        s.leaks = LeakReport::compare(&before, &after, 16);
        let lines = summary_lines("t", &s);
        assert!(lines[0].contains("leaks: netns"), "{lines:?}");
        assert!(
            lines.iter().any(|l| l == "  netns: 1 -> 3 (+2)  LEAK"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == "  d: RSS: 1.0 MiB -> 3.0 MiB (+2.0 MiB)"),
            "{lines:?}"
        );
        let c = LeakCounter {
            name: "x: open fds".into(),
            kind: CounterKind::Fds,
            before: 1,
            after: 40,
            delta: 39,
            leak: true,
        };
        assert_eq!(verdict(&c, 16), "LEAK (more than 16 fds)");
    }
}
