//! `anycri pull IMAGE`: pull an image, with registry credentials from crictl's `--creds` or
//! `--auth`, and print the image's reference as crictl pull does.

use anycri::{Result, api::*};
use clap::Args;

use crate::Ctx;

/// `anycri pull` arguments.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference.
    pub image: String,
    /// Registry credentials `USERNAME[:PASSWORD]` (crictl's `--creds`); never logged.
    #[arg(long, conflicts_with = "auth")]
    pub creds: Option<String>,
    /// Registry credentials as base64 `USERNAME:PASSWORD` (crictl's `--auth`); never logged.
    #[arg(long)]
    pub auth: Option<String>,
}

/// Pull the image.
pub async fn run(ctx: &Ctx, args: PullArgs) -> Result<i32> {
    let auth = match (args.creds, args.auth) {
        (Some(creds), _) => {
            let (username, password) = creds.split_once(':').unwrap_or((&creds, ""));
            Some(AuthConfig {
                username: username.to_owned(),
                password: password.to_owned(),
                ..Default::default()
            })
        }
        (None, Some(auth)) => Some(AuthConfig {
            auth,
            ..Default::default()
        }),
        (None, None) => None,
    };
    let image_ref = ctx
        .images
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: args.image,
                ..Default::default()
            }),
            auth,
            ..Default::default()
        })
        .await?
        .image_ref;
    out!("Image is up to date for {image_ref}");
    Ok(0)
}
