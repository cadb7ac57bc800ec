//! Shared helpers of the harness tests.

// Each test binary compiles this module and uses only part of it.
#[allow(dead_code)]
pub mod apiserver;
#[allow(dead_code)]
pub mod audit;
#[allow(dead_code)]
pub mod double;
#[allow(dead_code)]
pub mod invariants;
#[allow(dead_code)]
pub mod manifests;
#[allow(dead_code)]
pub mod process;
#[allow(dead_code)]
pub mod scenario;
#[allow(dead_code)]
pub mod volumes;
