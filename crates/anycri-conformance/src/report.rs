//! The outcome of a run and its renderings: JSON (everything), JUnit XML (what CI systems
//! read), a Markdown summary, and the summary table printed at the end of a CLI run.

use std::{fmt::Write as _, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use crate::known_limits::KnownLimit;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// It passed.
    Passed,
    /// It failed, and why.
    Failed {
        /// What was expected and what happened.
        message: String,
    },
    /// It was not run, and why.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// `passed`, `failed` or `skipped`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Its doc line.
    pub doc: String,
    /// The critest spec it corresponds to.
    pub critest: Option<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took (cleanup included).
    #[serde(with = "secs")]
    pub duration: Duration,
}

/// Pass/fail/skip counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Passed checks.
    pub passed: usize,
    /// Failed checks.
    pub failed: usize,
    /// Skipped checks.
    pub skipped: usize,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Report {
    /// The run's ID (the value of the run label).
    pub run_id: String,
    /// `Version.runtime_name` and `runtime_version`, when known.
    pub runtime: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Wall time of the run.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// The parallelism used.
    pub parallel: usize,
    /// Every selected check, in registry order.
    pub checks: Vec<CheckReport>,
    /// The run was interrupted (Ctrl-C); checks not run are reported as skipped.
    pub interrupted: bool,
    /// What cleanup could not remove.
    pub cleanup_problems: Vec<String>,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

impl Report {
    /// The counts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.checks {
            match r.outcome {
                Outcome::Passed => c.passed += 1,
                Outcome::Failed { .. } => c.failed += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
            }
        }
        c
    }

    /// True when nothing failed and the run was not interrupted.
    pub fn success(&self) -> bool {
        self.counts().failed == 0 && !self.interrupted
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckReport> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
    }

    /// `Version.runtime_name` of the runtime, the first word of [`Report::runtime`].
    pub fn runtime_name(&self) -> &str {
        self.runtime.split_whitespace().next().unwrap_or_default()
    }

    /// The known limit that explains `check`'s failure on this runtime, if any.
    pub fn known_limit(&self, check: &CheckReport) -> Option<&'static KnownLimit> {
        crate::known_limits::known_limit(&self.runtime, &check.name)
    }

    /// The failed checks that no known limit explains.
    pub fn unexplained_failures(&self) -> impl Iterator<Item = &CheckReport> {
        self.failures().filter(|c| self.known_limit(c).is_none())
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as JUnit XML: one `<testsuite>` (the runtime), one `<testcase>` per check.
    pub fn to_junit(&self) -> String {
        let c = self.counts();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"anycri-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.checks.len(),
            c.failed,
            c.skipped,
            self.duration.as_secs_f64()
        );
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
            xml_escape(&format!("anycri-conformance ({})", self.runtime)),
            self.checks.len(),
            c.failed,
            c.skipped,
            self.duration.as_secs_f64(),
            xml_escape(&self.started_at)
        );
        for r in &self.checks {
            let (class, name) = r.name.rsplit_once("::").unwrap_or(("", &r.name));
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(class),
                xml_escape(name),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Outcome::Passed => x.push_str("/>\n"),
                Outcome::Failed { message } => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(message.lines().next().unwrap_or_default()),
                        xml_escape(message)
                    );
                }
                Outcome::Skipped { reason } => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(reason)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n</testsuites>\n");
        x
    }

    /// A Markdown summary: counts, then every failed and skipped check with its message.
    pub fn to_markdown(&self) -> String {
        let c = self.counts();
        let mut m = format!(
            "# anycri conformance: {}\n\nRun `{}`, started {}, {:.1} s with parallel {}.\n\n\
             | passed | failed | skipped | total |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
            self.runtime,
            self.run_id,
            self.started_at,
            self.duration.as_secs_f64(),
            self.parallel,
            c.passed,
            c.failed,
            c.skipped,
            self.checks.len()
        );
        if self.interrupted {
            m.push_str("\n**Interrupted**: checks not run are reported as skipped.\n");
        }
        m.push_str("\n| check | outcome | time | detail |\n|---|---|---|---|\n");
        for r in &self.checks {
            let detail = match &r.outcome {
                Outcome::Passed => String::new(),
                Outcome::Failed { message } => message.clone(),
                Outcome::Skipped { reason } => reason.clone(),
            };
            let _ = writeln!(
                m,
                "| `{}` | {} | {:.2} s | {} |",
                r.name,
                r.outcome.label(),
                r.duration.as_secs_f64(),
                detail.replace('|', "\\|").replace('\n', " ")
            );
        }
        if !self.cleanup_problems.is_empty() {
            m.push_str("\n## Cleanup problems\n\n");
            for p in &self.cleanup_problems {
                let _ = writeln!(m, "- {p}");
            }
        }
        m
    }

    /// The table printed at the end of a CLI run: one line per area, then the failures.
    pub fn summary_table(&self) -> String {
        let mut areas: Vec<(String, Counts)> = Vec::new();
        for r in &self.checks {
            let area = r.name.split("::").next().unwrap_or_default().to_owned();
            let i = match areas.iter().position(|(a, _)| *a == area) {
                Some(i) => i,
                None => {
                    areas.push((area, Counts::default()));
                    areas.len() - 1
                }
            };
            let c = &mut areas[i].1;
            match r.outcome {
                Outcome::Passed => c.passed += 1,
                Outcome::Failed { .. } => c.failed += 1,
                Outcome::Skipped { .. } => c.skipped += 1,
            }
        }
        let mut t = format!(
            "{:<14} {:>6} {:>6} {:>7}\n",
            "AREA", "PASSED", "FAILED", "SKIPPED"
        );
        for (a, c) in &areas {
            let _ = writeln!(
                t,
                "{a:<14} {:>6} {:>6} {:>7}",
                c.passed, c.failed, c.skipped
            );
        }
        let c = self.counts();
        let _ = writeln!(
            t,
            "{:<14} {:>6} {:>6} {:>7}   ({} checks, {:.1} s, parallel {}, {})",
            "TOTAL",
            c.passed,
            c.failed,
            c.skipped,
            self.checks.len(),
            self.duration.as_secs_f64(),
            self.parallel,
            self.runtime
        );
        for f in self.failures() {
            if let Outcome::Failed { message } = &f.outcome {
                let _ = writeln!(t, "FAILED {}: {message}", f.name);
            }
        }
        if self.interrupted {
            t.push_str("INTERRUPTED: the run was cut short\n");
        }
        for p in &self.cleanup_problems {
            let _ = writeln!(t, "CLEANUP {p}");
        }
        t
    }

    /// Write `report.json`, `junit.xml` and `summary.md` into `dir` (created if needed).
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), self.to_json())?;
        std::fs::write(dir.join("junit.xml"), self.to_junit())?;
        std::fs::write(dir.join("summary.md"), self.to_markdown())
    }
}

/// The area of a check: the first part of its name.
fn area(name: &str) -> &str {
    name.split("::").next().unwrap_or_default()
}

/// A Markdown comparison of named runs: one row per area with `passed / skipped / failed`
/// for each run, the totals, wall times and runtimes, then every failure with the reason of
/// its known limit (or "not a known limit").
pub fn comparison_markdown(reports: &[(String, Report)]) -> String {
    let mut areas: Vec<&str> = Vec::new();
    for (_, r) in reports {
        for c in &r.checks {
            if !areas.contains(&area(&c.name)) {
                areas.push(area(&c.name));
            }
        }
    }
    let mut m = String::from("| area |");
    for (name, _) in reports {
        let _ = write!(m, " {name} |");
    }
    m.push_str("\n|---|");
    m.push_str(&"---|".repeat(reports.len()));
    m.push('\n');
    let cell = |c: Counts| format!("{} / {} / {}", c.passed, c.skipped, c.failed);
    for a in &areas {
        let _ = write!(m, "| {a} |");
        for (_, r) in reports {
            let mut c = Counts::default();
            for ch in r.checks.iter().filter(|ch| area(&ch.name) == *a) {
                match ch.outcome {
                    Outcome::Passed => c.passed += 1,
                    Outcome::Failed { .. } => c.failed += 1,
                    Outcome::Skipped { .. } => c.skipped += 1,
                }
            }
            let _ = write!(m, " {} |", cell(c));
        }
        m.push('\n');
    }
    m.push_str("| **total** (passed / skipped / failed) |");
    for (_, r) in reports {
        let _ = write!(m, " **{}** |", cell(r.counts()));
    }
    m.push_str("\n| wall time |");
    for (_, r) in reports {
        let _ = write!(
            m,
            " {:.1} s (parallel {}) |",
            r.duration.as_secs_f64(),
            r.parallel
        );
    }
    m.push_str("\n| runtime |");
    for (_, r) in reports {
        let _ = write!(m, " {} |", r.runtime);
    }
    m.push('\n');
    let mut failures = String::new();
    for (name, r) in reports {
        for f in r.failures() {
            if let Outcome::Failed { message } = &f.outcome {
                let limit = r
                    .known_limit(f)
                    .map(|k| format!(" — known limit: {}", k.reason))
                    .unwrap_or_else(|| " — **not a known limit**".into());
                let _ = writeln!(
                    failures,
                    "- `{}` on {name}: {}{limit}",
                    f.name,
                    message.replace('\n', " ")
                );
            }
        }
    }
    if !failures.is_empty() {
        m.push_str("\nFailures:\n\n");
        m.push_str(&failures);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let r = |name: &str, outcome| CheckReport {
            name: name.into(),
            doc: "d".into(),
            critest: None,
            outcome,
            duration: Duration::from_millis(1500),
        };
        Report {
            run_id: "r1".into(),
            runtime: "x 1.0".into(),
            started_at: "2024-01-01T00:00:00Z".into(),
            duration: Duration::from_secs(3),
            parallel: 2,
            checks: vec![
                r("pod::a", Outcome::Passed),
                r(
                    "pod::b",
                    Outcome::Failed {
                        message: "got <1> & \"2\"\x01".into(),
                    },
                ),
                r(
                    "image::c",
                    Outcome::Skipped {
                        reason: "no | image".into(),
                    },
                ),
            ],
            interrupted: false,
            cleanup_problems: vec![],
        }
    }

    #[test]
    fn counts_and_success() {
        let r = sample();
        assert_eq!(
            r.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert!(!r.success());
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn junit_escapes_and_counts() {
        let x = sample().to_junit();
        assert!(x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(x.contains("classname=\"pod\" name=\"b\""));
        assert!(x.contains("got &lt;1&gt; &amp; &quot;2&quot;\u{fffd}"));
        assert!(x.contains("<skipped message=\"no | image\"/>"));
        assert!(!x.contains('\x01'));
    }

    #[test]
    fn comparison_of_runs() {
        let a = sample();
        let mut b = sample();
        b.checks.truncate(1);
        let md = comparison_markdown(&[("A".into(), a), ("B".into(), b)]);
        assert!(md.starts_with("| area | A | B |\n|---|---|---|\n"), "{md}");
        assert!(md.contains("| pod | 1 / 0 / 1 | 1 / 0 / 0 |"), "{md}");
        assert!(md.contains("| image | 0 / 1 / 0 | 0 / 0 / 0 |"), "{md}");
        assert!(md.contains("**1 / 1 / 1**"), "{md}");
        assert!(md.contains("- `pod::b` on A: got <1>"), "{md}");
        assert!(md.contains("not a known limit"), "{md}");
    }

    #[test]
    fn markdown_and_table() {
        let r = sample();
        let md = r.to_markdown();
        assert!(md.contains("| 1 | 1 | 1 | 3 |"));
        assert!(md.contains("no \\| image"));
        let t = r.summary_table();
        assert!(t.contains("FAILED pod::b"));
        assert!(
            t.lines()
                .any(|l| l.starts_with("image") && l.ends_with("1"))
        );
    }
}
