//! `anycri runp POD-CONFIG`: run a pod sandbox from a crictl pod config file (JSON or YAML)
//! and print its ID, as crictl runp does. As the kubelet does first, the pod's log directory
//! is created. crictl's `-r` for the runtime handler is `--runtime` here: `-r` is anycri's
//! runtime endpoint everywhere.

use std::time::Duration;

use anycri::{Result, api::*};
use clap::Args;

use super::{config::load_pod_config, with_cancel_timeout};
use crate::Ctx;

/// `anycri runp` flags.
#[derive(Debug, Args)]
pub struct RunpArgs {
    /// Runtime handler to run the pod with (the runtime's names; default: its default).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Deadline of the call (the kubelet's rule: twice this for RunPodSandbox); default: the
    /// global --timeout.
    #[arg(short = 'T', long = "cancel-timeout", value_parser = humantime::parse_duration)]
    pub cancel_timeout: Option<Duration>,
    /// Pod config file: a CRI PodSandboxConfig in JSON or YAML (crictl's pod-config.json).
    pub pod_config: String,
}

/// Run the pod; prints its ID.
pub async fn run(ctx: &Ctx, args: RunpArgs) -> Result<i32> {
    let config = load_pod_config(&args.pod_config)?;
    let runtime = with_cancel_timeout(&ctx.runtime, args.cancel_timeout);
    let id = run_pod(runtime.as_ref(), config, args.runtime.unwrap_or_default()).await?;
    out!("{id}");
    Ok(0)
}

/// RunPodSandbox on `handler`, with the pod's log directory created first (the kubelet's order).
pub async fn run_pod(
    runtime: &dyn anycri::RuntimeService,
    config: PodSandboxConfig,
    handler: String,
) -> Result<String> {
    anycri::kubelet::prepare_pod_sandbox(&config)?;
    Ok(runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: handler,
        })
        .await
        .map_err(|e| e.context("RunPodSandbox"))?
        .pod_sandbox_id)
}
