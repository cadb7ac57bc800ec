//! Scaling both ways and the volume (PVC) change against the real control
//! plane with the in-memory Cartridge: removed instances are expelled after
//! their pods are gone and never while master; removed replica sets are
//! drained to zero buckets, expelled, and only then deleted with their
//! volumes; every bucket is accounted for throughout.

#[path = "../../harness/tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
mod in_process;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tarantool_operator::api::Role;
use tarantool_operator::api::names::statefulset_names;
use tarantool_operator::resources::labels;
use test_harness::{TestContext, run};

use in_process::Operator;
use in_process::start_article;
use support::scenario::{Failure, check, settled};

async fn patch_storage(t: &TestContext, patch: serde_json::Value) -> Result<(), Failure> {
    t.api::<Role>()
        .patch("storage", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

fn buckets(operator: &Operator) -> (u64, Vec<(String, u64)>) {
    let model = operator.topology.state();
    let per: Vec<(String, u64)> = model
        .replicasets
        .iter()
        .filter_map(|r| r.bucket_count().map(|b| (r.alias.clone(), b)))
        .collect();
    (model.total_buckets(), per)
}

async fn storage_statefulsets(t: &TestContext) -> Result<Vec<String>, Failure> {
    let mut names: Vec<String> = t
        .api::<StatefulSet>()
        .list(&ListParams::default().labels(&labels::role_selector("storage")))
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    Ok(names)
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn replicas_scale_up_down_and_up_again_moving_the_master_first() {
    run("scale-replicas", |t| async move {
        let operator = start_article(&t).await?;
        let role = t.api::<Role>().get("storage").await?;
        let sts = statefulset_names(&role);
        // Up first: a new instance per replica set joins.
        patch_storage(&t, json!({"spec": {"replicasetTemplate": {"replicas": 3}}})).await?;
        settled(&t, 2, 3).await?;
        check(
            operator
                .topology
                .state()
                .replicasets
                .iter()
                .filter(|r| r.alias.starts_with("storage"))
                .all(|r| r.servers.len() == 3),
            || "three instances per replica set".into(),
        )?;
        // The master of the first replica set is an instance that goes.
        let doomed = format!("{}-2", sts[0]);
        check(
            operator.topology.state().set_master(&sts[0], &doomed),
            || "set master".into(),
        )?;

        patch_storage(&t, json!({"spec": {"replicasetTemplate": {"replicas": 1}}})).await?;
        settled(&t, 2, 1).await?;
        {
            let model = operator.topology.state();
            for name in &sts {
                let rs = model
                    .replicaset_by_alias(name)
                    .ok_or_else(|| Failure::Check(format!("{name} gone")))?;
                check(rs.servers.len() == 1, || {
                    format!("{name}: {:?}", rs.servers)
                })?;
                check(rs.master_alias() == Some(&format!("{name}-0")[..]), || {
                    format!("{name} master {:?}", rs.master_alias())
                })?;
            }
        }
        let (total, per) = buckets(&operator);
        check(total == 30_000, || format!("buckets {per:?}"))?;

        // Up again: the ordinals that were expelled come back as new
        // instances (the fake, like Cartridge, refuses an expelled UUID).
        patch_storage(&t, json!({"spec": {"replicasetTemplate": {"replicas": 3}}})).await?;
        settled(&t, 2, 3).await?;
        {
            let model = operator.topology.state();
            for name in &sts {
                let rs = model
                    .replicaset_by_alias(name)
                    .ok_or_else(|| Failure::Check(format!("{name} gone")))?;
                check(rs.servers.len() == 3, || {
                    format!("{name} back up: {:?}", rs.servers)
                })?;
                check(
                    rs.servers.iter().all(|s| !model.expelled.contains(&s.uuid)),
                    || format!("{name}: an expelled UUID is back"),
                )?;
            }
        }

        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn replica_sets_scale_down_after_draining_and_back_up() {
    run("scale-replicasets", |t| async move {
        let operator = start_article(&t).await?;
        let before = storage_statefulsets(&t).await?;
        patch_storage(&t, json!({"spec": {"replicasets": 1}})).await?;
        settled(&t, 1, 2).await?;
        t.wait_deleted::<StatefulSet>(&before[1], "the retired StatefulSet")
            .await?;
        let (total, per) = buckets(&operator);
        check(
            total == 30_000 && per.iter().all(|(rs, b)| rs != &before[1] || *b == 0),
            || format!("buckets {per:?}"),
        )?;
        check(
            operator
                .topology
                .state()
                .replicaset_by_alias(&before[1])
                .is_none(),
            || "not expelled".into(),
        )?;
        // Deleted by the operator; gone once the PVC protection controller
        // saw the last pod using them go.
        t.eventually("the retired replica set's volumes gone", || async {
            let claims = t
                .api::<PersistentVolumeClaim>()
                .list(&ListParams::default())
                .await?;
            Ok(claims
                .items
                .iter()
                .all(|c| !c.name_any().contains(&before[1]))
                .then_some(()))
        })
        .await?;
        // The drain came before the expel: its weight went to 0 first.
        {
            let model = operator.topology.state();
            let writes: Vec<String> = model
                .writes()
                .iter()
                .map(|c| format!("{:?}", c.kind))
                .collect();
            let drained = writes.iter().position(|w| w.contains("weight: Some(0.0)"));
            let expelled = writes.iter().position(|w| w.contains("expel: [\""));
            check(drained.is_some() && drained < expelled, || {
                format!("order of writes: {writes:?}")
            })?;
        }

        patch_storage(&t, json!({"spec": {"replicasets": 3}})).await?;
        settled(&t, 3, 2).await?;
        let (total, per) = buckets(&operator);
        check(total == 30_000, || format!("buckets {per:?}"))?;
        check(storage_statefulsets(&t).await?.len() == 3, || {
            "three StatefulSets".into()
        })?;
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_volume_change_migrates_to_new_statefulsets_without_losing_buckets() {
    run("scale-pvc", |t| async move {
        let operator = start_article(&t).await?;
        let before = storage_statefulsets(&t).await?;
        let role = t.api::<Role>().get("storage").await?;
        let mut template = role.spec.replicaset_template().cloned().ok_or_else(|| Failure::Check("template".into()))?;
        for claim in &mut template.volume_claim_templates {
            if let Some(spec) = claim.spec.as_mut()
                && let Some(resources) = spec.resources.as_mut()
            {
                resources.requests = Some([("storage".to_string(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("2Gi".into()))].into());
            }
        }
        patch_storage(&t, json!({"spec": {"replicasetTemplate": template, "vshard": {"replicasetTemplate": null}}})).await?;
        let role = settled(&t, 2, 2).await?;
        let after = statefulset_names(&role);
        check(after.iter().all(|n| !before.contains(n)), || format!("{before:?} -> {after:?}"))?;
        for old in &before {
            t.wait_deleted::<StatefulSet>(old, "the old generation's StatefulSet").await?;
            check(operator.topology.state().replicaset_by_alias(old).is_none(), || format!("{old} not expelled"))?;
        }
        let (total, per) = buckets(&operator);
        check(total == 30_000, || format!("buckets {per:?}"))?;
        check(per.iter().filter(|(rs, _)| rs.starts_with("storage")).all(|(rs, _)| after.contains(rs)), || format!("{per:?}"))?;
        Ok::<(), Failure>(())
    })
    .await;
}

/// The Role's PodDisruptionBudgets: (name, selector labels, maxUnavailable).
async fn budgets(
    t: &TestContext,
    role: &str,
) -> Result<Vec<(String, std::collections::BTreeMap<String, String>, String)>, kube::Error> {
    let mut found: Vec<_> = t
        .api::<PodDisruptionBudget>()
        .list(&ListParams::default().labels(&labels::role_selector(role)))
        .await?
        .items
        .into_iter()
        .map(|p| {
            let spec = p.spec.clone().unwrap_or_default();
            (
                p.name_any(),
                spec.selector
                    .and_then(|s| s.match_labels)
                    .unwrap_or_default(),
                format!("{:?}", spec.max_unavailable),
            )
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Exactly one budget per StatefulSet of `role`, selecting its pods.
async fn one_budget_per_replicaset(t: &TestContext, role: &str) -> Result<(), Failure> {
    t.eventually(
        &format!("one PodDisruptionBudget per replica set of {role}"),
        || async {
            let statefulsets: Vec<String> = t
                .api::<StatefulSet>()
                .list(&ListParams::default().labels(&labels::role_selector(role)))
                .await?
                .items
                .iter()
                .filter(|s| s.metadata.deletion_timestamp.is_none())
                .map(ResourceExt::name_any)
                .collect();
            let found = budgets(t, role).await?;
            let names: Vec<&String> = found.iter().map(|(n, _, _)| n).collect();
            let mut wanted: Vec<&String> = statefulsets.iter().collect();
            wanted.sort();
            Ok((names == wanted
                && found.iter().all(|(name, selector, max)| {
                    selector.get(labels::REPLICASET) == Some(name)
                        && selector.get(labels::ROLE).map(String::as_str) == Some(role)
                        && max == "Some(Int(1))"
                }))
            .then_some(()))
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_disruption_budget_per_replica_set_follows_scaling() {
    run("scale-budgets", |t| async move {
        let _operator = start_article(&t).await?;
        one_budget_per_replicaset(&t, "router").await?;
        one_budget_per_replicaset(&t, "storage").await?;
        // The budget selects exactly its replica set's pods.
        for (name, selector, _) in budgets(&t, "storage").await? {
            let selector = selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let pods = t
                .api::<k8s_openapi::api::core::v1::Pod>()
                .list(&ListParams::default().labels(&selector))
                .await?;
            check(
                pods.items.len() == 2 && pods.items.iter().all(|p| p.name_any().starts_with(&name)),
                || {
                    format!(
                        "{name} selects {:?}",
                        pods.items
                            .iter()
                            .map(ResourceExt::name_any)
                            .collect::<Vec<_>>()
                    )
                },
            )?;
        }
        patch_storage(&t, json!({"spec": {"replicasets": 3}})).await?;
        settled(&t, 3, 2).await?;
        one_budget_per_replicaset(&t, "storage").await?;
        check(budgets(&t, "storage").await?.len() == 3, || {
            "three budgets".into()
        })?;
        let three = storage_statefulsets(&t).await?;
        patch_storage(&t, json!({"spec": {"replicasets": 2}})).await?;
        settled(&t, 2, 2).await?;
        t.wait_deleted::<StatefulSet>(&three[2], "the retired StatefulSet")
            .await?;
        one_budget_per_replicaset(&t, "storage").await?;
        check(budgets(&t, "storage").await?.len() == 2, || {
            "two budgets".into()
        })?;
        // A budget deleted by hand wakes its Role (budgets are watched),
        // which puts it back: no other change is needed to restore it.
        let pdbs = t.api::<PodDisruptionBudget>();
        let (gone, _, _) = budgets(&t, "storage").await?.remove(0);
        let old_uid = pdbs.get(&gone).await?.uid();
        pdbs.delete(&gone, &Default::default()).await?;
        t.eventually(&format!("{gone} put back"), || async {
            let back = pdbs.get_opt(&gone).await?;
            Ok(back.filter(|b| b.uid() != old_uid).map(|_| ()))
        })
        .await?;
        Ok::<(), Failure>(())
    })
    .await;
}
