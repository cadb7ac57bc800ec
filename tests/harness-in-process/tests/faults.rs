//! Control-plane faults with the operator binary on the dev cluster and the
//! Cartridge double: kube-apiserver, and separately etcd, stopped and
//! started again (tests/control-plane/restart.sh) in the middle of a
//! bootstrap, a rolling update and a scale-down (replica sets drained and
//! expelled); and another field manager changing what the operator owns.
//!
//! Checked for each outage: the operator converges afterwards (Cluster
//! Ready, rollout done, the double's topology as the spec says), the
//! invariant watcher (which reconnects its own watch) saw no violation,
//! `/healthz` stayed up, `/readyz` said the apiserver was unreachable while
//! it was down, and the requests the operator sent during the outage
//! (its `tarantool_operator_apiserver_requests_total`) stay under a bound
//! computed from its backoff settings and the outage's length: the number
//! of retries those backoffs allow, never a rate measured against a clock.
//!
//! Stopping etcd or the apiserver stops them for everything on this control
//! plane: the tests of this file take one lock and run one at a time, and an
//! [`Outage`] starts what it stopped when dropped, whatever failed.

#[path = "../../harness/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tarantool_operator::api::names::statefulset_names;
use tarantool_operator::api::{Cluster, Role};
use test_harness::{TestContext, run};

use support::scenario::{
    Failure, check, create_article, set_image, settled, wait_bootstrapped, wait_joined,
};
use support::{apiserver, double, invariants, process};

/// One test of this file at a time: an outage stops the control plane for
/// all, and the write counts of the conflict test are the apiserver's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The operator's retry settings in these tests (its flags).
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(4);
/// The operator's watch backoff: 0.8 s doubling up to 5 s, jittered
/// upwards only.
use tarantool_operator::controller::run::{WATCH_BACKOFF_MAX, WATCH_BACKOFF_MIN};
/// Watches the operator keeps: the Cluster controller's Clusters, Services
/// and Roles; the Role controller's Roles, StatefulSets, Services, pods,
/// Clusters and strategy ConfigMaps.
const WATCHES: u64 = 9;
/// Objects with passes of their own: the Cluster and its two Roles.
const OBJECTS: u64 = 3;
/// Requests one failing pass may send before it gives up: the failing
/// request, the status write and the Event reporting the failure, and one
/// more for a step running writes side by side.
const REQUESTS_PER_PASS: u64 = 4;

/// A control-plane component the tests stop.
#[derive(Clone, Copy, Debug)]
enum Component {
    Apiserver,
    Etcd,
}

impl Component {
    fn arg(self) -> &'static str {
        match self {
            Component::Apiserver => "apiserver",
            Component::Etcd => "etcd",
        }
    }
}

fn restart_script(t: &TestContext) -> PathBuf {
    t.cp.repo().join("tests/control-plane/restart.sh")
}

/// A component stopped; started again by [`Outage::end`] or, should the
/// test fail first, when dropped.
struct Outage {
    component: Component,
    script: PathBuf,
    stopped: bool,
    began: Instant,
}

impl Outage {
    async fn begin(t: &TestContext, component: Component) -> Result<Self, Failure> {
        let script = restart_script(t);
        // Armed before the stop: a stop that fails halfway is undone too.
        let outage = Self {
            component,
            script,
            stopped: true,
            began: Instant::now(),
        };
        // The window counts from before the stop: the requests counted
        // do too, and the apiserver may take seconds to go.
        outage.run("--stop").await?;
        Ok(outage)
    }

    async fn run(&self, mode: &str) -> Result<(), Failure> {
        let out = tokio::process::Command::new("bash")
            .arg(&self.script)
            .args([self.component.arg(), mode])
            .output()
            .await
            .map_err(|e| Failure::Check(format!("restart.sh: {e}")))?;
        check(out.status.success(), || {
            format!(
                "restart.sh {} {mode}: {}",
                self.component.arg(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Starts the component again; how long it was down.
    async fn end(mut self) -> Result<Duration, Failure> {
        self.run("--start").await?;
        self.stopped = false;
        Ok(self.began.elapsed())
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if self.stopped {
            let status = std::process::Command::new("bash")
                .arg(&self.script)
                .args([self.component.arg(), "--start"])
                .status();
            eprintln!(
                "{:?} started again after a failure: {status:?}",
                self.component
            );
        }
    }
}

/// What a kubelet does for a real control plane's static pods, for the
/// dev cluster's scheduler and controller manager while faults are
/// injected: started again when they exit. They exit by design after an
/// etcd restart (kube-scheduler when a pod it cached moves under it: "the
/// scheduler cache is corrupted"), and without them no pod would be placed
/// or recreated, which is no test of the operator. Stops when dropped.
struct Kubelet {
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    fn start(t: &TestContext) -> Self {
        let script = restart_script(t);
        let run = t.cp.run_dir();
        let task = tokio::spawn(async move {
            loop {
                for (arg, name) in [
                    ("scheduler", "kube-scheduler"),
                    ("controller-manager", "kube-controller-manager"),
                ] {
                    // As restart.sh judges it: a zombie has no exe.
                    let alive = std::fs::read_to_string(run.join(format!("{name}.pid")))
                        .ok()
                        .is_some_and(|pid| {
                            std::fs::read_link(format!("/proc/{}/exe", pid.trim())).is_ok()
                        });
                    if !alive {
                        let status = tokio::process::Command::new("bash")
                            .arg(&script)
                            .args([arg, "--start"])
                            .status()
                            .await;
                        eprintln!("{name} had exited: started again ({status:?})");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self { task }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many attempts a backoff from `min` doubling to `max` allows within
/// `window`: the first, and each retry whose smallest delay still fits.
fn attempts_within(window: Duration, min: Duration, max: Duration) -> u64 {
    let mut attempts = 1;
    let mut spent = Duration::ZERO;
    let mut delay = min;
    loop {
        spent += delay;
        if spent > window {
            return attempts;
        }
        attempts += 1;
        delay = (delay * 2).min(max);
    }
}

/// The most requests the operator may send during an outage of `window`
/// with its backoffs, plus `probes` readiness probes (one request each).
fn request_bound(window: Duration, probes: u64) -> u64 {
    let watches = WATCHES * attempts_within(window, WATCH_BACKOFF_MIN, WATCH_BACKOFF_MAX);
    let passes = OBJECTS * REQUESTS_PER_PASS * attempts_within(window, BACKOFF_MIN, BACKOFF_MAX);
    watches + passes + probes
}

/// The operator binary with known metrics and health ports.
struct Operator {
    child: tokio::process::Child,
    log: PathBuf,
    metrics: u16,
    health: u16,
}

async fn start_operator(t: &TestContext) -> Result<Operator, Failure> {
    let metrics = process::free_port().map_err(Failure::Check)?;
    let health = process::free_port().map_err(Failure::Check)?;
    let flags = [
        format!("--metrics-addr=127.0.0.1:{metrics}"),
        format!("--health-addr=127.0.0.1:{health}"),
        format!("--backoff-min-seconds={}", BACKOFF_MIN.as_secs()),
        format!("--backoff-max-seconds={}", BACKOFF_MAX.as_secs()),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (child, log) = process::start_operator(t, &flags)?;
    let operator = Operator {
        child,
        log,
        metrics,
        health,
    };
    t.eventually("the operator's health endpoint", || async {
        Ok(process::http_get(operator.health, "/healthz").await)
    })
    .await?;
    Ok(operator)
}

impl Operator {
    /// Requests the controllers sent so far, whatever their outcome.
    async fn requests(&self) -> Result<u64, Failure> {
        let (code, body) = process::http_get(self.metrics, "/metrics")
            .await
            .ok_or_else(|| Failure::Check("no answer on /metrics".into()))?;
        check(code == 200, || format!("/metrics: {code}"))?;
        let total: f64 = body
            .lines()
            .filter(|l| l.starts_with("tarantool_operator_apiserver_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        // A counter: whole numbers.
        Ok(total as u64)
    }
}

/// What the health endpoints said during an outage.
#[derive(Debug, Default)]
struct Seen {
    healthz: Vec<u16>,
    readyz: Vec<(u16, String)>,
}

/// An outage of `component` for about `down`, probing the endpoints once a
/// second meanwhile; the requests the operator sent and their bound.
async fn outage(
    t: &TestContext,
    operator: &Operator,
    component: Component,
    down: Duration,
) -> Result<Seen, Failure> {
    let before = operator.requests().await?;
    let outage = Outage::begin(t, component).await?;
    let mut seen = Seen::default();
    let mut probes = 0;
    while outage.began.elapsed() < down {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let healthz = process::http_get(operator.health, "/healthz").await;
        seen.healthz.push(healthz.map_or(0, |(c, _)| c));
        if let Some(readyz) = process::http_get(operator.health, "/readyz").await {
            seen.readyz.push(readyz);
        }
        probes += 1;
    }
    let during = operator.requests().await?.saturating_sub(before);
    let window = outage.end().await?;
    let bound = request_bound(window, probes);
    eprintln!(
        "{component:?} down {:.1}s: {during} requests (bound {bound}); /readyz said {:?}",
        window.as_secs_f64(),
        seen.readyz
    );
    check(during <= bound, || {
        format!(
            "{during} requests during a {:.1}s outage of {component:?}: more than the backoffs allow ({bound})",
            window.as_secs_f64()
        )
    })?;
    check(seen.healthz.iter().all(|c| *c == 200), || {
        format!("/healthz during the outage: {:?}", seen.healthz)
    })?;
    // Down: requests refused. etcd down: the apiserver holds the
    // operator's requests (it always has some to send mid-scenario), or
    // fails them with 5xx.
    let says: &[&str] = match component {
        Component::Apiserver => &["apiserver unreachable"],
        Component::Etcd => &["apiserver not answering", "apiserver unreachable"],
    };
    check(
        seen.readyz
            .iter()
            .any(|(c, body)| *c == 503 && says.iter().any(|s| body.contains(s))),
        || format!("/readyz never said {says:?}: {:?}", seen.readyz),
    )?;
    // Ready again once the apiserver answers.
    t.eventually("/readyz ready again", || async {
        Ok(process::http_get(operator.health, "/readyz")
            .await
            .filter(|(c, _)| *c == 200))
    })
    .await?;
    Ok(seen)
}

/// How long each outage lasts: long enough for every watch and pass to
/// fail and back off a few times.
const DOWN: Duration = Duration::from_secs(10);

/// Bootstrap, rolling update and scale-down of the article's cluster, each
/// interrupted by an outage of `first`, `second` and `first` again.
async fn interrupted(t: &TestContext, first: Component, second: Component) -> Result<(), Failure> {
    t.install_crds().await?;
    let _kubelet = Kubelet::start(t);
    let mut operator = start_operator(t).await?;
    let outcome =
        async {
            let pods = t.api::<Pod>();
            // (c) a bootstrap: pods being made, nothing joined yet.
            create_article(t).await?;
            t.eventually("the first pods", || async {
                Ok(Some(pods.list(&ListParams::default()).await?.items.len()).filter(|n| *n > 0))
            })
            .await?;
            outage(t, &operator, first, DOWN).await?;
            wait_bootstrapped(t).await?;
            wait_joined(t).await?;
            // From a running cluster on (while it boots every pod is
            // unavailable and nothing is deleted), through two outages,
            // its own watch reconnecting after each.
            let watcher = invariants::watch(t, 2, invariants::over_exec(t)).await;

            // (a) a rolling update: the first pod replaced.
            set_image(
                t,
                "storage",
                "tarantool/tarantool-operator-examples-kv:0.0.5",
            )
            .await?;
            t.eventually("the rollout under way", || async {
                Ok(Some(())
                    .filter(|_| watcher.lock().unwrap_or_else(|e| e.into_inner()).deletions > 0))
            })
            .await?;
            outage(t, &operator, second, DOWN).await?;
            let role = settled(t, 2, 2).await?;
            let update = role.status.and_then(|s| s.update).unwrap_or_default();
            check(update.done && update.updated_pods == 4, || {
                format!("the rollout after the outage: {update:?}")
            })?;

            // (b) a scale-down: a replica set drained, expelled, removed.
            let before = statefulset_names(&t.api::<Role>().get("storage").await?);
            t.api::<Role>()
                .patch(
                    "storage",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicasets": 1}})),
                )
                .await?;
            t.wait_for::<Role>("storage", "the scale-down seen", |r: Option<&Role>| {
                r.is_some_and(|r| {
                    r.status.as_ref().and_then(|s| s.observed_generation) == r.metadata.generation
                })
            })
            .await?;
            outage(t, &operator, first, DOWN).await?;
            settled(t, 1, 2).await?;
            t.wait_deleted::<StatefulSet>(&before[1], "the retired StatefulSet")
                .await?;
            // The double, not a console: what Cartridge itself holds.
            let aliases = double::replicaset_aliases(t).await?;
            let storages: Vec<&String> = aliases
                .iter()
                .filter(|a| a.starts_with("storage"))
                .collect();
            check(storages.len() == 1, || {
                format!("Cartridge after the scale-down: {aliases:?}")
            })?;
            t.wait_for::<Cluster>(
                "tarantool-cluster",
                "the Cluster Ready",
                |c: Option<&Cluster>| {
                    c.and_then(|c| c.status.as_ref())
                        .is_some_and(|s| s.phase == tarantool_operator::api::ClusterPhase::Ready)
                },
            )
            .await?;
            let v = watcher.lock().unwrap_or_else(|e| e.into_inner());
            check(v.clean(), || format!("invariants: {v:?}"))
        }
        .await;
    process::finish(&mut operator.child, &operator.log, outcome).await
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_operator_rides_out_apiserver_and_etcd_restarts() {
    let _serial = SERIAL.lock().await;
    run("faults-api-first", |t| async move {
        interrupted(&t, Component::Apiserver, Component::Etcd).await
    })
    .await;
    run("faults-etcd-first", |t| async move {
        interrupted(&t, Component::Etcd, Component::Apiserver).await
    })
    .await;
}

/// The operator's applies of StatefulSets so far (the apiserver's count;
/// the intruder only merge-patches, so every APPLY is the operator's).
async fn statefulset_applies(t: &TestContext) -> Result<f64, Failure> {
    Ok(apiserver::writes(t)
        .await?
        .iter()
        .filter(|(k, _)| {
            k.starts_with("APPLY statefulsets/") || k.starts_with("APPLY poddisruptionbudgets/")
        })
        .map(|(_, v)| v)
        .sum())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn another_field_manager_is_overruled_without_flapping() {
    let _serial = SERIAL.lock().await;
    run("faults-conflict", |t| async move {
        t.install_crds().await?;
        let mut operator = start_operator(&t).await?;
        let outcome = async {
            create_article(&t).await?;
            wait_bootstrapped(&t).await?;
            wait_joined(&t).await?;
            settled(&t, 2, 2).await?;
            let role = t.api::<Role>().get("storage").await?;
            let sts_name = statefulset_names(&role)
                .into_iter()
                .next()
                .ok_or_else(|| Failure::Check("no StatefulSet".into()))?;
            let statefulsets = t.api::<StatefulSet>();
            let budgets = t.api::<PodDisruptionBudget>();
            let wanted = statefulsets.get(&sts_name).await?;
            let container = wanted
                .spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .cloned()
                .ok_or_else(|| Failure::Check("no container".into()))?;
            let wanted_image = container.image.clone();
            // Another client, as another controller or a person would be.
            let intruder = t.cp.client().await?;
            let foreign = PatchParams {
                field_manager: Some("intruder".into()),
                ..PatchParams::default()
            };
            let sts_api: kube::Api<StatefulSet> = kube::Api::namespaced(intruder.clone(), &t.namespace);
            let pdb_api: kube::Api<PodDisruptionBudget> = kube::Api::namespaced(intruder, &t.namespace);
            let pdb_name = budgets
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .find(|n| n.starts_with(&sts_name) || n.contains(&sts_name))
                .ok_or_else(|| Failure::Check("no PodDisruptionBudget".into()))?;
            let applies_before = statefulset_applies(&t).await?;
            // Four rounds; each changes the size, the image and the budget
            // at once (three foreign changes), then waits until all three
            // are put back.
            let rounds = 4;
            let mut changes = 0;
            for round in 0..rounds {
                sts_api
                    .patch(&sts_name, &foreign, &Patch::Merge(json!({"spec": {"replicas": 3}})))
                    .await?;
                sts_api
                    .patch(
                        &sts_name,
                        &foreign,
                        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                            {"name": container.name, "image": format!("example.invalid/intruder:{round}")}
                        ]}}}})),
                    )
                    .await?;
                pdb_api
                    .patch(&pdb_name, &foreign, &Patch::Merge(json!({"spec": {"maxUnavailable": 2}})))
                    .await?;
                changes += 3;
                let image = wanted_image.clone();
                t.wait_for::<StatefulSet>(&sts_name, "the StatefulSet put back", move |s: Option<&StatefulSet>| {
                    s.map(|s| &s.spec).is_some_and(|spec| {
                        spec.replicas == Some(2)
                            && spec.template.spec.as_ref().and_then(|p| p.containers.first()).and_then(|c| c.image.clone()) == image
                    })
                })
                .await?;
                t.wait_for::<PodDisruptionBudget>(&pdb_name, "the budget put back", |p: Option<&PodDisruptionBudget>| {
                    p.and_then(|p| p.spec.as_ref())
                        .is_some_and(|s| s.max_unavailable == Some(IntOrString::Int(1)))
                })
                .await?;
            }
            settled(&t, 2, 2).await?;
            let answers = statefulset_applies(&t).await? - applies_before;
            eprintln!("{changes} foreign changes answered by {answers} applies");
            check(answers >= f64::from(rounds) && answers <= f64::from(2 * changes), || {
                format!("{answers} applies for {changes} foreign changes (at most two each)")
            })
        }
        .await;
        process::finish(&mut operator.child, &operator.log, outcome).await
    })
    .await;
}

#[test]
fn the_request_bound_counts_retries_not_seconds() {
    // 0.8, 1.6, 3.2 fit in 10 s (5.6), 5 more does not (10.6).
    assert_eq!(
        attempts_within(
            Duration::from_secs(10),
            WATCH_BACKOFF_MIN,
            WATCH_BACKOFF_MAX
        ),
        4
    );
    // 1, 2, 4, 4 (11) fit in 12 s, a fifth retry (15) does not.
    assert_eq!(
        attempts_within(Duration::from_secs(12), BACKOFF_MIN, BACKOFF_MAX),
        5
    );
    assert_eq!(attempts_within(Duration::ZERO, BACKOFF_MIN, BACKOFF_MAX), 1);
}
