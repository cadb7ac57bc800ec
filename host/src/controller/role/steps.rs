//! The Role controller's steps, one function each, in pipeline order.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};

use super::cartridge::CartridgeView;
use super::observe::Snapshot;
use super::scaling::{self, StatefulSetFacts};
use super::{RolePass, scaling_exec, statefulsets};
use crate::api::Reason;
use crate::api::cluster::Cluster;
use crate::api::role::{DrainProgress, RemovalStage, ReplicasetStatus, RolePhase, RoleStatus};
use crate::controller::fleet::Report;
use crate::controller::members;
use crate::controller::pipeline::{Flow, StepFailed};
use crate::controller::{Context, Error, events, owned, status};
use crate::resources::apply::desired_hash;
use crate::resources::epochs::Epochs;
use crate::resources::statefulset;
use crate::resources::{labels, service};
use crate::topology::membership::{DesiredReplicaset, join_edit};

/// The spec can be acted on (admission checks most of this; objects stored
/// before a rule existed may still break it).
pub(crate) async fn validate(pass: &mut RolePass) -> Result<Flow, Error> {
    if pass.role.spec.replicaset_template().is_none() {
        return Err(Error::InvalidSpec {
            kind: "Role",
            name: pass.name.clone(),
            message: "spec.replicasetTemplate is not set".into(),
        });
    }
    Ok(Flow::Next)
}

/// The Role's headless Service.
pub(crate) async fn sync_service(
    ctx: &Context,
    cluster: &Cluster,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let desired = service::headless(
        &pass.namespace,
        &cluster.name_any(),
        &pass.name,
        pass.owner_ref()?,
    );
    owned::apply_service(ctx, pass.role.as_ref(), desired).await?;
    Ok(Flow::Next)
}

/// The scaling facts of this pass (see [`scaling::decide`]).
fn scaling_facts(snap: &Snapshot, pass: &RolePass) -> Vec<StatefulSetFacts> {
    let wanted = &pass.desired.statefulsets;
    snap.statefulsets
        .iter()
        .map(|sts| StatefulSetFacts {
            name: sts.name_any(),
            uid: sts.uid().unwrap_or_default(),
            wanted: !pass.deleting && wanted.contains(&sts.name_any()),
            replicas: u32::try_from(sts.spec.replicas.unwrap_or(0)).unwrap_or(0),
            epochs: Epochs::of(sts),
            claim_templates: sts
                .spec
                .volume_claim_templates
                .iter()
                .flatten()
                .map(ResourceExt::name_any)
                .collect(),
            deleting: sts.metadata.deletion_timestamp.is_some(),
        })
        .collect()
}

/// Decides which replica sets and instances leave, how far each removal
/// may go this pass, and the size of each StatefulSet (see `scaling`).
/// Asks Cartridge only when something leaves or a removal is under way.
pub(crate) async fn decide_scaling(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let cluster = &snap.cluster;
    let cluster_name = snap.cluster_name();
    let statefulsets = scaling_facts(snap, pass);
    let pods: BTreeSet<String> = snap.pods.iter().map(ResourceExt::name_any).collect();
    let replicas = pass.desired.replicas;
    let leader = cluster.status.as_ref().and_then(|s| s.leader.clone());
    let max_lag = super::rollout::param(pass, super::rollout::MAX_REPLICATION_LAG, 1.0f64);
    let probe = scaling::Facts {
        namespace: &pass.namespace,
        cluster: &cluster_name,
        replicas,
        statefulsets: &statefulsets,
        pods: &pods,
        claims: None,
        records: &pass.status.replicasets,
        view: &CartridgeView::NotAsked,
        leader: leader.as_deref(),
        max_lag,
        weight: pass.role.spec.vshard.as_ref().and_then(|v| v.weight),
    };
    let (needs_cartridge, needs_claims) = (
        scaling::needs_cartridge(&probe),
        scaling::needs_claims(&probe),
    );
    if needs_cartridge {
        pass.cartridge = pass.ask_cartridge(ctx, snap).await;
    }
    if needs_cartridge || needs_claims {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &pass.namespace);
        let claims = api
            .list_metadata(&ListParams::default().labels(&labels::role_selector(&pass.name)))
            .await?;
        pass.claims = Some(claims.items.iter().map(ResourceExt::name_any).collect());
    }
    let plan = scaling::decide(&scaling::Facts {
        claims: pass.claims.as_ref(),
        view: &pass.cartridge,
        records: &pass.status.replicasets,
        ..probe
    });
    pass.scaling_answer = pass.cartridge.answer().cloned();
    pass.scaling = Some(plan);
    Ok(Flow::Next)
}

/// Carries out the scaling plan of this pass (after the StatefulSets and
/// joins, so that a refusal here never holds back what the Role gains),
/// through the verified member the plan was decided on.
pub(crate) async fn execute_scaling(ctx: &Context, pass: &mut RolePass) -> Result<Flow, Error> {
    let Some(plan) = pass.scaling.as_ref() else {
        return Ok(Flow::Next);
    };
    // A switch is recorded before it is sent (as a rollout records its own).
    let planned = scaling_exec::planned_switches(plan, &Time(Timestamp::now()));
    pass.record_switches_before_sending(ctx, &planned).await?;
    let Some(plan) = pass.scaling.as_ref() else {
        return Ok(Flow::Next);
    };
    let switches = scaling_exec::execute(
        ctx,
        pass.role.as_ref(),
        &pass.namespace,
        plan,
        pass.scaling_answer.as_ref(),
    )
    .await?;
    for (replicaset, switch) in &switches {
        super::switchover::record(&mut pass.status.replicasets, replicaset, switch);
    }
    // Recorded only once the steps they follow succeeded: a record says
    // what the next pass may do.
    scaling::apply_records(&mut pass.status.replicasets, &plan.records);
    if let Some(answer) = pass.scaling_answer.as_ref() {
        let now = Time(Timestamp::now());
        for record in &mut pass.status.replicasets {
            let buckets = record
                .uuid
                .as_deref()
                .and_then(|uuid| answer.replicaset(uuid))
                .and_then(|info| info.bucket_count());
            match (record.removal, buckets) {
                (Some(RemovalStage::Draining), Some(buckets)) => {
                    let buckets = i64::try_from(buckets).unwrap_or(i64::MAX);
                    record.drain = Some(DrainProgress::observe(
                        record.drain.as_ref(),
                        buckets,
                        now.clone(),
                    ));
                }
                (Some(_), _) => {}
                (None, _) => record.drain = None,
            }
        }
    }
    if plan
        .ops
        .iter()
        .any(|op| !matches!(op, scaling::Op::BumpEpochs { .. }))
    {
        // What Cartridge said is stale now.
        pass.cartridge = CartridgeView::NotAsked;
    }
    Ok(Flow::Next)
}

/// Scaling waits (see `scale`) end the pass before the rolling update. A
/// Role being deleted whose data has nowhere to go is blocked (Degraded)
/// until a human decides.
pub(crate) async fn await_scaling(ctx: &Context, pass: &mut RolePass) -> Result<Flow, Error> {
    let Some(plan) = pass.scaling.as_ref().filter(|p| !p.waits.is_empty()) else {
        return Ok(Flow::Next);
    };
    if pass.deleting
        && let Some(stuck) = plan
            .waits
            .iter()
            .find(|w| matches!(w, scaling::Wait::NowhereToGo { .. }))
    {
        return Err(Error::Blocked {
            reason: Reason::NowhereToDrain,
            message: format!(
                "the deletion waits: {stuck}; add storage replica sets elsewhere, or annotate the Role {}=true to delete it without draining (its data is lost)",
                super::deletion::FORCE_DELETE
            ),
        });
    }
    // A drain says how it goes: buckets left, rate, and an estimate.
    let message = plan
        .waits
        .iter()
        .map(|w| match w {
            scaling::Wait::Draining { replicaset, .. } => pass
                .status
                .replicasets
                .iter()
                .find(|r| &r.name == replicaset)
                .and_then(|r| r.drain.as_ref())
                .map_or_else(|| w.to_string(), |p| format!("{replicaset} to drain ({p})")),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    // A recorded step goes on in the next pass; a master hand-over is
    // looked at every second at most, so its write-unavailable time is
    // measured to that resolution; the rest move at Cartridge's pace.
    let after = if plan.waits.iter().all(scaling::Wait::is_short) {
        std::time::Duration::from_millis(200)
    } else if plan.waits.iter().any(scaling::Wait::is_hand_over) {
        ctx.settings.poll.min(std::time::Duration::from_secs(1))
    } else {
        ctx.settings.poll
    };
    Ok(Flow::wait(
        Reason::Scaling,
        format!("waiting for {message}"),
        after,
    ))
}

/// SyncStatefulSets: the applies [`statefulsets::decide`] chose, sent;
/// returns the next snapshot, with the StatefulSets as applied.
pub(crate) async fn sync_statefulsets(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Arc<Snapshot>, Error> {
    let applies = statefulsets::decide(snap, pass)?;
    let applied = statefulsets::execute(ctx, pass, applies).await?;
    let now = statefulsets::merged(&snap.statefulsets, applied);
    // What is there now is the operator's own: applied this pass, or found
    // as the hash and the recorded generation say it was left.
    for sts in &now {
        if let Some(generation) = sts.metadata.generation
            && pass.desired.wants(&sts.name_any())
        {
            pass.applied_generations.insert(sts.name_any(), generation);
        }
    }
    Ok(Arc::new(snap.with_statefulsets(now)))
}

/// Whether JoinTopology has anything to ask Cartridge: the vshard settings
/// changed since they were applied, or a replica set is not recorded as
/// joined with every instance while one of them is ready to join (a
/// replica set lists its instances only once all are ready). Decided on
/// the recorded status alone: no exec when nothing is left to do.
fn needs_cartridge(
    desired: &[DesiredReplicaset],
    status: &RoleStatus,
    replicas: i32,
    vshard_hash: &str,
) -> bool {
    if status.applied_vshard.as_deref() != Some(vshard_hash) {
        return true;
    }
    let joined_all = desired.iter().all(|want| {
        status
            .replicasets
            .iter()
            .any(|s| s.name == want.alias && s.uuid.is_some() && s.joined == replicas)
    });
    let ready_to_join = desired.iter().any(|d| !d.servers.is_empty());
    !joined_all && ready_to_join
}

/// After the Cluster's bootstrap: join replica sets and instances that are
/// not yet members (each replica set once all of its pods are ready) and
/// correct drifted Cartridge settings. Asks Cartridge only when the status
/// says something is missing or `spec.vshard` changed.
pub(crate) async fn join_topology(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let cluster = &snap.cluster;
    let cluster_status = cluster.status.clone().unwrap_or_default();
    if cluster_status.leader.is_none() || !cluster_status.bootstrapped {
        return Ok(Flow::Next);
    }
    let cluster_name = cluster.name_any();
    let desired = members::desired_replicasets(
        &pass.namespace,
        &cluster_name,
        &pass.role,
        &snap.pods,
        &snap.statefulsets,
    );
    let vshard_hash = desired_hash(
        &pass
            .role
            .spec
            .vshard
            .as_ref()
            .map(|v| (&v.cluster_roles, v.weight, v.all_rw, &v.vshard_group)),
    );
    if !needs_cartridge(
        &desired,
        &pass.status,
        pass.desired.replicas_i32(),
        &vshard_hash,
    ) {
        return Ok(Flow::Next);
    }
    // Through the verified member of this pass when Cartridge was asked
    // already; otherwise through the routing policy.
    if pass.cartridge.answer().is_none() {
        pass.cartridge = pass.ask_cartridge(ctx, snap).await;
    }
    let Some(answer) = pass.cartridge.answer() else {
        return Ok(Flow::wait(
            Reason::CartridgeUnknown,
            format!(
                "cannot join or configure replica sets: {}",
                pass.cartridge.why_unknown()
            ),
            ctx.settings.poll,
        ));
    };
    let topology = answer.client.clone();
    let observed = &answer.replicasets;
    let settings_changed = pass.status.applied_vshard.as_ref() != Some(&vshard_hash);
    let edit = join_edit(&desired, observed, settings_changed);
    if !edit.is_empty() {
        topology.edit(&edit).await?;
        let instances: usize = edit.replicasets.iter().map(|r| r.join_servers.len()).sum();
        events::normal(
            ctx,
            pass.role.as_ref(),
            Reason::TopologyChanged,
            format!(
                "{} replica sets edited, {instances} instances joined",
                edit.replicasets.len()
            ),
        )
        .await;
        // Ask again, judged like every answer (a member may answer `[]`
        // right after an edit): the steps after this one, which may switch
        // or delete, and the status read this answer.
        pass.cartridge = pass.ask_cartridge(ctx, snap).await;
    }
    pass.status.applied_vshard = Some(vshard_hash);
    Ok(Flow::Next)
}

/// Per replica set status from the StatefulSets, pods and (when asked this
/// pass) Cartridge; the pass waits while pods are not ready.
pub(crate) async fn observe_readiness(snap: &Snapshot, pass: &mut RolePass) -> Result<Flow, Error> {
    let (ready_count, updated_count, wanted_count) = refresh_status(snap, pass);
    match pass.status.phase {
        RolePhase::Ready => Ok(Flow::Next),
        RolePhase::Updating => Ok(Flow::wait_for_event(
            Reason::Updating,
            format!("{updated_count}/{wanted_count} replica sets on the current template"),
        )),
        _ => Ok(Flow::wait_for_event(
            Reason::PodsNotReady,
            format!("{ready_count}/{wanted_count} replica sets ready"),
        )),
    }
}

/// Recomputes the per-replica-set status and the phase from what this
/// pass observed; (ready, updated, wanted) replica sets. Runs on every pass
/// that got as far as listing pods, also one ended early by a waiting step,
/// so `kubectl get` follows a rollout step by step.
pub(crate) fn refresh_status(snap: &Snapshot, pass: &mut RolePass) -> (usize, usize, usize) {
    let cluster = snap.cluster_name();
    let wanted = pass.desired.statefulsets.clone();
    let replicas = pass.desired.replicas_i32();
    let previous = std::mem::take(&mut pass.status.replicasets);
    let now = Time(Timestamp::now());
    let mut names: Vec<String> = wanted.clone();
    for sts in &snap.statefulsets {
        if !names.contains(&sts.name_any()) {
            names.push(sts.name_any());
        }
    }
    for name in names {
        let sts = snap.statefulsets.iter().find(|s| s.name_any() == name);
        let revision = sts.and_then(statefulset::template_revision);
        let pods: Vec<&Pod> = snap
            .pods
            .iter()
            .filter(|p| p.labels().get(labels::REPLICASET) == Some(&name))
            .collect();
        let ready = pods.iter().filter(|p| members::is_ready(p)).count();
        let updated = pods
            .iter()
            .filter(|p| revision.is_some() && statefulset::pod_revision(p) == revision)
            .count();
        let old = previous.iter().find(|s| s.name == name);
        let mut entry = ReplicasetStatus {
            name: name.clone(),
            uuid: old.and_then(|o| o.uuid.clone()),
            replicas: sts.and_then(|s| s.spec.replicas).unwrap_or(replicas),
            ready: i32::try_from(ready).unwrap_or(i32::MAX),
            updated: i32::try_from(updated).unwrap_or(i32::MAX),
            joined: old.map_or(0, |o| o.joined),
            master: old.and_then(|o| o.master.clone()),
            weight: old.and_then(|o| o.weight),
            removal: old.and_then(|o| o.removal),
            drain: old.and_then(|o| o.drain.clone()),
            removed_instances: old.map(|o| o.removed_instances.clone()).unwrap_or_default(),
            switch: old.and_then(|o| o.switch.clone()),
            statefulset_generation: pass
                .applied_generations
                .get(&name)
                .copied()
                .or_else(|| old.and_then(|o| o.statefulset_generation)),
        };
        // Matched by the deterministic UUID: an alias says nothing about
        // which cluster a replica set is in.
        let uuid = sts.and_then(ResourceExt::uid).map(|uid| {
            crate::topology::identity::replicaset_uuid(&pass.namespace, &cluster, &name, &uid)
        });
        // What Cartridge said last in this pass, when it was asked.
        if let Some(info) = pass
            .cartridge
            .answer()
            .zip(uuid.as_ref())
            .and_then(|(answer, uuid)| answer.replicaset(uuid))
        {
            entry.uuid = Some(info.uuid.clone());
            entry.joined = i32::try_from(info.servers.len()).unwrap_or(i32::MAX);
            entry.master = info.master_alias().map(str::to_string);
            entry.weight = info.weight;
            if let Some(done) = entry
                .switch
                .as_ref()
                .and_then(|s| super::switchover::observe(s, info, &now))
            {
                pass.completed_switches.push((name.clone(), done.clone()));
                entry.switch = Some(done);
            }
        }
        pass.status.replicasets.push(entry);
    }
    let complete = |s: &ReplicasetStatus| s.ready == s.replicas && wanted.contains(&s.name);
    let ready_count = pass
        .status
        .replicasets
        .iter()
        .filter(|s| complete(s))
        .count();
    let updated_count = pass
        .status
        .replicasets
        .iter()
        .filter(|s| s.updated == s.replicas && wanted.contains(&s.name))
        .count();
    let wanted_count = wanted.len();
    pass.status.ready_replicasets = i32::try_from(ready_count).unwrap_or(i32::MAX);
    pass.status.updated_replicasets = i32::try_from(updated_count).unwrap_or(i32::MAX);
    pass.status.ready = Some(RoleStatus::ready_text(
        u32::try_from(ready_count).unwrap_or(u32::MAX),
        u32::try_from(wanted_count).unwrap_or(u32::MAX),
    ));
    pass.status.phase = if ready_count < wanted_count {
        RolePhase::Pending
    } else if updated_count < wanted_count {
        RolePhase::Updating
    } else {
        RolePhase::Ready
    };
    // A rollout in progress is Updating even while a restarted pod is not
    // ready yet; retiring replica sets make it Scaling.
    let rolling = pass.status.update.as_ref().is_some_and(|u| !u.done);
    let retiring = snap
        .statefulsets
        .iter()
        .any(|s| !wanted.contains(&s.name_any()));
    if rolling {
        pass.status.phase = RolePhase::Updating;
    } else if retiring {
        pass.status.phase = RolePhase::Scaling;
    }
    (ready_count, updated_count, wanted_count)
}

/// Conditions and observed generation from how the pass ended; written
/// only when changed.
pub(crate) async fn finish(
    ctx: &Context,
    pass: &mut RolePass,
    flow: &Result<Flow, StepFailed>,
) -> Result<Option<std::time::Duration>, Error> {
    if matches!(flow, Ok(Flow::Stop)) {
        return Ok(None);
    }
    let generation = pass.role.meta().generation;
    pass.status.observed_generation = generation;
    if let Some(snap) = pass.seen.clone()
        && !matches!(flow, Ok(Flow::Next))
        && !snap.statefulsets.is_empty()
    {
        refresh_status(&snap, pass);
    }
    if pass.deleting {
        pass.status.phase = RolePhase::Terminating;
    }
    if let Err(failed) = flow {
        pass.status.phase = RolePhase::Degraded;
        events::warning(
            ctx,
            pass.role.as_ref(),
            failed.source.reason(),
            failed.to_string(),
        )
        .await;
    }
    status::set_conditions(&mut pass.status.conditions, flow, generation);
    ctx.metrics.fleet.record(
        "role",
        &pass.namespace,
        &pass.name,
        Report::role(flow, &pass.status),
        std::time::SystemTime::now(),
    );
    for (replicaset, switch) in std::mem::take(&mut pass.completed_switches) {
        super::switchover::report(ctx, pass.role.as_ref(), &replicaset, &switch).await;
    }
    let wrote = status::write_progress_at_most_every(
        ctx,
        pass.role.as_ref(),
        pass.role.status.as_ref(),
        &pass.status,
        PROGRESS,
    )
    .await?;
    Ok(match wrote {
        status::Wrote::PutOff { retry_in } => Some(retry_in),
        status::Wrote::Sent | status::Wrote::Unchanged => None,
    })
}

/// The Role status fields that only report progress: counts of ready and
/// updated pods and replica sets, and messages. A change of these alone is
/// written at most once a second ([`status::PROGRESS_EVERY`]); masters,
/// switches, removals, drains, phases and the rollout's state at once.
const PROGRESS: status::Paths = &[
    &["ready"],
    &["readyReplicasets"],
    &["updatedReplicasets"],
    &["replicasets", "*", "ready"],
    &["replicasets", "*", "updated"],
    &["update", "message"],
    &["update", "updatedPods"],
    &["update", "totalPods"],
    &["update", "lastPlanTime"],
    &["conditions", "*", "message"],
];

#[cfg(test)]
mod tests {

    use super::*;
    use crate::topology::JoinServer;

    /// A renamed field would make its path match nothing, and every change
    /// of it a write at once: each path must name a field of a status that
    /// has them all.
    #[test]
    fn every_progress_path_names_a_status_field() {
        use crate::api::role::UpdateProgress;
        let mut full = RoleStatus {
            ready: Some("1/1".into()),
            replicasets: vec![ReplicasetStatus::default()],
            update: Some(UpdateProgress {
                message: Some("1/3 pods updated".into()),
                last_plan_time: Some(Time(Timestamp::now())),
                ..UpdateProgress::default()
            }),
            ..RoleStatus::default()
        };
        status::set_conditions(&mut full.conditions, &Ok(Flow::Next), None);
        let value = serde_json::to_value(&full).unwrap_or_default();
        for path in PROGRESS {
            let mut at = Some(&value);
            for key in *path {
                at = match *key {
                    "*" => at.and_then(|v| v.get(0)),
                    key => at.and_then(|v| v.get(key)),
                };
            }
            assert!(at.is_some(), "{path:?} names no field of {value}");
        }
    }

    /// A desired replica set `name`, with its instances listed (all ready)
    /// or not.
    fn desired(name: &str, listed: bool) -> DesiredReplicaset {
        DesiredReplicaset {
            uuid: format!("uuid-{name}"),
            alias: name.into(),
            roles: vec![],
            weight: None,
            all_rw: None,
            vshard_group: None,
            servers: if listed {
                vec![JoinServer {
                    uri: format!("{name}-0:3301"),
                    uuid: format!("uuid-{name}-0"),
                }]
            } else {
                vec![]
            },
        }
    }

    /// A status recording `joined` instances of each named replica set,
    /// and vshard settings `applied`.
    fn recorded(sets: &[(&str, i32)], applied: Option<&str>) -> RoleStatus {
        RoleStatus {
            replicasets: sets
                .iter()
                .map(|(name, joined)| ReplicasetStatus {
                    name: (*name).into(),
                    uuid: Some(format!("uuid-{name}")),
                    joined: *joined,
                    ..ReplicasetStatus::default()
                })
                .collect(),
            applied_vshard: applied.map(str::to_string),
            ..RoleStatus::default()
        }
    }

    #[test]
    fn join_topology_asks_cartridge_only_when_something_is_left_to_do() {
        // (what, desired, recorded, asks)
        let cases = [
            (
                "all joined, settings applied",
                vec![desired("rs-0", true)],
                recorded(&[("rs-0", 2)], Some("h")),
                false,
            ),
            (
                "all joined, settings changed",
                vec![desired("rs-0", true)],
                recorded(&[("rs-0", 2)], Some("old")),
                true,
            ),
            (
                "settings never applied",
                vec![desired("rs-0", true)],
                recorded(&[("rs-0", 2)], None),
                true,
            ),
            (
                "a new replica set, its pods ready",
                vec![desired("rs-0", true), desired("rs-1", true)],
                recorded(&[("rs-0", 2)], Some("h")),
                true,
            ),
            (
                "a new replica set, its pods not all ready yet",
                vec![desired("rs-0", false), desired("rs-1", false)],
                recorded(&[("rs-0", 2)], Some("h")),
                false,
            ),
            (
                "a replica short of its instances (scaled up)",
                vec![desired("rs-0", true)],
                recorded(&[("rs-0", 1)], Some("h")),
                true,
            ),
        ];
        for (what, want, status, asks) in cases {
            assert_eq!(needs_cartridge(&want, &status, 2, "h"), asks, "{what}");
        }
    }
}
