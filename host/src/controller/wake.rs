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

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use kube::Resource;

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
}
