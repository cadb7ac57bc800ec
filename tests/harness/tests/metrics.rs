//! The metrics the dashboard and the alerting rules use move when what they
//! report happens: the operator binary runs with leader election on the
//! article's cluster (Cartridge double), and a scraper records every series
//! of `/metrics` as it goes. One run, several scenarios in turn: leading,
//! bootstrapping, a paused then resumed rollout with master switches, a
//! scale-down that drains a replica set, and a strategy whose decision the
//! guard refuses (the Role Degraded). After each, the series that scenario
//! should have moved are checked against what the scraper saw.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tarantool_operator_api::Role;
use test_harness::{TestContext, run};

use support::process;
use support::scenario::{
    Failure, check, create_article, set_image, settled, wait_bootstrapped, wait_joined,
};

const NEW_IMAGE: &str = "tarantool/tarantool-operator-examples-kv:0.0.5";

/// What the scraper saw: per series (`name{labels}` as exposed), the last
/// and the largest value.
#[derive(Debug, Default)]
struct Seen {
    last: BTreeMap<String, f64>,
    max: BTreeMap<String, f64>,
    scrapes: u64,
}

impl Seen {
    fn last(&self, series: &str) -> Option<f64> {
        self.last.get(series).copied()
    }

    fn max(&self, series: &str) -> Option<f64> {
        self.max.get(series).copied()
    }

    /// The series now present whose key starts with `prefix`.
    fn present(&self, prefix: &str) -> Vec<String> {
        self.last
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// `name{labels} value` lines of a scrape.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Scrapes `/metrics` on `port` every 200 ms into `seen`, until the test
/// ends.
fn scrape_forever(port: u16, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some((200, text)) = process::http_get(port, "/metrics").await {
                let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                s.last.clear();
                for (k, v) in samples(&text) {
                    let max = s.max.entry(k.clone()).or_insert(v);
                    *max = max.max(v);
                    s.last.insert(k, v);
                }
                s.scrapes += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// `text` without terminal colour sequences (`ESC [ ... m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The port of the metrics server in the operator's log: its line
/// `listening server="metrics" addr=127.0.0.1:PORT`.
fn port_in(log: &str) -> Option<u16> {
    without_colours(log)
        .lines()
        .filter(|l| l.contains("listening") && l.contains("metrics"))
        .find_map(|l| {
            let addr = l.split("addr=").nth(1)?.split_whitespace().next()?;
            addr.rsplit_once(':')?.1.parse().ok()
        })
}

/// The metrics port the operator bound.
async fn metrics_port(t: &TestContext, log: &Path) -> Result<u16, Failure> {
    Ok(
        t.eventually("the operator's metrics address in its log", || async {
            Ok(port_in(&std::fs::read_to_string(log).unwrap_or_default()))
        })
        .await?,
    )
}

/// Waits until `ok` holds for what the scraper saw; on a timeout the
/// failure lists the operator's series.
async fn until(
    t: &TestContext,
    seen: &Arc<Mutex<Seen>>,
    what: &str,
    ok: impl Fn(&Seen) -> bool,
) -> Result<(), Failure> {
    let outcome = t
        .eventually(what, || async {
            let s = seen.lock().unwrap_or_else(|e| e.into_inner());
            Ok(ok(&s).then_some(()))
        })
        .await;
    outcome.map_err(|e| {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner());
        let series: Vec<String> = s
            .last
            .iter()
            .filter(|(k, _)| !k.contains("_bucket{"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        Failure::Check(format!(
            "{e}; after {} scrapes:\n{}",
            s.scrapes,
            series.join("\n")
        ))
    })
}

async fn patch_role(t: &TestContext, role: &str, patch: serde_json::Value) -> Result<(), Failure> {
    t.api::<Role>()
        .patch(role, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The test strategy whose every decision deletes a pod that does not
/// exist (`tests/hostile-strategy`, feature `unknown-pod`), built for wasm.
fn unknown_pod_component(repo: &Path) -> Result<Vec<u8>, Failure> {
    let target = repo.join("target/wasm-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(repo)
        .args(["build", "--quiet", "--locked", "--profile", "wasm-guest"])
        .args(["--target", "wasm32-wasip2", "-p", "hostile-strategy"])
        .args(["--features", "unknown-pod", "--target-dir"])
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| Failure::Check(format!("cargo: {e}")))?;
    check(status.success(), || {
        "building hostile-strategy (unknown-pod) failed".into()
    })?;
    let wasm = target.join("wasm32-wasip2/wasm-guest/hostile_strategy.wasm");
    std::fs::read(&wasm).map_err(|e| Failure::Check(format!("{}: {e}", wasm.display())))
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn each_metric_moves_with_what_it_reports() {
    run("metrics", |t| async move {
        t.install_crds().await?;
        let ns = t.namespace.clone();
        let (mut child, log) =
            process::start_operator(&t, &["--leader-elect", "--lease-namespace", &ns])?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let outcome = async {
            let port = metrics_port(&t, &log).await?;
            let scraper = scrape_forever(port, seen.clone());
            let outcome = scenarios(&t, &ns, &seen).await;
            scraper.abort();
            outcome
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

async fn scenarios(t: &TestContext, ns: &str, seen: &Arc<Mutex<Seen>>) -> Result<(), Failure> {
    // Leading: the gauge, and one acquisition (none lost).
    until(t, seen, "the replica leading", |s| {
        s.last("tarantool_operator_leader") == Some(1.0)
            && s.last("tarantool_operator_leadership_changes_total{change=\"acquired\"}")
                == Some(1.0)
            && s.last("tarantool_operator_leadership_changes_total{change=\"lost\"}") == Some(0.0)
    })
    .await?;

    // Bootstrap: passes counted and timed; every object Ready at the end.
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    until(t, seen, "the article's cluster Ready in the gauges", |s| {
        s.last("tarantool_operator_objects{controller=\"cluster\",condition=\"Ready\",reason=\"Converged\"}")
            == Some(1.0)
            && s.last("tarantool_operator_objects{controller=\"role\",condition=\"Ready\",reason=\"Converged\"}")
                == Some(2.0)
            && s.max("tarantool_operator_objects{controller=\"role\",condition=\"Progressing\",reason=\"PodsNotReady\"}")
                .is_some_and(|v| v >= 1.0)
            && s.last("tarantool_operator_reconciles_total{controller=\"role\"}").is_some_and(|v| v > 0.0)
            && s.last("tarantool_operator_reconcile_duration_seconds_count{controller=\"cluster\"}")
                .is_some_and(|v| v > 0.0)
    })
    .await?;

    // A paused rollout: counted as Paused, with its pause timestamp.
    let paused_series = format!(
        "tarantool_operator_rollout_paused_timestamp_seconds{{namespace=\"{ns}\",role=\"storage\"}}"
    );
    let progress_series = format!(
        "tarantool_operator_rollout_last_progress_timestamp_seconds{{namespace=\"{ns}\",role=\"storage\"}}"
    );
    patch_role(
        t,
        "storage",
        json!({"spec": {"updateStrategy": {"name": "SwitchMasterUpdate", "paused": true}}}),
    )
    .await?;
    set_image(t, "storage", NEW_IMAGE).await?;
    until(t, seen, "the paused rollout in the gauges", |s| {
        s.last("tarantool_operator_rollouts{reason=\"Paused\"}") == Some(1.0)
            && s.last(&paused_series).is_some_and(|v| v > 0.0)
            && s.last(&progress_series).is_none()
            && s.last("tarantool_operator_objects{controller=\"role\",condition=\"Progressing\",reason=\"Paused\"}")
                == Some(1.0)
    })
    .await?;

    // Resumed: it runs (a progress timestamp), switches masters (write
    // unavailability observed), and once done no rollout is left.
    patch_role(
        t,
        "storage",
        json!({"spec": {"updateStrategy": {"paused": null}}}),
    )
    .await?;
    settled(t, 2, 2).await?;
    until(t, seen, "the finished rollout in the gauges", |s| {
        s.max(&progress_series).is_some_and(|v| v > 0.0)
            // Running: counted under a reason other than Paused
            // (Updating, SwitchDeferred, PodsNotReady as it goes).
            && s.max.iter().any(|(k, v)| {
                k.starts_with("tarantool_operator_rollouts{") && !k.contains("Paused") && *v >= 1.0
            })
            && s.last("tarantool_operator_switch_write_unavailable_seconds_count")
                .is_some_and(|v| v >= 2.0)
            && s.present("tarantool_operator_rollouts{").is_empty()
            && s.present("tarantool_operator_rollout_paused_timestamp_seconds{").is_empty()
            && s.present("tarantool_operator_rollout_last_progress_timestamp_seconds{").is_empty()
    })
    .await?;

    // A scale-down: the leaving replica set drains (counted, timed), then
    // no drain is left.
    let drain_series = format!(
        "tarantool_operator_drain_started_timestamp_seconds{{namespace=\"{ns}\",role=\"storage\"}}"
    );
    patch_role(t, "storage", json!({"spec": {"replicasets": 1}})).await?;
    settled(t, 1, 2).await?;
    until(t, seen, "the drain in the gauges, then none", |s| {
        s.max("tarantool_operator_drains_in_progress")
            .is_some_and(|v| v >= 1.0)
            && s.max(&drain_series).is_some_and(|v| v > 0.0)
            && s.last("tarantool_operator_drains_in_progress") == Some(0.0)
            && s.last(&drain_series).is_none()
    })
    .await?;

    // A strategy whose decision the guard refuses: the refusal counted by
    // reason, the pass failed (an error of that reason), the Role Degraded
    // and its rollout held.
    let bytes = unknown_pod_component(t.cp.repo())?;
    let cm = k8s_openapi::api::core::v1::ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("hostile".into()),
            labels: Some([("tarantool.io/strategy".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        binary_data: Some([("strategy.wasm".to_string(), k8s_openapi::ByteString(bytes))].into()),
        ..Default::default()
    };
    t.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    patch_role(
        t,
        "router",
        json!({"spec": {"updateStrategy": {"name": "Hostile", "configMapRef": {"name": "hostile"}}}}),
    )
    .await?;
    set_image(t, "router", NEW_IMAGE).await?;
    until(t, seen, "the refused decision in the metrics", |s| {
        s.last("tarantool_operator_strategy_refusals_total{reason=\"UnknownPod\"}")
            .is_some_and(|v| v >= 1.0)
            && s.last("tarantool_operator_reconcile_errors_total{controller=\"role\",step=\"RollingUpdate\",reason=\"UnknownPod\"}")
                .is_some_and(|v| v >= 1.0)
            && s.last("tarantool_operator_objects{controller=\"role\",condition=\"Degraded\",reason=\"UnknownPod\"}")
                == Some(1.0)
            && s.last("tarantool_operator_rollouts{reason=\"UnknownPod\"}") == Some(1.0)
    })
    .await?;
    // Still the one leader throughout.
    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
    check(
        s.max("tarantool_operator_leadership_changes_total{change=\"acquired\"}") == Some(1.0)
            && s.last("tarantool_operator_leader") == Some(1.0),
        || "leadership changed during the run".into(),
    )
}
