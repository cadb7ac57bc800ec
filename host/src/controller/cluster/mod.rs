//! The Cluster controller, as the article's step pipeline:
//!
//! CheckDeletion -> Observe -> SetupRolesOwnership -> SyncClusterWideService ->
//! ResolveConsole -> WaitForRolesPhase(Ready) -> GetLeader -> CreateTopologyClient ->
//! Bootstrap -> SetupFailover -> ApplyCartridgeConfig, then the status.
//!
//! Observe reads the Cluster's Roles and pods once ([`observe`]); the steps
//! that hand something on (the snapshot with the Roles as adopted, the
//! leader, its topology client) yield it to the steps after them instead of
//! leaving it in the pass.
//!
//! Each step is a small function in [`steps`] that either lets the pass go
//! on or ends it (waiting, or with an error). The status is written at the
//! end of every pass, and only when it changed.
//!
//! No finalizer: everything a Cluster has lives in its pods and their
//! volumes, which the garbage collector removes with it; there is nothing
//! outside Kubernetes to clean up.

pub(crate) mod leader;
pub(crate) mod observe;
pub(crate) mod secrets;
pub(crate) mod steps;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use kube::ResourceExt;

use super::lifecycle::Reconciler;
use super::pipeline::{Flow, Outcome, Pipeline, Then};
use super::{Context, Error, Settings};
use crate::api::cluster::{Cluster, ClusterStatus};
use crate::console::access::ConsoleAccess;
use crate::step;

/// What one pass of a Cluster carries from step to step: the object, how
/// its consoles are reached, and the status being built. What it observes
/// and chooses (its Roles and pods, the leader, the topology client) the
/// steps hand to each other.
pub(crate) struct ClusterPass {
    /// The object as the pass started.
    pub cluster: Arc<Cluster>,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// How its pods' consoles are reached, once the policy allowed it.
    pub console: Option<ConsoleAccess>,
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
            console: None,
            status,
        })
    }

    /// The steps, in order.
    async fn run_steps(&mut self, ctx: &Context, p: &Pipeline<'_>) -> Outcome {
        let pass = self;
        step!(p, "CheckDeletion", steps::check_deletion(pass));
        let snap = p.yields("Observe", observe::observe(ctx, pass)).await?;
        let snap = match p
            .yields(
                "SetupRolesOwnership",
                steps::setup_roles_ownership(ctx, &snap, pass),
            )
            .await?
        {
            Then::Go(snap) => snap,
            Then::End(flow) => return Ok(flow),
        };
        step!(
            p,
            "SyncClusterWideService",
            steps::sync_cluster_wide_service(ctx, pass)
        );
        step!(p, "ResolveConsole", steps::resolve_console(ctx, pass));
        step!(
            p,
            "WaitForRolesPhase",
            steps::wait_for_roles_ready(&snap, pass)
        );
        let leader = match p
            .yields("GetLeader", steps::get_leader(ctx, &snap, pass))
            .await?
        {
            Then::Go(leader) => leader,
            Then::End(flow) => return Ok(flow),
        };
        let topology = p
            .yields(
                "CreateTopologyClient",
                steps::create_topology_client(ctx, pass, &leader),
            )
            .await?;
        step!(
            p,
            "Bootstrap",
            steps::bootstrap(ctx, &snap, pass, &leader, topology.as_ref())
        );
        step!(
            p,
            "SetupFailover",
            steps::setup_failover(ctx, pass, topology.as_ref())
        );
        step!(
            p,
            "ApplyCartridgeConfig",
            steps::apply_config(ctx, pass, topology.as_ref())
        );
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

    async fn finish(
        &mut self,
        ctx: &Context,
        outcome: &Outcome,
    ) -> Result<Option<std::time::Duration>, Error> {
        steps::finish(ctx, self, outcome).await.map(|()| None)
    }
}
