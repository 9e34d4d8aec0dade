//! `anycri version`: the runtime's Version answer in crictl's four lines (`-o json|yaml`: the
//! VersionResponse). anycri's own version is `anycri --version`.

use anycri::{Result, api::*};

use crate::{Ctx, Format, output::print_structured};

/// The CRI API version this client speaks.
const CRI_VERSION: &str = "v1";

/// Print the runtime's version.
pub async fn run(ctx: &Ctx) -> Result<i32> {
    let version = ctx
        .runtime
        .version(VersionRequest {
            version: CRI_VERSION.into(),
        })
        .await?;
    if ctx.format != Format::Table {
        print_structured(ctx.format, &version)?;
        return Ok(0);
    }
    // crictl's lines: the label, then its value after a blank.
    out!("Version:  {}", version.version);
    out!("RuntimeName:  {}", version.runtime_name);
    out!("RuntimeVersion:  {}", version.runtime_version);
    out!("RuntimeApiVersion:  {}", version.runtime_api_version);
    Ok(0)
}
