//! The event-latency scenario's probes: each follows a target through `anycri::watch`
//! (one on the runtime's event stream, one relisting at the kubelet's period) and records
//! when each container's STARTED and STOPPED arrived, so the runner can time the delivery
//! from the call that caused it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anycri::RuntimeService;
use anycri::api::ContainerEventType;
use anycri::watch::{EventOrigin, WatchOptions};
use futures::StreamExt;
use tokio::sync::Notify;

/// When an event arrived and where it came from.
type Arrival = (Instant, EventOrigin);

/// One watch over a target, recording arrivals.
#[derive(Debug)]
pub(crate) struct EventProbe {
    /// "events" (the runtime's stream, relisting where there is none) or "relist".
    pub(crate) mode: &'static str,
    seen: Arc<Mutex<HashMap<(String, i32), Arrival>>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventProbe {
    /// Starts watching: on the runtime's events when `events`, else relisting every `period`.
    pub(crate) async fn start(
        runtime: Arc<dyn RuntimeService>,
        events: bool,
        period: Duration,
    ) -> anycri::Result<EventProbe> {
        let options = WatchOptions::default()
            .use_runtime_events(events)
            .relist_period(period)
            // Delivery is measured, not the status calls the kubelet makes afterwards.
            .statuses(false);
        let mut stream = anycri::watch(runtime, options).await?;
        let seen: Arc<Mutex<HashMap<(String, i32), Arrival>>> = Arc::default();
        let notify = Arc::new(Notify::new());
        let task = tokio::spawn({
            let (seen, notify) = (seen.clone(), notify.clone());
            async move {
                while let Some(Ok(event)) = stream.next().await {
                    let key = (event.id().to_owned(), event.kind() as i32);
                    seen.lock()
                        .expect("probe lock")
                        .entry(key)
                        .or_insert((Instant::now(), event.origin));
                    notify.notify_waiters();
                }
            }
        });
        Ok(EventProbe {
            mode: if events { "events" } else { "relist" },
            seen,
            notify,
            task,
        })
    }

    /// Waits until `id`'s `kind` event has arrived (at most `timeout`).
    pub(crate) async fn wait(
        &self,
        id: &str,
        kind: ContainerEventType,
        timeout: Duration,
    ) -> Option<Arrival> {
        let deadline = tokio::time::Instant::now() + timeout;
        let key = (id.to_owned(), kind as i32);
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = self.seen.lock().expect("probe lock").remove(&key) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The operation name for a delivery of `event` that came from `origin`.
    pub(crate) fn op(&self, event: &str, origin: EventOrigin) -> String {
        match (self.mode, origin) {
            ("events", EventOrigin::Runtime) => format!("{event} event (runtime events)"),
            ("events", _) => format!("{event} event (no runtime events: relist)"),
            _ => format!("{event} event (relist)"),
        }
    }
}
