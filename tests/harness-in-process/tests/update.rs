//! Rolling updates through the strategy engine against the real control
//! plane (StatefulSet controller, kwok pods) with the in-memory Cartridge:
//! an image change rolls every pod with the Role's strategy while the
//! invariant watcher (support/invariants.rs) records every pod's
//! availability and every deletion and asserts: never more than the budget
//! unavailable per replica set, no master deleted while it is master, every
//! pod ends on the new revision.

#[path = "../../harness/tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
mod in_process;

use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::Reporter;
use serde_json::json;
use tarantool_operator::api::Role;
use tarantool_operator::controller::metrics::Metrics;
use tarantool_operator::controller::role::rollout::preview::{self, Overrides};
use tarantool_operator::controller::{Context, Settings};
use tarantool_operator::resources::labels;
use tarantool_operator::strategy::simulator::StepAction;
use test_harness::{TestContext, run};

use in_process::start_article;
use support::invariants;
use support::scenario::{
    Failure, approve_until_done, create_article, on_delete_pending, ready, set_image,
    wait_bootstrapped, wait_joined,
};

async fn wait_done(t: &TestContext, role: &str, replicasets: i32) -> Result<Role, Failure> {
    Ok(
        t.wait_for::<Role>(role, "the rollout done", move |r: Option<&Role>| {
            // The status must be of the current spec: a status computed
            // before the change would say "done" about the old template.
            r.is_some_and(|r| {
                r.status.as_ref().is_some_and(|s| {
                    s.observed_generation == r.metadata.generation
                        && s.updated_replicasets == replicasets
                        && s.update.as_ref().is_some_and(|u| u.done)
                })
            })
        })
        .await?,
    )
}

async fn check_revisions(t: &TestContext, role: &str) -> Result<(), Failure> {
    let selector = labels::role_selector(role);
    let sts = t
        .api::<StatefulSet>()
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    let pods = t
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    for pod in &pods {
        let rs = pod
            .labels()
            .get(labels::REPLICASET)
            .cloned()
            .unwrap_or_default();
        let want = sts
            .iter()
            .find(|s| s.name_any() == rs)
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.update_revision.clone());
        let have = pod.labels().get("controller-revision-hash").cloned();
        if want.is_none() || want != have {
            return Err(Failure::Check(format!(
                "{} runs {have:?}, want {want:?}",
                pod.name_any()
            )));
        }
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn image_update_rolls_every_pod_within_the_budget_and_switches_masters_first() {
    run("update-image", |t| async move {
        t.install_crds().await?;
        let operator = in_process::start(&t);
        create_article(&t).await?;
        wait_bootstrapped(&t).await?;
        wait_joined(&t).await?;
        let masters_before: Vec<String> = operator
            .topology
            .state()
            .replicasets
            .iter()
            .filter_map(|r| r.master_alias().map(str::to_string))
            .collect();
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;

        set_image(
            &t,
            "storage",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        set_image(
            &t,
            "router",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        wait_done(&t, "storage", 2).await?;
        wait_done(&t, "router", 1).await?;
        check_revisions(&t, "storage").await?;
        check_revisions(&t, "router").await?;

        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.clean() {
            return Err(Failure::Check(format!("invariants: {seen:?}")));
        }
        if seen.deleted.len() != 6 {
            return Err(Failure::Check(format!(
                "{} pods deleted, want 6: {:?}",
                seen.deleted.len(),
                seen.deleted
            )));
        }
        // SwitchMasterUpdate moved every storage master to an updated replica.
        let model = operator.topology.state();
        for rs in model
            .replicasets
            .iter()
            .filter(|r| r.alias.starts_with("storage"))
        {
            let master = rs.master_alias().unwrap_or_default().to_string();
            if masters_before.contains(&master) {
                return Err(Failure::Check(format!(
                    "{}: master {master} was not switched",
                    rs.alias
                )));
            }
        }
        Ok::<(), Failure>(())
    })
    .await;
}

/// The ConfigMap `name` with `bytes` under `binaryData.strategy.wasm`,
/// labelled as a strategy.
async fn component_config_map(t: &TestContext, name: &str, bytes: Vec<u8>) -> Result<(), Failure> {
    config_map(t, name, bytes, true).await
}

/// The ConfigMap `name` with `bytes` under `binaryData.strategy.wasm`, with
/// or without the label `tarantool.io/strategy`.
async fn config_map(
    t: &TestContext,
    name: &str,
    bytes: Vec<u8>,
    labelled: bool,
) -> Result<(), Failure> {
    let cm = k8s_openapi::api::core::v1::ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: labelled
                .then(|| [("tarantool.io/strategy".to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        binary_data: Some([("strategy.wasm".to_string(), k8s_openapi::ByteString(bytes))].into()),
        ..Default::default()
    };
    t.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(&kube::api::PostParams::default(), &cm)
        .await?;
    Ok(())
}

async fn set_strategy(
    t: &TestContext,
    role: &str,
    strategy: serde_json::Value,
) -> Result<(), Failure> {
    t.api::<Role>()
        .patch(
            role,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"updateStrategy": strategy}})),
        )
        .await?;
    Ok(())
}

async fn condition_reason(
    t: &TestContext,
    role: &str,
    reason: &'static str,
) -> Result<Role, Failure> {
    Ok(t.wait_for::<Role>(role, reason, move |r: Option<&Role>| {
        r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.reason == reason && c.type_ != "Progressing")
                || s.conditions.iter().any(|c| c.reason == reason)
        })
    })
    .await?)
}

/// Pauses the storage Role's updates, then changes its image.
async fn pause_and_change_image(t: &TestContext) -> Result<(), Failure> {
    set_strategy(
        t,
        "storage",
        json!({"name": "SwitchMasterUpdate", "paused": true}),
    )
    .await?;
    set_image(
        t,
        "storage",
        "tarantool/tarantool-operator-examples-kv:0.0.5",
    )
    .await
}

fn deleted_count(seen: &Arc<Mutex<invariants::Violations>>) -> usize {
    seen.lock().unwrap_or_else(|e| e.into_inner()).deleted.len()
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_custom_strategy_from_a_config_map_rolls_the_role() {
    run("update-custom", |t| async move {
        let operator = start_article(&t).await?;
        let bytes = std::fs::read(tarantool_operator::strategy::builtin::EXAMPLE_COMPONENT_PATH)
            .map_err(|e| Failure::Check(format!("the example component: {e}")))?;
        component_config_map(&t, "canary", bytes).await?;
        set_strategy(
            &t,
            "storage",
            json!({"name": "Canary", "configMapRef": {"name": "canary"}, "params": {"canaryWaitSeconds": "1"}}),
        )
        .await?;
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        set_image(&t, "storage", "tarantool/tarantool-operator-examples-kv:0.0.5").await?;
        let role = wait_done(&t, "storage", 2).await?;
        check_revisions(&t, "storage").await?;
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.clean() {
            return Err(Failure::Check(format!("invariants: {seen:?}")));
        }
        let update = role.status.and_then(|s| s.update).unwrap_or_default();
        if update.strategy != "Canary" || update.component.is_none() {
            return Err(Failure::Check(format!("rolled by {update:?}")));
        }
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_bad_component_pauses_only_its_role_and_deletes_nothing() {
    run("update-hostile", |t| async move {
        let operator = start_article(&t).await?;
        // Not a component at all, and a valid one pinned to another digest.
        component_config_map(&t, "garbage", b"\0asm garbage, not a component".to_vec()).await?;
        let canary = std::fs::read(tarantool_operator::strategy::builtin::EXAMPLE_COMPONENT_PATH)
            .map_err(|e| Failure::Check(format!("the example component: {e}")))?;
        component_config_map(&t, "pinned", canary.clone()).await?;
        // A valid component in a ConfigMap that does not say it holds one.
        config_map(&t, "unlabelled", canary, false).await?;
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        set_strategy(
            &t,
            "storage",
            json!({"name": "Canary", "configMapRef": {"name": "unlabelled"}}),
        )
        .await?;
        set_image(
            &t,
            "storage",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        t.wait_for::<Role>(
            "storage",
            "the unlabelled ConfigMap refused",
            |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Degraded"
                            && c.status == "True"
                            && c.message.contains("not labelled tarantool.io/strategy")
                    })
                })
            },
        )
        .await?;
        set_strategy(
            &t,
            "storage",
            json!({"name": "Evil", "configMapRef": {"name": "garbage"}}),
        )
        .await?;
        // The storage Role's image changed above; the router's changes now.
        set_image(
            &t,
            "router",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        // The router (a built-in strategy) is unaffected and finishes.
        wait_done(&t, "router", 1).await?;
        let role = t
            .wait_for::<Role>(
                "storage",
                "the storage Role Degraded by the garbage component",
                |r: Option<&Role>| {
                    r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                        s.conditions.iter().any(|c| {
                            c.type_ == "Degraded"
                                && c.status == "True"
                                && !c.message.contains("not labelled")
                        })
                    })
                },
            )
            .await?;
        let degraded = role
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Degraded"))
            .map(|c| c.message)
            .unwrap_or_default();
        if !degraded.contains("Evil") && !degraded.contains("component") {
            return Err(Failure::Check(format!("unclear condition: {degraded:?}")));
        }
        set_strategy(
            &t,
            "storage",
            json!({"name": "Canary", "configMapRef": {"name": "pinned"}, "sha256": "0".repeat(64)}),
        )
        .await?;
        t.wait_for::<Role>(
            "storage",
            "the pinned digest refused",
            |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "Degraded" && c.status == "True" && c.message.contains("sha256")
                    })
                })
            },
        )
        .await?;
        let storage_deleted = seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .deleted
            .iter()
            .filter(|p| p.starts_with("storage"))
            .count();
        if storage_deleted != 0 {
            return Err(Failure::Check(format!(
                "{storage_deleted} storage pods deleted by a refused strategy"
            )));
        }
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_paused_update_deletes_nothing_until_resumed() {
    run("update-pause", |t| async move {
        let operator = start_article(&t).await?;
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        pause_and_change_image(&t).await?;
        let paused = condition_reason(&t, "storage", "Paused").await?;
        let status = paused.status.unwrap_or_default();
        let update = status.update.clone().unwrap_or_default();
        if status.phase != tarantool_operator::api::RolePhase::Updating
            || update.total_pods != 4
            || !update
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("paused")
            || status.updated_replicasets != 0
        {
            return Err(Failure::Check(format!("a paused rollout reads {status:?}")));
        }
        if deleted_count(&seen) != 0 {
            return Err(Failure::Check("pods deleted while paused".into()));
        }
        set_strategy(
            &t,
            "storage",
            json!({"name": "SwitchMasterUpdate", "paused": null}),
        )
        .await?;
        wait_done(&t, "storage", 2).await?;
        check_revisions(&t, "storage").await?;
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_supervised_switch_waits_for_approval() {
    run("update-supervised", |t| async move {
        let operator = start_article(&t).await?;
        set_strategy(
            &t,
            "storage",
            json!({"name": "SwitchMasterUpdate", "supervised": true}),
        )
        .await?;
        let masters = |op: &in_process::Operator| -> Vec<String> {
            op.topology
                .state()
                .replicasets
                .iter()
                .filter(|r| r.alias.starts_with("storage"))
                .filter_map(|r| r.master_alias().map(str::to_string))
                .collect()
        };
        let before = masters(&operator);
        set_image(
            &t,
            "storage",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        condition_reason(&t, "storage", "SwitchDeferred").await?;
        if masters(&operator) != before {
            return Err(Failure::Check("a master switched without approval".into()));
        }
        approve_until_done(&t, "storage").await?;
        wait_done(&t, "storage", 2).await?;
        check_revisions(&t, "storage").await?;
        let after = masters(&operator);
        if after.iter().any(|m| before.contains(m)) {
            return Err(Failure::Check(format!(
                "masters not switched: {before:?} -> {after:?}"
            )));
        }
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn on_delete_leaves_deletion_to_the_user_and_reports_what_is_pending() {
    run("update-on-delete", |t| async move {
        let operator = start_article(&t).await?;
        set_strategy(&t, "router", json!({"name": "OnDelete"})).await?;
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        set_image(
            &t,
            "router",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        let role = on_delete_pending(&t, "router", 2).await?;
        if deleted_count(&seen) != 0 {
            return Err(Failure::Check("OnDelete deleted a pod".into()));
        }
        // The user deletes the pods; each comes back on the new revision.
        let sts = role
            .status
            .as_ref()
            .map(|s| s.replicasets[0].name.clone())
            .unwrap_or_default();
        for i in 0..2 {
            let pod = format!("{sts}-{i}");
            t.api::<Pod>().delete(&pod, &Default::default()).await?;
            t.eventually("the deleted pod back and ready", || async {
                Ok(t.api::<Pod>()
                    .get_opt(&pod)
                    .await?
                    .filter(ready)
                    .map(|_| ()))
            })
            .await?;
        }
        wait_done(&t, "router", 1).await?;
        check_revisions(&t, "router").await?;
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_rollout_outside_its_window_waits_and_starts_when_it_opens() {
    run("update-window", |t| async move {
        let operator = start_article(&t).await?;
        // A daily window opening at the next minute at least 20 s away (the
        // real clock: the operator reads the same), for ten minutes.
        let now = Timestamp::now().as_second();
        let mut opens = (now / 60 + 1) * 60;
        if opens - now < 20 {
            opens += 60;
        }
        let hhmm = |s: i64| format!("{:02}:{:02}", (s % 86_400) / 3600, (s % 3600) / 60);
        let window = format!("{}-{}", hhmm(opens), hhmm(opens + 600));
        set_strategy(
            &t,
            "storage",
            json!({"name": "SwitchMasterUpdate", "maintenanceWindows": [window]}),
        )
        .await?;
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        set_image(
            &t,
            "storage",
            "tarantool/tarantool-operator-examples-kv:0.0.5",
        )
        .await?;
        let waiting = condition_reason(&t, "storage", "OutsideMaintenanceWindow").await?;
        let when = Timestamp::from_second(opens)
            .map_err(|e| Failure::Check(e.to_string()))?
            .to_string();
        let conditions = waiting.status.unwrap_or_default().conditions;
        if !conditions.iter().any(|c| {
            c.reason == "OutsideMaintenanceWindow"
                && c.message.contains(&when)
                && c.message.contains(labels::ROLLOUT_NOW)
        }) {
            return Err(Failure::Check(format!(
                "the wait should say the window opens at {when}: {conditions:?}"
            )));
        }
        // Nothing moves before the window opens.
        let before = opens - Timestamp::now().as_second() - 2;
        tokio::time::sleep(std::time::Duration::from_secs(
            u64::try_from(before).unwrap_or(0),
        ))
        .await;
        if deleted_count(&seen) != 0 {
            return Err(Failure::Check(
                "pods deleted before the window opened".into(),
            ));
        }
        wait_done(&t, "storage", 2).await?;
        check_revisions(&t, "storage").await?;
        let v = seen.lock().unwrap_or_else(|e| e.into_inner());
        if v.deleted.len() != 4 || !v.clean() {
            return Err(Failure::Check(format!("the rollout in the window: {v:?}")));
        }
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_preview_of_a_paused_rollout_lists_the_pods_then_deleted_in_order() {
    run("update-preview", |t| async move {
        let operator = start_article(&t).await?;
        pause_and_change_image(&t).await?;
        // The status's preview, written while paused.
        let paused = t
            .wait_for::<Role>("storage", "a preview in the status", |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref())
                    .and_then(|s| s.update.as_ref())
                    .is_some_and(|u| u.preview.is_some())
            })
            .await?;
        let status_preview = paused
            .status
            .and_then(|s| s.update)
            .and_then(|u| u.preview)
            .unwrap_or_default();
        // The live preview, as `tarantool-operator plan -n NS storage` makes
        // it (the same library call), through the operator's Cartridge.
        let ctx = Context::new(
            t.client.clone(),
            invariants::in_memory(operator.topology.clone()),
            Arc::new(Metrics::unregistered()),
            Settings::default(),
            in_process::registry(),
            Reporter {
                controller: "plan".into(),
                instance: None,
            },
        );
        let (_, report) = preview::live(&ctx, &t.namespace, "storage", &Overrides::default())
            .await
            .map_err(|e| Failure::Check(format!("live preview: {e}")))?;
        let planned: Vec<String> = report
            .steps
            .iter()
            .flat_map(|s| &s.actions)
            .filter_map(|a| match a {
                StepAction::Delete { pod } => Some(pod.clone()),
                _ => None,
            })
            .collect();
        if !report.outcome.is_completed() || planned.len() != 4 {
            return Err(Failure::Check(format!("live preview: {report:?}")));
        }
        // The status says the same.
        let in_status: Vec<String> = status_preview
            .steps
            .iter()
            .flat_map(|line| line.split("delete ").skip(1))
            .map(|rest| {
                rest.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        if in_status != planned || status_preview.makespan_seconds <= 0 {
            return Err(Failure::Check(format!(
                "status preview {status_preview:?} vs live {planned:?}"
            )));
        }
        let seen = invariants::watch(&t, 2, invariants::in_memory(operator.topology.clone())).await;
        set_strategy(
            &t,
            "storage",
            json!({"name": "SwitchMasterUpdate", "paused": null}),
        )
        .await?;
        wait_done(&t, "storage", 2).await?;
        let done = t.api::<Role>().get("storage").await?;
        if done
            .status
            .and_then(|s| s.update)
            .and_then(|u| u.preview)
            .is_some()
        {
            return Err(Failure::Check("the preview outlived the pause".into()));
        }
        // First deletions only: a pod object the watcher saw deleted again
        // (a recreated pod) is not a step of its own.
        let mut order: Vec<String> = Vec::new();
        for pod in seen.lock().unwrap_or_else(|e| e.into_inner()).order.iter() {
            if !order.contains(pod) {
                order.push(pod.clone());
            }
        }
        // Every pod the preview names is deleted, none other; within each
        // replica set in the preview's order (replica sets roll in
        // parallel, so their interleaving may differ).
        let mut sorted = (order.clone(), planned.clone());
        sorted.0.sort();
        sorted.1.sort();
        let per_replicaset = |pods: &[String]| {
            let mut by: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for pod in pods {
                let rs = pod.rsplit_once('-').map_or(pod.as_str(), |(rs, _)| rs);
                by.entry(rs.to_string()).or_default().push(pod.clone());
            }
            by
        };
        if sorted.0 != sorted.1 || per_replicaset(&order) != per_replicaset(&planned) {
            return Err(Failure::Check(format!(
                "deleted {order:?}, previewed {planned:?}"
            )));
        }
        Ok::<(), Failure>(())
    })
    .await;
}
