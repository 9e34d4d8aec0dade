//! `anycri ps`: list containers as crictl ps does (running ones unless `-a`; pod and label
//! filters), as a table or, with `-o json|yaml`, the CRI's Container messages.

use anycri::{Result, api::*};
use clap::Args;

use crate::{Ctx, Format, output, output::Table};

/// `anycri ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Only containers of this pod.
    #[arg(short = 'p', long)]
    pub pod: Option<String>,
    /// Only containers with this label (key=value); repeatable.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
}

/// List the containers.
pub async fn run(ctx: &Ctx, args: PsArgs) -> Result<i32> {
    let filter = ContainerFilter {
        pod_sandbox_id: args.pod.unwrap_or_default(),
        label_selector: crate::parse_labels(&args.labels)?,
        state: (!args.all).then_some(ContainerStateValue {
            state: ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    let containers = ctx
        .runtime
        .list_containers(ListContainersRequest {
            filter: Some(filter),
        })
        .await?
        .containers;
    if ctx.format != Format::Table {
        return output::print_structured(ctx.format, &containers).map(|_| 0);
    }
    let mut t = Table::new([
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
    ]);
    for c in containers {
        let m = c.metadata.unwrap_or_default();
        let state = ContainerState::try_from(c.state)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        let image = c.image.map(|i| i.image).unwrap_or_default();
        t.row([
            output::short_id(&c.id),
            output::short_id(&image),
            output::ago(c.created_at),
            state.trim_start_matches("CONTAINER_").to_owned(),
            m.name,
            m.attempt.to_string(),
            output::short_id(&c.pod_sandbox_id),
        ]);
    }
    t.print();
    Ok(0)
}
