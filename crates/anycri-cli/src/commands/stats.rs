//! `anycri stats [ID]`: containers' resource use, as crictl stats shows it. In a table: two
//! samples `--seconds` apart (CPU % from the difference), memory working set, writable layer
//! bytes and inodes, swap; containers using neither CPU nor memory (not running) only with
//! `-a`. `-o json|yaml`: one ListContainerStats answer (`{"stats": […]}`), sorted by ID.
//! `-w` shows it again every half second until Ctrl-C.

use anycri::{Error, Result, api::*};
use clap::Args;

use super::sample::{Sample, cpu_percent, show};
use crate::{Ctx, output};

/// `anycri stats` flags.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default: only those using CPU or memory, i.e. running).
    #[arg(short, long)]
    pub all: bool,
    /// Only the container whose ID starts with this.
    #[arg(long)]
    pub id: Option<String>,
    /// Only containers of this pod (ID or prefix).
    #[arg(short = 'p', long)]
    pub pod: Option<String>,
    /// Only containers with this label (key=value); repeatable.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Seconds between the two samples CPU use is computed from.
    #[arg(short, long, default_value_t = 1)]
    pub seconds: u64,
    /// Show the figures again every half second until Ctrl-C.
    #[arg(short, long)]
    pub watch: bool,
    /// Container ID (as --id).
    pub container: Option<String>,
}

/// Show the containers' stats.
pub async fn run(ctx: &Ctx, args: StatsArgs) -> Result<i32> {
    let filter = ContainerStatsFilter {
        id: args
            .id
            .clone()
            .or(args.container.clone())
            .unwrap_or_default(),
        pod_sandbox_id: args.pod.clone().unwrap_or_default(),
        label_selector: crate::parse_labels(&args.labels)?,
    };
    let header = [
        "CONTAINER",
        "NAME",
        "CPU %",
        "MEM",
        "DISK",
        "INODES",
        "SWAP",
    ];
    let list = || list(ctx, &filter);
    show(ctx, header, args.seconds, args.watch, list, |s, before| {
        row(s, before, args.all)
    })
    .await
}

async fn list(ctx: &Ctx, filter: &ContainerStatsFilter) -> Result<Vec<ContainerStats>> {
    Ok(ctx
        .runtime
        .list_container_stats(ListContainerStatsRequest {
            filter: Some(filter.clone()),
        })
        .await?
        .stats)
}

/// A container's row; none for one using neither CPU nor memory (unless `all`) or one that
/// appeared during the sample (no figure yet).
fn row(
    s: &ContainerStats,
    before: Option<&ContainerStats>,
    all: bool,
) -> Result<Option<[String; 7]>> {
    let value = |v: Option<UInt64Value>| v.map_or(0, |v| v.value);
    let cpu = value(s.cpu.as_ref().and_then(|c| c.usage_core_nano_seconds));
    let mem = value(s.memory.as_ref().and_then(|m| m.working_set_bytes));
    if !all && cpu == 0 && mem == 0 {
        return Ok(None);
    }
    let Some(before) = before else {
        return Ok(None);
    };
    let percent = cpu_percent(before.cpu.as_ref(), s.cpu.as_ref()).ok_or_else(|| {
        Error::unavailable(format!(
            "the CPU figures of container {} did not change during the sample",
            s.id()
        ))
    })?;
    let layer = s.writable_layer.as_ref();
    Ok(Some([
        output::short_id(s.id()),
        s.attributes
            .as_ref()
            .and_then(|a| a.metadata.as_ref())
            .map_or(String::new(), |m| m.name.clone()),
        format!("{percent:.2}"),
        output::human_size(mem),
        output::human_size(value(layer.and_then(|l| l.used_bytes))),
        value(layer.and_then(|l| l.inodes_used)).to_string(),
        output::human_size(value(s.swap.as_ref().and_then(|w| w.swap_usage_bytes))),
    ]))
}
