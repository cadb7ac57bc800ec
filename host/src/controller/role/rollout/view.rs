//! The strategy's view of a Role, built from its StatefulSets, pods and
//! what Cartridge reports, and the way back from the view's indices to pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use strategy_sdk::{Pod as ViewPod, PodRef, ReplicaSet, RoleView};

use crate::controller::members;
use crate::resources::{names, statefulset};
use crate::topology::ReplicasetInfo;

/// The label the StatefulSet controller puts on each pod: its revision.
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

/// A pod of the view, as the host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodTarget {
    /// The pod's name.
    pub name: String,
    /// Its UID, when the pod exists (deletes are preconditioned on it).
    pub uid: Option<String>,
    /// Its replica set (StatefulSet) name.
    pub replicaset: String,
    /// The revision it runs.
    pub revision: Option<String>,
}

/// A view of the Role for the strategy, with its pods by index.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// What the strategy sees.
    pub view: RoleView,
    /// `targets[replica set][pod]`.
    pub targets: Vec<Vec<PodTarget>>,
    /// Each replica set's StatefulSet update revision.
    pub update_revisions: Vec<Option<String>>,
    /// The replica sets whose StatefulSet controller has not seen their
    /// current template yet (`status.observedGeneration` below
    /// `metadata.generation`): a pod deleted now could come back from the
    /// template it still has cached, the old one, and be deleted again.
    pub unobserved: Vec<String>,
    /// Pods not known to run their StatefulSet's template revision (those
    /// missing included: they are on their way back).
    pub outdated: usize,
    /// Pods that exist and run another template: what a rollout is for.
    /// Missing pods are not: the StatefulSet controller creates them from
    /// the current template.
    pub stale: usize,
    /// Pods of the Role.
    pub total: usize,
}

impl Built {
    /// The pod behind an index.
    pub(crate) fn target(&self, at: PodRef) -> Option<&PodTarget> {
        self.targets
            .get(at.replicaset as usize)
            .and_then(|rs| rs.get(at.pod as usize))
    }

    /// Whether every replica set that still has pods to update has a pod
    /// Kubernetes shows unavailable (not ready, going, or missing). The
    /// rollout then waits for pods whose events wake the Role anyway, so a
    /// pass need not come back every poll to ask Cartridge again (at a
    /// thousand pods those polls were most of the console calls).
    pub(crate) fn waits_on_pods(&self) -> bool {
        let mut outdated = self
            .view
            .replicasets
            .iter()
            .filter(|rs| rs.pods.iter().any(|p| !p.updated))
            .peekable();
        outdated.peek().is_some()
            && outdated.all(|rs| rs.pods.iter().any(|p| !p.ready || p.terminating))
    }

    /// The replica set's update revision.
    pub(crate) fn update_revision(&self, at: PodRef) -> Option<&str> {
        self.update_revisions
            .get(at.replicaset as usize)
            .and_then(|r| r.as_deref())
    }
}

/// Inputs of [`build`].
pub(crate) struct Inputs<'a> {
    /// The Role's name.
    pub role: &'a str,
    /// The StatefulSet names of the Role, ordinal order.
    pub statefulsets: &'a [String],
    /// The Role's StatefulSets as observed.
    pub observed: &'a [StatefulSet],
    /// The Role's pods.
    pub pods: &'a [Pod],
    /// Replicas per replica set.
    pub replicas: u32,
    /// What Cartridge reports about the Role's replica sets (`None` before
    /// the bootstrap: then nothing is master and nothing holds data).
    pub topology: Option<&'a [ReplicasetInfo]>,
    /// The strategy's params.
    pub params: &'a BTreeMap<String, String>,
    /// The host's per-replica-set budget.
    pub max_unavailable: u32,
    /// Now.
    pub now: Timestamp,
    /// The strategy's state from its previous plan in this rollout.
    pub state: Option<String>,
}

/// Builds the view.
pub(crate) fn build(inputs: &Inputs<'_>) -> Built {
    let mut replicasets = Vec::new();
    let mut targets = Vec::new();
    let mut update_revisions = Vec::new();
    let mut unobserved = Vec::new();
    let (mut outdated, mut stale, mut total) = (0, 0, 0);
    for sts_name in inputs.statefulsets {
        let sts = inputs.observed.iter().find(|s| &s.name_any() == sts_name);
        // For Events only: what the StatefulSet controller calls the
        // revisions (unknown until it has seen the current template).
        // Whether a pod is updated is the operator's own template revision.
        let update_revision = sts
            .filter(|s| {
                s.status.as_ref().and_then(|st| st.observed_generation) >= s.metadata.generation
            })
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.update_revision.clone());
        // A StatefulSet the controller has not reported on at all (no
        // status) has no pods to delete yet; one it reported on at an older
        // generation has not seen the template the operator applied.
        if sts.is_some_and(|s| {
            s.status
                .as_ref()
                .and_then(|st| st.observed_generation)
                .is_some_and(|observed| Some(observed) < s.metadata.generation)
        }) {
            unobserved.push(sts_name.clone());
        }
        let template_revision = sts.and_then(statefulset::template_revision);
        let info = inputs
            .topology
            .and_then(|t| t.iter().find(|r| &r.alias == sts_name));
        let mut view_pods = Vec::new();
        let mut rs_targets = Vec::new();
        for ordinal in 0..inputs.replicas {
            let name = names::pod_name(sts_name, ordinal);
            let pod = inputs.pods.iter().find(|p| p.name_any() == name);
            let revision = pod.and_then(|p| p.labels().get(REVISION_LABEL).cloned());
            let server = info.and_then(|i| i.server_by_alias(&name));
            let updated = pod.and_then(statefulset::pod_revision).is_some()
                && pod.and_then(statefulset::pod_revision) == template_revision;
            total += 1;
            if !updated {
                outdated += 1;
                if pod.is_some() {
                    stale += 1;
                }
            }
            view_pods.push(ViewPod {
                ordinal,
                updated,
                ready: pod.is_some_and(members::is_ready),
                // A missing pod is on its way back: unavailable, and not a
                // target.
                terminating: pod.is_none_or(|p| p.metadata.deletion_timestamp.is_some()),
                master: info.and_then(|i| i.master_alias()) == Some(name.as_str()),
                healthy: server.is_some_and(|s| s.healthy && s.replicating)
                    || (inputs.topology.is_none() && pod.is_some_and(members::is_ready)),
                restarts: pod.map_or(0, restarts),
                age_seconds: pod.map_or(0, |p| age_seconds(p, inputs.now)),
                lag_millis: server
                    .and_then(|s| s.replication_lag)
                    .map_or(0, |lag| (lag * 1000.0).clamp(0.0, u32::MAX as f64) as u32),
            });
            rs_targets.push(PodTarget {
                name,
                uid: pod.and_then(|p| p.metadata.uid.clone()),
                replicaset: sts_name.clone(),
                revision,
            });
        }
        let weight = info.and_then(|i| i.weight).unwrap_or(0.0);
        replicasets.push(ReplicaSet {
            name: sts_name.clone(),
            weight,
            holds_data: info.is_some_and(|i| i.bucket_count().unwrap_or(0) > 0 || weight > 0.0),
            desired_replicas: inputs.replicas,
            pods: view_pods,
        });
        targets.push(rs_targets);
        update_revisions.push(update_revision);
    }
    Built {
        view: RoleView {
            role: inputs.role.to_string(),
            params: inputs
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            max_unavailable: inputs.max_unavailable,
            replicasets,
            now_unix: u64::try_from(inputs.now.as_second()).unwrap_or(0),
            state: inputs.state.clone(),
        },
        targets,
        update_revisions,
        unobserved,
        outdated,
        stale,
        total,
    }
}

fn restarts(pod: &Pod) -> u32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| {
            c.iter()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum()
        })
}

fn age_seconds(pod: &Pod, now: Timestamp) -> u32 {
    pod.metadata.creation_timestamp.as_ref().map_or(0, |t| {
        u32::try_from(now.as_second() - t.0.as_second()).unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod: `u` updated, `r` ready, `t` terminating (or missing).
    fn pod(spec: &str) -> strategy_sdk::Pod {
        strategy_sdk::Pod {
            updated: spec.contains('u'),
            ready: spec.contains('r'),
            terminating: spec.contains('t'),
            ..strategy_sdk::Pod::default()
        }
    }

    fn built(replicasets: &[&[&str]]) -> Built {
        Built {
            view: RoleView {
                replicasets: replicasets
                    .iter()
                    .map(|pods| strategy_sdk::ReplicaSet {
                        pods: pods.iter().map(|p| pod(p)).collect(),
                        ..strategy_sdk::ReplicaSet::default()
                    })
                    .collect(),
                ..RoleView::default()
            },
            targets: vec![],
            update_revisions: vec![],
            unobserved: vec![],
            outdated: 0,
            stale: 0,
            total: 0,
        }
    }

    #[test]
    fn a_rollout_waits_on_pods_when_every_replica_set_left_has_one_down() {
        // (what, replica sets, waits on pods)
        let cases: &[(&str, &[&[&str]], bool)] = &[
            ("nothing left to update", &[&["ur", "ur"]], false),
            ("an outdated set, all up", &[&["r", "ur"]], false),
            ("its replica restarting", &[&["r", "u"]], true),
            ("its replica going", &[&["r", "rt"]], true),
            ("its replica missing", &[&["r", "t"]], true),
            (
                "one set down, another all up",
                &[&["r", "u"], &["r", "r"]],
                false,
            ),
            (
                "every set left has one down",
                &[&["r", "u"], &["ur", "ur"], &["t", "r"]],
                true,
            ),
            ("an outdated pod itself down", &[&["", "ur"]], true),
        ];
        for (what, sets, want) in cases {
            assert_eq!(built(sets).waits_on_pods(), *want, "{what}");
        }
    }
}
