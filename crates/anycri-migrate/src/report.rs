//! What `migrate check` found: [`Finding`]s with a category, a severity, where (a file and
//! line, a container) and the fix, gathered in a [`Report`] that prints as a table for
//! people and as JSON or Markdown for CI, and says whether anything blocks the migration.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much a finding matters to leaving Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Severity {
    /// Breaks when the node's runtime is no longer Docker (a workload talking to the Docker
    /// socket, a kubelet flag that names dockershim).
    Blocker,
    /// Breaks if Docker Engine is removed from the node, or loses data quietly (a script
    /// calling `docker`, a log shipper reading Docker's JSON logs).
    Warning,
    /// Worth knowing, nothing breaks.
    Info,
}

impl Severity {
    /// The lowercase name (`blocker`, `warning`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Blocker => "blocker",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of dependency a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Category {
    /// A running container mounts the Docker socket or Docker's directories.
    Workload,
    /// A process in a container runs the Docker CLI.
    Process,
    /// A systemd unit or drop-in calls `docker` or depends on `docker.service`.
    SystemdUnit,
    /// A cron table calls `docker`.
    Cron,
    /// A script calls `docker`.
    Script,
    /// A kubelet setting names Docker (dockershim, cri-dockerd, `--docker-endpoint`, ...).
    Kubelet,
    /// A log reader's configuration reads Docker's `*-json.log` files.
    LogReader,
    /// A manifest's workload mounts the Docker socket or Docker's directories.
    Manifest,
    /// Something the check could not look at (a runtime that did not answer, an unreadable
    /// file).
    Coverage,
}

impl Category {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Workload => "workload",
            Category::Process => "process",
            Category::SystemdUnit => "systemd-unit",
            Category::Cron => "cron",
            Category::Script => "script",
            Category::Kubelet => "kubelet",
            Category::LogReader => "log-reader",
            Category::Manifest => "manifest",
            Category::Coverage => "coverage",
        }
    }
}

/// One dependency on Docker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// What kind of dependency.
    pub category: Category,
    /// How much it matters.
    pub severity: Severity,
    /// Where: `path:line`, or a container (`container <name> (<id>) in pod <ns>/<pod>`).
    pub location: String,
    /// What was found.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

impl Finding {
    /// A finding.
    pub fn new(
        category: Category,
        severity: Severity,
        location: impl Into<String>,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            category,
            severity,
            location: location.into(),
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// Everything one check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// The findings, blockers first, then by category and location.
    pub findings: Vec<Finding>,
    /// What was looked at (e.g. `manifests: 3 files`, `runtime: containerd 1.6.20`).
    pub scanned: Vec<String>,
}

impl Report {
    /// Adds findings.
    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }

    /// Notes what was looked at.
    pub fn scanned(&mut self, what: impl Into<String>) {
        self.scanned.push(what.into());
    }

    /// Sorts the findings: blockers first, then by category and location.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (a.severity, a.category, &a.location).cmp(&(b.severity, b.category, &b.location))
        });
    }

    /// Whether a blocker was found (the exit code of `migrate check` says so).
    pub fn has_blockers(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocker)
    }

    /// How many findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// One line saying how many of each.
    pub fn summary(&self) -> String {
        format!(
            "{} blocker(s), {} warning(s), {} note(s)",
            self.count(Severity::Blocker),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        )
    }

    /// A table for people: one finding per block of lines.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if self.findings.is_empty() {
            out.push_str("No dependency on Docker found.\n");
        }
        for f in &self.findings {
            out.push_str(&format!(
                "{:<8} {:<13} {}\n         {}\n         fix: {}\n",
                f.severity.as_str().to_uppercase(),
                f.category.as_str(),
                f.location,
                f.what,
                f.fix
            ));
        }
        out.push_str(&format!("\n{}\n", self.summary()));
        for s in &self.scanned {
            out.push_str(&format!("scanned: {s}\n"));
        }
        out
    }

    /// Markdown for CI summaries and pull requests.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# Docker dependencies\n\n");
        out.push_str(&format!("{}.\n\n", self.summary()));
        if !self.findings.is_empty() {
            out.push_str(
                "| severity | category | location | found | fix |\n|---|---|---|---|---|\n",
            );
            for f in &self.findings {
                out.push_str(&format!(
                    "| {} | {} | `{}` | {} | {} |\n",
                    f.severity,
                    f.category.as_str(),
                    md(&f.location),
                    md(&f.what),
                    md(&f.fix)
                ));
            }
            out.push('\n');
        }
        if !self.scanned.is_empty() {
            out.push_str("Scanned:\n\n");
            for s in &self.scanned {
                out.push_str(&format!("- {}\n", md(s)));
            }
        }
        out
    }

    /// Pretty JSON (`{"findings": [...], "scanned": [...], "blockers": n, ...}`).
    pub fn to_json(&self) -> String {
        let value = serde_json::json!({
            "findings": self.findings,
            "scanned": self.scanned,
            "blockers": self.count(Severity::Blocker),
            "warnings": self.count(Severity::Warning),
            "notes": self.count(Severity::Info),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }
}

/// Escapes what would break a Markdown table cell.
fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockers_sort_first_and_decide_the_outcome() {
        let mut r = Report::default();
        r.extend([
            Finding::new(
                Category::Script,
                Severity::Warning,
                "b.sh:1",
                "calls docker",
                "use anycri docker",
            ),
            Finding::new(
                Category::Manifest,
                Severity::Blocker,
                "a.yaml:7",
                "mounts docker.sock",
                "drop it",
            ),
        ]);
        assert!(r.has_blockers());
        r.sort();
        assert_eq!(r.findings[0].severity, Severity::Blocker);
        assert!(
            r.to_markdown()
                .contains("| blocker | manifest | `a.yaml:7` |")
        );
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["blockers"], 1);
        assert_eq!(json["findings"][0]["category"], "manifest");
    }

    #[test]
    fn an_empty_report_says_so() {
        let r = Report::default();
        assert!(!r.has_blockers());
        assert!(r.to_table().starts_with("No dependency on Docker found."));
    }
}
