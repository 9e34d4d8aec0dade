//! `anycri events` and `anycri watch`: container and pod state changes as they happen.
//! `events` is crictl's `events` — the runtime's own `GetContainerEvents` stream, which
//! fails on runtimes without one; `watch` works on every runtime through
//! [`anycri::watch`] (the event stream where there is one, relisting where there is not,
//! and a relist after every gap). Both print a line per event: a fixed-width table for
//! people, or one JSON object per line (`-o json`) for machines.

use std::sync::Arc;
use std::time::Duration;

use anycri::api::{ContainerEventResponse, GetEventsRequest};
use anycri::watch::{EventOrigin, WatchEvent, WatchOptions};
use anycri::{Error, RuntimeService};
use futures::StreamExt;

use crate::Format;

/// What `anycri watch` takes besides the endpoint.
#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// Relist period when the runtime has no event stream.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub relist_period: Duration,
    /// Never use the runtime's event stream; always relist.
    #[arg(long)]
    pub relist_only: bool,
    /// Also report what exists when the watch starts.
    #[arg(long)]
    pub initial: bool,
    /// Leave out the pod and container statuses (one call fewer per event; JSON only).
    #[arg(long)]
    pub no_statuses: bool,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<usize>,
}

/// `anycri events`: the runtime's own event stream.
pub async fn events(
    rt: &Arc<dyn RuntimeService>,
    format: Format,
    count: Option<usize>,
) -> anycri::Result<()> {
    let mut stream = rt
        .get_container_events(GetEventsRequest {})
        .await
        .map_err(|e| {
            if e.kind() == anycri::ErrorKind::Unimplemented {
                Error::new(
                    anycri::ErrorKind::Unimplemented,
                    format!("{e}; `anycri watch` follows any runtime by relisting"),
                )
            } else {
                e
            }
        })?;
    header(format, false);
    let mut seen = 0;
    while let Some(event) = stream.next().await {
        print_event(&event?, None, format)?;
        seen += 1;
        if count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}

/// `anycri watch`: any runtime, events or relisting.
pub async fn watch(
    rt: &Arc<dyn RuntimeService>,
    format: Format,
    args: WatchArgs,
) -> anycri::Result<()> {
    let options = WatchOptions::default()
        .relist_period(args.relist_period)
        .use_runtime_events(!args.relist_only)
        .initial_events(args.initial)
        .statuses(!args.no_statuses);
    let mut stream = anycri::watch(rt.clone(), options).await?;
    header(format, true);
    let mut seen = 0;
    while let Some(event) = stream.next().await {
        let WatchEvent {
            event,
            pod_sandbox_id,
            is_sandbox,
            origin,
            ..
        } = event?;
        print_event(&event, Some((&pod_sandbox_id, is_sandbox, origin)), format)?;
        seen += 1;
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    Ok(())
}

fn header(format: Format, watch: bool) {
    if format == Format::Table {
        if watch {
            out!(
                "{:<30}  {:<9}  {:<13}  {:<13}  {:<7}  {}",
                "TIME",
                "KIND",
                "CONTAINER",
                "POD",
                "ORIGIN",
                "NAME"
            );
        } else {
            out!(
                "{:<30}  {:<9}  {:<13}  {:<13}  {}",
                "TIME",
                "KIND",
                "CONTAINER",
                "POD",
                "NAME"
            );
        }
    }
}

fn print_event(
    event: &ContainerEventResponse,
    watch: Option<(&str, bool, EventOrigin)>,
    format: Format,
) -> anycri::Result<()> {
    let kind = short_kind(event);
    let pod = event
        .pod_sandbox_status
        .as_ref()
        .map(|s| s.id.clone())
        .or_else(|| watch.map(|(pod, _, _)| pod.to_string()))
        .unwrap_or_default();
    if format != Format::Table {
        let mut value = serde_json::to_value(event)
            .map_err(|e| Error::with_source(anycri::ErrorKind::Internal, "encoding JSON", e))?;
        if let Some(map) = value.as_object_mut() {
            // The type by name, as crictl prints it.
            map.insert(
                "container_event_type".into(),
                event.container_event_type().as_str_name().into(),
            );
            if let Some((pod, sandbox, origin)) = watch {
                map.insert("pod_sandbox_id".into(), pod.into());
                map.insert("is_sandbox".into(), sandbox.into());
                map.insert("origin".into(), origin_name(origin).into());
            }
        }
        if format == Format::Yaml {
            // One YAML document per event.
            out!("---");
            return crate::output::print_structured(format, &value);
        }
        let line = serde_json::to_string(&value)
            .map_err(|e| Error::with_source(anycri::ErrorKind::Internal, "encoding JSON", e))?;
        out!("{line}");
        return Ok(());
    }
    let time = chrono::DateTime::from_timestamp_nanos(event.created_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let name = name_of(event, watch.is_some_and(|(_, sandbox, _)| sandbox));
    let id = crate::output::short_id(&event.container_id);
    let pod = crate::output::short_id(&pod);
    match watch {
        Some((_, _, origin)) => out!(
            "{time:<30}  {kind:<9}  {id:<13}  {pod:<13}  {:<7}  {name}",
            origin_name(origin)
        ),
        None => out!("{time:<30}  {kind:<9}  {id:<13}  {pod:<13}  {name}"),
    }
    Ok(())
}

/// CREATED, STARTED, STOPPED or DELETED.
fn short_kind(event: &ContainerEventResponse) -> &'static str {
    use anycri::api::ContainerEventType as T;
    match event.container_event_type() {
        T::ContainerCreatedEvent => "CREATED",
        T::ContainerStartedEvent => "STARTED",
        T::ContainerStoppedEvent => "STOPPED",
        T::ContainerDeletedEvent => "DELETED",
    }
}

fn origin_name(origin: EventOrigin) -> &'static str {
    match origin {
        EventOrigin::Runtime => "runtime",
        EventOrigin::Relist => "relist",
        _ => "other",
    }
}

/// The container's name from the statuses the event carries, else the pod's.
fn name_of(event: &ContainerEventResponse, sandbox: bool) -> String {
    let pod = event
        .pod_sandbox_status
        .as_ref()
        .and_then(|s| s.metadata.as_ref())
        .map(|m| format!("{}/{}", m.namespace, m.name));
    if sandbox
        || event
            .pod_sandbox_status
            .as_ref()
            .is_some_and(|s| s.id == event.container_id)
    {
        return pod.map(|p| format!("pod {p}")).unwrap_or_default();
    }
    let container = event
        .containers_statuses
        .iter()
        .find(|c| c.id == event.container_id)
        .and_then(|c| c.metadata.as_ref())
        .map(|m| m.name.clone());
    match (container, pod) {
        (Some(c), Some(p)) => format!("{c} in {p}"),
        (Some(c), None) => c,
        (None, Some(p)) => format!("in {p}"),
        (None, None) => String::new(),
    }
}
