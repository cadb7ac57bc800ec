//! Conditions from how a pass ended, and writing a status.
//!
//! A pass starts from the object in the watch cache, which may not show the
//! status the previous pass wrote yet. Starting from the older status would
//! repeat work (announce a rollout twice, reset a strategy's state), so the
//! operator remembers what it wrote last ([`Written`]) and a pass starts
//! from that. Only this operator writes these statuses.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::pipeline::{Flow, StepFailed};
use super::{Context, Error};
use crate::api::Reason;
use crate::api::conditions::{self, DEGRADED, NewCondition, PROGRESSING, READY, Status};
use crate::resources::apply::FIELD_MANAGER;

/// Sets Ready, Progressing and Degraded from how the pass ended.
pub(crate) fn set_conditions(
    list: &mut Vec<Condition>,
    flow: &Result<Flow, StepFailed>,
    generation: Option<i64>,
) {
    let now = Timestamp::now();
    let mut put = |type_: &str, status: Status, reason: Reason, message: &str| {
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
                Reason::Converged,
                "everything in the spec is in place",
            );
            put(
                PROGRESSING,
                Status::False,
                Reason::Converged,
                "nothing to do",
            );
            put(DEGRADED, Status::False, Reason::Converged, "no failure");
        }
        Ok(Flow::Wait {
            reason, message, ..
        }) => {
            put(READY, Status::False, *reason, message);
            put(PROGRESSING, Status::True, *reason, message);
            put(DEGRADED, Status::False, Reason::NoFailure, "no failure");
        }
        Err(failed) => {
            let message = failed.to_string();
            put(READY, Status::False, failed.source.reason(), &message);
            put(DEGRADED, Status::True, failed.source.reason(), &message);
        }
    }
}

/// The statuses this operator wrote last, by kind, namespace and name (one
/// entry per object name, so it stays as small as the set of objects),
/// with the UID they were written for (a recreated object starts afresh).
#[derive(Debug, Default)]
pub struct Written(Mutex<HashMap<String, (String, serde_json::Value)>>);

impl Written {
    fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
        format!(
            "{}/{}/{}",
            K::kind(&()),
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    fn get<K: Resource<DynamicType = ()>>(&self, object: &K) -> Option<serde_json::Value> {
        let uid = object.uid()?;
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&Self::key(object))
            .filter(|(written_for, _)| *written_for == uid)
            .map(|(_, status)| status.clone())
    }

    fn put<K: Resource<DynamicType = ()>>(&self, object: &K, status: serde_json::Value) {
        if let Some(uid) = object.uid() {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.insert(Self::key(object), (uid, status));
        }
    }

    /// The status this operator wrote last for `object`, if any: a pass
    /// starts from it rather than from the watch cache's (see the module).
    pub fn last<K, S>(&self, object: &K) -> Option<S>
    where
        K: Resource<DynamicType = ()>,
        S: DeserializeOwned,
    {
        self.get(object)
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

/// Writes `status` through the status subresource (server-side apply, the
/// operator's field manager) when it differs from the last one written (or,
/// when none was, from the object's).
pub(crate) async fn write<K, S>(
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
    let value = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    match ctx.written.get(object) {
        Some(last) if last == value => return Ok(false),
        None if old == Some(status) => return Ok(false),
        _ => {}
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
    ctx.written.put(object, value);
    Ok(true)
}
