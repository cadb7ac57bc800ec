//! Applying an object the operator owns, and saying so.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Service;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Context, Error, events};
use crate::api::Reason;
use crate::resources::apply::{self, Applied};

/// A namespaced kind the operator applies and owns.
pub(crate) trait OwnedKind:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
{
}

impl<K> OwnedKind for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
{
}

/// Applies `desired` (skipped when unchanged, see [`apply::apply`]) and
/// reports a creation or update as a Normal Event `reason` on `owner`.
pub(crate) async fn apply_and_report<K, O>(
    ctx: &Context,
    owner: &O,
    desired: K,
    reason: Reason,
) -> Result<Applied, Error>
where
    K: OwnedKind,
    O: Resource<DynamicType = ()>,
{
    let namespace = desired
        .namespace()
        .ok_or(Error::MissingField("namespace"))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = api.get_opt(&desired.name_any()).await?;
    apply_over(ctx, owner, desired, existing.as_ref(), reason).await
}

/// [`apply_over`] the Service as the controllers' watched store has it; a
/// GET when the store lacks it (created a moment ago, or the stores are not
/// running). A Cluster's client Service and a Role's headless one.
pub(crate) async fn apply_service<O>(
    ctx: &Context,
    owner: &O,
    desired: Service,
) -> Result<Applied, Error>
where
    O: Resource<DynamicType = ()>,
{
    let namespace = desired
        .namespace()
        .ok_or(Error::MissingField("namespace"))?;
    let cached = ctx
        .cache()
        .filter(|c| c.ready())
        .and_then(|c| c.service(&namespace, &desired.name_any()));
    match cached {
        Some(existing) => {
            apply_over(ctx, owner, desired, Some(&existing), Reason::ServiceApplied).await
        }
        None => apply_and_report(ctx, owner, desired, Reason::ServiceApplied).await,
    }
}

/// [`apply_and_report`] over `existing` as the caller read it (from a
/// watched store): no GET. A store behind the operator's own apply costs
/// one idempotent apply more, never a missed change: the watch that feeds
/// it also wakes the owner when someone else changes the object.
pub(crate) async fn apply_over<K, O>(
    ctx: &Context,
    owner: &O,
    desired: K,
    existing: Option<&K>,
    reason: Reason,
) -> Result<Applied, Error>
where
    K: OwnedKind,
    O: Resource<DynamicType = ()>,
{
    let name = desired.name_any();
    // Someone else's change of what we set is put back, hash or not.
    let current = apply::unless_drifted(&desired, existing);
    let drifted = existing.is_some() && current.is_none();
    let (applied, _) = apply::apply(&ctx.client, desired, current).await?;
    let verb = match applied {
        Applied::Unchanged => return Ok(applied),
        _ if drifted => "put back (changed outside the operator)",
        Applied::Created => "created",
        Applied::Updated => "updated",
    };
    events::normal(
        ctx,
        owner,
        reason,
        format!("{} {name} {verb}", K::kind(&())),
    )
    .await;
    Ok(applied)
}
