//! How loads and calls share the engine: concurrent loads of the same bytes
//! compile once, a name section is checked before compiling, pins can be
//! required, the memory cache has a byte budget, and one Role's slow
//! strategies cannot take the call slots of another Role or of a built-in.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use tarantool_operator_strategy::registry::{RegistryError, SourceError, StrategySelector};
use tarantool_operator_strategy::validate::{InvalidComponent, NAME_SECTION};
use tarantool_operator_strategy::{
    Caller, ComponentLocation, ComponentSource, LoadError, PlanError, Planner, Registry,
    SandboxLimits, StrategyEngine, builtin, guard,
};

fn example() -> Vec<u8> {
    std::fs::read(builtin::EXAMPLE_COMPONENT_PATH).expect("the example is built")
}

/// `bytes` with a component-level custom section naming it `name`.
fn with_name_section(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut section = Vec::new();
    section.push(NAME_SECTION.len() as u8);
    section.extend_from_slice(NAME_SECTION.as_bytes());
    section.extend_from_slice(name.as_bytes());
    out.push(0); // custom section
    assert!(section.len() < 0x80, "a one-byte size in this test");
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

#[test]
fn concurrent_loads_of_the_same_bytes_compile_once() {
    let engine = Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"));
    let bytes = Arc::new(example());
    let start = Arc::new(Barrier::new(4));
    let loads: Vec<_> = (0..4)
        .map(|_| {
            let (engine, bytes, start) = (engine.clone(), bytes.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                engine.load(&bytes, None).expect("loads")
            })
        })
        .collect();
    let loaded: Vec<_> = loads
        .into_iter()
        .map(|l| l.join().expect("joins"))
        .collect();
    assert!(loaded.iter().all(|s| Arc::ptr_eq(s, &loaded[0])));
    assert_eq!(engine.fresh_loads(), 1);
}

#[test]
fn a_name_section_is_checked_before_compiling() {
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    let named = with_name_section(&example(), "Canary");
    // (bytes, name asked for, refused before compiling?)
    let cases = [
        (&named, "Canary", false),
        (&named, "SwitchMasterUpdate", true),
    ];
    for (bytes, asked, refused) in cases {
        match engine.load_named(bytes, None, Some(asked)) {
            Ok(strategy) => {
                assert!(!refused, "{asked}");
                assert_eq!(strategy.info().name, "Canary");
            }
            Err(LoadError::Invalid(InvalidComponent::NameMismatch { requested, found })) => {
                assert!(refused, "{asked}");
                assert_eq!((requested.as_str(), found.as_str()), (asked, "Canary"));
            }
            Err(other) => panic!("{asked}: {other}"),
        }
    }
    // A section that lies about the name fails the load after describe().
    let liar = with_name_section(&example(), "Liar");
    assert!(matches!(
        engine.load_named(&liar, None, None),
        Err(LoadError::BadInfo(_))
    ));
}

struct NeverFetched;

impl ComponentSource for NeverFetched {
    fn fetch(&self, _: &ComponentLocation) -> Result<Vec<u8>, SourceError> {
        panic!("an unpinned component must be refused before it is fetched")
    }
}

#[test]
fn pins_can_be_required() {
    let engine = Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"));
    let registry = Registry::new(engine).require_pinned(true);
    let unpinned = StrategySelector {
        name: "Canary".into(),
        location: Some(ComponentLocation::File(
            builtin::EXAMPLE_COMPONENT_PATH.into(),
        )),
        sha256: None,
    };
    let err = registry
        .resolve(&unpinned, &NeverFetched)
        .expect_err("refused");
    assert!(matches!(err, RegistryError::Unpinned { .. }), "{err}");
    assert_eq!(err.reason().to_string(), "StrategyNotPinned");
    // Built-ins need no pin.
    let builtin = StrategySelector {
        name: builtin::ON_DELETE.into(),
        location: None,
        sha256: None,
    };
    registry.resolve(&builtin, &NeverFetched).expect("built-in");
}

#[test]
fn the_memory_cache_keeps_to_its_byte_budget() {
    let limits = SandboxLimits {
        max_loaded_bytes: 1,
        ..SandboxLimits::default()
    };
    let engine = StrategyEngine::new(limits, None).expect("engine");
    let on_delete = builtin::find(builtin::ON_DELETE).expect("built-in").wasm;
    let example = example();
    engine.load(on_delete, None).expect("loads");
    engine.load(&example, None).expect("loads");
    assert_eq!(engine.fresh_loads(), 2);
    // The budget holds one: the example stays, OnDelete was dropped.
    engine.load(&example, None).expect("loads");
    assert_eq!(engine.fresh_loads(), 2);
    engine.load(on_delete, None).expect("loads");
    assert_eq!(engine.fresh_loads(), 3);
}

#[test]
fn slow_custom_strategies_cannot_take_the_slots_of_built_ins_or_of_other_roles() {
    // A small pool: 4 slots, 1 reserved for built-ins, 1 per Role.
    let limits = SandboxLimits {
        max_concurrent_calls: 4,
        reserved_builtin_calls: 1,
        max_calls_per_owner: 1,
        cpu_budget: Duration::from_millis(300),
        slot_wait: Duration::from_millis(50),
        ..SandboxLimits::default()
    };
    let engine = Arc::new(StrategyEngine::new(limits, None).expect("engine"));
    let looping = engine
        .load(
            &support::build_guest("hostile-strategy", &["endless-loop"]),
            None,
        )
        .expect("loads");
    let good = Registry::new(engine.clone())
        .builtin(builtin::SWITCH_MASTER_UPDATE)
        .expect("built-in");
    let view = support::role(2, 3);
    // Six Roles with endless loops at once: three get slots (the custom
    // share), the others wait and fail busy, none takes the reserved one.
    let start = Arc::new(Barrier::new(7));
    let slow: Vec<_> = (0..6)
        .map(|i| {
            let (looping, view, start) = (looping.clone(), view.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                looping
                    .plan_as(Caller::Owner(&format!("ns/slow-{i}")), &view)
                    .map(|_| ())
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(20));
    // Meanwhile a built-in plans for another Role.
    let (decision, _) = good
        .plan_as(Caller::Owner("ns/good"), &view)
        .expect("the built-in gets the reserved slot");
    guard::check(&view, &decision).expect("and plans well");
    let outcomes: Vec<_> = slow.into_iter().map(|t| t.join().expect("joins")).collect();
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Err(PlanError::CpuBudget(_) | PlanError::Busy { .. })
            ),
            "{outcome:?}"
        );
    }
    // The same Role twice at once: whichever call gets the Role's one slot
    // loops until its budget; the other waits and fails busy, for its
    // Role's share (not the pool) being full.
    let (first, second) = {
        let (looping2, view2) = (looping.clone(), view.clone());
        let first = std::thread::spawn(move || looping2.plan_as(Caller::Owner("ns/one"), &view2));
        std::thread::sleep(Duration::from_millis(50));
        let second = looping.plan_as(Caller::Owner("ns/one"), &view);
        (first.join().expect("joins"), second)
    };
    let busy = |r: &Result<_, PlanError>| matches!(r, Err(PlanError::Busy { owner: true, .. }));
    assert!(
        busy(&first) != busy(&second),
        "one of the two waits: {first:?} {second:?}"
    );
    // And the built-in still plans afterwards through the Planner trait.
    good.plan(&view).expect("plans");
}
