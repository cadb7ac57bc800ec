//! What a Role pass reads before it decides anything, read once: its
//! Cluster, its pods and its StatefulSets, as one immutable [`Snapshot`].
//!
//! Past [`locate`] the Cluster is a value, not an `Option` a step re-checks:
//! a Role without one has waited (or, being deleted, has been let go) by
//! then. The steps that decide take the snapshot by reference; the one step
//! that changes what is there, SyncStatefulSets, returns the next snapshot
//! ([`Snapshot::with_statefulsets`]) instead of editing this one.
//! What Cartridge says is read through the same routing policy once per
//! need ([`super::cartridge::CartridgeView`]), and the volume claims only
//! when a scaling decision needs them.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::RolePass;
use crate::api::Reason;
use crate::api::cluster::Cluster;
use crate::controller::claim;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error};
use crate::resources::labels;

/// Everything a Role pass observed of the cluster, read once.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// The Cluster that lists the Role.
    pub(crate) cluster: Cluster,
    /// The Role's pods (from the controllers' store while they run, with
    /// the pods this operator just deleted marked terminating; see
    /// `cache`).
    pub(crate) pods: Vec<Pod>,
    /// The Role's StatefulSets, in name order: as listed, or, after
    /// SyncStatefulSets, as this pass applied them.
    pub(crate) statefulsets: Vec<StatefulSet>,
}

impl Snapshot {
    /// The Cluster's name (labels, UUIDs).
    pub(crate) fn cluster_name(&self) -> String {
        self.cluster.name_any()
    }

    /// The same observation, with `deleted` (pods this pass just deleted)
    /// marked terminating as of `at`: they hold their replica set's budget
    /// until the watch shows them gone.
    pub(crate) fn with_deleted(&self, deleted: &[String], at: &Time) -> Self {
        let mut pods = self.pods.clone();
        for pod in &mut pods {
            if deleted.contains(&pod.name_any()) {
                pod.metadata.deletion_timestamp = Some(at.clone());
            }
        }
        Self {
            cluster: self.cluster.clone(),
            pods,
            statefulsets: self.statefulsets.clone(),
        }
    }

    /// The same observation, with the StatefulSets as this pass left them.
    pub(crate) fn with_statefulsets(&self, statefulsets: Vec<StatefulSet>) -> Self {
        Self {
            cluster: self.cluster.clone(),
            pods: self.pods.clone(),
            statefulsets,
        }
    }
}

/// Where the Role's Cluster stands.
#[derive(Debug)]
pub(crate) enum Located {
    /// Found: the Role's own, or (while the Role is deleted) its owner.
    Found(Box<Cluster>),
    /// The Role is being deleted and no Cluster is left to drain into.
    Gone,
    /// Not found: the Role waits for one (it may well be applied first).
    Wait(Flow),
}

/// The Role's Cluster (see [`claim::cluster_of`]). Without one the Role
/// waits: its pods need the cluster's name (labels, UUIDs).
pub(crate) async fn locate(ctx: &Context, pass: &RolePass) -> Result<Located, Error> {
    let clusters = match ctx.cache() {
        Some(cache) if cache.ready() => cache.clusters(&pass.namespace),
        _ => {
            let api: Api<Cluster> = Api::namespaced(ctx.client.clone(), &pass.namespace);
            api.list(&ListParams::default()).await?.items
        }
    };
    // A Role being deleted may have been taken off its Cluster's list
    // first: its owner still has its data.
    let cluster = match claim::cluster_of(&pass.role, &clusters) {
        Ok(cluster) => Ok(cluster.clone()),
        Err(why) => match super::deletion::owner(&pass.role, &clusters) {
            Some(owner) if pass.deleting => Ok(owner.clone()),
            _ => Err(why),
        },
    };
    Ok(match cluster {
        Ok(cluster) => Located::Found(Box::new(cluster)),
        Err(_) if pass.deleting => Located::Gone,
        Err(why) => Located::Wait(Flow::wait_for_event(Reason::NoCluster, why)),
    })
}

/// Reads the Role's pods and StatefulSets once, for the whole pass.
pub(crate) async fn observe(
    ctx: &Context,
    pass: &RolePass,
    cluster: Cluster,
) -> Result<Arc<Snapshot>, Error> {
    let selector = labels::role_selector(&pass.name);
    let pods = match ctx.cache() {
        Some(cache) if cache.ready() => cache.role_pods(&pass.namespace, &pass.name),
        _ => {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pass.namespace);
            api.list(&ListParams::default().labels(&selector))
                .await?
                .items
        }
    };
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    let mut statefulsets = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    statefulsets.sort_by_key(ResourceExt::name_any);
    Ok(Arc::new(Snapshot {
        cluster,
        pods,
        statefulsets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{self, STORAGE};

    fn snapshot() -> Snapshot {
        let role = testing::role(STORAGE);
        Snapshot {
            cluster: testing::cluster(),
            pods: testing::pods(&role, true),
            statefulsets: testing::statefulsets(&role),
        }
    }

    #[test]
    fn what_a_pass_deleted_reads_as_terminating_in_the_next_snapshot_only() {
        let before = snapshot();
        let names: Vec<String> = before.pods.iter().map(ResourceExt::name_any).collect();
        let at = Time(k8s_openapi::jiff::Timestamp::now());
        let cases: [(&str, Vec<String>); 3] = [
            ("nothing deleted", vec![]),
            ("one pod", vec![names[0].clone()]),
            (
                "two pods and a stranger",
                vec![names[1].clone(), names[2].clone(), "elsewhere-0".into()],
            ),
        ];
        for (case, deleted) in cases {
            let after = before.with_deleted(&deleted, &at);
            for (was, now) in before.pods.iter().zip(&after.pods) {
                assert!(
                    was.metadata.deletion_timestamp.is_none(),
                    "{case}: unchanged"
                );
                assert_eq!(
                    now.metadata.deletion_timestamp.is_some(),
                    deleted.contains(&now.name_any()),
                    "{case}: {}",
                    now.name_any()
                );
            }
            assert_eq!(
                after.statefulsets.len(),
                before.statefulsets.len(),
                "{case}"
            );
        }
    }

    #[test]
    fn the_applied_statefulsets_replace_the_listed_ones_and_nothing_else() {
        let before = snapshot();
        let applied = vec![before.statefulsets[0].clone()];
        let after = before.with_statefulsets(applied);
        assert_eq!(after.statefulsets.len(), 1);
        assert_eq!(before.statefulsets.len(), 2, "the first snapshot stays");
        assert_eq!(after.pods.len(), before.pods.len());
        assert_eq!(after.cluster_name(), before.cluster_name());
    }
}
