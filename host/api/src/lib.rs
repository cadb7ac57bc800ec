//! The operator's custom resources, `tarantool.io/v1alpha1` `Cluster` and
//! `Role`, as Rust types. Their CRDs are generated from these types
//! ([`crds`]) and kept in `crds/` by `tarantool-operator crds --write crds/`.
//!
//! - [`cluster`]: the Cluster (roles, failover, config, vshard, console).
//! - [`failover`]: Cartridge failover settings.
//! - [`role`]: the Role (replica sets, vshard, template, status).
//! - [`update_strategy`]: the Role's update strategy selector.
//! - [`conditions`]: metav1 conditions and how to set them.
//! - [`reasons`]: every condition and Event reason the operator writes.
//! - [`text`]: the one bound every message passes before a condition,
//!   an Event or a log line.
//! - `validation` (internal): the CEL rules checked at admission.
//! - `schema` (internal): schema helpers (free-form objects, compact embedded types).
//! - [`crds`]: the generated CRDs as YAML files.
//! - [`maintenance`]: maintenance windows, when a rollout may start.
//! - [`labels`]: the labels on every object the operator owns (how it and
//!   its users select them).
//! - [`names`]: the names of a Role's objects (`<role>-<ordinal>-<hash>`).

// Each crate's public face is what other crates use; the rest is pub(crate).
#![warn(unreachable_pub)]

pub mod cluster;
pub mod conditions;
pub mod crds;
pub mod failover;
pub mod labels;
pub mod maintenance;
pub mod names;
pub mod reasons;
pub mod role;
mod schema;
pub mod text;
pub mod update_strategy;
mod validation;

pub use cluster::{
    AppliedSettings, ClientService, Cluster, ClusterPhase, ClusterSpec, ClusterStatus,
    ClusterVshard, Console, ConsoleProfile, RoleRef,
};
pub use failover::{
    Etcd2Params, Failover, FailoverMode, SecretKeyRef, StateProvider, StateboardParams,
};
pub use reasons::Reason;
pub use role::{
    DrainProgress, InstanceRemoval, InstanceStage, MasterSwitch, RemovalStage, ReplicasetStatus,
    ReplicasetTemplate, Role, RolePhase, RoleSpec, RoleStatus, RoleVshard, RolloutPreview,
    UpdateProgress,
};
pub use update_strategy::{ComponentLocation, ConfigMapKeyRef, StrategySelector, UpdateStrategy};

/// API group of the custom resources.
pub const GROUP: &str = "tarantool.io";
/// API version of the custom resources.
pub const VERSION: &str = "v1alpha1";

#[cfg(test)]
mod tests;
