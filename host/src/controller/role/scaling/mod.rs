//! Scaling decisions: which replica sets and instances leave, and when
//! each destructive step may happen. Pure: facts in, a [`Plan`] out; the
//! executor is [`super::scaling_exec`].
//!
//! A replica set leaves when the Role wants fewer of them, or when a new
//! volume template gave its StatefulSet a successor (the PVC migration):
//!
//! 1. weight 0, recorded as [`RemovalStage::Draining`];
//! 2. once a verified member reports it holding no buckets and the
//!    Cluster's leader is elsewhere: recorded as
//!    [`RemovalStage::Expelling`] (written before the expel, so that a
//!    restarted operator knows an absent replica set was its own doing);
//! 3. the expel;
//! 4. once a verified member no longer reports it: its claims and its
//!    StatefulSet are deleted.
//!
//! An instance leaves when the Role wants fewer replicas: the master moves
//! to an instance that stays; the StatefulSet shrinks only once the new
//! master reports itself writable and the leaving ones read-only; once the
//! pod is gone the instance is recorded ([`InstanceStage::Expelling`],
//! with its ordinal's epoch moved first), expelled, and once a verified
//! member no longer reports it, its claims are deleted. The StatefulSet
//! grows back over that ordinal only after the claims are gone.
//!
//! Evidence before destruction: every step that loses something needs a
//! verified answer ([`CartridgeView::Answered`]); an unknown is never an
//! absence. Replica sets and instances are matched by their deterministic
//! UUIDs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::cartridge::CartridgeView;
use crate::api::role::{InstanceRemoval, InstanceStage, RemovalStage, ReplicasetStatus};
use crate::resources::epochs::Epochs;
use crate::resources::names;
use crate::topology::{ReplicasetInfo, identity};

/// The vshard role whose replica sets hold buckets.
const STORAGE_ROLE: &str = "vshard-storage";

/// One of the Role's StatefulSets, as observed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatefulSetFacts {
    /// Its name, `<role>-<ordinal>-<hash>`.
    pub name: String,
    /// Its UID (part of every UUID of its replica set).
    pub uid: String,
    /// The spec still names it.
    pub wanted: bool,
    /// `spec.replicas` as it is now.
    pub replicas: u32,
    /// Its instance epochs.
    pub epochs: Epochs,
    /// The names of its volume claim templates.
    pub claim_templates: Vec<String>,
    /// It is being deleted already.
    pub deleting: bool,
}

/// Everything a scaling decision depends on.
#[derive(Debug, Clone)]
pub(crate) struct Facts<'a> {
    /// The Role's namespace.
    pub namespace: &'a str,
    /// Its Cluster's name.
    pub cluster: &'a str,
    /// Instances per replica set the spec wants.
    pub replicas: u32,
    /// The Role's StatefulSets.
    pub statefulsets: &'a [StatefulSetFacts],
    /// Names of the Role's pods that exist (terminating ones included).
    pub pods: &'a BTreeSet<String>,
    /// Names of the Role's claims, when they were listed this pass.
    pub claims: Option<&'a BTreeSet<String>>,
    /// The Role's status as last written.
    pub records: &'a [ReplicasetStatus],
    /// What Cartridge said.
    pub view: &'a CartridgeView,
    /// The Cluster's topology leader (a pod), if any.
    pub leader: Option<&'a str>,
    /// Seconds a replica may lag and still take over as master.
    pub max_lag: f64,
    /// The vshard weight the spec gives the Role's replica sets (a removal
    /// cancelled puts it back).
    pub weight: Option<f64>,
}

/// One destructive or topology-changing step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Make `to` (UUID; pod `to_alias`) master of `replicaset`.
    SwitchMaster {
        /// The replica set as the verified member reported it.
        replicaset: ReplicasetInfo,
        /// The new master's UUID.
        to: String,
        /// Its pod.
        to_alias: String,
    },
    /// The spec's weight again: a removal was cancelled (the spec names
    /// the replica set again before it was expelled).
    Restore {
        /// The replica set's UUID.
        uuid: String,
        /// Its StatefulSet.
        name: String,
        /// The weight.
        weight: f64,
    },
    /// Weight 0: its buckets move away.
    Drain {
        /// The replica set's UUID.
        uuid: String,
        /// Its StatefulSet.
        name: String,
    },
    /// Record new instance epochs on a StatefulSet (before an expel).
    BumpEpochs {
        /// The StatefulSet.
        statefulset: String,
        /// All of its epochs, bumped.
        epochs: Epochs,
    },
    /// Expel servers.
    Expel {
        /// The StatefulSet they belong to.
        statefulset: String,
        /// Their UUIDs.
        uuids: Vec<String>,
        /// The whole replica set goes.
        whole: bool,
    },
    /// Delete volume claims (their instances are out of the topology).
    DeleteClaims {
        /// The StatefulSet they belong to.
        statefulset: String,
        /// Claim names.
        claims: Vec<String>,
    },
    /// Delete a StatefulSet whose replica set is out of the topology.
    DeleteStatefulSet {
        /// Its name.
        name: String,
    },
}

/// A change to the Role's status records.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// Set a replica set's removal stage.
    Removal {
        /// The StatefulSet.
        statefulset: String,
        /// The stage.
        stage: RemovalStage,
    },
    /// Set (or add) an instance's removal.
    Instance {
        /// The StatefulSet.
        statefulset: String,
        /// The removal.
        removal: InstanceRemoval,
    },
    /// The spec names a replica set again before it was expelled: its
    /// removal is over.
    CancelRemoval {
        /// The StatefulSet.
        statefulset: String,
    },
    /// Forget an instance whose volumes are gone.
    ForgetInstance {
        /// The StatefulSet.
        statefulset: String,
        /// Its pod.
        pod: String,
    },
}

/// Why scaling cannot go on yet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wait {
    /// No verified answer, and the step needs one.
    Unknown {
        /// The replica set concerned.
        replicaset: String,
        /// Why the answer is missing.
        why: String,
    },
    /// A replica set the status records as joined is missing from a
    /// verified answer, and the operator never expelled it: its volumes
    /// stay until a human looks.
    Unaccounted {
        /// The replica set.
        replicaset: String,
    },
    /// The master must leave, and no instance that stays can take over.
    NoCandidate {
        /// The replica set.
        replicaset: String,
        /// Its master's pod.
        master: String,
    },
    /// A master switch was sent; it counts once Cartridge confirms it.
    Switching {
        /// The replica set.
        replicaset: String,
        /// The new master's pod.
        to: String,
    },
    /// The master is an instance that stays, but the hand-over is not
    /// confirmed (new master writable, leaving ones read-only).
    HandOver {
        /// The replica set.
        replicaset: String,
        /// What is missing.
        detail: String,
    },
    /// Buckets are still leaving.
    Draining {
        /// The replica set.
        replicaset: String,
        /// Buckets left, when reported.
        buckets: Option<u64>,
    },
    /// A storage replica set holding data must leave, and no storage
    /// replica set that stays has weight to take its buckets.
    NowhereToGo {
        /// The replica set.
        replicaset: String,
    },
    /// The Cluster's leader lives in the replica set.
    LeaderInside {
        /// The replica set.
        replicaset: String,
    },
    /// A step was recorded; it happens in the next pass.
    Recorded {
        /// The replica set or instance.
        subject: String,
        /// The step.
        step: &'static str,
    },
    /// An expel was sent; confirmed when a verified member stops reporting.
    Expelled {
        /// The replica set or instance.
        subject: String,
    },
    /// A removed instance's pod is still there.
    PodStopping {
        /// The pod.
        pod: String,
    },
    /// Claims are being deleted; the ordinal comes back after.
    ClaimsGoing {
        /// The pod whose claims they are.
        pod: String,
    },
}

impl Wait {
    /// Waits that end on their own within a pass or two (a short requeue
    /// is enough); the others end by Cartridge's pace.
    pub(crate) fn is_short(&self) -> bool {
        matches!(self, Self::Recorded { .. })
    }

    /// A master switch being confirmed: over within seconds.
    pub(crate) fn is_hand_over(&self) -> bool {
        matches!(self, Self::Switching { .. } | Self::HandOver { .. })
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { replicaset, why } => {
                write!(f, "{replicaset}: no verified answer from Cartridge ({why})")
            }
            Self::Unaccounted { replicaset } => write!(
                f,
                "{replicaset}: joined, missing from Cartridge's answer, and never expelled by the operator; its volumes are kept (delete the StatefulSet by hand once you know where its data is)"
            ),
            Self::NoCandidate { replicaset, master } => write!(
                f,
                "{replicaset}: no healthy, caught-up instance that stays can take over from master {master}"
            ),
            Self::Switching { replicaset, to } => {
                write!(f, "{replicaset}: master moving to {to}")
            }
            Self::HandOver { replicaset, detail } => write!(f, "{replicaset}: {detail}"),
            Self::Draining {
                replicaset,
                buckets: Some(n),
            } => write!(f, "{replicaset} to drain ({n} buckets left)"),
            Self::Draining {
                replicaset,
                buckets: None,
            } => write!(f, "{replicaset} to drain"),
            Self::LeaderInside { replicaset } => {
                write!(f, "the Cluster's leader to move out of {replicaset}")
            }
            Self::NowhereToGo { replicaset } => write!(
                f,
                "{replicaset} holds data and no storage replica set that stays has weight to take its buckets"
            ),
            Self::Recorded { subject, step } => write!(f, "{subject}: {step} next"),
            Self::Expelled { subject } => write!(f, "{subject}: expelled, to be confirmed"),
            Self::PodStopping { pod } => write!(f, "{pod} to stop"),
            Self::ClaimsGoing { pod } => write!(f, "the volumes of {pod} to go"),
        }
    }
}

/// What to do this pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    /// `spec.replicas` to apply to each wanted StatefulSet (held where a
    /// shrink or a growth must wait).
    pub replicas: BTreeMap<String, u32>,
    /// Steps, in order.
    pub ops: Vec<Op>,
    /// Status records to change.
    pub records: Vec<Record>,
    /// What scaling waits for.
    pub waits: Vec<Wait>,
}

impl Plan {
    /// StatefulSets this plan deletes (not to be applied in the same pass).
    pub(crate) fn deletes(&self, name: &str) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::DeleteStatefulSet { name: n } if n == name))
    }
}

/// The ordinal of a pod of StatefulSet `sts`.
pub(crate) fn ordinal(sts: &str, pod: &str) -> Option<u32> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

/// Whether the pass needs Cartridge's view to decide scaling: something
/// leaves, or a removal is under way.
pub(crate) fn needs_cartridge(facts: &Facts<'_>) -> bool {
    facts
        .statefulsets
        .iter()
        .any(|s| !s.deleting && (!s.wanted || s.replicas > facts.replicas))
        || facts
            .records
            .iter()
            .any(|r| r.removal.is_some() || !r.removed_instances.is_empty())
        || facts
            .records
            .iter()
            .any(|r| r.joined > to_i32(facts.replicas))
}

/// Whether the pass needs the Role's claims listed.
pub(crate) fn needs_claims(facts: &Facts<'_>) -> bool {
    facts.records.iter().any(|r| {
        r.removed_instances
            .iter()
            .any(|i| i.stage == InstanceStage::ClaimsDeleting)
    })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The scaling plan for this pass.
pub(crate) fn decide(facts: &Facts<'_>) -> Plan {
    let mut plan = Plan::default();
    for sts in facts.statefulsets.iter().filter(|s| !s.deleting) {
        if sts.wanted {
            keep(facts, sts, &mut plan);
        } else {
            retire(facts, sts, &mut plan);
        }
    }
    plan
}

fn record<'a>(facts: &Facts<'a>, name: &str) -> Option<&'a ReplicasetStatus> {
    facts.records.iter().find(|r| r.name == name)
}

/// The status records it as joined at some point.
fn ever_joined(record: Option<&ReplicasetStatus>) -> bool {
    record.is_some_and(|r| r.joined > 0 || r.removal.is_some())
}

fn replicaset_uuid(facts: &Facts<'_>, sts: &StatefulSetFacts) -> String {
    identity::replicaset_uuid(facts.namespace, facts.cluster, &sts.name, &sts.uid)
}

fn claims_of(sts: &StatefulSetFacts, pod: &str) -> Vec<String> {
    sts.claim_templates
        .iter()
        .map(|t| format!("{t}-{pod}"))
        .collect()
}

fn is_storage(info: &ReplicasetInfo) -> bool {
    info.roles.iter().any(|r| r == STORAGE_ROLE)
}

/// Storage replica sets must report 0 buckets; the others hold none.
fn drained(info: &ReplicasetInfo) -> Result<(), Option<u64>> {
    if !is_storage(info) {
        return Ok(());
    }
    match info.bucket_count() {
        Some(0) => Ok(()),
        other => Err(other),
    }
}

/// A StatefulSet the spec no longer names.
fn retire(facts: &Facts<'_>, sts: &StatefulSetFacts, plan: &mut Plan) {
    let record = record(facts, &sts.name);
    let stage = record.and_then(|r| r.removal);
    let uuid = replicaset_uuid(facts, sts);
    let unknown = |plan: &mut Plan| {
        plan.waits.push(Wait::Unknown {
            replicaset: sts.name.clone(),
            why: facts.view.why_unknown(),
        })
    };
    let delete = |plan: &mut Plan| {
        let pods = (0..sts.replicas).map(|i| names::pod_name(&sts.name, i));
        let mut claims: Vec<String> = pods.flat_map(|p| claims_of(sts, &p)).collect();
        // Claims of ordinals beyond the current size (an earlier shrink).
        if let Some(listed) = facts.claims {
            for claim in listed {
                let ours = sts.claim_templates.iter().any(|t| {
                    claim
                        .strip_prefix(t.as_str())
                        .and_then(|rest| rest.strip_prefix('-'))
                        .and_then(|pod| ordinal(&sts.name, pod))
                        .is_some()
                });
                if ours && !claims.contains(claim) {
                    claims.push(claim.clone());
                }
            }
        }
        if !claims.is_empty() {
            plan.ops.push(Op::DeleteClaims {
                statefulset: sts.name.clone(),
                claims,
            });
        }
        plan.ops.push(Op::DeleteStatefulSet {
            name: sts.name.clone(),
        });
    };
    let Some(answer) = facts.view.answer() else {
        // Nothing of a replica set that never joined is in a topology that
        // was never bootstrapped.
        if matches!(facts.view, CartridgeView::NotBootstrapped) && !ever_joined(record) {
            delete(plan);
        } else {
            unknown(plan);
        }
        return;
    };
    let Some(info) = answer.replicaset(&uuid) else {
        match stage {
            Some(RemovalStage::Expelling) => delete(plan),
            _ if !ever_joined(record) => delete(plan),
            _ => plan.waits.push(Wait::Unaccounted {
                replicaset: sts.name.clone(),
            }),
        }
        return;
    };
    // Its buckets need a storage that stays (this Role's others, or
    // another Role's); without one, draining would only fail or strand
    // them.
    let leaving: Vec<String> = facts
        .statefulsets
        .iter()
        .filter(|s| !s.wanted)
        .map(|s| replicaset_uuid(facts, s))
        .collect();
    let holds_data = info.weight.is_some_and(|w| w > 0.0) || info.bucket_count() != Some(0);
    let somewhere = answer
        .replicasets
        .iter()
        .any(|r| is_storage(r) && r.weight.is_some_and(|w| w > 0.0) && !leaving.contains(&r.uuid));
    if is_storage(info) && holds_data && !somewhere {
        plan.waits.push(Wait::NowhereToGo {
            replicaset: sts.name.clone(),
        });
        return;
    }
    if info.weight.is_some_and(|w| w > 0.0) {
        plan.ops.push(Op::Drain {
            uuid: info.uuid.clone(),
            name: sts.name.clone(),
        });
        plan.records.push(Record::Removal {
            statefulset: sts.name.clone(),
            stage: RemovalStage::Draining,
        });
        plan.waits.push(Wait::Draining {
            replicaset: sts.name.clone(),
            buckets: info.bucket_count(),
        });
        return;
    }
    if let Err(buckets) = drained(info) {
        if stage.is_none() {
            plan.records.push(Record::Removal {
                statefulset: sts.name.clone(),
                stage: RemovalStage::Draining,
            });
        }
        plan.waits.push(Wait::Draining {
            replicaset: sts.name.clone(),
            buckets,
        });
        return;
    }
    if facts
        .leader
        .is_some_and(|l| ordinal(&sts.name, l).is_some())
    {
        plan.waits.push(Wait::LeaderInside {
            replicaset: sts.name.clone(),
        });
        return;
    }
    if stage != Some(RemovalStage::Expelling) {
        plan.records.push(Record::Removal {
            statefulset: sts.name.clone(),
            stage: RemovalStage::Expelling,
        });
        plan.waits.push(Wait::Recorded {
            subject: sts.name.clone(),
            step: "expel",
        });
        return;
    }
    plan.ops.push(Op::Expel {
        statefulset: sts.name.clone(),
        uuids: info.servers.iter().map(|s| s.uuid.clone()).collect(),
        whole: true,
    });
    plan.waits.push(Wait::Expelled {
        subject: sts.name.clone(),
    });
}

/// A StatefulSet the spec names again while it was on its way out
/// (replica sets down, then up): a removal not past the expel is
/// cancelled and the weight put back; an expelled replica set can never
/// rejoin under its UUID, so its StatefulSet finishes going and comes back
/// as a new one. `true` when the StatefulSet is dealt with here.
fn readmit(
    facts: &Facts<'_>,
    sts: &StatefulSetFacts,
    stage: RemovalStage,
    info: Option<&ReplicasetInfo>,
    plan: &mut Plan,
) -> bool {
    match (stage, info, facts.view.answer()) {
        (_, Some(info), _) => {
            // Cartridge gives a storage weight 1 unless the spec says.
            let weight = facts.weight.unwrap_or(1.0);
            if is_storage(info) && info.weight != Some(weight) {
                plan.ops.push(Op::Restore {
                    uuid: info.uuid.clone(),
                    name: sts.name.clone(),
                    weight,
                });
            }
            plan.records.push(Record::CancelRemoval {
                statefulset: sts.name.clone(),
            });
            false
        }
        (RemovalStage::Expelling, None, Some(_)) => {
            retire(facts, sts, plan);
            true
        }
        (RemovalStage::Draining, None, Some(_)) => {
            plan.waits.push(Wait::Unaccounted {
                replicaset: sts.name.clone(),
            });
            true
        }
        (_, None, None) => {
            plan.waits.push(Wait::Unknown {
                replicaset: sts.name.clone(),
                why: facts.view.why_unknown(),
            });
            true
        }
    }
}

/// A StatefulSet the spec names: its size, and the instances it sheds.
fn keep(facts: &Facts<'_>, sts: &StatefulSetFacts, plan: &mut Plan) {
    let want = facts.replicas;
    let record = record(facts, &sts.name);
    let removals: &[InstanceRemoval] = record.map_or(&[], |r| &r.removed_instances);
    let uuid = replicaset_uuid(facts, sts);
    let info = facts.view.answer().and_then(|a| a.replicaset(&uuid));
    if let Some(stage) = record.and_then(|r| r.removal)
        && readmit(facts, sts, stage, info, plan)
    {
        return;
    }

    let size = if sts.replicas < want {
        grow(sts, want, removals, plan)
    } else if sts.replicas > want {
        shrink(facts, sts, record, info, plan)
    } else {
        want
    };
    plan.replicas.insert(sts.name.clone(), size);

    let Some(info) = info else {
        // Removals under way need evidence to go on; without it they wait
        // (their records stay).
        if !removals.is_empty() {
            plan.waits.push(Wait::Unknown {
                replicaset: sts.name.clone(),
                why: facts.view.why_unknown(),
            });
        }
        return;
    };
    shed(facts, sts, info, removals, plan);
}

/// Growth waits while the claims of an ordinal it would bring back are
/// still being deleted: the pod would start on an expelled instance's data.
fn grow(sts: &StatefulSetFacts, want: u32, removals: &[InstanceRemoval], plan: &mut Plan) -> u32 {
    let blocked: Vec<&InstanceRemoval> = removals
        .iter()
        .filter(|r| ordinal(&sts.name, &r.pod).is_some_and(|o| o < want))
        .collect();
    if blocked.is_empty() {
        return want;
    }
    for r in blocked {
        plan.waits.push(Wait::ClaimsGoing { pod: r.pod.clone() });
    }
    sts.replicas
}

/// The StatefulSet shrinks only once the master is an instance that stays,
/// writable, and every leaving instance is read-only (or unreachable).
fn shrink(
    facts: &Facts<'_>,
    sts: &StatefulSetFacts,
    record: Option<&ReplicasetStatus>,
    info: Option<&ReplicasetInfo>,
    plan: &mut Plan,
) -> u32 {
    let want = facts.replicas;
    let hold = sts.replicas;
    let Some(info) = info else {
        let never = !ever_joined(record);
        return match facts.view {
            CartridgeView::Answered(_) if never => want,
            CartridgeView::NotBootstrapped if never => want,
            CartridgeView::Answered(_) => {
                plan.waits.push(Wait::Unaccounted {
                    replicaset: sts.name.clone(),
                });
                hold
            }
            _ => {
                plan.waits.push(Wait::Unknown {
                    replicaset: sts.name.clone(),
                    why: facts.view.why_unknown(),
                });
                hold
            }
        };
    };
    let stays = |alias: &str| ordinal(&sts.name, alias).is_some_and(|o| o < want);
    let Some(master) = info
        .master
        .as_deref()
        .and_then(|m| info.servers.iter().find(|s| s.uuid == m))
    else {
        plan.waits.push(Wait::HandOver {
            replicaset: sts.name.clone(),
            detail: "Cartridge reports no master".into(),
        });
        return hold;
    };
    if !stays(&master.alias) {
        let candidate = info.servers.iter().find(|s| {
            stays(&s.alias)
                && s.healthy
                && s.replicating
                && s.replication_lag.unwrap_or(0.0) <= facts.max_lag
        });
        match candidate {
            Some(next) => {
                plan.ops.push(Op::SwitchMaster {
                    replicaset: info.clone(),
                    to: next.uuid.clone(),
                    to_alias: next.alias.clone(),
                });
                plan.waits.push(Wait::Switching {
                    replicaset: sts.name.clone(),
                    to: next.alias.clone(),
                });
            }
            None => plan.waits.push(Wait::NoCandidate {
                replicaset: sts.name.clone(),
                master: master.alias.clone(),
            }),
        }
        return hold;
    }
    if info.all_rw {
        return want;
    }
    if master.read_only != Some(false) || !master.healthy {
        plan.waits.push(Wait::HandOver {
            replicaset: sts.name.clone(),
            detail: format!("new master {} is not writable yet", master.alias),
        });
        return hold;
    }
    if let Some(old) = info
        .servers
        .iter()
        .find(|s| !stays(&s.alias) && s.healthy && s.read_only != Some(true))
    {
        plan.waits.push(Wait::HandOver {
            replicaset: sts.name.clone(),
            detail: format!("{} has not turned read-only yet", old.alias),
        });
        return hold;
    }
    want
}

/// Records the instances beyond the wanted size whose pods are gone,
/// expels the recorded ones, and deletes their claims once a verified
/// member no longer reports them. A recorded removal goes on even if the
/// size grew back meanwhile: its epoch moved, so the ordinal returns as a
/// new instance, after the old one's claims are gone.
fn shed(
    facts: &Facts<'_>,
    sts: &StatefulSetFacts,
    info: &ReplicasetInfo,
    removals: &[InstanceRemoval],
    plan: &mut Plan,
) {
    let want = facts.replicas;
    let mut epochs = sts.epochs.clone();
    let mut bumped = false;
    let is_master = |uuid: &str| info.master.as_deref() == Some(uuid);
    for server in &info.servers {
        let Some(o) = ordinal(&sts.name, &server.alias).filter(|o| *o >= want) else {
            continue;
        };
        if removals.iter().any(|r| r.uuid == server.uuid) {
            continue;
        }
        if sts.replicas > want {
            // Still in the StatefulSet: the shrink's gate reports it.
            continue;
        }
        if facts.pods.contains(&server.alias) {
            plan.waits.push(Wait::PodStopping {
                pod: server.alias.clone(),
            });
            continue;
        }
        if is_master(&server.uuid) {
            // The shrink waited for a hand-over; a master beyond the size
            // means Cartridge moved it back. Never expel a master.
            plan.waits.push(Wait::HandOver {
                replicaset: sts.name.clone(),
                detail: format!("{} is master again", server.alias),
            });
            continue;
        }
        // The epoch moves before the expel: a pod that takes the ordinal
        // later joins under a new UUID.
        let current = identity::instance_uuid(
            facts.namespace,
            facts.cluster,
            &server.alias,
            &sts.uid,
            epochs.get(o),
        );
        if current == server.uuid {
            epochs.bump(o);
            bumped = true;
        }
        plan.records.push(Record::Instance {
            statefulset: sts.name.clone(),
            removal: InstanceRemoval {
                pod: server.alias.clone(),
                uuid: server.uuid.clone(),
                stage: InstanceStage::Expelling,
            },
        });
        plan.waits.push(Wait::Recorded {
            subject: server.alias.clone(),
            step: "expel",
        });
    }
    if bumped {
        plan.ops.push(Op::BumpEpochs {
            statefulset: sts.name.clone(),
            epochs,
        });
    }
    let mut expel = Vec::new();
    for removal in removals {
        let reported = info.servers.iter().any(|s| s.uuid == removal.uuid);
        match removal.stage {
            InstanceStage::Expelling if reported => {
                if facts.pods.contains(&removal.pod) {
                    plan.waits.push(Wait::PodStopping {
                        pod: removal.pod.clone(),
                    });
                } else if is_master(&removal.uuid) {
                    plan.waits.push(Wait::HandOver {
                        replicaset: sts.name.clone(),
                        detail: format!("{} is master again", removal.pod),
                    });
                } else {
                    expel.push(removal.uuid.clone());
                    plan.waits.push(Wait::Expelled {
                        subject: removal.pod.clone(),
                    });
                }
            }
            InstanceStage::Expelling => {
                plan.ops.push(Op::DeleteClaims {
                    statefulset: sts.name.clone(),
                    claims: claims_of(sts, &removal.pod),
                });
                plan.records.push(Record::Instance {
                    statefulset: sts.name.clone(),
                    removal: InstanceRemoval {
                        stage: InstanceStage::ClaimsDeleting,
                        ..removal.clone()
                    },
                });
                plan.waits.push(Wait::ClaimsGoing {
                    pod: removal.pod.clone(),
                });
            }
            InstanceStage::ClaimsDeleting => {
                let claims = claims_of(sts, &removal.pod);
                let gone = facts
                    .claims
                    .is_some_and(|listed| claims.iter().all(|c| !listed.contains(c)));
                if gone {
                    plan.records.push(Record::ForgetInstance {
                        statefulset: sts.name.clone(),
                        pod: removal.pod.clone(),
                    });
                } else {
                    plan.waits.push(Wait::ClaimsGoing {
                        pod: removal.pod.clone(),
                    });
                }
            }
        }
    }
    if !expel.is_empty() {
        plan.ops.push(Op::Expel {
            statefulset: sts.name.clone(),
            uuids: expel,
            whole: false,
        });
    }
}

/// Applies the plan's records to the status (an entry is made for a
/// StatefulSet the status does not list yet).
pub(crate) fn apply_records(records: &mut Vec<ReplicasetStatus>, changes: &[Record]) {
    for change in changes {
        let name = match change {
            Record::Removal { statefulset, .. }
            | Record::CancelRemoval { statefulset }
            | Record::Instance { statefulset, .. }
            | Record::ForgetInstance { statefulset, .. } => statefulset,
        };
        if !records.iter().any(|r| &r.name == name) {
            records.push(ReplicasetStatus {
                name: name.clone(),
                ..ReplicasetStatus::default()
            });
        }
        match change {
            Record::Removal { statefulset, stage } => {
                if let Some(r) = records.iter_mut().find(|r| &r.name == statefulset) {
                    r.removal = Some(*stage);
                }
            }
            Record::CancelRemoval { statefulset } => {
                if let Some(r) = records.iter_mut().find(|r| &r.name == statefulset) {
                    r.removal = None;
                }
            }
            Record::Instance {
                statefulset,
                removal,
            } => {
                if let Some(r) = records.iter_mut().find(|r| &r.name == statefulset) {
                    match r
                        .removed_instances
                        .iter_mut()
                        .find(|i| i.pod == removal.pod)
                    {
                        Some(existing) => *existing = removal.clone(),
                        None => r.removed_instances.push(removal.clone()),
                    }
                }
            }
            Record::ForgetInstance { statefulset, pod } => {
                if let Some(r) = records.iter_mut().find(|r| &r.name == statefulset) {
                    r.removed_instances.retain(|i| &i.pod != pod);
                }
            }
        }
    }
}

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;
