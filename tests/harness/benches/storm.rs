//! A reconcile storm: every Role failing at once, on the dev cluster with
//! the operator binary. `ROLES` Roles whose pod template the apiserver
//! refuses (a container name that is not a DNS label: every pass fails at
//! its StatefulSet apply) are reconciled by the operator, once with its
//! default backoff (2 s doubling to 60 s, jittered) and once with a fixed
//! retry like the one it had before (every 6 to 12 s: min = max = 6 s).
//! Side by side in one run, this prints the apiserver write requests per
//! interval of each (the apiserver's own counters, `support::apiserver`),
//! and the ratio. Run with `make bench-storm`; writes
//! target/bench/storm.json.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use kube::api::PostParams;
use serde_json::json;
use tarantool_operator_api::labels;
use tarantool_operator_api::{Cluster, Role};
use test_harness::{TestContext, run};

use support::scenario::Failure;
use support::{apiserver, manifests, process};

/// Roles failing together.
const ROLES: usize = 40;
/// How long each policy runs.
const WINDOW: Duration = Duration::from_secs(150);
/// Writes are sampled this often.
const INTERVAL: Duration = Duration::from_secs(30);

/// The failing Roles and their Cluster.
async fn create_storm(t: &TestContext) -> Result<(), Failure> {
    let mut cluster: Cluster = manifests::manifest("examples/article/cluster.yaml");
    cluster.metadata.name = Some("storm".into());
    cluster.spec.roles = (0..ROLES)
        .map(|i| tarantool_operator_api::RoleRef {
            name: format!("bad-{i}"),
        })
        .collect();
    t.api::<Cluster>()
        .create(&PostParams::default(), &cluster)
        .await?;
    for i in 0..ROLES {
        let mut role: Role = manifests::manifest("examples/article/router.yaml");
        role.metadata.name = Some(format!("bad-{i}"));
        role.metadata
            .labels
            .get_or_insert_default()
            .insert(labels::CLUSTER.into(), "storm".into());
        let mut value = serde_json::to_value(&role).map_err(|e| Failure::Check(e.to_string()))?;
        value["spec"]["vshard"]["replicasetTemplate"]["replicas"] = json!(1);
        value["spec"]["vshard"]["replicasetTemplate"]["podTemplate"]["spec"]["containers"][0]["name"] =
            json!("Not_A_DNS_Label");
        let role: Role =
            serde_json::from_value(value).map_err(|e| Failure::Check(e.to_string()))?;
        t.api::<Role>()
            .create(&PostParams::default(), &role)
            .await?;
    }
    Ok(())
}

/// Runs the operator with `extra` flags for `window`; the apiserver
/// writes in each [`INTERVAL`].
async fn storm(
    t: &TestContext,
    name: &str,
    extra: &[String],
    window: Duration,
) -> Result<Vec<f64>, Failure> {
    let bin = process::operator_bin(t).map_err(Failure::Check)?;
    let log = std::env::temp_dir().join(format!("{}-{name}-operator.log", t.namespace));
    let before = apiserver::total_writes(t).await?;
    let mut child = process::spawn_operator(&bin, &t.cp.kubeconfig(), &t.namespace, &log, extra)
        .map_err(Failure::Check)?;
    let started = Instant::now();
    let mut counts = Vec::new();
    let mut last = before;
    while started.elapsed() < window {
        tokio::time::sleep(INTERVAL).await;
        let now = apiserver::total_writes(t).await?;
        counts.push(now - last);
        last = now;
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(counts)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run("storm", |t| async move {
        t.install_crds().await?;
        create_storm(&t).await?;
        // The writes a Role needs once (its finalizer, its Service, its
        // first status) happen here, so that neither policy pays them.
        storm(&t, "warm-up", &[], Duration::from_secs(30)).await?;
        let fixed = ["--backoff-min-seconds=6", "--backoff-max-seconds=6"].map(String::from);
        let policies: [(&str, &[String]); 2] = [("backoff", &[]), ("fixed-6s", &fixed)];
        let mut report = serde_json::Map::new();
        let mut totals = Vec::new();
        for (name, extra) in policies {
            let counts = storm(&t, name, extra, WINDOW).await?;
            let total: f64 = counts.iter().sum();
            // Past the first interval: where each policy settles.
            let settled: f64 = counts.iter().skip(1).sum();
            let per_minute: Vec<String> = counts
                .iter()
                .map(|c| format!("{:.0}", c * 60.0 / INTERVAL.as_secs_f64()))
                .collect();
            println!(
                "{name:>9}: {total:.0} writes in {}s for {ROLES} failing Roles; per minute, by {}s interval: {}",
                WINDOW.as_secs(),
                INTERVAL.as_secs(),
                per_minute.join(", ")
            );
            report.insert(
                name.into(),
                json!({"writes": total, "settled_writes": settled, "by_interval": counts}),
            );
            totals.push((total, settled));
        }
        let ratio = totals[0].0 / totals[1].0.max(1.0);
        let settled_ratio = totals[0].1 / totals[1].1.max(1.0);
        println!(
            "backoff / fixed-6s writes: {ratio:.2}x over {}s, {settled_ratio:.2}x past the first {}s",
            WINDOW.as_secs(),
            INTERVAL.as_secs()
        );
        report.insert("ratio".into(), json!(ratio));
        report.insert("settled_ratio".into(), json!(settled_ratio));
        report.insert("roles".into(), json!(ROLES));
        report.insert("window_seconds".into(), json!(WINDOW.as_secs()));
        let out = t.cp.repo().join("target/bench");
        std::fs::create_dir_all(&out).map_err(|e| Failure::Check(e.to_string()))?;
        std::fs::write(out.join("storm.json"), serde_json::Value::Object(report).to_string())
            .map_err(|e| Failure::Check(e.to_string()))?;
        Ok::<(), Failure>(())
    }));
}
