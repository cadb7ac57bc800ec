//! The embedded wasm built-ins are the same strategies as their native
//! builds: driven through the simulator over the same random Roles, both give
//! identical reports (every step, message, outcome and number). This covers
//! the WIT conversions on both sides of the boundary, which the property tests
//! (native) do not.

use std::sync::Arc;

use cluster_partition_update::ClusterPartitionUpdate;
use on_delete::OnDelete;
use switch_master_update::SwitchMasterUpdate;
use tarantool_operator_strategy::native::Native;
use tarantool_operator_strategy::simulator::{RandomShape, RunLimits, Simulator};
use tarantool_operator_strategy::{Planner, Registry, SandboxLimits, StrategyEngine};

fn registry() -> Registry {
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("an engine");
    Registry::new(Arc::new(engine))
}

fn same_reports(name: &str, native: &dyn Planner) {
    let wasm = registry().builtin(name).expect("a built-in");
    // Up to 10 replica sets: enough variety, and quick through the sandbox.
    let shape = RandomShape {
        replicasets: 1..=10,
        failing_percent: 3,
        ..RandomShape::default()
    };
    for seed in 0..4 {
        let mut a = Simulator::random(seed, &shape).expect("a valid role");
        let mut b = a.clone();
        let from_wasm = a.run(&*wasm, RunLimits::default());
        let from_native = b.run(native, RunLimits::default());
        assert!(!from_wasm.steps.is_empty());
        assert_eq!(from_wasm, from_native, "{name}, seed {seed}");
    }
}

#[test]
fn switch_master_update_is_the_same_in_wasm() {
    same_reports("SwitchMasterUpdate", &Native::<SwitchMasterUpdate>::new());
}

#[test]
fn cluster_partition_update_is_the_same_in_wasm() {
    same_reports(
        "ClusterPartitionUpdate",
        &Native::<ClusterPartitionUpdate>::new(),
    );
}

#[test]
fn on_delete_is_the_same_in_wasm() {
    same_reports("OnDelete", &Native::<OnDelete>::new());
}

#[test]
fn describe_matches_the_native_build() {
    let registry = registry();
    for (name, info) in [
        (
            "SwitchMasterUpdate",
            Native::<SwitchMasterUpdate>::new().describe(),
        ),
        (
            "ClusterPartitionUpdate",
            Native::<ClusterPartitionUpdate>::new().describe(),
        ),
        ("OnDelete", Native::<OnDelete>::new().describe()),
    ] {
        let wasm = registry.builtin(name).expect("a built-in");
        assert_eq!(wasm.info(), &info);
    }
}
