//! The values that cross the [`Topology`](super::Topology) trait: what
//! Cartridge reports and what the controllers ask it to change.

use serde::{Deserialize, Serialize};

/// One replica set as Cartridge reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicasetInfo {
    /// Its UUID.
    pub uuid: String,
    /// Its alias (the operator uses the StatefulSet name).
    pub alias: String,
    /// Cartridge roles enabled on it.
    #[serde(default)]
    pub roles: Vec<String>,
    /// vshard weight (storages only).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Every instance writable.
    #[serde(default)]
    pub all_rw: bool,
    /// vshard group.
    #[serde(default)]
    pub vshard_group: Option<String>,
    /// UUID of the master Cartridge routes writes to (`active_master`).
    #[serde(default)]
    pub master: Option<String>,
    /// Servers in failover-priority order.
    #[serde(default)]
    pub servers: Vec<ServerInfo>,
}

impl ReplicasetInfo {
    /// Buckets this replica set holds (its master's count; `None` when no
    /// server reports one, e.g. routers).
    pub fn bucket_count(&self) -> Option<u64> {
        let master = self.master.as_deref();
        self.servers
            .iter()
            .find(|s| Some(s.uuid.as_str()) == master)
            .and_then(|s| s.bucket_count)
            .or_else(|| self.servers.iter().filter_map(|s| s.bucket_count).max())
    }

    /// The server with this alias.
    pub fn server_by_alias(&self, alias: &str) -> Option<&ServerInfo> {
        self.servers.iter().find(|s| s.alias == alias)
    }

    /// The alias of the master, when known.
    pub fn master_alias(&self) -> Option<&str> {
        let master = self.master.as_deref()?;
        self.servers
            .iter()
            .find(|s| s.uuid == master)
            .map(|s| s.alias.as_str())
    }
}

/// One server (instance) as Cartridge reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Its UUID.
    pub uuid: String,
    /// Its advertise URI.
    pub uri: String,
    /// Its alias (the operator uses the pod name).
    pub alias: String,
    /// Cartridge sees it as healthy.
    #[serde(default)]
    pub healthy: bool,
    /// Seconds it lags behind its upstream (`None` for a master or when
    /// unknown).
    #[serde(default)]
    pub replication_lag: Option<f64>,
    /// Its replication from the master is running (`follow`); masters count
    /// as replicating.
    #[serde(default)]
    pub replicating: bool,
    /// Buckets it reports (`vshard_buckets_count`), storages only.
    #[serde(default)]
    pub bucket_count: Option<u64>,
    /// It refuses writes (`box.info.ro`), as the server itself reports it;
    /// `None` when it could not be asked. A master switch is complete only
    /// when the new master reports `false` and the old one `true`.
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// A change to the topology: one `admin_edit_topology` call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyEdit {
    /// Replica sets to create or change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicasets: Vec<ReplicasetEdit>,
    /// UUIDs of servers to expel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expel: Vec<String>,
}

impl TopologyEdit {
    /// Makes `to` (a server UUID) the master of `replicaset`: first in its
    /// failover priority, the others keeping their order. This is what
    /// switches the master with `disabled` and `eventual` failover.
    pub fn switch_master(replicaset: &ReplicasetInfo, to: &str) -> Self {
        let mut priority = vec![to.to_string()];
        priority.extend(
            replicaset
                .servers
                .iter()
                .filter(|s| s.uuid != to)
                .map(|s| s.uuid.clone()),
        );
        Self {
            replicasets: vec![ReplicasetEdit {
                uuid: replicaset.uuid.clone(),
                failover_priority: Some(priority),
                ..ReplicasetEdit::default()
            }],
            expel: Vec::new(),
        }
    }

    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.replicasets.is_empty() && self.expel.is_empty()
    }
}

/// Create or change one replica set. `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicasetEdit {
    /// Its UUID (deterministic: see [`identity`](super::identity)).
    pub uuid: String,
    /// Its alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Cartridge roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// vshard weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Every instance writable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_rw: Option<bool>,
    /// vshard group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vshard_group: Option<String>,
    /// Servers to join, all in this one call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join_servers: Vec<JoinServer>,
    /// New failover priority (server UUIDs, master first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_priority: Option<Vec<String>>,
}

/// A server to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinServer {
    /// Its advertise URI.
    pub uri: String,
    /// Its UUID (deterministic).
    pub uuid: String,
}

/// What `admin_bootstrap_vshard` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VshardBootstrap {
    /// Buckets were created now.
    Bootstrapped,
    /// vshard was bootstrapped before (not an error: bootstrap is repeated
    /// safely after a restart).
    AlreadyBootstrapped,
}

/// Cartridge's failover parameters (`failover_get_params` shape, snake case
/// as in Lua).
///
/// Passwords: what the operator SENDS carries `password` only when it knows
/// one (from a Secret); without it the password in force is kept (the
/// `failover_set.lua` chunk and the fake both do so). What it READS carries
/// `password_sha256` instead: the password itself never leaves the
/// instance. `Debug` shows neither.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverParams {
    /// `disabled`, `eventual`, `stateful` or `raft`.
    pub mode: String,
    /// `stateboard` or `etcd2` (stateful only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_provider: Option<String>,
    /// Seconds before a silent instance counts as dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    /// Fencing (stateful only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_enabled: Option<bool>,
    /// Stateboard parameters: `{uri, password?}` sent, `{uri,
    /// password_sha256}` read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tarantool_params: Option<serde_json::Value>,
    /// etcd2 parameters: `{endpoints, prefix, lock_delay, username,
    /// password?}` sent, `password_sha256` in place of `password` read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd2_params: Option<serde_json::Value>,
}

impl std::fmt::Debug for FailoverParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverParams")
            .field("mode", &self.mode)
            .field("state_provider", &self.state_provider)
            .field("failover_timeout", &self.failover_timeout)
            .field("fencing_enabled", &self.fencing_enabled)
            .field(
                "tarantool_params",
                &self.tarantool_params.as_ref().map(redacted),
            )
            .field("etcd2_params", &self.etcd2_params.as_ref().map(redacted))
            .finish()
    }
}

/// `params` with a password (and its digest) replaced, for `Debug`.
fn redacted(params: &serde_json::Value) -> serde_json::Value {
    let mut params = params.clone();
    if let Some(map) = params.as_object_mut() {
        for key in ["password", "password_sha256"] {
            if let Some(v) = map.get_mut(key) {
                *v = serde_json::Value::from("<redacted>");
            }
        }
    }
    params
}

/// The SHA-256 (hex) of a password, as `failover_get.lua` reports it.
pub fn password_sha256(password: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(password.as_bytes()))
}
