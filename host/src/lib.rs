//! tarantool-operator: a Kubernetes operator for Tarantool Cartridge clusters
//! whose rolling-update strategies are sandboxed WebAssembly components.

pub mod api;
pub mod console;
pub mod controller;
pub mod fence;
pub mod resources;
pub mod strategy;
pub mod timeline;
pub mod topology;
