//! Names of the objects of a Role, and the hash in them.
//!
//! A replica set's StatefulSet is `<role>-<ordinal>-<hash>`, its pods
//! `<role>-<ordinal>-<hash>-<n>`. `<hash>` covers only what a StatefulSet
//! cannot change in place (its volume claim templates), so an image change
//! keeps every name and rolls through the update strategy, while a new
//! volume template makes a new generation of StatefulSets to migrate to.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde_json::Value;

/// The StatefulSet names Role `role` wants, ordinal order (none without a
/// replica set template).
pub fn statefulset_names(role: &crate::role::Role) -> Vec<String> {
    let Some(template) = role.spec.replicaset_template() else {
        return Vec::new();
    };
    let hash = template_hash(&template.volume_claim_templates);
    let name = role.metadata.name.as_deref().unwrap_or_default();
    (0..role.spec.replicaset_count())
        .map(|n| statefulset_name(name, n, &hash))
        .collect()
}

/// Kubernetes' alphabet for hashes in names (`rand.SafeEncodeString`): no
/// vowels, no look-alike digits, so a hash never spells a word.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Fields of a claim template that say nothing about the volume.
const VOLATILE_METADATA: &[&str] = &[
    "creationTimestamp",
    "generation",
    "managedFields",
    "resourceVersion",
    "selfLink",
    "uid",
];

/// The hash of a replica set template's volume claim templates, encoded as
/// Kubernetes encodes pod-template-hash: FNV-32a of the JSON, printed in
/// decimal, each digit mapped through [`SAFE_ALPHABET`].
pub fn template_hash(claims: &[PersistentVolumeClaim]) -> String {
    let canonical: Vec<Value> = claims.iter().map(canonical_claim).collect();
    // serde_json::Value keeps object keys sorted, so the JSON is canonical.
    let json = Value::Array(canonical).to_string();
    safe_encode(&fnv1a32(json.as_bytes()).to_string())
}

/// FNV-1a, 32 bits (Go's `hash/fnv` New32a, which Kubernetes uses).
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// Encodes a string through [`SAFE_ALPHABET`] (byte value modulo its length).
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

fn canonical_claim(claim: &PersistentVolumeClaim) -> Value {
    let mut value = serde_json::to_value(claim).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for field in VOLATILE_METADATA {
                meta.remove(*field);
            }
        }
    }
    value
}

/// The StatefulSet of replica set `ordinal` of `role`.
pub fn statefulset_name(role: &str, ordinal: u32, hash: &str) -> String {
    format!("{role}-{ordinal}-{hash}")
}

/// Pod `index` of a StatefulSet.
pub fn pod_name(statefulset: &str, index: u32) -> String {
    format!("{statefulset}-{index}")
}

/// The headless Service of a Role (stable DNS names for advertise URIs).
pub fn headless_service_name(role: &str) -> String {
    role.to_string()
}

/// The client Service of a Cluster.
pub fn cluster_service_name(cluster: &str) -> String {
    cluster.to_string()
}

/// Splits a StatefulSet name of `role` into its ordinal and hash.
pub fn parse_statefulset_name<'a>(role: &str, name: &'a str) -> Option<(u32, &'a str)> {
    let rest = name.strip_prefix(role)?.strip_prefix('-')?;
    let (ordinal, hash) = rest.split_once('-')?;
    if hash.is_empty() || hash.contains('-') {
        return None;
    }
    Some((ordinal.parse().ok()?, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn claim(size: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("www".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some([("storage".to_string(), Quantity(size.into()))].into()),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_matches_the_article() {
        // The article's `router-0-7dfd9f68f` is Kubernetes' encoding of 389859249.
        assert_eq!(safe_encode("389859249"), "7dfd9f68f");
    }

    #[test]
    fn template_hash_is_pinned() {
        // Pinned: a change renames every StatefulSet of every running cluster
        // (a full data migration), so it must never change by accident.
        assert_eq!(template_hash(&[claim("1Gi")]), "55b7f44ddb");
        assert_eq!(template_hash(&[]), "5f8cb5778f");
    }

    #[test]
    fn volatile_fields_do_not_change_the_hash_but_the_volume_does() {
        let mut touched = claim("1Gi");
        touched.metadata.resource_version = Some("42".into());
        touched.metadata.uid = Some("u".into());
        assert_eq!(template_hash(&[touched]), template_hash(&[claim("1Gi")]));
        assert_ne!(
            template_hash(&[claim("2Gi")]),
            template_hash(&[claim("1Gi")])
        );
    }

    #[test]
    fn names_round_trip() {
        let sts = statefulset_name("router", 0, "7dfd9f68f");
        assert_eq!(sts, "router-0-7dfd9f68f");
        assert_eq!(pod_name(&sts, 2), "router-0-7dfd9f68f-2");
        assert_eq!(
            parse_statefulset_name("router", &sts),
            Some((0, "7dfd9f68f"))
        );
        assert_eq!(parse_statefulset_name("router", "router-x-abc"), None);
        assert_eq!(parse_statefulset_name("rout", "router-0-abc"), None);
        assert_eq!(parse_statefulset_name("router", "router-0-abc-0"), None);
    }
}
