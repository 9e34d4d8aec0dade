//! `anycri inspect ID`: the full (verbose) status of whatever `ID` names, tried in turn as a
//! container, a pod sandbox and an image; printed as JSON (or YAML with `-o yaml`).

use anycri::{Error, ErrorKind, Result, api::*};
use clap::Args;

use crate::{Ctx, output};

/// `anycri inspect` arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Container ID, pod ID or image reference.
    pub id: String,
}

/// Print the status of the container, pod or image `id` names.
pub async fn run(ctx: &Ctx, args: InspectArgs) -> Result<i32> {
    let id = args.id;
    let ctr = ctx
        .runtime
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: true,
        })
        .await;
    match ctr {
        Ok(status) => return output::print_structured(ctx.format, &status).map(|_| 0),
        Err(e) if !e.is_not_found() => return Err(e),
        Err(_) => {}
    }
    let pod = ctx
        .runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.clone(),
            verbose: true,
        })
        .await;
    match pod {
        Ok(status) => return output::print_structured(ctx.format, &status).map(|_| 0),
        Err(e) if !e.is_not_found() => return Err(e),
        Err(_) => {}
    }
    let image = ctx
        .images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: id.clone(),
                ..Default::default()
            }),
            verbose: true,
        })
        .await;
    match image {
        Ok(status) if status.image.is_some() => {
            return output::print_structured(ctx.format, &status).map(|_| 0);
        }
        Ok(_) => {}
        Err(e) if !e.is_not_found() && e.kind() != ErrorKind::InvalidArgument => {
            return Err(e);
        }
        Err(_) => {}
    }
    Err(Error::not_found(format!(
        "no container, pod or image {id:?}"
    )))
}
