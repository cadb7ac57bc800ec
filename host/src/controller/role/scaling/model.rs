//! Model-based property tests of the scaling decisions.
//!
//! A small world (a storage Role's StatefulSets, pods and claims, and the
//! Cartridge truth behind them: replica sets, masters, which instance takes
//! writes, weights, buckets, expels) evolves under random spec changes
//! (replica sets up and down, replicas up and down, a new volume template),
//! while every pass observes it through an adversary: a true answer, `[]`,
//! a timeout, a proxied answer from a non-member, another cluster's view
//! with the same names. Cartridge itself misbehaves as observed: promotes
//! fail, a new master becomes writable only after a while, buckets move
//! slowly, and lags can be negative. The operator may crash after acting
//! and before its status write. Each pass runs [`decide`] (through the
//! same judge as the operator), applies the plan, and checks against the
//! truth:
//!
//! - no claim is deleted unless its instance never joined or was expelled
//!   (and a replica set is expelled only at 0 buckets);
//! - no expel of a replica set holding buckets, nor of a master;
//! - no pod whose instance is master, or whose replica set has no writable
//!   master that stays, is shrunk or deleted away;
//! - no pod starts on the volume of an expelled instance.
//!
//! After the adversary stops (true answers only, no spec change), the
//! world converges: every StatefulSet the spec names at its size, nothing
//! else left, no removal records.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{CLUSTER, NS, server_uuid};
use super::*;
use crate::controller::role::cartridge::{self, Answer};
use crate::topology::fake::FakeConnector;
use crate::topology::{Connector, InstanceTarget, ServerInfo};

/// Buckets of the cluster.
const BUCKETS: u64 = 60;

#[derive(Debug, Clone)]
struct TrueServer {
    ordinal: u32,
    uuid: String,
}

#[derive(Debug, Clone)]
struct TrueReplicaset {
    uuid: String,
    servers: Vec<TrueServer>,
    /// The master's ordinal.
    master: u32,
    /// The ordinal taking writes; `None` between a switch and the new
    /// master's turn to read-write.
    writable: Option<u32>,
    /// Passes until the master becomes writable.
    pending: u32,
    weight: f64,
    buckets: u64,
}

/// One adversarial observation.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Truth,
    Empty,
    Timeout,
    Proxied,
    Foreign,
}

/// What happens in one pass.
#[derive(Debug, Clone)]
struct Step {
    seen: Seen,
    /// A new spec: (replica sets, replicas, new volume template).
    spec: Option<(u32, u32, bool)>,
    crash: bool,
    promote_fails: bool,
    writable_after: u32,
    moved: u64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![
            4 => Just(Seen::Truth),
            2 => Just(Seen::Empty),
            1 => Just(Seen::Timeout),
            1 => Just(Seen::Proxied),
            1 => Just(Seen::Foreign),
        ],
        prop::option::weighted(0.15, (1u32..=3, 1u32..=3, prop::bool::weighted(0.3))),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        0u32..=2,
        0u64..=25,
    )
        .prop_map(
            |(seen, spec, crash, promote_fails, writable_after, moved)| Step {
                seen,
                spec,
                crash,
                promote_fails,
                writable_after,
                moved,
            },
        )
}

/// The Kubernetes side and the Cartridge truth.
#[derive(Debug, Clone)]
struct World {
    replicasets: u32,
    replicas: u32,
    generation: u32,
    statefulsets: Vec<StatefulSetFacts>,
    pods: BTreeSet<String>,
    /// Claim name -> (StatefulSet, ordinal, UUID of the instance that ran
    /// on it, once it joined).
    claims: BTreeMap<String, (String, u32, Option<String>)>,
    truth: BTreeMap<String, TrueReplicaset>,
    expelled: BTreeSet<String>,
    records: Vec<ReplicasetStatus>,
    next_uid: u32,
    violations: Vec<String>,
}

impl World {
    fn new(replicasets: u32, replicas: u32) -> Self {
        let mut world = Self {
            replicasets,
            replicas,
            generation: 0,
            statefulsets: Vec::new(),
            pods: BTreeSet::new(),
            claims: BTreeMap::new(),
            truth: BTreeMap::new(),
            expelled: BTreeSet::new(),
            records: Vec::new(),
            next_uid: 0,
            violations: Vec::new(),
        };
        world.create_missing();
        world.join_and_record(true);
        // vshard bootstrap: buckets spread over the storages.
        let n = world.truth.len() as u64;
        for (i, rs) in world.truth.values_mut().enumerate() {
            rs.buckets = BUCKETS / n + u64::from((i as u64) < BUCKETS % n);
        }
        world
    }

    fn wanted(&self) -> Vec<String> {
        (0..self.replicasets)
            .map(|i| format!("g{}x{i}", self.generation))
            .collect()
    }

    fn sts(&self, name: &str) -> Option<&StatefulSetFacts> {
        self.statefulsets.iter().find(|s| s.name == name)
    }

    /// Starts pod `ordinal` of `sts` on its claim (made if missing).
    fn start_pod(&mut self, sts: &StatefulSetFacts, ordinal: u32) {
        let pod = names::pod_name(&sts.name, ordinal);
        let claim = format!("data-{pod}");
        if let Some((_, _, Some(uuid))) = self.claims.get(&claim)
            && self.expelled.contains(uuid)
        {
            self.violations.push(format!(
                "{pod} starts on the volume of expelled instance {uuid}"
            ));
        }
        self.claims
            .entry(claim)
            .or_insert((sts.name.clone(), ordinal, None));
        self.pods.insert(pod);
    }

    /// StatefulSets the spec names and that do not exist are created.
    fn create_missing(&mut self) {
        for name in self.wanted() {
            if self.sts(&name).is_some() {
                continue;
            }
            self.next_uid += 1;
            let sts = StatefulSetFacts {
                name: name.clone(),
                uid: format!("uid{}", self.next_uid),
                wanted: true,
                replicas: self.replicas,
                epochs: Epochs::default(),
                claim_templates: vec!["data".into()],
                deleting: false,
            };
            for o in 0..sts.replicas {
                self.start_pod(&sts, o);
            }
            self.statefulsets.push(sts);
        }
        let wanted = self.wanted();
        for sts in &mut self.statefulsets {
            sts.wanted = wanted.contains(&sts.name);
        }
    }

    /// What the Role's join step does: replica sets whose pods all run
    /// join whole, new instances of joined sets join; recorded in the
    /// same pass (from the answer after the edit).
    fn join_and_record(&mut self, record: bool) {
        let wanted = self.wanted();
        let replicas = self.replicas;
        for sts in self.statefulsets.clone() {
            if !wanted.contains(&sts.name) {
                continue;
            }
            let pods: Vec<u32> = (0..replicas.min(sts.replicas))
                .filter(|o| self.pods.contains(&names::pod_name(&sts.name, *o)))
                .collect();
            if pods.len() as u32 != replicas {
                continue;
            }
            let uuid = identity::replicaset_uuid(NS, CLUSTER, &sts.name, &sts.uid);
            let joining: Vec<TrueServer> = pods
                .iter()
                .map(|&o| TrueServer {
                    ordinal: o,
                    uuid: server_uuid(&sts, o),
                })
                .filter(|s| !self.expelled.contains(&s.uuid))
                .collect();
            if joining.is_empty() && !self.truth.contains_key(&sts.name) {
                // Cartridge refuses expelled UUIDs: nothing joins.
                continue;
            }
            let rs = self
                .truth
                .entry(sts.name.clone())
                .or_insert_with(|| TrueReplicaset {
                    uuid: uuid.clone(),
                    servers: Vec::new(),
                    master: joining.first().map_or(0, |s| s.ordinal),
                    writable: joining.first().map(|s| s.ordinal),
                    pending: 0,
                    weight: 1.0,
                    buckets: 0,
                });
            for server in joining {
                if rs.servers.iter().all(|s| s.ordinal != server.ordinal) {
                    let claim = format!("data-{}", names::pod_name(&sts.name, server.ordinal));
                    if let Some(entry) = self.claims.get_mut(&claim) {
                        entry.2 = Some(server.uuid.clone());
                    }
                    rs.servers.push(server);
                }
            }
            let joined = i32::try_from(rs.servers.len()).unwrap_or(0);
            if !record {
                // The operator crashed before its status write.
                continue;
            }
            match self.records.iter_mut().find(|r| r.name == sts.name) {
                Some(r) => {
                    r.uuid = Some(uuid);
                    r.joined = joined;
                }
                None => self.records.push(ReplicasetStatus {
                    name: sts.name.clone(),
                    uuid: Some(uuid),
                    joined,
                    ..ReplicasetStatus::default()
                }),
            }
        }
    }

    /// The truth as Cartridge reports it.
    fn report(&self, uuid_prefix: &str) -> Vec<ReplicasetInfo> {
        self.truth
            .iter()
            .map(|(name, rs)| ReplicasetInfo {
                uuid: format!("{uuid_prefix}{}", rs.uuid),
                alias: name.clone(),
                roles: vec![STORAGE_ROLE.into()],
                weight: Some(rs.weight),
                master: rs
                    .servers
                    .iter()
                    .find(|s| s.ordinal == rs.master)
                    .map(|s| format!("{uuid_prefix}{}", s.uuid)),
                servers: rs
                    .servers
                    .iter()
                    .map(|s| {
                        let pod = names::pod_name(name, s.ordinal);
                        let up = self.pods.contains(&pod);
                        ServerInfo {
                            uuid: format!("{uuid_prefix}{}", s.uuid),
                            uri: format!("{pod}:3301"),
                            alias: pod,
                            healthy: up,
                            replication_lag: (s.ordinal != rs.master).then_some(-0.07),
                            replicating: up,
                            bucket_count: up.then_some(rs.buckets),
                            read_only: up.then_some(rs.writable != Some(s.ordinal)),
                        }
                    })
                    .collect(),
                ..ReplicasetInfo::default()
            })
            .collect()
    }

    /// A running member to ask, and the replica set its StatefulSet gives.
    fn member(&self) -> Option<(String, String)> {
        self.truth.iter().find_map(|(name, rs)| {
            rs.servers.iter().find_map(|s| {
                let pod = names::pod_name(name, s.ordinal);
                self.pods.contains(&pod).then(|| (pod, rs.uuid.clone()))
            })
        })
    }

    /// One observation, through the operator's judge.
    fn observe(&self, seen: Seen) -> CartridgeView {
        let joined = cartridge::joined(&self.records);
        let (source, home, answer) = match (seen, self.member()) {
            (Seen::Timeout, _) | (_, None) => {
                return CartridgeView::Unknown("timeout".into());
            }
            (Seen::Truth, Some((pod, home))) => (pod, home, self.report("")),
            (Seen::Empty, Some((pod, home))) => (pod, home, Vec::new()),
            // A pod not (yet) in the topology: Cartridge proxies the call.
            (Seen::Proxied, Some((_, home))) => ("newcomer-0".to_string(), home, self.report("")),
            // Another cluster with the same names.
            (Seen::Foreign, Some((pod, home))) => (pod, home, self.report("other-")),
        };
        match cartridge::judge(&source, Some(&home), &answer, &joined) {
            Ok(()) => CartridgeView::Answered(Answer {
                source,
                replicasets: answer,
                client: FakeConnector::new().connect(&InstanceTarget::for_pod(NS, "x", None)),
            }),
            Err(why) => CartridgeView::Unknown(why.to_string()),
        }
    }

    fn leader(&self) -> Option<String> {
        // The Cluster keeps its leader in a replica set the spec names.
        let wanted = self.wanted();
        self.truth
            .iter()
            .filter(|(name, _)| wanted.contains(name))
            .find_map(|(name, rs)| {
                let pod = names::pod_name(name, rs.master);
                self.pods.contains(&pod).then_some(pod)
            })
    }

    fn owner_of_uuid(&self, uuid: &str) -> Option<(&String, &TrueReplicaset)> {
        self.truth
            .iter()
            .find(|(_, rs)| rs.servers.iter().any(|s| s.uuid == uuid))
    }

    /// Removing pod `ordinal` of `sts` must not lose acknowledged writes.
    fn check_pod_removal(&mut self, sts: &str, ordinal: u32, staying: u32, why: &str) {
        let Some(rs) = self.truth.get(sts) else {
            return;
        };
        if !rs.servers.iter().any(|s| s.ordinal == ordinal) {
            return;
        }
        if rs.master == ordinal {
            self.violations
                .push(format!("{why}: {sts}-{ordinal} removed while master"));
        } else if rs.writable.is_none_or(|w| w >= staying) {
            self.violations.push(format!(
                "{why}: {sts}-{ordinal} removed before a staying master took writes"
            ));
        }
    }

    /// The operator's decision on this world, seen as `view`.
    fn plan(&self, view: &CartridgeView) -> Plan {
        let leader = self.leader();
        let claims: BTreeSet<String> = self.claims.keys().cloned().collect();
        decide(&Facts {
            namespace: NS,
            cluster: CLUSTER,
            replicas: self.replicas,
            statefulsets: &self.statefulsets,
            pods: &self.pods,
            claims: Some(&claims),
            records: &self.records,
            view,
            leader: leader.as_deref(),
            max_lag: 1.0,
            weight: None,
        })
    }

    fn pass(&mut self, step: &Step) {
        if let Some((replicasets, replicas, new_template)) = step.spec {
            self.replicasets = replicasets;
            self.replicas = replicas;
            if new_template {
                self.generation += 1;
            }
            self.create_missing();
        }
        let view = self.observe(step.seen);
        let plan = self.plan(&view);
        for op in &plan.ops {
            self.perform(op, step);
        }
        // The StatefulSets take the plan's sizes.
        for (name, size) in &plan.replicas {
            let Some(at) = self.statefulsets.iter().position(|s| &s.name == name) else {
                continue;
            };
            let sts = self.statefulsets[at].clone();
            for o in *size..sts.replicas {
                self.check_pod_removal(name, o, *size, "shrink");
                self.pods.remove(&names::pod_name(name, o));
            }
            for o in sts.replicas..*size {
                self.start_pod(&sts, o);
            }
            self.statefulsets[at].replicas = *size;
        }
        if !step.crash {
            apply_records(&mut self.records, &plan.records);
            if let CartridgeView::Answered(answer) = &view {
                for record in &mut self.records {
                    if let Some(sts) = self.statefulsets.iter().find(|s| s.name == record.name) {
                        let uuid = identity::replicaset_uuid(NS, CLUSTER, &sts.name, &sts.uid);
                        if let Some(info) = answer.replicaset(&uuid) {
                            record.uuid = Some(uuid);
                            record.joined = i32::try_from(info.servers.len()).unwrap_or(0);
                        }
                    }
                }
            }
        }
        let names: Vec<String> = self.statefulsets.iter().map(|s| s.name.clone()).collect();
        self.records.retain(|r| names.contains(&r.name));
        self.create_missing();
        self.join_and_record(!step.crash);
        self.cartridge_moves(step.moved);
    }

    fn perform(&mut self, op: &Op, step: &Step) {
        match op {
            Op::SwitchMaster { replicaset, to, .. } => {
                let Some((name, _)) = self.owner_of_uuid(to) else {
                    return;
                };
                let name = name.clone();
                let Some(rs) = self.truth.get_mut(&name) else {
                    return;
                };
                if rs.uuid != replicaset.uuid || step.promote_fails {
                    // The priority edit is committed, the promote refused:
                    // the master stays.
                    return;
                }
                if let Some(server) = rs.servers.iter().find(|s| &s.uuid == to) {
                    rs.master = server.ordinal;
                    rs.writable = None;
                    rs.pending = step.writable_after;
                }
            }
            Op::Drain { uuid, .. } => {
                for rs in self.truth.values_mut() {
                    if &rs.uuid == uuid {
                        rs.weight = 0.0;
                    }
                }
            }
            Op::Restore { uuid, weight, .. } => {
                for rs in self.truth.values_mut() {
                    if &rs.uuid == uuid {
                        rs.weight = *weight;
                    }
                }
            }
            Op::BumpEpochs {
                statefulset,
                epochs,
            } => {
                if let Some(sts) = self
                    .statefulsets
                    .iter_mut()
                    .find(|s| &s.name == statefulset)
                {
                    sts.epochs = epochs.clone();
                }
            }
            Op::Expel { uuids, whole, .. } => {
                for uuid in uuids {
                    let Some((name, rs)) = self.owner_of_uuid(uuid) else {
                        continue;
                    };
                    let name = name.clone();
                    let master = rs
                        .servers
                        .iter()
                        .any(|s| &s.uuid == uuid && s.ordinal == rs.master);
                    if *whole && rs.buckets > 0 {
                        self.violations
                            .push(format!("expel of {name} holding {} buckets", rs.buckets));
                        continue;
                    }
                    if !whole && master {
                        self.violations
                            .push(format!("expel of the master of {name}"));
                        continue;
                    }
                    if let Some(rs) = self.truth.get_mut(&name) {
                        rs.servers.retain(|s| &s.uuid != uuid);
                        if rs.servers.is_empty() {
                            self.truth.remove(&name);
                        }
                    }
                    self.expelled.insert(uuid.clone());
                }
            }
            Op::DeleteClaims { claims, .. } => {
                for claim in claims {
                    let Some((sts, ordinal, instance)) = self.claims.remove(claim) else {
                        continue;
                    };
                    if let Some(uuid) = instance
                        && !self.expelled.contains(&uuid)
                    {
                        self.violations.push(format!(
                            "claim {claim} deleted while its instance {uuid} was not expelled"
                        ));
                    }
                    if self.pods.contains(&names::pod_name(&sts, ordinal))
                        && self
                            .truth
                            .get(&sts)
                            .is_some_and(|rs| rs.servers.iter().any(|s| s.ordinal == ordinal))
                    {
                        self.violations
                            .push(format!("claim {claim} deleted under a member"));
                    }
                }
            }
            Op::DeleteStatefulSet { name } => {
                if let Some(rs) = self.truth.get(name) {
                    self.violations.push(format!(
                        "StatefulSet {name} deleted while {} of its instances are members",
                        rs.servers.len()
                    ));
                }
                self.statefulsets.retain(|s| &s.name != name);
                self.pods.retain(|p| ordinal(name, p).is_none());
            }
        }
    }

    /// Cartridge on its own: a switched master turns writable after a
    /// while; the rebalancer moves some buckets from replica sets of weight
    /// 0 to the others.
    fn cartridge_moves(&mut self, moved: u64) {
        for (name, rs) in &mut self.truth {
            if rs.writable.is_none() {
                if rs.pending == 0 && self.pods.contains(&names::pod_name(name, rs.master)) {
                    rs.writable = Some(rs.master);
                } else {
                    rs.pending = rs.pending.saturating_sub(1);
                }
            }
        }
        let receivers: Vec<String> = self
            .truth
            .iter()
            .filter(|(_, rs)| rs.weight > 0.0)
            .map(|(n, _)| n.clone())
            .collect();
        let Some(receiver) = receivers.first().cloned() else {
            return;
        };
        let mut total = 0;
        for rs in self.truth.values_mut().filter(|rs| rs.weight == 0.0) {
            let m = moved.min(rs.buckets);
            rs.buckets -= m;
            total += m;
        }
        if let Some(rs) = self.truth.get_mut(&receiver) {
            rs.buckets += total;
        }
    }

    fn converged(&self) -> Result<(), String> {
        self.settled().map_err(|e| {
            let plan = self.plan(&self.observe(Seen::Truth));
            format!(
                "{e}; the plan waits for {:?}; truth {:?}",
                plan.waits, self.truth
            )
        })
    }

    fn settled(&self) -> Result<(), String> {
        let wanted = self.wanted();
        for sts in &self.statefulsets {
            if !wanted.contains(&sts.name) {
                return Err(format!("{} still there", sts.name));
            }
            if sts.replicas != self.replicas {
                return Err(format!("{} at {} replicas", sts.name, sts.replicas));
            }
        }
        if let Some(r) = self
            .records
            .iter()
            .find(|r| r.removal.is_some() || !r.removed_instances.is_empty())
        {
            return Err(format!("records left: {r:?}"));
        }
        let total: u64 = self.truth.values().map(|rs| rs.buckets).sum();
        if total != BUCKETS {
            return Err(format!("{total} buckets of {BUCKETS}"));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_data_is_lost_whatever_cartridge_answers(
        replicasets in 1u32..=3,
        replicas in 1u32..=3,
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let mut world = World::new(replicasets, replicas);
        for step in &steps {
            world.pass(step);
            prop_assert!(world.violations.is_empty(), "{:?} after {step:?}", world.violations);
        }
        // The adversary stops: true answers, a working Cartridge.
        let calm = Step {
            seen: Seen::Truth,
            spec: None,
            crash: false,
            promote_fails: false,
            writable_after: 0,
            moved: 25,
        };
        for _ in 0..40 {
            world.pass(&calm);
        }
        prop_assert!(world.violations.is_empty(), "{:?}", world.violations);
        prop_assert_eq!(world.converged(), Ok(()));
    }
}
