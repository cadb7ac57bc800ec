//! The replica sets a Role's Kubernetes objects describe, as the topology
//! should have them: deterministic UUIDs, advertise URIs, the Role's
//! Cartridge settings, and the instances whose pods are all ready.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::api::role::Role;
use crate::resources::epochs::Epochs;
use crate::resources::{labels, names};
use crate::topology::JoinServer;
use crate::topology::identity;
use crate::topology::membership::DesiredReplicaset;

/// Whether a pod is ready and not on its way out.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(crate) use crate::api::names::statefulset_names;

/// The replica sets of `role` in `cluster`. A replica set lists its
/// instances only once every one of its pods is ready, so that it joins
/// with all of them in one call. `statefulsets` gives the instance epochs;
/// a StatefulSet missing from it has every ordinal at epoch 0 (true before
/// the bootstrap: epochs move only when an instance is expelled).
pub(crate) fn desired_replicasets(
    namespace: &str,
    cluster: &str,
    role: &Role,
    pods: &[Pod],
    statefulsets: &[StatefulSet],
) -> Vec<DesiredReplicaset> {
    let role_name = role.name_any();
    let replicas = role
        .spec
        .replicaset_template()
        .map_or(0, |t| u32::try_from(t.replicas).unwrap_or(0));
    let vshard = role.spec.vshard.clone().unwrap_or_default();
    let service = names::headless_service_name(&role_name);
    statefulset_names(role)
        .into_iter()
        .map(|sts| {
            let pod_names: Vec<String> = (0..replicas).map(|i| names::pod_name(&sts, i)).collect();
            let all_ready = pod_names.iter().all(|name| {
                pods.iter()
                    .any(|p| p.metadata.name.as_deref() == Some(name.as_str()) && is_ready(p))
            });
            // The StatefulSet's UID, from its pods' owner reference.
            let generation = pods
                .iter()
                .filter(|p| p.labels().get(labels::REPLICASET) == Some(&sts))
                .flat_map(|p| p.owner_references())
                .find(|o| o.controller == Some(true) && o.kind == "StatefulSet" && o.name == sts)
                .map(|o| o.uid.clone())
                .unwrap_or_default();
            let epochs = statefulsets
                .iter()
                .find(|s| s.name_any() == sts)
                .map(Epochs::of)
                .unwrap_or_default();
            let servers = if all_ready && !generation.is_empty() {
                pod_names
                    .iter()
                    .zip(0..)
                    .map(|(pod, ordinal)| JoinServer {
                        uri: identity::advertise_uri(pod, &service, namespace),
                        uuid: identity::instance_uuid(
                            namespace,
                            cluster,
                            pod,
                            &generation,
                            epochs.get(ordinal),
                        ),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            DesiredReplicaset {
                uuid: identity::replicaset_uuid(namespace, cluster, &sts, &generation),
                alias: sts,
                roles: vshard.cluster_roles.clone(),
                weight: vshard.weight,
                all_rw: vshard.all_rw,
                vshard_group: vshard.vshard_group.clone(),
                servers,
            }
        })
        .collect()
}
