//! Server-side apply of owned objects, skipped when nothing changed.
//!
//! A no-op server-side apply is still a write request (and a watch event for
//! every watcher), so a converged cluster would never be quiet. Each applied
//! object carries the hash of what was applied ([`labels::APPLIED_HASH`]);
//! when the desired object hashes the same, no request is made. Someone
//! else's edit of a value we set is caught by comparing the live spec
//! ([`unless_drifted`]: Services, PodDisruptionBudgets; StatefulSets by
//! their size and generation, see `role::statefulsets::drift`) and put back by the
//! owner's next pass, once per edit.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::labels;

/// The field manager of every write the operator makes.
pub(crate) const FIELD_MANAGER: &str = "tarantool-operator";

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The object was already as desired; no request made.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The object existed and was patched.
    Updated,
}

/// The hash [`apply`] records for a desired object.
pub(crate) fn desired_hash<K: Serialize>(desired: &K) -> String {
    let json = serde_json::to_vec(desired).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..12])
}

/// Whether `live`'s spec no longer holds every value `desired`'s spec sets:
/// another field manager changed a field the operator owns (the applied
/// hash annotation, which only says what the operator last sent, cannot
/// show that). Fields the apiserver or others added are no drift, and
/// neither are list items others added: only a value the operator sets
/// that is missing or different counts, so that a forced apply, which puts
/// those back and leaves the rest alone, ends the drift instead of being
/// repeated on every pass.
pub(crate) fn spec_drifted<K: Serialize>(desired: &K, live: &K) -> bool {
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(desired), Ok(live)) => !holds(
            desired.get("spec").unwrap_or(&serde_json::Value::Null),
            live.get("spec").unwrap_or(&serde_json::Value::Null),
        ),
        // Cannot compare: trust the hash, as before.
        _ => false,
    }
}

/// Whether `have` holds every value of `want`: objects key by key, lists
/// item by item (each wanted item held by some item), the rest equal.
fn holds(want: &serde_json::Value, have: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (want, have) {
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(k, w)| holds(w, have.get(k).unwrap_or(&Value::Null))),
        (Value::Array(want), Value::Array(have)) => {
            want.iter().all(|w| have.iter().any(|h| holds(w, h)))
        }
        (want, have) => want == have,
    }
}

/// `existing`, unless its spec drifted from `desired`'s ([`spec_drifted`]):
/// what [`apply`] should compare with, so that a drifted object is applied
/// again although its hash says it is as applied.
pub(crate) fn unless_drifted<'a, K: Serialize>(
    desired: &K,
    existing: Option<&'a K>,
) -> Option<&'a K> {
    existing.filter(|live| !spec_drifted(desired, *live))
}

/// Whether `existing` carries the hash of `desired`: applying it again
/// would change nothing the operator sets.
pub(crate) fn is_applied<K: Resource + Serialize>(desired: &K, existing: Option<&K>) -> bool {
    carries(existing, &desired_hash(desired))
}

/// Whether `existing` carries `hash` as the applied one.
fn carries<K: Resource>(existing: Option<&K>, hash: &str) -> bool {
    existing.is_some_and(|e| {
        e.annotations()
            .get(labels::APPLIED_HASH)
            .is_some_and(|h| h == hash)
    })
}

/// Applies `desired` (server-side, forced, as [`FIELD_MANAGER`]) unless
/// `existing` already carries its hash; returns the object as applied when
/// a request was made.
pub(crate) async fn apply<K>(
    client: &Client,
    desired: K,
    existing: Option<&K>,
) -> Result<(Applied, Option<K>), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    // Hashed once: the check and the annotation sent.
    let hash = desired_hash(&desired);
    if carries(existing, &hash) {
        return Ok((Applied::Unchanged, None));
    }
    let applied = send_hashed(client, desired, hash).await?;
    let verb = if existing.is_some() {
        Applied::Updated
    } else {
        Applied::Created
    };
    Ok((verb, Some(applied)))
}

/// Applies `desired` (server-side, forced, as [`FIELD_MANAGER`]) with its
/// hash recorded, whatever the live object holds: for a caller that has
/// decided the apply already.
pub(crate) async fn send<K>(client: &Client, desired: K) -> Result<K, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let hash = desired_hash(&desired);
    send_hashed(client, desired, hash).await
}

/// [`send`] with `hash` (`desired`'s [`desired_hash`]) already computed.
async fn send_hashed<K>(client: &Client, mut desired: K, hash: String) -> Result<K, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    desired
        .annotations_mut()
        .insert(labels::APPLIED_HASH.to_string(), hash);
    let namespace = desired.namespace().unwrap_or_default();
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let mut object = serde_json::to_value(&desired).unwrap_or_default();
    // Server-side apply wants apiVersion and kind in the body.
    if let Some(map) = object.as_object_mut() {
        let dt = K::DynamicType::default();
        map.insert("apiVersion".into(), K::api_version(&dt).into());
        map.insert("kind".into(), K::kind(&dt).into());
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use super::*;

    fn pdb(max_unavailable: i32) -> PodDisruptionBudget {
        PodDisruptionBudget {
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(max_unavailable)),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    #[test]
    fn only_a_changed_or_missing_value_of_ours_is_drift() {
        let ports = |extra: serde_json::Value| {
            let mut ports = vec![
                json!({"name": "iproto", "port": 3301, "protocol": "TCP"}),
                json!({"name": "http", "port": 8081, "protocol": "TCP"}),
            ];
            if !extra.is_null() {
                ports.push(extra);
            }
            json!({"spec": {"selector": {"app": "a"}, "ports": ports}})
        };
        let desired = ports(serde_json::Value::Null);
        let cases = [
            ("as applied", desired.clone(), false),
            (
                "defaults added by the apiserver",
                json!({"spec": {"selector": {"app": "a"}, "type": "ClusterIP", "clusterIP": "10.0.0.7", "ports": [
                    {"name": "http", "port": 8081, "protocol": "TCP", "targetPort": 8081},
                    {"name": "iproto", "port": 3301, "protocol": "TCP", "targetPort": 3301}]}}),
                false,
            ),
            (
                "a port someone else added",
                ports(json!({"name": "extra", "port": 9, "protocol": "TCP"})),
                false,
            ),
            (
                "one of our ports changed",
                json!({"spec": {"selector": {"app": "a"}, "ports": [
                    {"name": "iproto", "port": 3302, "protocol": "TCP"},
                    {"name": "http", "port": 8081, "protocol": "TCP"}]}}),
                true,
            ),
            (
                "our selector changed",
                json!({"spec": {"selector": {"app": "b"}, "ports": desired["spec"]["ports"]}}),
                true,
            ),
            (
                "a selector label removed",
                json!({"spec": {"selector": {}, "ports": desired["spec"]["ports"]}}),
                true,
            ),
            ("no spec at all", json!({}), true),
        ];
        for (name, live, want) in cases {
            assert_eq!(spec_drifted(&desired, &live), want, "{name}");
        }
    }

    #[test]
    fn a_budget_loosened_by_someone_else_is_applied_again() {
        let desired = pdb(1);
        let loosened = pdb(2);
        let same = pdb(1);
        assert!(unless_drifted(&desired, Some(&loosened)).is_none());
        assert!(unless_drifted(&desired, Some(&same)).is_some());
        assert!(unless_drifted(&desired, None::<&PodDisruptionBudget>).is_none());
    }
}
