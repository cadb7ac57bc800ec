//! Choosing the instance the operator talks to for topology changes.
//!
//! Never a fixed pod ordinal: the leader is a ready instance, and once a
//! cluster exists, one that Cartridge knows as a member (any member can run
//! `admin_edit_topology`; Cartridge commits it on all of them). The
//! current leader is kept while it stays ready, so a converged cluster
//! makes no exec call to choose it.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::topology::{Connector, InstanceTarget, TopologyError};

/// How many ready instances are asked whether they are members before
/// giving up for this pass (each ask is an exec).
pub(crate) const MAX_CANDIDATES: usize = 5;

/// The outcome of looking for a leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leader {
    /// Talk through this pod.
    Pod(String),
    /// No ready instance at all.
    NoneReady,
    /// Instances are ready, but none answered as a member of the cluster
    /// (and the cluster was bootstrapped, so a fresh pick would split it).
    NoneAnswered(String),
}

/// Ready pods, in the order they should be tried: the Cluster's Roles in
/// their listed order, then by name.
pub(crate) fn candidates<'a>(pods: &'a [Pod], role_order: &[&str]) -> Vec<&'a Pod> {
    let mut ready: Vec<&Pod> = pods
        .iter()
        .filter(|p| super::super::members::is_ready(p))
        .collect();
    let rank = |p: &Pod| {
        let role = p
            .labels()
            .get(crate::resources::labels::ROLE)
            .cloned()
            .unwrap_or_default();
        role_order
            .iter()
            .position(|r| *r == role)
            .unwrap_or(usize::MAX)
    };
    ready.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    ready
}

/// Finds the leader: the current one while it is ready; otherwise the first
/// candidate Cartridge knows as a member; for a cluster never bootstrapped
/// and with no member anywhere, the first ready candidate.
pub(crate) async fn choose(
    current: Option<&str>,
    candidates: &[&Pod],
    bootstrapped: bool,
    connector: &dyn Connector,
    target: impl Fn(&Pod) -> InstanceTarget,
) -> Leader {
    if candidates.is_empty() {
        return Leader::NoneReady;
    }
    if let Some(current) = current
        && candidates.iter().any(|p| p.name_any() == current)
    {
        return Leader::Pod(current.to_string());
    }
    let mut last_error: Option<TopologyError> = None;
    for pod in candidates.iter().take(MAX_CANDIDATES) {
        match connector.connect(&target(pod)).replicasets().await {
            Ok(replicasets) if !replicasets.is_empty() => return Leader::Pod(pod.name_any()),
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    if bootstrapped {
        Leader::NoneAnswered(
            last_error.map_or_else(|| "no ready instance is a member".into(), |e| e.to_string()),
        )
    } else {
        Leader::Pod(candidates[0].name_any())
    }
}
