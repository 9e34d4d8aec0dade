//! `anycri rmi IMAGE...`: remove images by ID or reference, as crictl rmi does, printing
//! `Deleted: TAG` for each of the image's tags (its digests when it has none). `-a` removes
//! every image, `-q`/`--prune` every image no container uses (pinned images are kept). The CRI
//! removes an image with all its tags, so naming one tag of several removes them all (a
//! warning lists them).

use std::collections::{BTreeMap, BTreeSet};

use anycri::{Error, Result, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri rmi` flags.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove all images.
    #[arg(short, long)]
    pub all: bool,
    /// Remove all images no container uses (pinned images are kept).
    #[arg(short = 'q', long)]
    pub prune: bool,
    /// Image IDs or references.
    #[arg(required_unless_present_any = ["all", "prune"])]
    pub images: Vec<String>,
}

/// Remove the images.
pub async fn run(ctx: &Ctx, args: RmiArgs) -> Result<i32> {
    // Image → whether to remove it (prune takes back those in use).
    let mut selected: BTreeMap<String, bool> =
        args.images.iter().map(|i| (i.clone(), true)).collect();
    if args.all || args.prune {
        for image in ctx
            .images
            .list_images(ListImagesRequest::default())
            .await?
            .images
        {
            if args.prune && image.pinned {
                tracing::debug!(image = %image.id, "pinned: kept");
                continue;
            }
            selected.insert(image.id, true);
        }
    }
    if args.prune {
        let containers = ctx
            .runtime
            .list_containers(ListContainersRequest::default())
            .await?
            .containers;
        let used: BTreeSet<String> = containers
            .iter()
            .filter_map(|c| c.image.as_ref().map(|i| i.image.clone()))
            .chain(containers.iter().map(|c| c.image_ref.clone()))
            .filter(|i| !i.is_empty())
            .collect();
        for image in used {
            match status(ctx, &image).await {
                Ok(Some(found)) => {
                    selected.insert(found.id, false);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(image = %image, error = %e, "image status"),
            }
        }
    }
    if selected.values().all(|remove| !remove) {
        tracing::info!("no images to remove");
        return Ok(0);
    }
    for (id, remove) in selected {
        if !remove {
            continue;
        }
        let image = match status(ctx, &id).await {
            Ok(Some(image)) => image,
            // On prune, an image gone meanwhile is fine.
            Ok(None) if args.prune => continue,
            Ok(None) => return Err(Error::not_found(format!("no such image {id}"))),
            Err(e) => return Err(e.context(format!("image status of {id}"))),
        };
        let by_tag = !id.starts_with("sha256:") && (id.contains(':') || id.contains('/'));
        if by_tag && image.repo_tags.len() > 1 {
            tracing::warn!(
                "image {id:?} has several tags; removing it removes all of them: {}",
                image.repo_tags.join(", ")
            );
        }
        let removed = ctx
            .images
            .remove_image(RemoveImageRequest {
                image: Some(ImageSpec {
                    image: id.clone(),
                    ..Default::default()
                }),
            })
            .await;
        match removed {
            Ok(_) => {}
            // Races with other removers are not errors on prune.
            Err(_) if args.prune => continue,
            Err(e) => return Err(e.context(format!("removing image {id}"))),
        }
        let names = if image.repo_tags.is_empty() {
            &image.repo_digests
        } else {
            &image.repo_tags
        };
        for name in names {
            out!("Deleted: {name}");
        }
    }
    Ok(0)
}

/// The image `reference` names, if present (a runtime's NotFound is "absent" too).
async fn status(ctx: &Ctx, reference: &str) -> Result<Option<Image>> {
    let answer = ctx
        .images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: reference.to_owned(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await;
    match answer {
        Ok(answer) => Ok(answer.image),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
