//! `Role.spec.updateStrategy`: which strategy rolls the Role's pods, with
//! what params, from where. Resolved by
//! [`strategy::registry`](crate::strategy::registry).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::DNS_SUBDOMAIN_PATTERN;
use crate::strategy::builtin::SWITCH_MASTER_UPDATE;
use crate::strategy::{ComponentLocation, StrategySelector};

/// The key a custom component is read from when `configMapRef.key` is not set.
pub const DEFAULT_COMPONENT_KEY: &str = "strategy.wasm";

/// How a Role's pods are updated when its pod template changes.
///
/// Default: `SwitchMasterUpdate`, which is master-aware and safe for data
/// and data-less Roles alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::validation::update_strategy_rules)]
pub struct UpdateStrategy {
    /// A built-in (`OnDelete`, `ClusterPartitionUpdate`,
    /// `SwitchMasterUpdate`) or the name a custom component describes itself
    /// with.
    #[schemars(length(min = 1, max = 63), transform = super::validation::strategy_name_rules)]
    pub name: String,
    /// Strategy params, all strings (write `"1"`, not `1`); each strategy
    /// documents its own. `maxUnavailable` is the operator's per-replica-set
    /// budget (default 1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    pub params: BTreeMap<String, String>,
    /// Where a custom component lives: a key of a ConfigMap's `binaryData`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// The sha256 the custom component must have (64 lowercase hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), transform = super::validation::sha256_rules)]
    pub sha256: Option<String>,
    /// Stop deleting pods (a running update resumes when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Update replicas on its own but wait for a human before every master
    /// switch (as CloudNativePG's supervised primary update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<bool>,
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        Self {
            name: SWITCH_MASTER_UPDATE.to_string(),
            params: BTreeMap::new(),
            config_map_ref: None,
            sha256: None,
            paused: None,
            supervised: None,
        }
    }
}

/// A key of a ConfigMap in the Role's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigMapKeyRef {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// The `binaryData` key holding the `.wasm` (default `strategy.wasm`).
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_key() -> String {
    DEFAULT_COMPONENT_KEY.to_string()
}

impl UpdateStrategy {
    /// Whether the update is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.unwrap_or(false)
    }

    /// Whether master switches wait for a human.
    pub fn is_supervised(&self) -> bool {
        self.supervised.unwrap_or(false)
    }

    /// What the registry resolves, for a Role in `namespace`.
    pub fn selector(&self, namespace: &str) -> StrategySelector {
        StrategySelector {
            name: self.name.clone(),
            location: self
                .config_map_ref
                .as_ref()
                .map(|r| ComponentLocation::ConfigMap {
                    namespace: namespace.to_string(),
                    name: r.name.clone(),
                    key: r.key.clone(),
                }),
            sha256: self.sha256.clone(),
        }
    }
}
