//! The operator at scale: one `tarantool-operator run` (the binary, cluster
//! wide, default settings) managing a growing fleet on the dev cluster, with
//! kwok nodes and the Cartridge double. Each Cluster, in its own namespace
//! (the double models one Cartridge cluster per namespace), is the article's:
//! a router Role (1 replica set x 2) and a storage Role of
//! [`STORAGE_REPLICASETS`] x 3, without volumes: [`PODS_PER_CLUSTER`] pods.
//!
//! The fleet grows through tiers (default 2, 6 and 20 Clusters: 100, 300
//! and 1,000 pods; `SCALE_TIERS=2,6` to stop earlier), and at each tier,
//! from the same run, this prints:
//! - time from applying the new Clusters to every Cluster Ready;
//! - apiserver requests of the operator's kinds and exec calls per minute
//!   once converged (the apiserver's own counters);
//! - the operator's resident memory, steady and peak (`/proc`);
//! - a rolling update of every storage Role at once, and its ratio to the
//!   lower bound (3 x the restart delay of as many pods deleted at once as
//!   there are storage replica sets, measured beside it on plain
//!   StatefulSets);
//! - reconcile pass duration p50/p99 over the tier (the operator's
//!   histogram; a pass never waits for pods: it requeues);
//! - the strategy engine's share of pass time (its plan-call histogram);
//! - a profile from the operator's log: console calls (count, p50/p99,
//!   share of pass time) and the Role steps that took the most time;
//! - cold start: the operator restarted on the converged fleet, until it
//!   makes no write or exec for [`QUIET`].
//!
//! Run with `make bench-scale`; writes target/bench/scale.json. The
//! operator it runs is `HARNESS_OPERATOR_BIN`: `make bench-scale` builds
//! and names the release build, as the image ships it (the dev build spends
//! several times the CPU in serde, rustls and kube, and is not what users run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tarantool_operator_api::{Cluster, ClusterPhase, Role};
use test_harness::{TestContext, run};

use support::scenario::{Failure, ready, rolled};
use support::{apiserver, process};

/// Storage replica sets per Cluster (3 instances each).
const STORAGE_REPLICASETS: i32 = 16;
/// Pods per Cluster: the router's 2 and the storage's.
const PODS_PER_CLUSTER: usize = 2 + 3 * STORAGE_REPLICASETS as usize;
/// How long nothing may be written or exec'd to call the operator quiet.
const QUIET: Duration = Duration::from_secs(15);
/// How long converged traffic is sampled.
const SAMPLE: Duration = Duration::from_secs(60);
/// The bound on every wait of this bench.
const PATIENCE: Duration = Duration::from_secs(1800);

fn check(what: impl Into<String>) -> Failure {
    Failure::Check(what.into())
}

/// The Clusters of each tier, from `SCALE_TIERS` (ascending).
fn tiers() -> Vec<usize> {
    let tiers: Vec<usize> = std::env::var("SCALE_TIERS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![2, 6, 20]);
    let mut sorted = tiers;
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

fn namespace(base: &str, i: usize) -> String {
    format!("{base}-c{i}")
}

/// The article's Cluster, its router and a bigger storage, in `ns`.
async fn create_cluster(t: &TestContext, ns: &str) -> Result<(), Failure> {
    let namespaces = Api::<Namespace>::all(t.client.clone());
    let object: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))
        .map_err(|e| check(e.to_string()))?;
    namespaces.create(&PostParams::default(), &object).await?;
    let roles = Api::<Role>::namespaced(t.client.clone(), ns);
    let router: Role = support::manifests::manifest("examples/article/router.yaml");
    roles.create(&PostParams::default(), &router).await?;
    let mut storage: Role = support::manifests::manifest("examples/article/storage.yaml");
    storage.spec.replicasets = STORAGE_REPLICASETS;
    if let Some(template) = storage.spec.replicaset_template.as_mut() {
        template.replicas = 3;
        // No volumes: binding claims is not what is measured.
        template.volume_claim_templates.clear();
    }
    roles.create(&PostParams::default(), &storage).await?;
    let cluster: Cluster = support::manifests::manifest("examples/article/cluster.yaml");
    Api::<Cluster>::namespaced(t.client.clone(), ns)
        .create(&PostParams::default(), &cluster)
        .await?;
    Ok(())
}

/// Polls `done` every 500 ms for at most [`PATIENCE`].
async fn until<F, Fut>(what: &str, mut done: F) -> Result<Duration, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Failure>>,
{
    let started = Instant::now();
    while !done().await? {
        if started.elapsed() > PATIENCE {
            return Err(check(format!("{what}: not within {PATIENCE:?}")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(started.elapsed())
}

async fn all_ready(t: &TestContext, namespaces: &[String]) -> Result<bool, Failure> {
    for ns in namespaces {
        let cluster = Api::<Cluster>::namespaced(t.client.clone(), ns)
            .get_opt("tarantool-cluster")
            .await?;
        let ok = cluster
            .and_then(|c| c.status)
            .is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready);
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The storage Roles' rollouts are done on `image`.
async fn all_rolled(t: &TestContext, namespaces: &[String], image: &str) -> Result<bool, Failure> {
    for ns in namespaces {
        let role = Api::<Role>::namespaced(t.client.clone(), ns)
            .get("storage")
            .await?;
        if !rolled(Some(&role), STORAGE_REPLICASETS, image) {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn set_storage_image(t: &TestContext, ns: &str, image: &str) -> Result<(), Failure> {
    let roles = Api::<Role>::namespaced(t.client.clone(), ns);
    let role = roles.get("storage").await?;
    let mut template = role
        .spec
        .replicaset_template()
        .cloned()
        .ok_or_else(|| check("storage template"))?;
    if let Some(spec) = template.pod_template.spec.as_mut() {
        for c in &mut spec.containers {
            c.image = Some(image.to_string());
        }
    }
    roles
        .patch(
            "storage",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicasetTemplate": template}})),
        )
        .await?;
    Ok(())
}

/// The apiserver's request counters: writes of the operator's kinds by any
/// client (the StatefulSet controller and kwok write pods too, so only a
/// converged fleet's count is the operator's) and `pods/exec` calls (only
/// the operator's).
#[derive(Debug, Clone, Copy, Default)]
struct Traffic {
    writes: f64,
    execs: f64,
}

async fn traffic(t: &TestContext) -> Result<Traffic, Failure> {
    Ok(Traffic {
        writes: apiserver::total_writes(t).await?,
        execs: apiserver::execs(t).await?,
    })
}

/// Waits until neither writes nor execs change for [`QUIET`]; the time of
/// the last change, from `since`.
async fn quiet(t: &TestContext, since: Instant) -> Result<Duration, Failure> {
    let mut last = traffic(t).await?;
    let mut last_change = since.elapsed();
    let mut still = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = traffic(t).await?;
        if now.writes != last.writes || now.execs != last.execs {
            last = now;
            last_change = since.elapsed();
            still = Instant::now();
        } else if still.elapsed() >= QUIET {
            return Ok(last_change);
        }
        if since.elapsed() > PATIENCE {
            return Err(check("never quiet"));
        }
    }
}

/// VmRSS and VmHWM of `pid`, in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Cumulative histogram buckets (`le` -> count) and the sum, of the
/// operator's metric `name` (all label sets summed).
#[derive(Debug, Clone, Default)]
struct Buckets {
    counts: BTreeMap<u64, f64>,
    sum: f64,
}

impl Buckets {
    fn minus(&self, earlier: &Buckets) -> Buckets {
        Buckets {
            counts: self
                .counts
                .iter()
                .map(|(le, c)| (*le, c - earlier.counts.get(le).copied().unwrap_or(0.0)))
                .collect(),
            sum: self.sum - earlier.sum,
        }
    }

    /// The `q` quantile, interpolated in its bucket like PromQL's
    /// `histogram_quantile` (seconds).
    fn quantile(&self, q: f64) -> f64 {
        let total = self.counts.get(&u64::MAX).copied().unwrap_or(0.0);
        if total == 0.0 {
            return 0.0;
        }
        let rank = q * total;
        let (mut below, mut lower) = (0.0, 0.0);
        for (le, count) in &self.counts {
            let upper = if *le == u64::MAX {
                lower
            } else {
                f64::from_bits(*le)
            };
            if *count >= rank {
                let inside = count - below;
                return if inside <= 0.0 {
                    upper
                } else {
                    lower + (upper - lower) * (rank - below) / inside
                };
            }
            below = *count;
            lower = upper;
        }
        lower
    }
}

async fn histogram(port: u16, name: &str) -> Buckets {
    let Some((_, text)) = process::http_get(port, "/metrics").await else {
        return Buckets::default();
    };
    let mut out = Buckets::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if let Some(rest) = series.strip_prefix(&format!("{name}_bucket{{")) {
            let le = rest
                .split("le=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or("+Inf");
            let key = if le == "+Inf" {
                u64::MAX
            } else {
                le.parse::<f64>().map_or(u64::MAX, f64::to_bits)
            };
            *out.counts.entry(key).or_insert(0.0) += value;
        } else if series.starts_with(&format!("{name}_sum")) {
            out.sum += value;
        }
    }
    // f64 bits of positive numbers sort like the numbers; +Inf is last.
    out
}

/// The operator's counter `name` (all label sets summed); 0 while its
/// endpoint is not up.
async fn counter(port: u16, name: &str) -> f64 {
    let Some((_, text)) = process::http_get(port, "/metrics").await else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// The operator binary, cluster wide, default settings, metrics on `port`.
fn spawn(
    bin: &Path,
    kubeconfig: &Path,
    log: &Path,
    port: u16,
) -> Result<tokio::process::Child, Failure> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| check(format!("{}: {e}", log.display())))?;
    let err = file.try_clone().map_err(|e| check(e.to_string()))?;
    tokio::process::Command::new(bin)
        // Each step's and each console call's time, for the profile (debug
        // lines of two targets only; JSON so that they parse).
        .args(["run", "--log-format", "json", "--log-level", PROFILE_FILTER])
        .arg(format!("--metrics-addr=127.0.0.1:{port}"))
        .arg("--health-addr=127.0.0.1:0")
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| check(format!("{}: {e}", bin.display())))
}

fn plain_statefulset(name: &str) -> Result<StatefulSet, Failure> {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": {"probe": name}},
            "template": {
                "metadata": {"labels": {"probe": name}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/x:1"}]}
            }
        }
    }))
    .map_err(|e| check(e.to_string()))
}

/// Time until `count` pods deleted at once are back and ready (plain
/// StatefulSets of one pod in the bench's namespace): the median of 3.
async fn restart_delay(t: &TestContext, count: usize) -> Result<Duration, Failure> {
    let api = t.api::<StatefulSet>();
    for i in 0..count {
        api.create(
            &PostParams::default(),
            &plain_statefulset(&format!("probe-{i}"))?,
        )
        .await?;
    }
    let pods = t.api::<Pod>();
    let probes = ListParams::default().labels("probe");
    until("probes ready", || async {
        let list = pods.list(&probes).await?.items;
        Ok(list.len() == count && list.iter().all(ready))
    })
    .await?;
    let mut samples = Vec::new();
    for _ in 0..3 {
        let before: Vec<String> = pods
            .list(&probes)
            .await?
            .items
            .iter()
            .filter_map(|p| p.uid())
            .collect();
        let started = Instant::now();
        pods.delete_collection(&DeleteParams::default(), &probes)
            .await?;
        until("probes back", || async {
            let list = pods.list(&probes).await?.items;
            let back = list
                .iter()
                .filter(|p| p.uid().is_some_and(|u| !before.contains(&u)) && ready(p))
                .count();
            Ok(back == count)
        })
        .await?;
        samples.push(started.elapsed());
    }
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    samples.sort();
    Ok(samples[1])
}

/// Pods a kwok node takes (kwok's default capacity).
const PODS_PER_NODE: usize = 110;

/// Adds kwok nodes (like cluster-up.sh's) until the fleet of `clusters` and
/// its restart probes fit, with room to spare; returns the names added.
async fn add_nodes(
    t: &TestContext,
    clusters: usize,
    have: &mut Vec<String>,
) -> Result<(), Failure> {
    let pods = clusters * (PODS_PER_CLUSTER + STORAGE_REPLICASETS as usize) + 100;
    let wanted = pods.div_ceil(PODS_PER_NODE);
    let nodes = Api::<Node>::all(t.client.clone());
    while have.len() < wanted {
        let name = format!("scale-node-{}", have.len());
        let node: Node = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"type": "kwok", "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                           "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": name}
            }
        }))
        .map_err(|e| check(e.to_string()))?;
        nodes.create(&PostParams::default(), &node).await?;
        have.push(name);
    }
    // Ready, and without the not-ready taint admission put on them (the
    // node-lifecycle controller that would lift it does not run here).
    for name in have.iter() {
        until(&format!("node {name} Ready"), || async {
            let node = nodes.get(name).await?;
            let ready = node
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            Ok(ready)
        })
        .await?;
        nodes
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"taints": null}})),
            )
            .await?;
    }
    Ok(())
}

/// Lets the namespaces go: Role finalizers released (the operator that
/// would act on them is stopped by then), then the namespaces deleted.
async fn release(t: &TestContext, namespaces: &[String]) {
    for ns in namespaces {
        let roles = Api::<Role>::namespaced(t.client.clone(), ns);
        for role in ["router", "storage"] {
            let _ = roles
                .patch(
                    role,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
        let _ = Api::<Namespace>::all(t.client.clone())
            .delete(ns, &DeleteParams::background())
            .await;
    }
}

/// The operator's log filter: warnings, plus the pipeline's per-step and
/// the console's per-call debug lines the profile reads.
const PROFILE_FILTER: &str = "warn,tarantool_operator::controller::pipeline=debug,tarantool_operator_cartridge::console=debug";

/// Where pass time went, from the operator's log: per Role step, and per
/// console call (an exec into a pod running the admin console).
#[derive(Debug, Default)]
struct Profile {
    /// Milliseconds per Role step, by step name.
    steps: BTreeMap<String, Vec<f64>>,
    /// Milliseconds per console call.
    console: Vec<f64>,
    /// Per console chunk (its name): milliseconds per call, and how many
    /// of the calls failed.
    chunks: BTreeMap<String, (Vec<f64>, usize)>,
}

impl Profile {
    /// The log of `log` from byte `from` on.
    fn read(log: &Path, from: u64) -> Self {
        let text = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
        let mut profile = Self::default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let f = &v["fields"];
            match f["message"].as_str() {
                Some("step") if f["controller"] == "role" => {
                    if let (Some(step), Some(us)) = (f["step"].as_str(), f["elapsed_us"].as_f64()) {
                        profile
                            .steps
                            .entry(step.to_string())
                            .or_default()
                            .push(us / 1000.0);
                    }
                }
                Some(outcome @ ("console call done" | "console call failed")) => {
                    if let Some(ms) = f["elapsed_ms"].as_f64() {
                        profile.console.push(ms);
                        let chunk = f["chunk"].as_str().unwrap_or("?").to_string();
                        let entry = profile.chunks.entry(chunk).or_default();
                        entry.0.push(ms);
                        entry.1 += usize::from(outcome == "console call failed");
                    }
                }
                _ => {}
            }
        }
        profile
    }

    /// The `q` quantile of `values` (nearest rank), 0 when empty.
    fn quantile(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or(0.0)
    }

    /// Prints the console's share and the steps that took the most time.
    fn print(&self, pods: usize, pass_seconds: f64) -> serde_json::Value {
        let console_s: f64 = self.console.iter().sum::<f64>() / 1000.0;
        let steps_s: f64 = self.steps.values().flatten().sum::<f64>() / 1000.0;
        println!(
            "[{pods} pods] profile: {} console calls, p50 {:.0} ms, p99 {:.0} ms, {console_s:.1} s in all = {:.0}% of pass time ({pass_seconds:.1} s); the Role steps' time: {steps_s:.1} s",
            self.console.len(),
            Self::quantile(&self.console, 0.5),
            Self::quantile(&self.console, 0.99),
            if pass_seconds > 0.0 {
                100.0 * console_s / pass_seconds
            } else {
                0.0
            },
        );
        let mut chunks: Vec<(&String, &(Vec<f64>, usize))> = self.chunks.iter().collect();
        chunks.sort_by_key(|c| std::cmp::Reverse(c.1.0.len()));
        let mut by_chunk = Vec::new();
        for (chunk, (ms, failed)) in chunks.into_iter().take(6) {
            println!(
                "[{pods} pods]   console {chunk}: {} calls ({failed} failed), p50 {:.0} ms, {:.1} s in all",
                ms.len(),
                Self::quantile(ms, 0.5),
                ms.iter().sum::<f64>() / 1000.0
            );
            by_chunk.push(json!({"chunk": chunk, "calls": ms.len(), "failed": failed,
                "p50_ms": Self::quantile(ms, 0.5)}));
        }
        let mut by_total: Vec<(&String, &Vec<f64>)> = self.steps.iter().collect();
        by_total.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()));
        let mut top = Vec::new();
        for (step, ms) in by_total.into_iter().take(5) {
            let total = ms.iter().sum::<f64>() / 1000.0;
            println!(
                "[{pods} pods]   {step}: {} runs, p50 {:.1} ms, p99 {:.1} ms, {total:.1} s in all",
                ms.len(),
                Self::quantile(ms, 0.5),
                Self::quantile(ms, 0.99)
            );
            top.push(
                json!({"step": step, "runs": ms.len(), "p50_ms": Self::quantile(ms, 0.5),
                "p99_ms": Self::quantile(ms, 0.99), "seconds": total}),
            );
        }
        json!({"console_calls": self.console.len(), "console_seconds": console_s,
            "console_p50_ms": Self::quantile(&self.console, 0.5),
            "console_p99_ms": Self::quantile(&self.console, 0.99), "console_chunks": by_chunk,
            "top_steps": top})
    }
}

/// One tier's figures.
async fn tier(
    t: &TestContext,
    port: u16,
    pid: u32,
    namespaces: &[String],
    added: &[String],
    round: usize,
    log: &Path,
) -> Result<serde_json::Value, Failure> {
    let pods = namespaces.len() * PODS_PER_CLUSTER;
    let log_from = std::fs::metadata(log).map_or(0, |m| m.len());
    let passes_before = histogram(port, "tarantool_operator_reconcile_duration_seconds").await;
    let plans_before = histogram(port, "tarantool_operator_strategy_plan_seconds").await;

    let applied = Instant::now();
    for ns in added {
        create_cluster(t, ns).await?;
    }
    let to_ready = until("every Cluster Ready", || all_ready(t, namespaces)).await?;
    println!(
        "[{pods} pods] apply to every Cluster Ready: {:.1} s ({} new Clusters)",
        to_ready.as_secs_f64(),
        added.len()
    );
    quiet(t, applied).await?;

    // Converged: traffic per minute and memory.
    let (before, reads_before) = (traffic(t).await?, apiserver::reads(t).await?);
    tokio::time::sleep(SAMPLE).await;
    let (after, reads_after) = (traffic(t).await?, apiserver::reads(t).await?);
    let per_minute = 60.0 / SAMPLE.as_secs_f64();
    let writes = (after.writes - before.writes) * per_minute;
    let execs = (after.execs - before.execs) * per_minute;
    let reads = (reads_after - reads_before) * per_minute;
    let (steady_rss, _) = memory(pid);
    println!(
        "[{pods} pods] converged: {writes:.0} writes/min, {execs:.0} exec/min, {reads:.0} reads (GET+LIST of the operator's kinds)/min; RSS {steady_rss:.1} MiB"
    );

    // Every storage Role at once.
    let storage_replicasets = namespaces.len() * STORAGE_REPLICASETS as usize;
    let delay = restart_delay(t, storage_replicasets).await?;
    let lower_bound = delay * 3;
    let image = format!("tarantool/tarantool-operator-examples-kv:scale-{round}");
    let during = traffic(t).await?;
    for ns in namespaces {
        set_storage_image(t, ns, &image).await?;
    }
    let rollout = until("every storage Role rolled", || {
        all_rolled(t, namespaces, &image)
    })
    .await?;
    let rolled = traffic(t).await?;
    let rollout_execs = rolled.execs - during.execs;
    let (_, peak_rss) = memory(pid);
    println!(
        "[{pods} pods] rolling update of {} storage Roles ({storage_replicasets} replica sets) at once: {:.1} s = {:.2}x the lower bound (3 x {:.2} s restart of {storage_replicasets} pods at once)",
        namespaces.len(),
        rollout.as_secs_f64(),
        rollout.as_secs_f64() / lower_bound.as_secs_f64(),
        delay.as_secs_f64()
    );
    println!(
        "[{pods} pods] the rollout made {rollout_execs:.0} exec calls ({:.1} per restarted pod)",
        rollout_execs / (storage_replicasets * 3) as f64
    );
    quiet(t, Instant::now()).await?;

    let passes = histogram(port, "tarantool_operator_reconcile_duration_seconds")
        .await
        .minus(&passes_before);
    let plans = histogram(port, "tarantool_operator_strategy_plan_seconds")
        .await
        .minus(&plans_before);
    let total_passes = passes.counts.get(&u64::MAX).copied().unwrap_or(0.0);
    let (p50, p99) = (
        passes.quantile(0.5) * 1000.0,
        passes.quantile(0.99) * 1000.0,
    );
    let share = if passes.sum > 0.0 {
        plans.sum / passes.sum
    } else {
        0.0
    };
    println!(
        "[{pods} pods] passes: {total_passes:.0}, p50 {p50:.1} ms, p99 {p99:.1} ms, {:.1} s in all; strategy plans {:.2} s = {:.1}% of pass time; peak RSS {peak_rss:.1} MiB",
        passes.sum,
        plans.sum,
        share * 100.0
    );
    let profile = Profile::read(log, log_from).print(pods, passes.sum);
    Ok(json!({
        "profile": profile,
        "clusters": namespaces.len(), "pods": pods,
        "apply_to_ready_s": to_ready.as_secs_f64(),
        "converged_writes_per_min": writes, "converged_exec_per_min": execs,
        "converged_reads_per_min": reads,
        "steady_rss_mib": steady_rss, "peak_rss_mib": peak_rss,
        "restart_delay_s": delay.as_secs_f64(), "rollout_s": rollout.as_secs_f64(),
        "rollout_execs": rollout_execs,
        "rollout_over_lower_bound": rollout.as_secs_f64() / lower_bound.as_secs_f64(),
        "passes": total_passes, "pass_p50_ms": p50, "pass_p99_ms": p99,
        "pass_seconds": passes.sum, "strategy_seconds": plans.sum, "strategy_share": share,
    }))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(run("scale", |t| async move {
        t.install_crds().await?;
        let bin = process::operator_bin(&t).map_err(Failure::Check)?;
        println!("[scale] the operator: {}", bin.display());
        let log = std::env::temp_dir().join(format!("{}-operator.log", t.namespace));
        let port = process::free_port().map_err(Failure::Check)?;
        let mut operator = spawn(&bin, &t.cp.kubeconfig(), &log, port)?;
        let mut namespaces: Vec<String> = Vec::new();
        let mut nodes: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        let outcome = async {
            for (round, clusters) in tiers().into_iter().enumerate() {
                add_nodes(&t, clusters, &mut nodes).await?;
                let pid = operator.id().ok_or_else(|| check("the operator exited"))?;
                let added: Vec<String> = (namespaces.len()..clusters)
                    .map(|i| namespace(&t.namespace, i))
                    .collect();
                namespaces.extend(added.iter().cloned());
                let mut row = tier(&t, port, pid, &namespaces, &added, round, &log).await?;

                // Cold start on the converged fleet.
                operator.kill().await.map_err(|e| check(e.to_string()))?;
                let restarted = Instant::now();
                operator = spawn(&bin, &t.cp.kubeconfig(), &log, port)?;
                // Every Cluster and Role has had a pass; then no write or
                // exec for QUIET (the time of the last one is the figure).
                let objects = (namespaces.len() * 3) as f64;
                let passed = until("a pass of every object", || async {
                    Ok(counter(port, "tarantool_operator_reconciles_total").await >= objects)
                })
                .await?;
                let cold = quiet(&t, restarted).await?.max(passed);
                let pid = operator.id().ok_or_else(|| check("the operator exited"))?;
                let (rss, _) = memory(pid);
                println!(
                    "[{} pods] cold start: every object passed in {:.1} s, quiet (last write or exec) at {:.1} s; RSS after {rss:.1} MiB",
                    namespaces.len() * PODS_PER_CLUSTER,
                    passed.as_secs_f64(),
                    cold.as_secs_f64()
                );
                row["cold_start_all_passed_s"] = json!(passed.as_secs_f64());
                row["cold_start_s"] = json!(cold.as_secs_f64());
                rows.push(row);
            }
            Ok::<(), Failure>(())
        }
        .await;
        let _ = operator.kill().await;
        release(&t, &namespaces).await;
        for name in &nodes {
            let _ = Api::<Node>::all(t.client.clone())
                .delete(name, &DeleteParams::default())
                .await;
        }
        if outcome.is_err() {
            eprintln!("operator log tail:\n{}", process::tail(&log, 40));
        }
        outcome?;
        let report = json!({"pods_per_cluster": PODS_PER_CLUSTER, "tiers": rows});
        let out = t.cp.repo().join("target/bench");
        std::fs::create_dir_all(&out).map_err(|e| check(e.to_string()))?;
        std::fs::write(out.join("scale.json"), report.to_string())
            .map_err(|e| check(e.to_string()))?;
        println!("wrote {}", out.join("scale.json").display());
        Ok::<(), Failure>(())
    }));
}
