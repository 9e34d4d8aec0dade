//! `anycri start ID...`: start created containers, printing each ID once started, as crictl
//! start does; the first failure ends the command.

use anycri::{Result, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri start` arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Container IDs.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// Start each container.
pub async fn run(ctx: &Ctx, args: StartArgs) -> Result<i32> {
    for id in args.ids {
        ctx.runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(|e| e.context(format!("starting container {id}")))?;
        out!("{id}");
    }
    Ok(0)
}
