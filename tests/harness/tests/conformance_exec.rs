//! The Cartridge conformance suite (`tarantool_operator_cartridge::topology::conformance`)
//! against the Lua double behind dev-cluster pods: one named test per
//! scenario, each in its own namespace, every call through `pods/exec`
//! (apiserver, kwok) with the operator's default console command and its own
//! Lua chunks, as the operator talks to Cartridge.
//!
//! `host/cartridge/tests/conformance.rs` runs the same scenarios against the Rust fake
//! and a local double without the control plane.

mod support;

use std::future::Future;
use std::sync::Arc;

use support::double::PodDouble;
use tarantool_operator_cartridge::topology::conformance::{CartridgeModel, ConformanceError};
use test_harness::run;

async fn through_pods<F, Fut>(name: &str, scenario: F)
where
    F: FnOnce(Arc<dyn CartridgeModel>) -> Fut,
    Fut: Future<Output = Result<(), ConformanceError>>,
{
    // The name labels the namespace: at most 63 characters, a DNS label.
    let short: String = name.replace('_', "-").chars().take(48).collect();
    let label = format!("cf-{}", short.trim_end_matches('-'));
    run(&label, |t| async move {
        let model = Arc::new(PodDouble::new(&t).map_err(|e| e.to_string())?);
        let outcome = scenario(model.clone()).await;
        model.reset().await;
        outcome.map_err(|e| format!("{name}, against the double over exec: {e}"))
    })
    .await;
}

tarantool_operator_cartridge::cartridge_conformance_tests!(
    through_pods,
    #[ignore = "needs the local control plane: make test-control-plane"]
);
