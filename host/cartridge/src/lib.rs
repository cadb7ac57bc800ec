//! The operator's Cartridge client: how it reaches a Tarantool instance and
//! what it asks of Cartridge there.
//!
//! - [`console`]: the admin console, over `pods/exec` (or a local command or
//!   socket), one Lua chunk per call.
//! - [`topology`]: Cartridge's admin API (join, edit, failover, vshard,
//!   config) as Lua chunks over the console, behind the [`topology::Topology`]
//!   trait the controllers use.
//!
//! With the `testing` feature (tests only, never the release binary) it also
//! carries the in-memory Cartridge (`topology::fake`) and the conformance
//! suite that keeps the fake and the Lua double one model of Cartridge
//! (`topology::conformance`, `cartridge_conformance_tests!`).

// Each crate's public face is what other crates use; the rest is pub(crate).
#![warn(unreachable_pub)]

pub mod console;
pub mod topology;

/// The API types, under the name the console and topology modules use.
use tarantool_operator_api as api;
