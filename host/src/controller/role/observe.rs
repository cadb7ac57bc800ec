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
use crate::api::role::ReplicasetStatus;
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
    /// The Role's StatefulSets, in name order: from the store or listed
    /// ([`store_lags`]), or, after
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

/// Reads the Role's pods and StatefulSets once, for the whole pass: both
/// from the controllers' stores while they run, the StatefulSets listed
/// instead when the store may lag behind the operator's own writes
/// ([`store_lags`]).
pub(crate) async fn observe(
    ctx: &Context,
    pass: &RolePass,
    cluster: Cluster,
) -> Result<Arc<Snapshot>, Error> {
    let selector = labels::role_selector(&pass.name);
    let cache = ctx.cache().filter(|c| c.ready());
    let pods = match &cache {
        Some(cache) => cache.role_pods(&pass.namespace, &pass.name),
        None => {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pass.namespace);
            api.list(&ListParams::default().labels(&selector))
                .await?
                .items
        }
    };
    let cached = cache.map(|c| c.role_statefulsets(&pass.namespace, &pass.name));
    let statefulsets = match cached {
        Some(cached)
            if !store_lags(
                &cached,
                &pass.desired.statefulsets,
                &pass.status.replicasets,
            ) =>
        {
            cached
        }
        _ => {
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &pass.namespace);
            let mut listed = api
                .list(&ListParams::default().labels(&selector))
                .await?
                .items;
            listed.sort_by_key(ResourceExt::name_any);
            listed
        }
    };
    Ok(Arc::new(Snapshot {
        cluster,
        pods,
        statefulsets,
    }))
}

/// Whether the StatefulSet store may be behind what this operator wrote, so
/// that the pass lists them instead: a StatefulSet the spec wants that the
/// store lacks (created a moment ago, or not yet), one it does not want
/// (retiring, or deleted a moment ago), one older than the generation the
/// status recorded after the operator's own apply, or a removal of a
/// replica set or of instances under way (the operator deletes
/// StatefulSets and patches their epochs then: a change the store has not
/// seen must not read as one still to make). Only a Role at rest reads the
/// store. A store merely behind someone else's change is fine: the watch
/// wakes the Role again once it catches up.
pub(crate) fn store_lags(
    cached: &[StatefulSet],
    wanted: &[String],
    records: &[ReplicasetStatus],
) -> bool {
    let found = |name: &str| cached.iter().find(|s| s.name_any() == name);
    records
        .iter()
        .any(|r| r.removal.is_some() || !r.removed_instances.is_empty())
        || wanted.iter().any(|name| found(name).is_none())
        || cached.iter().any(|s| !wanted.contains(&s.name_any()))
        || records.iter().any(|r| {
            r.statefulset_generation.is_some_and(|recorded| {
                found(&r.name).is_some_and(|s| s.metadata.generation.unwrap_or(0) < recorded)
            })
        })
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
    fn the_statefulset_store_is_read_unless_it_may_lag_behind_our_writes() {
        use crate::api::role::RemovalStage;
        let sts = |name: &str, generation: i64| StatefulSet {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                generation: Some(generation),
                ..Default::default()
            },
            ..Default::default()
        };
        let record =
            |name: &str, generation: Option<i64>, removal: Option<RemovalStage>| ReplicasetStatus {
                name: name.into(),
                statefulset_generation: generation,
                removal,
                ..Default::default()
            };
        let wanted = vec!["s-0".to_string(), "s-1".to_string()];
        let cases = [
            (
                "as recorded",
                vec![sts("s-0", 3), sts("s-1", 2)],
                vec![record("s-0", Some(3), None), record("s-1", Some(2), None)],
                false,
            ),
            (
                "someone else's newer change: the watch wakes us",
                vec![sts("s-0", 4), sts("s-1", 2)],
                vec![record("s-0", Some(3), None), record("s-1", Some(2), None)],
                false,
            ),
            (
                "nothing recorded yet",
                vec![sts("s-0", 1), sts("s-1", 1)],
                vec![],
                false,
            ),
            (
                "older than our own apply",
                vec![sts("s-0", 2), sts("s-1", 2)],
                vec![record("s-0", Some(3), None), record("s-1", Some(2), None)],
                true,
            ),
            (
                "a wanted one missing (just created)",
                vec![sts("s-0", 3)],
                vec![record("s-0", Some(3), None)],
                true,
            ),
            (
                "a removal under way",
                vec![sts("s-0", 3), sts("s-1", 2), sts("s-2", 5)],
                vec![
                    record("s-0", Some(3), None),
                    record("s-1", Some(2), None),
                    record("s-2", Some(5), Some(RemovalStage::Draining)),
                ],
                true,
            ),
            (
                "one it does not want, its record gone (deleted a moment ago)",
                vec![sts("s-0", 3), sts("s-1", 2), sts("s-2", 5)],
                vec![record("s-0", Some(3), None), record("s-1", Some(2), None)],
                true,
            ),
            (
                "instances being removed",
                vec![sts("s-0", 3), sts("s-1", 2)],
                vec![
                    ReplicasetStatus {
                        removed_instances: vec![crate::api::role::InstanceRemoval {
                            pod: "s-0-2".into(),
                            uuid: "u".into(),
                            stage: crate::api::role::InstanceStage::Expelling,
                        }],
                        ..record("s-0", Some(3), None)
                    },
                    record("s-1", Some(2), None),
                ],
                true,
            ),
        ];
        for (case, cached, records, lags) in cases {
            assert_eq!(store_lags(&cached, &wanted, &records), lags, "{case}");
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
