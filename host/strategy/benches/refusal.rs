//! Strategy loading cannot hurt the operator (issue 14), measured; a
//! benchmark, not a test: it prints numbers and asserts nothing on time.
//!
//! 1. Each hostile shape (thousands of nested components, pathological
//!    bodies, huge function counts): the time to refuse it and the
//!    process's peak RSS while the whole set is checked (VmHWM, reset
//!    after the components were generated).
//! 2. 100 distinct broken components loaded at once, the way the operator
//!    loads them (a blocking task each), while a tokio task ticks every
//!    100 ms like a Lease renewal loop: its worst lateness with and
//!    without the load, and a built-in's plan latency during the load.
//! 3. The CPU budget against wall time: 8 strategies needing about 110 ms
//!    of CPU each, called at once on the 2-core machine.
//!
//! `make bench-refusal` (release build); `cargo bench -p
//! tarantool-operator-strategy --bench refusal --profile dev` for a quick
//! look (unoptimised hashing and census, so slower refusals).

#[path = "../tests/support/hostile_wasm.rs"]
mod hostile_wasm;
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tarantool_operator_strategy::registry::{SourceError, StrategySelector};
use tarantool_operator_strategy::{
    Caller, ComponentLocation, ComponentSource, LoadError, Registry, SandboxLimits, StrategyEngine,
    builtin,
};

/// A /proc/self/status field, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn refusals() {
    println!("== refusing hostile components (one engine, as in the operator)");
    let cases = hostile_wasm::hostile_cases();
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    let generated = status_kib("VmRSS:");
    let reset = reset_peak_rss();
    let mut slowest = Duration::ZERO;
    for (what, bytes, _) in &cases {
        let start = Instant::now();
        let result = engine.load(bytes, None);
        let took = start.elapsed();
        slowest = slowest.max(took);
        let reason = match result {
            Err(LoadError::Invalid(e)) => e.to_string(),
            Err(e) => format!("NOT REFUSED BEFORE COMPILING: {e}"),
            Ok(_) => "ACCEPTED".into(),
        };
        println!(
            "{what:>26} {:>9} bytes  refused in {:>8.2} ms  {reason}",
            bytes.len(),
            took.as_secs_f64() * 1e3
        );
    }
    println!(
        "slowest refusal {:.2} ms; RSS with the components generated {:.1} MiB; \
         peak RSS while checking {:.1} MiB{}",
        slowest.as_secs_f64() * 1e3,
        mib(generated),
        mib(status_kib("VmHWM:")),
        if reset {
            ""
        } else {
            " (peak not reset: it includes generating them)"
        }
    );
}

/// Distinct broken components: digests differ, so nothing is shared.
fn broken(i: usize, endless_describe: &[u8]) -> Vec<u8> {
    use hostile_wasm::*;
    match i % 10 {
        0..=2 => nested_components(10_000 + i),
        3..=5 => many_functions(150_000 + i as u32),
        6..=8 => nested_blocks(20_000 + i),
        // Passes the census and compiles, then spins in describe() until
        // its CPU budget: the costliest kind of broken component.
        _ => {
            let mut bytes = endless_describe.to_vec();
            let tag = format!("{i:08}");
            bytes.extend_from_slice(&[0, 1 + 4 + tag.len() as u8, 4]);
            bytes.extend_from_slice(b"seed");
            bytes.extend_from_slice(tag.as_bytes());
            bytes
        }
    }
}

struct Bytes(Vec<u8>);

impl ComponentSource for Bytes {
    fn fetch(&self, _: &ComponentLocation) -> Result<Vec<u8>, SourceError> {
        Ok(self.0.clone())
    }
}

/// Ticks every 100 ms for `run`; the worst lateness of a tick.
async fn renewal_loop(run: Duration) -> (Duration, usize) {
    let period = Duration::from_millis(100);
    let start = tokio::time::Instant::now();
    let mut next = start + period;
    let (mut worst, mut ticks) = (Duration::ZERO, 0);
    while next - start <= run {
        tokio::time::sleep_until(next).await;
        worst = worst.max(tokio::time::Instant::now().saturating_duration_since(next));
        ticks += 1;
        next += period;
    }
    (worst, ticks)
}

fn storm() {
    println!("\n== 100 distinct broken components loaded at once, a 100 ms renewal loop beside");
    let endless_describe = support::build_guest("hostile-strategy", &["endless-describe"]);
    let components: Vec<Vec<u8>> = (0..100).map(|i| broken(i, &endless_describe)).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Arc::new(StrategyEngine::new(SandboxLimits::default(), None).expect("engine"));
    let registry = Arc::new(Registry::new(engine));
    let good = registry
        .builtin(builtin::SWITCH_MASTER_UPDATE)
        .expect("built-in");
    let view = support::role(10, 3);
    runtime.block_on(async {
        let (idle, ticks) = renewal_loop(Duration::from_secs(3)).await;
        println!(
            "without load: worst renewal lateness {:.1} ms over {ticks} ticks",
            idle.as_secs_f64() * 1e3
        );

        let started = Instant::now();
        let loads: Vec<_> = components
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                let registry = registry.clone();
                tokio::task::spawn_blocking(move || {
                    let selector = StrategySelector {
                        name: "Broken".into(),
                        location: Some(ComponentLocation::File(format!("broken-{i}").into())),
                        sha256: None,
                    };
                    let result = registry.resolve(&selector, &Bytes(bytes));
                    (
                        result.map(|_| ()).map_err(|e| e.reason().to_string()),
                        started.elapsed(),
                    )
                })
            })
            .collect();
        let plans = {
            let (good, view) = (good.clone(), view.clone());
            tokio::spawn(async move {
                let (mut worst, mut ok, mut failed) = (Duration::ZERO, 0, 0);
                while started.elapsed() < Duration::from_secs(5) {
                    let (good, view) = (good.clone(), view.clone());
                    let t = Instant::now();
                    let planned = tokio::task::spawn_blocking(move || {
                        good.plan_as(Caller::Owner("ns/good"), &view).map(|_| ())
                    })
                    .await;
                    worst = worst.max(t.elapsed());
                    match planned {
                        Ok(Ok(())) => ok += 1,
                        _ => failed += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                (worst, ok, failed)
            })
        };
        let renewals = tokio::spawn(renewal_loop(Duration::from_secs(5)));
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        let mut last = Duration::ZERO;
        for load in loads {
            let (result, at) = load.await.expect("load task");
            last = last.max(at);
            *reasons
                .entry(result.err().unwrap_or_else(|| "loaded!".into()))
                .or_default() += 1;
        }
        let (busy, ticks) = renewals.await.expect("renewals");
        let (plan_worst, ok, failed) = plans.await.expect("plans");
        println!(
            "all 100 refused within {:.2} s: {reasons:?}",
            last.as_secs_f64()
        );
        println!(
            "with load: worst renewal lateness {:.1} ms over {ticks} ticks",
            busy.as_secs_f64() * 1e3
        );
        println!(
            "built-in SwitchMasterUpdate plans during the load: {ok} ok, {failed} failed, \
             slowest {:.1} ms",
            plan_worst.as_secs_f64() * 1e3
        );
    });
    println!(
        "peak RSS of the whole run {:.1} MiB",
        mib(status_kib("VmHWM:"))
    );
}

/// 8 concurrent calls of a strategy that needs ~110 ms of CPU.
fn cpu_budget() {
    println!("\n== 8 strategies needing ~110 ms of CPU each, called at once");
    let engine = StrategyEngine::new(SandboxLimits::default(), None).expect("engine");
    let busy = engine
        .load(&support::build_guest("hostile-strategy", &["busy"]), None)
        .expect("loads");
    let view_with = |iterations: u64| {
        let mut view = support::role(2, 3);
        view.params = vec![("iterations".into(), iterations.to_string())];
        view
    };
    // Calibrate alone: CPU time is wall time when nothing competes.
    let probe = 20_000_000u64;
    let start = Instant::now();
    busy.plan_with_log(&view_with(probe)).expect("probe");
    let per_iteration = start.elapsed().as_secs_f64() / probe as f64;
    let iterations = (0.110 / per_iteration) as u64;
    let view = view_with(iterations);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (busy, view) = (busy.clone(), view.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let result = busy.plan_as(Caller::Owner(&format!("ns/busy-{i}")), &view);
                (result.map(|_| ()), start.elapsed())
            })
        })
        .collect();
    let (mut ok, mut stopped, mut over_wall, mut slowest) = (0, 0, 0, Duration::ZERO);
    for call in calls {
        let (result, took) = call.join().expect("joins");
        slowest = slowest.max(took);
        if took > Duration::from_millis(500) {
            over_wall += 1;
        }
        match result {
            Ok(()) => ok += 1,
            Err(e) => {
                stopped += 1;
                println!("stopped: {e}");
            }
        }
    }
    println!(
        "{iterations} iterations each: {ok} planned, {stopped} stopped; slowest took {:.0} ms \
         of wall time ({over_wall} past 500 ms, which the old wall-clock deadline would have \
         stopped)",
        slowest.as_secs_f64() * 1e3
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter argument is not used.
    refusals();
    storm();
    cpu_budget();
}
