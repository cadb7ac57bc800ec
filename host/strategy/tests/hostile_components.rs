//! Hostile and broken components, built from `tests/hostile-strategy` with one
//! cargo feature per misbehaviour. Each must be refused with a typed error,
//! and the host must stay healthy: the next call to a good component works.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use strategy_sdk::RoleView;
use tarantool_operator_strategy::guard::{self, GuardError};
use tarantool_operator_strategy::validate::InvalidComponent;
use tarantool_operator_strategy::{
    LoadError, PlanError, Planner, Registry, SandboxLimits, StrategyEngine, WasmStrategy, builtin,
};

const FEATURES: &[&str] = &[
    "endless-loop",
    "endless-describe",
    "memory-bomb",
    "deep-recursion",
    "panic",
    "huge-output",
    "huge-state",
    "log-flood",
    "read-file",
    "sleep",
    "unknown-pod",
    "over-budget",
    "master-first",
    "wrong-world",
    "wait-forever",
];

/// Every hostile component, built once per test binary.
fn hostile(feature: &str) -> &'static [u8] {
    static BUILT: OnceLock<BTreeMap<&'static str, Vec<u8>>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            FEATURES
                .iter()
                .map(|f| (*f, support::build_guest("hostile-strategy", &[f])))
                .collect()
        })
        .get(feature)
        .unwrap_or_else(|| panic!("no hostile feature {feature}"))
}

/// One engine shared by all tests, as in the operator: a hostile component
/// must not harm the engine for anybody else.
fn engine() -> &'static Arc<StrategyEngine> {
    static ENGINE: OnceLock<Arc<StrategyEngine>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"))
    })
}

fn view() -> RoleView {
    support::role(2, 3)
}

fn load(feature: &str) -> Arc<WasmStrategy> {
    engine()
        .load(hostile(feature), None)
        .unwrap_or_else(|e| panic!("{feature} should load: {e}"))
}

fn plan_err(feature: &str) -> PlanError {
    let err = load(feature)
        .plan(&view())
        .expect_err("a hostile plan must fail");
    assert_good_component_still_works();
    err
}

fn guard_err(feature: &str) -> GuardError {
    let view = view();
    let decision = load(feature).plan(&view).expect("the plan itself succeeds");
    let err = guard::check(&view, &decision).expect_err("the guard must refuse it");
    assert_good_component_still_works();
    err
}

fn assert_good_component_still_works() {
    let registry = Registry::new(engine().clone());
    let good = registry
        .builtin(builtin::SWITCH_MASTER_UPDATE)
        .expect("built-in loads");
    let view = view();
    let decision = good.plan(&view).expect("a good component still plans");
    guard::check(&view, &decision).expect("and its decision passes the guard");
}

#[test]
fn an_endless_loop_is_stopped_at_its_cpu_budget() {
    assert_eq!(
        plan_err("endless-loop"),
        PlanError::CpuBudget(SandboxLimits::default().cpu_budget)
    );
}

#[test]
fn an_endless_describe_fails_the_load_and_is_not_retried() {
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    for _ in 0..2 {
        match engine.load(hostile("endless-describe"), None) {
            Err(LoadError::Describe(PlanError::CpuBudget(_))) => {}
            other => panic!("expected a describe deadline, got {other:?}"),
        }
    }
    // The second load was answered from memory, not validated and run again.
    assert_eq!(engine.fresh_loads(), 1);
    assert_good_component_still_works();
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    assert_eq!(
        plan_err("memory-bomb"),
        PlanError::MemoryLimit {
            limit: SandboxLimits::default().max_memory_bytes
        }
    );
}

#[test]
fn deep_recursion_overflows_the_wasm_stack_not_the_host() {
    assert_eq!(plan_err("deep-recursion"), PlanError::StackOverflow);
}

#[test]
fn a_panic_is_reported_with_its_message() {
    match plan_err("panic") {
        PlanError::Panicked(message) => {
            assert!(message.contains("boom at 2 replica sets"), "{message}")
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn a_huge_message_is_refused() {
    match plan_err("huge-output") {
        PlanError::OutputTooLarge { what, size, max } => {
            assert_eq!(what, "message");
            assert_eq!(size, 8 << 20);
            assert_eq!(max, SandboxLimits::default().max_message_bytes);
        }
        other => panic!("expected output too large, got {other:?}"),
    }
}

#[test]
fn a_huge_state_is_refused() {
    assert!(matches!(
        plan_err("huge-state"),
        PlanError::OutputTooLarge { what: "state", .. }
    ));
}

#[test]
fn a_log_flood_is_bounded() {
    // Its own engine with a long deadline: 20 000 host calls must finish even
    // on a loaded machine, so that what is checked is the bound on the log.
    let limits = SandboxLimits {
        cpu_budget: std::time::Duration::from_secs(60),
        deadline: std::time::Duration::from_secs(60),
        ..SandboxLimits::default()
    };
    let engine = StrategyEngine::new(limits.clone(), None).expect("engine");
    let strategy = engine.load(hostile("log-flood"), None).expect("loads");
    let (decision, log) = strategy.plan_with_log(&view()).expect("plan finishes");
    assert_eq!(decision.message, "hostile");
    assert_eq!(log.lines.len(), limits.max_log_lines);
    assert_eq!(
        log.dropped,
        hostile_strategy::FLOOD_LINES - limits.max_log_lines
    );
    assert_good_component_still_works();
}

#[test]
fn strings_from_a_component_are_bounded_and_cleaned() {
    let strategy = load("wait-forever");
    let version = &strategy.info().version;
    assert!(version.len() <= 128, "{} bytes", version.len());
    assert!(version.starts_with("1.0\u{FFFD}[2J"), "{version:.20}");
    let (decision, log) = strategy.plan_with_log(&view()).expect("plans");
    assert!(decision.message.len() <= SandboxLimits::default().max_message_bytes);
    assert!(
        !decision.message.contains(['\x1b', '\n']),
        "{:.80}",
        decision.message
    );
    assert_eq!(
        decision.actions,
        vec![strategy_sdk::Action::Wait(guard::MIN_WAIT_SECONDS)]
    );
    assert_eq!(log.lines.len(), 1);
    assert_eq!(log.lines[0].1, "\u{FFFD}]0;owned\u{FFFD}log line second");
    // A 32 MiB error comes back cut, without its escape.
    let mut huge = view();
    huge.max_unavailable = u32::MAX;
    match strategy.plan(&huge) {
        Err(PlanError::Rejected(error)) => {
            assert!(error.len() <= 4096, "{} bytes", error.len());
            assert!(error.starts_with("\u{FFFD}[2Jeee"), "{error:.20}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_good_component_still_works();
}

#[test]
fn reading_a_file_is_denied() {
    match plan_err("read-file") {
        PlanError::Denied(what) => assert!(what.contains("wasi:"), "{what}"),
        other => panic!("expected a denied call, got {other:?}"),
    }
}

#[test]
fn sleeping_is_denied() {
    match plan_err("sleep") {
        PlanError::Denied(what) => assert!(what.contains("wasi:"), "{what}"),
        other => panic!("expected a denied call, got {other:?}"),
    }
}

#[test]
fn a_decision_naming_an_unknown_pod_is_refused() {
    assert!(matches!(
        guard_err("unknown-pod"),
        GuardError::UnknownPod { .. }
    ));
}

#[test]
fn a_decision_over_budget_is_refused() {
    assert!(matches!(
        guard_err("over-budget"),
        GuardError::BudgetExceeded { .. }
    ));
}

#[test]
fn deleting_the_master_first_is_refused() {
    assert!(matches!(
        guard_err("master-first"),
        GuardError::MasterDeletion { .. }
    ));
}

#[test]
fn a_component_of_another_world_is_refused_before_compiling() {
    match engine().load(hostile("wrong-world"), None) {
        Err(LoadError::Invalid(InvalidComponent::WrongWorld { exports })) => {
            assert!(exports.contains("evil:thing/runner"), "{exports}");
        }
        other => panic!("expected wrong world, got {other:?}"),
    }
    assert_good_component_still_works();
}

#[test]
fn bytes_that_are_not_wasm_are_refused() {
    for bytes in [&b"#!/bin/sh\necho pwned\n"[..], b"", b"\0asm\x01\0\0\0"] {
        let err = engine().load(bytes, None).expect_err("refused");
        assert!(matches!(err, LoadError::Invalid(_)), "{err}");
    }
    assert_good_component_still_works();
}

#[test]
fn a_harmless_build_of_the_same_crate_is_accepted() {
    let bytes = support::build_guest("hostile-strategy", &[]);
    let strategy = engine().load(&bytes, None).expect("loads");
    let view = view();
    let decision = strategy.plan(&view).expect("plans");
    guard::check(&view, &decision).expect("an empty decision is fine");
}
