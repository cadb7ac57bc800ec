//! Table-driven tests of the scaling decisions, on fixtures (no API
//! server, no Cartridge).

use std::collections::BTreeSet;

use super::*;
use crate::controller::role::cartridge::Answer;
use crate::topology::fake::FakeConnector;
use crate::topology::{Connector, InstanceTarget, ServerInfo};

pub(super) const NS: &str = "ns";
pub(super) const CLUSTER: &str = "c";

/// A StatefulSet `s-<i>` of `replicas`, wanted or retiring.
pub(super) fn sts(i: u32, replicas: u32, wanted: bool) -> StatefulSetFacts {
    StatefulSetFacts {
        name: format!("s-{i}"),
        uid: format!("uid-{i}"),
        wanted,
        replicas,
        epochs: Epochs::default(),
        claim_templates: vec!["data".into()],
        deleting: false,
    }
}

pub(super) fn rs_uuid(sts: &StatefulSetFacts) -> String {
    identity::replicaset_uuid(NS, CLUSTER, &sts.name, &sts.uid)
}

pub(super) fn server_uuid(sts: &StatefulSetFacts, ordinal: u32) -> String {
    identity::instance_uuid(
        NS,
        CLUSTER,
        &names::pod_name(&sts.name, ordinal),
        &sts.uid,
        sts.epochs.get(ordinal),
    )
}

/// The replica set of `sts` as Cartridge reports it: `servers` ordinals,
/// `master` the master's ordinal, every server healthy and caught up, the
/// master writable and the others read-only.
pub(super) fn info(
    sts: &StatefulSetFacts,
    servers: &[u32],
    master: u32,
    weight: f64,
    buckets: u64,
) -> ReplicasetInfo {
    ReplicasetInfo {
        uuid: rs_uuid(sts),
        alias: sts.name.clone(),
        roles: vec![STORAGE_ROLE.into()],
        weight: Some(weight),
        master: Some(server_uuid(sts, master)),
        servers: servers
            .iter()
            .map(|&o| ServerInfo {
                uuid: server_uuid(sts, o),
                uri: format!("{}-{o}.svc:3301", sts.name),
                alias: names::pod_name(&sts.name, o),
                healthy: true,
                replication_lag: (o != master).then_some(0.01),
                replicating: true,
                bucket_count: Some(buckets),
                read_only: Some(o != master),
            })
            .collect(),
        ..ReplicasetInfo::default()
    }
}

pub(super) fn answered(replicasets: Vec<ReplicasetInfo>) -> CartridgeView {
    let client = FakeConnector::new().connect(&InstanceTarget::for_pod(NS, "src", None));
    CartridgeView::Answered(Answer {
        source: "src".into(),
        replicasets,
        client,
    })
}

/// A status record: joined `joined` instances, at `removal`.
pub(super) fn rec(
    sts: &StatefulSetFacts,
    joined: i32,
    removal: Option<RemovalStage>,
) -> ReplicasetStatus {
    ReplicasetStatus {
        name: sts.name.clone(),
        uuid: (joined > 0).then(|| rs_uuid(sts)),
        joined,
        removal,
        ..ReplicasetStatus::default()
    }
}

/// One scenario: the world as observed, and the plan decided for it.
struct Case {
    replicas: u32,
    statefulsets: Vec<StatefulSetFacts>,
    pods: Vec<String>,
    claims: Option<Vec<String>>,
    records: Vec<ReplicasetStatus>,
    view: CartridgeView,
    leader: Option<&'static str>,
}

impl Case {
    fn new(replicas: u32, statefulsets: Vec<StatefulSetFacts>, view: CartridgeView) -> Self {
        // Every pod of every StatefulSet exists, unless a case says not.
        let pods = statefulsets
            .iter()
            .flat_map(|s| (0..s.replicas).map(|o| names::pod_name(&s.name, o)))
            .collect();
        Self {
            replicas,
            statefulsets,
            pods,
            claims: None,
            records: Vec::new(),
            view,
            leader: None,
        }
    }

    fn records(mut self, records: Vec<ReplicasetStatus>) -> Self {
        self.records = records;
        self
    }

    fn pods(mut self, pods: &[&str]) -> Self {
        self.pods = pods.iter().map(|p| (*p).to_string()).collect();
        self
    }

    fn claims(mut self, claims: &[&str]) -> Self {
        self.claims = Some(claims.iter().map(|c| (*c).to_string()).collect());
        self
    }

    fn leader(mut self, leader: &'static str) -> Self {
        self.leader = Some(leader);
        self
    }

    fn plan(&self) -> Plan {
        self.with_facts(decide)
    }

    fn with_facts<T>(&self, f: impl FnOnce(&Facts<'_>) -> T) -> T {
        let pods: BTreeSet<String> = self.pods.iter().cloned().collect();
        let claims: Option<BTreeSet<String>> =
            self.claims.as_ref().map(|c| c.iter().cloned().collect());
        f(&Facts {
            namespace: NS,
            cluster: CLUSTER,
            replicas: self.replicas,
            statefulsets: &self.statefulsets,
            pods: &pods,
            claims: claims.as_ref(),
            records: &self.records,
            view: &self.view,
            leader: self.leader,
            max_lag: 1.0,
            weight: None,
        })
    }
}

/// A case of the retiring table: name, world, ops, recorded stage, wait.
type RetireCase = (
    &'static str,
    Case,
    Vec<&'static str>,
    Option<RemovalStage>,
    Option<&'static str>,
);
/// A case of the shrinking table: name, world, size, ops, wait.
type ShrinkCase = (
    &'static str,
    Case,
    u32,
    Vec<&'static str>,
    Option<&'static str>,
);
/// A case of the shedding table: name, world, ops, records, wait.
type ShedCase = (
    &'static str,
    Case,
    Vec<&'static str>,
    Vec<Record>,
    Option<&'static str>,
);

/// The plan waits for something saying `wait`, or for nothing.
fn assert_waits(name: &str, plan: &Plan, wait: Option<&str>) {
    let waits = plan
        .waits
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    match wait {
        Some(w) => assert!(waits.contains(w), "{name}: {waits}"),
        None => assert!(plan.waits.is_empty(), "{name}: {waits}"),
    }
}

fn destroys(plan: &Plan) -> bool {
    plan.ops.iter().any(|op| {
        matches!(
            op,
            Op::DeleteClaims { .. } | Op::DeleteStatefulSet { .. } | Op::Expel { .. }
        )
    })
}

fn op_kinds(plan: &Plan) -> Vec<&'static str> {
    plan.ops
        .iter()
        .map(|op| match op {
            Op::SwitchMaster { .. } => "switch",
            Op::Drain { .. } => "drain",
            Op::Restore { .. } => "restore",
            Op::BumpEpochs { .. } => "bump",
            Op::Expel { whole: true, .. } => "expel-replicaset",
            Op::Expel { whole: false, .. } => "expel-instances",
            Op::DeleteClaims { .. } => "delete-claims",
            Op::DeleteStatefulSet { .. } => "delete-statefulset",
        })
        .collect()
}

fn removal_of(plan: &Plan) -> Option<RemovalStage> {
    plan.records.iter().find_map(|r| match r {
        Record::Removal { stage, .. } => Some(*stage),
        _ => None,
    })
}

// ---------------------------------------------------------------- retiring replica sets

#[test]
fn retiring_replica_sets_go_step_by_step_and_only_on_evidence() {
    let old = sts(1, 2, false);
    let keep = sts(0, 2, true);
    let both = || vec![keep.clone(), old.clone()];
    let full = |weight: f64, buckets: u64| {
        answered(vec![
            info(&keep, &[0, 1], 0, 1.0, 100),
            info(&old, &[0, 1], 0, weight, buckets),
        ])
    };
    let without_old = || answered(vec![info(&keep, &[0, 1], 0, 1.0, 100)]);
    let joined = |stage| vec![rec(&keep, 2, None), rec(&old, 2, stage)];
    let cases: Vec<RetireCase> = vec![
        (
            "never joined, never bootstrapped: nothing to drain",
            Case::new(2, both(), CartridgeView::NotBootstrapped),
            vec!["delete-claims", "delete-statefulset"],
            None,
            None,
        ),
        (
            "joined, but the Cluster says not bootstrapped: a hint is no evidence",
            Case::new(2, both(), CartridgeView::NotBootstrapped).records(joined(None)),
            vec![],
            None,
            Some("no verified answer"),
        ),
        (
            "joined, Cartridge unknown ([] from a new pod, a timeout)",
            Case::new(
                2,
                both(),
                CartridgeView::Unknown("s-9-0 answered []".into()),
            )
            .records(joined(None)),
            vec![],
            None,
            Some("answered []"),
        ),
        (
            "joined, missing from a verified answer, never expelled: kept",
            Case::new(2, both(), without_old()).records(joined(None)),
            vec![],
            None,
            Some("never expelled by the operator"),
        ),
        (
            "joined, draining, missing: kept",
            Case::new(2, both(), without_old()).records(joined(Some(RemovalStage::Draining))),
            vec![],
            None,
            Some("never expelled by the operator"),
        ),
        (
            "expelled by the operator and gone from a verified answer: deleted",
            Case::new(2, both(), without_old()).records(joined(Some(RemovalStage::Expelling))),
            vec!["delete-claims", "delete-statefulset"],
            None,
            None,
        ),
        (
            "never joined, absent from a verified answer: deleted",
            Case::new(2, both(), without_old()).records(vec![rec(&keep, 2, None)]),
            vec!["delete-claims", "delete-statefulset"],
            None,
            None,
        ),
        (
            "holding weight: drained first",
            Case::new(2, both(), full(1.0, 100)).records(joined(None)),
            vec!["drain"],
            Some(RemovalStage::Draining),
            Some("to drain (100 buckets left)"),
        ),
        (
            "weight 0, buckets left: waits",
            Case::new(2, both(), full(0.0, 40)).records(joined(Some(RemovalStage::Draining))),
            vec![],
            None,
            Some("40 buckets left"),
        ),
        (
            "drained, the Cluster's leader inside: waits for it to move",
            Case::new(2, both(), full(0.0, 0))
                .records(joined(Some(RemovalStage::Draining)))
                .leader("s-1-0"),
            vec![],
            None,
            Some("leader to move out of s-1"),
        ),
        (
            "drained: the expel is recorded first, not sent",
            Case::new(2, both(), full(0.0, 0)).records(joined(Some(RemovalStage::Draining))),
            vec![],
            Some(RemovalStage::Expelling),
            Some("expel next"),
        ),
        (
            "recorded and drained: expelled",
            Case::new(2, both(), full(0.0, 0)).records(joined(Some(RemovalStage::Expelling))),
            vec!["expel-replicaset"],
            None,
            Some("expelled, to be confirmed"),
        ),
        (
            "recorded, but buckets came back: no expel",
            Case::new(2, both(), full(0.0, 7)).records(joined(Some(RemovalStage::Expelling))),
            vec![],
            None,
            Some("7 buckets left"),
        ),
    ];
    for (name, case, ops, removal, wait) in cases {
        let plan = case.plan();
        assert_eq!(op_kinds(&plan), ops, "{name}: {plan:?}");
        assert_eq!(removal_of(&plan), removal, "{name}: {plan:?}");
        assert_waits(name, &plan, wait);
    }
}

#[test]
fn a_storage_whose_bucket_count_is_not_reported_is_not_expelled() {
    let old = sts(1, 1, false);
    let keep = sts(0, 1, true);
    let mut unknown_buckets = info(&old, &[0], 0, 0.0, 0);
    unknown_buckets.servers[0].bucket_count = None;
    let view = answered(vec![info(&keep, &[0], 0, 1.0, 10), unknown_buckets]);
    let plan = Case::new(1, vec![keep, old.clone()], view)
        .records(vec![rec(&old, 1, Some(RemovalStage::Expelling))])
        .plan();
    assert!(!destroys(&plan), "{plan:?}");
    assert!(matches!(
        plan.waits[..],
        [Wait::Draining { buckets: None, .. }]
    ));
}

#[test]
fn data_with_nowhere_to_go_is_not_drained() {
    // The Role's only storage replica sets leave (a deletion), and no other
    // storage has weight: nothing is drained, expelled or deleted.
    let a = sts(0, 1, false);
    let b = sts(1, 1, false);
    let mut router = info(&sts(9, 1, true), &[0], 0, 0.0, 0);
    router.roles = vec!["vshard-router".into()];
    let view = || {
        answered(vec![
            info(&a, &[0], 0, 1.0, 30),
            info(&b, &[0], 0, 0.0, 0),
            router.clone(),
        ])
    };
    let plan = Case::new(1, vec![a.clone(), b.clone()], view())
        .records(vec![
            rec(&a, 1, None),
            rec(&b, 1, Some(RemovalStage::Expelling)),
        ])
        .plan();
    assert!(
        plan.waits.contains(&Wait::NowhereToGo {
            replicaset: a.name.clone()
        }),
        "{plan:?}"
    );
    // The empty one (weight 0, no buckets) may still go.
    assert_eq!(op_kinds(&plan), vec!["expel-replicaset"], "{plan:?}");
    // Another Role's storage with weight takes the buckets.
    let mut other = info(&sts(7, 1, true), &[0], 0, 1.0, 0);
    other.alias = "other-role-0".into();
    let mut with_other = vec![info(&a, &[0], 0, 1.0, 30), other];
    with_other.push(router);
    let plan = Case::new(1, vec![a.clone()], answered(with_other))
        .records(vec![rec(&a, 1, None)])
        .plan();
    assert_eq!(op_kinds(&plan), vec!["drain"], "{plan:?}");
}

#[test]
fn a_router_replica_set_holds_no_buckets_and_is_expelled_after_the_record() {
    let old = sts(1, 1, false);
    let mut router = info(&old, &[0], 0, 0.0, 0);
    router.roles = vec!["vshard-router".into()];
    router.weight = None;
    for s in &mut router.servers {
        s.bucket_count = None;
    }
    let first = Case::new(1, vec![old.clone()], answered(vec![router.clone()]))
        .records(vec![rec(&old, 1, None)])
        .plan();
    assert_eq!(removal_of(&first), Some(RemovalStage::Expelling));
    assert!(!destroys(&first));
    let second = Case::new(1, vec![old.clone()], answered(vec![router]))
        .records(vec![rec(&old, 1, Some(RemovalStage::Expelling))])
        .plan();
    assert_eq!(op_kinds(&second), vec!["expel-replicaset"]);
}

#[test]
fn claims_left_by_an_earlier_shrink_go_with_the_replica_set() {
    let old = sts(1, 1, false);
    let plan = Case::new(
        1,
        vec![old.clone()],
        answered(vec![info(&sts(0, 1, true), &[0], 0, 1.0, 1)]),
    )
    .records(vec![rec(&old, 1, Some(RemovalStage::Expelling))])
    .claims(&["data-s-1-0", "data-s-1-2", "data-s-10-0", "other-s-1-0"])
    .plan();
    let claims = plan.ops.iter().find_map(|op| match op {
        Op::DeleteClaims { claims, .. } => Some(claims.clone()),
        _ => None,
    });
    assert_eq!(
        claims,
        Some(vec!["data-s-1-0".to_string(), "data-s-1-2".to_string()])
    );
}

#[test]
fn a_statefulset_being_deleted_is_left_alone() {
    let mut old = sts(1, 1, false);
    old.deleting = true;
    let plan = Case::new(1, vec![old], CartridgeView::NotBootstrapped).plan();
    assert_eq!(plan, Plan::default());
}

// ---------------------------------------------------------------- shrinking a replica set

#[test]
fn a_statefulset_shrinks_only_after_a_confirmed_hand_over() {
    let s = sts(0, 3, true);
    let joined = || vec![rec(&s, 3, None)];
    let with = |edit: &dyn Fn(&mut ReplicasetInfo)| {
        let mut i = info(&s, &[0, 1, 2], 0, 1.0, 10);
        edit(&mut i);
        answered(vec![i])
    };
    let master_is = |o: u32| {
        move |i: &mut ReplicasetInfo| {
            let uuid = i.servers[o as usize].uuid.clone();
            i.master = Some(uuid);
            for (n, server) in i.servers.iter_mut().enumerate() {
                server.read_only = Some(n as u32 != o);
            }
        }
    };
    let cases: Vec<ShrinkCase> = vec![
        (
            "master stays, writable; the leaving one read-only",
            Case::new(2, vec![s.clone()], with(&|_| {})).records(joined()),
            2,
            vec![],
            None,
        ),
        (
            "the master leaves: switched to a caught-up replica that stays, size held",
            Case::new(2, vec![s.clone()], with(&master_is(2))).records(joined()),
            3,
            vec!["switch"],
            Some("master moving to s-0-0"),
        ),
        (
            "switched, but the new master is not writable yet",
            Case::new(
                2,
                vec![s.clone()],
                with(&|i: &mut ReplicasetInfo| {
                    for server in &mut i.servers {
                        server.read_only = Some(true);
                    }
                }),
            )
            .records(joined()),
            3,
            vec![],
            Some("new master s-0-0 is not writable yet"),
        ),
        (
            "the new master's mode is not reported",
            Case::new(
                2,
                vec![s.clone()],
                with(&|i: &mut ReplicasetInfo| i.servers[0].read_only = None),
            )
            .records(joined()),
            3,
            vec![],
            Some("not writable yet"),
        ),
        (
            "the leaving old master still takes writes",
            Case::new(
                2,
                vec![s.clone()],
                with(&|i: &mut ReplicasetInfo| i.servers[2].read_only = Some(false)),
            )
            .records(joined()),
            3,
            vec![],
            Some("s-0-2 has not turned read-only yet"),
        ),
        (
            "the master leaves and every other instance lags",
            Case::new(
                2,
                vec![s.clone()],
                with(&|i: &mut ReplicasetInfo| {
                    master_is(2)(i);
                    i.servers[0].replication_lag = Some(5.0);
                    i.servers[1].healthy = false;
                }),
            )
            .records(joined()),
            3,
            vec![],
            Some("no healthy, caught-up instance"),
        ),
        (
            "a negative lag (clock skew) is caught up",
            Case::new(
                2,
                vec![s.clone()],
                with(&|i: &mut ReplicasetInfo| {
                    master_is(2)(i);
                    i.servers[0].replication_lag = Some(-0.07);
                }),
            )
            .records(joined()),
            3,
            vec!["switch"],
            Some("master moving to s-0-0"),
        ),
        (
            "Cartridge unknown",
            Case::new(2, vec![s.clone()], CartridgeView::Unknown("timeout".into()))
                .records(joined()),
            3,
            vec![],
            Some("timeout"),
        ),
        (
            "never joined, never bootstrapped",
            Case::new(2, vec![s.clone()], CartridgeView::NotBootstrapped),
            2,
            vec![],
            None,
        ),
        (
            "joined, the Cluster says not bootstrapped",
            Case::new(2, vec![s.clone()], CartridgeView::NotBootstrapped).records(joined()),
            3,
            vec![],
            Some("no verified answer"),
        ),
    ];
    for (name, case, size, ops, wait) in cases {
        let plan = case.plan();
        assert_eq!(plan.replicas.get("s-0"), Some(&size), "{name}: {plan:?}");
        assert_eq!(op_kinds(&plan), ops, "{name}: {plan:?}");
        let waits = plan
            .waits
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        match wait {
            Some(w) => assert!(waits.contains(w), "{name}: {waits}"),
            None => assert!(!waits.contains("s-0:"), "{name}: {waits}"),
        }
    }
}

#[test]
fn an_all_rw_replica_set_has_nothing_to_hand_over() {
    let s = sts(0, 2, true);
    let mut i = info(&s, &[0, 1], 0, 0.0, 0);
    i.all_rw = true;
    for server in &mut i.servers {
        server.read_only = Some(false);
    }
    let plan = Case::new(1, vec![s.clone()], answered(vec![i]))
        .records(vec![rec(&s, 2, None)])
        .plan();
    assert_eq!(plan.replicas.get("s-0"), Some(&1));
}

// ---------------------------------------------------------------- instances removed by the shrink

#[test]
fn removed_instances_are_recorded_expelled_confirmed_and_their_claims_deleted() {
    let s = sts(0, 2, true);
    let leaving = names::pod_name(&s.name, 2);
    let removal = |stage| InstanceRemoval {
        pod: leaving.clone(),
        uuid: server_uuid(&s, 2),
        stage,
    };
    let record = |stage: Option<InstanceStage>| {
        let mut r = rec(&s, 3, None);
        r.removed_instances = stage.map(removal).into_iter().collect();
        vec![r]
    };
    let with_leaving = || answered(vec![info(&s, &[0, 1, 2], 0, 1.0, 10)]);
    let without_leaving = || answered(vec![info(&s, &[0, 1], 0, 1.0, 10)]);
    let cases: Vec<ShedCase> = vec![
        (
            "its pod is still there",
            Case::new(2, vec![s.clone()], with_leaving())
                .records(record(None))
                .pods(&["s-0-0", "s-0-1", "s-0-2"]),
            vec![],
            vec![],
            Some("s-0-2 to stop"),
        ),
        (
            "pod gone: the epoch moves and the expel is recorded, not sent",
            Case::new(2, vec![s.clone()], with_leaving()).records(record(None)),
            vec!["bump"],
            vec![Record::Instance {
                statefulset: s.name.clone(),
                removal: removal(InstanceStage::Expelling),
            }],
            Some("expel next"),
        ),
        (
            "recorded: expelled",
            Case::new(2, vec![s.clone()], with_leaving())
                .records(record(Some(InstanceStage::Expelling))),
            vec!["expel-instances"],
            vec![],
            Some("expelled, to be confirmed"),
        ),
        (
            "recorded, Cartridge unknown: nothing",
            Case::new(2, vec![s.clone()], CartridgeView::Unknown("[]".into()))
                .records(record(Some(InstanceStage::Expelling))),
            vec![],
            vec![],
            Some("no verified answer"),
        ),
        (
            "expel confirmed: claims deleted",
            Case::new(2, vec![s.clone()], without_leaving())
                .records(record(Some(InstanceStage::Expelling))),
            vec!["delete-claims"],
            vec![Record::Instance {
                statefulset: s.name.clone(),
                removal: removal(InstanceStage::ClaimsDeleting),
            }],
            Some("volumes of s-0-2 to go"),
        ),
        (
            "claims still listed",
            Case::new(2, vec![s.clone()], without_leaving())
                .records(record(Some(InstanceStage::ClaimsDeleting)))
                .claims(&["data-s-0-0", "data-s-0-1", "data-s-0-2"]),
            vec![],
            vec![],
            Some("volumes of s-0-2 to go"),
        ),
        (
            "claims gone: forgotten",
            Case::new(2, vec![s.clone()], without_leaving())
                .records(record(Some(InstanceStage::ClaimsDeleting)))
                .claims(&["data-s-0-0", "data-s-0-1"]),
            vec![],
            vec![Record::ForgetInstance {
                statefulset: s.name.clone(),
                pod: leaving.clone(),
            }],
            None,
        ),
    ];
    for (name, case, ops, records, wait) in cases {
        let plan = case.plan();
        assert_eq!(op_kinds(&plan), ops, "{name}: {plan:?}");
        assert_eq!(plan.records, records, "{name}: {plan:?}");
        assert_waits(name, &plan, wait);
    }
}

#[test]
fn an_instance_of_an_older_epoch_is_expelled_without_a_second_bump() {
    let mut s = sts(0, 1, true);
    let old_uuid = server_uuid(&s, 1);
    s.epochs.bump(1);
    let mut i = info(&s, &[0], 0, 1.0, 1);
    let mut old = i.servers[0].clone();
    old.uuid = old_uuid;
    old.alias = "s-0-1".into();
    old.read_only = Some(true);
    i.servers.push(old);
    let plan = Case::new(1, vec![s.clone()], answered(vec![i]))
        .records(vec![rec(&s, 2, None)])
        .plan();
    assert_eq!(op_kinds(&plan), Vec::<&str>::new(), "{plan:?}");
    assert_eq!(plan.records.len(), 1);
}

#[test]
fn a_master_beyond_the_size_is_never_expelled() {
    let s = sts(0, 1, true);
    let i = info(&s, &[0, 1], 1, 1.0, 1);
    let mut r = rec(&s, 2, None);
    r.removed_instances = vec![InstanceRemoval {
        pod: "s-0-1".into(),
        uuid: server_uuid(&s, 1),
        stage: InstanceStage::Expelling,
    }];
    let plan = Case::new(1, vec![s.clone()], answered(vec![i]))
        .records(vec![r])
        .plan();
    assert!(!destroys(&plan), "{plan:?}");
}

// ---------------------------------------------------------------- growing

#[test]
fn growth_waits_for_the_volumes_of_expelled_instances() {
    let s = sts(0, 1, true);
    let mut r = rec(&s, 1, None);
    r.removed_instances = vec![InstanceRemoval {
        pod: "s-0-1".into(),
        uuid: server_uuid(&s, 1),
        stage: InstanceStage::ClaimsDeleting,
    }];
    let view = || answered(vec![info(&s, &[0], 0, 1.0, 1)]);
    let held = Case::new(3, vec![s.clone()], view())
        .records(vec![r.clone()])
        .claims(&["data-s-0-0", "data-s-0-1"])
        .plan();
    assert_eq!(held.replicas.get("s-0"), Some(&1), "{held:?}");
    let free = Case::new(3, vec![s.clone()], view())
        .records(vec![r])
        .claims(&["data-s-0-0"])
        .plan();
    // The record is forgotten in this pass; the growth follows in the next.
    assert!(
        free.records
            .iter()
            .any(|r| matches!(r, Record::ForgetInstance { .. }))
    );
    let plain = Case::new(3, vec![s.clone()], CartridgeView::NotAsked).plan();
    assert_eq!(plain.replicas.get("s-0"), Some(&3));
}

// ---------------------------------------------------------------- when to ask

#[test]
fn cartridge_is_asked_only_when_something_leaves() {
    let steady = Case::new(2, vec![sts(0, 2, true)], CartridgeView::NotAsked).records(vec![rec(
        &sts(0, 2, true),
        2,
        None,
    )]);
    let retiring = Case::new(
        2,
        vec![sts(0, 2, true), sts(1, 2, false)],
        CartridgeView::NotAsked,
    );
    let shrinking = Case::new(1, vec![sts(0, 2, true)], CartridgeView::NotAsked);
    let growing = Case::new(3, vec![sts(0, 2, true)], CartridgeView::NotAsked);
    let extra_joined = Case::new(2, vec![sts(0, 2, true)], CartridgeView::NotAsked)
        .records(vec![rec(&sts(0, 2, true), 3, None)]);
    for (name, case, want) in [
        ("steady", steady, false),
        ("retiring", retiring, true),
        ("shrinking", shrinking, true),
        ("growing", growing, false),
        ("extra joined", extra_joined, true),
    ] {
        assert_eq!(case.with_facts(needs_cartridge), want, "{name}");
    }
}

#[test]
fn records_are_applied_and_entries_made() {
    let mut records = vec![rec(&sts(0, 1, true), 1, None)];
    apply_records(
        &mut records,
        &[
            Record::Removal {
                statefulset: "s-1".into(),
                stage: RemovalStage::Draining,
            },
            Record::Instance {
                statefulset: "s-0".into(),
                removal: InstanceRemoval {
                    pod: "s-0-1".into(),
                    uuid: "u".into(),
                    stage: InstanceStage::Expelling,
                },
            },
            Record::Instance {
                statefulset: "s-0".into(),
                removal: InstanceRemoval {
                    pod: "s-0-1".into(),
                    uuid: "u".into(),
                    stage: InstanceStage::ClaimsDeleting,
                },
            },
        ],
    );
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].removal, Some(RemovalStage::Draining));
    assert_eq!(records[0].removed_instances.len(), 1);
    assert_eq!(
        records[0].removed_instances[0].stage,
        InstanceStage::ClaimsDeleting
    );
    apply_records(
        &mut records,
        &[Record::ForgetInstance {
            statefulset: "s-0".into(),
            pod: "s-0-1".into(),
        }],
    );
    assert!(records[0].removed_instances.is_empty());
}
