//! Two replicas of the operator binary with leader election (`run
//! --leader-elect`) on the dev cluster, the article's cluster on the
//! Cartridge double, a rolling update running:
//!
//! - exactly one acts: the standby sends no write and no exec, not even a
//!   Lease write, while the leader holds the Lease;
//! - SIGKILL of the leader mid-rollout: the standby takes the Lease once it
//!   expired (never before) and within a lease plus a renewal interval, and
//!   the rollout goes on to its end without breaking an invariant;
//! - SIGSTOP of the leader (frozen, as in a partition): the standby takes
//!   over after the Lease expired, the two never act at once, and the
//!   frozen one, resumed, exits with the fenced exit code instead of acting.
//!
//! What each replica did is read from the apiserver's audit log (writes and
//! execs, `support::audit`), where each tells itself apart by its user
//! agent, `tarantool-operator/<version> (<identity>)`, not from the
//! operator's own logs. Handover times come from the Lease's own
//! timestamps (`renewTime`, `acquireTime`), written by the replicas on the
//! same host clock.

mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use tarantool_operator_api::Role;
use test_harness::{TestContext, default_timeout, run};

use support::audit::{self, Act};
use support::scenario::{
    Failure, check, create_article, rolled, set_image, wait_bootstrapped, wait_joined,
};
use support::{invariants, process};

/// The Lease duration the replicas run with (`--lease-seconds`).
const LEASE_SECONDS: u64 = 6;
/// How long before the Lease ends the leader renews it: the binary's
/// grace, a third of the lease.
const GRACE_SECONDS: u64 = LEASE_SECONDS.div_ceil(3);
/// The fence's margin (`--fence-margin-ms`): the leader stops acting this
/// long before its Lease may be taken over. Half the default for this
/// lease: the replicas share a host (no clock skew), and a renewal on a
/// busy test machine gets the grace minus this (1.5 s) to be answered
/// before the leader fences itself.
const MARGIN_MS: u64 = 500;
/// The binary's exit code once fenced (`cli::run::FENCED_EXIT_CODE`).
const FENCED_EXIT_CODE: i32 = 3;
/// The Lease's name (the binary's default).
const LEASE_NAME: &str = "tarantool-operator";
/// The image the rollout moves to.
const IMAGE: &str = "tarantool/tarantool-operator-examples-kv:2.0.0";

const US_PER_S: i64 = 1_000_000;

/// One replica of the operator: its Lease identity, process and log.
struct Replica {
    identity: String,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Replica {
    /// Starts a replica named `<namespace>-<suffix>` on the test's namespace,
    /// with its Lease there too.
    fn start(t: &TestContext, suffix: &str) -> Result<Self, Failure> {
        let bin = process::operator_bin(t).map_err(Failure::Check)?;
        let identity = format!("{}-{suffix}", t.namespace);
        let log = std::env::temp_dir().join(format!("{identity}-operator.log"));
        let _ = std::fs::remove_file(&log);
        let flags: Vec<String> = [
            "--leader-elect",
            "--lease-namespace",
            &t.namespace,
            "--identity",
            &identity,
            "--lease-seconds",
            &LEASE_SECONDS.to_string(),
            "--fence-margin-ms",
            &MARGIN_MS.to_string(),
        ]
        .iter()
        .map(|f| f.to_string())
        .collect();
        let child = process::spawn_operator(&bin, &t.cp.kubeconfig(), &t.namespace, &log, &flags)
            .map_err(Failure::Check)?;
        Ok(Self {
            identity,
            child,
            log,
        })
    }

    fn pid(&self) -> Result<u32, Failure> {
        self.child
            .id()
            .ok_or_else(|| Failure::Check(format!("{} is gone already", self.identity)))
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process.
    async fn signal(&self, signal: &str) -> Result<(), Failure> {
        let pid = self.pid()?;
        let status = tokio::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .map_err(|e| Failure::Check(format!("kill: {e}")))?;
        check(status.success(), || {
            format!("kill -{signal} {pid}: {status}")
        })
    }

    /// Whether it still runs.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The two replicas: `a` started first and leading, `b` its standby.
struct Pair {
    a: Replica,
    b: Replica,
}

impl Pair {
    /// Starts `a`, waits until it holds the Lease, then starts `b` and
    /// waits until it is waiting for the Lease.
    async fn start(t: &TestContext) -> Result<Self, Failure> {
        t.install_crds().await?;
        let a = Replica::start(t, "a")?;
        wait_holder(t, &a.identity).await?;
        let b = Replica::start(t, "b")?;
        let b_log = b.log.clone();
        t.eventually("the second replica waiting for the Lease", || {
            let log = b_log.clone();
            async move {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                Ok(text.contains("waiting for the Lease").then_some(()))
            }
        })
        .await?;
        Ok(Self { a, b })
    }

    /// Stops both and, on failure, prints the end of their logs.
    async fn finish(mut self, outcome: Result<(), Failure>) -> Result<(), Failure> {
        let outcome = process::finish(&mut self.a.child, &self.a.log, outcome).await;
        process::finish(&mut self.b.child, &self.b.log, outcome).await
    }
}

/// Now, in microseconds since the epoch (the clock the apiserver and the
/// replicas stamp with: the same host's).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The Lease's holder, its last renewal and its acquisition, in
/// microseconds since the epoch.
struct Holding {
    holder: Option<String>,
    renewed_us: Option<i64>,
    acquired_us: Option<i64>,
}

async fn holding(t: &TestContext) -> Result<Holding, kube::Error> {
    let spec = t
        .api::<Lease>()
        .get_opt(LEASE_NAME)
        .await?
        .and_then(|l| l.spec)
        .unwrap_or_default();
    Ok(Holding {
        holder: spec.holder_identity,
        renewed_us: spec.renew_time.map(|t| t.0.as_microsecond()),
        acquired_us: spec.acquire_time.map(|t| t.0.as_microsecond()),
    })
}

async fn wait_holder(t: &TestContext, identity: &str) -> Result<(), Failure> {
    t.eventually("the Lease held by the first replica", || async {
        let h = holding(t).await?;
        Ok((h.holder.as_deref() == Some(identity)).then_some(()))
    })
    .await?;
    Ok(())
}

/// A handover of the Lease, by the Lease's own timestamps.
struct Handover {
    /// The old holder's last renewal.
    last_renewal_us: i64,
    /// When the new holder acquired it.
    acquired_us: i64,
}

impl Handover {
    /// From the old holder's last renewal to the new holder's acquisition.
    fn took_us(&self) -> i64 {
        self.acquired_us - self.last_renewal_us
    }
}

/// Follows the Lease from now until `to` holds it, remembering the last
/// renewal `from` made. To be called right after `from` stopped renewing:
/// its last renewal stays in the Lease until the Lease expires.
async fn handover(t: &TestContext, from: &str, to: &str) -> Result<Handover, Failure> {
    let deadline = tokio::time::Instant::now() + default_timeout();
    let mut last_renewal_us = None;
    loop {
        let h = holding(t).await?;
        if h.holder.as_deref() == Some(from) {
            last_renewal_us = last_renewal_us.max(h.renewed_us);
        }
        if h.holder.as_deref() == Some(to) {
            let last_renewal_us = last_renewal_us.ok_or_else(|| {
                Failure::Check(format!(
                    "{to} holds the Lease, but no renewal by {from} was seen first"
                ))
            })?;
            let acquired_us = h
                .acquired_us
                .ok_or_else(|| Failure::Check("the Lease has no acquireTime".into()))?;
            return Ok(Handover {
                last_renewal_us,
                acquired_us,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Check(format!(
                "{to} did not take the Lease over within {:?} (holder: {:?})",
                default_timeout(),
                h.holder
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The takeover is safe and timely, by the Lease's timestamps: never
/// before the old holder's Lease expired (one lease after its last
/// renewal), and no later than a lease plus a renewal interval after it (a
/// standby sleeps until the expiry it last read, then re-reads and takes
/// the Lease after a jitter of at most a second; the bound is the one a
/// leader's renewals themselves keep, not a speed goal).
fn check_handover(h: &Handover) -> Result<(), Failure> {
    let lease_us = i64::try_from(LEASE_SECONDS).unwrap_or(i64::MAX) * US_PER_S;
    let renew_interval_us =
        i64::try_from(LEASE_SECONDS - GRACE_SECONDS).unwrap_or(i64::MAX) * US_PER_S;
    println!(
        "handover: the Lease taken {:.3}s after the last renewal (lease {LEASE_SECONDS}s)",
        h.took_us() as f64 / 1e6
    );
    check(h.took_us() >= lease_us, || {
        format!(
            "the Lease was taken over {}us after the last renewal, before it expired ({lease_us}us)",
            h.took_us()
        )
    })?;
    check(h.took_us() <= lease_us + renew_interval_us, || {
        format!(
            "the Lease was taken over {}us after the last renewal: more than a lease and a renewal interval",
            h.took_us()
        )
    })
}

/// Starts a rollout of both Roles to [`IMAGE`].
async fn start_rollout(t: &TestContext) -> Result<(), Failure> {
    set_image(t, "storage", IMAGE).await?;
    set_image(t, "router", IMAGE).await
}

/// Waits until both Roles rolled to [`IMAGE`].
async fn rollout_done(t: &TestContext) -> Result<(), Failure> {
    t.wait_for::<Role>("storage", "the storage rollout done", |r: Option<&Role>| {
        rolled(r, 2, IMAGE)
    })
    .await?;
    t.wait_for::<Role>("router", "the router rollout done", |r: Option<&Role>| {
        rolled(r, 1, IMAGE)
    })
    .await?;
    Ok(())
}

/// The acts of `identity` in the test's namespace, Lease writes left out
/// unless `leases`.
fn acts_of(t: &TestContext, identity: &str, leases: bool) -> Result<Vec<Act>, Failure> {
    Ok(audit::acts(t)
        .map_err(Failure::Check)?
        .into_iter()
        .filter(|a| a.by(identity) && (leases || !a.on_lease()))
        .collect())
}

fn listed(acts: &[Act]) -> String {
    acts.iter()
        .take(10)
        .map(|a| format!("\n  {a}"))
        .collect::<String>()
}

/// The article's cluster bootstrapped under two replicas, an invariant
/// watcher on its pods, and a rollout of both Roles under way (the first
/// pod deleted).
async fn mid_rollout(
    t: &TestContext,
) -> Result<
    (
        Pair,
        std::sync::Arc<std::sync::Mutex<invariants::Violations>>,
    ),
    Failure,
> {
    let pair = Pair::start(t).await?;
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    let violations = invariants::watch(t, 2, invariants::over_exec(t)).await;
    start_rollout(t).await?;
    deletions_past(t, &violations, 0, "the rollout under way").await?;
    Ok((pair, violations))
}

/// Waits until the invariant watcher saw more than `than` pod deletions.
async fn deletions_past(
    t: &TestContext,
    violations: &std::sync::Mutex<invariants::Violations>,
    than: usize,
    what: &str,
) -> Result<usize, Failure> {
    Ok(t.eventually(what, || async {
        let n = violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deletions;
        Ok((n > than).then_some(n))
    })
    .await?)
}

/// The watcher saw no violation and at least the rollout's six deletions.
fn check_invariants(violations: &std::sync::Mutex<invariants::Violations>) -> Result<(), Failure> {
    let v = violations.lock().unwrap_or_else(|e| e.into_inner());
    println!(
        "{} pod deletions, none breaking an invariant: {:?}",
        v.deletions, v.order
    );
    check(v.clean(), || format!("violations: {v:?}"))?;
    check(v.deletions >= 6, || {
        format!("{} deletions for a rollout of 6 pods", v.deletions)
    })
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_standby_makes_no_write_and_no_exec() {
    run("leader-one-acts", |t| async move {
        // From the start: the standby waits through the bootstrap too.
        let (mut pair, violations) = mid_rollout(&t).await?;
        let outcome = async {
            rollout_done(&t).await?;
            check_invariants(&violations)?;
            let h = holding(&t).await?;
            check(h.holder.as_deref() == Some(pair.a.identity.as_str()), || {
                format!("the Lease changed hands: held by {:?}", h.holder)
            })?;
            check(pair.a.running() && pair.b.running(), || {
                "a replica exited".into()
            })?;
            // The audit log does see the leader by its user agent: its
            // execs (Cartridge) and its pod deletions (the rollout).
            let a = acts_of(&t, &pair.a.identity, false)?;
            let execs = a.iter().filter(|a| a.subresource.as_deref() == Some("exec")).count();
            let deletions = a
                .iter()
                .filter(|a| a.resource == "pods" && a.verb == "delete")
                .count();
            println!(
                "leader: {} writes and execs ({execs} execs, {deletions} pod deletions)",
                a.len()
            );
            check(execs > 0 && deletions >= 6, || {
                format!(
                    "the audit log shows {execs} execs and {deletions} pod deletions by the leader ({}): \
                     is its user agent sent?",
                    pair.a.identity
                )
            })?;
            // The standby: nothing at all, not even a Lease write.
            let b = acts_of(&t, &pair.b.identity, true)?;
            check(b.is_empty(), || {
                format!("the standby sent {} writes or execs:{}", b.len(), listed(&b))
            })
        }
        .await;
        pair.finish(outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn sigkill_of_the_leader_hands_over_and_the_rollout_goes_on() {
    run("leader-sigkill", |t| async move {
        let (mut pair, violations) = mid_rollout(&t).await?;
        let outcome = async {
            pair.a
                .child
                .start_kill()
                .map_err(|e| Failure::Check(e.to_string()))?;
            let _ = pair.a.child.wait().await;
            let h = handover(&t, &pair.a.identity, &pair.b.identity).await?;
            check_handover(&h)?;
            rollout_done(&t).await?;
            check_invariants(&violations)?;
            // The new leader acted, and only once it held the Lease.
            let b = acts_of(&t, &pair.b.identity, false)?;
            check(!b.is_empty(), || "the new leader sent no write".into())?;
            let early: Vec<Act> = b
                .into_iter()
                .filter(|a| a.received_us < h.acquired_us)
                .collect();
            check(early.is_empty(), || {
                format!(
                    "the standby acted before it took the Lease:{}",
                    listed(&early)
                )
            })
        }
        .await;
        pair.finish(outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_frozen_leader_is_replaced_and_stops_when_resumed() {
    run("leader-sigstop", |t| async move {
        let (mut pair, violations) = mid_rollout(&t).await?;
        let outcome = async {
            pair.a.signal("STOP").await?;
            let h = handover(&t, &pair.a.identity, &pair.b.identity).await?;
            check_handover(&h)?;
            // The new leader gets on with the rollout while the old one is
            // still frozen.
            let seen = violations.lock().unwrap_or_else(|e| e.into_inner()).deletions;
            deletions_past(&t, &violations, seen, "the new leader deleting a pod").await?;
            let resumed_us = now_us();
            pair.a.signal("CONT").await?;
            let status = tokio::time::timeout(default_timeout(), pair.a.child.wait())
                .await
                .map_err(|_| Failure::Check("the resumed leader did not exit".into()))?
                .map_err(|e| Failure::Check(e.to_string()))?;
            check(status.code() == Some(FENCED_EXIT_CODE), || {
                format!("the resumed leader exited with {status}, not the fenced exit code")
            })?;
            rollout_done(&t).await?;
            check_invariants(&violations)?;

            let a = acts_of(&t, &pair.a.identity, false)?;
            let b = acts_of(&t, &pair.b.identity, false)?;
            // The fence's deadline, counted from the Lease's last renewal
            // (the leader counts from when it sent that renewal, later).
            let fence_us = h.last_renewal_us
                + i64::try_from(LEASE_SECONDS * 1000 - MARGIN_MS).unwrap_or(i64::MAX) * 1000;
            let late: Vec<Act> = a.iter().filter(|x| x.received_us >= fence_us).cloned().collect();
            check(late.is_empty(), || {
                format!("the frozen leader acted after its fence deadline:{}", listed(&late))
            })?;
            // Never both: every act of the old leader came before the first
            // of the new one.
            let first_b = b
                .first()
                .map(|x| x.received_us)
                .ok_or_else(|| Failure::Check("the new leader sent no write".into()))?;
            check(first_b >= h.acquired_us, || {
                format!("the standby acted {}us before it took the Lease", h.acquired_us - first_b)
            })?;
            let interleaved: Vec<Act> =
                a.iter().filter(|x| x.received_us >= first_b).cloned().collect();
            check(interleaved.is_empty(), || {
                format!(
                    "the old leader acted after the new one started:{}",
                    listed(&interleaved)
                )
            })?;
            // Resumed, it stopped: nothing at all, not even a Lease write.
            let after: Vec<Act> = acts_of(&t, &pair.a.identity, true)?
                .into_iter()
                .filter(|x| x.received_us >= resumed_us)
                .collect();
            check(after.is_empty(), || {
                format!("the resumed leader sent requests that act:{}", listed(&after))
            })?;
            println!(
                "frozen leader: {} acts, the last {:.3}s before its fence deadline; new leader: {} acts",
                a.len(),
                a.last().map_or(0.0, |x| (fence_us - x.received_us) as f64 / 1e6),
                b.len()
            );
            Ok(())
        }
        .await;
        pair.finish(outcome).await
    })
    .await;
}
