//! Deleting a Role without losing data.
//!
//! A finalizer ([`FINALIZER`]) holds a deleted Role until its replica sets
//! are out of the topology: the deletion is the scaling decisions with
//! every StatefulSet retiring (drain, record, expel, confirm, then claims
//! and StatefulSets), and the finalizer goes once no StatefulSet is left.
//! A storage Role whose buckets have nowhere to go is not drained: its
//! deletion waits, `Degraded`, saying why. When the Role's Cluster is gone
//! or being deleted too, nothing is drained (there is nowhere to drain to;
//! the volumes stay, `whenDeleted: Retain`), but the Roles go in order: a
//! Role holding data waits until the Cluster's Roles without data (the
//! routers) are gone, so that no client request reaches a storage as it
//! goes. A human may let a Role go at once with [`FORCE_DELETE`].

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::RolePass;
use super::observe::Snapshot;
use crate::api::Reason;
use crate::api::cluster::Cluster;
use crate::api::role::Role;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error, events};

/// The Role's finalizer: the operator drains and expels before it goes.
pub(crate) const FINALIZER: &str = "tarantool.io/expel";

/// Annotation that lets a Role go without draining and expelling
/// (`"true"`): its data and its instances' places in the topology are
/// abandoned.
pub(crate) const FORCE_DELETE: &str = "tarantool.io/force-delete";

/// What a pass over a Role does about deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deletion {
    /// Not being deleted.
    No,
    /// Being deleted, nothing of ours holds it.
    NotOurs,
    /// Remove the finalizer now.
    Release(Release),
    /// Drain, expel and delete its replica sets first.
    Drain,
    /// Its Cluster goes: this Role holds data and waits for the Cluster's
    /// Roles without data to go first.
    AfterRouters {
        /// Those Roles still there.
        left: usize,
    },
}

/// Why the finalizer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// No Cluster owns or lists the Role any more.
    ClusterGone,
    /// Its Cluster is being deleted too.
    ClusterDeleting,
    /// A human set [`FORCE_DELETE`].
    Forced,
    /// Every StatefulSet of the Role is gone.
    Done,
}

impl Release {
    fn note(self) -> &'static str {
        match self {
            Self::ClusterGone => "its Cluster is gone: nothing to drain into",
            Self::ClusterDeleting => "its Cluster is being deleted too",
            Self::Forced => {
                "tarantool.io/force-delete is set: deleted without draining or expelling"
            }
            Self::Done => "its replica sets were drained, expelled and deleted",
        }
    }
}

/// Facts a deletion depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeletionFacts {
    /// The Role has a deletion timestamp.
    pub deleting: bool,
    /// It carries [`FINALIZER`].
    pub finalizer: bool,
    /// Its Cluster: `None` gone, `Some(true)` being deleted.
    pub cluster_deleting: Option<bool>,
    /// [`FORCE_DELETE`] is set.
    pub forced: bool,
    /// StatefulSets of the Role still exist (known once observed).
    pub statefulsets_left: Option<usize>,
    /// The Role holds data (Cartridge reported a vshard weight for one of
    /// its replica sets).
    pub holds_data: bool,
    /// Other Roles of its Cluster that hold no data and still exist
    /// (counted only when its Cluster goes).
    pub dataless_siblings: usize,
}

/// The deletion decision.
pub(crate) fn decide(facts: DeletionFacts) -> Deletion {
    if !facts.deleting {
        return Deletion::No;
    }
    if !facts.finalizer {
        return Deletion::NotOurs;
    }
    if facts.forced {
        return Deletion::Release(Release::Forced);
    }
    let release = match facts.cluster_deleting {
        None => Release::ClusterGone,
        Some(true) => Release::ClusterDeleting,
        Some(false) => Release::Done,
    };
    if release != Release::Done {
        if facts.holds_data && facts.dataless_siblings > 0 {
            return Deletion::AfterRouters {
                left: facts.dataless_siblings,
            };
        }
        return Deletion::Release(release);
    }
    if facts.statefulsets_left == Some(0) {
        return Deletion::Release(Release::Done);
    }
    Deletion::Drain
}

fn facts(
    pass: &RolePass,
    cluster: Option<&Cluster>,
    statefulsets_left: Option<usize>,
) -> DeletionFacts {
    let meta = pass.role.meta();
    DeletionFacts {
        deleting: meta.deletion_timestamp.is_some(),
        finalizer: pass.role.finalizers().iter().any(|f| f == FINALIZER),
        cluster_deleting: cluster.map(|c| c.meta().deletion_timestamp.is_some()),
        forced: pass
            .role
            .annotations()
            .get(FORCE_DELETE)
            .is_some_and(|v| v == "true"),
        statefulsets_left,
        holds_data: holds_data(&pass.status.replicasets),
        dataless_siblings: 0,
    }
}

/// Cartridge reports a weight only for vshard storages.
fn holds_data(replicasets: &[crate::api::role::ReplicasetStatus]) -> bool {
    replicasets.iter().any(|r| r.weight.is_some())
}

/// Other Roles of the same Cluster (the same owner, or listed by it) that
/// hold no data.
pub(crate) fn dataless_siblings(role: &Role, cluster: Option<&Cluster>, roles: &[Role]) -> usize {
    let owner = |r: &Role| {
        r.owner_references()
            .iter()
            .find(|o| o.controller == Some(true) && o.kind == "Cluster")
            .map(|o| o.uid.clone())
    };
    let mine = owner(role);
    roles
        .iter()
        .filter(|r| r.name_any() != role.name_any())
        .filter(|r| {
            (mine.is_some() && owner(r) == mine)
                || cluster.is_some_and(|c| c.spec.role_names().any(|n| n == r.name_any()))
        })
        .filter(|r| {
            !r.status
                .as_ref()
                .is_some_and(|s| holds_data(&s.replicasets))
        })
        .count()
}

/// The Cluster that owns the Role, for a deleted Role that no Cluster
/// lists any more (removed from the Cluster's list, then deleted).
pub(crate) fn owner<'a>(role: &Role, clusters: &'a [Cluster]) -> Option<&'a Cluster> {
    let uid = role
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "Cluster")
        .map(|r| r.uid.clone())?;
    clusters
        .iter()
        .find(|c| c.uid().as_deref() == Some(uid.as_str()))
}

/// First step: a Role being deleted that our finalizer does not hold is
/// left to the garbage collector; one it holds goes through the deletion
/// steps.
pub(crate) async fn check_deletion(pass: &mut RolePass) -> Result<Flow, Error> {
    let facts = facts(pass, None, None);
    pass.deleting = facts.deleting && facts.finalizer;
    if facts.deleting && !facts.finalizer {
        return Ok(Flow::Stop);
    }
    Ok(Flow::Next)
}

/// What a finalizer patch met.
enum Patched {
    Done,
    /// The Role is gone.
    Gone,
    /// Its finalizers were not what the patch's test expected.
    Changed,
}

/// Sends a JSON patch of the Role's finalizers (with its own test op).
async fn patch_finalizers(
    ctx: &Context,
    pass: &RolePass,
    patch: serde_json::Value,
) -> Result<Patched, Error> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|_| Error::MissingField("finalizers"))?;
    let api: Api<Role> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    match api
        .patch(
            &pass.name,
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(Patched::Done),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Patched::Gone),
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 409 => Ok(Patched::Changed),
        Err(e) => Err(e.into()),
    }
}

/// A Role that is not being deleted carries the finalizer (one write, the
/// first time).
pub(crate) async fn ensure_finalizer(ctx: &Context, pass: &mut RolePass) -> Result<Flow, Error> {
    if pass.role.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Flow::Next);
    }
    // The test guards against a cached Role that is behind: others'
    // finalizers are never overwritten, and ours is never added twice.
    let patch = match pass.role.meta().finalizers.as_ref() {
        None => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(current) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
    };
    // A Role that changed meanwhile is looked at again by the next pass.
    match patch_finalizers(ctx, pass, patch).await? {
        Patched::Gone => Ok(Flow::Stop),
        Patched::Done | Patched::Changed => Ok(Flow::Next),
    }
}

/// A Role being deleted whose Cluster is gone or going, or that a human
/// forces, lets go at once.
pub(crate) async fn release_early(
    ctx: &Context,
    pass: &mut RolePass,
    cluster: Option<&Cluster>,
) -> Result<Flow, Error> {
    let mut facts = facts(pass, cluster, None);
    if facts.cluster_deleting != Some(false) && facts.holds_data {
        let api: Api<Role> = Api::namespaced(ctx.client.clone(), &pass.namespace);
        let roles = api.list(&kube::api::ListParams::default()).await?.items;
        facts.dataless_siblings = dataless_siblings(&pass.role, cluster, &roles);
    }
    match decide(facts) {
        Deletion::Release(why) => release(ctx, pass, why).await,
        Deletion::AfterRouters { left } => Ok(Flow::wait(
            Reason::Deleting,
            format!(
                "its Cluster is being deleted: {left} Roles without data (routers) go first, so that no request reaches this Role's storage as it goes"
            ),
            ctx.settings.poll,
        )),
        _ => Ok(Flow::Next),
    }
}

/// The last deletion step: the finalizer goes once no StatefulSet is left.
pub(crate) async fn release_when_gone(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let left = snap.statefulsets.len();
    match decide(facts(pass, Some(&snap.cluster), Some(left))) {
        Deletion::Release(why) => release(ctx, pass, why).await,
        _ => Ok(Flow::wait(
            Reason::Deleting,
            format!("waiting for {left} StatefulSets to go"),
            ctx.settings.poll,
        )),
    }
}

async fn release(ctx: &Context, pass: &RolePass, why: Release) -> Result<Flow, Error> {
    let kept: Vec<String> = pass
        .role
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    // The test fails if someone changed the finalizers meanwhile: the next
    // pass looks again.
    let patch = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": pass.role.finalizers()},
        {"op": "replace", "path": "/metadata/finalizers", "value": kept},
    ]);
    match patch_finalizers(ctx, pass, patch).await? {
        Patched::Done => {}
        Patched::Gone => return Ok(Flow::Stop),
        Patched::Changed => {
            return Ok(Flow::wait(
                Reason::Deleting,
                "the Role's finalizers changed meanwhile",
                ctx.settings.poll,
            ));
        }
    }
    // A rollout cut short by the deletion holds a pinned strategy: it goes.
    ctx.pins.release(&pass.namespace, &pass.name);
    let note = format!("Role released: {}", why.note());
    if why == Release::Forced {
        events::warning(ctx, pass.role.as_ref(), Reason::ForceDeleted, note).await;
    } else {
        events::normal(ctx, pass.role.as_ref(), Reason::Deleted, note).await;
    }
    Ok(Flow::Stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_are_decided() {
        let f = |deleting, finalizer, cluster_deleting, forced, left| DeletionFacts {
            deleting,
            finalizer,
            cluster_deleting,
            forced,
            statefulsets_left: left,
            holds_data: false,
            dataless_siblings: 0,
        };
        let storage = |cluster_deleting, forced, routers| DeletionFacts {
            holds_data: true,
            dataless_siblings: routers,
            ..f(true, true, cluster_deleting, forced, Some(2))
        };
        let cases = [
            (
                "alive",
                f(false, true, Some(false), false, Some(2)),
                Deletion::No,
            ),
            (
                "alive, forced: nothing",
                f(false, true, Some(false), true, Some(2)),
                Deletion::No,
            ),
            (
                "deleted before the finalizer existed",
                f(true, false, Some(false), false, Some(2)),
                Deletion::NotOurs,
            ),
            (
                "its Cluster gone",
                f(true, true, None, false, Some(2)),
                Deletion::Release(Release::ClusterGone),
            ),
            (
                "its Cluster going",
                f(true, true, Some(true), false, Some(2)),
                Deletion::Release(Release::ClusterDeleting),
            ),
            (
                "forced",
                f(true, true, Some(false), true, Some(2)),
                Deletion::Release(Release::Forced),
            ),
            (
                "replica sets left",
                f(true, true, Some(false), false, Some(2)),
                Deletion::Drain,
            ),
            (
                "not looked yet",
                f(true, true, Some(false), false, None),
                Deletion::Drain,
            ),
            (
                "all gone",
                f(true, true, Some(false), false, Some(0)),
                Deletion::Release(Release::Done),
            ),
            (
                "a storage whose Cluster goes waits for the routers",
                storage(Some(true), false, 2),
                Deletion::AfterRouters { left: 2 },
            ),
            (
                "a storage whose Cluster is gone waits for the routers",
                storage(None, false, 1),
                Deletion::AfterRouters { left: 1 },
            ),
            (
                "a storage whose Cluster goes, routers gone",
                storage(Some(true), false, 0),
                Deletion::Release(Release::ClusterDeleting),
            ),
            (
                "a storage forced goes at once",
                storage(Some(true), true, 2),
                Deletion::Release(Release::Forced),
            ),
            (
                "a storage alone in a living Cluster drains: routers do not matter",
                storage(Some(false), false, 2),
                Deletion::Drain,
            ),
        ];
        for (name, facts, want) in cases {
            assert_eq!(decide(facts), want, "{name}");
        }
    }

    #[test]
    fn routers_of_the_same_cluster_are_counted_before_a_storage_goes() {
        use crate::api::role::{ReplicasetStatus, RoleStatus};
        use crate::controller::testing;
        let owned = |name: &str, owner: &str, weight: Option<f64>| {
            let mut role = testing::role(testing::STORAGE);
            role.metadata.name = Some(name.into());
            role.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "tarantool.io/v1alpha1".into(),
                    kind: "Cluster".into(),
                    name: "c".into(),
                    uid: owner.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                },
            ]);
            role.status = Some(RoleStatus {
                replicasets: vec![ReplicasetStatus {
                    name: format!("{name}-0"),
                    weight,
                    ..ReplicasetStatus::default()
                }],
                ..RoleStatus::default()
            });
            role
        };
        let me = owned("storage", "uid-c", Some(1.0));
        let roles = vec![
            me.clone(),
            owned("router", "uid-c", None),
            owned("router-b", "uid-c", None),
            owned("storage-b", "uid-c", Some(0.0)),
            owned("router-of-another-cluster", "uid-other", None),
        ];
        assert_eq!(dataless_siblings(&me, None, &roles), 2);
        // Listed by the Cluster, not owned (yet): still its router.
        let mut cluster = testing::cluster();
        let listed = owned("router-of-another-cluster", "uid-other", None);
        cluster.spec.roles = ["storage", "router-of-another-cluster"]
            .map(|name| crate::api::cluster::RoleRef { name: name.into() })
            .to_vec();
        assert_eq!(
            dataless_siblings(&me, Some(&cluster), std::slice::from_ref(&listed)),
            1
        );
    }

    #[test]
    fn a_deleted_role_finds_its_owner_even_unlisted() {
        let mut role = crate::controller::testing::role(crate::controller::testing::STORAGE);
        let cluster = crate::controller::testing::cluster();
        assert!(owner(&role, std::slice::from_ref(&cluster)).is_none());
        role.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "tarantool.io/v1alpha1".into(),
                kind: "Cluster".into(),
                name: "tarantool-cluster".into(),
                uid: "uid-cluster".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            },
        ]);
        assert_eq!(
            owner(&role, std::slice::from_ref(&cluster)).map(ResourceExt::name_any),
            Some("tarantool-cluster".to_string())
        );
    }
}
