//! Makespan of a rolling update on the dev cluster: a storage Role of 10
//! replica sets x 3 replicas updated by SwitchMasterUpdate (the operator
//! in-process, the in-memory Cartridge), against the lower bound (replicas
//! x the measured restart delay + one switch, replica sets in parallel) and
//! beside the StatefulSet controller's own RollingUpdate of 10 StatefulSets
//! x 3 replicas on the same cluster. Prints the figures and writes them to
//! target/bench/makespan.json. Run with `make bench-update`.
//!
//! Each phase also reports how long kube-controller-manager's requests
//! waited on its own client rate limit (`--kube-api-qps`, kube's default
//! 20/s): the StatefulSet controller recreates every pod and observes every
//! new template through it, so on this cluster it often sets the pace of
//! both updates and of the restarts the lower bound is measured from.

#[path = "../tests/in_process/mod.rs"]
#[allow(dead_code)]
mod in_process;
#[path = "../../harness/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tarantool_operator::api::{Cluster, ClusterPhase, Role};
use test_harness::{TestContext, run};

use support::scenario::{Failure, ready};

const REPLICASETS: i32 = 10;
const THROTTLE_METRIC: &str = "rest_client_rate_limiter_duration_seconds_sum";
const REPLICAS: i32 = 3;
const ROUNDS: usize = 3;

fn plain_statefulset(name: &str, strategy: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "serviceName": name,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": strategy},
            "selector": {"matchLabels": {"bench": name}},
            "template": {
                "metadata": {"labels": {"bench": name}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/x:1"}]}
            }
        }
    }))
    .unwrap_or_else(|e| panic!("statefulset: {e}"))
}

/// kube-controller-manager's `--kube-api-qps` and `--kube-api-burst` as the
/// control plane started it (kube's defaults when not given).
fn controller_manager_limit(t: &TestContext) -> (String, String) {
    let cmdline =
        std::fs::read(t.cp.run_dir().join("kube-controller-manager.cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // `--flag value` or `--flag=value`.
    let flag = |name: &str, default: &str| {
        args.iter()
            .enumerate()
            .find_map(|(i, a)| match a.strip_prefix(name) {
                Some("") => args.get(i + 1).cloned(),
                Some(rest) => rest.strip_prefix('=').map(str::to_string),
                None => None,
            })
            .unwrap_or_else(|| default.to_string())
    };
    (flag("--kube-api-qps", "20"), flag("--kube-api-burst", "30"))
}

/// Seconds kube-controller-manager's requests have waited on its client rate
/// limiter since it started (its /metrics, read with the admin certificate).
fn controller_manager_throttled(t: &TestContext) -> Result<f64, Failure> {
    let ports = std::fs::read_to_string(t.cp.run_dir().join("ports.env"))
        .map_err(|e| Failure::Check(format!("ports.env: {e}")))?;
    let port = ports
        .lines()
        .find_map(|l| l.strip_prefix("KCM_PORT="))
        .ok_or_else(|| Failure::Check("no KCM_PORT in ports.env".into()))?;
    let certs = t.cp.kubeconfig().with_file_name("certs");
    let out = std::process::Command::new("curl")
        .args(["-sfk", "--max-time", "5", "--cert"])
        .arg(certs.join("admin.crt"))
        .arg("--key")
        .arg(certs.join("admin.key"))
        .arg(format!("https://127.0.0.1:{port}/metrics"))
        .output()
        .map_err(|e| Failure::Check(format!("curl: {e}")))?;
    if !out.status.success() {
        return Err(Failure::Check(format!(
            "kube-controller-manager /metrics: curl {}",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(THROTTLE_METRIC))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Runs `phase` and returns its result with the seconds kube-controller-
/// manager waited on its rate limiter meanwhile.
async fn throttled_during<T, F>(t: &TestContext, phase: F) -> Result<(T, f64), Failure>
where
    F: std::future::Future<Output = Result<T, Failure>>,
{
    let before = controller_manager_throttled(t)?;
    let out = phase.await?;
    Ok((out, controller_manager_throttled(t)? - before))
}

async fn all_ready(t: &TestContext, selector: &str, want: usize) -> Result<bool, kube::Error> {
    let pods = t
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    Ok(pods.len() == want && pods.iter().all(ready))
}

/// Time for deleted pods to be recreated and ready again when one pod of
/// each of `REPLICASETS` StatefulSets restarts at once (the load a
/// parallel update puts on this cluster): median of 3 rounds of the time
/// until the last one is back.
async fn restart_delay(t: &TestContext) -> Result<Duration, Failure> {
    let api = t.api::<StatefulSet>();
    for i in 0..REPLICASETS {
        let mut sts = plain_statefulset(&format!("probe-{i}"), "OnDelete");
        sts.spec.replicas = Some(1);
        api.create(&PostParams::default(), &sts).await?;
    }
    let all = || async {
        let mut pods = Vec::new();
        for i in 0..REPLICASETS {
            if let Some(p) = t.api::<Pod>().get_opt(&format!("probe-{i}-0")).await? {
                pods.push(p);
            }
        }
        Ok::<Vec<Pod>, kube::Error>(pods)
    };
    t.eventually("probes ready", || async {
        let pods = all().await?;
        Ok((pods.len() == REPLICASETS as usize && pods.iter().all(ready)).then_some(()))
    })
    .await?;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let uids: Vec<String> = all()
            .await?
            .iter()
            .map(|p| p.uid().unwrap_or_default())
            .collect();
        let started = Instant::now();
        for i in 0..REPLICASETS {
            t.api::<Pod>()
                .delete(&format!("probe-{i}-0"), &DeleteParams::default())
                .await?;
        }
        loop {
            let pods = all().await?;
            let back = pods
                .iter()
                .filter(|p| !uids.contains(&p.uid().unwrap_or_default()) && ready(p))
                .count();
            if back == REPLICASETS as usize {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        samples.push(started.elapsed());
    }
    for i in 0..REPLICASETS {
        api.delete(&format!("probe-{i}"), &DeleteParams::default())
            .await?;
    }
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// The StatefulSet controller's RollingUpdate of 10 x 3 (in parallel).
async fn statefulset_rolling_update(t: &TestContext, round: usize) -> Result<Duration, Failure> {
    let api = t.api::<StatefulSet>();
    if round == 0 {
        for i in 0..REPLICASETS {
            api.create(
                &PostParams::default(),
                &plain_statefulset(&format!("ru-{i}"), "RollingUpdate"),
            )
            .await?;
        }
    }
    for i in 0..REPLICASETS {
        let sel = format!("bench=ru-{i}");
        t.eventually("rolling StatefulSets ready", || async {
            Ok(all_ready(t, &sel, REPLICAS as usize).await?.then_some(()))
        })
        .await?;
    }
    let started = Instant::now();
    let image = format!("example.invalid/x:{}", round + 2);
    for i in 0..REPLICASETS {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
        api.patch(
            &format!("ru-{i}"),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await?;
    }
    loop {
        let mut done = true;
        for i in 0..REPLICASETS {
            let sts = api.get(&format!("ru-{i}")).await?;
            let status = sts.status.unwrap_or_default();
            done &= status.observed_generation == sts.metadata.generation
                && status.updated_replicas == Some(REPLICAS)
                && status.ready_replicas == Some(REPLICAS)
                && status.current_revision == status.update_revision;
        }
        if done {
            tracing::info!(round, "StatefulSet RollingUpdate done");
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The operator's SwitchMasterUpdate of the storage Role, 10 x 3.
async fn operator_update(t: &TestContext, round: usize) -> Result<Duration, Failure> {
    tracing::info!(round, "operator update starts");
    let started = Instant::now();
    let image = format!("tarantool/tarantool-operator-examples-kv:{}", round + 2);
    let role = t.api::<Role>().get("storage").await?;
    let mut template = role
        .spec
        .replicaset_template()
        .cloned()
        .ok_or_else(|| Failure::Check("template".into()))?;
    if let Some(spec) = template.pod_template.spec.as_mut() {
        for c in &mut spec.containers {
            c.image = Some(image.clone());
        }
    }
    t.api::<Role>()
        .patch(
            "storage",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicasetTemplate": template}})),
        )
        .await?;
    tracing::info!(round, "operator update: template patched");
    loop {
        let role = t.api::<Role>().get("storage").await?;
        let current = role
            .spec
            .replicaset_template()
            .and_then(|t| t.pod_template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            == Some(image.clone());
        if current
            && role.status.as_ref().is_some_and(|s| {
                s.observed_generation == role.metadata.generation
                    && s.updated_replicasets == REPLICASETS
                    && s.ready_replicasets == REPLICASETS
                    && s.update.as_ref().is_some_and(|u| u.done)
            })
        {
            tracing::info!(round, "operator update done");
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    // MAKESPAN_TRACE=<filter> (e.g. `tarantool_operator=debug,makespan=info`)
    // logs the operator's steps with their durations and this bench's
    // milestones on stderr, timed from the start: where a rollout's time goes.
    if let Ok(f) = std::env::var("MAKESPAN_TRACE") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run("makespan", |t| async move {
        t.install_crds().await?;
        let operator = in_process::start(&t);
        let mut storage: Role = support::manifests::manifest("examples/article/storage.yaml");
        storage.spec.replicasets = REPLICASETS;
        if let Some(template) = storage.spec.replicaset_template.as_mut() {
            template.replicas = REPLICAS;
            // No volumes: binding claims is not what is measured.
            template.volume_claim_templates.clear();
        }
        t.api::<Role>().create(&PostParams::default(), &storage).await?;
        support::manifests::create::<Role>(&t, "examples/article/router.yaml").await?;
        support::manifests::create::<Cluster>(&t, "examples/article/cluster.yaml").await?;
        t.wait_for::<Cluster>("tarantool-cluster", "the Cluster bootstrapped", |c: Option<&Cluster>| {
            c.and_then(|c| c.status.as_ref()).is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready)
        })
        .await?;
        let (qps, burst) = controller_manager_limit(&t);
        println!("kube-controller-manager client rate limit: {qps}/s, burst {burst}");
        let (delay, probe_throttled) = throttled_during(&t, restart_delay(&t)).await?;
        let lower_bound = delay * REPLICAS as u32;
        let mut rows = Vec::new();
        for round in 0..ROUNDS {
            // Interleaved, so both see the same machine load.
            let (ours, our_wait) = throttled_during(&t, operator_update(&t, round)).await?;
            let (theirs, their_wait) =
                throttled_during(&t, statefulset_rolling_update(&t, round)).await?;
            println!(
                "round {round}: operator {:.2}s ({:.2}x lower bound), StatefulSet RollingUpdate {:.2}s ({:.2}x), operator/RollingUpdate {:.2}; kube-controller-manager rate-limited {our_wait:.1}s and {their_wait:.1}s",
                ours.as_secs_f64(),
                ours.as_secs_f64() / lower_bound.as_secs_f64(),
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / lower_bound.as_secs_f64(),
                ours.as_secs_f64() / theirs.as_secs_f64()
            );
            rows.push(json!({"round": round, "operator_s": ours.as_secs_f64(), "rolling_update_s": theirs.as_secs_f64(),
                "controller_manager_throttled_s": {"operator": our_wait, "rolling_update": their_wait}}));
        }
        let switches = operator.topology.state().writes().len();
        println!(
            "restart delay ({REPLICASETS} pods at once, median of 3) {:.3}s (kube-controller-manager rate-limited {probe_throttled:.1}s during the probe); lower bound {} x restart = {:.2}s (+ one switch, which the in-memory Cartridge makes instantly); {switches} topology writes",
            delay.as_secs_f64(),
            REPLICAS,
            lower_bound.as_secs_f64()
        );
        let report = json!({
            "replicasets": REPLICASETS, "replicas": REPLICAS,
            "restart_delay_s": delay.as_secs_f64(), "lower_bound_s": lower_bound.as_secs_f64(),
            "controller_manager": {"qps": qps, "burst": burst, "probe_throttled_s": probe_throttled},
            "rounds": rows,
        });
        let out = t.cp.repo().join("target/bench");
        std::fs::create_dir_all(&out).map_err(|e| Failure::Check(e.to_string()))?;
        std::fs::write(out.join("makespan.json"), report.to_string()).map_err(|e| Failure::Check(e.to_string()))?;
        println!("wrote {}", out.join("makespan.json").display());
        Ok::<(), Failure>(())
    }));
}
