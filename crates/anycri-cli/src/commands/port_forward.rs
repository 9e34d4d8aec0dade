//! `anycri port-forward POD [LOCAL:]REMOTE...`: forward local ports to ports in a pod as
//! crictl port-forward does, through the runtime's streaming server, until Ctrl-C.

use anycri::Result;
use clap::Args;

use crate::{Ctx, streaming};

/// `anycri port-forward` arguments.
#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// The local address to listen on (an IP, or localhost).
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// Pod ID.
    pub pod: String,
    /// Ports as [LOCAL:]REMOTE (`:REMOTE` picks a free local port).
    #[arg(required = true)]
    pub ports: Vec<String>,
}

/// Forward the ports until interrupted.
pub async fn run(ctx: &Ctx, args: PortForwardArgs) -> Result<i32> {
    streaming::port_forward(ctx.runtime.clone(), &args.pod, &args.ports, &args.address).await
}
