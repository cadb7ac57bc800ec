//! The wasm engine with well-behaved components: built-ins load and plan,
//! compile once per digest, pinning, the on-disk cache, both allocators.

mod support;

use std::sync::Arc;

use strategy_sdk::Action;
use tarantool_operator_strategy::engine::Allocator;
use tarantool_operator_strategy::registry::{FileSource, StrategySelector};
use tarantool_operator_strategy::{
    ComponentLocation, LoadError, Planner, Registry, SandboxLimits, StrategyEngine, builtin,
};

fn engine() -> Arc<StrategyEngine> {
    Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"))
}

#[test]
fn every_builtin_loads_and_names_itself_as_registered() {
    let registry = Registry::new(engine());
    for name in Registry::builtin_names() {
        let strategy = registry.builtin(name).expect("built-in loads");
        assert_eq!(strategy.info().name, name);
        assert_eq!(strategy.wit_version(), "0.1.0");
        assert!(!strategy.info().description.is_empty());
    }
}

#[test]
fn switch_master_update_plans_through_wasm_like_natively() {
    let registry = Registry::new(engine());
    let wasm = registry
        .builtin(builtin::SWITCH_MASTER_UPDATE)
        .expect("load");
    let view = support::role(3, 3);
    let decision = wasm.plan(&view).expect("plan");
    let native = <switch_master_update::SwitchMasterUpdate as strategy_sdk::Strategy>::plan(&view)
        .expect("native plan");
    assert_eq!(decision, native, "wasm and native must decide the same");
    assert!(
        decision
            .actions
            .iter()
            .any(|a| matches!(a, Action::DeletePod(_))),
        "an outdated role gets deletions: {decision:?}"
    );
    // A fresh store per call: the same view gives the same answer.
    assert_eq!(wasm.plan(&view).expect("plan again"), decision);
}

#[test]
fn a_component_is_compiled_once_per_digest() {
    let registry = Registry::new(engine());
    let a = registry.builtin(builtin::ON_DELETE).expect("load");
    let b = registry.builtin(builtin::ON_DELETE).expect("load again");
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(registry.engine().fresh_loads(), 1);
}

#[test]
fn a_pinned_digest_must_match() {
    let engine = engine();
    let bytes = builtin::find(builtin::ON_DELETE).expect("built-in").wasm;
    let good = engine.load(bytes, None).expect("load").digest().hex();
    assert!(engine.load(bytes, Some(&good.to_uppercase())).is_ok());
    let bad = "0".repeat(64);
    match engine.load(bytes, Some(&bad)) {
        Err(LoadError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, bad);
            assert_eq!(actual, good);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

#[test]
fn a_custom_component_resolves_from_a_file_and_must_carry_the_requested_name() {
    let registry = Registry::new(engine());
    let path = std::path::PathBuf::from(env!("TARANTOOL_OPERATOR_EXAMPLE_WASM"));
    let selector = |name: &str| StrategySelector {
        name: name.into(),
        location: Some(ComponentLocation::File(path.clone())),
        sha256: None,
    };
    let loaded = registry
        .resolve(&selector("Canary"), &FileSource)
        .expect("resolve");
    assert_eq!(loaded.info().name, "Canary");
    let err = registry
        .resolve(&selector("SomethingElse"), &FileSource)
        .expect_err("name mismatch");
    assert_eq!(
        err.reason(),
        tarantool_operator_api::Reason::StrategyNameMismatch
    );
    let err = registry
        .resolve(
            &StrategySelector {
                name: "Nope".into(),
                location: None,
                sha256: None,
            },
            &FileSource,
        )
        .expect_err("unknown");
    assert!(err.to_string().contains("SwitchMasterUpdate"), "{err}");
}

#[test]
fn the_disk_cache_is_used_and_survives_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = builtin::find(builtin::ON_DELETE).expect("built-in").wasm;
    let first =
        StrategyEngine::new(SandboxLimits::default(), Some(dir.path().into())).expect("engine");
    first.load(bytes, None).expect("compile and store");
    let artifacts: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "one compiled artifact: {artifacts:?}");

    // A second engine loads from the cache (file untouched)...
    let before = std::fs::read(&artifacts[0]).expect("artifact");
    let second =
        StrategyEngine::new(SandboxLimits::default(), Some(dir.path().into())).expect("engine");
    let view = support::role(1, 1);
    second
        .load(bytes, None)
        .expect("load cached")
        .plan(&view)
        .expect("plan");
    assert_eq!(std::fs::read(&artifacts[0]).expect("artifact"), before);

    // ...and a corrupted artifact is a miss: recompiled, rewritten, working.
    std::fs::write(&artifacts[0], b"garbage").expect("corrupt");
    let third =
        StrategyEngine::new(SandboxLimits::default(), Some(dir.path().into())).expect("engine");
    third
        .load(bytes, None)
        .expect("recompile")
        .plan(&view)
        .expect("plan");
    assert_eq!(std::fs::read(&artifacts[0]).expect("artifact"), before);
}

#[test]
fn both_allocators_run_strategies() {
    for allocator in [Allocator::Pooling, Allocator::OnDemand] {
        let engine = StrategyEngine::with_allocator(SandboxLimits::default(), None, allocator)
            .expect("engine");
        assert_eq!(engine.allocator(), allocator);
        let bytes = builtin::find(builtin::SWITCH_MASTER_UPDATE)
            .expect("built-in")
            .wasm;
        let decision = engine
            .load(bytes, None)
            .expect("load")
            .plan(&support::role(2, 3))
            .expect("plan");
        assert!(!decision.done);
    }
}

#[test]
fn concurrent_calls_share_one_compiled_component() {
    let engine = engine();
    let bytes = builtin::find(builtin::SWITCH_MASTER_UPDATE)
        .expect("built-in")
        .wasm;
    let strategy = engine.load(bytes, None).expect("load");
    let view = support::role(4, 3);
    let expected = strategy.plan(&view).expect("plan");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| (0..20).map(|_| strategy.plan(&view)).collect::<Vec<_>>()))
            .collect();
        for handle in handles {
            for result in handle.join().expect("thread") {
                assert_eq!(result.as_ref(), Ok(&expected));
            }
        }
    });
}
