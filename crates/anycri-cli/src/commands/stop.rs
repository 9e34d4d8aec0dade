//! `anycri stop ID...` and `anycri stopp ID...`: stop containers (with a grace period) and pod
//! sandboxes, printing each as crictl does once stopped; the first failure ends the command.

use anycri::{Result, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri stop` arguments.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Grace period in seconds.
    #[arg(long, default_value_t = 10)]
    pub grace: i64,
    /// Container IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Stop each container.
pub async fn run(ctx: &Ctx, args: StopArgs) -> Result<i32> {
    for id in args.ids {
        ctx.runtime
            .stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: args.grace,
            })
            .await?;
        out!("{id}");
    }
    Ok(0)
}

/// `anycri stopp` arguments.
#[derive(Debug, Args)]
pub struct StoppArgs {
    /// Pod IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Stop each pod sandbox.
pub async fn stopp(ctx: &Ctx, args: StoppArgs) -> Result<i32> {
    for id in args.ids {
        ctx.runtime
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await?;
        out!("Stopped sandbox {id}");
    }
    Ok(0)
}
