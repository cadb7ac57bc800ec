//! Maintenance windows' one act: consuming `tarantool.io/rollout-now` once
//! the rollout it asked for started (the decision is in `state::next`).

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::labels::ROLLOUT_NOW;
use crate::api::role::Role;
use crate::controller::{Context, Error};

/// Removes [`ROLLOUT_NOW`] if it still says `true`: it started one rollout
/// outside the windows, and the next waits for its window again.
pub(super) async fn consume_rollout_now(
    ctx: &Context,
    role: &Role,
    namespace: &str,
) -> Result<(), Error> {
    let roles: Api<Role> = Api::namespaced(ctx.client.clone(), namespace);
    let path = format!("/metadata/annotations/{}", ROLLOUT_NOW.replace('/', "~1"));
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": path, "value": "true"},
        {"op": "remove", "path": path},
    ]))
    .map_err(|e| Error::InvalidSpec {
        kind: "Role",
        name: role.name_any(),
        message: format!("cannot build the {ROLLOUT_NOW} removal: {e}"),
    })?;
    match roles
        .patch(
            &role.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Changed or removed meanwhile: the human's latest word stands.
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
