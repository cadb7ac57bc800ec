//! The operator binary end to end on the dev cluster: its Helm chart
//! installed, the binary run as a local process with the chart's
//! ServiceAccount token (so the chart's RBAC is all it has), reaching the
//! Cartridge double in real Tarantool over real pod exec. The article's
//! Cluster and Roles bootstrap; failover and config changes apply; health,
//! readiness and metrics answer; `helm uninstall` removes the release.

mod support;

use std::process::Stdio;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tarantool_operator_api::{Cluster, ClusterPhase, Reason, Role};
use tarantool_operator_cartridge::console::ConsoleOptions;
use tarantool_operator_cartridge::topology::cartridge::ExecConnector;
use tarantool_operator_cartridge::topology::{Connector, InstanceTarget};
use test_harness::{TestContext, run};

use support::process;
use support::scenario::{Failure, check, create_article, set_image};

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn helm_installed_operator_bootstraps_the_article_cluster_on_real_tarantool() {
    run("operator-e2e", |t| async move {
        let bin = process::operator_bin(&t).map_err(Failure::Check)?;
        t.install_crds().await?;
        let chart = t.cp.repo().join("charts/tarantool-operator");
        let watch = format!("watchNamespace={}", t.namespace);
        t.helm(&[
            "install",
            "op",
            &chart.display().to_string(),
            "--set",
            "image.repository=example.invalid/tarantool-operator",
            "--set",
            &watch,
            "--wait",
            "--timeout",
            "3m",
        ])
        .await?;
        let token =
            t.cp.service_account_token(
                &t.namespace,
                "op-tarantool-operator",
                Duration::from_secs(3600),
            )
            .await?;
        let dir = std::env::temp_dir().join(format!("operator-e2e-{}", t.namespace));
        std::fs::create_dir_all(&dir).map_err(|e| Failure::Check(e.to_string()))?;
        let kubeconfig = dir.join("kubeconfig");
        t.cp.write_token_kubeconfig(&token, &kubeconfig).await?;
        let (metrics, health) = (
            process::free_port().map_err(Failure::Check)?,
            process::free_port().map_err(Failure::Check)?,
        );
        let log = std::fs::File::create(dir.join("operator.log"))
            .map_err(|e| Failure::Check(e.to_string()))?;
        let log_err = log.try_clone().map_err(|e| Failure::Check(e.to_string()))?;
        let mut child = tokio::process::Command::new(&bin)
            .args([
                "run",
                "--namespace",
                &t.namespace,
                "--leader-elect",
                "--lease-namespace",
                &t.namespace,
            ])
            .args([
                "--identity",
                "e2e",
                "--poll-seconds",
                "1",
                "--log-level",
                "info",
            ])
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Failure::Check(format!("{}: {e}", bin.display())))?;

        let outcome = async {
            t.eventually("the operator ready", || async {
                Ok(process::http_get(health, "/readyz")
                    .await
                    .filter(|(c, _)| *c == 200))
            })
            .await?;
            check(
                process::http_get(health, "/healthz")
                    .await
                    .is_some_and(|(c, _)| c == 200),
                || "/healthz".into(),
            )?;

            create_article(&t).await?;
            let cluster = t
                .wait_for::<Cluster>(
                    "tarantool-cluster",
                    "the Cluster bootstrapped",
                    |c: Option<&Cluster>| {
                        c.and_then(|c| c.status.as_ref())
                            .is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready)
                    },
                )
                .await?;
            let leader = cluster.status.and_then(|s| s.leader).unwrap_or_default();

            // What Cartridge (the double) now holds, read over exec as an admin.
            let topology = ExecConnector::new(t.client.clone(), ConsoleOptions::default())
                .connect(&InstanceTarget::for_pod(&t.namespace, &leader, None));
            let replicasets = topology.replicasets().await?;
            check(replicasets.len() == 3, || {
                format!("{} replica sets", replicasets.len())
            })?;
            check(
                replicasets
                    .iter()
                    .all(|r| r.servers.len() == 2 && r.master.is_some()),
                || format!("{replicasets:?}"),
            )?;
            let buckets: u64 = replicasets.iter().filter_map(|r| r.bucket_count()).sum();
            check(buckets == 30_000, || {
                format!("{buckets} buckets after the vshard bootstrap")
            })?;
            check(topology.failover().await?.mode == "eventual", || {
                "failover not set".into()
            })?;

            let clusters = t.api::<Cluster>();
            clusters
                .patch(
                    "tarantool-cluster",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {
                        "failover": {"mode": "disabled"},
                        "config": {"app": {"ttl": 5}}
                    }})),
                )
                .await?;
            t.eventually("failover and config applied", || async {
                let failover = topology.failover().await.ok().map(|f| f.mode);
                let config = topology.config(&["app".into()]).await.ok();
                Ok((failover.as_deref() == Some("disabled")
                    && config.is_some_and(|c| c.get("app") == Some(&json!({"ttl": 5}))))
                .then_some(()))
            })
            .await?;

            // A rolling update of both Roles with the chart's permissions.
            for role in ["storage", "router"] {
                set_image(&t, role, "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
            }
            for (role, replicasets) in [("storage", 2), ("router", 1)] {
                t.wait_for::<Role>(role, "the rolling update done", move |r: Option<&Role>| {
                    r.is_some_and(|r| {
                        r.status.as_ref().is_some_and(|s| {
                            s.observed_generation == r.metadata.generation
                                && s.updated_replicasets == replicasets
                                && s.update.as_ref().is_some_and(|u| u.done)
                        })
                    })
                })
                .await?;
            }
            // Each storage replica set's master was switched once, and the
            // switch measured (status, Event, histogram below).
            let measured = t
                .eventually("both storage switches measured", || async {
                    let storage = t.api::<Role>().get("storage").await?;
                    let seconds: Vec<f64> = storage
                        .status
                        .iter()
                        .flat_map(|s| &s.replicasets)
                        .filter_map(|r| r.switch.as_ref()?.write_unavailable_seconds)
                        .collect();
                    Ok((seconds.len() == 2).then_some(seconds))
                })
                .await?;
            check(measured.iter().all(|s| *s >= 0.0), || {
                format!("write-unavailable seconds {measured:?}")
            })?;

            // Restarted pods answer on their console a moment after they
            // turn ready: ask until one does.
            let switched = t
                .eventually("Cartridge to answer after the update", || async {
                    Ok(topology.replicasets().await.ok())
                })
                .await?;
            check(
                switched
                    .iter()
                    .all(|r| r.servers.len() == 2 && r.master.is_some()),
                || format!("{switched:?}"),
            )?;

            // Converged: Cartridge gets no write over a quiet while (the
            // double counts every admin call of this namespace).
            let writes = || async {
                let calls = double_calls(&t).await?;
                Ok::<u64, Failure>(
                    [
                        "admin_edit_topology",
                        "admin_bootstrap_vshard",
                        "failover_set_params",
                        "config_patch_clusterwide",
                    ]
                    .iter()
                    .map(|name| {
                        calls
                            .get(*name)
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0)
                    })
                    .sum(),
                )
            };
            tokio::time::sleep(Duration::from_secs(3)).await;
            let before = writes().await?;
            // Bootstrap, failover, config and the switches were writes: the
            // counters are the right ones.
            check(before >= 4, || {
                format!("only {before} Cartridge writes counted")
            })?;
            tokio::time::sleep(Duration::from_secs(20)).await;
            let after = writes().await?;
            check(before == after, || {
                format!("{} Cartridge writes on a converged cluster", after - before)
            })?;

            let (code, text) = process::http_get(metrics, "/metrics")
                .await
                .unwrap_or_default();
            check(
                code == 200 && text.contains("tarantool_operator_reconciles_total"),
                || format!("/metrics: {code} {text}"),
            )?;
            // One Event and one observation per switch measured (the
            // router's replica set may have switched too).
            let events = t
                .api::<k8s_openapi::api::core::v1::Event>()
                .list(&kube::api::ListParams::default())
                .await?;
            let writable = events
                .items
                .iter()
                .filter(|e| e.reason.as_deref() == Some(Reason::MasterWritable.as_str()))
                .count();
            let observed = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("tarantool_operator_switch_write_unavailable_seconds_count ")
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            check(writable >= 2 && observed == writable, || {
                format!(
                    "{writable} {} Events, {observed} switches in the histogram: {:?}",
                    Reason::MasterWritable,
                    events
                        .items
                        .iter()
                        .filter(|e| e.reason.as_deref() == Some(Reason::MasterWritable.as_str()))
                        .map(|e| (e.message.clone(), e.count, e.series.clone()))
                        .collect::<Vec<_>>()
                )
            })?;
            Ok::<(), Failure>(())
        }
        .await;
        let _ = child.kill().await;
        if outcome.is_err() {
            let log = std::fs::read_to_string(dir.join("operator.log")).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!("--- operator log ---\n{}", tail.join("\n"));
        }
        t.helm(&["uninstall", "op", "--wait", "--timeout", "1m"])
            .await?;
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    })
    .await;
}

/// The double's per-namespace call counters, through its control socket.
async fn double_calls(
    t: &TestContext,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    match support::double::json(t, &format!("calls('{}')", t.namespace)).await? {
        serde_json::Value::Object(map) => Ok(map),
        // An empty Lua table encodes as [].
        serde_json::Value::Array(list) if list.is_empty() => Ok(serde_json::Map::new()),
        other => Err(Failure::Check(format!("double calls: {other}"))),
    }
}
