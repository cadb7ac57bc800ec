//! Which changes of a Role or Cluster wake its own controller.
//!
//! Each pass ends by writing the object's status when it changed. If that
//! write woke the object again, a pass whose status moves every time (a
//! drain reporting "(N buckets left)") would run back to back instead of
//! every `--poll-seconds`: a real 22-minute drain made about nine console
//! calls and five status patches a second that way. So the controller of a
//! kind sees its own objects only through [`wakes`], which ignores status
//! (and `resourceVersion`, `managedFields`) and passes everything a human or
//! another controller changes to ask for work: the spec (its generation),
//! labels, annotations (the supervised-switch approval
//! `tarantool.io/approve-switch`), finalizers, owner references (a Cluster
//! adopting a Role) and the deletion mark.
//!
//! Status still wakes the *other* kind where it is read: a Role's status
//! wakes the Clusters that list it (they wait for their Roles to be Ready),
//! and a Cluster's status wakes its Roles (they wait for its bootstrap and
//! follow its leader). Those watches are not filtered.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::runtime::watcher;

/// A hash of what, in an object of the controller's own kind, asks for a
/// new pass: equal hashes mean the change was status only (or nothing the
/// controller acts on), and the watch event is dropped. Used with
/// [`kube::runtime::WatchStreamExt::predicate_filter`].
pub(crate) fn wakes<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let owners: Vec<(&str, Option<bool>)> = meta
        .owner_references
        .iter()
        .flatten()
        .map(|o| (o.uid.as_str(), o.controller))
        .collect();
    let mut hasher = DefaultHasher::new();
    (
        meta.generation,
        &meta.labels,
        &meta.annotations,
        &meta.finalizers,
        owners,
        // The mark is set once and never moves: whether it is there is
        // what matters.
        meta.deletion_timestamp.is_some(),
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// What in a pod the controllers read: its identity and metadata, whether
/// it is going, its phase, its conditions (type and status, not their
/// timestamps) and its containers' readiness, restarts and state. Not read,
/// so not waking: the node it was bound to, its IPs, the times. kwok (like
/// a kubelet) writes a pod's status several times on its way up; only the
/// writes that move one of these wake its Role.
pub(crate) fn pod_wakes(pod: &Pod) -> u64 {
    let status = pod.status.as_ref();
    let conditions: Vec<(&str, &str)> = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
        .collect();
    let containers: Vec<(&str, bool, i32, Option<&str>, bool)> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| {
            let state = c.state.as_ref();
            (
                c.name.as_str(),
                c.ready,
                c.restart_count,
                state
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref()),
                state.is_some_and(|s| s.terminated.is_some()),
            )
        })
        .collect();
    let mut hasher = DefaultHasher::new();
    (
        wakes(pod),
        &pod.metadata.uid,
        status.and_then(|s| s.phase.as_deref()),
        conditions,
        containers,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// What in a StatefulSet a Role pass reads: its metadata and spec (the
/// generation), and of its status whether the controller saw the spec and
/// which revisions it rolls. Its replica counts move with every pod, whose
/// own event already wakes the Role.
pub(crate) fn statefulset_wakes(sts: &StatefulSet) -> u64 {
    let status = sts.status.as_ref();
    let mut hasher = DefaultHasher::new();
    (
        wakes(sts),
        &sts.metadata.uid,
        status.and_then(|s| s.observed_generation),
        status.and_then(|s| s.update_revision.as_deref()),
        status.and_then(|s| s.current_revision.as_deref()),
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// The objects of a watch whose `hash` moved since they were last seen,
/// and every deleted one. kube's predicate filter is not used here: it
/// drops a deletion (the object hashes as it did before), and a pod or a
/// budget that is gone must wake its Role. A re-list starts afresh, so
/// every object it lists wakes its Role, as it did unfiltered.
pub(crate) fn changed<K, S>(
    events: S,
    hash: impl Fn(&K) -> u64 + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut seen: HashMap<String, u64> = HashMap::new();
    events.filter_map(move |event| {
        let woken = match event {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Init) => {
                seen.clear();
                None
            }
            Ok(watcher::Event::InitDone) => None,
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let h = hash(&object);
                (seen.insert(key(&object), h) != Some(h)).then_some(Ok(object))
            }
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&key(&object));
                Some(Ok(object))
            }
        };
        futures::future::ready(woken)
    })
}

/// An object's key in [`changed`]: its UID (a pod recreated under its old
/// name is another object), else its namespace and name.
fn key<K: Resource>(object: &K) -> String {
    let meta = object.meta();
    meta.uid.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default()
        )
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::api::role::{Role, RoleStatus};
    use crate::controller::role::rollout::execute::APPROVE_SWITCH;
    use crate::controller::testing;

    fn role() -> Role {
        let mut role = testing::role(testing::STORAGE);
        role.metadata.generation = Some(3);
        role.metadata.resource_version = Some("100".into());
        role
    }

    /// A change made to a Role.
    type Change = Box<dyn FnOnce(&mut Role)>;

    /// Whether `change` applied to a Role makes its controller look again.
    fn wakes_after(change: impl FnOnce(&mut Role)) -> bool {
        let before = role();
        let mut after = before.clone();
        change(&mut after);
        wakes(&before) != wakes(&after)
    }

    #[test]
    fn status_only_changes_do_not_wake_the_role() {
        let cases: Vec<(&str, Change)> = vec![
            ("nothing", Box::new(|_| {})),
            (
                "a drain's progress message",
                Box::new(|r| {
                    r.status = Some(RoleStatus {
                        conditions: vec![Condition {
                            type_: "Progressing".into(),
                            status: "True".into(),
                            reason: crate::api::Reason::Scaling.as_str().into(),
                            message: "storage-2 to drain (42 buckets left)".into(),
                            last_transition_time: Time(Timestamp::now()),
                            observed_generation: Some(3),
                        }],
                        ..RoleStatus::default()
                    })
                }),
            ),
            (
                "the resource version and managed fields",
                Box::new(|r| {
                    r.metadata.resource_version = Some("101".into());
                    r.metadata.managed_fields = Some(vec![Default::default()]);
                }),
            ),
        ];
        for (what, change) in cases {
            assert!(!wakes_after(change), "{what} must not wake the Role");
        }
    }

    #[test]
    fn spec_and_metadata_changes_wake_the_role() {
        let cases: Vec<(&str, Change)> = vec![
            (
                "a spec change (generation)",
                Box::new(|r| r.metadata.generation = Some(4)),
            ),
            (
                "the switch approval",
                Box::new(|r| {
                    r.metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(APPROVE_SWITCH.into(), "storage-0-0".into());
                }),
            ),
            (
                "a label",
                Box::new(|r| {
                    r.metadata
                        .labels
                        .get_or_insert_default()
                        .insert("team".into(), "kv".into());
                }),
            ),
            (
                "the deletion mark",
                Box::new(|r| r.metadata.deletion_timestamp = Some(Time(Timestamp::now()))),
            ),
            (
                "a finalizer",
                Box::new(|r| r.metadata.finalizers = Some(vec!["example.com/keep".into()])),
            ),
            (
                "an owner (a Cluster adopting the Role)",
                Box::new(|r| {
                    r.metadata.owner_references = Some(vec![OwnerReference {
                        uid: "cluster-uid".into(),
                        controller: Some(true),
                        ..OwnerReference::default()
                    }])
                }),
            ),
        ];
        for (what, change) in cases {
            assert!(wakes_after(change), "{what} must wake the Role");
        }
    }

    /// A running, ready pod as kwok leaves it.
    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "storage-0-0", "namespace": "ns", "uid": "u1",
                "labels": {"controller-revision-hash": "r1"}},
            "spec": {"nodeName": "kwok-node-0", "containers": [{"name": "tarantool"}]},
            "status": {
                "phase": "Running", "podIP": "10.0.0.1",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"},
                    {"type": "PodScheduled", "status": "True"}
                ],
                "containerStatuses": [{"name": "tarantool", "ready": true, "restartCount": 0,
                    "image": "t", "imageID": "", "state": {"running": {}}}]
            }
        }))
        .expect("pod")
    }

    #[test]
    fn only_what_a_pass_reads_in_a_pod_wakes_its_role() {
        type PodChange = Box<dyn FnOnce(&mut Pod)>;
        // (what changed, wakes the Role)
        let cases: Vec<(&str, PodChange, bool)> = vec![
            ("nothing", Box::new(|_| {}), false),
            (
                "the node it runs on",
                Box::new(|p| p.spec.get_or_insert_default().node_name = Some("n2".into())),
                false,
            ),
            (
                "its IP",
                Box::new(|p| p.status.get_or_insert_default().pod_ip = Some("10.0.0.2".into())),
                false,
            ),
            (
                "a condition's timestamp",
                Box::new(|p| {
                    if let Some(c) = p.status.get_or_insert_default().conditions.as_mut() {
                        c[0].last_transition_time = Some(Time(Timestamp::now()));
                    }
                }),
                false,
            ),
            (
                "readiness",
                Box::new(|p| {
                    if let Some(c) = p.status.get_or_insert_default().conditions.as_mut() {
                        c[0].status = "False".into();
                    }
                }),
                true,
            ),
            (
                "a restart",
                Box::new(|p| {
                    if let Some(c) = p.status.get_or_insert_default().container_statuses.as_mut() {
                        c[0].restart_count = 1;
                    }
                }),
                true,
            ),
            (
                "the phase",
                Box::new(|p| p.status.get_or_insert_default().phase = Some("Failed".into())),
                true,
            ),
            (
                "its revision label",
                Box::new(|p| {
                    p.metadata
                        .labels
                        .get_or_insert_default()
                        .insert("controller-revision-hash".into(), "r2".into());
                }),
                true,
            ),
            (
                "the deletion mark",
                Box::new(|p| p.metadata.deletion_timestamp = Some(Time(Timestamp::now()))),
                true,
            ),
            (
                "another pod under the same name",
                Box::new(|p| p.metadata.uid = Some("u2".into())),
                true,
            ),
        ];
        for (what, change, want) in cases {
            let before = pod();
            let mut after = before.clone();
            change(&mut after);
            assert_eq!(pod_wakes(&before) != pod_wakes(&after), want, "{what}");
        }
    }

    #[test]
    fn a_statefulset_wakes_its_role_on_its_revisions_not_its_counts() {
        let sts = |ready: i32, observed: i64, update: &str| -> StatefulSet {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "storage-0", "uid": "s1", "generation": 2},
                "status": {"replicas": 2, "readyReplicas": ready, "observedGeneration": observed,
                    "updateRevision": update, "currentRevision": "r1"}
            }))
            .expect("statefulset")
        };
        let base = statefulset_wakes(&sts(2, 2, "r1"));
        assert_eq!(base, statefulset_wakes(&sts(1, 2, "r1")), "ready count");
        assert_ne!(
            base,
            statefulset_wakes(&sts(2, 1, "r1")),
            "observed generation"
        );
        assert_ne!(base, statefulset_wakes(&sts(2, 2, "r2")), "update revision");
    }

    /// The stream passes a change that moved the hash, drops one that did
    /// not, always passes a deletion, and after a re-list passes everything
    /// listed again.
    #[tokio::test]
    async fn changed_passes_moves_deletions_and_relists() {
        use futures::StreamExt;
        use kube::runtime::watcher::Event;
        let ready = pod();
        let mut moved_ip = pod();
        moved_ip.status.get_or_insert_default().pod_ip = Some("10.0.0.9".into());
        let mut unready = pod();
        if let Some(c) = unready.status.get_or_insert_default().conditions.as_mut() {
            c[0].status = "False".into();
        }
        let events = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(ready.clone())),
            Ok(Event::InitDone),
            Ok(Event::Apply(moved_ip.clone())),
            Ok(Event::Apply(unready.clone())),
            Ok(Event::Delete(unready.clone())),
            Ok(Event::Init),
            Ok(Event::InitApply(ready.clone())),
            Ok(Event::InitDone),
        ];
        let passed: Vec<Pod> = changed(futures::stream::iter(events), pod_wakes)
            .filter_map(|r| async move { r.ok() })
            .collect()
            .await;
        let ready_of = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|c| c[0].status.clone())
        };
        let seen: Vec<Option<String>> = passed.iter().map(ready_of).collect();
        let t = Some("True".to_string());
        let f = Some("False".to_string());
        assert_eq!(seen, vec![t.clone(), f.clone(), f, t]);
    }
}
