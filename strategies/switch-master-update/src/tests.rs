//! Unit tests of the strategy on views built by hand.

use super::*;
use strategy_sdk::{Action, PodRef};

fn at(replicaset: u32, pod: u32) -> PodRef {
    PodRef { replicaset, pod }
}

#[test]
fn replica_sets_roll_in_parallel() {
    let view = RoleView::sample(3, 3);
    let d = SwitchMasterUpdate::plan(&view).unwrap();
    let deleted = strategy_sdk::rollout::deletions(&d.actions);
    assert_eq!(deleted, vec![at(0, 2), at(1, 2), at(2, 2)]);
    assert!(!d.done);
}

#[test]
fn switches_before_deleting_the_master() {
    let mut view = RoleView::sample(1, 2);
    view.pod_mut(0, 1).updated = true;
    let d = SwitchMasterUpdate::plan(&view).unwrap();
    assert_eq!(d.actions[0], Action::SwitchMaster(at(0, 1)));
    assert!(
        d.message.contains("switching master to r-0-1"),
        "{}",
        d.message
    );
}

#[test]
fn done_when_every_pod_is_updated_and_ready() {
    let mut view = RoleView::sample(2, 2);
    for r in 0..2 {
        for p in 0..2 {
            view.pod_mut(r, p).updated = true;
        }
    }
    view.pod_mut(1, 1).ready = false;
    assert!(!SwitchMasterUpdate::plan(&view).unwrap().done);
    view.pod_mut(1, 1).ready = true;
    let d = SwitchMasterUpdate::plan(&view).unwrap();
    assert!(d.done && d.actions.is_empty());
}
