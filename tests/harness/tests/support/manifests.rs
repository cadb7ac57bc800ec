//! The repository's example manifests, parsed and created in a test's
//! namespace.

use std::path::PathBuf;

use kube::Resource;
use kube::api::PostParams;
use serde::de::DeserializeOwned;
use test_harness::TestContext;

/// A manifest of the repository, parsed.
pub fn manifest<K: DeserializeOwned>(rel: &str) -> K {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Creates a manifest of the repository in the test's namespace.
pub async fn create<K>(t: &TestContext, rel: &str) -> Result<K, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = manifest(rel);
    t.api::<K>().create(&PostParams::default(), &object).await
}
