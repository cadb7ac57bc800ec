//! Fixtures for unit tests of the controllers: pods, Roles from the
//! article's manifests, and a context whose Kubernetes client refuses every
//! request (steps under test talk to the fake topology; their Events are
//! logged and dropped).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::runtime::events::Reporter;

use super::metrics::Metrics;
use super::{Context, Settings};
use crate::api::cluster::Cluster;
use crate::api::role::Role;
use crate::resources::labels;
use crate::strategy::{Registry, SandboxLimits, StrategyEngine};
use crate::topology::fake::FakeConnector;

/// The article's manifests.
pub(crate) const CLUSTER: &str = include_str!("../../../examples/article/cluster.yaml");
/// The article's router Role.
pub(crate) const ROUTER: &str = include_str!("../../../examples/article/router.yaml");
/// The article's storage Role.
pub(crate) const STORAGE: &str = include_str!("../../../examples/article/storage.yaml");

/// A Role from YAML, placed in namespace `ns`.
pub(crate) fn role(yaml: &str) -> Role {
    let mut role: Role = serde_yaml::from_str(yaml).expect("role manifest");
    role.metadata.namespace = Some("ns".into());
    role.metadata.uid = Some(format!(
        "uid-{}",
        role.metadata.name.clone().unwrap_or_default()
    ));
    role
}

/// The article's Cluster in namespace `ns`.
pub(crate) fn cluster() -> Cluster {
    let mut cluster: Cluster = serde_yaml::from_str(CLUSTER).expect("cluster manifest");
    cluster.metadata.namespace = Some("ns".into());
    cluster.metadata.uid = Some("uid-cluster".into());
    cluster.metadata.generation = Some(1);
    cluster
}

/// Every pod a Role's StatefulSets make, ready or not.
pub(crate) fn pods(role: &Role, ready: bool) -> Vec<Pod> {
    let replicas = role.spec.replicaset_template().map_or(0, |t| t.replicas);
    let role_name = role.metadata.name.clone().unwrap_or_default();
    super::members::statefulset_names(role)
        .into_iter()
        .flat_map(|sts| (0..replicas).map(move |i| (sts.clone(), i)))
        .map(|(sts, i)| pod(&format!("{sts}-{i}"), &role_name, &sts, ready))
        .collect()
}

/// The StatefulSets a Role's spec names, as the API server would hold
/// them (name, UID as the pods' owner references give it, size).
pub(crate) fn statefulsets(role: &Role) -> Vec<k8s_openapi::api::apps::v1::StatefulSet> {
    let replicas = role.spec.replicaset_template().map_or(0, |t| t.replicas);
    super::members::statefulset_names(role)
        .into_iter()
        .map(|name| k8s_openapi::api::apps::v1::StatefulSet {
            metadata: ObjectMeta {
                uid: Some(format!("uid-{name}")),
                name: Some(name),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            spec: k8s_openapi::api::apps::v1::StatefulSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
            status: None,
        })
        .collect()
}

/// One pod of `role`'s StatefulSet `sts`.
pub(crate) fn pod(name: &str, role: &str, sts: &str, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some(labels::replicaset_labels("tarantool-cluster", role, sts)),
            owner_references: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "StatefulSet".into(),
                    name: sts.into(),
                    uid: format!("uid-{sts}"),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                },
            ]),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

/// One strategy registry for every unit test: compiling the built-ins is
/// the slow part.
pub(crate) fn registry() -> Arc<Registry> {
    static REGISTRY: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("wasm engine");
            Arc::new(Registry::new(Arc::new(engine)))
        })
        .clone()
}

/// A context over `connector` whose Kubernetes client fails every request.
pub(crate) fn context(connector: FakeConnector) -> Context {
    let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
            "no Kubernetes in unit tests",
        ))
    });
    let client = Client::new(service, "ns");
    Context::new(
        client,
        Arc::new(connector),
        Arc::new(Metrics::unregistered()),
        Settings::default(),
        registry(),
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    )
}
