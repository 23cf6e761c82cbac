//! Events (events.k8s.io/v1), published off the reconcile path.
//!
//! kube's `Recorder` keeps every event it sends for six minutes to aggregate repeats into
//! series. Ferrum's events are one per issuance and never repeat, so that cache only holds
//! memory (tens of MiB at 10,000 requests); this publisher creates each event and forgets it.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;
use tracing::warn;

/// Events waiting to be published, at most.
const QUEUE: usize = 4096;
/// Events published at once.
const CONCURRENCY: usize = 8;
/// The longest `note` the apiserver accepts on an events.k8s.io/v1 Event, in bytes.
pub(crate) const MAX_NOTE_BYTES: usize = 1024;
/// The longest `reason` and `action`, in characters.
const MAX_REASON_CHARS: usize = 128;

/// One event to publish.
#[derive(Debug)]
pub(crate) struct Note {
    /// The object it is about.
    pub regarding: ObjectReference,
    /// Warning rather than Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable note.
    pub note: String,
    /// What was done, e.g. `Sign`.
    pub action: String,
}

/// Queues events for a task that publishes them.
#[derive(Clone, Debug)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<Note>,
}

impl Publisher {
    /// Starts the publishing task; events are reported by `controller` (and `instance`).
    pub(crate) fn spawn(client: Client, controller: String, instance: Option<String>) -> Self {
        let (queue, receiver) = mpsc::channel::<Note>(QUEUE);
        let notes = futures::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|n| (n, r)) });
        tokio::spawn(notes.for_each_concurrent(CONCURRENCY, move |note| {
            let (client, controller, instance) = (client.clone(), controller.clone(), instance.clone());
            async move {
                let reason = note.reason.clone();
                if let Err(error) = publish(client, &controller, instance, note).await {
                    warn!(%error, %reason, "could not publish event");
                }
            }
        }));
        Self { queue }
    }

    /// Queues `note`; never waits. If the queue is full the event is dropped and logged.
    pub(crate) fn send(&self, note: Note) {
        if let Err(error) = self.queue.try_send(note) {
            warn!(%error, "event queue full; event dropped");
        }
    }
}

async fn publish(client: Client, controller: &str, instance: Option<String>, note: Note) -> Result<(), kube::Error> {
    let namespace = note.regarding.namespace.clone().unwrap_or_else(|| "default".to_owned());
    let prefix = note.regarding.name.clone().unwrap_or_else(|| "ferrum".to_owned());
    let event = Event {
        // `<object>.<random hex>`, as client-go names events; the prefix is cut to stay a valid
        // name (object names are ASCII: the apiserver validates them).
        metadata: ObjectMeta {
            name: Some(format!("{}.{:016x}", &prefix[..prefix.len().min(200)], rand::random::<u64>())),
            ..Default::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.to_owned()),
        reason: Some(fit(note.reason, MAX_REASON_CHARS)),
        note: Some(fit(note.note, MAX_NOTE_BYTES)),
        action: Some(fit(note.action, MAX_REASON_CHARS)),
        regarding: Some(note.regarding),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.unwrap_or_else(|| controller.to_owned())),
        ..Default::default()
    };
    Api::<Event>::namespaced(client, &namespace).create(&PostParams::default(), &event).await.map(|_| ())
}

/// Cuts `text` to at most `max` bytes on a character boundary, ending in `...` when cut: an
/// event whose note is too long is refused by the apiserver, and a refused event is lost.
pub(crate) fn fit(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_not_dropped() {
        assert_eq!(fit("short".into(), MAX_NOTE_BYTES), "short");
        let exact = "a".repeat(MAX_NOTE_BYTES);
        assert_eq!(fit(exact.clone(), MAX_NOTE_BYTES), exact);
        let cut = fit("é".repeat(1000), MAX_NOTE_BYTES);
        assert!(cut.len() <= MAX_NOTE_BYTES && cut.ends_with("..."), "{}", cut.len());
        assert!(cut.trim_end_matches("...").chars().all(|c| c == 'é'));
    }
}
