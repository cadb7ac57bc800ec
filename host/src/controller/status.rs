//! Conditions from how a pass ended, and writing a status.
//!
//! A pass starts from the object in the watch cache, which may not show the
//! status the previous pass wrote yet. Starting from the older status would
//! repeat work (announce a rollout twice, reset a strategy's state), so the
//! operator remembers what it wrote last ([`Written`]) and a pass starts
//! from that. Only this operator writes these statuses.
//!
//! A write that changes only progress (counts of ready and updated pods,
//! messages) goes out at most once per [`PROGRESS_EVERY`]: during a rollout
//! nearly every pod event changed a count, and those writes were half of a
//! Role's pass time, holding back the passes that act. Anything else (a
//! phase, a condition's status or reason, a switch or removal record, the
//! rollout's state) is written at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::pipeline::{Flow, StepFailed};
use super::{Context, Error};
use crate::api::Reason;
use crate::api::conditions::{self, DEGRADED, NewCondition, PROGRESSING, READY, Status};
use crate::resources::apply::FIELD_MANAGER;

/// Sets Ready, Progressing and Degraded from how the pass ended.
pub(crate) fn set_conditions(
    list: &mut Vec<Condition>,
    flow: &Result<Flow, StepFailed>,
    generation: Option<i64>,
) {
    let now = Timestamp::now();
    let mut put = |type_: &str, status: Status, reason: Reason, message: &str| {
        conditions::set(
            list,
            &NewCondition {
                type_,
                status,
                reason,
                message,
                observed_generation: generation,
            },
            now,
        );
    };
    match flow {
        Ok(Flow::Next) | Ok(Flow::Stop) => {
            put(
                READY,
                Status::True,
                Reason::Converged,
                "everything in the spec is in place",
            );
            put(
                PROGRESSING,
                Status::False,
                Reason::Converged,
                "nothing to do",
            );
            put(DEGRADED, Status::False, Reason::Converged, "no failure");
        }
        Ok(Flow::Wait {
            reason, message, ..
        }) => {
            put(READY, Status::False, *reason, message);
            put(PROGRESSING, Status::True, *reason, message);
            put(DEGRADED, Status::False, Reason::NoFailure, "no failure");
        }
        Err(failed) => {
            let message = failed.to_string();
            put(READY, Status::False, failed.source.reason(), &message);
            put(DEGRADED, Status::True, failed.source.reason(), &message);
        }
    }
}

/// The statuses this operator wrote last, by kind, namespace and name (one
/// entry per object name, so it stays as small as the set of objects),
/// with the UID they were written for (a recreated object starts afresh).
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, Entry>>);

/// A status written: for which UID, what, and when; and the one the last
/// pass computed, which differs while a progress-only write is put off.
#[derive(Debug, Clone)]
struct Entry {
    uid: String,
    sent: serde_json::Value,
    at: Instant,
    latest: serde_json::Value,
}

impl Written {
    fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    fn get<K: Resource<DynamicType = ()>>(&self, object: &K) -> Option<Entry> {
        let uid = object.uid()?;
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&Self::key(object))
            .filter(|entry| entry.uid == uid)
            .cloned()
    }

    /// Records `status` as sent just now.
    fn sent<K: Resource<DynamicType = ()>>(&self, object: &K, status: serde_json::Value) {
        if let Some(uid) = object.uid() {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let entry = Entry {
                uid,
                sent: status.clone(),
                at: Instant::now(),
                latest: status,
            };
            map.insert(Self::key(object), entry);
        }
    }

    /// Records `status` as what the last pass computed (sent or not).
    fn computed<K: Resource<DynamicType = ()>>(&self, object: &K, status: serde_json::Value) {
        let Some(uid) = object.uid() else { return };
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map
            .get_mut(&Self::key(object))
            .filter(|entry| entry.uid == uid)
        {
            entry.latest = status;
        }
    }

    /// The status this operator computed last for `object` (written, or a
    /// progress-only change put off), if any: a pass starts from it rather
    /// than from the watch cache's (see the module). A pass that reports
    /// what changed (an update step's Event) so reports it once.
    pub fn last<K, S>(&self, object: &K) -> Option<S>
    where
        K: Resource<DynamicType = ()>,
        S: DeserializeOwned,
    {
        self.get(object)
            .and_then(|entry| serde_json::from_value(entry.latest).ok())
    }
}

/// How often at most a status that changed only in its progress fields is
/// written.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Paths (JSON names; `*` for every item of a list) of status fields that
/// only report progress.
pub(crate) type Paths = &'static [&'static [&'static str]];

/// What a status write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// Nothing changed: nothing sent.
    Unchanged,
    /// Sent.
    Sent,
    /// Only progress changed, and the last write was less than
    /// [`PROGRESS_EVERY`] ago: put off; a pass within `retry_in` writes it.
    PutOff {
        /// When the object should be looked at again, at the latest.
        retry_in: Duration,
    },
}

/// Whether to send `new`, given what this operator wrote last (and how long
/// ago), whether `new` equals the status the object shows (when nothing was
/// written), and which fields are progress only.
fn decide(
    last: Option<(&serde_json::Value, Duration)>,
    same_as_object: bool,
    new: &serde_json::Value,
    progress: Paths,
) -> Wrote {
    match last {
        Some((last, _)) if last == new => Wrote::Unchanged,
        None if same_as_object => Wrote::Unchanged,
        Some((last, since))
            if !progress.is_empty()
                && since < PROGRESS_EVERY
                && without(last, progress) == without(new, progress) =>
        {
            Wrote::PutOff {
                retry_in: PROGRESS_EVERY - since,
            }
        }
        _ => Wrote::Sent,
    }
}

/// `value` without the fields at `paths`.
fn without(value: &serde_json::Value, paths: Paths) -> serde_json::Value {
    fn remove(value: &mut serde_json::Value, path: &[&str]) {
        match path {
            [] => {}
            ["*", rest @ ..] => {
                if let Some(items) = value.as_array_mut() {
                    for item in items {
                        remove(item, rest);
                    }
                }
            }
            [key] => {
                if let Some(fields) = value.as_object_mut() {
                    fields.remove(*key);
                }
            }
            [key, rest @ ..] => {
                if let Some(child) = value.get_mut(*key) {
                    remove(child, rest);
                }
            }
        }
    }
    let mut value = value.clone();
    for path in paths {
        remove(&mut value, path);
    }
    value
}

/// Writes `status` through the status subresource (server-side apply, the
/// operator's field manager) when it differs from the last one written (or,
/// when none was, from the object's `old`).
pub(crate) async fn write<K, S>(
    ctx: &Context,
    object: &K,
    old: Option<&S>,
    status: &S,
) -> Result<Wrote, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    write_progress_at_most_every(ctx, object, old, status, &[]).await
}

/// [`write`], except that a change of only the fields at `progress` is put
/// off until [`PROGRESS_EVERY`] has passed since the last write.
pub(crate) async fn write_progress_at_most_every<K, S>(
    ctx: &Context,
    object: &K,
    old: Option<&S>,
    status: &S,
    progress: Paths,
) -> Result<Wrote, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    let value = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    let last = ctx.written.get(object);
    let decided = decide(
        last.as_ref().map(|e| (&e.sent, e.at.elapsed())),
        old == Some(status),
        &value,
        progress,
    );
    if decided != Wrote::Sent {
        ctx.written.computed(object, value);
        return Ok(decided);
    }
    let namespace = object.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    ctx.written.sent(object, value);
    Ok(Wrote::Sent)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PROGRESS: Paths = &[
        &["ready"],
        &["replicasets", "*", "ready"],
        &["update", "message"],
        &["conditions", "*", "message"],
    ];

    fn status(ready: i32, message: &str, phase: &str, master: &str) -> serde_json::Value {
        json!({
            "phase": phase,
            "ready": ready,
            "replicasets": [{"name": "rs-0", "ready": ready, "master": master}],
            "update": {"message": message, "done": false},
            "conditions": [{"type": "Ready", "status": "False", "reason": "Updating", "message": message}],
        })
    }

    #[test]
    fn only_progress_waits_for_its_second() {
        let last = status(1, "1/3 pods updated", "Updating", "rs-0-1");
        let soon = Duration::from_millis(300);
        let later = PROGRESS_EVERY + Duration::from_millis(1);
        // (case, last written and how long ago, same as the object's, new, what happens)
        type Case<'a> = (
            &'a str,
            Option<(&'a serde_json::Value, Duration)>,
            bool,
            serde_json::Value,
            Wrote,
        );
        let cases: [Case; 8] = [
            (
                "the same as written",
                Some((&last, soon)),
                false,
                last.clone(),
                Wrote::Unchanged,
            ),
            (
                "counts and messages, soon after a write",
                Some((&last, soon)),
                false,
                status(2, "2/3 pods updated", "Updating", "rs-0-1"),
                Wrote::PutOff {
                    retry_in: PROGRESS_EVERY - soon,
                },
            ),
            (
                "counts and messages, a second after",
                Some((&last, later)),
                false,
                status(2, "2/3 pods updated", "Updating", "rs-0-1"),
                Wrote::Sent,
            ),
            (
                "a master switched",
                Some((&last, soon)),
                false,
                status(2, "2/3 pods updated", "Updating", "rs-0-0"),
                Wrote::Sent,
            ),
            (
                "a phase changed",
                Some((&last, soon)),
                false,
                status(1, "1/3 pods updated", "Ready", "rs-0-1"),
                Wrote::Sent,
            ),
            (
                "a field gone",
                Some((&last, soon)),
                false,
                json!({"phase": "Updating"}),
                Wrote::Sent,
            ),
            (
                "nothing written, as the object shows",
                None,
                true,
                last.clone(),
                Wrote::Unchanged,
            ),
            (
                "nothing written, differs from the object",
                None,
                false,
                status(2, "2/3 pods updated", "Updating", "rs-0-1"),
                Wrote::Sent,
            ),
        ];
        for (case, last, same, new, expected) in cases {
            assert_eq!(decide(last, same, &new, PROGRESS), expected, "{case}");
        }
    }

    #[test]
    fn a_pass_starts_from_what_was_computed_last_and_writes_are_judged_against_what_was_sent() {
        let object = k8s_openapi::api::core::v1::ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some("storage".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                ..kube::api::ObjectMeta::default()
            },
            ..Default::default()
        };
        let written = Written::default();
        let sent = status(1, "1/3 pods updated", "Updating", "rs-0-1");
        let put_off = status(2, "2/3 pods updated", "Updating", "rs-0-1");
        // Nothing computed before a first write.
        written.computed(&object, put_off.clone());
        assert_eq!(written.last::<_, serde_json::Value>(&object), None);
        written.sent(&object, sent.clone());
        written.computed(&object, put_off.clone());
        assert_eq!(written.last::<_, serde_json::Value>(&object), Some(put_off));
        assert_eq!(written.get(&object).map(|e| e.sent), Some(sent));
        // A recreated object (another UID) starts afresh.
        let mut recreated = object.clone();
        recreated.metadata.uid = Some("uid-2".into());
        assert_eq!(written.last::<_, serde_json::Value>(&recreated), None);
    }

    #[test]
    fn without_progress_every_write_goes_out() {
        let last = status(1, "1/3 pods updated", "Updating", "rs-0-1");
        let new = status(2, "2/3 pods updated", "Updating", "rs-0-1");
        let wrote = decide(Some((&last, Duration::ZERO)), false, &new, &[]);
        assert_eq!(wrote, Wrote::Sent);
    }

    #[test]
    fn paths_reach_into_lists_and_leave_the_rest() {
        let value = status(1, "1/3", "Updating", "rs-0-1");
        assert_eq!(
            without(&value, PROGRESS),
            json!({
                "phase": "Updating",
                "replicasets": [{"name": "rs-0", "master": "rs-0-1"}],
                "update": {"done": false},
                "conditions": [{"type": "Ready", "status": "False", "reason": "Updating"}],
            })
        );
        // A path through a missing or scalar field removes nothing.
        let paths: Paths = &[&["absent", "x"], &["phase", "x"], &["ready", "*", "x"]];
        assert_eq!(without(&value, paths), value);
    }
}
