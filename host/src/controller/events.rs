//! Kubernetes Events: every user-visible action and every refusal.

use kube::Resource;
use kube::runtime::events::{Event, EventType};
use tracing::{info, warn};

use super::Context;

/// Publishes a Normal Event on `object` and logs it. A failure to publish
/// is logged, never fatal: Events are a report, not state.
pub async fn normal<K>(ctx: &Context, object: &K, reason: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    info!(
        reason,
        note = note.as_str(),
        object = object.meta().name.as_deref(),
        "event"
    );
    publish(ctx, object, EventType::Normal, reason, note).await;
}

/// Publishes a Warning Event on `object` and logs it.
pub async fn warning<K>(ctx: &Context, object: &K, reason: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    warn!(
        reason,
        note = note.as_str(),
        object = object.meta().name.as_deref(),
        "event"
    );
    publish(ctx, object, EventType::Warning, reason, note).await;
}

async fn publish<K>(ctx: &Context, object: &K, type_: EventType, reason: &str, note: String)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note, 1024)),
        action: reason.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        warn!(error = %e, reason, "could not publish an Event");
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
