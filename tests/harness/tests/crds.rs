//! The Cluster and Role CRDs against the real apiserver: they install, the
//! article's manifests apply unchanged and read back as the Rust types,
//! invalid manifests are refused with a readable message, and the status
//! subresource keeps status writes away from the spec.

use std::path::PathBuf;

use kube::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use tarantool_operator_api::{Cluster, FailoverMode, Role, RolePhase, RoleStatus};
use test_harness::{Error, run};

/// Any failure of these tests, with what was being checked.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Harness(#[from] Error),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Check(String),
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(what()))
    }
}

fn repo_path(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    path.display().to_string()
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn article_manifests_apply_unchanged_and_read_back() {
    run("crd-article", |t| async move {
        t.install_crds().await?;
        // Client-side apply, as the article's readers would.
        t.kubectl(&["apply", "-f", &repo_path("examples/article")])
            .await?;

        let cluster = t.api::<Cluster>().get("tarantool-cluster").await?;
        let roles: Vec<&str> = cluster.spec.role_names().collect();
        check(roles == ["router", "storage"], || {
            format!("roles {roles:?}")
        })?;
        let failover = cluster.spec.failover_or_default();
        check(failover.mode == FailoverMode::Eventual, || {
            format!("{failover:?}")
        })?;
        check(
            cluster.spec.vshard.as_ref().is_some_and(|v| v.bootstrap),
            || format!("vshard {:?}", cluster.spec.vshard),
        )?;

        let router = t.api::<Role>().get("router").await?;
        // Stored where the article put it, found through the alias.
        check(router.spec.replicaset_template.is_none(), || {
            "router's template moved out of vshard".into()
        })?;
        let template = router
            .spec
            .replicaset_template()
            .ok_or_else(|| Failure::Check("router has no template".into()))?;
        check(template.replicas == 2, || {
            format!("replicas {}", template.replicas)
        })?;
        let image = template
            .pod_template
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        check(
            image.as_deref() == Some("tarantool/tarantool-operator-examples-kv:0.0.4"),
            || format!("image {image:?}"),
        )?;
        let cluster_roles = router
            .spec
            .vshard
            .as_ref()
            .map(|v| v.cluster_roles.clone())
            .unwrap_or_default();
        check(
            cluster_roles == ["failover-coordinator", "app.roles.router"],
            || format!("clusterRoles {cluster_roles:?}"),
        )?;

        let storage = t.api::<Role>().get("storage").await?;
        let claims = storage
            .spec
            .replicaset_template()
            .map(|t| t.volume_claim_templates.len());
        check(claims == Some(1), || format!("storage claims {claims:?}"))?;
        check(
            storage.spec.update_strategy.name == "SwitchMasterUpdate",
            || format!("strategy {:?}", storage.spec.update_strategy),
        )?;

        // Applying the same files again changes nothing.
        let again = t
            .kubectl(&["apply", "-f", &repo_path("examples/article")])
            .await?;
        check(again.matches("unchanged").count() == 3, || again.clone())?;

        // `kubectl get` shows the printer columns; short names and the
        // category resolve.
        let table = t.kubectl(&["get", "tntr"]).await?;
        let header = table.lines().next().unwrap_or_default().to_string();
        for column in ["NAME", "PHASE", "READY", "UPDATED", "AGE"] {
            check(header.contains(column), || {
                format!("{column} missing in {header:?}")
            })?;
        }
        let all = t.kubectl(&["get", "tarantool", "-o", "name"]).await?;
        for name in [
            "cluster.tarantool.io/tarantool-cluster",
            "role.tarantool.io/router",
            "role.tarantool.io/storage",
        ] {
            check(all.contains(name), || format!("{name} not in {all:?}"))?;
        }
        Ok::<_, Failure>(())
    })
    .await;
}

fn role(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "tarantool.io/v1alpha1", "kind": "Role",
           "metadata": {"name": name}, "spec": spec})
}

fn cluster(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "tarantool.io/v1alpha1", "kind": "Cluster",
           "metadata": {"name": name}, "spec": spec})
}

fn template(replicas: i64) -> Value {
    json!({"replicas": replicas,
           "podTemplate": {"spec": {"containers": [{"name": "cartridge", "image": "kv:1"}]}}})
}

/// (what, manifest, text the apiserver's answer must contain: every part
/// between " … ", in any Kubernetes release the operator supports)
fn invalid_manifests() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "no instances in a replica set",
            role("zero-replicas", json!({"replicasetTemplate": template(0)})),
            "spec.replicasetTemplate.replicas: Invalid value: 0: spec.replicasetTemplate.replicas in body should be greater than or equal to 1",
        ),
        (
            "a negative number of replica sets",
            role(
                "negative",
                json!({"replicasets": -1, "replicasetTemplate": template(1)}),
            ),
            "spec.replicasets in body should be greater than or equal to 0",
        ),
        (
            "a negative vshard weight",
            role(
                "weight",
                json!({"vshard": {"weight": -1}, "replicasetTemplate": template(1)}),
            ),
            "spec.vshard.weight in body should be greater than or equal to 0",
        ),
        (
            "a strategy param that is not a string",
            role(
                "param",
                json!({"replicasetTemplate": template(1),
                "updateStrategy": {"name": "SwitchMasterUpdate", "params": {"maxUnavailable": 1}}}),
            ),
            "spec.updateStrategy.params.maxUnavailable in body must be of type string",
        ),
        (
            "maxUnavailable of zero",
            role(
                "budget",
                json!({"replicasetTemplate": template(1),
                "updateStrategy": {"name": "SwitchMasterUpdate", "params": {"maxUnavailable": "0"}}}),
            ),
            "params.maxUnavailable must be a positive whole number written as a string",
        ),
        (
            "a strategy name with spaces",
            role(
                "strategy-name",
                json!({"replicasetTemplate": template(1),
                "updateStrategy": {"name": "Switch Master!"}}),
            ),
            // Kubernetes 1.34 prints the type ("string") where 1.37 prints
            // the value: the field and the CRD's message are what count.
            "spec.updateStrategy.name: Invalid value: … a strategy name starts with a letter",
        ),
        (
            "a sha256 that is not 64 hex digits",
            role(
                "digest",
                json!({"replicasetTemplate": template(1),
                "updateStrategy": {"name": "Canary", "configMapRef": {"name": "canary"}, "sha256": "abc"}}),
            ),
            "sha256 is 64 lowercase hex digits",
        ),
        (
            "a sha256 pin without a custom component",
            role(
                "pin",
                json!({"replicasetTemplate": template(1),
                "updateStrategy": {"name": "Canary", "sha256": "ab".repeat(32)}}),
            ),
            "spec.updateStrategy.sha256: Forbidden: sha256 pins a custom component: set configMapRef too",
        ),
        (
            "the template in both places",
            role(
                "both",
                json!({"replicasetTemplate": template(1),
                "vshard": {"replicasetTemplate": template(1)}}),
            ),
            "spec.replicasetTemplate: Forbidden: replicasetTemplate is set twice",
        ),
        (
            "no template at all",
            role("none", json!({"replicasets": 1})),
            "spec.replicasetTemplate: Required value: a Role needs spec.replicasetTemplate",
        ),
        (
            "stateful failover without a state provider",
            cluster("stateful", json!({"failover": {"mode": "stateful"}})),
            "spec.failover.stateProvider: Required value: stateful failover needs a stateProvider",
        ),
        (
            "eventual failover with a state provider",
            cluster(
                "eventual",
                json!({"failover": {"mode": "eventual", "stateProvider": "stateboard",
                "stateboardParams": {"uri": "stateboard:4401"}}}),
            ),
            "spec.failover.stateProvider: Forbidden: only stateful failover takes a stateProvider",
        ),
        (
            "etcd2 without its params",
            cluster(
                "etcd",
                json!({"failover": {"mode": "stateful", "stateProvider": "etcd2"}}),
            ),
            "spec.failover.etcd2Params: Required value: stateProvider etcd2 needs etcd2Params",
        ),
        (
            "params of the other provider",
            cluster(
                "mixed",
                json!({"failover": {"mode": "stateful", "stateProvider": "etcd2",
                "etcd2Params": {"endpoints": ["http://etcd:2379"]},
                "stateboardParams": {"uri": "stateboard:4401"}}}),
            ),
            "spec.failover.stateboardParams: Forbidden: stateboardParams is only used with stateProvider stateboard",
        ),
        (
            "an unknown failover mode",
            cluster("mode", json!({"failover": {"mode": "sometimes"}})),
            "spec.failover.mode: Unsupported value: \"sometimes\": supported values: \"disabled\", \"eventual\", \"stateful\", \"raft\"",
        ),
        (
            "fencing without stateful failover",
            cluster(
                "fencing",
                json!({"failover": {"mode": "raft", "fencingEnabled": true}}),
            ),
            "spec.failover.fencingEnabled: Forbidden: fencing works only with stateful failover",
        ),
        (
            "a Role listed twice",
            cluster(
                "twice",
                json!({"roles": [{"name": "router"}, {"name": "router"}]}),
            ),
            "spec.roles[1]: Duplicate value",
        ),
    ]
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn invalid_manifests_are_refused_with_readable_messages() {
    run("crd-invalid", |t| async move {
        t.install_crds().await?;
        let cases = invalid_manifests();
        let mut problems = Vec::new();
        for (what, manifest, expected) in &cases {
            let kind = manifest["kind"].as_str().unwrap_or_default();
            let resource = if kind == "Role" {
                ApiResource::erase::<Role>(&())
            } else {
                ApiResource::erase::<Cluster>(&())
            };
            let api: Api<DynamicObject> =
                Api::namespaced_with(t.client.clone(), &t.namespace, &resource);
            let object: DynamicObject = serde_json::from_value(manifest.clone())
                .map_err(|e| Failure::Check(format!("{what}: {e}")))?;
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => problems.push(format!("{what}: admitted")),
                Err(kube::Error::Api(status)) => {
                    eprintln!("{what}:\n    {}", status.message);
                    let found = expected
                        .split(" … ")
                        .all(|part| status.message.contains(part));
                    if status.code != 422 || !found {
                        problems.push(format!(
                            "{what}: got {} {:?}, expected it to contain {expected:?}",
                            status.code, status.message
                        ));
                    }
                }
                Err(e) => problems.push(format!("{what}: {e}")),
            }
        }
        check(problems.is_empty(), || problems.join("\n"))?;
        check(cases.len() >= 8, || "at least 8 cases".into())?;
        Ok::<_, Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn status_subresource_keeps_spec_and_status_apart() {
    run("crd-status", |t| async move {
        t.install_crds().await?;
        let roles = t.api::<Role>();
        let manifest = role("storage", json!({"replicasets": 2, "replicasetTemplate": template(2)}));
        let created: Role = serde_json::from_value(manifest)
            .map_err(|e| Failure::Check(e.to_string()))?;
        let created = roles.create(&PostParams::default(), &created).await?;
        let generation = created.meta().generation;
        check(created.status.is_none(), || "a new Role has no status".into())?;
        // Defaults were applied by the apiserver.
        check(created.spec.update_strategy.name == "SwitchMasterUpdate", || {
            format!("{:?}", created.spec.update_strategy)
        })?;

        // A status patch that also tries to change the spec: only the status lands.
        let patch = json!({
            "spec": {"replicasets": 7},
            "status": {"phase": "Updating", "ready": "1/2", "readyReplicasets": 1,
                       "updatedReplicasets": 0,
                       "replicasets": [{"name": "storage-0-7dfd9f68f", "replicas": 2, "ready": 2,
                                        "updated": 1, "master": "storage-0-7dfd9f68f-0", "weight": 1.0}],
                       "conditions": [{"type": "Ready", "status": "False", "reason": "Updating",
                                       "message": "1 of 4 pods updated",
                                       "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        });
        let patched = roles
            .patch_status("storage", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        check(patched.spec.replicasets == 2, || {
            format!("status patch changed spec.replicasets to {}", patched.spec.replicasets)
        })?;
        check(patched.meta().generation == generation, || "generation moved".into())?;
        let status = patched.status.clone().unwrap_or_default();
        check(status.phase == RolePhase::Updating, || format!("{status:?}"))?;
        check(status.ready.as_deref() == Some(&RoleStatus::ready_text(1, 2)), || {
            format!("{status:?}")
        })?;
        check(
            status.replicasets.first().and_then(|r| r.master.as_deref())
                == Some("storage-0-7dfd9f68f-0"),
            || format!("{status:?}"),
        )?;

        // A spec patch that carries a status: the status is ignored.
        let patch = json!({"spec": {"replicasets": 3}, "status": {"phase": "Ready"}});
        let patched = roles
            .patch("storage", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        check(patched.spec.replicasets == 3, || "spec patch lost".into())?;
        check(
            patched.status.as_ref().map(|s| s.phase) == Some(RolePhase::Updating),
            || format!("status changed through the main resource: {:?}", patched.status),
        )?;

        // The status shows in `kubectl get`.
        let row = t.kubectl(&["get", "roles.tarantool.io", "storage", "--no-headers"]).await?;
        check(row.contains("Updating") && row.contains("1/2"), || row.clone())?;

        // An invalid status value is refused too.
        let bad = json!({"status": {"phase": "Sleeping"}});
        let refused = roles
            .patch_status("storage", &PatchParams::default(), &Patch::Merge(&bad))
            .await;
        check(matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422), || {
            format!("phase Sleeping: {refused:?}")
        })?;

        // Clusters have a status subresource as well.
        let clusters = t.api::<Cluster>();
        let c: Cluster = serde_json::from_value(cluster("c", json!({"roles": [{"name": "storage"}]})))
            .map_err(|e| Failure::Check(e.to_string()))?;
        clusters.create(&PostParams::default(), &c).await?;
        let patch = json!({"spec": {"roles": []},
                           "status": {"phase": "Ready", "bootstrapped": true, "leader": "storage-0-x-0"}});
        let patched = clusters
            .patch_status("c", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        check(patched.spec.roles.len() == 1, || "status patch changed Cluster spec".into())?;
        check(patched.status.as_ref().is_some_and(|s| s.bootstrapped), || {
            format!("{:?}", patched.status)
        })?;
        Ok::<_, Failure>(())
    })
    .await;
}
