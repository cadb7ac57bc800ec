//! What the scenario tests share: their error type, and the steps of the
//! article's cluster (create it, wait for it, change its image).

use kube::api::{Patch, PatchParams};
use serde_json::json;
use tarantool_operator_api::names::statefulset_names;
use tarantool_operator_api::{Cluster, ClusterPhase, Role};
use test_harness::TestContext;

use super::manifests;

/// Any failure of a scenario, with what was being checked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The harness (timeouts, exec, the control plane).
    #[error(transparent)]
    Harness(#[from] test_harness::Error),
    /// The apiserver.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Cartridge (the double) over exec.
    #[error(transparent)]
    Topology(#[from] tarantool_operator_cartridge::topology::TopologyError),
    /// A check that did not hold.
    #[error("{0}")]
    Check(String),
}

/// `Ok` when `ok`, else a [`Failure::Check`] saying `what`.
pub fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(what()))
    }
}

/// Whether a pod is ready and not being deleted (the operator's own test,
/// restated: the harness checks the operator, it does not borrow from it).
pub fn ready(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub async fn create_article(t: &TestContext) -> Result<(), Failure> {
    manifests::create::<Role>(t, "examples/article/router.yaml").await?;
    manifests::create::<Role>(t, "examples/article/storage.yaml").await?;
    manifests::create::<Cluster>(t, "examples/article/cluster.yaml").await?;
    Ok(())
}

/// Waits for the Cluster to be bootstrapped and Ready.
pub async fn wait_bootstrapped(t: &TestContext) -> Result<Cluster, Failure> {
    Ok(t.wait_for::<Cluster>(
        "tarantool-cluster",
        "the Cluster bootstrapped and Ready",
        |c: Option<&Cluster>| {
            c.and_then(|c| c.status.as_ref())
                .is_some_and(|s| s.bootstrapped && s.phase == ClusterPhase::Ready)
        },
    )
    .await?)
}

/// Waits for both Roles to record every instance as joined.
pub async fn wait_joined(t: &TestContext) -> Result<(), Failure> {
    for name in ["router", "storage"] {
        t.wait_for::<Role>(
            name,
            "the Role's replica sets joined",
            |r: Option<&Role>| {
                r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
                    !s.replicasets.is_empty()
                        && s.replicasets
                            .iter()
                            .all(|rs| rs.joined == 2 && rs.uuid.is_some())
                })
            },
        )
        .await?;
    }
    Ok(())
}

/// Sets the image of every container of `role`'s pods (writing the template
/// to its canonical place, dropping the article's alias).
pub async fn set_image(t: &TestContext, role: &str, image: &str) -> Result<(), Failure> {
    let roles = t.api::<Role>();
    let current = roles.get(role).await?;
    let mut template = current
        .spec
        .replicaset_template()
        .cloned()
        .ok_or_else(|| Failure::Check(format!("{role} has no template")))?;
    if let Some(spec) = template.pod_template.spec.as_mut() {
        for c in &mut spec.containers {
            c.image = Some(image.into());
        }
    }
    let patch =
        json!({"spec": {"replicasetTemplate": template, "vshard": {"replicasetTemplate": null}}});
    roles
        .patch(role, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Whether `role` runs `image` on all its `replicasets` replica sets, every
/// one updated and ready, its rollout done.
pub fn rolled(role: Option<&Role>, replicasets: i32, image: &str) -> bool {
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

/// Approves every master switch the operator asks for on Role `role_name`
/// (the `tarantool.io/approve-switch` annotation, one pod at a time) until
/// its rollout is done. A pod asked for again is approved again: the
/// operator consumes each approval, so a request repeated means the
/// previous approval was overwritten before it was used (two replica sets
/// can be waiting at once).
pub async fn approve_until_done(t: &TestContext, role_name: &str) -> Result<(), Failure> {
    let roles = t.api::<Role>();
    t.eventually("the rollout done, every switch approved", || async {
        let role = roles.get(role_name).await?;
        let update = role.status.as_ref().and_then(|s| s.update.as_ref());
        if update.is_some_and(|u| u.done) {
            return Ok(Some(()));
        }
        let asked = update
            .and_then(|u| u.message.as_deref())
            .and_then(|m| m.split("tarantool.io/approve-switch=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string);
        let approved = kube::ResourceExt::annotations(&role).get("tarantool.io/approve-switch");
        if let Some(pod) = asked.filter(|p| approved != Some(p)) {
            roles
                .patch(
                    role_name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {"tarantool.io/approve-switch": pod}}}),
                    ),
                )
                .await?;
        }
        Ok(None)
    })
    .await?;
    Ok(())
}

/// The storage Role converged on its current spec: `replicasets` replica
/// sets of `replicas` instances, every one ready and joined, no rollout
/// running.
pub async fn settled(t: &TestContext, replicasets: usize, replicas: i32) -> Result<Role, Failure> {
    Ok(t.wait_for::<Role>(
        "storage",
        "the storage Role settled",
        move |r: Option<&Role>| {
            let Some(role) = r else { return false };
            let wanted = statefulset_names(role);
            role.status.as_ref().is_some_and(|s| {
                s.observed_generation == role.metadata.generation
                    && s.replicasets.len() == replicasets
                    && wanted.len() == replicasets
                    && s.replicasets.iter().all(|rs| {
                        wanted.contains(&rs.name)
                            && rs.joined == replicas
                            && rs.ready == replicas
                            && rs.replicas == replicas
                    })
                    && s.update.as_ref().is_none_or(|u| u.done)
            })
        },
    )
    .await?)
}

/// Role `role` under OnDelete reports its `total` pods pending, none
/// updated, with a message saying what to delete.
pub async fn on_delete_pending(t: &TestContext, role: &str, total: i32) -> Result<Role, Failure> {
    Ok(t.wait_for::<Role>(
        role,
        "OnDelete to report pending pods",
        move |r: Option<&Role>| {
            r.and_then(|r| r.status.as_ref())
                .and_then(|s| s.update.as_ref())
                .is_some_and(|u| {
                    u.strategy == "OnDelete"
                        && u.total_pods == total
                        && u.updated_pods == 0
                        && u.message.is_some()
                })
        },
    )
    .await?)
}

/// Asks for volumes of `size` in the storage Role: a new volume template,
/// so a migration to new StatefulSets.
pub async fn grow_volumes(t: &TestContext, role: &Role, size: &str) -> Result<(), Failure> {
    let mut template = role
        .spec
        .replicaset_template()
        .cloned()
        .ok_or_else(|| Failure::Check("template".into()))?;
    for claim in &mut template.volume_claim_templates {
        if let Some(resources) = claim.spec.as_mut().and_then(|s| s.resources.as_mut()) {
            resources.requests = Some(
                [(
                    "storage".to_string(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(size.into()),
                )]
                .into(),
            );
        }
    }
    t.api::<Role>()
        .patch(
            "storage",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicasetTemplate": template}})),
        )
        .await?;
    Ok(())
}
