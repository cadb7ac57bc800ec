//! plan() through wasm against the same strategy called natively, at 3, 30,
//! 300 and 3000 pods, both including building the view from the simulator's
//! state (what the operator does from its pod cache each reconcile).
//!
//! Criterion measures each path; a summary at the end times both paths
//! interleaved in one run and prints their ratio, plus the fixed cost of a
//! call (a fresh store, an instance, an empty view in and out).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use strategy_sdk::{RoleView, Strategy};
use switch_master_update::SwitchMasterUpdate;
use tarantool_operator_strategy::simulator::Simulator;
use tarantool_operator_strategy::{
    Planner, Registry, SandboxLimits, StrategyEngine, WasmStrategy, builtin,
};

/// (replica sets, replicas) giving 3, 30, 300 and 3000 pods.
const SHAPES: &[(u32, u32)] = &[(1, 3), (10, 3), (100, 3), (1000, 3)];

fn wasm_strategy() -> Arc<WasmStrategy> {
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    Registry::new(Arc::new(engine))
        .builtin(builtin::SWITCH_MASTER_UPDATE)
        .expect("built-in loads")
}

fn simulator(replicasets: u32, replicas: u32) -> Simulator {
    Simulator::uniform(replicasets, replicas).expect("uniform role")
}

fn native_path(sim: &Simulator) {
    let view = sim.view();
    black_box(SwitchMasterUpdate::plan(black_box(&view)).expect("plan"));
}

fn wasm_path(sim: &Simulator, wasm: &WasmStrategy) {
    let view = sim.view();
    black_box(wasm.plan(black_box(&view)).expect("plan"));
}

fn empty_view() -> RoleView {
    RoleView {
        role: "r".into(),
        max_unavailable: 1,
        ..RoleView::default()
    }
}

fn bench_plan(c: &mut Criterion) {
    let wasm = wasm_strategy();
    let mut group = c.benchmark_group("plan");
    for &(replicasets, replicas) in SHAPES {
        let pods = replicasets * replicas;
        let sim = simulator(replicasets, replicas);
        group.bench_with_input(BenchmarkId::new("native", pods), &sim, |b, sim| {
            b.iter(|| native_path(sim))
        });
        group.bench_with_input(BenchmarkId::new("wasm", pods), &sim, |b, sim| {
            b.iter(|| wasm_path(sim, &wasm))
        });
    }
    group.finish();
    let empty = empty_view();
    c.bench_function("fixed-cost/wasm-empty-view", |b| {
        b.iter(|| black_box(wasm.plan(black_box(&empty)).expect("plan")))
    });
}

/// Fastest time of `f` over `rounds` batches of `batch` calls, in microseconds.
fn fastest_us(rounds: usize, batch: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch
        })
        .collect();
    samples.sort();
    samples[0].as_secs_f64() * 1e6
}

/// Both paths interleaved round by round, so machine noise hits both alike.
fn summary() {
    let wasm = wasm_strategy();
    println!(
        "\nwasm vs native, SwitchMasterUpdate, building the view included (fastest of 15 interleaved rounds)"
    );
    println!(
        "{:>6}  {:>12}  {:>12}  {:>7}",
        "pods", "native µs", "wasm µs", "ratio"
    );
    // PLAN_BENCH_SHAPE=100x3 runs the summary for that shape only (profiling).
    let only: Option<(u32, u32)> = std::env::var("PLAN_BENCH_SHAPE").ok().and_then(|v| {
        let (r, p) = v.split_once('x')?;
        Some((r.parse().ok()?, p.parse().ok()?))
    });
    let shapes: Vec<(u32, u32)> = match only {
        Some(shape) => vec![shape],
        None => SHAPES.to_vec(),
    };
    for (replicasets, replicas) in shapes {
        let sim = simulator(replicasets, replicas);
        let batch = (30_000 / (replicasets * replicas)).clamp(5, 3_000);
        let mut native = Vec::new();
        let mut through_wasm = Vec::new();
        for _ in 0..15 {
            native.push(fastest_us(1, batch, || native_path(&sim)));
            through_wasm.push(fastest_us(1, batch, || wasm_path(&sim, &wasm)));
        }
        native.sort_by(f64::total_cmp);
        through_wasm.sort_by(f64::total_cmp);
        let (n, w) = (
            native[native.len() / 2],
            through_wasm[through_wasm.len() / 2],
        );
        println!(
            "{:>6}  {:>12.1}  {:>12.1}  {:>6.2}x",
            replicasets * replicas,
            n,
            w,
            w / n
        );
    }
    if only.is_some() {
        return;
    }
    let empty = empty_view();
    let fixed = fastest_us(15, 2_000, || {
        black_box(wasm.plan(black_box(&empty)).expect("plan"));
    });
    let instantiate = fastest_us(15, 2_000, || wasm.probe_instantiate().expect("instantiate"));
    println!(
        "fixed cost per wasm call (fresh store + instance, empty view): {fixed:.1} µs, of which store + instance {instantiate:.1} µs"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_plan
}

fn main() {
    // PLAN_BENCH_SUMMARY_ONLY=1 skips criterion and prints just the summary.
    if std::env::var_os("PLAN_BENCH_SUMMARY_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
