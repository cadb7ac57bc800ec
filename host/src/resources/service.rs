//! The Services of a Cluster: a headless one per Role, which gives every
//! instance the stable DNS name it advertises, and one client Service per
//! Cluster.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use super::names;
use crate::topology::identity::INSTANCE_PORT;

/// Cartridge's HTTP port (web UI, HTTP API).
pub(crate) const HTTP_PORT: u16 = 8081;

fn port(name: &str, number: u16, protocol: &str) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: i32::from(number),
        target_port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.into()),
        ..ServicePort::default()
    }
}

/// The Role's headless Service. Unready instances are published too:
/// Cartridge instances must reach each other before they report ready.
pub(crate) fn headless(
    namespace: &str,
    cluster: &str,
    role: &str,
    owner: OwnerReference,
) -> Service {
    let labels = labels::role_labels(cluster, role);
    Service {
        metadata: ObjectMeta {
            name: Some(names::headless_service_name(role)),
            namespace: Some(namespace.into()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels),
            ports: Some(vec![
                port("iproto", INSTANCE_PORT, "TCP"),
                // Cartridge's membership gossip uses UDP on the same port.
                port("membership", INSTANCE_PORT, "UDP"),
            ]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The Cluster's client Service: every ready instance, iproto, and HTTP
/// only when `http` (see `ClientService`).
pub(crate) fn client(namespace: &str, cluster: &str, http: bool, owner: OwnerReference) -> Service {
    let labels = labels::cluster_labels(cluster);
    Service {
        metadata: ObjectMeta {
            name: Some(names::cluster_service_name(cluster)),
            namespace: Some(namespace.into()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels),
            ports: Some(
                std::iter::once(port("iproto", INSTANCE_PORT, "TCP"))
                    .chain(http.then(|| port("http", HTTP_PORT, "TCP")))
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_service_publishes_http_only_when_asked() {
        for (http, want) in [(false, vec!["iproto"]), (true, vec!["iproto", "http"])] {
            let service = client("ns", "demo", http, OwnerReference::default());
            let ports: Vec<String> = service
                .spec
                .iter()
                .flat_map(|s| s.ports.iter().flatten())
                .filter_map(|p| p.name.clone())
                .collect();
            assert_eq!(ports, want, "http: {http}");
        }
    }
}
