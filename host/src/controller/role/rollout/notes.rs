//! The notes of the Events a rollout emits. `tarantool-operator timeline`
//! reads them back, so their format is a contract.

/// Note of a `PodDeleted` Event.
pub fn pod_deleted(pod: &str, replicaset: &str, from: &str, to: &str) -> String {
    format!("deleted pod {pod} of replica set {replicaset} (revision {from} -> {to})")
}

/// Note of a `MasterSwitched` Event.
pub fn master_switched(replicaset: &str, old: &str, new: &str) -> String {
    format!("replica set {replicaset}: master {old} -> {new}")
}
