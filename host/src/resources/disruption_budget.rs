//! A replica set's PodDisruptionBudget: at most one of its instances
//! voluntarily disrupted at a time (a `kubectl drain`, the cluster
//! autoscaler, a spot reclaim going through the eviction API).
//!
//! The operator's own rolling updates delete pods directly (not through the
//! eviction API), so the budget never holds them back: the host guard keeps
//! its own per-replica-set budget for those.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;

/// Evictions of unready pods are always let through: such a pod serves
/// nothing already, and a drain must not hang on a crash-looping instance.
const UNHEALTHY_POD_EVICTION_POLICY: &str = "AlwaysAllow";

/// The budget of replica set `statefulset` (named like it): its pods, by
/// the operator's replica-set labels, at most one unavailable; owned by the
/// Role, so it goes with the Role.
pub(crate) fn build(
    namespace: &str,
    cluster: &str,
    role: &str,
    statefulset: &str,
    owner: OwnerReference,
) -> PodDisruptionBudget {
    let labels = labels::replicaset_labels(cluster, role, statefulset);
    PodDisruptionBudget {
        metadata: ObjectMeta {
            name: Some(statefulset.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels),
                match_expressions: None,
            }),
            unhealthy_pod_eviction_policy: Some(UNHEALTHY_POD_EVICTION_POLICY.to_string()),
            min_available: None,
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_selects_its_replica_sets_pods_and_allows_one_down() {
        let pdb = build(
            "ns",
            "c",
            "storage",
            "storage-0-x",
            OwnerReference::default(),
        );
        let spec = pdb.spec.clone().unwrap_or_default();
        assert_eq!(pdb.metadata.name.as_deref(), Some("storage-0-x"));
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.and_then(|s| s.match_labels),
            Some(labels::replicaset_labels("c", "storage", "storage-0-x"))
        );
    }
}
