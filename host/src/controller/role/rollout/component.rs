//! The Role's strategy: a built-in, or a component from a ConfigMap in the
//! Role's namespace, loaded through the registry (validated, pinned by
//! sha256 when the spec says so, compiled once per digest).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};

use crate::api::role::Role;
use crate::controller::error::StrategyError;
use crate::controller::{Context, Error};
use crate::resources::labels;
use crate::strategy::registry::SourceError;
use crate::strategy::{ComponentLocation, ComponentSource, WasmStrategy};

/// Bytes already fetched, handed to the registry.
struct Fetched(Option<Vec<u8>>);

impl ComponentSource for Fetched {
    fn fetch(&self, location: &ComponentLocation) -> Result<Vec<u8>, SourceError> {
        self.0.clone().ok_or_else(|| SourceError {
            location: location.clone(),
            reason: "nothing was fetched".into(),
        })
    }
}

/// Reads the component bytes a ConfigMap key holds.
async fn fetch(ctx: &Context, namespace: &str, name: &str, key: &str) -> Result<Vec<u8>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(config_map) = api.get_opt(name).await? else {
        return Err(StrategyError::ConfigMapMissing {
            namespace: namespace.into(),
            name: name.into(),
        }
        .into());
    };
    if !config_map.labels().contains_key(labels::STRATEGY) {
        return Err(StrategyError::ConfigMapNotLabelled {
            namespace: namespace.into(),
            name: name.into(),
        }
        .into());
    }
    if let Some(bytes) = config_map.binary_data.as_ref().and_then(|d| d.get(key)) {
        return Ok(bytes.0.clone());
    }
    let keys: Vec<String> = config_map
        .binary_data
        .iter()
        .flat_map(|d| d.keys())
        .chain(config_map.data.iter().flat_map(|d| d.keys()))
        .cloned()
        .collect();
    let hint = if config_map
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(key))
    {
        " (it is under data; a component is binary and belongs under binaryData: kubectl create configmap NAME --from-file=strategy.wasm)"
    } else {
        ""
    };
    Err(StrategyError::KeyMissing {
        namespace: namespace.into(),
        name: name.into(),
        key: key.into(),
        keys,
        hint,
    }
    .into())
}

/// Resolves the Role's strategy. Loading validates and compiles, which
/// takes a while the first time for each digest: it runs off the async
/// runtime, on a blocking thread that hands the compile to the engine's
/// bounded pool (cranelift's deep stack is the pool's) and waits.
pub(crate) async fn resolve(
    ctx: &Context,
    role: &Role,
    namespace: &str,
) -> Result<Arc<WasmStrategy>, Error> {
    let selector = role.spec.update_strategy.selector(namespace);
    // Refused before the ConfigMap is even read.
    ctx.strategies
        .check_pinned(&selector)
        .map_err(StrategyError::from)?;
    let bytes = match &selector.location {
        Some(ComponentLocation::ConfigMap { name, key, .. }) => {
            Some(fetch(ctx, namespace, name, key).await?)
        }
        _ => None,
    };
    let registry = ctx.strategies.clone();
    let resolved =
        tokio::task::spawn_blocking(move || registry.resolve(&selector, &Fetched(bytes)))
            .await
            .map_err(StrategyError::LoadLost)?;
    Ok(resolved.map_err(StrategyError::from)?)
}
