//! `anycri statsp [ID]`: pods' resource use, as crictl statsp shows it: two samples
//! `--seconds` apart, CPU % and memory working set per pod (pods without figures are left
//! out). `-o json|yaml`: one ListPodSandboxStats answer (`{"stats": […]}`), sorted by ID.
//! `-w` shows it again every half second until Ctrl-C.

use anycri::{Error, Result, api::*};
use clap::Args;

use super::sample::{Sample, cpu_percent, show};
use crate::{Ctx, output};

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
    let header = ["POD", "POD ID", "CPU %", "MEM"];
    let list = || list(ctx, &filter);
    show(ctx, header, args.seconds, args.watch, list, row).await
}

async fn list(ctx: &Ctx, filter: &PodSandboxStatsFilter) -> Result<Vec<PodSandboxStats>> {
    Ok(ctx
        .runtime
        .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
            filter: Some(filter.clone()),
        })
        .await?
        .stats)
}

/// A pod's CPU and memory figures, from its Linux or Windows stats.
fn usage(s: &PodSandboxStats) -> Result<(Option<CpuUsage>, u64)> {
    match (&s.linux, &s.windows) {
        (Some(_), Some(_)) => Err(Error::unavailable(format!(
            "pod {} has both Linux and Windows stats",
            s.id()
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

/// A pod's row; none for a pod without figures or one that appeared during the sample.
fn row(s: &PodSandboxStats, before: Option<&PodSandboxStats>) -> Result<Option<[String; 4]>> {
    let (cpu, mem) = usage(s)?;
    let used = cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map_or(0, |v| v.value);
    if used == 0 && mem == 0 {
        return Ok(None);
    }
    let Some(before) = before else {
        return Ok(None);
    };
    let (old_cpu, _) = usage(before)?;
    let percent = cpu_percent(old_cpu.as_ref(), cpu.as_ref()).ok_or_else(|| {
        Error::unavailable(format!(
            "the CPU figures of pod {} did not change during the sample",
            s.id()
        ))
    })?;
    Ok(Some([
        s.attributes
            .as_ref()
            .and_then(|a| a.metadata.as_ref())
            .map_or(String::new(), |m| m.name.clone()),
        output::short_id(s.id()),
        format!("{percent:.2}"),
        output::human_size(mem),
    ]))
}
