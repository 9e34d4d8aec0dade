//! Latency statistics: an [`OpRecorder`] collects the durations of one operation (an HDR
//! histogram at microsecond resolution plus the raw samples, which the critest-compatible
//! report and the plots need) and its errors; [`OpStats`] is the summary every report
//! shows (count, errors, min, p50, p90, p99, max, mean).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histogram tracks exactly (longer samples are clamped to it): 1 hour.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Durations and errors of one operation on one target.
#[derive(Debug, Clone)]
pub struct OpRecorder {
    histogram: Histogram<u64>,
    samples_us: Vec<u64>,
    errors: u64,
    error_examples: Vec<String>,
}

impl Default for OpRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl OpRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        OpRecorder {
            // Three significant digits: 0.1 % relative error, the usual HDR setting.
            histogram: Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3)
                .expect("static histogram bounds are valid"),
            samples_us: Vec::new(),
            errors: 0,
            error_examples: Vec::new(),
        }
    }

    /// Record one successful call that took `d`.
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_TRACKABLE_US);
        self.histogram.saturating_record(us);
        self.samples_us.push(us);
    }

    /// Record one failed call; the first few messages are kept for the report.
    pub fn record_error(&mut self, message: impl Into<String>) {
        self.errors += 1;
        if self.error_examples.len() < 5 {
            self.error_examples.push(message.into());
        }
    }

    /// The raw samples, in microseconds, in the order they were taken.
    pub fn samples_us(&self) -> &[u64] {
        &self.samples_us
    }

    /// The summary of what was recorded.
    pub fn stats(&self) -> OpStats {
        let h = &self.histogram;
        let count = h.len();
        let ms = |us: u64| us as f64 / 1000.0;
        let (min, p50, p90, p99, max, mean) = if count == 0 {
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        } else {
            (
                ms(h.min()),
                ms(h.value_at_quantile(0.50)),
                ms(h.value_at_quantile(0.90)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max()),
                h.mean() / 1000.0,
            )
        };
        OpStats {
            count,
            errors: self.errors,
            min_ms: min,
            p50_ms: p50,
            p90_ms: p90,
            p99_ms: p99,
            max_ms: max,
            mean_ms: mean,
            error_examples: self.error_examples.clone(),
        }
    }
}

/// Summary of one operation's latencies, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    /// Successful calls measured.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Fastest call.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest call.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// The first few error messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_examples: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let mut r = OpRecorder::new();
        for i in 1..=100u64 {
            r.record(Duration::from_millis(i));
        }
        let s = r.stats();
        assert_eq!(s.count, 100);
        assert_eq!(s.errors, 0);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.002 + 0.001;
        assert!(near(s.min_ms, 1.0), "{s:?}");
        assert!(near(s.p50_ms, 50.0), "{s:?}");
        assert!(near(s.p90_ms, 90.0), "{s:?}");
        assert!(near(s.p99_ms, 99.0), "{s:?}");
        assert!(near(s.max_ms, 100.0), "{s:?}");
        assert!(near(s.mean_ms, 50.5), "{s:?}");
        assert_eq!(r.samples_us().len(), 100);
    }

    #[test]
    fn errors_are_counted_apart_and_examples_capped() {
        let mut r = OpRecorder::new();
        r.record(Duration::from_micros(1500));
        for i in 0..8 {
            r.record_error(format!("boom {i}"));
        }
        let s = r.stats();
        assert_eq!(s.count, 1);
        assert_eq!(s.errors, 8);
        assert_eq!(s.error_examples.len(), 5);
        assert!((s.p50_ms - 1.5).abs() < 0.01);
    }

    #[test]
    fn empty_recorder_gives_zeros_not_panics() {
        let s = OpRecorder::new().stats();
        assert_eq!(s.count, 0);
        assert_eq!(s.p99_ms, 0.0);
    }

    #[test]
    fn huge_durations_are_clamped() {
        let mut r = OpRecorder::new();
        r.record(Duration::from_secs(10 * 3600));
        assert_eq!(r.stats().count, 1);
        assert!(r.stats().max_ms >= 3_599_000.0);
    }
}
