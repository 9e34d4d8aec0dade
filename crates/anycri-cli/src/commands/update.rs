//! `anycri update ID...`: change running containers' Linux resources, as crictl update does,
//! printing each ID once updated. Like crictl, every flag left out goes as 0 (or empty), which
//! runtimes read as "not given"; `--cpu-count` and `--cpu-maximum` are crictl's Windows-only
//! flags, accepted and ignored (with a warning) on Linux.

use anycri::{Result, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// (Windows only; ignored here) number of CPUs.
    #[arg(long)]
    pub cpu_count: Option<i64>,
    /// (Windows only; ignored here) CPU share in percent × 100.
    #[arg(long)]
    pub cpu_maximum: Option<i64>,
    /// CFS period in microseconds (0: the system's default).
    #[arg(long, default_value_t = 0)]
    pub cpu_period: i64,
    /// CFS quota in microseconds: CPU time allowed per period.
    #[arg(long, default_value_t = 0)]
    pub cpu_quota: i64,
    /// CPU shares (weight relative to other containers).
    #[arg(long, default_value_t = 0)]
    pub cpu_share: i64,
    /// Memory limit in bytes.
    #[arg(long, default_value_t = 0)]
    pub memory: i64,
    /// CPUs the container may use (e.g. 0-2,4).
    #[arg(long, default_value = "")]
    pub cpuset_cpus: String,
    /// Memory nodes the container may use.
    #[arg(long, default_value = "")]
    pub cpuset_mems: String,
    /// OOM killer score adjustment (-1000 to 1000).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub oom_score_adj: i64,
    /// Container IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

impl UpdateArgs {
    /// The Linux resources the flags name.
    pub fn resources(&self) -> LinuxContainerResources {
        LinuxContainerResources {
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpu_shares: self.cpu_share,
            memory_limit_in_bytes: self.memory,
            oom_score_adj: self.oom_score_adj,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            ..Default::default()
        }
    }
}

/// Update each container.
pub async fn run(ctx: &Ctx, args: UpdateArgs) -> Result<i32> {
    for (flag, given) in [
        ("--cpu-count", args.cpu_count.is_some()),
        ("--cpu-maximum", args.cpu_maximum.is_some()),
    ] {
        if given {
            tracing::warn!("{flag} applies to Windows containers only; ignored");
        }
    }
    let linux = args.resources();
    for id in &args.ids {
        ctx.runtime
            .update_container_resources(UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(linux.clone()),
                windows: None,
                annotations: Default::default(),
            })
            .await
            .map_err(|e| e.context(format!("updating the resources of container {id}")))?;
        out!("{id}");
    }
    Ok(0)
}
