//! `anycri attach ID`: attach to a running container's main process as crictl attach does
//! (stdin with `-i`, a terminal with `-t`), through the runtime's streaming server.

use anycri::Result;
use clap::Args;

use crate::{Ctx, streaming};

/// `anycri attach` flags.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Forward stdin to the process (the container must keep stdin open).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The container has a terminal: the local one goes raw and its size follows.
    #[arg(short, long)]
    pub tty: bool,
    /// Container ID.
    pub id: String,
}

/// Attach to the container's main process until it ends or the session is closed.
pub async fn run(ctx: &Ctx, args: AttachArgs) -> Result<i32> {
    streaming::attach(ctx.runtime.as_ref(), &args.id, args.interactive, args.tty).await
}
