//! Unit tests of the strategy on views built by hand.

use super::*;
use strategy_sdk::PodRef;

fn update_replicaset(view: &mut RoleView, r: usize) {
    for p in &mut view.replicasets[r].pods {
        p.updated = true;
    }
}

#[test]
fn canary_first_then_soak_then_the_rest() {
    let mut view = RoleView::sample(3, 2);
    view.set_param(CANARY_WAIT_SECONDS, "600");
    let d = Canary::plan(&view).unwrap();
    assert_eq!(
        d.actions[0],
        Action::DeletePod(PodRef {
            replicaset: 0,
            pod: 1
        })
    );
    assert!(
        d.actions
            .iter()
            .all(|a| !matches!(a, Action::DeletePod(r) if r.replicaset != 0))
    );

    update_replicaset(&mut view, 0);
    let d = Canary::plan(&view).unwrap();
    assert_eq!(d.actions, vec![Action::Wait(600)]);
    let since = view.now_unix;
    assert_eq!(d.state, Some(format!("{SOAKING_SINCE}{since}")));

    view.state = d.state;
    view.now_unix += 599;
    assert_eq!(Canary::plan(&view).unwrap().actions, vec![Action::Wait(1)]);

    view.now_unix += 1;
    let d = Canary::plan(&view).unwrap();
    let replicasets: Vec<u32> = strategy_sdk::rollout::deletions(&d.actions)
        .iter()
        .map(|r| r.replicaset)
        .collect();
    assert_eq!(replicasets, vec![1, 2]);
    assert_eq!(d.state.as_deref(), Some("rest"));

    view.state = d.state;
    update_replicaset(&mut view, 1);
    update_replicaset(&mut view, 2);
    let d = Canary::plan(&view).unwrap();
    assert!(d.done && d.actions.is_empty() && d.state.is_none());
}

#[test]
fn an_unhealthy_canary_holds_the_rollout() {
    let mut view = RoleView::sample(2, 2);
    update_replicaset(&mut view, 0);
    view.pod_mut(0, 1).healthy = false;
    view.state = Phase::Soaking(view.now_unix - 10_000).state();
    let d = Canary::plan(&view).unwrap();
    assert_eq!(d.actions, vec![Action::Wait(POLL_SECONDS)]);
    assert_eq!(d.state, Phase::Soaking(view.now_unix).state());
}

#[test]
fn long_soaks_are_split_into_allowed_waits() {
    let mut view = RoleView::sample(2, 1);
    view.set_param(CANARY_WAIT_SECONDS, "86400");
    update_replicaset(&mut view, 0);
    let d = Canary::plan(&view).unwrap();
    assert_eq!(d.actions, vec![Action::Wait(MAX_WAIT_SECONDS)]);
}

#[test]
fn a_garbled_state_starts_over_safely() {
    let mut view = RoleView::sample(2, 1);
    view.state = Some("soaking-since=yesterday".into());
    let d = Canary::plan(&view).unwrap();
    assert!(matches!(d.actions[0], Action::DeletePod(r) if r.replicaset == 0));
}
