//! SyncStatefulSets: one StatefulSet per replica set the spec names,
//! applied when it differs from the spec or someone else changed it.
//!
//! [`decide`] is a pure function of the pass's snapshot, its scaling plan
//! and its recorded status: it returns the applies, each with the change
//! it makes. [`execute`] sends them and [`merged`] makes the next
//! snapshot's StatefulSets from what came back. StatefulSets the spec no
//! longer names are left to scaling: removing one is a drain, not a delete.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::ResourceExt;

use super::RolePass;
use super::observe::Snapshot;
use crate::api::Reason;
use crate::controller::{Context, Error, events};
use crate::resources::apply;
use crate::resources::names;
use crate::resources::statefulset::{self, ReplicasetObjects};

/// Why a StatefulSet is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// It does not exist yet.
    Create,
    /// The spec (or the scaling plan's size) changed since the last apply.
    Update,
    /// Its size was changed outside the operator (e.g. `kubectl scale`).
    ResizeBack,
    /// Its spec moved past the generation the operator recorded (e.g.
    /// `kubectl edit` of its template).
    PutBack,
}

impl Change {
    /// How the StatefulSet's Event says it.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Self::Create => "created",
            Self::Update => "updated",
            Self::ResizeBack => "resized back",
            Self::PutBack => "put back (its spec was changed outside the operator)",
        }
    }
}

/// One apply SyncStatefulSets decided.
#[derive(Debug, Clone)]
pub(crate) struct Apply {
    /// Why.
    pub(crate) change: Change,
    /// The StatefulSet as the operator wants it.
    pub(crate) object: StatefulSet,
}

/// How an owned StatefulSet differs from what the operator left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drift {
    /// Its size (e.g. `kubectl scale`).
    Size,
    /// Its spec moved past the generation the operator recorded.
    Spec,
}

/// Whether `current` drifted from the size the operator wants and from the
/// generation it recorded (`None` before the first record: an operator
/// upgraded from one that kept none trusts the hash, as before).
pub(crate) fn drift(
    current: &StatefulSet,
    replicas: Option<i32>,
    recorded_generation: Option<i64>,
) -> Option<Drift> {
    if current.spec.replicas != replicas {
        return Some(Drift::Size);
    }
    match (current.metadata.generation, recorded_generation) {
        (Some(now), Some(recorded)) if now > recorded => Some(Drift::Spec),
        _ => None,
    }
}

/// The StatefulSets to apply this pass, in the spec's order. The size of
/// each is the scaling plan's (a shrink waits for the master's hand-over,
/// a growth for the volumes of expelled instances to go); one the plan
/// deletes, or one still terminating, is left alone until it is gone.
pub(crate) fn decide(snap: &Snapshot, pass: &RolePass) -> Result<Vec<Apply>, Error> {
    let template = pass
        .role
        .spec
        .replicaset_template()
        .ok_or(Error::MissingField("replicasetTemplate"))?;
    let owner = pass.owner_ref()?;
    let cluster = snap.cluster_name();
    let service = names::headless_service_name(&pass.name);
    let bucket_count = snap
        .cluster
        .spec
        .vshard
        .as_ref()
        .and_then(|v| v.bucket_count);
    let current = |name: &str| snap.statefulsets.iter().find(|s| s.name_any() == name);
    let deleting = |name: &str| {
        pass.scaling.as_ref().is_some_and(|p| p.deletes(name))
            || current(name).is_some_and(|s| s.metadata.deletion_timestamp.is_some())
    };
    let mut applies = Vec::new();
    for name in pass.desired.statefulsets.iter().filter(|n| !deleting(n)) {
        let mut template = template.clone();
        if let Some(size) = pass.scaling.as_ref().and_then(|p| p.replicas.get(name)) {
            template.replicas = i32::try_from(*size).unwrap_or(template.replicas);
        }
        let object = statefulset::build(&ReplicasetObjects {
            namespace: &pass.namespace,
            cluster: &cluster,
            role: &pass.name,
            name,
            service: &service,
            template: &template,
            bucket_count,
            owner: owner.clone(),
        });
        let recorded = pass
            .status
            .replicasets
            .iter()
            .find(|r| &r.name == name)
            .and_then(|r| r.statefulset_generation);
        let change = match current(name) {
            None => Some(Change::Create),
            Some(live) => match drift(live, object.spec.replicas, recorded) {
                Some(Drift::Size) => Some(Change::ResizeBack),
                Some(Drift::Spec) => Some(Change::PutBack),
                // The hash says whether the spec is as applied.
                None => (!apply::is_applied(&object, Some(live))).then_some(Change::Update),
            },
        };
        if let Some(change) = change {
            applies.push(Apply { change, object });
        }
    }
    Ok(applies)
}

/// Sends `applies` (a bounded number in flight: a template change touches
/// every replica set at once) with an Event each; returns the objects as
/// the API server applied them.
pub(crate) async fn execute(
    ctx: &Context,
    pass: &RolePass,
    applies: Vec<Apply>,
) -> Result<Vec<StatefulSet>, Error> {
    let role: &crate::api::role::Role = pass.role.as_ref();
    let sends = applies
        .into_iter()
        .map(|Apply { change, object }| async move {
            let name = object.name_any();
            let applied = apply::send(&ctx.client, object).await?;
            events::normal(
                ctx,
                role,
                Reason::StatefulSetApplied,
                format!("StatefulSet {name} {}", change.verb()),
            )
            .await;
            Ok::<_, Error>(applied)
        });
    futures::stream::iter(sends)
        .buffered(ctx.settings.writes_in_flight.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The StatefulSets after this pass: `observed`, with each one `applied`
/// in place of its observed self (or added), in name order. The applied
/// objects carry the new template and its revision.
pub(crate) fn merged(observed: &[StatefulSet], applied: Vec<StatefulSet>) -> Vec<StatefulSet> {
    let mut all = observed.to_vec();
    for fresh in applied {
        match all.iter().position(|s| s.name_any() == fresh.name_any()) {
            Some(i) => all[i] = fresh,
            None => all.push(fresh),
        }
    }
    all.sort_by_key(ResourceExt::name_any);
    all
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::api::role::ReplicasetStatus;
    use crate::controller::lifecycle::Reconciler;
    use crate::controller::role::scaling::{Op, Plan};
    use crate::controller::testing::{self, STORAGE};
    use crate::resources::labels;

    #[test]
    fn drift_of_an_owned_statefulset_is_found() {
        let sts = |replicas: i32, generation: i64| StatefulSet {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: StatefulSetSpec {
                replicas: Some(replicas),
                ..StatefulSetSpec::default()
            },
            ..StatefulSet::default()
        };
        let cases = [
            ("as left", sts(2, 4), Some(2), Some(4), None),
            (
                "scaled by hand",
                sts(3, 5),
                Some(2),
                Some(4),
                Some(Drift::Size),
            ),
            (
                "template edited",
                sts(2, 5),
                Some(2),
                Some(4),
                Some(Drift::Spec),
            ),
            (
                "nothing recorded yet: the hash is trusted",
                sts(2, 9),
                Some(2),
                None,
                None,
            ),
            (
                "recorded ahead of a lagging read",
                sts(2, 3),
                Some(2),
                Some(4),
                None,
            ),
        ];
        for (case, current, replicas, recorded, want) in cases {
            assert_eq!(drift(&current, replicas, recorded), want, "{case}");
        }
    }

    /// A storage Role's pass (2 replica sets of 2) and an empty snapshot.
    fn fixture() -> (RolePass, Snapshot) {
        let role = testing::role(STORAGE);
        let pass = RolePass::new(Arc::new(role)).expect("pass");
        let snap = Snapshot {
            cluster: testing::cluster(),
            pods: vec![],
            statefulsets: vec![],
        };
        (pass, snap)
    }

    /// `applies` as the API server would hold them afterwards: with the
    /// applied hash, at `generation`.
    fn live(applies: &[Apply], generation: i64) -> Vec<StatefulSet> {
        applies
            .iter()
            .map(|a| {
                let mut object = a.object.clone();
                let hash = apply::desired_hash(&a.object);
                object
                    .annotations_mut()
                    .insert(labels::APPLIED_HASH.into(), hash);
                object.metadata.generation = Some(generation);
                object
            })
            .collect()
    }

    fn changes(applies: &[Apply]) -> Vec<(String, Change)> {
        applies
            .iter()
            .map(|a| (a.object.name_any(), a.change))
            .collect()
    }

    fn size(apply: &Apply) -> Option<i32> {
        apply.object.spec.replicas
    }

    #[test]
    fn each_statefulset_is_applied_only_when_it_differs_or_drifted() {
        let (pass, empty) = fixture();
        let first = decide(&empty, &pass).expect("decide");
        let names = pass.desired.statefulsets.clone();
        assert_eq!(
            changes(&first),
            names
                .iter()
                .map(|n| (n.clone(), Change::Create))
                .collect::<Vec<_>>(),
            "nothing exists: every one is created"
        );
        let recorded = |pass: &mut RolePass, generation| {
            pass.status.replicasets = names
                .iter()
                .map(|n| ReplicasetStatus {
                    name: n.clone(),
                    statefulset_generation: Some(generation),
                    ..ReplicasetStatus::default()
                })
                .collect();
        };
        type Edit = fn(&mut RolePass, &mut Vec<StatefulSet>);
        let cases: [(&str, Edit, Vec<Change>); 6] = [
            ("as applied", |_, _| {}, vec![]),
            (
                "scaled by hand",
                |_, live| live[0].spec.replicas = Some(5),
                vec![Change::ResizeBack],
            ),
            (
                "template edited by hand (its generation moved)",
                |_, live| live[1].metadata.generation = Some(3),
                vec![Change::PutBack],
            ),
            (
                "a new image in the Role's template",
                |pass, _| {
                    let mut role = (*pass.role).clone();
                    if let Some(spec) = role
                        .spec
                        .replicaset_template
                        .as_mut()
                        .and_then(|t| t.pod_template.spec.as_mut())
                    {
                        spec.containers[0].image = Some("other:2".into());
                    }
                    pass.role = Arc::new(role);
                },
                vec![Change::Update, Change::Update],
            ),
            (
                "one deleted by someone: created again",
                |_, live| {
                    live.remove(0);
                },
                vec![Change::Create],
            ),
            (
                "one terminating: left alone until it is gone",
                |_, live| {
                    live[0].metadata.deletion_timestamp =
                        Some(Time(k8s_openapi::jiff::Timestamp::now()));
                },
                vec![],
            ),
        ];
        for (case, edit, want) in cases {
            let (mut pass, mut snap) = fixture();
            recorded(&mut pass, 2);
            let mut objects = live(&first, 2);
            edit(&mut pass, &mut objects);
            snap.statefulsets = objects;
            let applies = decide(&snap, &pass).expect("decide");
            assert_eq!(
                applies.iter().map(|a| a.change).collect::<Vec<_>>(),
                want,
                "{case}"
            );
        }
    }

    #[test]
    fn the_scaling_plan_sets_sizes_and_holds_back_what_it_deletes() {
        let (mut pass, snap) = fixture();
        let names = pass.desired.statefulsets.clone();
        pass.scaling = Some(Plan {
            replicas: BTreeMap::from([(names[1].clone(), 1)]),
            ops: vec![Op::DeleteStatefulSet {
                name: names[0].clone(),
            }],
            ..Plan::default()
        });
        let applies = decide(&snap, &pass).expect("decide");
        assert_eq!(
            changes(&applies),
            vec![(names[1].clone(), Change::Create)],
            "the one the plan deletes is not applied in the same pass"
        );
        assert_eq!(
            size(&applies[0]),
            Some(1),
            "the plan's size, not the spec's"
        );
        // Without a plan the spec's size.
        let (pass, snap) = fixture();
        let applies = decide(&snap, &pass).expect("decide");
        assert!(applies.iter().all(|a| size(a) == Some(2)));
    }

    #[test]
    fn a_role_without_a_template_or_uid_is_an_error_not_an_apply() {
        let (pass, snap) = fixture();
        let mut role = (*pass.role).clone();
        role.metadata.uid = None;
        let no_uid = RolePass::new(Arc::new(role)).expect("pass");
        assert!(matches!(
            decide(&snap, &no_uid),
            Err(Error::MissingField("uid"))
        ));
        let mut role = (*pass.role).clone();
        role.spec.replicaset_template = None;
        let no_template = RolePass::new(Arc::new(role)).expect("pass");
        assert!(matches!(
            decide(&snap, &no_template),
            Err(Error::MissingField("replicasetTemplate"))
        ));
    }

    #[test]
    fn applied_objects_replace_their_observed_selves_in_name_order() {
        let named = |name: &str, generation: i64| StatefulSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            ..StatefulSet::default()
        };
        let observed = vec![named("a", 1), named("c", 1)];
        let after = merged(&observed, vec![named("c", 2), named("b", 1)]);
        let got: Vec<_> = after
            .iter()
            .map(|s| (s.name_any(), s.metadata.generation))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), Some(1)),
                ("b".into(), Some(1)),
                ("c".into(), Some(2))
            ]
        );
        assert_eq!(merged(&observed, vec![]).len(), 2, "nothing applied");
    }
}
