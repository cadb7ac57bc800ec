//! tarantool-operator: a Kubernetes operator for Tarantool Cartridge clusters
//! whose rolling-update strategies are sandboxed WebAssembly components.
//!
//! This crate is the operator: the controllers, the objects they own, the
//! fence and the `tarantool-operator` binary. The parts it is built from are
//! crates of their own, re-exported here under their module names:
//!
//! - [`api`] (`tarantool-operator-api`): the Cluster and Role types, their
//!   admission rules and CRDs; no wasmtime.
//! - [`strategy`] (`tarantool-operator-strategy`): the wasm engine, sandbox,
//!   guard, registry of built-ins, simulator and checker.
//! - [`console`] and [`topology`] (`tarantool-operator-cartridge`): the
//!   admin console and Cartridge's API over it.
//! - [`timeline`] (`tarantool-operator-timeline`): progress, recording and
//!   drawing updates.

// Each crate's public face is what the binary and the in-process harness
// use; the rest is pub(crate).
#![warn(unreachable_pub)]

pub use tarantool_operator_api as api;
pub use tarantool_operator_cartridge::{console, topology};
pub use tarantool_operator_strategy as strategy;
pub use tarantool_operator_timeline as timeline;

/// The Cartridge conformance suite's test generator (feature `testing`).
#[cfg(feature = "testing")]
pub use tarantool_operator_cartridge::cartridge_conformance_tests;

pub mod controller;
pub mod fence;
pub mod reachability;
pub mod resources;
pub mod webhook;
