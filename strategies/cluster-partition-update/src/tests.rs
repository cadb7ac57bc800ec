//! Unit tests of the strategy on views built by hand.

use super::*;
use strategy_sdk::PodRef;

fn deleted(d: &Decision) -> Vec<PodRef> {
    strategy_sdk::rollout::deletions(&d.actions)
}

#[test]
fn one_pod_of_the_role_at_a_time_by_default() {
    let view = RoleView::sample(4, 1);
    let d = ClusterPartitionUpdate::plan(&view).unwrap();
    assert_eq!(
        deleted(&d),
        vec![PodRef {
            replicaset: 0,
            pod: 0
        }]
    );
}

#[test]
fn batch_spans_replica_sets() {
    let mut view = RoleView::sample(4, 1);
    view.set_param(BATCH_SIZE, "3");
    assert_eq!(
        deleted(&ClusterPartitionUpdate::plan(&view).unwrap()).len(),
        3
    );
    // A pod already down anywhere in the role takes a slot.
    view.pod_mut(3, 0).updated = true;
    view.pod_mut(3, 0).ready = false;
    let d = ClusterPartitionUpdate::plan(&view).unwrap();
    assert_eq!(deleted(&d).len(), 2);
    view.set_param(BATCH_SIZE, "1");
    let d = ClusterPartitionUpdate::plan(&view).unwrap();
    assert!(deleted(&d).is_empty());
    assert!(
        d.message.contains("r-0 (the role-wide batch is full)"),
        "{}",
        d.message
    );
}

#[test]
fn not_ready_pods_are_free() {
    let mut view = RoleView::sample(3, 1);
    view.pod_mut(2, 0).ready = false;
    let d = ClusterPartitionUpdate::plan(&view).unwrap();
    // The not-ready pod fills the batch of one, but deleting it is free.
    assert_eq!(
        deleted(&d),
        vec![PodRef {
            replicaset: 2,
            pod: 0
        }]
    );
}

#[test]
fn bad_batch_size_is_an_error() {
    let mut view = RoleView::sample(1, 1);
    for bad in ["0", "-1", "many"] {
        view.set_param(BATCH_SIZE, bad);
        assert!(ClusterPartitionUpdate::plan(&view).is_err(), "{bad}");
    }
}
