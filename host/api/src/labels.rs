//! Labels on every object the operator owns: how it finds them again, and
//! how users select them with kubectl.

use std::collections::BTreeMap;

/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY`].
pub const MANAGER: &str = "tarantool-operator";
/// `app.kubernetes.io/name`.
pub(crate) const APP_NAME: &str = "app.kubernetes.io/name";
/// The Cluster an object belongs to.
pub const CLUSTER: &str = "tarantool.io/cluster";
/// The Role an object belongs to.
pub const ROLE: &str = "tarantool.io/role";
/// The replica set (StatefulSet name) a pod belongs to.
pub const REPLICASET: &str = "tarantool.io/replicaset";
/// On a ConfigMap: it holds a custom update strategy (any value; `true` by
/// convention). The operator watches only ConfigMaps with this label, and
/// loads a component only from one that carries it: the ConfigMap's author
/// says it is meant to be run.
pub const STRATEGY: &str = "tarantool.io/strategy";
/// On a Role: `true` starts a rollout pending outside the Role's
/// maintenance windows now. The operator removes it once it started that
/// rollout (a later rollout waits for its window again); set while no
/// rollout is pending, it is left alone and counts for the next one.
pub const ROLLOUT_NOW: &str = "tarantool.io/rollout-now";
/// Hash of what the operator last applied to an object; equal means the
/// object needs no write.
pub const APPLIED_HASH: &str = "tarantool.io/applied-hash";
/// On a StatefulSet's pod template, and so on its pods: the hash of the
/// template as the operator built it. A pod whose value differs from its
/// StatefulSet's is outdated; the operator knows that as soon as it applied
/// the template, without waiting for the StatefulSet controller's revision.
pub const TEMPLATE_REVISION: &str = "tarantool.io/template-revision";

/// Labels of every object of a Role.
pub fn role_labels(cluster: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (APP_NAME.to_string(), "tarantool".to_string()),
        (CLUSTER.to_string(), cluster.to_string()),
        (ROLE.to_string(), role.to_string()),
    ])
}

/// Labels of a replica set's StatefulSet and pods.
pub fn replicaset_labels(cluster: &str, role: &str, statefulset: &str) -> BTreeMap<String, String> {
    let mut labels = role_labels(cluster, role);
    labels.insert(REPLICASET.to_string(), statefulset.to_string());
    labels
}

/// Labels of a Cluster's own objects.
pub fn cluster_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (APP_NAME.to_string(), "tarantool".to_string()),
        (CLUSTER.to_string(), cluster.to_string()),
    ])
}

/// Label selector of the pods and StatefulSets of a Role.
pub fn role_selector(role: &str) -> String {
    format!("{MANAGED_BY}={MANAGER},{ROLE}={role}")
}

/// Label selector of every pod of a Cluster.
pub fn cluster_selector(cluster: &str) -> String {
    format!("{MANAGED_BY}={MANAGER},{CLUSTER}={cluster}")
}
