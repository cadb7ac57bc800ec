//! A converged cluster is quiet: over a minute the operator makes no write
//! to the apiserver and no call to Cartridge.
//!
//! Writes are counted from the apiserver's own request metrics
//! (`apiserver_request_total`), which have no namespace label; this test has
//! its own binary so that no other test of this crate runs beside it, and it
//! counts only the resources the operator writes. Events are the exception:
//! the control plane's own controllers write them for whatever earlier tests
//! left settling, so they are counted in this test's namespace, from the
//! Events themselves (a new one, or a new resourceVersion, is a write).

#[path = "../../harness/tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
mod in_process;

use std::collections::BTreeMap;
use std::time::Duration;

use tarantool_operator::api::{Cluster, ClusterPhase, Role};
use test_harness::{TestContext, run};

use support::apiserver;
use support::scenario::{Failure, create_article};

/// Every Event of the test's namespace, by name, with its resourceVersion.
async fn event_versions(t: &TestContext) -> Result<BTreeMap<String, String>, Failure> {
    Ok(t.api::<k8s_openapi::api::core::v1::Event>()
        .list(&kube::api::ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|e| {
            (
                format!(
                    "{}: {}",
                    e.reason.clone().unwrap_or_default(),
                    e.metadata.name.unwrap_or_default()
                ),
                e.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_converged_cluster_makes_no_writes_and_no_calls_over_a_minute() {
    run("quiet", |t| async move {
        t.install_crds().await?;
        let operator = in_process::start(&t);
        create_article(&t).await?;
        t.wait_for::<Cluster>(
            "tarantool-cluster",
            "the Cluster Ready",
            |c: Option<&Cluster>| {
                c.and_then(|c| c.status.as_ref())
                    .is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready)
            },
        )
        .await?;
        // Converged means the Roles have recorded their members too; then
        // give in-flight watch events a moment to settle.
        for name in ["router", "storage"] {
            t.wait_for::<Role>(name, "the Role's members recorded", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    !s.replicasets.is_empty() && s.replicasets.iter().all(|rs| rs.joined == 2)
                })
            })
            .await?;
        }
        // The apiserver's counters are cluster-wide: wait until the
        // namespaces of earlier tests are gone (their cleanup writes too;
        // namespaces left behind by an aborted run are idle and count not).
        let namespaces = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(t.client.clone());
        t.eventually("other test namespaces gone", || async {
            let others = namespaces
                .list(&kube::api::ListParams::default().labels(test_harness::NAMESPACE_LABEL))
                .await?
                .items
                .into_iter()
                .filter(|n| n.metadata.name.as_deref() != Some(t.namespace.as_str()))
                .filter(|n| {
                    n.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
                })
                .count();
            Ok((others == 0).then_some(()))
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(5)).await;

        let before = apiserver::writes(&t).await?;
        let events_before = event_versions(&t).await?;
        let calls_before = operator.topology.state().calls.len();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let after = apiserver::writes(&t).await?;
        let events_after = event_versions(&t).await?;
        let calls_after = operator.topology.state().calls.len();

        let mut grown: Vec<String> = after
            .iter()
            .filter(|(k, v)| before.get(*k).copied().unwrap_or(0.0) < **v)
            .map(|(k, v)| format!("{k}: +{}", v - before.get(k).copied().unwrap_or(0.0)))
            .collect();
        grown.extend(
            events_after
                .iter()
                .filter(|(name, version)| events_before.get(*name) != Some(*version))
                .map(|(name, _)| format!("Event {name}")),
        );
        if !grown.is_empty() {
            return Err(Failure::Check(format!(
                "writes during a quiet minute: {grown:?}"
            )));
        }
        if calls_after != calls_before {
            let state = operator.topology.state();
            return Err(Failure::Check(format!(
                "Cartridge calls during a quiet minute: {:?}",
                &state.calls[calls_before..]
            )));
        }
        Ok::<(), Failure>(())
    })
    .await;
}
