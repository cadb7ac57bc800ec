//! The operator killed with SIGKILL at random moments during rolling
//! updates, and restarted: every update completes, and an invariant watcher
//! sees no violation (never more than one pod of a replica set unavailable,
//! no master deleted while master, every pod on the new revision). The
//! real binary, real exec into the Cartridge double in real Tarantool.
//!
//! `KILL_TRIALS` sets the number of updates (default 2; `make soak` runs
//! 20); each update has one or two kills at random moments. The seed is
//! printed (`KILL_SEED` replays it).

mod support;

use std::time::Duration;

use tarantool_operator_api::{Cluster, ClusterPhase, Role};
use test_harness::run;

use support::scenario::{Failure, create_article, rolled, set_image};
use support::{invariants, process};

/// A small deterministic generator (xorshift), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

/// `KILL_TRIALS`, else `default`.
fn trials(default: usize) -> usize {
    std::env::var("KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `KILL_SEED` (a replay), else one from the clock.
fn seed() -> u64 {
    std::env::var("KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// The operator binary, the CRDs installed, and a directory with the
/// operator's log for the test.
async fn prepare(
    t: &test_harness::TestContext,
) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf), Failure> {
    let bin = process::operator_bin(t).map_err(Failure::Check)?;
    t.install_crds().await?;
    let dir = std::env::temp_dir().join(format!("kill-{}", t.namespace));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::Check(e.to_string()))?;
    let log = dir.join("operator.log");
    Ok((bin, dir, log))
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn killed_operator_resumes_updates_without_violations() {
    run("kill", |t| async move {
        let trials = trials(2);
        let seed = seed();
        eprintln!("kill test: {trials} trials, KILL_SEED={seed}");
        let mut rng = Rng(seed);
        let (bin, dir, log) = prepare(&t).await?;
        let kubeconfig = t.cp.kubeconfig();
        let start = || {
            process::spawn_operator(&bin, &kubeconfig, &t.namespace, &log, &[])
                .map_err(Failure::Check)
        };
        let mut child = start()?;
        create_article(&t).await?;
        t.wait_for::<Cluster>(
            "tarantool-cluster",
            "the Cluster bootstrapped",
            |c: Option<&Cluster>| {
                c.and_then(|c| c.status.as_ref())
                    .is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready)
            },
        )
        .await?;
        let violations = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
        let mut kills = 0;
        let outcome: Result<(), Failure> = async {
            for trial in 0..trials {
                let image = format!("tarantool/tarantool-operator-examples-kv:1.{trial}");
                set_image(&t, "storage", &image).await?;
                set_image(&t, "router", &image).await?;
                for _ in 0..(1 + rng.next() % 2) {
                    tokio::time::sleep(rng.millis(300, 4000)).await;
                    // SIGKILL: no chance to finish a step or write a status.
                    child
                        .start_kill()
                        .map_err(|e| Failure::Check(e.to_string()))?;
                    let _ = child.wait().await;
                    kills += 1;
                    child = start()?;
                }
                let image_done = image.clone();
                t.wait_for::<Role>(
                    "storage",
                    "the storage update done",
                    move |r: Option<&Role>| rolled(r, 2, &image_done),
                )
                .await?;
                let image_done = image.clone();
                t.wait_for::<Role>(
                    "router",
                    "the router update done",
                    move |r: Option<&Role>| rolled(r, 1, &image_done),
                )
                .await?;
            }
            Ok(())
        }
        .await;
        let _ = child.start_kill();
        if outcome.is_err() {
            eprintln!("--- operator log ---\n{}", process::tail(&log, 60));
        }
        outcome?;
        let v = violations.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "kill test: {trials} updates, {kills} kills, {} pod deletions, seed {seed}",
            v.deletions
        );
        if !v.clean() {
            return Err(Failure::Check(format!("violations (seed {seed}): {v:?}")));
        }
        if v.deletions < 6 * trials {
            return Err(Failure::Check(format!(
                "{} deletions for {trials} updates of 6 pods",
                v.deletions
            )));
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok::<(), Failure>(())
    })
    .await;
}

/// The day-2 operations that destroy things, one per trial in turn.
#[derive(Debug, Clone, Copy)]
enum Operation {
    /// `replicas` 2 -> 1 (a master switch where needed, expel, claims).
    ReplicasDown,
    /// A new volume template: every replica set migrates.
    VolumeMigration,
    /// A second storage Role created, filled, then deleted.
    RoleDeletion,
}

/// `replicas` after the trial's scaling: down on even trials, back up on
/// odd ones.
fn replicas_after(trial: usize) -> i32 {
    if trial.is_multiple_of(2) { 1 } else { 2 }
}

/// Patches the storage Role's spec with `patch` (a merge patch of `spec`).
async fn patch_storage(
    t: &test_harness::TestContext,
    patch: serde_json::Value,
) -> Result<(), Failure> {
    t.api::<Role>()
        .patch(
            "storage",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&serde_json::json!({ "spec": patch })),
        )
        .await?;
    Ok(())
}

/// Starts `operation`; returns what to wait for.
async fn begin(
    t: &test_harness::TestContext,
    operation: Operation,
    trial: usize,
) -> Result<(), Failure> {
    match operation {
        Operation::ReplicasDown => {
            let replicas = replicas_after(trial);
            patch_storage(
                t,
                serde_json::json!({"replicasetTemplate": {"replicas": replicas}}),
            )
            .await
        }
        Operation::VolumeMigration => {
            let role = t.api::<Role>().get("storage").await?;
            support::scenario::grow_volumes(t, &role, &format!("{}Gi", 2 + trial)).await
        }
        Operation::RoleDeletion => {
            let storage = t.api::<Role>().get("storage").await?;
            let mut spec = storage.spec.clone();
            spec.replicasets = 1;
            // It names the storage Role's Cluster, as the handshake asks.
            let mut archive = Role::new("archive", spec);
            archive.metadata.labels = storage.metadata.labels.clone();
            t.api::<Role>()
                .create(&kube::api::PostParams::default(), &archive)
                .await?;
            set_roles(t, &["router", "storage", "archive"]).await?;
            // Filled (joined, holding buckets) before it is deleted.
            t.wait_for::<Role>("archive", "the archive Role joined", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    s.replicasets
                        .iter()
                        .any(|rs| rs.joined > 0 && rs.weight.unwrap_or(0.0) > 0.0)
                })
            })
            .await?;
            t.api::<Role>()
                .delete("archive", &kube::api::DeleteParams::default())
                .await?;
            Ok(())
        }
    }
}

async fn set_roles(t: &test_harness::TestContext, roles: &[&str]) -> Result<(), Failure> {
    let list: Vec<serde_json::Value> = roles
        .iter()
        .map(|r| serde_json::json!({"name": r}))
        .collect();
    t.api::<Cluster>()
        .patch(
            "tarantool-cluster",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&serde_json::json!({"spec": {"roles": list}})),
        )
        .await?;
    Ok(())
}

/// Waits until `operation` is over.
async fn finished(
    t: &test_harness::TestContext,
    operation: Operation,
    trial: usize,
) -> Result<(), Failure> {
    match operation {
        Operation::ReplicasDown => {
            let replicas = replicas_after(trial);
            support::scenario::settled(t, 2, replicas).await?;
        }
        Operation::VolumeMigration => {
            support::scenario::settled(t, 2, current_replicas(t).await?).await?;
            t.eventually("the old generation gone", || async {
                let sts = t
                    .api::<k8s_openapi::api::apps::v1::StatefulSet>()
                    .list(&kube::api::ListParams::default())
                    .await?;
                Ok((sts
                    .items
                    .iter()
                    .filter(|s| {
                        s.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("storage-"))
                    })
                    .count()
                    == 2)
                    .then_some(()))
            })
            .await?;
        }
        Operation::RoleDeletion => {
            t.wait_deleted::<Role>("archive", "the archive Role drained and gone")
                .await?;
            set_roles(t, &["router", "storage"]).await?;
        }
    }
    Ok(())
}

async fn current_replicas(t: &test_harness::TestContext) -> Result<i32, Failure> {
    Ok(t.api::<Role>()
        .get("storage")
        .await?
        .spec
        .replicaset_template()
        .map_or(2, |t| t.replicas))
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn killed_operator_loses_no_volume_while_scaling_migrating_and_deleting() {
    run("kill-scale", |t| async move {
        let trials = trials(1);
        let seed = seed();
        eprintln!("kill-scale test: {trials} trials of each operation, KILL_SEED={seed}");
        let mut rng = Rng(seed);
        let (bin, dir, log) = prepare(&t).await?;
        let kubeconfig = t.cp.kubeconfig();
        let start = || {
            process::spawn_operator(&bin, &kubeconfig, &t.namespace, &log, &[])
                .map_err(Failure::Check)
        };
        let mut child = start()?;
        create_article(&t).await?;
        support::scenario::wait_bootstrapped(&t).await?;
        support::scenario::wait_joined(&t).await?;
        let losses = support::volumes::watch(&t, &["data"]);
        let mut kills = 0;
        let operations = [
            Operation::ReplicasDown,
            Operation::VolumeMigration,
            Operation::RoleDeletion,
        ];
        let outcome: Result<(), Failure> = async {
            for trial in 0..trials {
                for operation in operations {
                    eprintln!("kill-scale: trial {trial}: {operation:?}");
                    // Boxed: each operation's future is large in a debug
                    // build, and the test thread's stack is 2 MiB.
                    Box::pin(begin(&t, operation, trial)).await?;
                    for _ in 0..(1 + rng.next() % 2) {
                        tokio::time::sleep(rng.millis(200, 3000)).await;
                        child
                            .start_kill()
                            .map_err(|e| Failure::Check(e.to_string()))?;
                        let _ = child.wait().await;
                        kills += 1;
                        child = start()?;
                    }
                    Box::pin(finished(&t, operation, trial)).await?;
                }
            }
            Ok(())
        }
        .await;
        let _ = child.start_kill();
        if outcome.is_err() {
            eprintln!("--- operator log ---\n{}", process::tail(&log, 80));
        }
        outcome?;
        let v = losses.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "kill-scale test: {} operations, {kills} kills, {} claim deletions ({} unchecked), seed {seed}",
            trials * operations.len(),
            v.deletions,
            v.unchecked
        );
        if !v.members.is_empty() {
            return Err(Failure::Check(format!("volumes of members deleted (seed {seed}): {:?}", v.members)));
        }
        if v.deletions == 0 {
            return Err(Failure::Check("no claim deletion seen: the watcher saw nothing".into()));
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok::<(), Failure>(())
    })
    .await;
}
