//! `anycri run CONTAINER-CONFIG POD-CONFIG`: run a pod, pull the image (unless `--no-pull`),
//! create and start the container in it, and print the container's ID, as crictl run does.
//! Unlike crictl, a failure after the pod ran removes the pod again, so nothing is left half
//! made.

use anycri::{Result, RuntimeServiceExt, api::*};
use clap::Args;

use super::{
    ContainerFlags,
    config::{load_container_config, load_pod_config},
    create::create_container,
    runp::run_pod,
    with_cancel_timeout,
};
use crate::Ctx;

/// `anycri run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pull and deadline flags, shared with crictl's create and run.
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// Runtime handler to run the pod with (crictl's `-r`; in anycri `-r` is the endpoint).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Container config file: a CRI ContainerConfig in JSON or YAML.
    pub container_config: String,
    /// Pod config file: a CRI PodSandboxConfig in JSON or YAML.
    pub pod_config: String,
}

/// Run the pod and its container; prints the container's ID.
pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<i32> {
    let config = load_container_config(&args.container_config)?;
    let pod_config = load_pod_config(&args.pod_config)?;
    let runtime = with_cancel_timeout(&ctx.runtime, args.flags.cancel_timeout);
    let pod_id = run_pod(
        runtime.as_ref(),
        pod_config.clone(),
        args.runtime.unwrap_or_default(),
    )
    .await?;
    let started = async {
        let id = create_container(
            ctx,
            runtime.as_ref(),
            &pod_id,
            &pod_config,
            config,
            &args.flags,
            true,
        )
        .await?;
        runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .map_err(|e| e.context(format!("starting container {id}")))?;
        Ok::<_, anycri::Error>(id)
    }
    .await;
    match started {
        Ok(id) => {
            out!("{id}");
            Ok(0)
        }
        Err(e) => {
            if let Err(cleanup) = ctx.runtime.remove_pod_with_containers(&pod_id).await {
                tracing::warn!(pod = %pod_id, error = %cleanup, "removing the pod after the failure");
            }
            Err(e)
        }
    }
}
