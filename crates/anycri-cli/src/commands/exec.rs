//! `anycri exec ID -- CMD...`: run a command in a container. By default it streams, as
//! crictl exec does (stdin with `-i`, a terminal with `-t`, through the runtime's streaming
//! server); `--sync` runs it with ExecSync and prints its output when it ends. The exit code
//! is the command's. `anycri docker exec` comes here too.

use std::time::Duration;

use anycri::{Result, RuntimeServiceExt};
use clap::Args;

use crate::{Ctx, streaming};

/// `anycri exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run synchronously (ExecSync) and print the output when the command ends.
    #[arg(short, long)]
    pub sync: bool,
    /// Forward stdin to the command.
    #[arg(short = 'i', long, conflicts_with = "sync")]
    pub interactive: bool,
    /// Allocate a terminal: the local one goes raw and its size follows.
    #[arg(short, long, conflicts_with = "sync")]
    pub tty: bool,
    /// With --sync: kill the command after this long (0: no limit).
    #[arg(long = "exec-timeout", default_value = "0s", value_parser = humantime::parse_duration)]
    pub exec_timeout: Duration,
    /// Container ID.
    pub id: String,
    /// Command and arguments.
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

/// Run the command; its exit code is the answer.
pub async fn run(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    let rt = ctx.runtime.as_ref();
    if !args.sync {
        return streaming::exec(rt, &args.id, &args.cmd, args.interactive, args.tty).await;
    }
    let cmd: Vec<&str> = args.cmd.iter().map(String::as_str).collect();
    let out = rt.exec_collect(&args.id, &cmd, args.exec_timeout).await?;
    use std::io::Write;
    std::io::stdout().write_all(&out.stdout).ok();
    std::io::stderr().write_all(&out.stderr).ok();
    Ok(out.exit_code)
}
