//! Kubernetes Events: every user-visible action and every refusal.
//!
//! The controllers' Events go through a queue ([`EventQueue`]) that one
//! task of its own publishes, in the order they were reported: a pass
//! reports and goes on instead of waiting for the apiserver. A switching
//! pass reports up to five (the switch, the pod deleted, two update steps,
//! the new master writable); one after the other they held each step of a
//! rollout's chain back by one apiserver round trip each.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::Context;
use crate::api::Reason;

/// Events waiting to be published before a pass that reports one waits for
/// room: a slow apiserver slows the passes down rather than losing Events.
const QUEUE: usize = 1024;

/// Publishes a Normal Event on `object` and logs it. A failure to publish
/// is logged, never fatal: Events are a report, not state.
pub(crate) async fn normal<K>(ctx: &Context, object: &K, reason: Reason, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = logged(object, EventType::Normal, reason, note);
    ctx.events.push(Fold::Yes, event, object).await;
}

/// Publishes a Warning Event on `object` and logs it.
pub(crate) async fn warning<K>(ctx: &Context, object: &K, reason: Reason, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = logged(object, EventType::Warning, reason, note);
    ctx.events.push(Fold::Yes, event, object).await;
}

/// Publishes a Normal Event that is never folded into an earlier one with
/// the same reason: each pod deletion, master switch and update step is its
/// own Event with its own note (the timeline reads them back). kube's
/// recorder folds Events by reason and object and keeps the first note, so
/// these go through a recorder of their own.
pub(crate) async fn distinct<K>(ctx: &Context, object: &K, reason: Reason, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = logged(object, EventType::Normal, reason, note);
    ctx.events.push(Fold::No, event, object).await;
}

/// Publishes an Event through `recorder` and waits for it (the eviction
/// webhook's: it runs on every replica, outside the controllers' context).
pub(crate) async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: Reason,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    let event = logged(object, type_, reason, note);
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        warn!(error = %e, reason = event.reason, "could not publish an Event");
    }
}

/// Logs the Event and builds it.
fn logged<K>(object: &K, type_: EventType, reason: Reason, note: String) -> Event
where
    K: Resource<DynamicType = ()>,
{
    let name = object.meta().name.as_deref();
    let reason = reason.as_str();
    // Notes may carry what a console or Cartridge said: bounded and
    // stripped of control characters, in the log line as in the Event.
    let note = crate::api::text::message(&note);
    match type_ {
        EventType::Warning => warn!(reason, note = note.as_str(), object = name, "event"),
        EventType::Normal => info!(reason, note = note.as_str(), object = name, "event"),
    }
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        secondary: None,
    }
}

/// Whether kube's recorder may fold the Event into an earlier one with the
/// same reason on the same object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    Yes,
    No,
}

enum Queued {
    /// Boxed: a queue slot is as large as its largest variant.
    Event(Box<Pending>),
    /// Answered once everything queued before it was published.
    Flush(oneshot::Sender<()>),
}

struct Pending {
    fold: Fold,
    event: Event,
    reference: ObjectReference,
}

/// The controllers' Events, published in order by a task of their own.
pub(crate) struct EventQueue {
    tx: mpsc::Sender<Queued>,
}

impl EventQueue {
    /// Starts the task that publishes through `client` as `reporter`; it
    /// ends when the queue is dropped, after publishing what is queued.
    pub(crate) fn start(client: Client, reporter: Reporter) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(rx, client, reporter));
        Self { tx }
    }

    async fn push<K>(&self, fold: Fold, event: Event, object: &K)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = object.object_ref(&());
        let queued = Queued::Event(Box::new(Pending {
            fold,
            event,
            reference,
        }));
        if self.tx.send(queued).await.is_err() {
            warn!("the Event publisher has stopped: an Event was not published");
        }
    }

    /// Waits until every Event queued so far is published (or failed), at
    /// most `timeout`. False when it ran out.
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let (done, published) = oneshot::channel();
        let flushed =
            async { self.tx.send(Queued::Flush(done)).await.is_ok() && published.await.is_ok() };
        tokio::time::timeout(timeout, flushed)
            .await
            .unwrap_or(false)
    }
}

async fn deliver(mut rx: mpsc::Receiver<Queued>, client: Client, reporter: Reporter) {
    let folding = Recorder::new(client.clone(), reporter.clone());
    while let Some(queued) = rx.recv().await {
        match queued {
            Queued::Event(pending) => {
                let Pending {
                    fold,
                    event,
                    reference,
                } = *pending;
                let published = match fold {
                    Fold::Yes => folding.publish(&event, &reference).await,
                    Fold::No => {
                        Recorder::new(client.clone(), reporter.clone())
                            .publish(&event, &reference)
                            .await
                    }
                };
                if let Err(e) = published {
                    warn!(error = %e, reason = event.reason, "could not publish an Event");
                }
            }
            Queued::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use tokio::sync::Semaphore;

    use super::*;

    /// A client whose requests wait for `gate` and are recorded (method and
    /// the Event's note) when let through; each answers 201 with the Event
    /// it was sent, or fails when its note starts with "fail".
    fn gated_client(gate: Arc<Semaphore>, seen: Arc<Mutex<Vec<String>>>) -> Client {
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let (gate, seen) = (gate.clone(), seen.clone());
            async move {
                let permit = gate.acquire().await.map_err(std::io::Error::other)?;
                permit.forget();
                let method = request.method().to_string();
                let body = http_body_util::BodyExt::collect(request.into_body())
                    .await
                    .map_err(std::io::Error::other)?
                    .to_bytes();
                let sent: serde_json::Value =
                    serde_json::from_slice(&body).map_err(std::io::Error::other)?;
                let note = sent["note"].as_str().unwrap_or_default().to_string();
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{method} {note}"));
                if note.starts_with("fail") {
                    return Err(std::io::Error::other(note));
                }
                http::Response::builder()
                    .status(201)
                    .body(kube::client::Body::from(body.to_vec()))
                    .map_err(std::io::Error::other)
            }
        });
        Client::new(service, "ns")
    }

    fn object() -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("storage".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn reporter() -> Reporter {
        Reporter {
            controller: "test".into(),
            instance: None,
        }
    }

    #[tokio::test]
    async fn a_report_does_not_wait_for_the_apiserver_and_events_go_out_in_order() {
        let gate = Arc::new(Semaphore::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = EventQueue::start(gated_client(gate.clone(), seen.clone()), reporter());
        // As a switching pass reports them; folded ones have reasons of
        // their own here, or kube's recorder would fold them into a PATCH.
        let reported = [
            (Fold::No, Reason::MasterSwitched, "switched"),
            (Fold::No, Reason::PodDeleted, "deleted"),
            (Fold::No, Reason::UpdateStep, "step 1"),
            (Fold::No, Reason::UpdateStep, "step 2"),
            (Fold::Yes, Reason::MasterWritable, "writable"),
        ];
        for (fold, reason, note) in reported {
            let event = logged(&object(), EventType::Normal, reason, note.into());
            // Returns while the apiserver answers nothing.
            tokio::time::timeout(Duration::from_secs(5), queue.push(fold, event, &object()))
                .await
                .unwrap_or_else(|_| panic!("reporting {note} waited for the apiserver"));
        }
        assert!(
            !queue.flush(Duration::from_millis(100)).await,
            "flushed while the apiserver answered nothing"
        );
        gate.add_permits(reported.len());
        assert!(queue.flush(Duration::from_secs(5)).await, "not flushed");
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let expected: Vec<String> = reported
            .iter()
            .map(|(_, _, n)| format!("POST {n}"))
            .collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_failed_publish_is_not_fatal_and_the_next_goes_out() {
        let gate = Arc::new(Semaphore::new(100));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let queue = EventQueue::start(gated_client(gate, seen.clone()), reporter());
        for note in ["fail: apiserver refuses", "kept"] {
            let event = logged(
                &object(),
                EventType::Normal,
                Reason::UpdateStep,
                note.into(),
            );
            queue.push(Fold::Yes, event, &object()).await;
        }
        assert!(
            queue.flush(Duration::from_secs(5)).await,
            "a failure stopped the queue"
        );
        assert_eq!(
            *seen.lock().unwrap_or_else(|e| e.into_inner()),
            vec![
                "POST fail: apiserver refuses".to_string(),
                "POST kept".to_string()
            ]
        );
    }
}
