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
        reason: Some(note.reason),
        note: Some(note.note),
        action: Some(note.action),
        regarding: Some(note.regarding),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.unwrap_or_else(|| controller.to_owned())),
        ..Default::default()
    };
    Api::<Event>::namespaced(client, &namespace).create(&PostParams::default(), &event).await.map(|_| ())
}
