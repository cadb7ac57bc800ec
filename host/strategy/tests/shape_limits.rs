//! What a component may declare is bounded before anything is compiled:
//! each hostile shape of issue 14 is refused by the census with its named
//! reason, and every real strategy (the built-ins, the example, a harmless
//! build of the hostile crate) passes. Times are measured by the `refusal`
//! benchmark, never asserted here.

#[path = "support/hostile_wasm.rs"]
mod hostile_wasm;
mod support;

use std::sync::Arc;

use tarantool_operator_strategy::validate::{self, InvalidComponent, ShapeLimits};
use tarantool_operator_strategy::{
    LoadError, Registry, SandboxLimits, StrategyEngine, builtin, guard,
};

#[test]
fn every_hostile_shape_is_refused_with_its_reason() {
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    for (what, bytes, limit) in hostile_wasm::hostile_cases() {
        match engine.load(&bytes, None) {
            Err(LoadError::Invalid(InvalidComponent::OverLimit {
                limit: found, max, ..
            })) => {
                assert_eq!(found, limit, "{what}: refused for the wrong reason");
                assert!(max > 0, "{what}");
            }
            other => panic!(
                "{what} ({} bytes): expected {limit:?}, got {other:?}",
                bytes.len()
            ),
        }
    }
    // Nothing was compiled: each was refused by the census, and remembered.
    let fresh = engine.fresh_loads();
    for (_, bytes, _) in hostile_wasm::hostile_cases().into_iter().take(2) {
        let _ = engine.load(&bytes, None);
    }
    assert_eq!(
        engine.fresh_loads(),
        fresh,
        "refusals are remembered by digest"
    );
}

#[test]
fn the_refusal_names_the_bound() {
    let err = validate::validate(
        &hostile_wasm::nested_components(10_000),
        16 << 20,
        &ShapeLimits::default(),
    )
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "declares 9 levels of nested components/modules (or more); a strategy may declare at most 8"
    );
}

#[test]
fn shapes_just_inside_the_bounds_pass_the_census() {
    use hostile_wasm::*;
    let limits = ShapeLimits::default();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("8 nested components", nested_components(8)),
        ("1,000 nested blocks", nested_blocks(1_000)),
        ("2,000 functions", many_functions(2_000)),
        ("2,000 locals", many_locals(2_000)),
        ("16 memories", many_memories(16)),
    ];
    for (what, bytes) in cases {
        validate::census(&bytes, &limits).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// The real strategies, with their census; the numbers in the doc comment
/// of `ShapeLimits` come from here (`cargo test -p
/// tarantool-operator-strategy --test shape_limits -- --nocapture`).
#[test]
fn real_strategies_pass_and_their_shapes_are_far_inside_the_bounds() {
    let limits = ShapeLimits::default();
    let mut real: Vec<(String, Vec<u8>)> = Registry::builtin_names()
        .filter_map(|name| Some((name.to_string(), builtin::find(name)?.wasm.to_vec())))
        .collect();
    real.push((
        "example Canary".into(),
        std::fs::read(builtin::EXAMPLE_COMPONENT_PATH).expect("the example is built"),
    ));
    real.push((
        "hostile-strategy (harmless build)".into(),
        support::build_guest("hostile-strategy", &[]),
    ));
    for (name, bytes) in &real {
        let shape = validate::validate(bytes, 16 << 20, &limits)
            .unwrap_or_else(|e| panic!("{name} must pass: {e}"));
        let c = &shape.census;
        println!(
            "{name}: {} bytes, nesting {}, nested {}, instances {}, functions {}, largest body {}, \
             code {}, locals {}, blocks {}, types {}, memories {}, tables {}, declarations {}",
            bytes.len(),
            c.nesting,
            c.nested,
            c.instances,
            c.functions,
            c.largest_body,
            c.code_bytes,
            c.most_locals,
            c.block_nesting,
            c.types,
            c.memories,
            c.tables,
            c.declarations
        );
        // At least 4x headroom on every count.
        let within = |found: u64, max: u64| found * 4 <= max;
        assert!(within(c.nesting, limits.max_nesting), "{name} nesting");
        assert!(
            within(c.functions, limits.max_functions),
            "{name} functions"
        );
        assert!(within(c.code_bytes, limits.max_code_bytes), "{name} code");
        assert!(
            within(c.largest_body, limits.max_function_bytes),
            "{name} body"
        );
        assert!(
            within(c.block_nesting, limits.max_block_nesting),
            "{name} blocks"
        );
        assert!(within(c.types, limits.max_types), "{name} types");
    }
    // The built-ins and the example carry their name for the check before
    // compiling.
    for (name, bytes) in &real[..4] {
        let census = validate::census(bytes, &limits).expect("census");
        let expected = name.strip_prefix("example ").unwrap_or(name);
        assert_eq!(census.name.as_deref(), Some(expected), "{name}");
    }
    // And they still load and plan.
    let engine = Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"));
    let registry = Registry::new(engine.clone());
    let view = support::role(2, 3);
    for name in Registry::builtin_names() {
        let strategy = registry.builtin(name).expect("built-in loads");
        let decision =
            tarantool_operator_strategy::Planner::plan(strategy.as_ref(), &view).expect("plans");
        guard::check(&view, &decision).expect("passes the guard");
    }
}
