//! Day-2 scenarios end to end on the dev cluster with the Cartridge double
//! in real Tarantool: the operator binary runs as a process and reaches
//! every instance over real pod exec. A custom strategy from a ConfigMap,
//! pause and resume, replica sets down and up, and the volume change, each
//! in its own namespace, in parallel; the invariant watcher asks Cartridge
//! at every pod deletion whether a master went, and every bucket is
//! accounted for.

#[path = "../../harness/tests/support/mod.rs"]
mod support;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tarantool_operator::api::names::statefulset_names;
use tarantool_operator::api::{Cluster, Role};
use tarantool_operator::topology::ReplicasetInfo;
use test_harness::{TestContext, run};

use support::double::{cartridge, leader_topology};
use support::scenario::{
    Failure, approve_until_done, check, create_article, grow_volumes, on_delete_pending, set_image,
    settled, wait_bootstrapped, wait_joined,
};
use support::{double, invariants, process};

/// The operator binary on the test's namespace, and the article's cluster
/// bootstrapped on the double.
async fn start(t: &TestContext) -> Result<(tokio::process::Child, PathBuf), Failure> {
    let bin = process::operator_bin(t).map_err(Failure::Check)?;
    t.install_crds().await?;
    let log = std::env::temp_dir().join(format!("{}-operator.log", t.namespace));
    let child = process::spawn_operator(&bin, &t.cp.kubeconfig(), &t.namespace, &log, &[])
        .map_err(Failure::Check)?;
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    Ok((child, log))
}

async fn storage_buckets(t: &TestContext) -> Result<(u64, Vec<(String, u64)>), Failure> {
    let per: Vec<(String, u64)> = cartridge(t)
        .await?
        .iter()
        .filter(|r| r.alias.starts_with("storage"))
        .map(|r| (r.alias.clone(), r.bucket_count().unwrap_or(0)))
        .collect();
    Ok((per.iter().map(|(_, b)| b).sum(), per))
}

async fn patch_role(t: &TestContext, role: &str, patch: serde_json::Value) -> Result<(), Failure> {
    t.api::<Role>()
        .patch(role, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn clean(v: &invariants::Violations) -> Result<(), Failure> {
    check(v.clean(), || format!("invariants: {v:?}"))
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_custom_strategy_from_a_config_map_rolls_storages_on_the_double() {
    run("double-custom", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let bytes = std::fs::read(tarantool_operator::strategy::builtin::EXAMPLE_COMPONENT_PATH)
                .map_err(|e| Failure::Check(format!("the example component: {e}")))?;
            let cm = k8s_openapi::api::core::v1::ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("canary".into()),
                    labels: Some([("tarantool.io/strategy".to_string(), "true".to_string())].into()),
                    ..Default::default()
                },
                binary_data: Some([("strategy.wasm".to_string(), k8s_openapi::ByteString(bytes))].into()),
                ..Default::default()
            };
            t.api::<k8s_openapi::api::core::v1::ConfigMap>().create(&PostParams::default(), &cm).await?;
            patch_role(&t, "storage", json!({"spec": {"updateStrategy": {
                "name": "Canary", "configMapRef": {"name": "canary"}, "params": {"canaryWaitSeconds": "1"}}}}))
            .await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            let masters_before: Vec<String> = cartridge(&t).await?.iter().filter_map(|r| r.master_alias().map(str::to_string)).collect();
            set_image(&t, "storage", "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
            let role = settled(&t, 2, 2).await?;
            let update = role.status.and_then(|s| s.update).unwrap_or_default();
            check(update.strategy == "Canary" && update.component.is_some() && update.done, || format!("{update:?}"))?;
            clean(&watcher.lock().unwrap_or_else(|e| e.into_inner()))?;
            let after = cartridge(&t).await?;
            for rs in after.iter().filter(|r| r.alias.starts_with("storage")) {
                let master = rs.master_alias().unwrap_or_default().to_string();
                check(!masters_before.contains(&master), || format!("{}: master {master} not switched", rs.alias))?;
            }
            let (total, per) = storage_buckets(&t).await?;
            check(total == 30_000, || format!("buckets {per:?}"))
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_paused_update_waits_on_the_double_until_resumed() {
    run("double-pause", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            patch_role(
                &t,
                "storage",
                json!({"spec": {"updateStrategy": {"name": "SwitchMasterUpdate", "paused": true}}}),
            )
            .await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            set_image(
                &t,
                "storage",
                "tarantool/tarantool-operator-examples-kv:0.0.5",
            )
            .await?;
            t.wait_for::<Role>("storage", "the update paused", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "Paused"))
            })
            .await?;
            check(
                watcher.lock().unwrap_or_else(|e| e.into_inner()).deletions == 0,
                || "pods deleted while paused".into(),
            )?;
            patch_role(
                &t,
                "storage",
                json!({"spec": {"updateStrategy": {"paused": null}}}),
            )
            .await?;
            settled(&t, 2, 2).await?;
            let v = watcher.lock().unwrap_or_else(|e| e.into_inner());
            check(v.deletions >= 4, || format!("{} deletions", v.deletions))?;
            clean(&v)
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn replica_sets_drain_before_they_go_and_come_back_on_the_double() {
    run("double-scale", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let before = statefulset_names(&t.api::<Role>().get("storage").await?);
            patch_role(&t, "storage", json!({"spec": {"replicasets": 1}})).await?;
            settled(&t, 1, 2).await?;
            t.wait_deleted::<k8s_openapi::api::apps::v1::StatefulSet>(
                &before[1],
                "the retired StatefulSet",
            )
            .await?;
            let (total, per) = storage_buckets(&t).await?;
            check(total == 30_000 && per.len() == 1, || {
                format!("after scaling down: {per:?}")
            })?;
            patch_role(&t, "storage", json!({"spec": {"replicasets": 2}})).await?;
            settled(&t, 2, 2).await?;
            let (total, per) = storage_buckets(&t).await?;
            check(total == 30_000 && per.len() == 2, || {
                format!("after scaling up: {per:?}")
            })
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_volume_change_migrates_on_the_double_without_losing_buckets() {
    run("double-pvc", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let role = t.api::<Role>().get("storage").await?;
            let before = statefulset_names(&role);
            grow_volumes(&t, &role, "2Gi").await?;
            let role = settled(&t, 2, 2).await?;
            let after = statefulset_names(&role);
            check(after.iter().all(|n| !before.contains(n)), || {
                format!("{before:?} -> {after:?}")
            })?;
            for old in &before {
                t.wait_deleted::<k8s_openapi::api::apps::v1::StatefulSet>(
                    old,
                    "the old generation",
                )
                .await?;
            }
            let (total, per) = storage_buckets(&t).await?;
            check(
                total == 30_000 && per.iter().all(|(rs, _)| after.contains(rs)),
                || format!("buckets {per:?}"),
            )
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

/// Stateful failover with an etcd2 state provider, until Cartridge has it.
async fn stateful_failover(t: &TestContext) -> Result<(), Failure> {
    t.api::<Cluster>()
        .patch(
            "tarantool-cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"failover": {
                "mode": "stateful",
                "stateProvider": "etcd2",
                "etcd2Params": {"endpoints": ["http://etcd.invalid:2379"], "prefix": "/double"},
            }}})),
        )
        .await?;
    t.eventually("stateful failover in Cartridge", || async {
        let mode = leader_topology(t).await?.failover().await.map(|f| f.mode);
        Ok((mode.ok().as_deref() == Some("stateful")).then_some(()))
    })
    .await?;
    Ok(())
}

/// Waits until both storage replica sets have `n` instances in Cartridge.
async fn wait_instances(t: &TestContext, n: usize) -> Result<(), Failure> {
    t.eventually(
        "the storage replica sets' instances in Cartridge",
        || async {
            let Ok(rss) = cartridge(t).await else {
                return Ok(None);
            };
            let storages: Vec<&ReplicasetInfo> = rss
                .iter()
                .filter(|r| r.alias.starts_with("storage"))
                .collect();
            Ok(
                (storages.len() == 2 && storages.iter().all(|r| r.servers.len() == n))
                    .then_some(()),
            )
        },
    )
    .await?;
    Ok(())
}

/// Masters of the storage replica sets, as the double reports them.
async fn storage_masters(t: &TestContext) -> Result<Vec<String>, Failure> {
    Ok(cartridge(t)
        .await?
        .iter()
        .filter(|r| r.alias.starts_with("storage"))
        .filter_map(|r| r.master_alias().map(str::to_string))
        .collect())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_supervised_switch_under_stateful_failover_waits_for_approval_on_the_double() {
    run("double-supervised", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            // Under stateful failover the active master is appointed: a new
            // failover priority alone leaves it where it is, and each switch
            // must promote (failover_promote) for the update to go on.
            stateful_failover(&t).await?;
            patch_role(&t, "storage", json!({"spec": {"updateStrategy": {"name": "SwitchMasterUpdate", "supervised": true}}})).await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            let before = storage_masters(&t).await?;
            set_image(&t, "storage", "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
            t
                .wait_for::<Role>("storage", "an approval request", |r: Option<&Role>| {
                    r.and_then(|r| r.status.as_ref())
                        .and_then(|s| s.update.as_ref())
                        .and_then(|u| u.message.as_deref())
                        .is_some_and(|m| m.contains("tarantool.io/approve-switch="))
                })
                .await?;
            check(storage_masters(&t).await? == before, || "a master switched without approval".into())?;
            approve_until_done(&t, "storage").await?;
            settled(&t, 2, 2).await?;
            let after = storage_masters(&t).await?;
            check(after.iter().all(|m| !before.contains(m)), || format!("masters {before:?} -> {after:?}"))?;
            clean(&watcher.lock().unwrap_or_else(|e| e.into_inner()))
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_bad_component_pauses_only_its_role_on_the_double() {
    run("double-hostile", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let cm = k8s_openapi::api::core::v1::ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some("evil".into()),
                    labels: Some([("tarantool.io/strategy".to_string(), "true".to_string())].into()),
                    ..Default::default()
                },
                binary_data: Some([("strategy.wasm".to_string(), k8s_openapi::ByteString(b"\0asm not a component".to_vec()))].into()),
                ..Default::default()
            };
            t.api::<k8s_openapi::api::core::v1::ConfigMap>().create(&PostParams::default(), &cm).await?;
            patch_role(&t, "storage", json!({"spec": {"updateStrategy": {"name": "Evil", "configMapRef": {"name": "evil"}}}})).await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            set_image(&t, "storage", "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
            set_image(&t, "router", "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
            t.wait_for::<Role>("router", "the router rolled", |r: Option<&Role>| {
                r.is_some_and(|r| {
                    r.status.as_ref().is_some_and(|s| {
                        s.observed_generation == r.metadata.generation
                            && s.updated_replicasets == 1
                            && s.update.as_ref().is_some_and(|u| u.done)
                    })
                })
            })
            .await?;
            t.wait_for::<Role>("storage", "the storage Role Degraded", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True"))
            })
            .await?;
            let v = watcher.lock().unwrap_or_else(|e| e.into_inner());
            // What matters is which pods went: a kwok pod may also be
            // recreated by its StatefulSet outside the operator's doing.
            check(
                v.deleted.iter().all(|p| p.starts_with("router-")) && v.deleted.len() == 2,
                || format!("{} deletions of {:?}; only the 2 router pods may go", v.deletions, v.deleted),
            )?;
            clean(&v)
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn on_delete_and_replicas_up_down_and_up_on_the_double() {
    run("double-replicas", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            // Up (a new instance per replica set joins), down (the master
            // moves first), and up again.
            patch_role(
                &t,
                "storage",
                json!({"spec": {"replicasetTemplate": {"replicas": 3}}}),
            )
            .await?;
            wait_instances(&t, 3).await?;
            // Make an instance that goes the master, as a failover would.
            let role = t.api::<Role>().get("storage").await?;
            let names = statefulset_names(&role);
            let info = cartridge(&t)
                .await?
                .into_iter()
                .find(|r| r.alias == names[0])
                .ok_or_else(|| Failure::Check(format!("{} not in Cartridge", names[0])))?;
            let doomed = info
                .server_by_alias(&format!("{}-2", names[0]))
                .cloned()
                .ok_or_else(|| Failure::Check("no third instance".into()))?;
            leader_topology(&t)
                .await?
                .edit(&tarantool_operator::topology::TopologyEdit::switch_master(
                    &info,
                    &doomed.uuid,
                ))
                .await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            patch_role(
                &t,
                "storage",
                json!({"spec": {"replicasetTemplate": {"replicas": 1}}}),
            )
            .await?;
            wait_instances(&t, 1).await?;
            let masters = storage_masters(&t).await?;
            check(masters.contains(&format!("{}-0", names[0])), || {
                format!("masters {masters:?}")
            })?;
            check(
                watcher
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .master_deleted
                    .is_empty(),
                || "a master was deleted".into(),
            )?;
            let (total, per) = storage_buckets(&t).await?;
            check(total == 30_000, || format!("buckets {per:?}"))?;

            // And up again: the ordinal that was expelled comes back as a
            // new instance (Cartridge refuses an expelled UUID) on a new
            // volume (the StatefulSet deleted the old claim).
            let claim = format!("data-{}-1", names[0]);
            let old_uuid = info
                .server_by_alias(&format!("{}-1", names[0]))
                .map(|s| s.uuid.clone())
                .ok_or_else(|| Failure::Check("no second instance".into()))?;
            t.wait_deleted::<PersistentVolumeClaim>(&claim, "the claim of a pod scaled away")
                .await?;
            patch_role(
                &t,
                "storage",
                json!({"spec": {"replicasetTemplate": {"replicas": 2}}}),
            )
            .await?;
            wait_instances(&t, 2).await?;
            let back = cartridge(&t)
                .await?
                .into_iter()
                .find(|r| r.alias == names[0])
                .and_then(|r| r.server_by_alias(&format!("{}-1", names[0])).cloned())
                .ok_or_else(|| Failure::Check("the second instance did not come back".into()))?;
            check(back.uuid != old_uuid, || {
                format!("{} came back under its expelled UUID", back.alias)
            })?;
            let (total, per) = storage_buckets(&t).await?;
            check(total == 30_000, || format!("buckets {per:?}"))?;

            // OnDelete: the operator deletes nothing; a deleted pod comes back updated.
            patch_role(
                &t,
                "router",
                json!({"spec": {"updateStrategy": {"name": "OnDelete"}}}),
            )
            .await?;
            let before = watcher.lock().unwrap_or_else(|e| e.into_inner()).deletions;
            set_image(
                &t,
                "router",
                "tarantool/tarantool-operator-examples-kv:0.0.5",
            )
            .await?;
            on_delete_pending(&t, "router", 2).await?;
            check(
                watcher.lock().unwrap_or_else(|e| e.into_inner()).deletions == before,
                || "OnDelete deleted a pod".into(),
            )?;
            Ok(())
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

/// Claim names of the Role's PersistentVolumeClaims with their UIDs.
async fn claims(t: &TestContext) -> Result<Vec<(String, String)>, Failure> {
    let list = t
        .api::<PersistentVolumeClaim>()
        .list(&kube::api::ListParams::default())
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .map(|c| {
            (
                c.metadata.name.unwrap_or_default(),
                c.metadata.uid.unwrap_or_default(),
            )
        })
        .collect())
}

/// The Cluster's leader pod, as its status names it.
async fn leader_pod(t: &TestContext) -> Result<String, Failure> {
    Ok(t.api::<Cluster>()
        .get("tarantool-cluster")
        .await?
        .status
        .and_then(|s| s.leader)
        .unwrap_or_default())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_volume_change_loses_nothing_while_consoles_answer_empty_on_the_double() {
    run("double-pvc-empty", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let role = t.api::<Role>().get("storage").await?;
            let before = statefulset_names(&role);
            // As real Cartridge: new instances answer [] until membership
            // reaches them, and the Cluster's leader answers [] throughout.
            let ns = t.namespace.clone();
            double::set(&t, &format!("set_membership_delay('{ns}', 20)")).await?;
            let leader = leader_pod(&t).await?;
            double::set(&t, &format!("set_fault('{ns}', '{leader}', 'empty')")).await?;
            grow_volumes(&t, &role, "2Gi").await?;
            // Until the old generation is gone: a claim of an old replica
            // set may go only once Cartridge itself no longer has it.
            let deadline = std::time::Instant::now() + test_harness::default_timeout();
            loop {
                let present = claims(&t).await?;
                let members = double::replicaset_aliases(&t).await?;
                for old in &before {
                    let claim_gone = !present
                        .iter()
                        .any(|(c, _)| c.starts_with(&format!("data-{old}-")));
                    check(!(claim_gone && members.contains(old)), || {
                        format!(
                            "the claims of {old} went while Cartridge still has it: {members:?}"
                        )
                    })?;
                }
                let sts = t
                    .api::<k8s_openapi::api::apps::v1::StatefulSet>()
                    .list(&kube::api::ListParams::default())
                    .await?;
                if !sts
                    .items
                    .iter()
                    .any(|s| before.contains(&s.metadata.name.clone().unwrap_or_default()))
                {
                    break;
                }
                check(std::time::Instant::now() < deadline, || {
                    "the old generation never went".into()
                })?;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            double::set(&t, &format!("set_fault('{ns}', '{leader}', nil)")).await?;
            let role = settled(&t, 2, 2).await?;
            let after = statefulset_names(&role);
            let (total, per) = storage_buckets(&t).await?;
            check(
                total == 30_000 && per.iter().all(|(rs, _)| after.contains(rs)),
                || format!("buckets {per:?}"),
            )
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_replica_scale_down_waits_for_a_refused_promote_on_the_double() {
    run("double-promote", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let ns = t.namespace.clone();
            stateful_failover(&t).await?;
            // SwitchMasterUpdate leaves each master on ordinal 1.
            set_image(
                &t,
                "storage",
                "tarantool/tarantool-operator-examples-kv:0.0.5",
            )
            .await?;
            settled(&t, 2, 2).await?;
            let masters = storage_masters(&t).await?;
            check(masters.iter().all(|m| m.ends_with("-1")), || {
                format!("masters {masters:?}")
            })?;
            let claims_before = claims(&t).await?;
            // The state provider is gone: every promote is refused after
            // its priority edit was committed.
            double::set(&t, &format!("set_state_provider('{ns}', 'unreachable')")).await?;
            patch_role(
                &t,
                "storage",
                json!({"spec": {"replicasetTemplate": {"replicas": 1}}}),
            )
            .await?;
            t.wait_for::<Role>(
                "storage",
                "the refused promote reported",
                |r: Option<&Role>| {
                    r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.message.contains("State provider unavailable"))
                    })
                },
            )
            .await?;
            let role = t.api::<Role>().get("storage").await?;
            for name in statefulset_names(&role) {
                let sts = t
                    .api::<k8s_openapi::api::apps::v1::StatefulSet>()
                    .get(&name)
                    .await?;
                check(sts.spec.replicas == Some(2), || {
                    format!("{name} shrank before its master moved")
                })?;
            }
            check(storage_masters(&t).await? == masters, || {
                "a master moved without its promote".into()
            })?;
            check(claims(&t).await? == claims_before, || "a claim went".into())?;
            // The state provider is back: the switch, the shrink, the expel,
            // and only then the claims of ordinal 1.
            double::set(&t, &format!("set_state_provider('{ns}', 'ok')")).await?;
            settled(&t, 2, 1).await?;
            wait_instances(&t, 1).await?;
            let masters = storage_masters(&t).await?;
            check(masters.iter().all(|m| m.ends_with("-0")), || {
                format!("masters {masters:?}")
            })?;
            t.eventually("the claims of the removed instances to go", || async {
                let Ok(left) = claims(&t).await else {
                    return Ok(None);
                };
                Ok((!left
                    .iter()
                    .any(|(c, _)| c.starts_with("data-storage") && c.ends_with("-1")))
                .then_some(()))
            })
            .await?;
            Ok(())
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_manual_scale_of_a_statefulset_is_undone_without_losing_a_volume_on_the_double() {
    run("double-drift", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            let role = t.api::<Role>().get("storage").await?;
            let name = statefulset_names(&role)
                .into_iter()
                .next()
                .ok_or_else(|| Failure::Check("no StatefulSet".into()))?;
            let claim = format!("data-{name}-1");
            let uid = claims(&t)
                .await?
                .into_iter()
                .find(|(c, _)| *c == claim)
                .map(|(_, uid)| uid)
                .ok_or_else(|| Failure::Check(format!("no claim {claim}")))?;
            t.kubectl(&["scale", "statefulset", &name, "--replicas=1"])
                .await?;
            t.wait_for::<k8s_openapi::api::apps::v1::StatefulSet>(
                &name,
                "its size put back",
                |s: Option<&k8s_openapi::api::apps::v1::StatefulSet>| {
                    s.is_some_and(|s| s.spec.replicas == Some(2))
                },
            )
            .await?;
            settled(&t, 2, 2).await?;
            let after = claims(&t)
                .await?
                .into_iter()
                .find(|(c, _)| *c == claim)
                .map(|(_, u)| u);
            check(after.as_deref() == Some(uid.as_str()), || {
                format!("{claim} was {uid}, now {after:?}")
            })
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn deleting_a_storage_role_drains_and_expels_it_before_its_volumes_go_on_the_double() {
    run("double-delete", |t| async move {
        let (mut child, log) = start(&t).await?;
        let outcome = async {
            // A second storage Role of one replica set, in the Cluster.
            let storage = t.api::<Role>().get("storage").await?;
            let mut spec = storage.spec.clone();
            spec.replicasets = 1;
            // It names the storage Role's Cluster, as the handshake asks.
            let mut archive = Role::new("archive", spec);
            archive.metadata.labels = storage.metadata.labels.clone();
            t.api::<Role>()
                .create(&PostParams::default(), &archive)
                .await?;
            t.api::<Cluster>()
                .patch(
                    "tarantool-cluster",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"roles": [
                        {"name": "router"}, {"name": "storage"}, {"name": "archive"}
                    ]}})),
                )
                .await?;
            t.eventually("buckets on the archive Role", || async {
                let Ok(rss) = cartridge(&t).await else {
                    return Ok(None);
                };
                Ok(rss
                    .iter()
                    .any(|r| r.alias.starts_with("archive") && r.bucket_count().unwrap_or(0) > 0)
                    .then_some(()))
            })
            .await?;
            t.api::<Role>()
                .delete("archive", &kube::api::DeleteParams::default())
                .await?;
            // Its claims stay while Cartridge still has its replica set.
            let deadline = std::time::Instant::now() + test_harness::default_timeout();
            loop {
                let members = double::replicaset_aliases(&t).await?;
                let in_cartridge = members.iter().any(|a| a.starts_with("archive"));
                let claims_left = claims(&t)
                    .await?
                    .iter()
                    .any(|(c, _)| c.starts_with("data-archive"));
                check(claims_left || !in_cartridge, || {
                    format!("the archive's claims went while Cartridge still had it: {members:?}")
                })?;
                if t.api::<Role>().get_opt("archive").await?.is_none() {
                    break;
                }
                check(std::time::Instant::now() < deadline, || {
                    "the archive Role never went".into()
                })?;
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            let (total, per) = storage_buckets(&t).await?;
            check(
                total == 30_000 && per.iter().all(|(rs, _)| rs.starts_with("storage-")),
                || format!("buckets {per:?}"),
            )?;

            // The only storage Role: its buckets have nowhere to go.
            let claims_before = claims(&t).await?;
            t.api::<Role>()
                .delete("storage", &kube::api::DeleteParams::default())
                .await?;
            t.wait_for::<Role>("storage", "the deletion blocked", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "NowhereToDrain"))
            })
            .await?;
            check(claims(&t).await? == claims_before, || "a claim went".into())?;
            let (total, _) = storage_buckets(&t).await?;
            check(total == 30_000, || format!("{total} buckets"))?;
            // A human decides to let it go.
            t.api::<Role>()
                .patch(
                    "storage",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {"tarantool.io/force-delete": "true"}}}),
                    ),
                )
                .await?;
            t.wait_deleted::<Role>("storage", "the forced deletion")
                .await?;
            Ok(())
        }
        .await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}
