//! What `stats` and `statsp` share, as crictl's stats and statsp do it: list the stats (sorted
//! by ID); with `-o json|yaml` print that answer; as a table, list again `--seconds` later and
//! turn each (sample, the same object's earlier sample) pair into a row, CPU % from the
//! difference ([`cpu_percent`]); with `-w`, clear the screen and show it again every half
//! second until Ctrl-C ([`show`]).

use std::{collections::HashMap, time::Duration};

use anycri::{Error, ErrorKind, Result, api::*};

use crate::{Ctx, Format, output};

/// One kind of stats the loop samples: a container's or a pod's.
pub trait Sample: Sized {
    /// The CRI answer that lists them, printed for `-o json|yaml`.
    type Answer: serde::Serialize;

    /// The ID samples are matched (and sorted) by.
    fn id(&self) -> &str;

    /// The CRI answer listing `stats`.
    fn answer(stats: Vec<Self>) -> Self::Answer;
}

impl Sample for ContainerStats {
    type Answer = ListContainerStatsResponse;

    fn id(&self) -> &str {
        self.attributes.as_ref().map_or("", |a| a.id.as_str())
    }

    fn answer(stats: Vec<Self>) -> Self::Answer {
        ListContainerStatsResponse { stats }
    }
}

impl Sample for PodSandboxStats {
    type Answer = ListPodSandboxStatsResponse;

    fn id(&self) -> &str {
        self.attributes.as_ref().map_or("", |a| a.id.as_str())
    }

    fn answer(stats: Vec<Self>) -> Self::Answer {
        ListPodSandboxStatsResponse { stats }
    }
}

/// Show the stats `list` gives (again and again with `watch`): structured in `ctx.format`, or
/// as a table under `header` with one row per sample that `row(now, earlier)` keeps (`None`
/// leaves it out; `earlier` is `None` for an object that appeared during the sample).
pub async fn show<S, L, Fut, R, const N: usize>(
    ctx: &Ctx,
    header: [&str; N],
    seconds: u64,
    watch: bool,
    list: L,
    row: R,
) -> Result<i32>
where
    S: Sample,
    L: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<S>>>,
    R: Fn(&S, Option<&S>) -> Result<Option<[String; N]>>,
{
    let sorted = || async {
        let mut stats = list().await?;
        stats.sort_by(|a, b| a.id().cmp(b.id()));
        Ok::<_, Error>(stats)
    };
    display(watch, || async {
        let first = sorted().await?;
        if ctx.format != Format::Table {
            return output::print_structured(ctx.format, &S::answer(first));
        }
        let old: HashMap<String, S> = first.into_iter().map(|s| (s.id().to_owned(), s)).collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let mut table = output::Table::new(header);
        for s in sorted().await? {
            if let Some(cells) = row(&s, old.get(s.id()))? {
                table.row(cells);
            }
        }
        if watch {
            clear_screen();
        }
        table.print();
        Ok(())
    })
    .await
}

/// Show once, or with `watch` again every half second (as crictl's `-w`) until Ctrl-C.
async fn display<F, Fut>(watch: bool, mut show: F) -> Result<i32>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if !watch {
        show().await?;
        return Ok(0);
    }
    // Registered now, not at the first poll: a Ctrl-C during the first sample counts.
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| Error::with_source(ErrorKind::Internal, "listening for Ctrl-C", e))?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(0),
            shown = show() => shown?,
        }
        tokio::select! {
            _ = interrupt.recv() => return Ok(0),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Move to the top of a cleared terminal, before a table shown again in watch mode.
fn clear_screen() {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    if write!(stdout, "\x1b[2J\x1b[H").is_err() {
        std::process::exit(0);
    }
}

/// CPU use between two samples in percent of one core, as crictl computes it: the growth of
/// `usage_core_nano_seconds` over the time between the samples' timestamps. `None` when the
/// runtime did not move the timestamp (crictl's "cpu stat is not updated during sample").
pub fn cpu_percent(old: Option<&CpuUsage>, new: Option<&CpuUsage>) -> Option<f64> {
    let usage = |c: Option<&CpuUsage>| {
        c.and_then(|c| c.usage_core_nano_seconds)
            .map_or(0, |v| v.value)
    };
    let now = usage(new);
    if now == 0 {
        return Some(0.0);
    }
    let elapsed = new.map_or(0, |c| c.timestamp) - old.map_or(0, |c| c.timestamp);
    if elapsed == 0 {
        return None;
    }
    Some(now.saturating_sub(usage(old)) as f64 / elapsed as f64 * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_over_the_sample() {
        let cpu = |ts: i64, used: u64| CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: Some(UInt64Value { value: used }),
            ..Default::default()
        };
        let pct = |old: &CpuUsage, new: &CpuUsage| cpu_percent(Some(old), Some(new));
        // Half a core over one second.
        assert_eq!(
            pct(&cpu(1_000_000_000, 10), &cpu(2_000_000_000, 500_000_010)),
            Some(50.0)
        );
        // Not running: 0, whatever the timestamps.
        assert_eq!(pct(&cpu(5, 0), &cpu(5, 0)), Some(0.0));
        // Running but not resampled: no figure.
        assert_eq!(pct(&cpu(5, 10), &cpu(5, 20)), None);
    }
}
