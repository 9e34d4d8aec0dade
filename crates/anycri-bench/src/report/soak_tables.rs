//! The soak's tables as one row model that the Markdown and HTML writers both render: the
//! summary per target, p99 over time in windows, and each target's leak accounting. Cells
//! are plain text; each writer escapes them and adds its markup (a flagged row's last cell is
//! bold in Markdown's summary, `warn` in HTML).

use crate::{
    leaks::LeakReport,
    result::ScenarioResult,
    soak::{fmt_count, fmt_delta, verdict},
};

use super::fmt_ms;

/// How a column reads, which decides its alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// The first column: what the row is about.
    Label,
    /// A figure, right-aligned.
    Number,
    /// Text after the figures (leaks, a verdict), left-aligned.
    Text,
}

/// One row: its cells, and whether its last cell flags a problem.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub cells: Vec<String>,
    pub warn: bool,
}

/// A table: named columns and rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub columns: Vec<(&'static str, Column)>,
    pub rows: Vec<Row>,
}

/// One target's leak accounting.
#[derive(Debug, Clone)]
pub(crate) struct Account<'a> {
    pub target: &'a str,
    /// When the counts were taken after the soak, and whether they had come back.
    pub settled: String,
    pub counters: Table,
    /// The report, for its lists (new iptables rules and namespace files, notes).
    pub report: &'a LeakReport,
}

/// Every soak table of a scenario.
#[derive(Debug, Clone)]
pub(crate) struct SoakTables<'a> {
    pub summary: Table,
    pub windows: Table,
    pub accounts: Vec<Account<'a>>,
}

/// The soak tables of `s`; none when no target soaked.
pub(crate) fn tables(s: &ScenarioResult) -> Option<SoakTables<'_>> {
    use Column::{Label, Number, Text};
    let soaks: Vec<_> = s
        .targets
        .iter()
        .filter_map(|t| Some((t.target.as_str(), t.soak.as_ref()?)))
        .collect();
    if soaks.is_empty() {
        return None;
    }
    let mut summary = Table {
        columns: vec![
            ("target", Label),
            ("lifecycles", Number),
            ("workers", Number),
            ("failed", Number),
            ("error rate", Number),
            ("p50", Number),
            ("p99", Number),
            ("max", Number),
            ("per second", Number),
            ("wall s", Number),
            ("left by failed lifecycles", Number),
            ("leaks", Text),
        ],
        rows: Vec::new(),
    };
    let mut windows = Table {
        columns: vec![
            ("target", Label),
            ("window", Number),
            ("from s", Number),
            ("to s", Number),
            ("lifecycles", Number),
            ("errors", Number),
            ("p50", Number),
            ("p99", Number),
            ("per second", Number),
        ],
        rows: Vec::new(),
    };
    let mut accounts = Vec::new();
    for (t, x) in soaks {
        let leaks: Vec<&str> = x.leaks.leaks().map(|c| c.name.as_str()).collect();
        summary.rows.push(Row {
            cells: vec![
                t.to_owned(),
                x.lifecycles.to_string(),
                x.workers.to_string(),
                x.failed.to_string(),
                format!("{:.2} %", 100.0 * x.error_rate),
                fmt_ms(x.p50_ms),
                fmt_ms(x.p99_ms),
                fmt_ms(x.max_ms),
                format!("{:.2}", x.per_second),
                format!("{:.1}", x.wall_seconds),
                x.left_by_run.map_or("?".into(), |n| n.to_string()),
                if leaks.is_empty() {
                    "none".into()
                } else {
                    leaks.join(", ")
                },
            ],
            warn: !leaks.is_empty(),
        });
        for (i, w) in x.windows.iter().enumerate() {
            windows.rows.push(Row {
                cells: vec![
                    t.to_owned(),
                    (i + 1).to_string(),
                    format!("{:.1}", w.from_s),
                    format!("{:.1}", w.to_s),
                    w.lifecycles.to_string(),
                    w.errors.to_string(),
                    fmt_ms(w.p50_ms),
                    fmt_ms(w.p99_ms),
                    format!("{:.2}", w.per_second),
                ],
                warn: false,
            });
        }
        let l = &x.leaks;
        accounts.push(Account {
            target: t,
            settled: format!(
                "Counted before the soak and {:.0} s after it ({}).",
                l.settle_seconds,
                if l.settled {
                    "every object count was back"
                } else {
                    "the wait ran out before every object count was back"
                }
            ),
            counters: Table {
                columns: vec![
                    ("counter", Label),
                    ("before", Number),
                    ("after", Number),
                    ("delta", Number),
                    ("verdict", Text),
                ],
                rows: l
                    .counters
                    .iter()
                    .map(|c| Row {
                        cells: vec![
                            c.name.clone(),
                            fmt_count(c.kind, c.before),
                            fmt_count(c.kind, c.after),
                            fmt_delta(c.kind, c.delta),
                            verdict(c, l.fd_slack),
                        ],
                        warn: c.leak,
                    })
                    .collect(),
            },
            report: l,
        });
    }
    Some(SoakTables {
        summary,
        windows,
        accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_for_every_soak_and_flags_on_leaks() {
        let r = super::super::sample::result();
        let churn = r.scenarios.iter().find(|s| s.scenario == "churn").unwrap();
        assert!(tables(churn).is_none(), "no soak, no tables");
        let soak = r.scenarios.iter().find(|s| s.scenario == "soak").unwrap();
        let t = tables(soak).unwrap();
        for table in [&t.summary, &t.windows, &t.accounts[0].counters] {
            assert!(
                table
                    .rows
                    .iter()
                    .all(|r| r.cells.len() == table.columns.len())
            );
        }
        let summary = &t.summary.rows[0];
        assert_eq!(summary.cells[0], "containerd");
        assert_eq!(summary.cells[4], "5.00 %");
        assert_eq!(summary.cells[11], "netns files in /run/netns");
        assert!(summary.warn);
        assert_eq!(t.windows.rows.len(), 2);
        assert_eq!(
            t.windows.rows[1].cells[1..6],
            ["2", "5.0", "10.0", "10", "1"]
        );
        let counters = &t.accounts[0].counters.rows;
        let flagged: Vec<(&str, &str)> = counters
            .iter()
            .filter(|r| r.warn)
            .map(|r| (r.cells[0].as_str(), r.cells[4].as_str()))
            .collect();
        assert_eq!(flagged, [("netns files in /run/netns", "LEAK")]);
        assert_eq!(counters[1].cells[3], "+1");
    }
}
