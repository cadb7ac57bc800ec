//! Kubernetes Events: every user-visible action and every refusal.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::{info, warn};

use super::Context;
use crate::api::Reason;

/// Publishes a Normal Event on `object` and logs it. A failure to publish
/// is logged, never fatal: Events are a report, not state.
pub(crate) async fn normal<K>(ctx: &Context, object: &K, reason: Reason, note: String)
where
    K: Resource<DynamicType = ()>,
{
    report(&ctx.recorder, object, EventType::Normal, reason, note).await;
}

/// Publishes a Warning Event on `object` and logs it.
pub(crate) async fn warning<K>(ctx: &Context, object: &K, reason: Reason, note: String)
where
    K: Resource<DynamicType = ()>,
{
    report(&ctx.recorder, object, EventType::Warning, reason, note).await;
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
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    report(&recorder, object, EventType::Normal, reason, note).await;
}

/// Publishes an Event through `recorder` (the eviction webhook's: it runs
/// on every replica, outside the controllers' context).
pub(crate) async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: Reason,
    note: String,
) where
    K: Resource<DynamicType = ()>,
{
    report(recorder, object, type_, reason, note).await;
}

async fn report<K>(recorder: &Recorder, object: &K, type_: EventType, reason: Reason, note: String)
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
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        warn!(error = %e, reason, "could not publish an Event");
    }
}
