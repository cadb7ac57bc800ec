//! Rolling-update strategies: the wasm engine, the built-ins, the registry that
//! resolves a name to a strategy, the guard that checks every decision, and a
//! simulator that drives a strategy to completion without Kubernetes.
//!
//! The operator's one crate that links wasmtime: the API types
//! (`tarantool-operator-api`) know strategies only by name and location.

// Each crate's public face is what other crates use; the rest is pub(crate).
#![warn(unreachable_pub)]

mod boundary;
pub mod builtin;
mod cache;
pub mod checker;
pub mod engine;
pub mod guard;
pub mod native;
pub mod planner;
pub mod registry;
mod sandbox;
pub mod simulator;
pub mod validate;
mod wasi_stub;

/// The API types, under the name the strategy modules use.
use tarantool_operator_api as api;

pub use engine::{Allocator, LoadError, StrategyEngine, WasmStrategy};
pub use planner::{PlanError, Planner};
pub use registry::{ComponentLocation, ComponentSource, Registry, StrategySelector};
pub use sandbox::{Caller, SandboxLimits};
