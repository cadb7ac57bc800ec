//! Shared helpers of the harness tests.

pub mod operator;
