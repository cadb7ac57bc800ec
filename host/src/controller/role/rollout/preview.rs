//! A rollout, previewed: the Role as the strategy's view shows it, turned
//! into the simulator's description and run to the end with the Role's own
//! strategy. `tarantool-operator plan -n NS ROLE` ([`live`]) and the status
//! of a paused rollout (`status.update.preview`) both come from here.

use std::sync::Arc;

use kube::Api;

use super::view::{self, Built};
use super::{MAX_UNAVAILABLE, component};
use crate::api::role::{ReplicasetStatus, Role, RolloutPreview};
use crate::controller::lifecycle::Reconciler;
use crate::controller::role::RolePass;
use crate::controller::role::cartridge::CartridgeView;
use crate::controller::role::observe;
use crate::controller::{Context, Error};
use crate::resources::apply::desired_hash;
use crate::strategy::Planner;
use crate::strategy::simulator::{
    ReplicaSetDescription, RoleDescription, RunLimits, RunReport, Simulator, Step,
};

/// Seconds from a recreated pod's start to ready the estimate assumes.
pub const RESTART_SECONDS: u64 = 30;
/// Seconds a deleted pod terminates the estimate assumes.
pub const TERMINATE_SECONDS: u64 = 5;

/// What the preview changes on the live Role before simulating.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Every container's image.
    pub image: Option<String>,
    /// Strategy params to set.
    pub params: Vec<(String, String)>,
}

/// The simulator's description of the Role the view shows: replica sets in
/// view order, masters, data, readiness and which pods are updated. With
/// `all_outdated` every pod counts as outdated (a change not applied yet).
pub(crate) fn describe(built: &Built, all_outdated: bool) -> RoleDescription {
    let ordinals = |rs: &strategy_sdk::ReplicaSet, pick: fn(&strategy_sdk::Pod) -> bool| {
        rs.pods
            .iter()
            .filter(|p| pick(p))
            .map(|p| p.ordinal)
            .collect::<Vec<_>>()
    };
    RoleDescription {
        role: built.view.role.clone(),
        params: built.view.params.iter().cloned().collect(),
        max_unavailable: built.view.max_unavailable,
        restart_seconds: RESTART_SECONDS,
        terminate_seconds: TERMINATE_SECONDS,
        replicasets: built
            .view
            .replicasets
            .iter()
            .map(|rs| ReplicaSetDescription {
                name: Some(rs.name.clone()),
                replicas: rs.desired_replicas,
                master: rs.pods.iter().find(|p| p.master).map(|p| p.ordinal),
                holds_data: rs.holds_data,
                weight: rs.weight,
                // A missing or terminating pod is on its way back.
                not_ready: ordinals(rs, |p| !p.ready || p.terminating),
                updated: if all_outdated {
                    Vec::new()
                } else {
                    ordinals(rs, |p| p.updated)
                },
                failing: Vec::new(),
            })
            .collect(),
    }
}

/// Masters and data from the status's records (what Cartridge said when
/// last asked), for a description built without asking it: the status
/// preview makes no console call.
pub(crate) fn with_recorded(description: &mut RoleDescription, records: &[ReplicasetStatus]) {
    for rs in &mut description.replicasets {
        let Some(name) = rs.name.clone() else {
            continue;
        };
        let Some(record) = records.iter().find(|r| r.name == name) else {
            continue;
        };
        rs.master = record
            .master
            .as_deref()
            .and_then(|m| m.strip_prefix(&format!("{name}-")))
            .and_then(|n| n.parse().ok());
        rs.weight = record.weight.unwrap_or(0.0);
        rs.holds_data = rs.weight > 0.0;
    }
}

/// Runs `planner` on `description` to the end.
pub fn simulate(planner: &dyn Planner, description: &RoleDescription) -> Result<RunReport, Error> {
    let mut sim = Simulator::from_description(description).map_err(|e| Error::InvalidSpec {
        kind: "Role",
        name: description.role.clone(),
        message: format!("cannot simulate its rollout: {e}"),
    })?;
    Ok(sim.run(planner, RunLimits::default()))
}

/// A step's actions, `; `-separated (`-` for none).
pub fn actions_text(step: &Step) -> String {
    let actions = step
        .actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    if actions.is_empty() {
        "-".into()
    } else {
        actions
    }
}

/// One step as a line: `35s: delete storage-0-1; switch master of ...`.
pub fn step_line(step: &Step) -> String {
    format!("{}s: {}", step.at, actions_text(step))
}

/// The status form of a run, bounded ([`RolloutPreview::MAX_STEPS`] steps
/// that act, lines of [`RolloutPreview::MAX_LINE`] bytes).
pub(crate) fn to_status(key: String, report: &RunReport) -> RolloutPreview {
    let acting: Vec<&Step> = report
        .steps
        .iter()
        .filter(|s| !s.actions.is_empty())
        .collect();
    let steps = acting
        .iter()
        .take(RolloutPreview::MAX_STEPS)
        .map(|s| crate::api::text::bounded(&step_line(s), RolloutPreview::MAX_LINE))
        .collect();
    RolloutPreview {
        key,
        steps,
        more_steps: i32::try_from(acting.len().saturating_sub(RolloutPreview::MAX_STEPS))
            .unwrap_or(i32::MAX),
        makespan_seconds: i64::try_from(report.stats.makespan_secs).unwrap_or(i64::MAX),
        outcome: crate::api::text::bounded(&report.outcome.to_string(), 256),
    }
}

/// What a preview is computed from, hashed: recomputed only when it moves.
pub(crate) fn key(strategy: &str, revision: &str, description: &RoleDescription) -> String {
    desired_hash(&(strategy, revision, description))
}

/// The live preview: the Role, its pods and StatefulSets read as the Role
/// controller reads them, Cartridge asked through the same routing policy
/// and console path, `overrides` applied, the Role's strategy simulated.
/// Reads only: nothing is written or deleted.
pub async fn live(
    ctx: &Context,
    namespace: &str,
    name: &str,
    overrides: &Overrides,
) -> Result<(RoleDescription, RunReport), Error> {
    let api: Api<Role> = Api::namespaced(ctx.client.clone(), namespace);
    let current = api.get(name).await?;
    let mut role = current.clone();
    if let Some(image) = &overrides.image {
        // The template in force, written where it is read from.
        let template = role.spec.replicaset_template().cloned().map(|mut t| {
            for c in t
                .pod_template
                .spec
                .iter_mut()
                .flat_map(|s| &mut s.containers)
            {
                c.image = Some(image.clone());
            }
            t
        });
        role.spec.replicaset_template = template;
    }
    role.spec
        .update_strategy
        .params
        .extend(overrides.params.iter().cloned());
    let changed = super::super::desired::Desired::of(&role).revision
        != super::super::desired::Desired::of(&current).revision;
    let pass = RolePass::new(Arc::new(role))?;
    let cluster = match observe::locate(ctx, &pass).await? {
        observe::Located::Found(cluster) => *cluster,
        observe::Located::Gone | observe::Located::Wait(_) => {
            return Err(Error::InvalidSpec {
                kind: "Role",
                name: name.to_string(),
                message: "no Cluster lists it, so nothing of it runs to preview".into(),
            });
        }
    };
    let snap = observe::observe(ctx, &pass, cluster).await?;
    let view = pass.ask_cartridge(ctx, &snap).await;
    let replicasets = match &view {
        CartridgeView::Answered(answer) => Some(answer.replicasets.clone()),
        CartridgeView::NotBootstrapped => None,
        other => {
            return Err(Error::InvalidSpec {
                kind: "Role",
                name: name.to_string(),
                message: format!(
                    "no verified answer from Cartridge, so no master is known: {}",
                    other.why_unknown()
                ),
            });
        }
    };
    let built = view::build(&view::Inputs {
        role: &pass.name,
        statefulsets: &pass.desired.statefulsets,
        observed: &snap.statefulsets,
        pods: &snap.pods,
        replicas: pass.desired.replicas,
        topology: replicasets.as_deref(),
        params: &pass.role.spec.update_strategy.params,
        max_unavailable: super::param(&pass, MAX_UNAVAILABLE, 1u32).max(1),
        now: pass.now,
        state: None,
    });
    let description = describe(&built, changed);
    let strategy = component::resolve(ctx, &pass.role, namespace).await?;
    let report = simulate(strategy.as_ref(), &description)?;
    Ok((description, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::simulator::Outcome;

    fn described() -> RoleDescription {
        RoleDescription {
            role: "storage".into(),
            params: Default::default(),
            max_unavailable: 1,
            restart_seconds: RESTART_SECONDS,
            terminate_seconds: TERMINATE_SECONDS,
            replicasets: ["storage-0-h", "storage-1-h"]
                .iter()
                .map(|n| ReplicaSetDescription {
                    name: Some(n.to_string()),
                    replicas: 2,
                    master: None,
                    holds_data: false,
                    weight: 0.0,
                    not_ready: Vec::new(),
                    updated: Vec::new(),
                    failing: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn recorded_masters_and_weights_fill_the_description() {
        let mut d = described();
        let records = vec![ReplicasetStatus {
            name: "storage-0-h".into(),
            master: Some("storage-0-h-1".into()),
            weight: Some(1.0),
            ..ReplicasetStatus::default()
        }];
        with_recorded(&mut d, &records);
        assert_eq!(d.replicasets[0].master, Some(1));
        assert!(d.replicasets[0].holds_data);
        assert_eq!(d.replicasets[1].master, None, "no record: left as it was");
    }

    #[test]
    fn the_status_form_is_bounded() {
        let step = |i: u64| Step {
            at: i,
            actions: vec![crate::strategy::simulator::StepAction::Delete {
                pod: format!("p-{i}"),
            }],
            message: String::new(),
            done: false,
            unavailable: 1,
        };
        let report = RunReport {
            steps: (0..100).map(step).collect(),
            outcome: Outcome::Completed,
            stats: Default::default(),
        };
        let preview = to_status("k".into(), &report);
        assert_eq!(preview.steps.len(), RolloutPreview::MAX_STEPS);
        assert_eq!(preview.more_steps, 100 - RolloutPreview::MAX_STEPS as i32);
        assert_eq!(preview.steps[1], "1s: delete p-1");
    }
}
