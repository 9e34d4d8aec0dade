//! The Markdown report: run facts, a side-by-side table of medians with ratios against the
//! baseline, then per scenario the full latency table, the daemons' cost, churn
//! throughput and the soak's error rate, p99 over time and leak accounting.

use std::fmt::Write;

use super::{
    fmt_mib, fmt_ms,
    soak_tables::{self, Column, Table},
};
use crate::result::{BenchResult, ScenarioResult, TargetScenario};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Operations of a scenario, in first-seen order across targets.
pub(crate) fn operation_names(s: &ScenarioResult) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for t in &s.targets {
        for o in &t.operations {
            if !names.contains(&o.name) {
                names.push(o.name.clone());
            }
        }
    }
    names
}

/// Lifecycles per second of a churn result (mean over its seconds).
pub(crate) fn churn_rate(t: &TargetScenario) -> f64 {
    let secs = t.throughput_per_second.len().max(1) as f64;
    t.throughput_per_second.iter().sum::<u32>() as f64 / secs
}

/// The ratio column's text.
pub(crate) fn ratio_text(r: &BenchResult, scenario: &str, target: &str, op: &str) -> String {
    match (r.baseline.as_deref(), r.ratio(scenario, target, op)) {
        (Some(b), _) if b == target => "baseline".into(),
        (_, Some(x)) => format!("{x:.2}x"),
        _ => "-".into(),
    }
}

/// Render the report.
pub fn render(r: &BenchResult) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# anycri bench report\n");
    let _ = writeln!(
        o,
        "Run `{}`, {} to {}; kernel {}, {} CPUs, {} MiB memory; anycri {}.{}\n",
        r.run_id,
        r.started_at,
        r.finished_at,
        r.host.kernel,
        r.host.cpus,
        r.host.memory_bytes / (1024 * 1024),
        r.host.anycri_version,
        if r.interrupted {
            " **The run was interrupted: figures are partial.**"
        } else {
            ""
        }
    );
    let _ = writeln!(o, "| target | endpoint | runtime | processes measured |");
    let _ = writeln!(o, "|---|---|---|---|");
    for t in &r.targets {
        let procs: Vec<String> = t
            .daemons
            .fixed
            .iter()
            .map(|(n, p)| format!("{n} ({p})"))
            .chain((!t.daemons.shim_addresses.is_empty()).then(|| "their containerd-shim*".into()))
            .collect();
        let _ = writeln!(
            o,
            "| {} | `{}` | {} | {} |",
            cell(&t.name),
            cell(&t.uri),
            cell(&t.version),
            cell(&procs.join(", "))
        );
    }
    if let Some(b) = &r.baseline {
        let _ = writeln!(o, "\nRatios are p50 against the baseline `{b}`.");
    }

    // Side by side.
    let _ = writeln!(o, "\n## Medians side by side (ms)\n");
    let mut header = String::from("| scenario | operation |");
    let mut rule = String::from("|---|---|");
    for t in &r.targets {
        let _ = write!(header, " {} p50 | {} p99 |", cell(&t.name), cell(&t.name));
        rule.push_str("---:|---:|");
        if r.baseline.as_deref().is_some_and(|b| b != t.name) {
            let _ = write!(header, " {} / base |", cell(&t.name));
            rule.push_str("---:|");
        }
    }
    let _ = writeln!(o, "{header}\n{rule}");
    for s in &r.scenarios {
        for op in operation_names(s) {
            let mut line = format!("| {} | {} |", s.scenario, cell(&op));
            for t in &r.targets {
                let ts = s.targets.iter().find(|x| x.target == t.name);
                let st = ts.and_then(|x| x.operation(&op)).map(|x| &x.stats);
                let _ = write!(
                    line,
                    " {} | {} |",
                    st.map_or("-".into(), |s| fmt_ms(s.p50_ms)),
                    st.map_or("-".into(), |s| fmt_ms(s.p99_ms))
                );
                if r.baseline.as_deref().is_some_and(|b| b != t.name) {
                    let _ = write!(line, " {} |", ratio_text(r, &s.scenario, &t.name, &op));
                }
            }
            let _ = writeln!(o, "{line}");
        }
    }

    // Per scenario.
    for s in &r.scenarios {
        let _ = writeln!(o, "\n## {}\n", s.scenario);
        for t in &s.targets {
            if let Some(why) = &t.skipped {
                let _ = writeln!(o, "- {}: skipped: {}", cell(&t.target), cell(why));
            }
        }
        let _ = writeln!(
            o,
            "\n| operation | target | n | errors | min | p50 | p90 | p99 | max | mean | p50 vs base |"
        );
        let _ = writeln!(o, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for op in operation_names(s) {
            for t in &s.targets {
                let Some(x) = t.operation(&op) else { continue };
                let st = &x.stats;
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(&op),
                    cell(&t.target),
                    st.count,
                    st.errors,
                    fmt_ms(st.min_ms),
                    fmt_ms(st.p50_ms),
                    fmt_ms(st.p90_ms),
                    fmt_ms(st.p99_ms),
                    fmt_ms(st.max_ms),
                    fmt_ms(st.mean_ms),
                    ratio_text(r, &s.scenario, &t.target, &op)
                );
            }
        }
        let _ = writeln!(
            o,
            "\n| target | daemons' CPU s | peak RSS MiB | peak shims | harness CPU s | harness / daemons | wall s |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|");
        for t in s.targets.iter().filter(|t| t.skipped.is_none()) {
            let c = &t.cost;
            let _ = writeln!(
                o,
                "| {} | {:.2} | {} | {} | {:.2} | {} | {:.1} |",
                cell(&t.target),
                c.cpu_seconds,
                fmt_mib(c.peak_rss_bytes),
                c.peak_shims,
                c.harness_cpu_seconds,
                if c.cpu_seconds > 0.0 {
                    format!("{:.0} %", 100.0 * c.harness_cpu_seconds / c.cpu_seconds)
                } else {
                    "-".into()
                },
                c.wall_seconds
            );
        }
        if s.targets
            .iter()
            .any(|t| !t.throughput_per_second.is_empty())
        {
            let _ = writeln!(o, "\n| target | lifecycles | seconds | per second |");
            let _ = writeln!(o, "|---|---:|---:|---:|");
            for t in &s.targets {
                let total: u32 = t.throughput_per_second.iter().sum();
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {:.2} |",
                    cell(&t.target),
                    total,
                    t.throughput_per_second.len(),
                    churn_rate(t)
                );
            }
        }
        soak(&mut o, s);
        let mut notes = Vec::new();
        for t in &s.targets {
            for op in &t.operations {
                for e in &op.stats.error_examples {
                    notes.push(format!("{} {}: error: {}", t.target, op.name, e));
                }
            }
            for n in &t.notes {
                notes.push(format!("{}: {}", t.target, n));
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(o);
            for n in notes {
                let _ = writeln!(o, "- {}", cell(&n));
            }
        }
    }

    if !r.cleanup.is_empty() {
        let _ = writeln!(o, "\n## Clean-up\n");
        let _ = writeln!(
            o,
            "| target | removed by the final sweep | left after it | errors |"
        );
        let _ = writeln!(o, "|---|---:|---:|---|");
        for c in &r.cleanup {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                cell(&c.target),
                c.removed,
                c.leftovers.map_or("?".into(), |n| n.to_string()),
                cell(&c.errors.join("; "))
            );
        }
    }
    o
}

/// A table of the soak's row model; with `bold_warn`, a flagged row's last cell in bold.
fn soak_table(o: &mut String, t: &Table, bold_warn: bool) {
    let names: Vec<&str> = t.columns.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(o, "| {} |", names.join(" | "));
    let align: Vec<&str> = t
        .columns
        .iter()
        .map(|(_, c)| if *c == Column::Number { "---:" } else { "---" })
        .collect();
    let _ = writeln!(o, "|{}|", align.join("|"));
    for r in &t.rows {
        let mut cells: Vec<String> = r.cells.iter().map(|c| cell(c)).collect();
        if bold_warn
            && r.warn
            && let Some(last) = cells.last_mut()
        {
            *last = format!("**{last}**");
        }
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
}

/// The soak's tables: lifecycles and errors, p99 per window, every counter before and after.
fn soak(o: &mut String, s: &ScenarioResult) {
    let Some(tables) = soak_tables::tables(s) else {
        return;
    };
    let _ = writeln!(o);
    soak_table(o, &tables.summary, true);
    let _ = writeln!(
        o,
        "\nOver time (the lifecycles in windows of equal count, in the order they ended; ms):\n"
    );
    soak_table(o, &tables.windows, false);
    for account in &tables.accounts {
        let l = account.report;
        let _ = writeln!(
            o,
            "\n### Leak accounting: {}\n\n{}\n",
            cell(account.target),
            account.settled
        );
        soak_table(o, &account.counters, false);
        if !l.new_iptables_rules.is_empty() {
            let _ = writeln!(o, "\niptables rules present after, not before:\n");
            for r in &l.new_iptables_rules {
                let _ = writeln!(o, "- `{}`", r.replace('`', "'"));
            }
        }
        if !l.new_netns_files.is_empty() {
            let _ = writeln!(o, "\nNetwork namespace files present after, not before:\n");
            for f in &l.new_netns_files {
                let _ = writeln!(o, "- {}", cell(f));
            }
        }
        if !l.notes.is_empty() {
            let _ = writeln!(o);
            for n in &l.notes {
                let _ = writeln!(o, "- {}", cell(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_has_the_figures() {
        let md = render(&crate::report::sample::result());
        assert!(md.contains("## pod-container"), "{md}");
        // containerd's RunPodSandbox p50 is 204 ms, the shim's 404 ms: 1.98x.
        assert!(
            md.contains("| RunPodSandbox | containerd | 10 | 1 | 200 | 204 |"),
            "{md}"
        );
        assert!(md.contains("| 1.98x |"), "{md}");
        assert!(md.contains("| containerd | 1.50 | 64.0 |"), "{md}");
        // Churn: 10 lifecycles over 5 seconds.
        assert!(md.contains("| containerd | 10 | 5 | 2.00 |"), "{md}");
        assert!(md.contains("docker-shim: skipped: no Docker"), "{md}");
        // The error example is there, its pipe-free text intact.
        assert!(md.contains("error: boom <&>"), "{md}");
        // The soak: summary, windows, counters with verdicts.
        assert!(
            md.contains("| containerd | 20 | 8 | 1 | 5.00 % | 1000 | 1900 | 1900 | 2.00 | 10.0 | 0 | **netns files in /run/netns** |"),
            "{md}"
        );
        assert!(
            md.contains("| containerd | 2 | 5.0 | 10.0 | 10 | 1 | 1000 | 1900 | 2.00 |"),
            "{md}"
        );
        assert!(md.contains("### Leak accounting: containerd"), "{md}");
        assert!(
            md.contains("| netns files in /run/netns | 2 | 3 | +1 | LEAK |"),
            "{md}"
        );
        assert!(
            md.contains("| containerd (pid 1): RSS | 10.0 MiB | 12.0 MiB | +2.0 MiB | reported |"),
            "{md}"
        );
        assert!(md.contains("- `nat -A CNI-x`"), "{md}");
        assert!(
            md.contains("- /run/netns/cni-1 (mounted: a live namespace)"),
            "{md}"
        );
    }
}
