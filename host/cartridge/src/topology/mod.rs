//! What the controllers ask of Cartridge, behind one trait.
//!
//! [`Topology`] is everything the Cluster and Role controllers need from a
//! running Cartridge cluster: probe an instance, list replica sets with their
//! servers, masters, bucket counts and replication health, edit the topology
//! (join, configure, switch master, expel: all one Cartridge call),
//! bootstrap vshard, failover and the clusterwide config.
//!
//! - [`cartridge`]: the real one, Lua over the instance's console.
//! - `fake`: an in-memory Cartridge for unit tests, recording every call
//!   (feature `testing`).
//! - `conformance`: the scenarios both the fake and the Lua double must
//!   pass, so that they stay one model of Cartridge (feature `testing`).
//! - [`identity`]: deterministic UUIDs and advertise URIs, so every call is
//!   idempotent and can be repeated after a crash.
//!
//! A [`Topology`] value talks to one instance (the Cluster's leader); a
//! [`Connector`] makes one for a given pod.

pub mod cartridge;
#[cfg(feature = "testing")]
pub mod conformance;
#[cfg(feature = "testing")]
pub mod fake;
pub mod identity;
pub mod membership;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::api::Reason;
use crate::console::access::ConsoleAccess;

pub use types::{
    FailoverParams, JoinServer, ReplicasetEdit, ReplicasetInfo, ServerInfo, TopologyEdit,
    VshardBootstrap, password_sha256,
};

/// Why a topology call failed. Every variant is worth a retry: the
/// controllers requeue and report the reason in a condition.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The pod could not be reached (exec refused, pod gone, command missing).
    #[error("cannot reach the console of {pod}: {message}")]
    Unreachable {
        /// The pod exec'd into.
        pod: String,
        /// What the transport said.
        message: String,
    },
    /// The instance did not answer in time.
    #[error("the console of {pod} did not answer within {seconds} s")]
    Timeout {
        /// The pod exec'd into.
        pod: String,
        /// The timeout.
        seconds: u64,
    },
    /// Cartridge (or Lua) answered with an error.
    #[error("Cartridge refused {call}: {message}")]
    Refused {
        /// The admin function called.
        call: &'static str,
        /// Cartridge's error message.
        message: String,
    },
    /// The reply was not what the protocol or the projection promises.
    #[error("unexpected reply to {call}: {message}")]
    Protocol {
        /// The admin function called.
        call: &'static str,
        /// What was wrong with it.
        message: String,
    },
}

impl TopologyError {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Unreachable { .. } => Reason::ConsoleUnreachable,
            Self::Timeout { .. } => Reason::ConsoleTimeout,
            Self::Refused { .. } => Reason::CartridgeRefused,
            Self::Protocol { .. } => Reason::ConsoleProtocol,
        }
    }
}

/// Cartridge's admin API as the controllers use it, through one instance.
#[async_trait]
pub trait Topology: Send + Sync {
    /// `admin_probe_server(uri)`: the instance behind `uri` answers.
    async fn probe(&self, uri: &str) -> Result<(), TopologyError>;

    /// Replica sets with their servers, masters, bucket counts and
    /// replication health (`admin_get_replicasets` and per-server stats).
    /// Empty when the instance is not part of a configured cluster yet.
    async fn replicasets(&self) -> Result<Vec<ReplicasetInfo>, TopologyError>;

    /// `admin_edit_topology`: join (all new servers of a replica set in one
    /// call), set roles/weight/all_rw, reorder failover priority (switches
    /// the master in disabled and eventual failover), expel.
    async fn edit(&self, edit: &TopologyEdit) -> Result<(), TopologyError>;

    /// `failover_promote` of `instance` in `replicaset` when the failover
    /// mode appoints the active master (stateful, raft); `Ok(false)`, and
    /// nothing done, in the other modes, where [`Topology::edit`]'s failover
    /// priority switched it already.
    async fn promote(&self, replicaset: &str, instance: &str) -> Result<bool, TopologyError>;

    /// `admin_bootstrap_vshard()`, reporting whether it was already done.
    async fn bootstrap_vshard(&self) -> Result<VshardBootstrap, TopologyError>;

    /// `failover_get_params()`.
    async fn failover(&self) -> Result<FailoverParams, TopologyError>;

    /// `failover_set_params(params)`.
    async fn set_failover(&self, params: &FailoverParams) -> Result<(), TopologyError>;

    /// `config_get_readonly()`, the named sections only (absent ones are
    /// left out of the map).
    async fn config(&self, sections: &[String]) -> Result<Map<String, Value>, TopologyError>;

    /// `config_patch_clusterwide(patch)`: a `null` value deletes a section.
    async fn patch_config(&self, patch: &Map<String, Value>) -> Result<(), TopologyError>;
}

/// The pod whose instance a [`Topology`] talks through, and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceTarget {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod (also the instance name).
    pub pod: String,
    /// The container to exec in; `None`: the pod's first.
    pub container: Option<String>,
    /// The console command (`{instance}` already substituted).
    pub command: Vec<String>,
}

impl InstanceTarget {
    /// The console of `pod`, reached as `access` says (the default profile
    /// when `None`), `{instance}` replaced by the pod's name. `access` comes
    /// from [`crate::console::access::ConsolePolicy::resolve`], the one
    /// place that decides which command may run.
    pub fn for_pod(namespace: &str, pod: &str, access: Option<&ConsoleAccess>) -> Self {
        let default;
        let access = match access {
            Some(access) => access,
            None => {
                default = ConsoleAccess::default();
                &default
            }
        };
        let command = access
            .command
            .iter()
            .map(|arg| arg.replace("{instance}", pod))
            .collect();
        Self {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: access.container.clone(),
            command,
        }
    }
}

/// Makes a [`Topology`] for a pod.
pub trait Connector: Send + Sync {
    /// A topology client that talks through `target`'s instance.
    fn connect(&self, target: &InstanceTarget) -> Arc<dyn Topology>;
}
