//! Helpers for reading a [`RoleView`]: params, budgets, pod lookups.

use crate::{PodRef, ReplicaSet, RoleView};

impl RoleView {
    /// The value of a param, if set.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A param parsed as `u32`; `default` when absent, an error when malformed.
    pub fn param_u32(&self, key: &str, default: u32) -> Result<u32, String> {
        match self.param(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("param {key}={v:?} is not a non-negative integer")),
        }
    }

    /// Every pod runs the update revision.
    pub fn all_updated(&self) -> bool {
        self.replicasets
            .iter()
            .all(|rs| rs.pods.iter().all(|p| p.updated))
    }

    /// Iterates over every pod with its [`PodRef`].
    pub fn pod_refs(&self) -> impl Iterator<Item = (PodRef, &crate::Pod)> {
        self.replicasets.iter().enumerate().flat_map(|(r, rs)| {
            rs.pods.iter().enumerate().map(move |(p, pod)| {
                (
                    PodRef {
                        replicaset: r as u32,
                        pod: p as u32,
                    },
                    pod,
                )
            })
        })
    }

    /// The Kubernetes name of a pod, if the reference is valid.
    pub fn pod_name(&self, pod: PodRef) -> Option<String> {
        let rs = self.replicasets.get(pod.replicaset as usize)?;
        let p = rs.pods.get(pod.pod as usize)?;
        Some(format!("{}-{}", rs.name, p.ordinal))
    }
}

impl ReplicaSet {
    /// Pods not serving (not ready, or terminating).
    pub fn unavailable(&self) -> u32 {
        let missing = self.desired_replicas.saturating_sub(self.pods.len() as u32);
        missing + self.pods.iter().filter(|p| !p.available()).count() as u32
    }

    /// Index of the master pod, if one is known.
    pub fn master(&self) -> Option<usize> {
        self.pods.iter().position(|p| p.master)
    }
}
