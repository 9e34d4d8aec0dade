//! The HTML report: one self-contained page (no scripts, no external files) with the run's
//! facts, the side-by-side medians, and per scenario the latency plot, the latency table,
//! the daemons' cost and, for churn and the soak, throughput over time; for the soak, the
//! error rate, p99 per window and every leak counter before and after.

use std::fmt::Write;

use super::{
    fmt_mib, fmt_ms,
    markdown::{churn_rate, operation_names, ratio_text},
    soak_tables::{self, Column, Table},
    svg::{escape, latency_chart, throughput_chart},
};
use crate::result::{BenchResult, ScenarioResult};

/// Render the page.
pub fn render(r: &BenchResult) -> String {
    let names: Vec<String> = r.targets.iter().map(|t| t.name.clone()).collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>anycri bench {}</title><style>\
body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}\
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child,td.l{{text-align:left}}\
th{{background:#f4f4f4}}.warn{{color:#b00}}</style></head><body>\n",
        escape(&r.run_id)
    );
    let _ = write!(
        o,
        "<h1>anycri bench</h1><p>Run <code>{}</code>, {} to {}; kernel {}, {} CPUs, {} MiB; anycri {}.</p>",
        escape(&r.run_id),
        escape(&r.started_at),
        escape(&r.finished_at),
        escape(&r.host.kernel),
        r.host.cpus,
        r.host.memory_bytes / (1024 * 1024),
        escape(&r.host.anycri_version)
    );
    if r.interrupted {
        o.push_str("<p class=\"warn\">The run was interrupted: figures are partial.</p>");
    }
    o.push_str("<table><tr><th>target</th><th>endpoint</th><th>runtime</th><th>processes measured</th></tr>");
    for t in &r.targets {
        let procs: Vec<String> = t
            .daemons
            .fixed
            .iter()
            .map(|(n, p)| format!("{n} ({p})"))
            .collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td><td class=\"l\">{}{}</td></tr>",
            escape(&t.name),
            escape(&t.uri),
            escape(&t.version),
            escape(&procs.join(", ")),
            if t.daemons.shim_addresses.is_empty() {
                ""
            } else {
                ", their containerd-shim*"
            }
        );
    }
    o.push_str("</table>");
    if let Some(b) = &r.baseline {
        let _ = write!(
            o,
            "<p>Ratios: p50 against the baseline <b>{}</b>.</p>",
            escape(b)
        );
    }

    let _ = write!(
        o,
        "<h2>Medians side by side (ms)</h2><table><tr><th>scenario</th><th>operation</th>"
    );
    for t in &names {
        let _ = write!(o, "<th>{0} p50</th><th>{0} p99</th>", escape(t));
        if r.baseline.as_deref().is_some_and(|b| b != t) {
            let _ = write!(o, "<th>{} / base</th>", escape(t));
        }
    }
    o.push_str("</tr>");
    for s in &r.scenarios {
        for op in operation_names(s) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"l\">{}</td>",
                escape(&s.scenario),
                escape(&op)
            );
            for t in &names {
                let st = s
                    .targets
                    .iter()
                    .find(|x| &x.target == t)
                    .and_then(|x| x.operation(&op))
                    .map(|x| &x.stats);
                let _ = write!(
                    o,
                    "<td>{}</td><td>{}</td>",
                    st.map_or("-".into(), |s| fmt_ms(s.p50_ms)),
                    st.map_or("-".into(), |s| fmt_ms(s.p99_ms))
                );
                if r.baseline.as_deref().is_some_and(|b| b != t) {
                    let _ = write!(o, "<td>{}</td>", ratio_text(r, &s.scenario, t, &op));
                }
            }
            o.push_str("</tr>");
        }
    }
    o.push_str("</table>");

    for s in &r.scenarios {
        let _ = write!(o, "<h2 id=\"{0}\">{0}</h2>", escape(&s.scenario));
        for t in s.targets.iter().filter(|t| t.skipped.is_some()) {
            let _ = write!(
                o,
                "<p class=\"warn\">{}: skipped: {}</p>",
                escape(&t.target),
                escape(t.skipped.as_deref().unwrap_or_default())
            );
        }
        if s.targets.iter().any(|t| !t.operations.is_empty()) {
            o.push_str(&latency_chart(s, &names));
        }
        if s.targets
            .iter()
            .any(|t| !t.throughput_per_second.is_empty())
        {
            o.push_str(&throughput_chart(s, &names));
            o.push_str("<table><tr><th>target</th><th>lifecycles</th><th>seconds</th><th>per second</th></tr>");
            for t in &s.targets {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                    escape(&t.target),
                    t.throughput_per_second.iter().sum::<u32>(),
                    t.throughput_per_second.len(),
                    churn_rate(t)
                );
            }
            o.push_str("</table>");
        }
        o.push_str("<table><tr><th>operation</th><th>target</th><th>n</th><th>errors</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>mean</th><th>p50 vs base</th></tr>");
        for op in operation_names(s) {
            for t in &s.targets {
                let Some(x) = t.operation(&op) else { continue };
                let st = &x.stats;
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&op),
                    escape(&t.target),
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
        o.push_str("</table><table><tr><th>target</th><th>daemons' CPU s</th><th>peak RSS MiB</th><th>peak shims</th><th>harness CPU s</th><th>wall s</th></tr>");
        for t in s.targets.iter().filter(|t| t.skipped.is_none()) {
            let c = &t.cost;
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.1}</td></tr>",
                escape(&t.target),
                c.cpu_seconds,
                fmt_mib(c.peak_rss_bytes),
                c.peak_shims,
                c.harness_cpu_seconds,
                c.wall_seconds
            );
        }
        o.push_str("</table>");
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
            o.push_str("<ul>");
            for n in notes {
                let _ = write!(o, "<li>{}</li>", escape(&n));
            }
            o.push_str("</ul>");
        }
    }
    if !r.cleanup.is_empty() {
        o.push_str("<h2>Clean-up</h2><table><tr><th>target</th><th>removed by the final sweep</th><th>left after it</th><th>errors</th></tr>");
        for c in &r.cleanup {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                escape(&c.target),
                c.removed,
                c.leftovers.map_or("?".into(), |n| n.to_string()),
                escape(&c.errors.join("; "))
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}

/// A table of the soak's row model: text columns left-aligned, a flagged row's text `warn`.
fn soak_table(o: &mut String, t: &Table) {
    o.push_str("<table><tr>");
    for (name, _) in &t.columns {
        let _ = write!(o, "<th>{name}</th>");
    }
    o.push_str("</tr>");
    for r in &t.rows {
        o.push_str("<tr>");
        for ((_, column), text) in t.columns.iter().zip(&r.cells) {
            match column {
                Column::Text => {
                    let warn = if r.warn { " warn" } else { "" };
                    let _ = write!(o, "<td class=\"l{warn}\">{}</td>", escape(text));
                }
                Column::Label | Column::Number => {
                    let _ = write!(o, "<td>{}</td>", escape(text));
                }
            }
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

/// The soak's tables.
fn soak(o: &mut String, s: &ScenarioResult) {
    let Some(tables) = soak_tables::tables(s) else {
        return;
    };
    soak_table(o, &tables.summary);
    o.push_str(
        "<p>Over time: the lifecycles in windows of equal count, in the order they ended (ms).</p>",
    );
    soak_table(o, &tables.windows);
    for account in &tables.accounts {
        let l = account.report;
        let _ = write!(
            o,
            "<h3>Leak accounting: {}</h3><p>{}</p>",
            escape(account.target),
            account.settled
        );
        soak_table(o, &account.counters);
        let items: Vec<String> = l
            .new_iptables_rules
            .iter()
            .map(|r| format!("new iptables rule: <code>{}</code>", escape(r)))
            .chain(
                l.new_netns_files
                    .iter()
                    .map(|f| format!("new network namespace file: {}", escape(f))),
            )
            .chain(l.notes.iter().map(|n| escape(n)))
            .collect();
        if !items.is_empty() {
            o.push_str("<ul>");
            for i in items {
                let _ = write!(o, "<li>{i}</li>");
            }
            o.push_str("</ul>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_holds_plots_tables_and_escaped_errors() {
        let html = render(&crate::report::sample::result());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(
            html.matches("<svg").count(),
            2,
            "a latency plot and a throughput plot"
        );
        assert!(html.contains("<td>1.98x</td>"), "{html}");
        assert!(html.contains("boom &lt;&amp;&gt;"));
        assert!(!html.contains("boom <&>"));
        assert!(html.contains("docker-shim: skipped: no Docker"));
        assert!(
            html.contains("<h3>Leak accounting: containerd</h3>"),
            "{html}"
        );
        assert!(
            html.contains("<td>netns files in /run/netns</td><td>2</td><td>3</td><td>+1</td><td class=\"l warn\">LEAK</td>"),
            "{html}"
        );
        assert!(html.contains("<li>found &lt;here&gt;</li>"), "{html}");
    }
}
