//! `anycri images`: list images as crictl images does, one row per tag (an untagged image
//! shows its repository from its digest, tag `<none>`), or the CRI's Image messages with
//! `-o json|yaml`.

use anycri::{Result, api::*};

use crate::{Ctx, Format, output, output::Table};

/// List the images.
pub async fn run(ctx: &Ctx) -> Result<i32> {
    let images = ctx
        .images
        .list_images(ListImagesRequest::default())
        .await?
        .images;
    if ctx.format != Format::Table {
        return output::print_structured(ctx.format, &images).map(|_| 0);
    }
    let mut t = Table::new(["IMAGE", "TAG", "IMAGE ID", "SIZE"]);
    for img in images {
        let id = output::short_id(&img.id);
        let size = output::size(img.size);
        if img.repo_tags.is_empty() {
            let repo = img
                .repo_digests
                .first()
                .and_then(|d| d.split('@').next())
                .unwrap_or("<none>");
            t.row([repo.to_owned(), "<none>".into(), id.clone(), size.clone()]);
        }
        for tag in &img.repo_tags {
            let (repo, tag) = output::split_tag(tag);
            t.row([repo.to_owned(), tag.to_owned(), id.clone(), size.clone()]);
        }
    }
    t.print();
    Ok(0)
}
