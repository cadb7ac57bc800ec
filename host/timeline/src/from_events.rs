//! A timeline after the fact: built from the Events the operator left on
//! its Roles (`PodDeleted`, `MasterSwitched`, `UpdateStep`) and the pods'
//! current state, for a run nobody recorded.
//!
//! It is coarser than a recording: Kubernetes keeps Events for an hour by
//! default, an aggregated Event stands for its first occurrence only, a pod's Ready time is only known for its current incarnation
//! (and to the second), and a pod's Ready interval before its first
//! deletion is assumed, not observed (its record says so in `detail`).
//! Times before the first Event are moved to the first Event, so a pod that
//! has been Ready for days does not stretch the picture.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ListParams};

use super::record::{about_role, record_from_event};
use super::{Kind, REVISION_LABEL, Record, TimelineError, sort_records};
use crate::api::labels::{MANAGED_BY, MANAGER, REPLICASET, ROLE};

/// Detail of the Ready records this module assumes rather than observes.
pub const ASSUMED_READY: &str = "assumed Ready before its first deletion (not observed)";

/// When an Event first happened. The first occurrence, not the last: an
/// aggregated Event (kube's recorder aggregates by reason and object) keeps
/// the note of its first occurrence, so that is the time the note is about.
pub(crate) fn event_time(event: &CoreEvent) -> Option<Timestamp> {
    event
        .event_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn label(pod: &Pod, key: &str) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

/// The records of a namespace's Events and current pods. Pure: give it what
/// [`collect`] lists.
pub(crate) fn records_from(events: &[CoreEvent], pods: &[Pod]) -> Vec<Record> {
    let mut records: Vec<Record> = events
        .iter()
        .filter(|e| about_role(e))
        .filter_map(|e| record_from_event(e, event_time(e)?))
        .collect();
    sort_records(&mut records);
    let start = records.first().map(|r| r.t).or_else(|| {
        pods.iter()
            .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .min()
    });
    let Some(start) = start else {
        return records;
    };
    let clamp = |t: Timestamp| t.max(start);

    // Each deleted pod was Ready (on its old revision) until its first
    // deletion: assume it from the start.
    let mut assumed = Vec::new();
    let mut seen = BTreeSet::new();
    for r in records.iter().filter(|r| r.kind == Kind::Deleted) {
        if seen.insert(r.pod.clone()) {
            let mut ready = r.clone();
            ready.t = start;
            ready.kind = Kind::Ready;
            ready.detail = ASSUMED_READY.to_string();
            assumed.push(ready);
        }
    }

    for pod in pods {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let mut base = Record::new(start, Kind::Created);
        base.pod = name;
        base.replicaset = label(pod, REPLICASET);
        base.role = label(pod, ROLE);
        base.revision = label(pod, REVISION_LABEL);
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| clamp(t.0));
        // A pod that was there before the first Event and never deleted
        // since needs no `created` record: its row starts with its bar.
        if let Some(t) = created.filter(|t| *t > start) {
            let mut r = base.clone();
            r.t = t;
            records.push(r);
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
        if let Some(c) = ready
            && c.status == "True"
        {
            let mut r = base.clone();
            r.kind = Kind::Ready;
            r.t = c
                .last_transition_time
                .as_ref()
                .map(|t| clamp(t.0))
                .or(created)
                .unwrap_or(start);
            records.push(r);
        }
        if pod.metadata.deletion_timestamp.is_some() {
            let mut r = base;
            r.kind = Kind::Deleted;
            r.t = pod
                .metadata
                .deletion_timestamp
                .as_ref()
                .map_or(start, |t| clamp(t.0));
            r.detail = "terminating".into();
            records.push(r);
        }
    }
    // Assumed records go first so that, at equal times, a pod deleted at
    // the very start is Ready and then deleted, not the other way round.
    assumed.extend(records);
    sort_records(&mut assumed);
    assumed
}

/// Lists the namespace's Role Events and operator pods and builds their
/// records.
pub async fn collect(client: Client, namespace: &str) -> Result<Vec<Record>, TimelineError> {
    let events = Api::<CoreEvent>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields("involvedObject.kind=Role"))
        .await?;
    let pods = Api::<Pod>::namespaced(client, namespace)
        .list(&ListParams::default().labels(&format!("{MANAGED_BY}={MANAGER}")))
        .await?;
    Ok(records_from(&events.items, &pods.items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;
    use crate::notes::{master_switched_note, pod_deleted_note};
    use crate::render;
    use k8s_openapi::api::core::v1::{ObjectReference, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
    use kube::api::ObjectMeta;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_740_000_000 + s).expect("valid")
    }

    fn event(reason: &str, note: String, t: i64) -> CoreEvent {
        CoreEvent {
            involved_object: ObjectReference {
                kind: Some("Role".into()),
                api_version: Some("tarantool.io/v1alpha1".into()),
                name: Some("storage".into()),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(note),
            event_time: Some(MicroTime(at(t))),
            ..CoreEvent::default()
        }
    }

    fn pod(name: &str, revision: &str, created: i64, ready_at: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(at(created))),
                labels: Some(
                    [
                        (REPLICASET.to_string(), "s-0".to_string()),
                        (ROLE.to_string(), "storage".to_string()),
                        (REVISION_LABEL.to_string(), revision.to_string()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(at(ready_at))),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn a_rolled_pod_and_an_untouched_one() {
        let events = [
            event(
                Reason::PodDeleted.as_str(),
                pod_deleted_note("s-0-1", "s-0", "a", "b"),
                100,
            ),
            event(
                Reason::MasterSwitched.as_str(),
                master_switched_note("s-0", "s-0-0", "s-0-1"),
                120,
            ),
        ];
        // s-0-0 has been up for long; s-0-1 came back after its deletion.
        let pods = [pod("s-0-0", "a", 0, 5), pod("s-0-1", "b", 103, 110)];
        let records = records_from(&events, &pods);
        let summary: Vec<(i64, Kind, &str, &str)> = records
            .iter()
            .map(|r| {
                (
                    r.t.as_second() - 1_740_000_000,
                    r.kind,
                    r.pod.as_str(),
                    r.revision.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (100, Kind::Ready, "s-0-1", "a"),
                (100, Kind::Deleted, "s-0-1", "a"),
                (100, Kind::Ready, "s-0-0", "a"),
                (103, Kind::Created, "s-0-1", "b"),
                (110, Kind::Ready, "s-0-1", "b"),
                (120, Kind::Master, "s-0-1", ""),
            ]
        );
        let m = render::model(&records);
        let row = &m.groups[0].rows[1];
        assert_eq!(row.pod, "s-0-1");
        assert_eq!(row.bars.len(), 2, "{:?}", row.bars);
    }
}
