//! Carrying out a checked decision: deleting pods (with a UID
//! precondition, so a stale plan cannot delete a pod recreated since) and
//! switching masters through Cartridge (only to a healthy, caught-up
//! replica; with a supervised update, only once a human approved it).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Resource};
use serde_json::json;
use strategy_sdk::{Action, PodRef};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::view::Built;
use crate::api::Reason;
use crate::api::role::{MasterSwitch, ReplicasetStatus, Role};
use crate::controller::role::switchover;
use crate::controller::{Context, Error, events};
use crate::topology::{ReplicasetInfo, Topology, TopologyEdit, TopologyError};

/// The annotation a human sets on the Role to approve a supervised master
/// switch: its value is the pod to promote.
pub(crate) const APPROVE_SWITCH: &str = "tarantool.io/approve-switch";

/// What the host needs to carry out switches.
pub(crate) struct Switching<'a> {
    /// Cartridge through the Cluster's leader.
    pub topology: Option<&'a Arc<dyn Topology>>,
    /// The Role's replica sets as Cartridge reports them.
    pub replicasets: &'a [ReplicasetInfo],
    /// Seconds a replica may lag and still be promoted.
    pub max_lag_seconds: f64,
    /// Switches wait for [`APPROVE_SWITCH`].
    pub supervised: bool,
    /// The Role's replica sets as its status records them (their last
    /// switches).
    pub switches: &'a [ReplicasetStatus],
}

/// What was done.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    /// Pods deleted.
    pub deleted: Vec<String>,
    /// Replica sets whose master is now the pod the strategy named.
    pub switched: Vec<Switched>,
    /// The longest wait asked for.
    pub wait: Option<u32>,
    /// A switch or deletion held back, and why.
    pub deferred: Option<Deferral>,
}

/// A replica set led by the pod a strategy named.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Switched {
    /// The replica set.
    pub replicaset: String,
    /// Its master before.
    pub from: String,
    /// Its master now.
    pub to: String,
    /// The switch sent by this pass; `None` when `to` led already.
    pub started: Option<MasterSwitch>,
}

/// Why a switch or a pod's deletion waits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Deferral {
    /// The action names no pod of the view.
    NoSuchPod,
    /// The replica set is not in Cartridge's answer yet.
    NotInTopology {
        /// The replica set.
        replicaset: String,
    },
    /// The pod is not a member of its replica set yet.
    NotAMember {
        /// The pod.
        pod: String,
        /// Its replica set.
        replicaset: String,
    },
    /// The pod is not fit to lead.
    NotReady {
        /// The pod.
        pod: String,
        /// Cartridge sees it healthy.
        healthy: bool,
        /// It replicates from the master.
        replicating: bool,
        /// Its lag, seconds.
        lag: f64,
        /// The most lag allowed, seconds.
        max_lag: f64,
    },
    /// A supervised switch waits for a human's approval.
    AwaitingApproval {
        /// The pod to promote.
        pod: String,
        /// Its replica set.
        replicaset: String,
        /// The Role's namespace.
        namespace: String,
        /// The Role.
        role: String,
    },
    /// The pod, switched away from, still takes writes.
    StillWritable {
        /// The pod.
        pod: String,
    },
    /// The operator's last switch in the pod's replica set is not confirmed
    /// by Cartridge yet.
    SwitchUnconfirmed {
        /// The pod that waits.
        pod: String,
        /// The switch's old master.
        from: String,
        /// Its new master.
        to: String,
    },
    /// The member Cartridge was asked through went away during a switch:
    /// whether it took is asked again.
    SourceLost {
        /// The pod whose console was lost.
        pod: String,
        /// The replica set being switched.
        replicaset: String,
    },
    /// The StatefulSet controller has not seen the replica set's new
    /// template yet: a pod deleted now could come back with the old one.
    TemplateNotObserved {
        /// The pod that waits.
        pod: String,
        /// Its replica set (StatefulSet).
        replicaset: String,
    },
    /// The new master does not take writes yet.
    MasterNotWritable {
        /// The new master's pod.
        master: String,
        /// The replica set.
        replicaset: String,
        /// The pod that waits.
        pod: String,
    },
}

impl Deferral {
    /// Waits for something over within a second: a master hand-over
    /// Cartridge is carrying out, or the StatefulSet controller catching up
    /// with a template.
    pub(crate) fn is_brief(&self) -> bool {
        matches!(
            self,
            Self::StillWritable { .. }
                | Self::MasterNotWritable { .. }
                | Self::SwitchUnconfirmed { .. }
                | Self::SourceLost { .. }
                | Self::TemplateNotObserved { .. }
        )
    }
}

impl std::fmt::Display for Deferral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchPod => write!(f, "the switch names no pod"),
            Self::NotInTopology { replicaset } => {
                write!(f, "replica set {replicaset} is not in the topology yet")
            }
            Self::NotAMember { pod, replicaset } => {
                write!(f, "{pod} is not a member of {replicaset}")
            }
            Self::NotReady {
                pod,
                healthy,
                replicating,
                lag,
                max_lag,
            } => write!(
                f,
                "{pod} is not ready to lead: healthy={healthy}, replicating={replicating}, lag {lag:.3}s (at most {max_lag}s)"
            ),
            Self::AwaitingApproval {
                pod,
                replicaset,
                namespace,
                role,
            } => write!(
                f,
                "waiting for approval to make {pod} master of {replicaset}: kubectl annotate -n {namespace} roles.tarantool.io {role} {APPROVE_SWITCH}={pod} --overwrite"
            ),
            Self::StillWritable { pod } => write!(
                f,
                "{pod} still takes writes: waiting for it to hand over before it goes"
            ),
            Self::SwitchUnconfirmed { pod, from, to } => write!(
                f,
                "{pod} waits: Cartridge has not confirmed the switch from {from} to {to} yet"
            ),
            Self::TemplateNotObserved { pod, replicaset } => write!(
                f,
                "{pod} waits: the StatefulSet controller has not seen the new template of {replicaset} yet"
            ),
            Self::SourceLost { pod, replicaset } => write!(
                f,
                "the console of {pod} went away while switching the master of {replicaset}: Cartridge is asked again"
            ),
            Self::MasterNotWritable {
                master,
                replicaset,
                pod,
            } => write!(
                f,
                "{master} is master of {replicaset} but not writable yet: {pod} waits"
            ),
        }
    }
}

/// One thing the host does for a checked decision.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Act {
    /// Delete the pod (with its UID as precondition).
    Delete(PodRef),
    /// Make the pod master of its replica set (`info`: the replica set as
    /// Cartridge reported it; `to`: the server's UUID).
    Switch {
        /// The pod.
        at: PodRef,
        /// Its server's UUID.
        to: String,
        /// Its replica set as reported.
        info: ReplicasetInfo,
    },
    /// The pod leads its replica set already: nothing to send.
    Leads(PodRef),
}

/// What the host will do with a checked decision, decided purely.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Acts {
    /// In order.
    pub acts: Vec<Act>,
    /// The longest wait asked for.
    pub wait: Option<u32>,
    /// The first switch or deletion held back, and why.
    pub deferred: Option<Deferral>,
}

/// What the switch checks depend on.
pub(crate) struct SwitchFacts<'a> {
    /// Cartridge was asked (a verified answer): without it nothing switches.
    pub answered: bool,
    /// The Role's replica sets as Cartridge reports them.
    pub replicasets: &'a [ReplicasetInfo],
    /// Seconds a replica may lag and still be promoted.
    pub max_lag_seconds: f64,
    /// Switches wait for [`APPROVE_SWITCH`] naming their pod.
    pub supervised: bool,
    /// The pod [`APPROVE_SWITCH`] names, if any.
    pub approved: Option<&'a str>,
    /// The Role's namespace and name (for the approval command).
    pub role: (&'a str, &'a str),
    /// The last master switch of each replica set, as the Role's status
    /// records it (replica set, switch).
    pub switches: &'a [(&'a str, &'a MasterSwitch)],
}

/// Decides what to do with `actions`, in order. A switch that must wait
/// holds back what follows in its own replica set (it may rely on the
/// switch), not the other replica sets: with a supervised update, the
/// switch a human approved goes ahead even when another replica set's is
/// still waiting. A pod that still takes writes, or whose replica set has
/// no writable master yet, stays until Cartridge confirms the hand-over
/// (see [`handover_pending`]), and holds back its replica set.
pub(crate) fn decide(built: &Built, actions: &[Action], facts: &SwitchFacts<'_>) -> Acts {
    let mut out = Acts::default();
    let mut held: Vec<&str> = Vec::new();
    let free = |at: PodRef, held: &[&str]| {
        built
            .target(at)
            .is_some_and(|t| !held.contains(&t.replicaset.as_str()))
    };
    let mut rest = actions;
    while let Some(action) = rest.first() {
        match *action {
            Action::Wait(seconds) => out.wait = Some(out.wait.unwrap_or(0).max(seconds)),
            Action::DeletePod(_) => {
                // A run of deletions is checked together (the executor sends
                // it at once): a pending hand-over holds back the whole run's
                // deletions in its replica set.
                let run = rest
                    .iter()
                    .take_while(|a| matches!(a, Action::DeletePod(_)))
                    .count();
                for a in &rest[..run] {
                    if let Action::DeletePod(at) = *a
                        && let Some(target) = built.target(at)
                        && let Some(why) =
                            switch_unconfirmed(&target.name, &target.replicaset, facts)
                                .or_else(|| {
                                    handover_pending(
                                        &target.name,
                                        &target.replicaset,
                                        facts.replicasets,
                                    )
                                })
                                .or_else(|| {
                                    built.unobserved.contains(&target.replicaset).then(|| {
                                        Deferral::TemplateNotObserved {
                                            pod: target.name.clone(),
                                            replicaset: target.replicaset.clone(),
                                        }
                                    })
                                })
                    {
                        out.deferred.get_or_insert(why);
                        held.push(&target.replicaset);
                    }
                }
                for a in &rest[..run] {
                    if let Action::DeletePod(at) = *a
                        && free(at, &held)
                    {
                        out.acts.push(Act::Delete(at));
                    }
                }
                rest = &rest[run..];
                continue;
            }
            Action::SwitchMaster(at) if free(at, &held) => match switch_check(built, at, facts) {
                Ok(act) => out.acts.push(act),
                Err(why) => {
                    out.deferred.get_or_insert(why);
                    if let Some(target) = built.target(at) {
                        held.push(&target.replicaset);
                    }
                }
            },
            Action::SwitchMaster(_) => {}
        }
        rest = &rest[1..];
    }
    out
}

/// The operator's own memory of a switch, for an answer that lags behind
/// it: while the last switch it sent in the replica set is not confirmed
/// (the new master reported as such and writable, the old one read-only;
/// [`switchover::observe`]), neither of its two pods goes. Real Cartridge
/// under stateful failover reports the old master for a moment after a
/// promote, and a strategy must not take the new one for a replica.
fn switch_unconfirmed(pod: &str, replicaset: &str, facts: &SwitchFacts<'_>) -> Option<Deferral> {
    let (_, switch) = facts
        .switches
        .iter()
        .find(|(rs, s)| *rs == replicaset && s.writable_at.is_none())?;
    if switch.from != pod && switch.to != pod {
        return None;
    }
    let info = facts.replicasets.iter().find(|r| r.alias == replicaset);
    // Another master since (a failover chose a third instance): the
    // switch was superseded and holds nothing back.
    let superseded = info
        .and_then(ReplicasetInfo::master_alias)
        .is_some_and(|m| m != switch.from && m != switch.to);
    let confirmed = superseded
        || info.is_some_and(|info| {
            switchover::observe(switch, info, &Time(Timestamp::UNIX_EPOCH)).is_some()
        });
    (!confirmed).then(|| Deferral::SwitchUnconfirmed {
        pod: pod.to_string(),
        from: switch.from.clone(),
        to: switch.to.clone(),
    })
}

/// Whether the pod at `at` may be made master now: it must be a healthy,
/// replicating member within the lag allowed, and, under a supervised
/// update, approved.
fn switch_check(built: &Built, at: PodRef, facts: &SwitchFacts<'_>) -> Result<Act, Deferral> {
    let target = built.target(at).ok_or(Deferral::NoSuchPod)?;
    let info = facts
        .replicasets
        .iter()
        .find(|r| r.alias == target.replicaset)
        .filter(|_| facts.answered)
        .ok_or_else(|| Deferral::NotInTopology {
            replicaset: target.replicaset.clone(),
        })?;
    let server = info
        .server_by_alias(&target.name)
        .ok_or_else(|| Deferral::NotAMember {
            pod: target.name.clone(),
            replicaset: target.replicaset.clone(),
        })?;
    let lag = server.replication_lag.unwrap_or(0.0);
    if !server.healthy || !server.replicating || lag > facts.max_lag_seconds {
        return Err(Deferral::NotReady {
            pod: target.name.clone(),
            healthy: server.healthy,
            replicating: server.replicating,
            lag,
            max_lag: facts.max_lag_seconds,
        });
    }
    if info.master_alias() == Some(target.name.as_str()) {
        return Ok(Act::Leads(at));
    }
    if facts.supervised && facts.approved != Some(target.name.as_str()) {
        return Err(Deferral::AwaitingApproval {
            pod: target.name.clone(),
            replicaset: target.replicaset.clone(),
            namespace: facts.role.0.to_string(),
            role: facts.role.1.to_string(),
        });
    }
    Ok(Act::Switch {
        at,
        to: server.uuid.clone(),
        info: info.clone(),
    })
}

/// The switches [`execute`] will send for `actions`, as the status records
/// them (replica set, switch): the rollout writes them before acting, so
/// that an operator restarted mid-switch still knows which two pods wait
/// for Cartridge's confirmation.
pub(crate) fn planned_switches(
    role: &Role,
    namespace: &str,
    built: &Built,
    actions: &[Action],
    switching: &Switching<'_>,
) -> Vec<(String, MasterSwitch)> {
    let now = Time(Timestamp::now());
    with_facts(role, namespace, switching, |facts| {
        decide(built, actions, facts)
    })
    .acts
    .iter()
    .filter_map(|act| match act {
        Act::Switch { at, info, .. } => built.target(*at).map(|target| {
            (
                target.replicaset.clone(),
                switchover::started(info.master_alias().unwrap_or(""), &target.name, now.clone()),
            )
        }),
        _ => None,
    })
    .collect()
}

/// Runs `f` on the switch facts of `switching` for `role`.
fn with_facts<T>(
    role: &Role,
    namespace: &str,
    switching: &Switching<'_>,
    f: impl FnOnce(&SwitchFacts<'_>) -> T,
) -> T {
    let approved = role
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVE_SWITCH))
        .map(String::as_str);
    let name = role.meta().name.as_deref().unwrap_or("");
    let switches: Vec<(&str, &MasterSwitch)> = switching
        .switches
        .iter()
        .filter_map(|r| r.switch.as_ref().map(|s| (r.name.as_str(), s)))
        .collect();
    f(&SwitchFacts {
        answered: switching.topology.is_some(),
        replicasets: switching.replicasets,
        max_lag_seconds: switching.max_lag_seconds,
        supervised: switching.supervised,
        approved,
        role: (namespace, name),
        switches: &switches,
    })
}

/// Carries out `actions` as [`decide`] decides: consecutive deletions go
/// out at once (they do not depend on each other, and one at a time a pass
/// over 10 replica sets spends 0.4 s on them); a switch Cartridge refuses
/// fails the pass before anything after it.
pub(crate) async fn execute(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    built: &Built,
    actions: &[Action],
    switching: &Switching<'_>,
) -> Result<Executed, Error> {
    let plan = with_facts(role, namespace, switching, |facts| {
        decide(built, actions, facts)
    });
    let mut done = Executed {
        wait: plan.wait,
        deferred: plan.deferred,
        ..Executed::default()
    };
    let mut rest = plan.acts.as_slice();
    while let Some(act) = rest.first() {
        match act {
            Act::Delete(_) => {
                let run = rest
                    .iter()
                    .take_while(|a| matches!(a, Act::Delete(_)))
                    .count();
                let deletions: Vec<_> = rest[..run]
                    .iter()
                    .filter_map(|a| match *a {
                        Act::Delete(at) => Some(delete_pod(ctx, role, namespace, built, at)),
                        _ => None,
                    })
                    .collect();
                let deleted: Vec<_> = futures::stream::iter(deletions)
                    .buffered(ctx.settings.writes_in_flight.max(1))
                    .collect()
                    .await;
                for deleted in deleted {
                    if let Some(name) = deleted? {
                        done.deleted.push(name);
                    }
                }
                rest = &rest[run..];
                continue;
            }
            Act::Leads(at) => {
                if let Some(target) = built.target(*at) {
                    done.switched.push(Switched {
                        replicaset: target.replicaset.clone(),
                        from: target.name.clone(),
                        to: target.name.clone(),
                        started: None,
                    });
                }
            }
            Act::Switch { at, to, info } => {
                let (Some(topology), Some(target)) = (switching.topology, built.target(*at)) else {
                    rest = &rest[1..];
                    continue;
                };
                let started =
                    match switch_master(ctx, role, topology.as_ref(), info, to, &target.name).await
                    {
                        Ok(started) => started,
                        // The member the pass asked through went away mid-call
                        // (a pod being restarted, often by another Role's
                        // rollout): whether the switch took is unknown, so
                        // nothing more is done this pass, and the next one asks
                        // Cartridge again through a member that answers.
                        Err(Error::Topology(TopologyError::Unreachable { pod, .. })) => {
                            done.deferred.get_or_insert(Deferral::SourceLost {
                                pod,
                                replicaset: target.replicaset.clone(),
                            });
                            return Ok(done);
                        }
                        Err(e) => return Err(e),
                    };
                if switching.supervised {
                    consume_approval(ctx, role, namespace, &target.name).await?;
                }
                done.switched.push(Switched {
                    replicaset: target.replicaset.clone(),
                    from: started.from.clone(),
                    to: target.name.clone(),
                    started: Some(started),
                });
            }
        }
        rest = &rest[1..];
    }
    Ok(done)
}

/// Why deleting `pod` of `replicaset` must wait for a master hand-over to
/// complete, judged on what the server themselves report (`read_only`):
/// the pod, no longer master, still takes writes, or the master does not
/// take them yet. Replica sets
/// of one instance, with every instance writable, or not reported, have
/// nothing to hand over.
pub(crate) fn handover_pending(
    pod: &str,
    replicaset: &str,
    replicasets: &[ReplicasetInfo],
) -> Option<Deferral> {
    let info = replicasets.iter().find(|r| r.alias == replicaset)?;
    if info.all_rw || info.servers.len() < 2 {
        return None;
    }
    let server = info.server_by_alias(pod)?;
    let master = info
        .master
        .as_deref()
        .and_then(|m| info.servers.iter().find(|s| s.uuid == m))?;
    if master.alias == pod {
        // Deleting a master is the guard's call (only when no peer serves).
        return None;
    }
    if server.read_only == Some(false) {
        return Some(Deferral::StillWritable {
            pod: pod.to_string(),
        });
    }
    if master.read_only == Some(true) {
        return Some(Deferral::MasterNotWritable {
            master: master.alias.clone(),
            replicaset: replicaset.to_string(),
            pod: pod.to_string(),
        });
    }
    None
}

async fn delete_pod(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    built: &Built,
    at: PodRef,
) -> Result<Option<String>, Error> {
    let Some(target) = built.target(at) else {
        return Ok(None);
    };
    let Some(uid) = target.uid.clone() else {
        return Ok(None);
    };
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&target.name, &params).await {
        Ok(_) => {
            if let Some(cache) = ctx.cache() {
                cache.expect_deleted(&uid);
            }
        }
        // Gone already, or recreated (the precondition failed): the next
        // plan sees the new pod.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let note = crate::timeline::notes::pod_deleted_note(
        &target.name,
        &target.replicaset,
        target.revision.as_deref().unwrap_or(""),
        built.update_revision(at).unwrap_or(""),
    );
    events::distinct(ctx, role, Reason::PodDeleted, note).await;
    Ok(Some(target.name.clone()))
}

/// Makes server `to` (alias `to_alias`) the master of `info` and reports it
/// (an Event of its own, which the timeline reads). Returns the switch as
/// sent, for the replica set's status: it completes once Cartridge reports
/// the new master writable (see `switchover`). A promote refused after
/// the priority edit fails the pass; the next pass sends both again (the
/// edit is idempotent), so a refused switch is retried, never half-done.
pub(crate) async fn switch_master(
    ctx: &Context,
    role: &Role,
    topology: &dyn Topology,
    info: &ReplicasetInfo,
    to: &str,
    to_alias: &str,
) -> Result<MasterSwitch, Error> {
    let requested_at = Time(Timestamp::now());
    // The priority keeps the new master first across restarts; under
    // stateful and raft failover the active master moves only when
    // promoted.
    topology
        .edit(&TopologyEdit::switch_master(info, to))
        .await?;
    topology.promote(&info.uuid, to).await?;
    events::distinct(
        ctx,
        role,
        Reason::MasterSwitched,
        crate::timeline::notes::master_switched_note(
            &info.alias,
            info.master_alias().unwrap_or(""),
            to_alias,
        ),
    )
    .await;
    Ok(crate::controller::role::switchover::started(
        info.master_alias().unwrap_or(""),
        to_alias,
        requested_at,
    ))
}

/// An approval is for one switch: removed so a later rollout asks again,
/// but only if it still names `pod` (a human may already have approved the
/// next switch).
async fn consume_approval(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    pod: &str,
) -> Result<(), Error> {
    consume_annotation(ctx, role, namespace, APPROVE_SWITCH, pod).await
}

/// Removes the Role's annotation `key` if it still says `value` (a JSON
/// patch with a test: a human's newer word is left alone). Used for the
/// one-shot annotations a human sets: each is consumed by the act it asked
/// for.
pub(crate) async fn consume_annotation(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    key: &str,
    value: &str,
) -> Result<(), Error> {
    let roles: Api<Role> = Api::namespaced(ctx.client.clone(), namespace);
    let path = format!("/metadata/annotations/{}", key.replace('/', "~1"));
    let patch: json_patch::Patch = match serde_json::from_value(json!([
        {"op": "test", "path": path, "value": value},
        {"op": "remove", "path": path},
    ])) {
        Ok(patch) => patch,
        Err(e) => {
            tracing::warn!(error = %e, annotation = key, "cannot build the annotation's removal");
            return Ok(());
        }
    };
    match roles
        .patch(
            role.meta().name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // The annotation changed meanwhile: leave the human's newer word.
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use strategy_sdk::RoleView;

    use super::*;
    use crate::controller::role::rollout::view::PodTarget;
    use crate::controller::testing::{self, STORAGE};
    use crate::topology::fake::FakeConnector;
    use crate::topology::{Connector, InstanceTarget, ServerInfo};

    fn server(alias: &str, lag: Option<f64>, healthy: bool) -> ServerInfo {
        ServerInfo {
            uuid: format!("uuid-{alias}"),
            uri: format!("{alias}.storage.ns.svc.cluster.local:3301"),
            alias: alias.into(),
            healthy,
            replication_lag: lag,
            replicating: healthy,
            bucket_count: Some(100),
            read_only: None,
        }
    }

    fn built() -> Built {
        let target = |i: u32| PodTarget {
            name: format!("rs-{i}"),
            uid: Some(format!("uid-{i}")),
            replicaset: "rs".into(),
            revision: Some("new".into()),
        };
        Built {
            view: RoleView::default(),
            targets: vec![vec![target(0), target(1)]],
            update_revisions: vec![Some("new".into())],
            unobserved: vec![],
            outdated: 0,
            stale: 0,
            total: 2,
        }
    }

    /// Asks to make `rs-1` master when it lags `lag` seconds behind.
    async fn switch_to_replica(
        lag: f64,
        healthy: bool,
        supervised: bool,
    ) -> (Executed, Option<String>) {
        switch_through(lag, healthy, supervised, false).await
    }

    /// Asks to make `rs-1` master through `rs-0`'s console, which may go
    /// away (`lost`).
    async fn switch_through(
        lag: f64,
        healthy: bool,
        supervised: bool,
        lost: bool,
    ) -> (Executed, Option<String>) {
        let connector = FakeConnector::new();
        let model = connector.topology.clone();
        if lost {
            model.state().unreachable.insert("rs-0".into());
        }
        let info = ReplicasetInfo {
            uuid: "rs-uuid".into(),
            alias: "rs".into(),
            master: Some("uuid-rs-0".into()),
            servers: vec![
                server("rs-0", None, true),
                server("rs-1", Some(lag), healthy),
            ],
            weight: Some(1.0),
            ..ReplicasetInfo::default()
        };
        model.state().replicasets = vec![info.clone()];
        let topology = connector.connect(&InstanceTarget::for_pod("ns", "rs-0", None));
        let ctx = testing::context(connector);
        let role = testing::role(STORAGE);
        let done = execute(
            &ctx,
            &role,
            "ns",
            &built(),
            &[Action::SwitchMaster(PodRef {
                replicaset: 0,
                pod: 1,
            })],
            &Switching {
                topology: Some(&topology),
                replicasets: &[info],
                max_lag_seconds: 1.0,
                supervised,
                switches: &[],
            },
        )
        .await
        .expect("execute");
        let master = model
            .state()
            .replicaset("rs-uuid")
            .and_then(|r| r.master_alias().map(str::to_string));
        (done, master)
    }

    #[tokio::test]
    async fn a_caught_up_healthy_replica_becomes_master() {
        let (done, master) = switch_to_replica(0.2, true, false).await;
        assert_eq!(done.switched.len(), 1, "{done:?}");
        assert_eq!(master.as_deref(), Some("rs-1"));
    }

    #[tokio::test]
    async fn a_console_lost_mid_switch_defers_instead_of_failing_the_pass() {
        let (done, master) = switch_through(0.2, true, false, true).await;
        assert!(
            matches!(&done.deferred, Some(Deferral::SourceLost { pod, .. }) if pod == "rs-0"),
            "{done:?}"
        );
        assert!(done.switched.is_empty() && done.deleted.is_empty());
        assert_eq!(master.as_deref(), Some("rs-0"));
    }

    #[tokio::test]
    async fn a_lagging_replica_is_not_promoted() {
        let (done, master) = switch_to_replica(5.0, true, false).await;
        assert!(done.switched.is_empty());
        assert!(
            matches!(done.deferred, Some(Deferral::NotReady { lag: 5.0, .. })),
            "{done:?}"
        );
        assert_eq!(master.as_deref(), Some("rs-0"));
    }

    #[tokio::test]
    async fn an_unhealthy_replica_is_not_promoted() {
        let (done, master) = switch_to_replica(0.0, false, false).await;
        assert!(
            done.switched.is_empty() && done.deferred.is_some(),
            "{done:?}"
        );
        assert_eq!(master.as_deref(), Some("rs-0"));
    }

    #[tokio::test]
    async fn a_supervised_switch_waits_for_its_approval() {
        let (done, master) = switch_to_replica(0.0, true, true).await;
        assert!(
            matches!(&done.deferred, Some(Deferral::AwaitingApproval { pod, .. }) if pod == "rs-1"),
            "{done:?}"
        );
        assert!(
            done.deferred
                .as_ref()
                .is_some_and(|w| w.to_string().contains(APPROVE_SWITCH)),
            "the wait says how to approve: {done:?}"
        );
        assert_eq!(master.as_deref(), Some("rs-0"));
    }

    #[tokio::test]
    async fn a_waiting_switch_holds_back_its_replica_set_only() {
        let connector = FakeConnector::new();
        let model = connector.topology.clone();
        let rs = |name: &str, lag: f64| ReplicasetInfo {
            uuid: format!("{name}-uuid"),
            alias: name.into(),
            master: Some(format!("uuid-{name}-0")),
            servers: vec![
                server(&format!("{name}-0"), None, true),
                server(&format!("{name}-1"), Some(lag), true),
            ],
            weight: Some(1.0),
            ..ReplicasetInfo::default()
        };
        let infos = vec![rs("a", 5.0), rs("b", 0.0)];
        model.state().replicasets = infos.clone();
        let topology = connector.connect(&InstanceTarget::for_pod("ns", "a-0", None));
        let ctx = testing::context(connector);
        let role = testing::role(STORAGE);
        let target = |rs: &str, i: u32| PodTarget {
            name: format!("{rs}-{i}"),
            uid: Some(format!("uid-{rs}-{i}")),
            replicaset: rs.into(),
            revision: Some("old".into()),
        };
        let built = Built {
            targets: vec![
                vec![target("a", 0), target("a", 1)],
                vec![target("b", 0), target("b", 1)],
            ],
            update_revisions: vec![Some("new".into()), Some("new".into())],
            total: 4,
            ..built()
        };
        let at = |replicaset: u32, pod: u32| PodRef { replicaset, pod };
        // The context's client fails every request: were a-0 deleted, the
        // execution would fail.
        let done = execute(
            &ctx,
            &role,
            "ns",
            &built,
            &[
                Action::SwitchMaster(at(0, 1)),
                Action::DeletePod(at(0, 0)),
                Action::SwitchMaster(at(1, 1)),
            ],
            &Switching {
                topology: Some(&topology),
                replicasets: &infos,
                max_lag_seconds: 1.0,
                supervised: false,
                switches: &[],
            },
        )
        .await
        .expect("execute");
        assert!(done.deleted.is_empty(), "{done:?}");
        assert!(
            matches!(&done.deferred, Some(Deferral::NotReady { pod, .. }) if pod == "a-1"),
            "{done:?}"
        );
        let switched: Vec<(&str, &str, &str)> = done
            .switched
            .iter()
            .map(|s| (s.replicaset.as_str(), s.from.as_str(), s.to.as_str()))
            .collect();
        assert_eq!(switched, vec![("b", "b-0", "b-1")]);
        assert!(
            done.switched[0]
                .started
                .as_ref()
                .is_some_and(|s| s.writable_at.is_none() && s.from == "b-0"),
            "the switch is recorded as under way: {done:?}"
        );
        let state = model.state();
        let master = |uuid: &str| {
            state
                .replicaset(uuid)
                .and_then(|r| r.master_alias().map(str::to_string))
        };
        assert_eq!(master("a-uuid").as_deref(), Some("a-0"));
        assert_eq!(master("b-uuid").as_deref(), Some("b-1"));
    }

    /// Replica set `rs` of `rs-0` and `rs-1`, with `master` and each
    /// server's `read_only` as reported.
    fn two_servers(ro: [Option<bool>; 2], master: &str, all_rw: bool) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: "rs-uuid".into(),
            alias: "rs".into(),
            master: Some(format!("uuid-{master}")),
            all_rw,
            servers: vec![
                ServerInfo {
                    read_only: ro[0],
                    ..server("rs-0", None, true)
                },
                ServerInfo {
                    read_only: ro[1],
                    ..server("rs-1", Some(0.0), true)
                },
            ],
            ..ReplicasetInfo::default()
        }
    }

    #[test]
    fn the_pods_of_an_unconfirmed_switch_stay_even_when_the_answer_lags() {
        let switch = crate::controller::role::switchover::started(
            "rs-0",
            "rs-1",
            Time(Timestamp::UNIX_EPOCH),
        );
        let rs = |master: &str, ro: [Option<bool>; 2]| two_servers(ro, master, false);
        // (case, answer, pod deleted, deferred)
        let cases = [
            (
                "the answer still names the old master: the new one looks like a replica",
                rs("rs-0", [Some(false), Some(true)]),
                1,
                true,
            ),
            (
                "the new master reported, not writable yet: the old one waits",
                rs("rs-1", [Some(true), Some(true)]),
                0,
                true,
            ),
            (
                "confirmed: the old master goes",
                rs("rs-1", [Some(true), Some(false)]),
                0,
                false,
            ),
        ];
        for (case, info, pod, deferred) in cases {
            let infos = [info];
            let acts = decide(
                &built(),
                &[Action::DeletePod(PodRef { replicaset: 0, pod })],
                &answered(&infos, &[("rs", &switch)]),
            );
            assert_eq!(acts.deferred.is_some(), deferred, "{case}: {acts:?}");
            assert_eq!(acts.acts.is_empty(), deferred, "{case}: {acts:?}");
        }
    }

    /// The facts of an unsupervised update of Role ns/storage, from a
    /// verified answer of `infos`, with the recorded `switches`.
    fn answered<'a>(
        infos: &'a [ReplicasetInfo],
        switches: &'a [(&'a str, &'a MasterSwitch)],
    ) -> SwitchFacts<'a> {
        SwitchFacts {
            answered: true,
            replicasets: infos,
            max_lag_seconds: 1.0,
            supervised: false,
            approved: None,
            role: ("ns", "storage"),
            switches,
        }
    }

    #[test]
    fn no_pod_goes_before_the_statefulset_controller_saw_its_template() {
        // rs-0 master, rs-1 a healthy replica: only the template decides.
        let infos = [two_servers([Some(false), Some(true)], "rs-0", false)];
        // (case, replica sets not observed, deleted)
        let cases: [(&str, Vec<String>, bool); 3] = [
            ("observed", vec![], true),
            ("its replica set not observed yet", vec!["rs".into()], false),
            (
                "another replica set not observed",
                vec!["other".into()],
                true,
            ),
        ];
        for (case, unobserved, deleted) in cases {
            let built = Built {
                unobserved,
                ..built()
            };
            let acts = decide(
                &built,
                &[Action::DeletePod(PodRef {
                    replicaset: 0,
                    pod: 1,
                })],
                &answered(&infos, &[]),
            );
            assert_eq!(!acts.acts.is_empty(), deleted, "{case}: {acts:?}");
            assert_eq!(
                matches!(acts.deferred, Some(Deferral::TemplateNotObserved { ref pod, .. }) if pod == "rs-1"),
                !deleted,
                "{case}: {acts:?}"
            );
            if let Some(why) = &acts.deferred {
                assert!(why.is_brief(), "{case}: looked at again within a second");
            }
        }
    }

    #[test]
    fn a_pod_goes_only_once_the_hand_over_is_confirmed() {
        // rs-0 master; read_only as each server reports it.
        let rs = two_servers;
        let cases = [
            (
                "replica of a writable master",
                "rs-1",
                rs([Some(false), Some(true)], "rs-0", false),
                false,
            ),
            (
                "the master itself: the guard's call",
                "rs-0",
                rs([Some(false), Some(true)], "rs-0", false),
                false,
            ),
            (
                "old master switched away, still writable",
                "rs-0",
                rs([Some(false), Some(true)], "rs-1", false),
                true,
            ),
            (
                "switched, the new master not writable yet",
                "rs-0",
                rs([Some(true), Some(true)], "rs-1", false),
                true,
            ),
            (
                "switched and handed over",
                "rs-0",
                rs([Some(true), Some(false)], "rs-1", false),
                false,
            ),
            (
                "modes not reported",
                "rs-0",
                rs([None, None], "rs-1", false),
                false,
            ),
            (
                "every instance writable",
                "rs-0",
                rs([Some(false), Some(false)], "rs-0", true),
                false,
            ),
        ];
        for (name, pod, info, pending) in cases {
            assert_eq!(
                handover_pending(pod, "rs", std::slice::from_ref(&info)).is_some(),
                pending,
                "{name}"
            );
        }
    }
}
