//! Server-side apply of owned objects, skipped when nothing changed.
//!
//! A no-op server-side apply is still a write request (and a watch event for
//! every watcher), so a converged cluster would never be quiet. Each applied
//! object carries the hash of what was applied ([`labels::APPLIED_HASH`]);
//! when the desired object hashes the same, no request is made. Someone
//! else's edit of a field we own is corrected at the next change or resync
//! of the owner, not on every pass.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::labels;

/// The field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "tarantool-operator";

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The object was already as desired; no request made.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The object existed and was patched.
    Updated,
}

/// The hash [`apply`] records for a desired object.
pub fn desired_hash<K: Serialize>(desired: &K) -> String {
    let json = serde_json::to_vec(desired).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..12])
}

/// Applies `desired` (server-side, forced, as [`FIELD_MANAGER`]) unless
/// `existing` already carries its hash; returns the object as applied when
/// a request was made.
pub async fn apply<K>(
    client: &Client,
    mut desired: K,
    existing: Option<&K>,
) -> Result<(Applied, Option<K>), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Serialize + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let hash = desired_hash(&desired);
    if existing.is_some_and(|e| e.annotations().get(labels::APPLIED_HASH) == Some(&hash)) {
        return Ok((Applied::Unchanged, None));
    }
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
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await?;
    let verb = if existing.is_some() {
        Applied::Updated
    } else {
        Applied::Created
    };
    Ok((verb, Some(applied)))
}
