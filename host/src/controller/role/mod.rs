//! The Role controller, a pipeline of steps:
//!
//! CheckDeletion -> FindCluster -> Validate -> EnsureFinalizer ->
//! SyncService -> Observe -> DecideScaling -> SyncStatefulSets ->
//! SyncDisruptionBudgets -> JoinTopology -> ExecuteScaling -> AwaitScaling ->
//! HandOverEvictions -> RollingUpdate -> ObserveReadiness, then
//! the status (per replica set: replicas, ready, updated, joined, master,
//! weight).
//!
//! FindCluster and Observe read what the pass decides on, once
//! ([`observe::Snapshot`]: the Cluster, the pods, the StatefulSets); the
//! steps after them take it by reference, and SyncStatefulSets hands on
//! the next snapshot, with the StatefulSets as it applied them.
//!
//! A Role being deleted: CheckDeletion -> FindCluster -> ReleaseEarly ->
//! Observe -> DecideScaling -> ExecuteScaling -> AwaitScaling ->
//! ReleaseFinalizer (see `deletion`).
//!
//! The first join of a new cluster is the Cluster's bootstrap; after it,
//! this controller joins what scaling adds and keeps the replica sets'
//! Cartridge settings in line with `spec.vshard`.

pub(crate) mod budgets;
pub(crate) mod cartridge;
pub(crate) mod deletion;
pub(crate) mod desired;
pub(crate) mod evictions;
pub(crate) mod observe;
pub mod rollout;
pub(crate) mod scaling;
pub(crate) mod scaling_exec;
pub(crate) mod statefulsets;
pub(crate) mod steps;
pub(crate) mod switchover;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::ResourceExt;

use self::cartridge::{Answer, CartridgeView};
use self::observe::Located;
use super::lifecycle::Reconciler;
use super::pipeline::{Flow, Outcome, Pipeline};
use super::{Context, Error};
use crate::api::role::{Role, RoleStatus};
use crate::step;
use crate::topology::InstanceTarget;

/// Everything one pass learns and decides about a Role.
pub struct RolePass {
    /// The object as the pass started.
    pub role: Arc<Role>,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// What its spec asks for.
    pub desired: desired::Desired,
    /// The pass's last observation ([`observe::Snapshot`]), kept for
    /// [`Reconciler::finish`]: a pass that ended early still reports what
    /// it saw. The steps take the snapshot as an argument, never from here.
    pub(crate) seen: Option<Arc<observe::Snapshot>>,
    /// Names of its volume claims, when a step needed them listed.
    pub claims: Option<BTreeSet<String>>,
    /// What Cartridge said this pass (asked at most once per need).
    pub(crate) cartridge: CartridgeView,
    /// The scaling plan of this pass.
    pub(crate) scaling: Option<scaling::Plan>,
    /// The verified answer the plan was decided on (its steps go through
    /// the same member).
    pub(crate) scaling_answer: Option<Answer>,
    /// The status being built.
    pub status: RoleStatus,
    /// The Role is being deleted and our finalizer holds it: every
    /// StatefulSet retires.
    pub(crate) deleting: bool,
    /// Master switches this pass saw complete (replica set, switch), to be
    /// reported once the status is written.
    pub(crate) completed_switches: Vec<(String, crate::api::role::MasterSwitch)>,
    /// Generations of the StatefulSets as this pass applied or accepted
    /// them, by name.
    pub(crate) applied_generations: std::collections::BTreeMap<String, i64>,
    /// The pass's clock: what maintenance windows are judged against (one
    /// reading per pass; tests set it).
    pub(crate) now: k8s_openapi::jiff::Timestamp,
}

impl RolePass {
    /// The owner reference the Role's objects carry (the Role as their
    /// controller); an error for a Role without a UID.
    pub(crate) fn owner_ref(
        &self,
    ) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference, Error> {
        use kube::Resource;
        self.role
            .controller_owner_ref(&())
            .ok_or(Error::MissingField("uid"))
    }

    /// Records `planned` master switches in the status and writes it, before
    /// they are sent: an operator restarted while Cartridge still names the
    /// old master then knows which two pods wait for the switch.
    pub(crate) async fn record_switches_before_sending(
        &mut self,
        ctx: &Context,
        planned: &[(String, crate::api::role::MasterSwitch)],
    ) -> Result<(), Error> {
        if planned.is_empty() {
            return Ok(());
        }
        for (replicaset, switch) in planned {
            switchover::record(&mut self.status.replicasets, replicaset, switch);
        }
        crate::controller::status::write(
            ctx,
            self.role.as_ref(),
            self.role.status.as_ref(),
            &self.status,
        )
        .await
        .map(|_| ())
    }

    /// Asks Cartridge about the Role through one routing policy: the
    /// Cluster's leader first, then up to two ready pods of the Role's
    /// joined replica sets (the leader's pod may be restarting). The first
    /// answer that is evidence ([`cartridge::judge`]) wins; `[]`, a
    /// timeout, a refusal or a stranger's view from every source is
    /// [`CartridgeView::Unknown`]. Before the Cluster's bootstrap:
    /// [`CartridgeView::NotBootstrapped`].
    pub(crate) async fn ask_cartridge(
        &self,
        ctx: &Context,
        snap: &observe::Snapshot,
    ) -> CartridgeView {
        let cluster = &snap.cluster;
        let Some(status) = cluster.status.as_ref().filter(|s| s.bootstrapped) else {
            return CartridgeView::NotBootstrapped;
        };
        let joined = cartridge::joined(&self.status.replicasets);
        let joined_names: Vec<&str> = joined.iter().map(|(_, name)| name.as_str()).collect();
        let members = snap.pods.iter().filter(|p| {
            crate::controller::members::is_ready(p)
                && p.labels()
                    .get(crate::resources::labels::REPLICASET)
                    .is_some_and(|rs| joined_names.contains(&rs.as_str()))
        });
        let mut targets: Vec<String> = status.leader.iter().cloned().collect();
        targets.extend(
            members
                .map(ResourceExt::name_any)
                .filter(|p| status.leader.as_ref() != Some(p))
                .take(2),
        );
        // The same decision as the Cluster's: a console the policy refuses
        // is never exec'd (the Cluster reports why).
        let access = match ctx.settings.console.resolve(cluster.spec.console.as_ref()) {
            Ok(access) => access,
            Err(refused) => return CartridgeView::Unknown(refused.to_string()),
        };
        let mut reasons = Vec::new();
        for pod in targets {
            let expected = self.home_replicaset(ctx, snap, &pod);
            let client = ctx.connector.connect(&InstanceTarget::for_pod(
                &self.namespace,
                &pod,
                Some(&access),
            ));
            match client.replicasets().await {
                Ok(replicasets) => {
                    match cartridge::judge(&pod, expected.as_deref(), &replicasets, &joined) {
                        Ok(()) => {
                            return CartridgeView::Answered(Answer {
                                source: pod,
                                replicasets,
                                client,
                            });
                        }
                        Err(distrust) => reasons.push(format!("{pod} {distrust}")),
                    }
                }
                Err(e) => reasons.push(format!("{pod}: {e}")),
            }
        }
        if reasons.is_empty() {
            reasons.push("no member to ask".into());
        }
        CartridgeView::Unknown(reasons.join("; "))
    }

    /// The replica set UUID pod `pod` must report itself in: its
    /// StatefulSet's (from the pod's owner reference), when the pod is
    /// known to this pass or to the controllers' store.
    fn home_replicaset(
        &self,
        ctx: &Context,
        snap: &observe::Snapshot,
        pod: &str,
    ) -> Option<String> {
        let found = snap
            .pods
            .iter()
            .find(|p| p.name_any() == pod)
            .cloned()
            .or_else(|| ctx.cache().and_then(|c| c.pod(&self.namespace, pod)))?;
        let owner = found
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "StatefulSet")?;
        Some(crate::topology::identity::replicaset_uuid(
            &self.namespace,
            &snap.cluster_name(),
            &owner.name,
            &owner.uid,
        ))
    }
}

impl Reconciler for RolePass {
    type Object = Role;

    const CONTROLLER: &'static str = "role";

    fn new(role: Arc<Role>) -> Result<Self, Error> {
        let namespace = role.namespace().ok_or(Error::MissingField("namespace"))?;
        let name = role.name_any();
        let status = role.status.clone().unwrap_or_default();
        Ok(Self {
            desired: desired::Desired::of(&role),
            role,
            namespace,
            name,
            seen: None,
            claims: None,
            cartridge: CartridgeView::NotAsked,
            scaling: None,
            scaling_answer: None,
            status,
            deleting: false,
            completed_switches: Vec::new(),
            applied_generations: std::collections::BTreeMap::new(),
            now: k8s_openapi::jiff::Timestamp::now(),
        })
    }

    /// The steps, in order.
    async fn run_steps(&mut self, ctx: &Context, p: &Pipeline<'_>) -> Outcome {
        let pass = self;
        step!(p, "CheckDeletion", deletion::check_deletion(pass));
        let found = match p.yields("FindCluster", observe::locate(ctx, pass)).await? {
            Located::Found(cluster) => Some(*cluster),
            Located::Gone => None,
            Located::Wait(flow) => return Ok(flow),
        };
        if pass.deleting {
            // The deletion: every StatefulSet retires, through the same
            // scaling decisions, and the finalizer goes when none is left.
            step!(
                p,
                "ReleaseEarly",
                deletion::release_early(ctx, pass, found.as_ref())
            );
            // Without a Cluster, ReleaseEarly has let the Role go (or waits
            // for its routers): nothing is drained without one.
            let Some(cluster) = found else {
                return Ok(Flow::Stop);
            };
            let snap = p
                .yields("Observe", observe::observe(ctx, pass, cluster))
                .await?;
            pass.seen = Some(snap.clone());
            step!(p, "DecideScaling", steps::decide_scaling(ctx, &snap, pass));
            step!(p, "ExecuteScaling", steps::execute_scaling(ctx, pass));
            step!(p, "AwaitScaling", steps::await_scaling(ctx, pass));
            step!(
                p,
                "ReleaseFinalizer",
                deletion::release_when_gone(ctx, &snap, pass)
            );
            return Ok(Flow::Stop);
        }
        // A live Role is never Gone (that needs the deletion mark).
        let Some(cluster) = found else {
            return Ok(Flow::Stop);
        };
        step!(p, "Validate", steps::validate(pass));
        step!(p, "EnsureFinalizer", deletion::ensure_finalizer(ctx, pass));
        step!(p, "SyncService", steps::sync_service(ctx, &cluster, pass));
        let snap = p
            .yields("Observe", observe::observe(ctx, pass, cluster))
            .await?;
        pass.seen = Some(snap.clone());
        step!(p, "DecideScaling", steps::decide_scaling(ctx, &snap, pass));
        // The StatefulSets as applied: the next snapshot.
        let snap = p
            .yields(
                "SyncStatefulSets",
                steps::sync_statefulsets(ctx, &snap, pass),
            )
            .await?;
        pass.seen = Some(snap.clone());
        step!(p, "SyncDisruptionBudgets", budgets::sync(ctx, &snap, pass));
        step!(p, "JoinTopology", steps::join_topology(ctx, &snap, pass));
        step!(p, "ExecuteScaling", steps::execute_scaling(ctx, pass));
        step!(p, "AwaitScaling", steps::await_scaling(ctx, pass));
        step!(
            p,
            "HandOverEvictions",
            evictions::hand_over_evictions(ctx, &snap, pass)
        );
        step!(
            p,
            "RollingUpdate",
            rollout::rolling_update(ctx, &snap, pass)
        );
        step!(p, "ObserveReadiness", steps::observe_readiness(&snap, pass));
        Ok(Flow::Next)
    }

    async fn finish(
        &mut self,
        ctx: &Context,
        outcome: &Outcome,
    ) -> Result<Option<std::time::Duration>, Error> {
        steps::finish(ctx, self, outcome).await
    }
}
