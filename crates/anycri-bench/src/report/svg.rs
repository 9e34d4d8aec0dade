//! Hand-written SVG plots for the HTML report: latency distributions per operation with the
//! targets side by side (log-scale axis: min–max whisker, p50–p99 bar, p50 tick), and churn
//! throughput over time. Hand-written rather than plotters because these two chart shapes
//! are a few rectangles and lines, the output must not depend on fonts being installed
//! (plotters measures text with a font library), and the markup stays small and testable.

use std::fmt::Write;

use crate::result::ScenarioResult;

/// Colours of targets 1, 2, 3, ... (repeating).
pub const PALETTE: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Escape text for XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const LEFT: f64 = 230.0;
const RIGHT: f64 = 90.0;
const WIDTH: f64 = 900.0;
const ROW: f64 = 16.0;
const GAP: f64 = 10.0;
const TOP: f64 = 30.0;

/// Latency distributions of a scenario's operations, one row per operation and target.
pub fn latency_chart(s: &ScenarioResult, targets: &[String]) -> String {
    let ops = super::markdown::operation_names(s);
    let stats = |op: &str, t: &str| {
        s.targets
            .iter()
            .find(|x| x.target == t)
            .and_then(|x| x.operation(op))
            .map(|o| o.stats.clone())
            .filter(|st| st.count > 0)
    };
    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for op in &ops {
        for t in targets {
            if let Some(st) = stats(op, t) {
                lo = lo.min(st.min_ms.max(0.001));
                hi = hi.max(st.max_ms.max(0.001));
            }
        }
    }
    if lo > hi {
        (lo, hi) = (0.1, 1000.0);
    }
    let (lo_e, hi_e) = (
        lo.log10().floor() as i32,
        hi.log10().ceil().max(lo.log10().floor() + 1.0) as i32,
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |ms: f64| {
        let l = ms.max(10f64.powi(lo_e)).log10();
        LEFT + (l - lo_e as f64) / (hi_e - lo_e) as f64 * plot_w
    };
    let rows = ops.len() * targets.len();
    let height = TOP + rows as f64 * ROW + ops.len() as f64 * GAP + 40.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11" role="img"><title>{} latency (ms, log scale)</title>"#,
        escape(&s.scenario)
    );
    // Legend.
    for (i, t) in targets.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let lx = LEFT + i as f64 * 150.0;
        let _ = write!(
            o,
            r#"<rect x="{lx}" y="8" width="12" height="10" fill="{c}"/><text x="{}" y="17">{}</text>"#,
            lx + 16.0,
            escape(t)
        );
    }
    // Grid.
    let bottom = height - 30.0;
    for e in lo_e..=hi_e {
        let v = 10f64.powi(e);
        let gx = x(v);
        let _ = write!(
            o,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{bottom}" stroke="#ddd"/><text x="{gx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            super::fmt_ms(v)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">ms</text>"#,
        LEFT + plot_w / 2.0,
        bottom + 27.0
    );
    let mut y = TOP;
    for op in &ops {
        let _ = write!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + ROW * targets.len() as f64 / 2.0 + 4.0,
            escape(op)
        );
        for (i, t) in targets.iter().enumerate() {
            let c = PALETTE[i % PALETTE.len()];
            if let Some(st) = stats(op, t) {
                let mid = y + ROW / 2.0;
                let _ = write!(
                    o,
                    r#"<g><title>{} {}: min {} p50 {} p90 {} p99 {} max {} ms (n={})</title><line x1="{:.1}" y1="{mid:.1}" x2="{:.1}" y2="{mid:.1}" stroke="{c}" stroke-width="1"/><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{c}" fill-opacity="0.45"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="3"/></g><text x="{}" y="{:.1}">{}</text>"#,
                    escape(t),
                    escape(op),
                    super::fmt_ms(st.min_ms),
                    super::fmt_ms(st.p50_ms),
                    super::fmt_ms(st.p90_ms),
                    super::fmt_ms(st.p99_ms),
                    super::fmt_ms(st.max_ms),
                    st.count,
                    x(st.min_ms),
                    x(st.max_ms),
                    x(st.p50_ms),
                    y + 3.0,
                    (x(st.p99_ms) - x(st.p50_ms)).max(1.0),
                    ROW - 6.0,
                    x(st.p50_ms),
                    y + 1.0,
                    x(st.p50_ms),
                    y + ROW - 1.0,
                    WIDTH - RIGHT + 6.0,
                    mid + 4.0,
                    super::fmt_ms(st.p50_ms)
                );
            }
            y += ROW;
        }
        y += GAP;
    }
    o.push_str("</svg>");
    o
}

/// Churn or soak throughput: lifecycles completed per second, one line per target.
pub fn throughput_chart(s: &ScenarioResult, targets: &[String]) -> String {
    let (w, h, left, bottom_pad, top) = (900.0, 300.0, 60.0, 40.0, 30.0);
    let series: Vec<(usize, &Vec<u32>)> = targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            s.targets
                .iter()
                .find(|x| &x.target == t)
                .map(|x| (i, &x.throughput_per_second))
        })
        .collect();
    let max_len = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let max_v = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let pw = w - left - 20.0;
    let ph = h - top - bottom_pad;
    let x = |i: usize| left + i as f64 / (max_len - 1) as f64 * pw;
    let y = |v: f64| top + ph - v / max_v * ph;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11" role="img"><title>{} throughput (pod lifecycles per second)</title>"#,
        escape(&s.scenario)
    );
    for (i, t) in targets.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let lx = left + i as f64 * 150.0;
        let _ = write!(
            o,
            r#"<rect x="{lx}" y="8" width="12" height="10" fill="{c}"/><text x="{}" y="17">{}</text>"#,
            lx + 16.0,
            escape(t)
        );
    }
    for k in 0..=4 {
        let v = max_v * k as f64 / 4.0;
        let _ = write!(
            o,
            r##"<line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            y(v),
            left + pw,
            y(v),
            left - 6.0,
            y(v) + 4.0
        );
    }
    let _ = write!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds of churn</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">lifecycles/s</text>"#,
        left + pw / 2.0,
        h - 8.0,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (i, v) in series {
        if v.is_empty() {
            continue;
        }
        let c = PALETTE[i % PALETTE.len()];
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .map(|(k, n)| format!("{:.1},{:.1}", x(k), y(*n as f64)))
            .collect();
        let _ = write!(
            o,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_chart_has_a_row_per_operation_and_target() {
        let r = crate::report::sample::result();
        let names: Vec<String> = r.targets.iter().map(|t| t.name.clone()).collect();
        let svg = latency_chart(r.scenario("pod-container").unwrap(), &names);
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        // 2 operations x 2 targets = 4 bars.
        assert_eq!(svg.matches("<rect x=").count() - names.len(), 4, "{svg}");
        assert!(
            svg.contains("docker-shim RunPodSandbox: min 400 p50 404"),
            "{svg}"
        );
    }

    #[test]
    fn throughput_chart_draws_the_churn_line() {
        let r = crate::report::sample::result();
        let names: Vec<String> = r.targets.iter().map(|t| t.name.clone()).collect();
        let svg = throughput_chart(r.scenario("churn").unwrap(), &names);
        assert_eq!(svg.matches("<polyline").count(), 1, "{svg}");
        assert!(svg.contains("points=\""));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
    }
}
