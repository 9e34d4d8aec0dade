//! `anycri imagefsinfo`: the runtime's ImageFsInfo, as crictl imagefsinfo shows it: JSON by
//! default (`{"status": …}`), YAML with `-o yaml`, and with `-o table` each container and
//! image filesystem's timestamp, used bytes, inodes and mount point.

use anycri::{Result, api::*};

use crate::{Ctx, Format, output};

/// Print the image filesystem info; `explicit` is the `-o` the user gave, if any.
pub async fn run(ctx: &Ctx, explicit: Option<Format>) -> Result<i32> {
    let info = ctx
        .images
        .image_fs_info(ImageFsInfoRequest::default())
        .await?;
    let format = explicit.unwrap_or(Format::Json);
    if format != Format::Table {
        output::print_structured(format, &serde_json::json!({ "status": info }))?;
        return Ok(0);
    }
    print_filesystems("Container", &info.container_filesystems);
    print_filesystems("Image", &info.image_filesystems);
    Ok(0)
}

fn print_filesystems(label: &str, filesystems: &[FilesystemUsage]) {
    out!("{label} Filesystem");
    for (i, fs) in filesystems.iter().enumerate() {
        out!("TimeStamp[{i}]: {}", fs.timestamp);
        out!(
            "Disk[{i}]: {}",
            output::human_size(fs.used_bytes.map_or(0, |v| v.value))
        );
        out!("Inodes[{i}]: {}", fs.inodes_used.map_or(0, |v| v.value));
        out!(
            "Mountpoint[{i}]: {}",
            fs.fs_id.as_ref().map_or("", |f| f.mountpoint.as_str())
        );
    }
}
