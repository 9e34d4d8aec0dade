//! `anycri create POD CONTAINER-CONFIG POD-CONFIG`: create a container in a running pod from
//! crictl's config files and print its ID, as crictl create does. The image is pulled first
//! only with `--with-pull` (crictl's default for create). As the kubelet does, the
//! container's log directory is created, `user_specified_image` is set and the kubelet's
//! labels are added; a pod config without a UID takes the pod's own.

use anycri::{Result, RuntimeServiceExt, api::*};
use clap::Args;

use super::{
    ContainerFlags,
    config::{load_container_config, read_pod_config},
    pull_for_container, with_cancel_timeout,
};
use crate::Ctx;

/// `anycri create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Pull and deadline flags, shared with crictl's create and run.
    #[command(flatten)]
    pub flags: ContainerFlags,
    /// The pod sandbox's ID.
    pub pod: String,
    /// Container config file: a CRI ContainerConfig in JSON or YAML.
    pub container_config: String,
    /// The pod's config file, as given to runp (JSON or YAML).
    pub pod_config: String,
}

/// Create the container; prints its ID.
pub async fn run(ctx: &Ctx, args: CreateArgs) -> Result<i32> {
    let config = load_container_config(&args.container_config)?;
    let mut pod_config = read_pod_config(&args.pod_config)?;
    let runtime = with_cancel_timeout(&ctx.runtime, args.flags.cancel_timeout);
    // Without a UID in the file: the one the pod runs with (crictl makes up a new one).
    if let Some(meta) = pod_config.metadata.as_mut()
        && meta.uid.is_empty()
    {
        meta.uid = match runtime.get_pod_status(&args.pod).await {
            Ok(status) => status.metadata.map(|m| m.uid).unwrap_or_default(),
            Err(_) => String::new(),
        };
        if meta.uid.is_empty() {
            meta.uid = anycri::builders::new_uid();
        }
    }
    let id = create_container(
        ctx,
        runtime.as_ref(),
        &args.pod,
        &pod_config,
        config,
        &args.flags,
        false,
    )
    .await?;
    out!("{id}");
    Ok(0)
}

/// Pull (when asked or by default), then CreateContainer the kubelet's way; returns the ID.
pub async fn create_container(
    ctx: &Ctx,
    runtime: &dyn anycri::RuntimeService,
    pod_id: &str,
    pod_config: &PodSandboxConfig,
    config: ContainerConfig,
    flags: &ContainerFlags,
    pull_by_default: bool,
) -> Result<String> {
    if flags.pull(pull_by_default) {
        pull_for_container(ctx.images.as_ref(), &config, pod_config, flags).await?;
    }
    runtime
        .create_container_in(pod_id, pod_config, config)
        .await
        .map_err(|e| e.context("CreateContainer"))
}
