//! `Role.spec.updateStrategy`: which strategy rolls the Role's pods, with
//! what params, from where. The strategy host (`tarantool-operator-strategy`)
//! resolves the [`StrategySelector`] a Role's strategy makes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::DNS_SUBDOMAIN_PATTERN;

/// `OnDelete`: deletes nothing; reports pending pods.
pub const ON_DELETE: &str = "OnDelete";
/// `ClusterPartitionUpdate`: data-less roles, batches across all replica sets.
pub const CLUSTER_PARTITION_UPDATE: &str = "ClusterPartitionUpdate";
/// `SwitchMasterUpdate`: replicas first, switch master, old master last.
pub const SWITCH_MASTER_UPDATE: &str = "SwitchMasterUpdate";
/// The names of the strategies that ship inside the operator.
pub const BUILTIN_NAMES: &[&str] = &[ON_DELETE, CLUSTER_PARTITION_UPDATE, SWITCH_MASTER_UPDATE];

/// The key a custom component is read from when `configMapRef.key` is not set.
pub(crate) const DEFAULT_COMPONENT_KEY: &str = "strategy.wasm";

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
    /// When the operator may start a rollout, in UTC:
    /// `Sat:01:00-Sat:06:00` (weekday and time on both ends) or
    /// `01:00-06:00` (every day). Empty: any time. A rollout pending outside
    /// every window waits (`OutsideMaintenanceWindow`) until the next opens,
    /// or until the Role is annotated `tarantool.io/rollout-now=true`. A
    /// rollout under way when its window closes goes on to the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 16, "items" = {"type": "string", "maxLength": 19, "pattern": crate::maintenance::WINDOW_PATTERN}))]
    pub maintenance_windows: Vec<String>,
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
            maintenance_windows: Vec::new(),
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

    /// The maintenance windows, parsed (admission checked their pattern).
    pub fn windows(
        &self,
    ) -> Result<Vec<crate::maintenance::Window>, crate::maintenance::InvalidWindow> {
        crate::maintenance::parse_all(&self.maintenance_windows)
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

/// Where a custom component lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentLocation {
    /// A key of a ConfigMap's `binaryData`.
    ConfigMap {
        /// Its namespace (the Role's).
        namespace: String,
        /// Its name.
        name: String,
        /// The key holding the `.wasm`.
        key: String,
    },
    /// A local file (CLI use).
    File(PathBuf),
}

impl std::fmt::Display for ComponentLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConfigMap {
                namespace,
                name,
                key,
            } => write!(f, "ConfigMap {namespace}/{name} key {key:?}"),
            Self::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// What a Role's `spec.updateStrategy` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategySelector {
    /// `spec.updateStrategy.name`.
    pub name: String,
    /// Where the component lives; `None` selects a built-in.
    pub location: Option<ComponentLocation>,
    /// `spec.updateStrategy.sha256`: the digest the component must have.
    pub sha256: Option<String>,
}
