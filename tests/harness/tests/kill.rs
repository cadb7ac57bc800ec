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

use tarantool_operator::api::{Cluster, ClusterPhase, Role};
use test_harness::run;

use support::scenario::{Failure, create_article, set_image};
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

fn rolled(role: Option<&Role>, replicasets: i32, image: &str) -> bool {
    let Some(role) = role else { return false };
    let current = role
        .spec
        .replicaset_template()
        .and_then(|t| t.pod_template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        == Some(image);
    current
        && role.status.as_ref().is_some_and(|s| {
            s.observed_generation == role.metadata.generation
                && s.updated_replicasets == replicasets
                && s.ready_replicasets == replicasets
                && s.update.as_ref().is_some_and(|u| u.done)
        })
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn killed_operator_resumes_updates_without_violations() {
    run("kill", |t| async move {
        let trials: usize = std::env::var("KILL_TRIALS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let seed: u64 = std::env::var("KILL_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("kill test: {trials} trials, KILL_SEED={seed}");
        let mut rng = Rng(seed);
        let bin = process::operator_bin(&t).map_err(Failure::Check)?;
        t.install_crds().await?;
        let dir = std::env::temp_dir().join(format!("kill-{}", t.namespace));
        std::fs::create_dir_all(&dir).map_err(|e| Failure::Check(e.to_string()))?;
        let log = dir.join("operator.log");
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
        let violations = invariants::watch(&t, 2);
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
        if !v.budget.is_empty() || !v.master_deleted.is_empty() {
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
