//! The Cluster and Role controllers against the real control plane (the
//! StatefulSet controller, the garbage collector, kwok pods), with the
//! in-memory Cartridge as the topology: the article's Cluster and Roles
//! produce StatefulSets, Services and pods with the right names and owners
//! and a bootstrapped topology, in whichever order they are applied, and
//! deleting the Cluster removes everything.

#[path = "../../harness/tests/support/mod.rs"]
mod support;

#[allow(dead_code)]
mod in_process;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use tarantool_operator::api::conditions;
use tarantool_operator::api::names::statefulset_names;
use tarantool_operator::api::{Cluster, Role};
use tarantool_operator::resources::labels;
use test_harness::{TestContext, run};

use support::manifests;
use support::scenario::{Failure, check, create_article, wait_bootstrapped, wait_joined};

const CLUSTER: &str = "examples/article/cluster.yaml";
const ROUTER: &str = "examples/article/router.yaml";
const STORAGE: &str = "examples/article/storage.yaml";

fn is_controlled_by<K: Resource<DynamicType = ()>>(object: &impl ResourceExt, owner: &K) -> bool {
    object.owner_references().iter().any(|r| {
        r.controller == Some(true)
            && r.kind == K::kind(&())
            && Some(&r.uid) == owner.meta().uid.as_ref()
    })
}

/// Everything the article's manifests should produce, checked object by
/// object; returns the names of the StatefulSets.
async fn check_objects(t: &TestContext, cluster: &Cluster) -> Result<Vec<String>, Failure> {
    let mut all_statefulsets = Vec::new();
    for (name, replicasets) in [("router", 1usize), ("storage", 2)] {
        let role = t.api::<Role>().get(name).await?;
        check(is_controlled_by(&role, cluster), || {
            format!("Role {name} is not owned by the Cluster")
        })?;
        let expected = statefulset_names(&role);
        check(expected.len() == replicasets, || {
            format!("{name}: {expected:?}")
        })?;
        let statefulsets = t
            .api::<StatefulSet>()
            .list(&ListParams::default().labels(&labels::role_selector(name)))
            .await?
            .items;
        let mut names: Vec<String> = statefulsets.iter().map(ResourceExt::name_any).collect();
        names.sort();
        check(names == expected, || {
            format!("StatefulSets of {name}: {names:?}, want {expected:?}")
        })?;
        for sts in &statefulsets {
            check(is_controlled_by(sts, &role), || {
                format!("{} not owned by Role {name}", sts.name_any())
            })?;
            let strategy = sts
                .spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.type_.as_deref());
            check(strategy == Some("OnDelete"), || {
                format!("{}: update strategy {strategy:?}", sts.name_any())
            })?;
            for i in 0..2 {
                let pod_name = format!("{}-{i}", sts.name_any());
                let pod = t.api::<Pod>().get(&pod_name).await?;
                check(is_controlled_by(&pod, sts), || {
                    format!("pod {pod_name} not owned by its StatefulSet")
                })?;
                check(
                    pod.labels().get(labels::CLUSTER).map(String::as_str)
                        == Some("tarantool-cluster"),
                    || format!("pod {pod_name} lacks the cluster label"),
                )?;
            }
        }
        let service = t.api::<Service>().get(name).await?;
        check(is_controlled_by(&service, &role), || {
            format!("Service {name} not owned by its Role")
        })?;
        let headless = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
        check(headless == Some("None"), || {
            format!("Service {name} is not headless: {headless:?}")
        })?;
        let status = role.status.clone().unwrap_or_default();
        for rs in &status.replicasets {
            check(
                rs.uuid.is_some() && rs.joined == 2 && rs.ready == 2 && rs.updated == 2,
                || format!("Role {name} replica set status {rs:?}"),
            )?;
        }
        all_statefulsets.extend(names);
    }
    let client = t.api::<Service>().get("tarantool-cluster").await?;
    check(is_controlled_by(&client, cluster), || {
        "client Service not owned by the Cluster".into()
    })?;
    // iproto only: Cartridge's HTTP admin port only when the Cluster asks.
    let ports: Vec<String> = client
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|p| p.name.clone())
        .collect();
    check(ports == ["iproto"], || {
        format!("client Service ports {ports:?}")
    })?;
    Ok(all_statefulsets)
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn article_cluster_gets_objects_with_owners_and_deleting_it_removes_everything() {
    run("controllers-article", |t| async move {
        t.install_crds().await?;
        let operator = in_process::start(&t);
        create_article(&t).await?;
        let cluster = wait_bootstrapped(&t).await?;
        wait_joined(&t).await?;
        let statefulsets = check_objects(&t, &cluster).await?;

        let leader = cluster
            .status
            .as_ref()
            .and_then(|s| s.leader.clone())
            .unwrap_or_default();
        {
            let model = operator.topology.state();
            check(model.bootstrapped, || {
                format!(
                    "vshard not bootstrapped; calls: {:?}",
                    model.calls.iter().map(|c| &c.kind).collect::<Vec<_>>()
                )
            })?;
            check(model.replicasets.len() == 3, || {
                format!("{} replica sets joined", model.replicasets.len())
            })?;
            let servers: usize = model.replicasets.iter().map(|r| r.servers.len()).sum();
            check(servers == 6, || format!("{servers} instances joined"))?;
            check(model.failover.mode == "eventual", || {
                format!("failover {:?}", model.failover)
            })?;
            let storage_buckets: u64 = model
                .replicasets
                .iter()
                .filter_map(|r| r.bucket_count())
                .sum();
            check(storage_buckets == 30_000, || {
                format!("{storage_buckets} buckets")
            })?;
            let writes = model.writes();
            check(writes.iter().all(|c| c.through == leader), || {
                format!("writes not through leader {leader}: {writes:?}")
            })?;
            // The first edit joins every replica set with all its instances.
            let joins: Vec<_> = writes
                .iter()
                .filter_map(|c| match &c.kind {
                    tarantool_operator::topology::fake::CallKind::Edit(e) => Some(e),
                    _ => None,
                })
                .collect();
            check(
                joins.len() == 1
                    && joins[0]
                        .replicasets
                        .iter()
                        .all(|r| r.join_servers.len() == 2),
                || format!("joins: {joins:?}"),
            )?;
        }
        let cond = cluster
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default();
        check(conditions::is_true(&cond, conditions::READY), || {
            format!("conditions {cond:?}")
        })?;

        // A template edited by hand is put back (fields the operator sets).
        let edited = &statefulsets[0];
        let image = |sts: &StatefulSet| {
            sts.spec
                .template
                .spec
                .as_ref()
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone())
        };
        let original = image(&t.api::<StatefulSet>().get(edited).await?);
        t.api::<StatefulSet>()
            .patch(
                edited,
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(serde_json::json!([
                        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "example.invalid/edited:1"}
                    ]))
                    .map_err(|e| Failure::Check(e.to_string()))?,
                ),
            )
            .await?;
        t.eventually("the edited StatefulSet template put back", || async {
            let sts = t.api::<StatefulSet>().get(edited).await?;
            Ok((image(&sts) == original).then_some(()))
        })
        .await?;

        // The routers go first: held by a finalizer of the test's own,
        // the router Role keeps the storage Role (which holds data) waiting.
        const HOLD: &str = "test.tarantool.io/hold";
        t.api::<Role>()
            .patch(
                "router",
                &PatchParams::default(),
                &Patch::<()>::Json(
                    serde_json::from_value(serde_json::json!([
                        {"op": "add", "path": "/metadata/finalizers/-", "value": HOLD}
                    ]))
                    .map_err(|e| Failure::Check(e.to_string()))?,
                ),
            )
            .await?;
        t.api::<Cluster>()
            .delete("tarantool-cluster", &DeleteParams::background())
            .await?;
        t.eventually("the storage Role waits for the routers", || async {
            let storage = t.api::<Role>().get("storage").await?;
            let said = storage
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.message.contains("routers) go first"));
            Ok((storage.meta().deletion_timestamp.is_some() && said).then_some(()))
        })
        .await?;
        for _ in 0..10 {
            check(t.api::<Role>().get_opt("storage").await?.is_some(), || {
                "the storage Role went while its Cluster's router Role was still there".into()
            })?;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        check(
            t.api::<Role>()
                .get("router")
                .await?
                .finalizers()
                .iter()
                .all(|f| f == HOLD),
            || "the router Role's own finalizer was not released".into(),
        )?;
        t.api::<Role>()
            .patch(
                "router",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
            )
            .await?;
        for role in ["router", "storage"] {
            t.wait_deleted::<Role>(role, "Role removed with its Cluster")
                .await?;
            t.wait_deleted::<Service>(role, "headless Service removed")
                .await?;
        }
        t.wait_deleted::<Service>("tarantool-cluster", "client Service removed")
            .await?;
        for sts in &statefulsets {
            t.wait_deleted::<StatefulSet>(sts, "StatefulSet removed")
                .await?;
        }
        t.eventually("every pod removed", || async {
            let left = t
                .api::<Pod>()
                .list(&ListParams::default().labels(&labels::cluster_selector("tarantool-cluster")))
                .await?;
            Ok(left.items.is_empty().then_some(()))
        })
        .await?;
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn roles_applied_before_their_cluster_wait_for_it() {
    run("controllers-role-first", |t| async move {
        t.install_crds().await?;
        let operator = in_process::start(&t);
        manifests::create::<Role>(&t, ROUTER).await?;
        manifests::create::<Role>(&t, STORAGE).await?;
        t.wait_for::<Role>(
            "router",
            "the Role to report it has no Cluster",
            |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref())
                    .and_then(|s| conditions::find(&s.conditions, conditions::READY))
                    .is_some_and(|c| c.reason == "NoCluster")
            },
        )
        .await?;
        let statefulsets = t.api::<StatefulSet>().list(&ListParams::default()).await?;
        check(statefulsets.items.is_empty(), || {
            "StatefulSets made before the Cluster exists".into()
        })?;
        check(operator.topology.state().calls.is_empty(), || {
            "topology called without a Cluster".into()
        })?;

        manifests::create::<Cluster>(&t, CLUSTER).await?;
        let cluster = wait_bootstrapped(&t).await?;
        wait_joined(&t).await?;
        check_objects(&t, &cluster).await?;
        Ok::<(), Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_cluster_applied_before_its_roles_waits_for_them() {
    run("controllers-cluster-first", |t| async move {
        t.install_crds().await?;
        let _operator = in_process::start(&t);
        manifests::create::<Cluster>(&t, CLUSTER).await?;
        t.wait_for::<Cluster>(
            "tarantool-cluster",
            "the Cluster to wait for its Roles",
            |c: Option<&Cluster>| {
                c.and_then(|c| c.status.as_ref())
                    .and_then(|s| conditions::find(&s.conditions, conditions::READY))
                    .is_some_and(|c| c.reason == "WaitingForRoles")
            },
        )
        .await?;
        manifests::create::<Role>(&t, STORAGE).await?;
        manifests::create::<Role>(&t, ROUTER).await?;
        let cluster = wait_bootstrapped(&t).await?;
        wait_joined(&t).await?;
        check_objects(&t, &cluster).await?;
        Ok::<(), Failure>(())
    })
    .await;
}

/// The Ready condition's reason and message of a Cluster or Role status.
fn ready_of(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> (String, String) {
    conditions::find(conditions, conditions::READY)
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_cluster_takes_only_the_roles_that_name_it() {
    run("controllers-claim", |t| async move {
        t.install_crds().await?;
        let _operator = in_process::start(&t);
        manifests::create::<Role>(&t, ROUTER).await?;
        manifests::create::<Role>(&t, STORAGE).await?;
        // A Role whose author named another Cluster, listed by this one.
        let mut victim: Role = manifests::manifest(ROUTER);
        victim.metadata.name = Some("victim".into());
        victim
            .metadata
            .labels
            .get_or_insert_default()
            .insert(labels::CLUSTER.into(), "other".into());
        t.api::<Role>().create(&Default::default(), &victim).await?;
        let mut cluster: Cluster = manifests::manifest(CLUSTER);
        cluster
            .spec
            .roles
            .push(tarantool_operator::api::cluster::RoleRef {
                name: "victim".into(),
            });
        t.api::<Cluster>()
            .create(&Default::default(), &cluster)
            .await?;
        // Reported on the Cluster, which waits, and on the Role, which has
        // no Cluster; the Role is not taken.
        let cluster = t
            .wait_for::<Cluster>(
                "tarantool-cluster",
                "the Cluster to refuse the Role naming another Cluster",
                |c: Option<&Cluster>| {
                    c.and_then(|c| c.status.as_ref())
                        .is_some_and(|s| ready_of(&s.conditions).0 == "RoleNotClaimed")
                },
            )
            .await?;
        let (_, message) = ready_of(&cluster.status.unwrap_or_default().conditions);
        check(
            message.contains("victim") && message.contains("other"),
            || format!("unclear Cluster condition: {message:?}"),
        )?;
        let victim = t
            .wait_for::<Role>(
                "victim",
                "the Role to report it has no Cluster",
                |r: Option<&Role>| {
                    r.and_then(|r| r.status.as_ref())
                        .is_some_and(|s| ready_of(&s.conditions).0 == "NoCluster")
                },
            )
            .await?;
        let (_, message) = ready_of(&victim.status.clone().unwrap_or_default().conditions);
        check(message.contains("Cluster other"), || {
            format!("unclear Role condition: {message:?}")
        })?;
        check(victim.owner_references().is_empty(), || {
            format!("the Role was taken: {:?}", victim.owner_references())
        })?;
        let sets = t
            .api::<StatefulSet>()
            .list(&ListParams::default().labels(&labels::role_selector("victim")))
            .await?;
        check(sets.items.is_empty(), || {
            "StatefulSets made for the victim".into()
        })?;
        // Its author names this Cluster: the handshake is complete.
        t.api::<Role>()
            .patch(
                "victim",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": {
                    labels::CLUSTER: "tarantool-cluster"
                }}})),
            )
            .await?;
        let cluster = t.api::<Cluster>().get("tarantool-cluster").await?;
        t.wait_for::<Role>(
            "victim",
            "the Role adopted once it names the Cluster",
            |r: Option<&Role>| r.is_some_and(|r| is_controlled_by(r, &cluster)),
        )
        .await?;
        Ok::<(), Failure>(())
    })
    .await;
}
