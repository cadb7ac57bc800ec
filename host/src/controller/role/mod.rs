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
use crate::topology::{InstanceTarget, ReplicasetInfo, Topology};

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
    /// Cartridge through the Cluster's leader; `None` before the Cluster's
    /// bootstrap (nothing of the Role is in a topology yet).
    pub fn leader_topology(&self, ctx: &Context) -> Option<Arc<dyn Topology>> {
        let cluster = self.cluster.as_ref()?;
        let status = cluster.status.as_ref()?;
        let leader = status.leader.as_deref().filter(|_| status.bootstrapped)?;
        Some(ctx.connector.connect(&InstanceTarget::for_pod(
            &self.namespace,
            leader,
            cluster.spec.console.as_ref(),
        )))
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
pub async fn run_steps(ctx: &Context, pass: &mut RolePass) -> Result<Flow, StepFailed> {
    let p = Pipeline::new("role", &ctx.metrics);
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
    let flow = run_steps(&ctx, &mut pass).await;
    steps::finish(&ctx, &mut pass, &flow)
        .await
        .map_err(|source| StepFailed {
            step: "UpdateStatus",
            source,
        })?;
    flow.map(|flow| super::run::action_after(&ctx.settings, &flow))
}
