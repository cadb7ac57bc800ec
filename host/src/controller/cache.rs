//! What a pass reads instead of asking the apiserver every time: the
//! Clusters and Roles, the operator's pods, StatefulSets, Services and PodDisruptionBudgets, in reflector
//! stores fed by the same
//! watch streams that wake the Role controller (a pass woken by a change
//! sees that change), and the pods this operator deleted whose deletion the
//! store does not show yet.
//!
//! The last part is what makes a cache safe for rolling updates. A pass
//! that deletes a pod may be followed at once by another (woken by another
//! pod's event, a Cluster's change, a spec change); if the pod watch has not
//! delivered the deletion yet, the store still shows the pod ready, and the
//! strategy could take a second pod of the same replica set beyond the
//! budget. So deletions are
//! remembered (by UID) and such pods read as terminating until the store
//! catches up: the ReplicaSet controller's "expectations", in small.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};

use crate::api::cluster::Cluster;
use crate::api::role::Role;
use crate::resources::labels;

/// How long a remembered deletion is trusted without the store showing it:
/// a deleted pod is marked terminating by the apiserver at once, so the
/// watch shows it within this unless the watch is broken (then the
/// reflector relists, and the pass reads the truth again).
const EXPECTATION_TTL: Duration = Duration::from_secs(60);

/// The stores and the remembered deletions.
pub struct Cache {
    clusters: Store<Cluster>,
    roles: Store<Role>,
    pods: Store<Pod>,
    statefulsets: Store<StatefulSet>,
    services: Store<Service>,
    budgets: Store<PodDisruptionBudget>,
    deleted: Mutex<HashMap<String, Instant>>,
}

/// The writing halves of the stores, for the watch streams in
/// [`crate::controller::run`].
pub struct Writers {
    /// Feeds the Cluster store.
    pub clusters: Writer<Cluster>,
    /// Feeds the Role store (the Cluster passes read their Roles there).
    pub roles: Writer<Role>,
    /// Feeds the pod store.
    pub pods: Writer<Pod>,
    /// Feeds the StatefulSet store.
    pub statefulsets: Writer<StatefulSet>,
    /// Feeds the Service store (the Roles' headless Services).
    pub services: Writer<Service>,
    /// Feeds the PodDisruptionBudget store.
    pub budgets: Writer<PodDisruptionBudget>,
}

impl Cache {
    /// Empty stores and their writers.
    pub fn new() -> (Self, Writers) {
        let (clusters, clusters_writer) = reflector::store();
        let (roles, roles_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let (statefulsets, statefulsets_writer) = reflector::store();
        let (services, services_writer) = reflector::store();
        let (budgets, budgets_writer) = reflector::store();
        (
            Self {
                clusters,
                roles,
                pods,
                statefulsets,
                services,
                budgets,
                deleted: Mutex::default(),
            },
            Writers {
                clusters: clusters_writer,
                roles: roles_writer,
                pods: pods_writer,
                statefulsets: statefulsets_writer,
                services: services_writer,
                budgets: budgets_writer,
            },
        )
    }

    /// Whether every store holds a first full listing (until then a pass
    /// asks the apiserver). Never waits: the stores' readiness signal wakes
    /// only the last of several waiters, so a pass waiting on it could wait
    /// forever.
    pub fn ready(&self) -> bool {
        let ready = |wait: Option<Result<(), _>>| matches!(wait, Some(Ok(())));
        ready(self.clusters.wait_until_ready().now_or_never())
            && ready(self.roles.wait_until_ready().now_or_never())
            && ready(self.pods.wait_until_ready().now_or_never())
            && ready(self.statefulsets.wait_until_ready().now_or_never())
            && ready(self.services.wait_until_ready().now_or_never())
            && ready(self.budgets.wait_until_ready().now_or_never())
    }

    /// The PodDisruptionBudgets of Role `role` in `namespace`, as the store
    /// has them (it may lag behind this operator's own writes).
    pub fn role_budgets(&self, namespace: &str, role: &str) -> Vec<PodDisruptionBudget> {
        of_role(&self.budgets, namespace, role)
    }

    /// The StatefulSets of Role `role` in `namespace`, in name order, as
    /// the store has them (it may lag behind this operator's own writes:
    /// see `role::observe::store_lags`).
    pub(crate) fn role_statefulsets(&self, namespace: &str, role: &str) -> Vec<StatefulSet> {
        let mut found = of_role(&self.statefulsets, namespace, role);
        found.sort_by_key(ResourceExt::name_any);
        found
    }

    /// The Service `name` in `namespace`, as the store has it (`None`: not
    /// there, as far as the store knows).
    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<Service> {
        named(&self.services, namespace, name)
    }

    /// The Role `name` in `namespace`, as the store has it (it may lag
    /// behind this operator's own writes).
    pub(crate) fn role(&self, namespace: &str, name: &str) -> Option<Role> {
        named(&self.roles, namespace, name)
    }

    /// The Clusters of `namespace`.
    pub fn clusters(&self, namespace: &str) -> Vec<Cluster> {
        self.clusters
            .state()
            .into_iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace))
            .map(|c| c.as_ref().clone())
            .collect()
    }

    /// The pods of Role `role` in `namespace`; those this operator deleted
    /// and the store still shows alive read as terminating.
    pub fn role_pods(&self, namespace: &str, role: &str) -> Vec<Pod> {
        self.pods_labelled(namespace, labels::ROLE, role)
    }

    /// The pods of Cluster `cluster` in `namespace`, read like
    /// [`Self::role_pods`].
    pub fn cluster_pods(&self, namespace: &str, cluster: &str) -> Vec<Pod> {
        self.pods_labelled(namespace, labels::CLUSTER, cluster)
    }

    /// The pods of `namespace` whose label `key` is `value`; those this
    /// operator deleted and the store still shows alive read as terminating.
    fn pods_labelled(&self, namespace: &str, key: &str, value: &str) -> Vec<Pod> {
        let all = self.pods.state();
        let mut deleted = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        // Forget what the store caught up with: the pod is terminating or
        // gone.
        deleted.retain(|uid, since| {
            since.elapsed() < EXPECTATION_TTL
                && all.iter().any(|p| {
                    p.uid().as_deref() == Some(uid.as_str())
                        && p.metadata.deletion_timestamp.is_none()
                })
        });
        let now = Time(Timestamp::now());
        all.iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(namespace)
                    && p.labels().get(key).map(String::as_str) == Some(value)
            })
            .map(|p| {
                let mut pod = p.as_ref().clone();
                if pod.uid().is_some_and(|uid| deleted.contains_key(&uid)) {
                    pod.metadata.deletion_timestamp = Some(now.clone());
                }
                pod
            })
            .collect()
    }

    /// The pod `name` in `namespace`, as the store has it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        named(&self.pods, namespace, name)
    }

    /// Remembers that this operator deleted the pod with `uid`.
    pub fn expect_deleted(&self, uid: &str) {
        self.deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.to_string(), Instant::now());
    }
}

/// The objects of `store` in `namespace` labelled for Role `role`.
fn of_role<K>(store: &Store<K>, namespace: &str, role: &str) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    store
        .state()
        .iter()
        .filter(|o| {
            o.namespace().as_deref() == Some(namespace)
                && o.labels().get(labels::ROLE).map(String::as_str) == Some(role)
        })
        .map(|o| o.as_ref().clone())
        .collect()
}

/// The object `name` in `namespace`, looked up by key.
fn named<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
where
    K: kube::Resource<DynamicType = ()> + Clone,
{
    store
        .get(&ObjectRef::new(name).within(namespace))
        .map(|o| o.as_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    fn pod(name: &str, uid: &str, terminating: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                labels: Some([(labels::ROLE.to_string(), "storage".to_string())].into()),
                deletion_timestamp: terminating.then(|| Time(Timestamp::now())),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn a_deleted_pod_reads_as_terminating_until_the_store_shows_it() {
        let (cache, mut writers) = Cache::new();
        writers.pods.apply_watcher_event(&Event::Init);
        writers
            .pods
            .apply_watcher_event(&Event::InitApply(pod("storage-0-h-0", "u0", false)));
        writers
            .pods
            .apply_watcher_event(&Event::InitApply(pod("storage-0-h-1", "u1", false)));
        assert!(!cache.ready(), "no listing yet");
        writers.pods.apply_watcher_event(&Event::InitDone);
        writers.clusters.apply_watcher_event(&Event::Init);
        writers.clusters.apply_watcher_event(&Event::InitDone);
        writers.statefulsets.apply_watcher_event(&Event::Init);
        writers.statefulsets.apply_watcher_event(&Event::InitDone);
        writers.services.apply_watcher_event(&Event::Init);
        writers.services.apply_watcher_event(&Event::InitDone);
        assert!(!cache.ready(), "no budget listing yet");
        writers.budgets.apply_watcher_event(&Event::Init);
        writers.budgets.apply_watcher_event(&Event::InitDone);
        assert!(!cache.ready(), "no Role listing yet");
        writers.roles.apply_watcher_event(&Event::Init);
        writers.roles.apply_watcher_event(&Event::InitDone);
        assert!(cache.ready());

        cache.expect_deleted("u0");
        let pods = cache.role_pods("ns", "storage");
        assert_eq!(pods.len(), 2);
        let terminating = |pods: &[Pod], name: &str| {
            pods.iter()
                .find(|p| p.name_any() == name)
                .is_some_and(|p| p.metadata.deletion_timestamp.is_some())
        };
        assert!(
            terminating(&pods, "storage-0-h-0"),
            "the store lags: still going"
        );
        assert!(!terminating(&pods, "storage-0-h-1"));

        // The watch delivers the deletion: the expectation is met and
        // forgotten, and a pod recreated under the same name is not marked.
        writers
            .pods
            .apply_watcher_event(&Event::Apply(pod("storage-0-h-0", "u0", true)));
        assert!(terminating(
            &cache.role_pods("ns", "storage"),
            "storage-0-h-0"
        ));
        writers
            .pods
            .apply_watcher_event(&Event::Apply(pod("storage-0-h-0", "u2", false)));
        assert!(!terminating(
            &cache.role_pods("ns", "storage"),
            "storage-0-h-0"
        ));
        assert!(cache.role_pods("other", "storage").is_empty());
        // By key: its name in its namespace, nowhere else.
        assert!(cache.pod("ns", "storage-0-h-1").is_some());
        assert!(cache.pod("other", "storage-0-h-1").is_none());
    }
}
