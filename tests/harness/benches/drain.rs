//! A drain at the pace of real Cartridge (about 12 buckets/s on 2 cores),
//! on the dev cluster with the operator binary and the Cartridge double:
//! the storage Role goes from 2 replica sets to 1, and while the second
//! drains this measures how often the operator asks Cartridge (the
//! double's call counters) and writes the Role (watch events on it), per
//! minute. A quiet operator looks at Cartridge at its poll interval and
//! never wakes itself with its own status writes. Run with
//! `make bench-drain`; writes target/bench/drain.json.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tarantool_operator_api::Role;
use test_harness::run;

use support::scenario::{Failure, create_article, settled, wait_bootstrapped, wait_joined};
use support::{double, process};

/// Buckets in the cluster: half of them drain, at [`RATE`].
const BUCKETS: u64 = 1200;
/// Buckets per second, as real Cartridge moved them on 2 cores.
const RATE: u64 = 12;
/// The operator's `--poll-seconds`, as the harness starts it
/// (`support::process::spawn_operator`).
const POLL_SECONDS: u64 = 1;

fn count(calls: &serde_json::Value, name: &str) -> u64 {
    calls
        .get(name)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run("drain", |t| async move {
        let ns = t.namespace.clone();
        double::set(&t, &format!("set_bucket_count('{ns}', {BUCKETS})")).await?;
        let bin = process::operator_bin(&t).map_err(Failure::Check)?;
        t.install_crds().await?;
        let log = std::env::temp_dir().join(format!("{ns}-operator.log"));
        let mut child = process::spawn_operator(&bin, &t.cp.kubeconfig(), &ns, &log, &[])
            .map_err(Failure::Check)?;
        let outcome = async {
            create_article(&t).await?;
            wait_bootstrapped(&t).await?;
            wait_joined(&t).await?;
            double::set(&t, &format!("set_drain_rate({RATE}, '{ns}')")).await?;
            // Writes of the storage Role (spec, metadata or status) from now on.
            let writes = Arc::new(AtomicUsize::new(0));
            let seen = writes.clone();
            let roles = t.api::<Role>();
            let watch = tokio::spawn(async move {
                let config = watcher::Config::default().fields("metadata.name=storage");
                let mut stream = watcher(roles, config).boxed();
                while let Some(Ok(event)) = stream.next().await {
                    if matches!(event, watcher::Event::Apply(_)) {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let before = double::json(&t, &format!("calls('{ns}')")).await?;
            let started = Instant::now();
            t.api::<Role>()
                .patch(
                    "storage",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicasets": 1}})),
                )
                .await?;
            settled(&t, 1, 2).await?;
            let elapsed = started.elapsed();
            let after = double::json(&t, &format!("calls('{ns}')")).await?;
            watch.abort();
            let minutes = elapsed.as_secs_f64() / 60.0;
            let asks = count(&after, "admin_get_replicasets") - count(&before, "admin_get_replicasets");
            let all: u64 = after
                .as_object()
                .map(|m| m.keys().map(|k| count(&after, k) - count(&before, k)).sum())
                .unwrap_or(0);
            let written = writes.load(Ordering::Relaxed);
            println!(
                "drain of {} buckets at {RATE}/s: {:.1}s; Cartridge asked {asks} times ({:.1}/min; one look per {POLL_SECONDS}s poll is {:.1}/min), {all} admin calls in all ({:.1}/min, the per-server stats included); the storage Role written {written} times ({:.1}/min)",
                BUCKETS / 2,
                elapsed.as_secs_f64(),
                asks as f64 / minutes,
                60.0 / POLL_SECONDS as f64,
                all as f64 / minutes,
                written as f64 / minutes,
            );
            let report = json!({
                "buckets": BUCKETS / 2, "rate": RATE, "poll_seconds": POLL_SECONDS,
                "seconds": elapsed.as_secs_f64(),
                "replicasets_calls_per_minute": asks as f64 / minutes,
                "admin_calls_per_minute": all as f64 / minutes,
                "role_writes_per_minute": written as f64 / minutes,
            });
            let out = t.cp.repo().join("target/bench");
            std::fs::create_dir_all(&out).map_err(|e| Failure::Check(e.to_string()))?;
            std::fs::write(out.join("drain.json"), report.to_string())
                .map_err(|e| Failure::Check(e.to_string()))?;
            Ok::<(), Failure>(())
        }
        .await;
        let _ = child.start_kill();
        if outcome.is_err() {
            eprintln!("--- operator log ---\n{}", process::tail(&log, 60));
        }
        outcome
    }));
}
