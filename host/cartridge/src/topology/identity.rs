//! Deterministic identities: replica set and instance UUIDs (UUIDv5 of
//! stable names) and advertise URIs, so that every topology call can be
//! repeated after a crash and gives the same result.
//!
//! The names include the StatefulSet's UID (its generation): a restarted pod
//! keeps its instance's identity, but a StatefulSet deleted and created
//! again (a replica set scaled away and back) is a new replica set with new
//! instances. Cartridge never lets an expelled UUID join again, so an
//! instance also has an epoch: the number of times its ordinal was scaled
//! away and expelled (see `resources::epochs`).

use uuid::Uuid;

/// The UUIDv5 namespace of this operator's names (a fixed random UUID).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_8b0d_4c1e_9a57_3d2e_b1f0_c8a4);

/// The TCP port Tarantool instances listen on (Cartridge's default).
pub const INSTANCE_PORT: u16 = 3301;

/// UUID of the replica set run by StatefulSet `statefulset` (UID
/// `generation`) of `cluster`.
pub fn replicaset_uuid(
    namespace: &str,
    cluster: &str,
    statefulset: &str,
    generation: &str,
) -> String {
    v5(&["replicaset", namespace, cluster, statefulset, generation])
}

/// UUID of the instance run by pod `pod` of the StatefulSet with UID
/// `generation`, in the `epoch`-th life of its ordinal (0 until it is first
/// scaled away; epoch 0 keeps the UUIDs of clusters made before epochs).
pub fn instance_uuid(
    namespace: &str,
    cluster: &str,
    pod: &str,
    generation: &str,
    epoch: u32,
) -> String {
    if epoch == 0 {
        v5(&["instance", namespace, cluster, pod, generation])
    } else {
        let epoch = epoch.to_string();
        v5(&["instance", namespace, cluster, pod, generation, &epoch])
    }
}

/// The advertise URI of pod `pod` behind the headless Service `service`.
pub fn advertise_uri(pod: &str, service: &str, namespace: &str) -> String {
    format!("{pod}.{service}.{namespace}.svc.cluster.local:{INSTANCE_PORT}")
}

fn v5(parts: &[&str]) -> String {
    // '/' cannot appear in a Kubernetes name, so joining with it is unambiguous.
    Uuid::new_v5(&NAMESPACE, parts.join("/").as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_and_distinct() {
        let a = replicaset_uuid("ns", "c", "storage-0-b", "uid1");
        assert_eq!(a, replicaset_uuid("ns", "c", "storage-0-b", "uid1"));
        assert_ne!(a, replicaset_uuid("ns2", "c", "storage-0-b", "uid1"));
        assert_ne!(
            a,
            replicaset_uuid("ns", "c", "storage-0-b", "uid2"),
            "a new StatefulSet is a new replica set"
        );
        assert_ne!(a, instance_uuid("ns", "c", "storage-0-b", "uid1", 0));
        // Pinned: a change here would give every running cluster new UUIDs.
        assert_eq!(
            instance_uuid("default", "test", "router-0-7dfd9f68f-0", "uid", 0),
            "7a395a42-e633-583a-8a81-d9443e4f2f93"
        );
        let first = instance_uuid("ns", "c", "storage-0-b-2", "uid1", 0);
        let second = instance_uuid("ns", "c", "storage-0-b-2", "uid1", 1);
        assert_ne!(
            first, second,
            "an ordinal scaled away comes back as a new instance"
        );
        assert_ne!(second, instance_uuid("ns", "c", "storage-0-b-2", "uid1", 2));
        assert_eq!(
            Uuid::parse_str(&a).map(|u| u.get_version_num()).ok(),
            Some(5)
        );
    }

    #[test]
    fn advertise_uri_names_the_pod_behind_its_service() {
        assert_eq!(
            advertise_uri("router-0-b-0", "router", "ns"),
            "router-0-b-0.router.ns.svc.cluster.local:3301"
        );
    }
}
