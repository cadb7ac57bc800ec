//! Removing replica sets and instances without losing data.
//!
//! A replica set leaves when the Role wants fewer of them, or when a new
//! volume template gave its StatefulSet a successor (the PVC migration):
//! its weight goes to 0, vshard moves its buckets away, the Cluster's
//! leader moves out of it (the Cluster never picks a leader there), its
//! instances are expelled, and only then its StatefulSet and volumes are
//! deleted. An instance leaves when the Role wants fewer replicas: the
//! master moves first, the StatefulSet shrinks, and the instance is
//! expelled once its pod is gone.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};

use super::RolePass;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error, events, members};
use crate::resources::epochs::{self, Epochs};
use crate::resources::names;
use crate::topology::{ReplicasetEdit, ReplicasetInfo, Topology, TopologyEdit, identity};

/// StatefulSets of the Role the spec no longer names.
fn retiring(pass: &RolePass) -> Vec<StatefulSet> {
    let wanted = members::statefulset_names(&pass.role);
    pass.statefulsets
        .iter()
        .filter(|s| !wanted.contains(&s.name_any()))
        .cloned()
        .collect()
}

/// The ordinal of a pod of StatefulSet `sts`.
fn ordinal(sts: &str, pod: &str) -> Option<u32> {
    pod.strip_prefix(sts)?.strip_prefix('-')?.parse().ok()
}

/// Drains, expels and deletes retiring replica sets; expels instances
/// removed by a smaller `replicas`. Asks Cartridge only when there is
/// something to remove.
pub async fn retire(ctx: &Context, pass: &mut RolePass) -> Result<Flow, Error> {
    let retiring = retiring(pass);
    let replicas = pass
        .role
        .spec
        .replicaset_template()
        .map_or(0, |t| t.replicas);
    let extra_joined = pass.status.replicasets.iter().any(|s| s.joined > replicas);
    if retiring.is_empty() && !extra_joined {
        return Ok(Flow::Next);
    }
    let Some((topology, observed)) = pass.topology(ctx).await? else {
        // Never bootstrapped: nothing of them is in a topology.
        for sts in &retiring {
            delete_statefulset(ctx, pass, sts).await?;
        }
        return Ok(Flow::Next);
    };
    let mut waiting = Vec::new();

    expel_removed_instances(ctx, pass, &topology, &observed, replicas, &mut waiting).await?;

    let leader = pass
        .cluster
        .as_ref()
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.leader.clone());
    for sts in &retiring {
        let name = sts.name_any();
        let Some(info) = observed.iter().find(|r| r.alias == name) else {
            delete_statefulset(ctx, pass, sts).await?;
            continue;
        };
        if let Some(why) = drain(ctx, pass, &topology, info).await? {
            waiting.push(why);
            continue;
        }
        if leader
            .as_deref()
            .is_some_and(|l| ordinal(&name, l).is_some())
        {
            waiting.push(format!("the Cluster's leader to move out of {name}"));
            continue;
        }
        let uuids: Vec<String> = info.servers.iter().map(|s| s.uuid.clone()).collect();
        topology
            .edit(&TopologyEdit {
                replicasets: Vec::new(),
                expel: uuids,
            })
            .await?;
        events::normal(
            ctx,
            pass.role.as_ref(),
            "ReplicasetExpelled",
            format!("replica set {name} drained and expelled"),
        )
        .await;
        delete_statefulset(ctx, pass, sts).await?;
    }
    pass.topology = Some(topology.replicasets().await?);
    if waiting.is_empty() {
        Ok(Flow::Next)
    } else {
        Ok(Flow::wait(
            "Scaling",
            format!("waiting for {}", waiting.join(", ")),
            ctx.settings.poll,
        ))
    }
}

/// Expels the instances beyond `replicas` whose pods are gone (their
/// master moved before the StatefulSet shrank). Each one's ordinal moves
/// to its next epoch first, so that a pod scaled back in later joins as a
/// new instance; see [`crate::resources::epochs`].
async fn expel_removed_instances(
    ctx: &Context,
    pass: &RolePass,
    topology: &Arc<dyn Topology>,
    observed: &[ReplicasetInfo],
    replicas: i32,
    waiting: &mut Vec<String>,
) -> Result<(), Error> {
    let replicas = u32::try_from(replicas).unwrap_or(0);
    let cluster = pass
        .cluster
        .as_ref()
        .map(ResourceExt::name_any)
        .unwrap_or_default();
    let mut expel = Vec::new();
    for sts in &pass.statefulsets {
        let name = sts.name_any();
        if !members::statefulset_names(&pass.role).contains(&name) {
            continue;
        }
        let Some(info) = observed.iter().find(|r| r.alias == name) else {
            continue;
        };
        let generation = sts.uid().unwrap_or_default();
        let mut epochs = Epochs::of(sts);
        let mut bumped = false;
        for server in &info.servers {
            let Some(o) = ordinal(&name, &server.alias).filter(|o| *o >= replicas) else {
                continue;
            };
            let pod_exists = pass.pods.iter().any(|p| p.name_any() == server.alias);
            if pod_exists || info.master.as_deref() == Some(server.uuid.as_str()) {
                waiting.push(format!("{} to stop", server.alias));
                continue;
            }
            let current = identity::instance_uuid(
                &pass.namespace,
                &cluster,
                &server.alias,
                &generation,
                epochs.get(o),
            );
            if current == server.uuid {
                epochs.bump(o);
                bumped = true;
            }
            expel.push(server.uuid.clone());
        }
        if bumped {
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &pass.namespace);
            api.patch(
                &name,
                &PatchParams::apply(epochs::FIELD_MANAGER).force(),
                &Patch::Apply(epochs.apply_patch(&name)),
            )
            .await?;
        }
    }
    if expel.is_empty() {
        return Ok(());
    }
    topology
        .edit(&TopologyEdit {
            replicasets: Vec::new(),
            expel: expel.clone(),
        })
        .await?;
    events::normal(
        ctx,
        pass.role.as_ref(),
        "InstancesExpelled",
        format!("expelled {} instances removed by scaling down", expel.len()),
    )
    .await;
    Ok(())
}

/// Sets the weight of a replica set holding data to 0; `Some(why)` while
/// buckets remain.
async fn drain(
    ctx: &Context,
    pass: &RolePass,
    topology: &Arc<dyn Topology>,
    info: &ReplicasetInfo,
) -> Result<Option<String>, Error> {
    if info.weight.is_some_and(|w| w > 0.0) {
        topology
            .edit(&TopologyEdit {
                replicasets: vec![ReplicasetEdit {
                    uuid: info.uuid.clone(),
                    weight: Some(0.0),
                    ..ReplicasetEdit::default()
                }],
                expel: Vec::new(),
            })
            .await?;
        events::normal(
            ctx,
            pass.role.as_ref(),
            "DrainStarted",
            format!(
                "replica set {}: weight 0, its buckets move away",
                info.alias
            ),
        )
        .await;
        return Ok(Some(format!("{} to drain", info.alias)));
    }
    match info.bucket_count() {
        Some(n) if n > 0 => Ok(Some(format!("{} to drain ({n} buckets left)", info.alias))),
        _ => Ok(None),
    }
}

/// Deletes a retired StatefulSet and its volumes (its data has moved).
async fn delete_statefulset(
    ctx: &Context,
    pass: &RolePass,
    sts: &StatefulSet,
) -> Result<(), Error> {
    let name = sts.name_any();
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    match api.delete(&name, &DeleteParams::foreground()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    let replicas = sts.spec.replicas.unwrap_or(0).max(0) as u32;
    for template in sts.spec.volume_claim_templates.iter().flatten() {
        for i in 0..replicas {
            let claim = format!("{}-{}", template.name_any(), names::pod_name(&name, i));
            match claims.delete(&claim, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    events::normal(
        ctx,
        pass.role.as_ref(),
        "StatefulSetDeleted",
        format!("StatefulSet {name} and its volumes deleted"),
    )
    .await;
    Ok(())
}

/// Before a StatefulSet shrinks, the master of its replica set moves to an
/// instance that stays (the healthiest first in failover priority).
/// `Some(why)` when the StatefulSet must not shrink yet.
pub async fn move_masters_off_removed(
    ctx: &Context,
    pass: &RolePass,
    existing: &[StatefulSet],
) -> Result<Option<String>, Error> {
    let replicas = pass
        .role
        .spec
        .replicaset_template()
        .map_or(0, |t| t.replicas);
    let wanted = members::statefulset_names(&pass.role);
    let shrinking: Vec<String> = existing
        .iter()
        .filter(|s| wanted.contains(&s.name_any()) && s.spec.replicas.unwrap_or(0) > replicas)
        .map(ResourceExt::name_any)
        .collect();
    if shrinking.is_empty() {
        return Ok(None);
    }
    let Some((topology, observed)) = pass.topology(ctx).await? else {
        return Ok(None);
    };
    let keep = |alias: &str, sts: &str| {
        ordinal(sts, alias).is_some_and(|o| o < u32::try_from(replicas).unwrap_or(0))
    };
    for name in &shrinking {
        let Some(info) = observed.iter().find(|r| &r.alias == name) else {
            continue;
        };
        let Some(master) = info.master_alias() else {
            continue;
        };
        if keep(master, name) {
            continue;
        }
        let Some(next) = info
            .servers
            .iter()
            .find(|s| keep(&s.alias, name) && s.healthy && s.replicating)
        else {
            return Ok(Some(format!(
                "no healthy instance of {name} to take over from master {master}"
            )));
        };
        super::rollout::execute::switch_master(
            ctx,
            pass.role.as_ref(),
            topology.as_ref(),
            info,
            &next.uuid,
            &next.alias,
        )
        .await?;
    }
    Ok(None)
}
