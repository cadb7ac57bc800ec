//! The Cartridge conformance suite (`tarantool_operator_cartridge::topology::conformance`)
//! against both models of Cartridge, one named test per scenario in each:
//!
//! - `fake::<scenario>`: the Rust fake the controller unit tests use;
//! - `double::<scenario>`: the Lua double (`tests/tarantool/cartridge_double.lua`)
//!   in a local Tarantool process, each scenario in a namespace of its own,
//!   reached exactly as the operator reaches a pod: its default console
//!   command (`tarantoolctl connect $TARANTOOL_RUN_DIR/<pod>.control`, the
//!   chunk on stdin) and its own Lua chunks.
//!
//! Tarantool is required: without `tarantool`/`tarantoolctl` the double's
//! tests fail with a message rather than pass without checking anything.

mod support;

use std::future::Future;
use std::sync::Arc;

use support::double::LocalDouble;
use tarantool_operator_cartridge::topology::conformance::{
    CartridgeModel, ConformanceError, FakeModel,
};

mod fake {
    use super::*;

    async fn run<F, Fut>(name: &str, scenario: F)
    where
        F: FnOnce(Arc<dyn CartridgeModel>) -> Fut,
        Fut: Future<Output = Result<(), ConformanceError>>,
    {
        if let Err(e) = scenario(Arc::new(FakeModel::default())).await {
            panic!("{name}, against the Rust fake: {e}");
        }
    }

    tarantool_operator_cartridge::cartridge_conformance_tests!(run);
}

mod double {
    use super::*;

    async fn run<F, Fut>(name: &str, scenario: F)
    where
        F: FnOnce(Arc<dyn CartridgeModel>) -> Fut,
        Fut: Future<Output = Result<(), ConformanceError>>,
    {
        let model = LocalDouble::start(name).await;
        if let Err(e) = scenario(model.clone()).await {
            panic!(
                "{name}, against the Lua double: {e}\n--- double.log:\n{}",
                model.log()
            );
        }
    }

    tarantool_operator_cartridge::cartridge_conformance_tests!(run);
}
