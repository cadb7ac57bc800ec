//! What a Cluster pass decides on, read once: the Roles its spec lists (in
//! the spec's order) and the cluster's pods.
//!
//! Both come from the stores the controllers keep when they are up: the
//! Roles from the watch that wakes the Cluster on a Role's change (so a pass
//! woken by a Role's status sees that status), the pods from the Role
//! controller's pod store. Before the stores hold a first listing, the pass
//! lists instead. A store may lag behind this operator's own writes; the
//! one write made on what it read, adopting a Role, reads the Role afresh
//! first (see `steps::setup_roles_ownership`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::ClusterPass;
use crate::api::role::Role;
use crate::controller::{Context, Error};
use crate::resources::labels;

/// The Cluster's Roles and pods as one pass sees them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// The Roles the spec lists that exist, in the spec's order.
    pub roles: Vec<Role>,
    /// Every pod of the cluster.
    pub pods: Vec<Pod>,
}

impl Snapshot {
    /// This snapshot with `roles` in place of its Roles (after adoption).
    pub(crate) fn with_roles(&self, roles: Vec<Role>) -> Self {
        Self {
            roles,
            pods: self.pods.clone(),
        }
    }
}

/// Reads the Cluster's Roles and pods, once for the pass.
pub(crate) async fn observe(ctx: &Context, pass: &ClusterPass) -> Result<Arc<Snapshot>, Error> {
    let names: Vec<&str> = pass.cluster.spec.role_names().collect();
    let snapshot = match ctx.cache().filter(|c| c.ready()) {
        Some(cache) => Snapshot {
            roles: names
                .iter()
                .filter_map(|name| cache.role(&pass.namespace, name))
                .collect(),
            pods: cache.cluster_pods(&pass.namespace, &pass.name),
        },
        None => {
            let listed = Api::<Role>::namespaced(ctx.client.clone(), &pass.namespace)
                .list(&ListParams::default())
                .await?
                .items;
            let pods = Api::<Pod>::namespaced(ctx.client.clone(), &pass.namespace)
                .list(&ListParams::default().labels(&labels::cluster_selector(&pass.name)))
                .await?
                .items;
            Snapshot {
                roles: in_spec_order(&names, listed),
                pods,
            }
        }
    };
    Ok(Arc::new(snapshot))
}

/// The Roles named in `names` that `listed` has, in the order of `names`.
fn in_spec_order(names: &[&str], listed: Vec<Role>) -> Vec<Role> {
    names
        .iter()
        .filter_map(|name| listed.iter().find(|r| r.name_any() == *name).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing;

    #[test]
    fn roles_follow_the_spec_and_only_the_spec() {
        let role = |name: &str| {
            let mut r = testing::role(testing::STORAGE);
            r.metadata.name = Some(name.into());
            r
        };
        let listed = vec![role("storage"), role("other"), role("router")];
        let names: Vec<String> = in_spec_order(&["router", "storage", "missing"], listed)
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        assert_eq!(names, ["router", "storage"]);
    }
}
