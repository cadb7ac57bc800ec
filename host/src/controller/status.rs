//! Conditions from how a pass ended, and writing a status.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::pipeline::{Flow, StepFailed};
use super::{Context, Error};
use crate::api::conditions::{self, DEGRADED, NewCondition, PROGRESSING, READY, Status};
use crate::resources::apply::FIELD_MANAGER;

/// Sets Ready, Progressing and Degraded from how the pass ended.
pub fn set_conditions(
    list: &mut Vec<Condition>,
    flow: &Result<Flow, StepFailed>,
    generation: Option<i64>,
) {
    let now = Timestamp::now();
    let mut put = |type_: &str, status: Status, reason: &str, message: &str| {
        conditions::set(
            list,
            &NewCondition {
                type_,
                status,
                reason,
                message,
                observed_generation: generation,
            },
            now,
        );
    };
    match flow {
        Ok(Flow::Next) | Ok(Flow::Stop) => {
            put(
                READY,
                Status::True,
                "Converged",
                "everything in the spec is in place",
            );
            put(PROGRESSING, Status::False, "Converged", "nothing to do");
            put(DEGRADED, Status::False, "Converged", "no failure");
        }
        Ok(Flow::Wait {
            reason, message, ..
        }) => {
            put(READY, Status::False, reason, message);
            put(PROGRESSING, Status::True, reason, message);
            put(DEGRADED, Status::False, "NoFailure", "no failure");
        }
        Err(failed) => {
            let message = failed.to_string();
            put(READY, Status::False, failed.source.reason(), &message);
            put(DEGRADED, Status::True, failed.source.reason(), &message);
        }
    }
}

/// Writes `status` through the status subresource (server-side apply, the
/// operator's field manager) when it differs from the object's.
pub async fn write<K, S>(
    ctx: &Context,
    object: &K,
    old: Option<&S>,
    status: &S,
) -> Result<bool, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if old == Some(status) {
        return Ok(false);
    }
    let namespace = object.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    Ok(true)
}
