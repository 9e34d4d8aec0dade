//! `anycri statsp [ID]`: pods' resource use, as crictl statsp shows it: two samples
//! `--seconds` apart, CPU % and memory working set per pod (pods without figures are left
//! out). `-o json|yaml`: one ListPodSandboxStats answer (`{"stats": […]}`), sorted by ID.
//! `-w` shows it again every half second until Ctrl-C.

use std::{collections::HashMap, time::Duration};

use anycri::{Error, Result, api::*};
use clap::Args;

use super::{clear_screen, cpu_percent, display};
use crate::{Ctx, Format, output};

/// `anycri statsp` flags.
#[derive(Debug, Args)]
pub struct StatspArgs {
    /// Only the pod whose ID starts with this.
    #[arg(long)]
    pub id: Option<String>,
    /// Only pods with this label (key=value); repeatable.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Seconds between the two samples CPU use is computed from.
    #[arg(short, long, default_value_t = 1)]
    pub seconds: u64,
    /// Show the figures again every half second until Ctrl-C.
    #[arg(short, long)]
    pub watch: bool,
    /// Pod ID (as --id).
    pub pod: Option<String>,
}

/// Show the pods' stats.
pub async fn run(ctx: &Ctx, args: StatspArgs) -> Result<i32> {
    let filter = PodSandboxStatsFilter {
        id: args.id.clone().or(args.pod.clone()).unwrap_or_default(),
        label_selector: crate::parse_labels(&args.labels)?,
    };
    display(args.watch, || show(ctx, &args, &filter)).await
}

async fn list(ctx: &Ctx, filter: &PodSandboxStatsFilter) -> Result<Vec<PodSandboxStats>> {
    let mut stats = ctx
        .runtime
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
            filter: Some(filter.clone()),
        })
        .await?
        .stats;
    stats.sort_by(|a, b| id_of(a).cmp(id_of(b)));
    Ok(stats)
}

fn id_of(s: &PodSandboxStats) -> &str {
    s.attributes.as_ref().map_or("", |a| a.id.as_str())
}

/// A pod's CPU and memory figures, from its Linux or Windows stats.
fn usage(s: &PodSandboxStats) -> Result<(Option<CpuUsage>, u64)> {
    match (&s.linux, &s.windows) {
        (Some(_), Some(_)) => Err(Error::unavailable(format!(
            "pod {} has both Linux and Windows stats",
            id_of(s)
        ))),
        (Some(linux), None) => Ok((
            linux.cpu,
            linux
                .memory
                .as_ref()
                .and_then(|m| m.working_set_bytes)
                .map_or(0, |v| v.value),
        )),
        (None, Some(windows)) => Ok((
            windows.cpu.as_ref().map(|c| CpuUsage {
                timestamp: c.timestamp,
                usage_core_nano_seconds: c.usage_core_nano_seconds,
                ..Default::default()
            }),
            windows
                .memory
                .as_ref()
                .and_then(|m| m.working_set_bytes)
                .map_or(0, |v| v.value),
        )),
        (None, None) => Ok((None, 0)),
    }
}

async fn show(ctx: &Ctx, args: &StatspArgs, filter: &PodSandboxStatsFilter) -> Result<()> {
    let first = list(ctx, filter).await?;
    if ctx.format != Format::Table {
        return output::print_structured(ctx.format, &ListPodSandboxStatsResponse { stats: first });
    }
    let old: HashMap<String, PodSandboxStats> = first
        .into_iter()
        .map(|s| (id_of(&s).to_owned(), s))
        .collect();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let mut table = output::Table::new(["POD", "POD ID", "CPU %", "MEM"]);
    for s in list(ctx, filter).await? {
        let (cpu, mem) = usage(&s)?;
        let used = cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map_or(0, |v| v.value);
        if used == 0 && mem == 0 {
            continue;
        }
        let Some(before) = old.get(id_of(&s)) else {
            continue;
        };
        let (old_cpu, _) = usage(before)?;
        let percent = cpu_percent(old_cpu.as_ref(), cpu.as_ref()).ok_or_else(|| {
            Error::unavailable(format!(
                "the CPU figures of pod {} did not change during the sample",
                id_of(&s)
            ))
        })?;
        table.row([
            s.attributes
                .as_ref()
                .and_then(|a| a.metadata.as_ref())
                .map_or(String::new(), |m| m.name.clone()),
            output::short_id(id_of(&s)),
            format!("{percent:.2}"),
            output::human_size(mem),
        ]);
    }
    if args.watch {
        clear_screen();
    }
    table.print();
    Ok(())
}
