//! The Role controller, a pipeline of steps:
//!
//! CheckDeletion -> FindCluster -> Validate -> SyncService ->
//! SyncStatefulSets -> ObservePods -> JoinTopology -> Retire -> RollingUpdate
//! -> ObserveReadiness, then
//! the status (per replica set: replicas, ready, updated, joined, master,
//! weight).
//!
//! The first join of a new cluster is the Cluster's bootstrap; after it,
//! this controller joins what scaling adds and keeps the replica sets'
//! Cartridge settings in line with `spec.vshard`.

pub mod retire;
pub mod rollout;
pub mod steps;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::pipeline::{Flow, Pipeline, StepFailed};
use super::{Context, Error};
use crate::api::cluster::Cluster;
use crate::api::role::{Role, RoleStatus};
use crate::step;
use crate::topology::{InstanceTarget, ReplicasetInfo, Topology, TopologyError};

/// Everything one pass learns and decides about a Role.
pub struct RolePass {
    /// The object as the pass started.
    pub role: Arc<Role>,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The Cluster that lists it.
    pub cluster: Option<Cluster>,
    /// Its StatefulSets (after they were applied).
    pub statefulsets: Vec<StatefulSet>,
    /// Its pods.
    pub pods: Vec<Pod>,
    /// Its replica sets as Cartridge reported them this pass, if asked.
    pub topology: Option<Vec<ReplicasetInfo>>,
    /// The status being built.
    pub status: RoleStatus,
}

impl RolePass {
    /// Cartridge, and what it reports, through the Cluster's leader, or
    /// when the leader's console does not answer (its pod is restarting,
    /// and the Cluster has not moved the leader yet), through a ready
    /// member of this Role: any member can answer and edit the topology.
    /// `None` before the Cluster's bootstrap.
    pub async fn topology(
        &self,
        ctx: &Context,
    ) -> Result<Option<(Arc<dyn Topology>, Vec<ReplicasetInfo>)>, Error> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Ok(None);
        };
        let Some(status) = cluster.status.as_ref().filter(|s| s.bootstrapped) else {
            return Ok(None);
        };
        let joined: Vec<&str> = self
            .status
            .replicasets
            .iter()
            .filter(|r| r.joined > 0)
            .map(|r| r.name.as_str())
            .collect();
        let members = self.pods.iter().filter(|p| {
            crate::controller::members::is_ready(p)
                && p.labels()
                    .get(crate::resources::labels::REPLICASET)
                    .is_some_and(|rs| joined.contains(&rs.as_str()))
        });
        let mut targets: Vec<String> = status.leader.iter().cloned().collect();
        targets.extend(members.map(ResourceExt::name_any).take(2));
        let mut last = None;
        for pod in targets {
            let topology = ctx.connector.connect(&InstanceTarget::for_pod(
                &self.namespace,
                &pod,
                cluster.spec.console.as_ref(),
            ));
            match topology.replicasets().await {
                Ok(replicasets) => return Ok(Some((topology, replicasets))),
                Err(e @ (TopologyError::Unreachable { .. } | TopologyError::Timeout { .. })) => {
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        match last {
            Some(e) => Err(e.into()),
            None => Ok(None),
        }
    }

    /// A pass over `role`.
    pub fn new(role: Arc<Role>) -> Result<Self, Error> {
        let namespace = role.namespace().ok_or(Error::MissingField("namespace"))?;
        let name = role.name_any();
        let status = role.status.clone().unwrap_or_default();
        Ok(Self {
            role,
            namespace,
            name,
            cluster: None,
            statefulsets: Vec::new(),
            pods: Vec::new(),
            topology: None,
            status,
        })
    }
}

/// The steps, in order.
pub async fn run_steps(
    ctx: &Context,
    p: &Pipeline<'_>,
    pass: &mut RolePass,
) -> Result<Flow, StepFailed> {
    step!(p, "CheckDeletion", steps::check_deletion(pass));
    step!(p, "FindCluster", steps::find_cluster(ctx, pass));
    step!(p, "Validate", steps::validate(pass));
    step!(p, "SyncService", steps::sync_service(ctx, pass));
    step!(p, "SyncStatefulSets", steps::sync_statefulsets(ctx, pass));
    step!(p, "ObservePods", steps::observe_pods(ctx, pass));
    step!(p, "JoinTopology", steps::join_topology(ctx, pass));
    step!(p, "Retire", retire::retire(ctx, pass));
    step!(p, "RollingUpdate", rollout::rolling_update(ctx, pass));
    step!(p, "ObserveReadiness", steps::observe_readiness(pass));
    Ok(Flow::Next)
}

/// One reconcile of a Role.
pub async fn reconcile(role: Arc<Role>, ctx: Arc<Context>) -> Result<Action, StepFailed> {
    let _timer = super::run::PassTimer::start(&ctx.metrics, "role");
    let mut pass = RolePass::new(role).map_err(|source| StepFailed {
        step: "GetObject",
        source,
    })?;
    if let Some(status) = ctx
        .written
        .latest(pass.role.as_ref(), pass.role.status.as_ref())
    {
        pass.status = status;
    }
    let p = Pipeline::new("role", &ctx.metrics, &ctx.fence);
    let limit = ctx.settings.pass_timeout;
    let flow = p.bounded(limit, run_steps(&ctx, &p, &mut pass)).await;
    // The status write has a deadline of its own: it must be able to
    // report a pass that ran out of time.
    let finish = p.run("UpdateStatus", async {
        steps::finish(&ctx, &mut pass, &flow)
            .await
            .map(|()| Flow::Next)
    });
    p.bounded(limit, finish).await?;
    flow.map(|flow| super::run::action_after(&ctx.settings, &flow))
}
