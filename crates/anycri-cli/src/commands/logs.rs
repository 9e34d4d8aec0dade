//! `anycri logs ID`: a container's log, read from its CRI log file on this host as crictl
//! logs does (stdout lines to stdout, stderr lines to stderr; `--tail`, `-t`, `-f` following
//! rotation until the container exits). `anycri docker logs` comes here too.

use anycri::Result;
use clap::Args;
use futures::StreamExt as _;

use crate::Ctx;

/// `anycri logs` flags.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Keep printing new lines until the container exits (rotation is followed).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines already in the log.
    #[arg(long)]
    pub tail: Option<usize>,
    /// Container ID.
    pub id: String,
}

/// Print the log.
pub async fn run(ctx: &Ctx, args: LogsArgs) -> Result<i32> {
    let options = anycri::FollowOptions {
        tail: args.tail,
        follow: args.follow,
        ..Default::default()
    };
    let mut lines = anycri::follow_container_log(ctx.runtime.as_ref(), &args.id, options).await?;
    while let Some(line) = lines.next().await {
        let line = line?;
        let text = if args.timestamps {
            format!("{} {}", line.timestamp, line.content)
        } else {
            line.content
        };
        match line.stream {
            anycri::logs::LogStream::Stdout => out!("{text}"),
            anycri::logs::LogStream::Stderr => eprintln!("{text}"),
        }
    }
    Ok(0)
}
