//! The Cluster controller, as the article's step pipeline:
//!
//! CheckDeletion -> SetupRolesOwnership -> SyncClusterWideService ->
//! ResolveConsole -> WaitForRolesPhase(Ready) -> GetLeader -> CreateTopologyClient ->
//! Bootstrap -> SetupFailover -> ApplyCartridgeConfig, then the status.
//!
//! Each step is a small function in [`steps`] that either lets the pass go
//! on or ends it (waiting, or with an error). The status is written at the
//! end of every pass, and only when it changed.
//!
//! No finalizer: everything a Cluster has lives in its pods and their
//! volumes, which the garbage collector removes with it; there is nothing
//! outside Kubernetes to clean up.

pub(crate) mod leader;
pub(crate) mod secrets;
pub(crate) mod steps;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::lifecycle::Reconciler;
use super::pipeline::{Flow, Outcome, Pipeline};
use super::{Context, Error, Settings};
use crate::api::cluster::{Cluster, ClusterStatus};
use crate::api::role::Role;
use crate::console::access::ConsoleAccess;
use crate::step;
use crate::topology::Topology;

/// Everything one pass learns and decides about a Cluster.
pub(crate) struct ClusterPass {
    /// The object as the pass started.
    pub cluster: Arc<Cluster>,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its Roles that exist, in the order the spec lists them.
    pub roles: Vec<Role>,
    /// Every pod of the cluster.
    pub pods: Vec<Pod>,
    /// How its pods' consoles are reached, once the policy allowed it.
    pub console: Option<ConsoleAccess>,
    /// The leader pod, once chosen.
    pub leader: Option<String>,
    /// The topology client through the leader.
    pub topology: Option<Arc<dyn Topology>>,
    /// The status being built.
    pub status: ClusterStatus,
}

impl Reconciler for ClusterPass {
    type Object = Cluster;

    const CONTROLLER: &'static str = "cluster";

    fn new(cluster: Arc<Cluster>) -> Result<Self, Error> {
        let namespace = cluster
            .namespace()
            .ok_or(Error::MissingField("namespace"))?;
        let name = cluster.name_any();
        let status = cluster.status.clone().unwrap_or_default();
        Ok(Self {
            cluster,
            namespace,
            name,
            roles: Vec::new(),
            pods: Vec::new(),
            console: None,
            leader: None,
            topology: None,
            status,
        })
    }

    /// The steps, in order.
    async fn run_steps(&mut self, ctx: &Context, p: &Pipeline<'_>) -> Outcome {
        let pass = self;
        step!(p, "CheckDeletion", steps::check_deletion(pass));
        step!(
            p,
            "SetupRolesOwnership",
            steps::setup_roles_ownership(ctx, pass)
        );
        step!(
            p,
            "SyncClusterWideService",
            steps::sync_cluster_wide_service(ctx, pass)
        );
        step!(p, "ResolveConsole", steps::resolve_console(ctx, pass));
        step!(
            p,
            "WaitForRolesPhase",
            steps::wait_for_roles_ready(ctx, pass)
        );
        step!(p, "GetLeader", steps::get_leader(ctx, pass));
        step!(
            p,
            "CreateTopologyClient",
            steps::create_topology_client(ctx, pass)
        );
        step!(p, "Bootstrap", steps::bootstrap(ctx, pass));
        step!(p, "SetupFailover", steps::setup_failover(ctx, pass));
        step!(p, "ApplyCartridgeConfig", steps::apply_config(ctx, pass));
        Ok(Flow::Next)
    }

    /// A Cluster that reads a password from a Secret is looked at again
    /// every `secret_refresh`: Secrets are not watched.
    fn resync(&self, settings: &Settings) -> std::time::Duration {
        let failover = self.cluster.spec.failover_or_default();
        if secrets::references(&failover).is_empty() {
            settings.resync
        } else {
            settings.resync.min(settings.secret_refresh)
        }
    }

    async fn finish(&mut self, ctx: &Context, outcome: &Outcome) -> Result<(), Error> {
        steps::finish(ctx, self, outcome).await
    }
}
