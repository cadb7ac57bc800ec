//! The operator binary stops when asked, whatever it is doing: Kubernetes
//! gives a terminating pod 30 s before SIGKILL, and an operator that
//! outlives that keeps its ports and, without leader election, can act
//! beside its successor.
//!
//! - Mid-rollout, with leader election, SIGTERM ends it cleanly (exit 0) and
//!   the Lease is handed over (no holder left).
//! - With a pass stuck in a console that never answers (the double's `hang`
//!   fault, a console timeout longer than the test), it exits at its
//!   shutdown timeout (exit 4), and a second signal ends it at once.
//!
//! The bound checked is the one Kubernetes sets (30 s), well above the
//! timeouts the operator is given here; the seconds it actually took are
//! printed, not asserted.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tarantool_operator_api::Role;
use test_harness::{TestContext, run};

use support::scenario::{
    Failure, check, create_article, set_image, wait_bootstrapped, wait_joined,
};
use support::{double, process};

/// What Kubernetes waits after SIGTERM before SIGKILL, by default.
const GRACE: Duration = Duration::from_secs(30);

/// Sends SIGTERM to `child`.
async fn sigterm(child: &tokio::process::Child) -> Result<(), Failure> {
    let pid = child
        .id()
        .ok_or_else(|| Failure::Check("the operator is gone already".into()))?;
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .map_err(|e| Failure::Check(format!("kill: {e}")))?;
    check(status.success(), || format!("kill -TERM {pid}: {status}"))
}

/// Waits for `child` to exit within [`GRACE`]: its exit code and how long
/// it took.
async fn exits(child: &mut tokio::process::Child) -> Result<(Option<i32>, Duration), Failure> {
    let started = Instant::now();
    match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(status) => {
            let status = status.map_err(|e| Failure::Check(e.to_string()))?;
            Ok((status.code(), started.elapsed()))
        }
        Err(_) => Err(Failure::Check(format!(
            "the operator was still running {}s after SIGTERM",
            GRACE.as_secs()
        ))),
    }
}

/// Every console of the test's namespace stops answering.
async fn hang_consoles(t: &TestContext) -> Result<(), Failure> {
    let pods = t.api::<Pod>().list(&ListParams::default()).await?;
    for pod in pods.items {
        double::set(
            t,
            &format!("set_fault('{}', '{}', 'hang')", t.namespace, pod.name_any()),
        )
        .await?;
    }
    Ok(())
}

/// The article's cluster bootstrapped, then a pass stuck asking a console
/// that never answers (a scale-down asks Cartridge first).
async fn stuck_pass(t: &TestContext) -> Result<(), Failure> {
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    hang_consoles(t).await?;
    t.api::<Role>()
        .patch(
            "storage",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicasets": 1}})),
        )
        .await?;
    // Long enough for the pass to reach the console.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn sigterm_mid_rollout_stops_cleanly_and_hands_the_lease_over() {
    run("shutdown-clean", |t| async move {
        let ns = t.namespace.clone();
        t.install_crds().await?;
        let (mut child, log) =
            process::start_operator(&t, &["--leader-elect", "--lease-namespace", &ns])?;
        let outcome = async {
            create_article(&t).await?;
            wait_bootstrapped(&t).await?;
            wait_joined(&t).await?;
            set_image(
                &t,
                "storage",
                "tarantool/tarantool-operator-examples-kv:0.0.5",
            )
            .await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            sigterm(&child).await?;
            let (code, took) = exits(&mut child).await?;
            println!(
                "exited with {code:?} {:.2}s after SIGTERM",
                took.as_secs_f64()
            );
            check(code == Some(0), || format!("exit code {code:?}"))?;
            let lease = t.api::<Lease>().get("tarantool-operator").await?;
            let holder = lease.spec.and_then(|s| s.holder_identity);
            check(holder.is_none(), || {
                format!("the Lease is still held by {holder:?}")
            })?;
            Ok::<(), Failure>(())
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

/// With a pass stuck in a hanging console, the operator started with
/// `shutdown_timeout` seconds, sent SIGTERM (and, with `second`, another a
/// second later) exits with the forced exit code (4).
async fn stuck_then_signalled(
    t: &TestContext,
    shutdown_timeout: &str,
    second: bool,
) -> Result<(), Failure> {
    t.install_crds().await?;
    // Console calls would wait 10 minutes.
    let flags = [
        "--console-timeout-seconds",
        "600",
        "--shutdown-timeout-seconds",
        shutdown_timeout,
    ];
    let (mut child, log) = process::start_operator(t, &flags)?;
    let outcome = async {
        stuck_pass(t).await?;
        sigterm(&child).await?;
        if second {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sigterm(&child).await?;
        }
        let (code, took) = exits(&mut child).await?;
        println!(
            "exited with {code:?} {:.2}s after the first SIGTERM",
            took.as_secs_f64()
        );
        check(code == Some(4), || {
            format!("exit code {code:?}, not the forced exit (4)")
        })?;
        Ok::<(), Failure>(())
    }
    .await;
    process::finish(&mut child, &log, outcome).await
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_pass_stuck_in_a_console_does_not_keep_the_operator_past_its_shutdown_timeout() {
    // The operator may take 3 s to stop.
    run("shutdown-stuck", |t| async move {
        stuck_then_signalled(&t, "3", false).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_second_signal_stops_the_operator_at_once() {
    // Neither the console nor the shutdown timeout would end it in time.
    run("shutdown-twice", |t| async move {
        stuck_then_signalled(&t, "600", true).await
    })
    .await;
}
