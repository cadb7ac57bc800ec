//! An in-memory Cartridge for unit tests: a topology model that answers the
//! [`Topology`] calls the way Cartridge does and records each one, so a test
//! can build a cluster state, reconcile, and assert the calls made.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    Connector, FailoverParams, InstanceTarget, ReplicasetEdit, ReplicasetInfo, ServerInfo,
    Topology, TopologyEdit, TopologyError, VshardBootstrap,
};

/// Role dependencies of the article's example application (kv), which
/// Cartridge adds to a replica set's reported roles, as it does for any
/// application whose roles declare dependencies.
pub const ROLE_DEPENDENCIES: &[(&str, &str)] = &[
    ("app.roles.storage", "vshard-storage"),
    ("app.roles.router", "vshard-router"),
];

/// `roles` with their dependencies, as Cartridge reports enabled roles.
pub fn with_dependencies(roles: &[String]) -> Vec<String> {
    let mut all = roles.to_vec();
    for (role, dependency) in ROLE_DEPENDENCIES {
        if roles.iter().any(|r| r == role) && !all.iter().any(|r| r == dependency) {
            all.push((*dependency).to_string());
        }
    }
    all
}

/// Cartridge's default bucket count.
pub const DEFAULT_BUCKET_COUNT: u64 = 30_000;

/// One recorded call, with the pod it went through.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The pod whose console carried the call.
    pub through: String,
    /// What was asked.
    pub kind: CallKind,
}

/// What a recorded call asked.
#[derive(Debug, Clone, PartialEq)]
pub enum CallKind {
    /// `admin_probe_server(uri)`.
    Probe(String),
    /// `admin_get_replicasets` (+ stats).
    Replicasets,
    /// `admin_edit_topology`.
    Edit(TopologyEdit),
    /// `admin_bootstrap_vshard`.
    BootstrapVshard,
    /// `failover_get_params`.
    Failover,
    /// `failover_set_params`.
    SetFailover(FailoverParams),
    /// `config_get_readonly`.
    Config,
    /// `config_patch_clusterwide`.
    PatchConfig(Map<String, Value>),
    /// `failover_promote` (replica set, instance), stateful and raft only.
    Promote(String, String),
}

impl CallKind {
    /// Whether the call changes the cluster.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::Edit(_)
                | Self::BootstrapVshard
                | Self::SetFailover(_)
                | Self::PatchConfig(_)
                | Self::Promote(..)
        )
    }
}

/// The model behind a [`FakeTopology`]; tests may read and change it.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// Replica sets, servers in failover-priority order.
    pub replicasets: Vec<ReplicasetInfo>,
    /// vshard is bootstrapped.
    pub bootstrapped: bool,
    /// Buckets created by the vshard bootstrap.
    pub bucket_count: u64,
    /// Failover parameters.
    pub failover: FailoverParams,
    /// Clusterwide config.
    pub config: Map<String, Value>,
    /// Every call so far.
    pub calls: Vec<Call>,
    /// Pods whose console does not answer (calls through them fail).
    pub unreachable: BTreeSet<String>,
    /// UUIDs of expelled servers: Cartridge never lets them join again.
    pub expelled: BTreeSet<String>,
    /// Pods whose console answers `admin_get_replicasets` with `[]`, as a
    /// real instance does before Cartridge membership reaches it.
    pub answers_empty: BTreeSet<String>,
}

impl Default for FakeState {
    fn default() -> Self {
        Self {
            replicasets: Vec::new(),
            bootstrapped: false,
            bucket_count: DEFAULT_BUCKET_COUNT,
            failover: FailoverParams {
                mode: "disabled".into(),
                ..FailoverParams::default()
            },
            config: Map::new(),
            calls: Vec::new(),
            unreachable: BTreeSet::new(),
            expelled: BTreeSet::new(),
            answers_empty: BTreeSet::new(),
        }
    }
}

impl FakeState {
    /// The replica set with this UUID.
    pub fn replicaset(&self, uuid: &str) -> Option<&ReplicasetInfo> {
        self.replicasets.iter().find(|r| r.uuid == uuid)
    }

    /// The replica set with this alias.
    pub fn replicaset_by_alias(&self, alias: &str) -> Option<&ReplicasetInfo> {
        self.replicasets.iter().find(|r| r.alias == alias)
    }

    /// Makes `server` (an alias) the master of replica set `replicaset` (an
    /// alias), as a failover or a human would.
    pub fn set_master(&mut self, replicaset: &str, server: &str) -> bool {
        let Some(rs) = self.replicasets.iter_mut().find(|r| r.alias == replicaset) else {
            return false;
        };
        let Some(at) = rs.servers.iter().position(|s| s.alias == server) else {
            return false;
        };
        let chosen = rs.servers.remove(at);
        rs.master = Some(chosen.uuid.clone());
        rs.servers.insert(0, chosen);
        true
    }

    /// Buckets held by all replica sets together.
    pub fn total_buckets(&self) -> u64 {
        self.replicasets
            .iter()
            .filter_map(ReplicasetInfo::bucket_count)
            .sum()
    }

    /// Calls that changed the cluster.
    pub fn writes(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.kind.is_write()).collect()
    }

    /// Move every bucket off replica sets of weight 0 onto the storages
    /// with weight (what the vshard rebalancer does over time), keeping the
    /// total.
    pub fn drain(&mut self) {
        let is_storage = |r: &ReplicasetInfo| r.servers.iter().any(|s| s.bucket_count.is_some());
        let Some(receiver) = self
            .replicasets
            .iter()
            .position(|r| is_storage(r) && r.weight.unwrap_or(1.0) > 0.0)
        else {
            return;
        };
        let mut moved = 0;
        for rs in &mut self.replicasets {
            if rs.weight == Some(0.0) {
                moved += rs.bucket_count().unwrap_or(0);
                for s in &mut rs.servers {
                    if s.bucket_count.is_some() {
                        s.bucket_count = Some(0);
                    }
                }
            }
        }
        for s in &mut self.replicasets[receiver].servers {
            s.bucket_count = Some(s.bucket_count.unwrap_or(0) + moved);
        }
    }

    fn apply_edit(&mut self, edit: &TopologyEdit) -> Result<(), String> {
        for rs in &edit.replicasets {
            self.apply_replicaset(rs)?;
        }
        for uuid in &edit.expel {
            self.expel(uuid, &edit.expel)?;
        }
        Ok(())
    }

    fn apply_replicaset(&mut self, edit: &ReplicasetEdit) -> Result<(), String> {
        let known: BTreeSet<String> = self
            .replicasets
            .iter()
            .flat_map(|r| r.servers.iter().map(|s| s.uuid.clone()))
            .collect();
        let index = match self.replicasets.iter().position(|r| r.uuid == edit.uuid) {
            Some(i) => i,
            None => {
                if edit.join_servers.is_empty() {
                    return Err(format!("replicaset {:?} has no servers to join", edit.uuid));
                }
                self.replicasets.push(ReplicasetInfo {
                    uuid: edit.uuid.clone(),
                    alias: edit.alias.clone().unwrap_or_else(|| edit.uuid.clone()),
                    ..ReplicasetInfo::default()
                });
                self.replicasets.len() - 1
            }
        };
        let rs = &mut self.replicasets[index];
        if let Some(alias) = &edit.alias {
            rs.alias.clone_from(alias);
        }
        if let Some(roles) = &edit.roles {
            rs.roles = with_dependencies(roles);
        }
        let storage = rs.roles.iter().any(|r| r == "vshard-storage");
        if let Some(weight) = edit.weight {
            rs.weight = Some(weight);
        }
        if let Some(all_rw) = edit.all_rw {
            rs.all_rw = all_rw;
        }
        if edit.vshard_group.is_some() {
            rs.vshard_group.clone_from(&edit.vshard_group);
        }
        for join in &edit.join_servers {
            if known.contains(&join.uuid) || self.expelled.contains(&join.uuid) {
                return Err(format!("server {:?} is already joined", join.uuid));
            }
            let alias = join.uri.split('.').next().unwrap_or_default().to_string();
            rs.servers.push(ServerInfo {
                uuid: join.uuid.clone(),
                uri: join.uri.clone(),
                alias,
                healthy: true,
                replication_lag: Some(0.0),
                replicating: true,
                bucket_count: storage.then_some(0),
                read_only: None,
            });
        }
        if let Some(priority) = &edit.failover_priority {
            for uuid in priority.iter().rev() {
                let Some(at) = rs.servers.iter().position(|s| &s.uuid == uuid) else {
                    return Err(format!(
                        "server {uuid:?} is not in replicaset {:?}",
                        rs.uuid
                    ));
                };
                let server = rs.servers.remove(at);
                rs.servers.insert(0, server);
            }
            // Buckets live with the data: every server of the set reports them.
            let buckets = rs.servers.iter().filter_map(|s| s.bucket_count).max();
            for s in &mut rs.servers {
                if s.bucket_count.is_some() {
                    s.bucket_count = buckets;
                }
            }
        }
        rs.master = rs.servers.first().map(|s| s.uuid.clone());
        if let Some(master) = rs.servers.first_mut() {
            master.replication_lag = None;
        }
        Ok(())
    }

    fn expel(&mut self, uuid: &str, all: &[String]) -> Result<(), String> {
        let Some(rs_index) = self
            .replicasets
            .iter()
            .position(|r| r.servers.iter().any(|s| s.uuid == uuid))
        else {
            return Err(format!("server {uuid:?} not in config"));
        };
        let rs = &mut self.replicasets[rs_index];
        let whole = rs.servers.iter().all(|s| all.contains(&s.uuid));
        if whole && rs.weight.unwrap_or(0.0) > 0.0 {
            return Err(format!(
                "replicaset {} has weight {} and cannot be expelled; set it to 0 and wait for its buckets to leave",
                rs.alias,
                rs.weight.unwrap_or(0.0)
            ));
        }
        if whole && rs.bucket_count().unwrap_or(0) > 0 {
            return Err(format!(
                "replicaset {} holds {} buckets and cannot be expelled",
                rs.alias,
                rs.bucket_count().unwrap_or(0)
            ));
        }
        if !whole && rs.master.as_deref() == Some(uuid) && rs.servers.len() > 1 {
            return Err(format!("server {uuid:?} is the master; switch it first"));
        }
        rs.servers.retain(|s| s.uuid != uuid);
        self.expelled.insert(uuid.to_string());
        let rs = &self.replicasets[rs_index];
        if rs.servers.is_empty() {
            self.replicasets.remove(rs_index);
        }
        Ok(())
    }

    fn bootstrap(&mut self) -> Result<VshardBootstrap, String> {
        if self.bootstrapped {
            return Ok(VshardBootstrap::AlreadyBootstrapped);
        }
        let storages: Vec<usize> = (0..self.replicasets.len())
            .filter(|&i| {
                let r = &self.replicasets[i];
                r.roles.iter().any(|x| x == "vshard-storage") && r.weight.unwrap_or(1.0) > 0.0
            })
            .collect();
        if storages.is_empty() {
            return Err("no storage replica sets with weight > 0".into());
        }
        let total: f64 = storages
            .iter()
            .map(|&i| self.replicasets[i].weight.unwrap_or(1.0))
            .sum();
        let mut left = self.bucket_count;
        for (n, &i) in storages.iter().enumerate() {
            let rs = &mut self.replicasets[i];
            let share = if n + 1 == storages.len() {
                left
            } else {
                let w = rs.weight.unwrap_or(1.0) / total;
                (self.bucket_count as f64 * w).floor() as u64
            };
            left -= share.min(left);
            for s in &mut rs.servers {
                s.bucket_count = Some(share);
            }
        }
        self.bootstrapped = true;
        Ok(VshardBootstrap::Bootstrapped)
    }
}

/// The in-memory Cartridge, shared by every pod's [`Topology`].
#[derive(Debug, Default)]
pub struct FakeTopology {
    state: Mutex<FakeState>,
}

impl FakeTopology {
    /// A fresh, unconfigured cluster.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The model, to read or change (tests only; poisoning is recovered).
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn call<T>(
        &self,
        through: &str,
        kind: CallKind,
        name: &'static str,
        f: impl FnOnce(&mut FakeState) -> Result<T, String>,
    ) -> Result<T, TopologyError> {
        let mut state = self.state();
        state.calls.push(Call {
            through: through.to_string(),
            kind,
        });
        if state.unreachable.contains(through) {
            return Err(TopologyError::Unreachable {
                pod: through.to_string(),
                message: "the fake marks it unreachable".into(),
            });
        }
        f(&mut state).map_err(|message| TopologyError::Refused {
            call: name,
            message,
        })
    }
}

/// A [`Connector`] giving every pod a view of the same [`FakeTopology`].
#[derive(Debug, Clone)]
pub struct FakeConnector {
    /// The shared model.
    pub topology: Arc<FakeTopology>,
}

impl FakeConnector {
    /// A connector over a fresh model.
    pub fn new() -> Self {
        Self {
            topology: FakeTopology::new(),
        }
    }
}

impl Default for FakeConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl Connector for FakeConnector {
    fn connect(&self, target: &InstanceTarget) -> Arc<dyn Topology> {
        Arc::new(Through {
            pod: target.pod.clone(),
            topology: self.topology.clone(),
        })
    }
}

/// The fake seen through one pod's console.
struct Through {
    pod: String,
    topology: Arc<FakeTopology>,
}

#[async_trait]
impl Topology for Through {
    async fn probe(&self, uri: &str) -> Result<(), TopologyError> {
        let alias = uri.split('.').next().unwrap_or_default().to_string();
        self.topology.call(
            &self.pod,
            CallKind::Probe(uri.into()),
            "admin_probe_server",
            |s| {
                if s.unreachable.contains(&alias) {
                    Err(format!("Probe {uri:?} failed: no response"))
                } else {
                    Ok(())
                }
            },
        )
    }

    async fn replicasets(&self) -> Result<Vec<ReplicasetInfo>, TopologyError> {
        let through = self.pod.as_str();
        self.topology.call(
            &self.pod,
            CallKind::Replicasets,
            "admin_get_replicasets",
            |s| {
                // The vshard rebalancer works while nobody looks: by the next
                // read, replica sets of weight 0 are empty.
                s.drain();
                if s.answers_empty.contains(through) {
                    return Ok(Vec::new());
                }
                // Each server says itself whether it takes writes: the
                // master does (and every server with all_rw).
                let mut answer = s.replicasets.clone();
                for rs in &mut answer {
                    let (master, all_rw) = (rs.master.clone(), rs.all_rw);
                    for server in &mut rs.servers {
                        server.read_only =
                            Some(!all_rw && master.as_deref() != Some(server.uuid.as_str()));
                    }
                }
                Ok(answer)
            },
        )
    }

    async fn edit(&self, edit: &TopologyEdit) -> Result<(), TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::Edit(edit.clone()),
            "admin_edit_topology",
            |s| {
                // Cartridge applies an edit whole or not at all.
                let mut next = s.clone();
                next.apply_edit(edit)?;
                *s = next;
                Ok(())
            },
        )
    }

    async fn promote(&self, replicaset: &str, instance: &str) -> Result<bool, TopologyError> {
        // The fake's master follows the failover priority in every mode;
        // the call is recorded so tests see that it was made.
        self.topology.call(
            &self.pod,
            CallKind::Promote(replicaset.to_string(), instance.to_string()),
            "failover_promote",
            |s| Ok(matches!(s.failover.mode.as_str(), "stateful" | "raft")),
        )
    }

    async fn bootstrap_vshard(&self) -> Result<VshardBootstrap, TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::BootstrapVshard,
            "admin_bootstrap_vshard",
            FakeState::bootstrap,
        )
    }

    async fn failover(&self) -> Result<FailoverParams, TopologyError> {
        self.topology
            .call(&self.pod, CallKind::Failover, "failover_get_params", |s| {
                Ok(s.failover.clone())
            })
    }

    async fn set_failover(&self, params: &FailoverParams) -> Result<(), TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::SetFailover(params.clone()),
            "failover_set_params",
            |s| {
                if params.mode == "stateful" && params.state_provider.is_none() {
                    return Err("stateful failover needs a state provider".into());
                }
                s.failover = params.clone();
                Ok(())
            },
        )
    }

    async fn config(&self, sections: &[String]) -> Result<Map<String, Value>, TopologyError> {
        self.topology
            .call(&self.pod, CallKind::Config, "config_get_readonly", |s| {
                Ok(sections
                    .iter()
                    .filter_map(|k| s.config.get(k).map(|v| (k.clone(), v.clone())))
                    .collect())
            })
    }

    async fn patch_config(&self, patch: &Map<String, Value>) -> Result<(), TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::PatchConfig(patch.clone()),
            "config_patch_clusterwide",
            |s| {
                for (k, v) in patch {
                    if v.is_null() {
                        s.config.remove(k);
                    } else {
                        s.config.insert(k.clone(), v.clone());
                    }
                }
                Ok(())
            },
        )
    }
}
