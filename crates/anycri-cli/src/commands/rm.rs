//! `anycri rm ID...` and `anycri rmp ID...`: remove containers (running ones only with `-f`,
//! which stops them first) and pod sandboxes with their containers, printing each as crictl
//! does once removed; the first failure ends the command.

use anycri::{Error, Result, RuntimeServiceExt, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri rm` flags.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop running containers first.
    #[arg(short, long)]
    pub force: bool,
    /// Container IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Remove each container.
pub async fn run(ctx: &Ctx, args: RmArgs) -> Result<i32> {
    let rt = &ctx.runtime;
    for id in args.ids {
        if !args.force {
            let status = rt.get_container_status(&id).await?;
            if status.state == ContainerState::ContainerRunning as i32 {
                return Err(Error::failed_precondition(format!(
                    "container {id} is running; stop it first or use -f"
                )));
            }
        } else {
            rt.stop_container(StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await?;
        }
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await?;
        out!("{id}");
    }
    Ok(0)
}

/// `anycri rmp` arguments.
#[derive(Debug, Args)]
pub struct RmpArgs {
    /// Pod IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Remove each pod sandbox with its containers.
pub async fn rmp(ctx: &Ctx, args: RmpArgs) -> Result<i32> {
    for id in args.ids {
        // An unknown pod is an error here, even though removal itself is idempotent.
        ctx.runtime.get_pod_status(&id).await?;
        ctx.runtime.remove_pod_with_containers(&id).await?;
        out!("Removed sandbox {id}");
    }
    Ok(0)
}
