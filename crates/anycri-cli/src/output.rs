//! Table output for the CLI: aligned columns like crictl's, short IDs, relative times and
//! human sizes; and the structured output of `-o json|yaml`.

use anycri::{Error, ErrorKind, RuntimeInfo};

use crate::Format;

/// `value` as pretty JSON (`-o json`, and for `-o table` where a command has no table) or as
/// YAML (`-o yaml`).
pub fn print_structured<T: serde::Serialize>(format: Format, value: &T) -> anycri::Result<()> {
    let text = match format {
        Format::Yaml => serde_yaml_ng::to_string(value)
            .map_err(|e| Error::with_source(ErrorKind::Internal, "encoding YAML", e))?,
        Format::Json | Format::Table => serde_json::to_string_pretty(value)
            .map_err(|e| Error::with_source(ErrorKind::Internal, "encoding JSON", e))?,
    };
    out!("{}", text.trim_end());
    Ok(())
}

/// A table printed with aligned columns.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Self {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row<const N: usize>(&mut self, cells: [String; N]) {
        self.rows.push(cells.into());
    }

    pub fn print(&self) {
        let cols = self.rows[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if i + 1 == cols {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}", w = widths[i])
                    }
                })
                .collect();
            out!("{}", line.join("   ").trim_end());
        }
    }
}

/// The first 13 characters of an ID (without `sha256:`), as crictl shows them.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    if id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        id[..13].to_owned()
    } else {
        id.to_owned()
    }
}

/// "5 seconds ago" from Unix nanoseconds.
pub fn ago(nanos: i64) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let secs = ((now - nanos).max(0) / 1_000_000_000) as u64;
    let (n, unit) = match secs {
        0..60 => (secs, "second"),
        60..3600 => (secs / 60, "minute"),
        3600..86400 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Bytes in B/kB/MB/GB (decimal, as crictl shows them).
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes}B"),
        1_000..1_000_000 => format!("{:.3}kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.3}MB", b / 1e6),
        _ => format!("{:.3}GB", b / 1e9),
    }
}

/// Bytes as crictl's stats show them (Docker's go-units `HumanSize`): decimal units, four
/// significant digits, no trailing zeros (`0B`, `12.5kB`, `1.049MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size > 0.0 {
        size.log10().floor() as i32
    } else {
        0
    };
    let decimals = (3 - digits).max(0) as usize;
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

/// Split `repo:tag` at the tag's colon (not a registry port's).
pub fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "<none>"),
    }
}

pub fn print_info(info: &RuntimeInfo) {
    out!(
        "Runtime:      {} {} (CRI {})",
        info.runtime_name,
        info.runtime_version,
        info.runtime_api_version
    );
    out!("Flavour:      {:?}", info.flavour);
    out!(
        "Cgroup driver: {}",
        info.cgroup_driver
            .map(|d| format!("{d:?}"))
            .unwrap_or_else(|| "(not reported)".into())
    );
    let handlers: Vec<String> = info
        .handlers
        .iter()
        .map(|h| {
            if h.name.is_empty() {
                "(default)".to_owned()
            } else {
                h.name.clone()
            }
        })
        .collect();
    out!(
        "Handlers:     {}",
        if handlers.is_empty() {
            "(not reported)".into()
        } else {
            handlers.join(", ")
        }
    );
    for c in &info.conditions {
        let extra = if c.status {
            String::new()
        } else {
            format!(" ({}: {})", c.reason, c.message)
        };
        out!("Condition:    {} = {}{extra}", c.kind, c.status);
    }
    out!("Capabilities:");
    for (name, on) in info.capabilities.entries() {
        match (on, info.capability_reasons.get(name)) {
            (true, _) => out!("  {name:<30} yes"),
            (false, Some(reason)) => out!("  {name:<30} no ({reason})"),
            (false, None) => out!("  {name:<30} no"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(short_id(&"a".repeat(64)), "aaaaaaaaaaaaa");
        assert_eq!(short_id("sha256:".to_owned().as_str()), "");
        assert_eq!(
            split_tag("127.0.0.1:5000/x/y:1.0"),
            ("127.0.0.1:5000/x/y", "1.0")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x/y"),
            ("127.0.0.1:5000/x/y", "<none>")
        );
        assert_eq!(size(1_500_000), "1.500MB");
        assert_eq!(size(12), "12B");
    }

    #[test]
    fn human_sizes_as_go_units() {
        for (bytes, text) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (12_500, "12.5kB"),
            (1 << 20, "1.049MB"),
            (999_950, "1000kB"),
            (123_456_789, "123.5MB"),
            (u64::MAX, "18.45EB"),
        ] {
            assert_eq!(human_size(bytes), text, "{bytes}");
        }
    }
}
