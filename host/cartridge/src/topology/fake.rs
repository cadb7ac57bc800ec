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

/// Cartridge's error classes, as its `errors` objects name them. A refusal
/// reads `<class>: <message>` (the object's `str`), and the operator's chunk
/// puts the admin function's name before it: the fake answers with the same
/// text, so a test written against it holds against Cartridge.
mod class {
    pub(super) const EDIT: &str = "Editing cluster topology failed";
    pub(super) const TOPOLOGY: &str = "Invalid cluster topology config";
    pub(super) const VSHARD_CONFIG: &str = "ValidateConfigError";
    pub(super) const BOOTSTRAP: &str = "Bootstrapping vshard failed";
    pub(super) const FAILOVER: &str = "FailoverSetParamsError";
    pub(super) const PATCH: &str = "PatchClusterwideError";
    pub(super) const PROMOTE: &str = "PromoteLeaderError";
    pub(super) const STATE_PROVIDER: &str = "StateProviderError";
    pub(super) const PROBE: &str = "ProbeServerError";
    pub(super) const JOIN_PROBE: &str = "ProbeError";
    pub(super) const REMOTE_CALL: &str = "RemoteCallError";
}

fn refuse(class: &str, message: impl std::fmt::Display) -> String {
    format!("{class}: {message}")
}

/// The pod an advertise URI names (its first DNS label), as Cartridge's
/// membership resolves it to an instance.
fn alias_of_uri(uri: &str) -> &str {
    let host = uri.rsplit_once('@').map_or(uri, |(_, h)| h);
    host.split(['.', ':', '/']).next().unwrap_or_default()
}

fn is_storage(rs: &ReplicasetInfo) -> bool {
    rs.roles.iter().any(|r| r == "vshard-storage")
}

/// A config section as Cartridge gives it back after storing it: Lua
/// tables lose whether they were a map or a list, and Tarantool's JSON
/// encoder writes an empty one as `[]`.
fn as_stored(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.is_empty() => Value::Array(Vec::new()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), as_stored(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(as_stored).collect()),
        other => other.clone(),
    }
}

/// The model behind a [`FakeTopology`]; tests may read and change it.
///
/// It follows the Cartridge double (`tests/tarantool/cartridge_double.lua`,
/// docs/tarantool-double.md), which follows Cartridge 2.x: the conformance
/// suite ([`super::conformance`]) runs the same scenarios against both.
#[derive(Debug, Clone)]
pub struct FakeState {
    /// Replica sets in creation order, servers in failover-priority order.
    /// `weight` is kept for storages only (Cartridge reports no other).
    pub replicasets: Vec<ReplicasetInfo>,
    /// vshard is bootstrapped.
    pub bootstrapped: bool,
    /// Buckets created by the vshard bootstrap.
    pub bucket_count: u64,
    /// Failover parameters as set (Cartridge's defaults are filled in when
    /// read).
    pub failover: FailoverParams,
    /// Clusterwide config (application sections).
    pub config: Map<String, Value>,
    /// Every call so far.
    pub calls: Vec<Call>,
    /// Pods that are gone: their console does not answer, their servers
    /// are unreachable (unhealthy, no stats), they cannot be joined or
    /// promoted, and failover other than `disabled` moves past them.
    pub unreachable: BTreeSet<String>,
    /// UUIDs of expelled servers: Cartridge never lets them join again.
    pub expelled: BTreeSet<String>,
    /// Pods whose console answers `admin_get_replicasets` with `[]`, as a
    /// real instance does before Cartridge membership reaches it.
    pub answers_empty: BTreeSet<String>,
    /// Pods that join [`Self::answers_empty`] once the next edit is
    /// applied: an answer read right after a topology change can be `[]`
    /// (the clusterwide config is being applied, membership re-converges).
    pub empty_after_edit: BTreeSet<String>,
    /// Stateful failover's state provider (stateboard, etcd2) does not
    /// answer: `failover_promote` fails and nobody is appointed.
    pub state_provider_unreachable: bool,
    /// The vshard rebalancer is held: buckets stay where they are (else
    /// they reach their replica sets' shares by weight by the next read).
    pub rebalancer_held: bool,
    /// Config sections come back as Cartridge stores them: `{}` as `[]`.
    pub config_as_stored: bool,
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
            empty_after_edit: BTreeSet::new(),
            state_provider_unreachable: false,
            rebalancer_held: false,
            config_as_stored: false,
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

    /// A configured cluster exists (Cartridge: this instance has a
    /// topology; expelled servers count).
    fn has_topology(&self) -> bool {
        !self.replicasets.is_empty() || !self.expelled.is_empty()
    }

    fn mode(&self) -> &str {
        self.failover.mode.as_str()
    }

    fn reachable(&self, alias: &str) -> bool {
        !self.unreachable.contains(alias)
    }

    /// Each storage's share of the buckets by weight (weight 0: none),
    /// largest remainder so that the shares add up to the bucket count,
    /// ties to the earlier replica set: as vshard's rebalancer targets.
    fn bucket_targets(&self) -> Vec<(usize, u64)> {
        let storages: Vec<usize> = (0..self.replicasets.len())
            .filter(|&i| is_storage(&self.replicasets[i]))
            .collect();
        let weight = |i: usize| self.replicasets[i].weight.unwrap_or(0.0).max(0.0);
        let total: f64 = storages.iter().map(|&i| weight(i)).sum();
        let mut targets = Vec::new();
        let mut remainders = Vec::new();
        let mut sum = 0;
        for (n, &i) in storages.iter().enumerate() {
            let exact = if total > 0.0 {
                self.bucket_count as f64 * weight(i) / total
            } else {
                0.0
            };
            let floor = exact.floor();
            targets.push((i, floor as u64));
            sum += floor as u64;
            remainders.push((exact - floor, n));
        }
        remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, n) in remainders
            .iter()
            .take(self.bucket_count.saturating_sub(sum) as usize)
        {
            targets[n].1 += 1;
        }
        targets
    }

    /// What the vshard rebalancer does over time, at once: buckets move
    /// from storages above their share to those below it, between replica
    /// sets whose master is reachable, keeping the total.
    pub fn rebalance(&mut self) {
        if !self.bootstrapped || self.rebalancer_held {
            return;
        }
        let mut over = Vec::new();
        let mut under = Vec::new();
        for (i, target) in self.bucket_targets() {
            let rs = &self.replicasets[i];
            if !rs.master_alias().is_some_and(|a| self.reachable(a)) {
                continue;
            }
            let have = rs.bucket_count().unwrap_or(0);
            if have > target {
                over.push((i, have - target));
            } else if have < target {
                under.push((i, target - have));
            }
        }
        let (mut o, mut u) = (0, 0);
        while o < over.len() && u < under.len() {
            let n = over[o].1.min(under[u].1);
            let (from, to) = (over[o].0, under[u].0);
            let have_from = self.replicasets[from].bucket_count().unwrap_or(0);
            let have_to = self.replicasets[to].bucket_count().unwrap_or(0);
            set_buckets(&mut self.replicasets[from], have_from - n);
            set_buckets(&mut self.replicasets[to], have_to + n);
            over[o].1 -= n;
            under[u].1 -= n;
            if over[o].1 == 0 {
                o += 1;
            }
            if under[u].1 == 0 {
                u += 1;
            }
        }
    }

    /// The master of every replica set, as Cartridge's failover has it:
    /// `disabled`, the first in priority; `eventual`, the first reachable
    /// one; `stateful` and `raft`, the appointed one while it is reachable
    /// (no autoreturn), else the first reachable one, and nobody new while
    /// the state provider does not answer.
    fn settle_masters(&mut self) {
        let mode = self.failover.mode.clone();
        let provider_down = mode == "stateful" && self.state_provider_unreachable;
        let unreachable = self.unreachable.clone();
        for rs in &mut self.replicasets {
            let alive = |s: &ServerInfo| !unreachable.contains(&s.alias);
            let member = |uuid: &str| rs.servers.iter().find(|s| s.uuid == uuid);
            let current = rs.master.as_deref().and_then(member);
            let first_alive = rs.servers.iter().find(|s| alive(s)).map(|s| s.uuid.clone());
            let first = rs.servers.first().map(|s| s.uuid.clone());
            rs.master = match mode.as_str() {
                "stateful" | "raft" => match current {
                    Some(s) if alive(s) || provider_down => Some(s.uuid.clone()),
                    _ => first_alive.or(first),
                },
                "eventual" => first_alive.or(first),
                _ => first,
            };
        }
    }

    fn edited(&self, edit: &TopologyEdit, caller: &str) -> Result<Self, String> {
        let mut next = self.clone();
        // Servers first, as Cartridge's edit_topology.
        for uuid in &edit.expel {
            if next.expelled.contains(uuid) {
                return Err(refuse(
                    class::EDIT,
                    format!("Server \"{uuid}\" is expelled"),
                ));
            }
            let Some(rs) = next
                .replicasets
                .iter_mut()
                .find(|r| r.servers.iter().any(|s| &s.uuid == uuid))
            else {
                return Err(refuse(
                    class::EDIT,
                    format!("Server \"{uuid}\" not in config"),
                ));
            };
            rs.servers.retain(|s| &s.uuid != uuid);
            next.expelled.insert(uuid.clone());
        }
        for rs in &edit.replicasets {
            next.apply_replicaset(rs, self.bootstrapped)?;
        }
        // The last server expelled takes its replica set with it.
        next.replicasets.retain(|r| !r.servers.is_empty());
        next.settle_masters();

        // topology.validate: the instance making the change stays.
        let me = self
            .replicasets
            .iter()
            .flat_map(|r| &r.servers)
            .find(|s| s.alias == caller);
        if let Some(me) = me.filter(|me| next.expelled.contains(&me.uuid)) {
            return Err(refuse(
                class::TOPOLOGY,
                format!("Current instance \"{}\" can not be expelled", me.uri),
            ));
        }
        if next.mode() == "raft" && next.replicasets.iter().any(|r| r.all_rw) {
            return Err(refuse(
                class::TOPOLOGY,
                "Raft failover can't be enabled with ALL_RW replicasets",
            ));
        }
        // vshard-utils.validate_config
        let mut storages = 0;
        let mut total = 0.0;
        for rs in next.replicasets.iter().filter(|r| is_storage(r)) {
            let weight = rs.weight.unwrap_or(0.0);
            if weight < 0.0 {
                return Err(refuse(
                    class::VSHARD_CONFIG,
                    format!(
                        "replicasets[{}].weight must be non-negative, got {weight}",
                        rs.uuid
                    ),
                ));
            }
            storages += 1;
            total += weight;
        }
        if storages > 0 && total <= 0.0 {
            return Err(refuse(
                class::VSHARD_CONFIG,
                "At least one vshard-storage (default) must have weight > 0",
            ));
        }
        if self.bootstrapped {
            for old in self.replicasets.iter().filter(|r| is_storage(r)) {
                if next.replicaset(&old.uuid).is_some_and(is_storage) {
                    continue;
                }
                if old.weight.unwrap_or(0.0) != 0.0 {
                    return Err(refuse(
                        class::VSHARD_CONFIG,
                        format!(
                            "replicasets[{}] is a vshard-storage which can't be removed",
                            old.uuid
                        ),
                    ));
                }
                if old.bucket_count().unwrap_or(0) > 0 {
                    return Err(refuse(
                        class::VSHARD_CONFIG,
                        format!("replicasets[{}] rebalancing isn't finished yet", old.uuid),
                    ));
                }
            }
        }
        Ok(next)
    }

    fn apply_replicaset(
        &mut self,
        edit: &ReplicasetEdit,
        bootstrapped: bool,
    ) -> Result<(), String> {
        let index = match self.replicasets.iter().position(|r| r.uuid == edit.uuid) {
            Some(i) => i,
            None => {
                if edit.join_servers.is_empty() {
                    return Err(refuse(
                        class::EDIT,
                        format!("Replicaset \"{}\" not in config", edit.uuid),
                    ));
                }
                self.replicasets.push(ReplicasetInfo {
                    uuid: edit.uuid.clone(),
                    alias: "unnamed".into(),
                    ..ReplicasetInfo::default()
                });
                self.replicasets.len() - 1
            }
        };
        for join in &edit.join_servers {
            let known = self
                .replicasets
                .iter()
                .any(|r| r.servers.iter().any(|s| s.uuid == join.uuid));
            if known || self.expelled.contains(&join.uuid) {
                return Err(refuse(
                    class::EDIT,
                    format!("Server \"{}\" is already joined", join.uuid),
                ));
            }
            let alias = alias_of_uri(&join.uri).to_string();
            // Cartridge probes a new instance before it joins it.
            if !self.reachable(&alias) {
                return Err(refuse(
                    class::JOIN_PROBE,
                    format!("Probe \"{}\" failed: no response", join.uri),
                ));
            }
            self.replicasets[index].servers.push(ServerInfo {
                uuid: join.uuid.clone(),
                uri: join.uri.clone(),
                alias,
                ..ServerInfo::default()
            });
        }
        let was_storage = is_storage(&self.replicasets[index]);
        if let Some(priority) = &edit.failover_priority {
            for uuid in priority {
                let owner = self
                    .replicasets
                    .iter()
                    .find(|r| r.servers.iter().any(|s| &s.uuid == uuid));
                let problem = if self.expelled.contains(uuid) {
                    Some("can't be expelled")
                } else if owner.is_none() {
                    Some("doesn't exist")
                } else if owner.is_some_and(|r| r.uuid != edit.uuid) {
                    Some("belongs to another replicaset")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(refuse(
                        class::TOPOLOGY,
                        format!("replicasets[{}] leader \"{uuid}\" {problem}", edit.uuid),
                    ));
                }
            }
        }
        let rs = &mut self.replicasets[index];
        if let Some(roles) = &edit.roles {
            // Reported sorted (the operator's chunk sorts them), with the
            // dependencies Cartridge enables along.
            let mut all = with_dependencies(roles);
            all.sort();
            all.dedup();
            rs.roles = all;
        }
        if let Some(priority) = &edit.failover_priority {
            // Cartridge's get_leaders_order: the new order, then the old one.
            for uuid in priority.iter().rev() {
                if let Some(at) = rs.servers.iter().position(|s| &s.uuid == uuid) {
                    let server = rs.servers.remove(at);
                    rs.servers.insert(0, server);
                }
            }
        }
        if let Some(alias) = &edit.alias {
            rs.alias.clone_from(alias);
        }
        if let Some(all_rw) = edit.all_rw {
            rs.all_rw = all_rw;
        }
        let storage = is_storage(rs);
        if storage {
            rs.vshard_group = edit
                .vshard_group
                .clone()
                .or(rs.vshard_group.take())
                .or(Some("default".into()));
        }
        // Cartridge's weight rules: only storages have one; a new storage
        // gets 1 before the vshard bootstrap and 0 after it.
        rs.weight = if !storage {
            None
        } else if edit.weight.is_some() {
            edit.weight
        } else if !was_storage {
            Some(if bootstrapped { 0.0 } else { 1.0 })
        } else {
            rs.weight
        };
        // Every server of a storage reports the replica set's buckets.
        let buckets = rs.bucket_count().unwrap_or(0);
        set_buckets(rs, buckets);
        Ok(())
    }

    fn bootstrap(&mut self) -> Result<VshardBootstrap, String> {
        let no_router = || {
            refuse(
                class::REMOTE_CALL,
                "No remotes with role \"vshard-router\" available",
            )
        };
        if !self.has_topology() {
            return Err(no_router());
        }
        if self.bootstrapped {
            return Ok(VshardBootstrap::AlreadyBootstrapped);
        }
        if !self
            .replicasets
            .iter()
            .any(|r| r.roles.iter().any(|x| x == "vshard-router"))
        {
            return Err(no_router());
        }
        let targets = self.bucket_targets();
        if targets.is_empty() {
            return Err(refuse(class::BOOTSTRAP, "Sharding config is empty"));
        }
        self.settle_masters();
        for &(i, _) in &targets {
            let rs = &self.replicasets[i];
            let master = rs
                .servers
                .iter()
                .find(|s| Some(&s.uuid) == rs.master.as_ref());
            if let Some(m) = master.filter(|m| !self.reachable(&m.alias)) {
                return Err(refuse(
                    class::BOOTSTRAP,
                    format!("\"{}\" in vshard-router/default not ready yet", m.uri),
                ));
            }
        }
        for (i, n) in targets {
            set_buckets(&mut self.replicasets[i], n);
        }
        self.bootstrapped = true;
        Ok(VshardBootstrap::Bootstrapped)
    }

    fn set_failover(&mut self, params: &FailoverParams) -> Result<(), String> {
        if !self.has_topology() {
            return Err(refuse(class::FAILOVER, "Cluster isn't bootstrapped yet"));
        }
        // Fields left out are kept, as Cartridge's failover_set_params does.
        let mut f = self.failover.clone();
        f.mode.clone_from(&params.mode);
        let keep = |new: &Option<_>, old: &mut Option<_>| {
            if new.is_some() {
                old.clone_from(new);
            }
        };
        keep(&params.state_provider, &mut f.state_provider);
        if params.failover_timeout.is_some() {
            f.failover_timeout = params.failover_timeout;
        }
        if params.fencing_enabled.is_some() {
            f.fencing_enabled = params.fencing_enabled;
        }
        // Cartridge replaces these whole; a password left out is kept (the
        // operator's failover_set.lua fills it in from the current one).
        // With none set yet, the stateboard's is "" (Cartridge requires a
        // string there).
        let with_password = |new: &Option<Value>, old: &Option<Value>, empty: Option<&str>| {
            let mut new = new.clone()?;
            let current = old
                .as_ref()
                .and_then(|o| o.get("password"))
                .filter(|p| p.is_string())
                .cloned()
                .or_else(|| empty.map(Value::from));
            if let (Some(map), Some(password)) = (new.as_object_mut(), current) {
                map.entry("password").or_insert(password);
            }
            Some(new)
        };
        if params.tarantool_params.is_some() {
            f.tarantool_params =
                with_password(&params.tarantool_params, &f.tarantool_params, Some(""));
        }
        if params.etcd2_params.is_some() {
            f.etcd2_params = with_password(&params.etcd2_params, &f.etcd2_params, None);
        }
        // topology.validate_failover_schema
        let invalid = |m: String| Err(refuse(class::TOPOLOGY, format!("topology_new.failover{m}")));
        if !matches!(
            f.mode.as_str(),
            "disabled" | "eventual" | "stateful" | "raft"
        ) {
            return invalid(format!(" unknown mode \"{}\"", f.mode));
        }
        if let Some(t) = f.failover_timeout.filter(|t| *t < 0.0) {
            return invalid(format!(".failover_timeout must be non-negative, got {t}"));
        }
        if f.mode == "stateful" && f.state_provider.is_none() {
            return invalid(" missing state_provider for mode \"stateful\"".into());
        }
        match f.state_provider.as_deref() {
            None => {}
            Some("tarantool") => {
                let Some(p) = &f.tarantool_params else {
                    return invalid(" missing tarantool_params".into());
                };
                for key in ["uri", "password"] {
                    if !p.get(key).is_some_and(Value::is_string) {
                        return invalid(format!(
                            ".tarantool_params.{key} must be a string, got {}",
                            lua_type(p.get(key))
                        ));
                    }
                }
            }
            Some("etcd2") if f.etcd2_params.is_none() => {
                return invalid(" missing etcd2_params".into());
            }
            Some("etcd2") => {}
            Some(other) => return invalid(format!(" unknown state_provider \"{other}\"")),
        }
        if f.mode == "raft" && self.replicasets.iter().any(|r| r.all_rw) {
            return Err(refuse(
                class::TOPOLOGY,
                "Raft failover can't be enabled with ALL_RW replicasets",
            ));
        }
        self.failover = f;
        // A new failover configuration appoints anew.
        for rs in &mut self.replicasets {
            rs.master = None;
        }
        self.settle_masters();
        Ok(())
    }

    /// `failover_get_params()` with Cartridge's defaults filled in, as the
    /// operator's chunk projects it.
    fn failover_params(&self) -> FailoverParams {
        let f = &self.failover;
        let text = |v: Option<&Value>, default: &str| {
            v.and_then(Value::as_str).unwrap_or(default).to_string()
        };
        let tp = f.tarantool_params.as_ref();
        let ep = f.etcd2_params.as_ref();
        let endpoints = ep
            .and_then(|e| e.get("endpoints"))
            .and_then(Value::as_array)
            .filter(|e| !e.is_empty())
            .cloned()
            .unwrap_or_else(|| {
                vec![
                    Value::from("http://127.0.0.1:4001"),
                    Value::from("http://127.0.0.1:2379"),
                ]
            });
        FailoverParams {
            mode: f.mode.clone(),
            state_provider: f.state_provider.clone(),
            failover_timeout: Some(f.failover_timeout.unwrap_or(20.0)),
            fencing_enabled: Some(f.mode == "stateful" && f.fencing_enabled == Some(true)),
            tarantool_params: Some(serde_json::json!({
                "uri": text(tp.and_then(|p| p.get("uri")), "tcp://localhost:4401"),
                "password_sha256": super::password_sha256(&text(tp.and_then(|p| p.get("password")), "")),
            })),
            etcd2_params: Some(serde_json::json!({
                "endpoints": endpoints,
                "prefix": text(ep.and_then(|p| p.get("prefix")), "/"),
                "lock_delay": ep.and_then(|p| p.get("lock_delay")).cloned().unwrap_or(Value::from(10)),
                "username": text(ep.and_then(|p| p.get("username")), ""),
                "password_sha256": super::password_sha256(&text(ep.and_then(|p| p.get("password")), "")),
            })),
        }
    }

    fn promote(&mut self, replicaset: &str, instance: &str) -> Result<bool, String> {
        // The operator's chunk asks the mode first and does not call
        // failover_promote where the priority already moved the master.
        let mode = self.mode().to_string();
        if mode != "stateful" && mode != "raft" {
            return Ok(false);
        }
        if mode == "stateful" && self.state_provider_unreachable {
            return Err(refuse(class::STATE_PROVIDER, "State provider unavailable"));
        }
        let reachable = |alias: &str| !self.unreachable.contains(alias);
        let Some(rs) = self.replicasets.iter().find(|r| r.uuid == replicaset) else {
            return Err(refuse(
                class::PROMOTE,
                format!("Replicaset \"{replicaset}\" doesn't exist"),
            ));
        };
        let Some(server) = rs.servers.iter().find(|s| s.uuid == instance) else {
            return Err(refuse(
                class::PROMOTE,
                format!("Server \"{instance}\" doesn't belong to replicaset \"{replicaset}\""),
            ));
        };
        if !reachable(&server.alias) {
            return Err(refuse(
                class::PROMOTE,
                format!("Server \"{instance}\" is unreachable or disabled"),
            ));
        }
        if let Some(rs) = self.replicasets.iter_mut().find(|r| r.uuid == replicaset) {
            rs.master = Some(instance.to_string());
        }
        Ok(true)
    }

    /// `admin_get_replicasets` as the operator's chunk projects it: the
    /// master is the active one, each server reports its own state (the
    /// master and `all_rw` servers take writes, a replica follows a
    /// reachable master with a small lag) and an unreachable one reports
    /// nothing (unhealthy, no stats).
    fn answer(&mut self) -> Vec<ReplicasetInfo> {
        self.rebalance();
        self.settle_masters();
        let mut answer = self.replicasets.clone();
        for rs in &mut answer {
            let (master, all_rw) = (rs.master.clone(), rs.all_rw);
            let master_alive = rs
                .master_alias()
                .is_some_and(|a| !self.unreachable.contains(a));
            let storage = is_storage(rs);
            for server in &mut rs.servers {
                let is_master = master.as_deref() == Some(server.uuid.as_str());
                if self.unreachable.contains(&server.alias) {
                    server.healthy = false;
                    server.replicating = false;
                    server.replication_lag = None;
                    server.bucket_count = None;
                    server.read_only = None;
                    continue;
                }
                server.healthy = true;
                server.read_only = Some(!all_rw && !is_master);
                if !storage {
                    server.bucket_count = None;
                }
                if is_master {
                    server.replicating = true;
                    server.replication_lag = None;
                } else {
                    server.replicating = master_alive;
                    server.replication_lag = Some(0.0);
                }
            }
        }
        answer.sort_by(|a, b| a.alias.cmp(&b.alias));
        answer
    }

    fn patch_config(&mut self, patch: &Map<String, Value>) -> Result<(), String> {
        if !self.has_topology() {
            return Err(refuse(
                class::PATCH,
                "Current instance isn't bootstrapped yet",
            ));
        }
        for (k, v) in patch {
            if v.is_null() {
                self.config.remove(k);
            } else if self.config_as_stored {
                self.config.insert(k.clone(), as_stored(v));
            } else {
                self.config.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    fn config_sections(&self, sections: &[String]) -> Map<String, Value> {
        if !self.has_topology() {
            return Map::new();
        }
        sections
            .iter()
            .filter_map(|k| {
                let value = match k.as_str() {
                    "vshard" => Some(serde_json::json!({
                        "bucket_count": self.bucket_count,
                        "bootstrapped": self.bootstrapped,
                    })),
                    _ => self.config.get(k).cloned(),
                };
                value.map(|v| (k.clone(), v))
            })
            .collect()
    }
}

/// Every server of a storage replica set reports its bucket count (vshard
/// keeps buckets with the data); servers of other replica sets none.
fn set_buckets(rs: &mut ReplicasetInfo, buckets: u64) {
    let storage = is_storage(rs);
    for s in &mut rs.servers {
        s.bucket_count = storage.then_some(buckets);
    }
}

/// Lua's `type()` of a JSON value, for Cartridge's messages.
fn lua_type(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "nil",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_) | Value::Object(_)) => "table",
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
        // The operator's chunks name the admin function before Cartridge's
        // error text.
        f(&mut state).map_err(|text| TopologyError::Refused {
            call: name,
            message: format!("{name}: {text}"),
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
        let alias = alias_of_uri(uri).to_string();
        self.topology.call(
            &self.pod,
            CallKind::Probe(uri.into()),
            "admin_probe_server",
            |s| {
                if s.reachable(&alias) {
                    Ok(())
                } else {
                    Err(refuse(
                        class::PROBE,
                        format!("Probe \"{uri}\" failed: no response"),
                    ))
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
                // The rebalancer works while nobody looks.
                let answer = s.answer();
                if s.answers_empty.contains(through) {
                    return Ok(Vec::new());
                }
                Ok(answer)
            },
        )
    }

    async fn edit(&self, edit: &TopologyEdit) -> Result<(), TopologyError> {
        let caller = self.pod.clone();
        self.topology.call(
            &self.pod,
            CallKind::Edit(edit.clone()),
            "admin_edit_topology",
            |s| {
                // Cartridge applies an edit whole or not at all.
                *s = s.edited(edit, &caller)?;
                let empty = std::mem::take(&mut s.empty_after_edit);
                s.answers_empty.extend(empty);
                Ok(())
            },
        )
    }

    async fn promote(&self, replicaset: &str, instance: &str) -> Result<bool, TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::Promote(replicaset.to_string(), instance.to_string()),
            "failover_promote",
            |s| s.promote(replicaset, instance),
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
                Ok(s.failover_params())
            })
    }

    async fn set_failover(&self, params: &FailoverParams) -> Result<(), TopologyError> {
        self.topology.call(
            &self.pod,
            CallKind::SetFailover(params.clone()),
            "failover_set_params",
            |s| s.set_failover(params),
        )
    }

    async fn config(&self, sections: &[String]) -> Result<Map<String, Value>, TopologyError> {
        if sections.is_empty() {
            return Ok(Map::new());
        }
        self.topology
            .call(&self.pod, CallKind::Config, "config_get_readonly", |s| {
                Ok(s.config_sections(sections))
            })
    }

    async fn patch_config(&self, patch: &Map<String, Value>) -> Result<(), TopologyError> {
        if patch.is_empty() {
            return Ok(());
        }
        self.topology.call(
            &self.pod,
            CallKind::PatchConfig(patch.clone()),
            "config_patch_clusterwide",
            |s| s.patch_config(patch),
        )
    }
}
