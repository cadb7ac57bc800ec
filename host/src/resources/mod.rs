//! The Kubernetes objects the operator owns, built from the custom
//! resources: names and labels, one StatefulSet per replica set, the Role's
//! headless Service and the Cluster's client Service, and applying them only
//! when they changed.
//!
//! - [`names`]: `<role>-<ordinal>-<hash>` and the template hash (part of
//!   the API contract too, so they live in the API crate).
//! - [`labels`]: the labels every owned object carries, and selectors (part
//!   of the API contract, so they live in the API crate).
//! - [`statefulset`]: a replica set's StatefulSet.
//! - [`service`]: the headless and the client Service.
//! - [`disruption_budget`]: a replica set's PodDisruptionBudget.
//! - [`apply`]: server-side apply, skipped when nothing changed.
//! - [`epochs`]: per-ordinal instance epochs, so an ordinal scaled away and
//!   back joins Cartridge under a new UUID.

pub(crate) mod apply;
pub(crate) mod disruption_budget;
pub(crate) mod epochs;
pub(crate) mod service;
pub(crate) mod statefulset;

pub use crate::api::{labels, names};
