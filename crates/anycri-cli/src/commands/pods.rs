//! `anycri pods`: list pod sandboxes as crictl pods does (ID prefix and label filters), as
//! a table or, with `-o json|yaml`, the CRI's PodSandbox messages.

use anycri::{Result, api::*};
use clap::Args;

use crate::{Ctx, Format, output, output::Table};

/// `anycri pods` flags.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Only pods whose ID starts with this.
    #[arg(long)]
    pub id: Option<String>,
    /// Only pods with this label (key=value); repeatable.
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
}

/// List the pods.
pub async fn run(ctx: &Ctx, args: PodsArgs) -> Result<i32> {
    let filter = PodSandboxFilter {
        id: args.id.unwrap_or_default(),
        label_selector: crate::parse_labels(&args.labels)?,
        ..Default::default()
    };
    let items = ctx
        .runtime
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await?
        .items;
    if ctx.format != Format::Table {
        return output::print_structured(ctx.format, &items).map(|_| 0);
    }
    let mut t = Table::new([
        "POD ID",
        "CREATED",
        "STATE",
        "NAME",
        "NAMESPACE",
        "ATTEMPT",
        "RUNTIME",
    ]);
    for p in items {
        let m = p.metadata.unwrap_or_default();
        let state = PodSandboxState::try_from(p.state)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        t.row([
            output::short_id(&p.id),
            output::ago(p.created_at),
            state.trim_start_matches("SANDBOX_").to_owned(),
            m.name,
            m.namespace,
            m.attempt.to_string(),
            if p.runtime_handler.is_empty() {
                "(default)".into()
            } else {
                p.runtime_handler
            },
        ]);
    }
    t.print();
    Ok(0)
}
