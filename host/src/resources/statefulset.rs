//! A replica set's StatefulSet: the Role's pod template with the labels,
//! environment and volumes Cartridge needs, updated only by the operator
//! (`OnDelete`), pods started in parallel.

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::ResourceExt;

use super::labels;
use crate::api::role::ReplicasetTemplate;
use crate::topology::identity::INSTANCE_PORT;

/// What a replica set's StatefulSet is made from.
#[derive(Debug, Clone)]
pub(crate) struct ReplicasetObjects<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The Cluster's name.
    pub cluster: &'a str,
    /// The Role's name.
    pub role: &'a str,
    /// The StatefulSet's name, `<role>-<ordinal>-<hash>`.
    pub name: &'a str,
    /// The Role's headless Service.
    pub service: &'a str,
    /// The Role's replica set template.
    pub template: &'a ReplicasetTemplate,
    /// The Cluster's vshard bucket count, passed to instances.
    pub bucket_count: Option<i32>,
    /// The Role, as the owner.
    pub owner: OwnerReference,
}

/// Environment every instance gets, before the template's own (so the
/// template can refer to them and override them).
fn instance_env(obj: &ReplicasetObjects<'_>) -> Vec<EnvVar> {
    let field = |path: &str| {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        })
    };
    let value = |name: &str, value: String| EnvVar {
        name: name.into(),
        value: Some(value),
        value_from: None,
    };
    let mut env = vec![
        EnvVar {
            name: "POD_NAME".into(),
            value: None,
            value_from: field("metadata.name"),
        },
        value("TARANTOOL_INSTANCE_NAME", "$(POD_NAME)".into()),
        value(
            "TARANTOOL_ADVERTISE_URI",
            format!(
                "$(POD_NAME).{}.{}.svc.cluster.local:{INSTANCE_PORT}",
                obj.service, obj.namespace
            ),
        ),
        value("TARANTOOL_REPLICASET_NAME", obj.name.into()),
    ];
    if let Some(count) = obj.bucket_count {
        env.push(value("TARANTOOL_BUCKET_COUNT", count.to_string()));
    }
    env
}

/// The revision of the pod template `sts` carries (see
/// [`labels::TEMPLATE_REVISION`]).
pub(crate) fn template_revision(sts: &StatefulSet) -> Option<&str> {
    sts.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(labels::TEMPLATE_REVISION)
        .map(String::as_str)
}

/// The revision of the template `pod` was made from.
pub(crate) fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.annotations()
        .get(labels::TEMPLATE_REVISION)
        .map(String::as_str)
}

/// The StatefulSet of one replica set.
pub(crate) fn build(obj: &ReplicasetObjects<'_>) -> StatefulSet {
    let labels = labels::replicaset_labels(obj.cluster, obj.role, obj.name);
    let mut pod: PodTemplateSpec = obj.template.pod_template.clone();
    let meta = pod.metadata.get_or_insert_with(ObjectMeta::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .extend(labels.clone());
    if let Some(spec) = pod.spec.as_mut()
        && let Some(first) = spec.containers.first_mut()
    {
        let own = first.env.take().unwrap_or_default();
        let mut env = instance_env(obj);
        env.retain(|e| !own.iter().any(|o| o.name == e.name));
        env.extend(own);
        first.env = Some(env);
    }
    let revision = super::apply::desired_hash(&pod);
    pod.metadata
        .get_or_insert_with(ObjectMeta::default)
        .annotations
        .get_or_insert_with(Default::default)
        .insert(labels::TEMPLATE_REVISION.to_string(), revision);
    let claims = obj
        .template
        .volume_claim_templates
        .iter()
        .cloned()
        .map(|mut claim| {
            claim
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .extend(labels::role_labels(obj.cluster, obj.role));
            claim.status = None;
            claim
        })
        .collect::<Vec<_>>();
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(obj.name.into()),
            namespace: Some(obj.namespace.into()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![obj.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(obj.template.replicas),
            selector: LabelSelector {
                match_labels: Some(labels),
                match_expressions: None,
            },
            service_name: Some(obj.service.into()),
            // Instances join the topology on their own schedule; there is no
            // reason to start them one by one.
            pod_management_policy: Some("Parallel".into()),
            // The operator decides which pod goes next, through the strategy.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            template: pod,
            volume_claim_templates: (!claims.is_empty()).then_some(claims),
            // Volumes are deleted by the operator, never by Kubernetes: a
            // claim goes only after Cartridge confirmed its instance
            // expelled (and drained), and the ordinal comes back only after
            // its claim is gone, so a pod never starts on an expelled
            // instance's data. A `kubectl scale` of this StatefulSet loses
            // nothing: the operator puts the size back.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some("Retain".into()),
                    when_deleted: Some("Retain".into()),
                },
            ),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template() -> ReplicasetTemplate {
        ReplicasetTemplate {
            replicas: 2,
            pod_template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "cartridge".into(),
                        image: Some("tarantool/kv:1".into()),
                        env: Some(vec![EnvVar {
                            name: "TARANTOOL_INSTANCE_NAME".into(),
                            value: Some("mine".into()),
                            value_from: None,
                        }]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: vec![],
        }
    }

    #[test]
    fn statefulset_is_on_delete_labelled_owned_and_keeps_user_env() {
        let template = template();
        let sts = build(&ReplicasetObjects {
            namespace: "ns",
            cluster: "c",
            role: "router",
            name: "router-0-b",
            service: "router",
            template: &template,
            bucket_count: Some(300),
            owner: OwnerReference {
                name: "router".into(),
                ..OwnerReference::default()
            },
        });
        let spec = &sts.spec;
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            spec.update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref()),
            Some("OnDelete")
        );
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref());
        assert_eq!(
            pod_labels
                .and_then(|l| l.get(labels::REPLICASET))
                .map(String::as_str),
            Some("router-0-b")
        );
        let env = spec.template.spec.as_ref().expect("pod spec").containers[0]
            .env
            .clone()
            .unwrap_or_default();
        let get = |n: &str| {
            env.iter()
                .find(|e| e.name == n)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(get("TARANTOOL_INSTANCE_NAME").as_deref(), Some("mine"));
        assert_eq!(
            get("TARANTOOL_ADVERTISE_URI").as_deref(),
            Some("$(POD_NAME).router.ns.svc.cluster.local:3301")
        );
        assert_eq!(get("TARANTOOL_BUCKET_COUNT").as_deref(), Some("300"));
        // POD_NAME comes first so that $(POD_NAME) expands.
        assert_eq!(env[0].name, "POD_NAME");
    }
}
