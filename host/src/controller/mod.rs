//! The two controllers, each a short pipeline of named steps.
//!
//! - [`cluster`]: Cluster -> Roles ownership -> client Service -> wait for
//!   Roles -> topology leader -> bootstrap -> failover -> config.
//! - [`role`]: Role -> its Cluster -> StatefulSets and Service -> join ->
//!   status.
//! - [`context`]: what every reconcile gets (client, topology connector,
//!   events, metrics, settings).
//! - [`error`]: the one error type, with a label per kind for metrics.
//! - [`pipeline`]: running steps in order, timing them, stopping early.
//! - `lifecycle`: one pass, the same for both controllers: the steps
//!   under a deadline, then the status, then when to look again.
//! - [`metrics`]: Prometheus metrics of reconciles and steps.
//! - [`fleet`]: what each object's last pass concluded, for the gauges
//!   of Clusters, Roles, rollouts and drains.
//! - [`events`]: Kubernetes Events for every action and refusal.
//! - [`run`]: both controllers on one client, until shutdown (the wiring
//!   only: the controllers do not import it).
//! - [`cache`]: the stores a Role pass reads, and the deletions they do
//!   not show yet.
//! - [`wake`]: which changes of its own objects wake a controller (not
//!   its own status writes).

pub(crate) mod backoff;
pub(crate) mod cache;
pub(crate) mod claim;
pub(crate) mod cluster;
pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod fleet;
pub(crate) mod lifecycle;
pub(crate) mod members;
pub mod metrics;
#[cfg(test)]
mod monitoring_check;
pub(crate) mod owned;
pub(crate) mod pipeline;
pub mod role;
pub mod run;
pub(crate) mod status;
#[cfg(test)]
mod steps_doc;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod wake;

pub use context::{Context, Settings};
pub use error::Error;
