//! `Cluster.spec.failover`: Cartridge's failover settings
//! (`failover_set_params`), checked at admission by
//! CEL rules (`validation::FAILOVER_RULES`, in the generated CRD).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How Cartridge picks a new master when one fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailoverMode {
    /// Masters change only when the operator or a human switches them.
    #[default]
    Disabled,
    /// Every instance picks the first healthy one of `failover_priority`.
    Eventual,
    /// A failover coordinator decides, with state kept in a state provider.
    Stateful,
    /// Tarantool's built-in Raft elects the leader.
    Raft,
}

/// Where stateful failover keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateProvider {
    /// A Tarantool stateboard instance (`stateboardParams`).
    Stateboard,
    /// An etcd v2 API (`etcd2Params`).
    Etcd2,
}

/// A key of a Secret in the Cluster's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253), regex(pattern = super::validation::DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    /// The key holding the value.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Parameters of a stateboard state provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateboardParams {
    /// `host:port` of the stateboard.
    #[schemars(length(min = 1, max = 1024))]
    pub uri: String,
    /// The stateboard password, from a Secret (never written in the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// Parameters of an etcd2 state provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Etcd2Params {
    /// etcd endpoints, e.g. `http://etcd:2379`.
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 1024)))]
    pub endpoints: Vec<String>,
    /// Key prefix of this cluster's state (Cartridge's default: `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub prefix: Option<String>,
    /// Seconds a lock lives without renewal (Cartridge's default: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub lock_delay: Option<f64>,
    /// etcd user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub username: Option<String>,
    /// etcd password, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// Cartridge failover settings. Absent means Cartridge's default (disabled).
///
/// Admission rules: `stateful` needs a `stateProvider` and that provider's
/// params; the other modes take no provider; `fencingEnabled` only with
/// `stateful`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::validation::failover_rules)]
pub struct Failover {
    /// `disabled`, `eventual`, `stateful` or `raft`.
    #[serde(default)]
    pub mode: FailoverMode,
    /// Where `stateful` failover keeps its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_provider: Option<StateProvider>,
    /// Parameters of the `stateboard` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateboard_params: Option<StateboardParams>,
    /// Parameters of the `etcd2` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd2_params: Option<Etcd2Params>,
    /// Seconds before a silent instance counts as dead (Cartridge's default: 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub failover_timeout: Option<f64>,
    /// A stateful-failover master steps down when it loses both the state
    /// provider and its replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_enabled: Option<bool>,
}
