//! The host guard: every decision a strategy returns is checked here before
//! the host acts on any of it. A strategy can make an update slow; the guard
//! makes sure it cannot make it unsafe.
//!
//! A refused decision is refused whole: nothing of it is executed, the Role
//! gets a Degraded condition with [`GuardError::reason`] and the message, and
//! the update pauses until a later plan passes.
//!
//! "Unavailable" means what [`ReplicaSet::unavailable`] counts: pods not
//! ready or terminating, plus pods missing against the desired replicas.

use std::collections::HashSet;

use strategy_sdk::{Action, Decision, PodRef, ReplicaSet, RoleView};

use crate::api::Reason;

/// The longest wait a decision may ask for. The host plans again on every pod
/// event anyway; a longer wait would only hide a stuck strategy.
pub const MAX_WAIT_SECONDS: u32 = strategy_sdk::rollout::MAX_WAIT_SECONDS;

/// The shortest wait a component's decision means: a shorter one is raised
/// to this at the boundary, so that "wait 0" is not an immediate requeue (a
/// strategy answering it forever would plan in a loop, up to its CPU budget
/// each time). With the 500 ms CPU budget, waits alone let one Role's
/// strategy use at most a quarter of a core.
pub const MIN_WAIT_SECONDS: u32 = 2;

/// Why a decision was refused. Pods are named by their Kubernetes names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// An action names a pod that is not in the view.
    #[error(
        "refused: action {action} names pod #{pod} of replica set #{replicaset}, which is not \
         in the view of Role {role}"
    )]
    UnknownPod {
        /// Position of the action in the decision.
        action: usize,
        /// The Role.
        role: String,
        /// Replica set index as given.
        replicaset: u32,
        /// Pod index as given.
        pod: u32,
    },
    /// A deletion would leave a replica set with more unavailable pods than
    /// the budget.
    #[error(
        "refused to delete {pod}: replica set {replicaset} would have {unavailable} unavailable \
         pods, over its budget of {max} (maxUnavailable)"
    )]
    BudgetExceeded {
        /// The pod.
        pod: String,
        /// Its replica set.
        replicaset: String,
        /// Unavailable pods after this and the earlier deletions.
        unavailable: u32,
        /// The budget.
        max: u32,
    },
    /// A deletion of the master while another pod of its replica set serves.
    #[error(
        "refused to delete {pod}: it is the master of {replicaset} while {peer} is available; \
         switch the master first and delete the old master in a later plan"
    )]
    MasterDeletion {
        /// The master pod.
        pod: String,
        /// Its replica set.
        replicaset: String,
        /// A pod that could take over.
        peer: String,
    },
    /// A switch-master to a pod that cannot take over.
    #[error("refused to switch the master of {replicaset} to {pod}: {why}")]
    BadSwitchTarget {
        /// The target pod.
        pod: String,
        /// Its replica set.
        replicaset: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Two actions name the same pod.
    #[error("refused: {pod} is the target of more than one action in one decision")]
    DuplicateTarget {
        /// The pod.
        pod: String,
    },
    /// A deletion of a pod that is already going away.
    #[error("refused to delete {pod}: it is already terminating")]
    AlreadyTerminating {
        /// The pod.
        pod: String,
    },
    /// A wait above [`MAX_WAIT_SECONDS`].
    #[error("refused to wait {seconds} s: at most {max} s per decision")]
    WaitTooLong {
        /// Asked for.
        seconds: u32,
        /// Allowed.
        max: u32,
    },
    /// More actions than any sensible decision needs.
    #[error(
        "refused a decision of {actions} actions: at most {max} for {pods} pods in {replicasets} \
         replica sets"
    )]
    TooManyActions {
        /// Actions in the decision.
        actions: usize,
        /// The bound: pods + replica sets + 1.
        max: usize,
        /// Pods in the view.
        pods: usize,
        /// Replica sets in the view.
        replicasets: usize,
    },
    /// `done` while work is left.
    #[error("refused `done`: {why}")]
    PrematureDone {
        /// What is left.
        why: String,
    },
}

impl GuardError {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            GuardError::UnknownPod { .. } => Reason::UnknownPod,
            GuardError::BudgetExceeded { .. } => Reason::BudgetExceeded,
            GuardError::MasterDeletion { .. } => Reason::MasterDeletion,
            GuardError::BadSwitchTarget { .. } => Reason::BadSwitchTarget,
            GuardError::DuplicateTarget { .. } => Reason::DuplicateTarget,
            GuardError::AlreadyTerminating { .. } => Reason::AlreadyTerminating,
            GuardError::WaitTooLong { .. } => Reason::WaitTooLong,
            GuardError::TooManyActions { .. } => Reason::TooManyActions,
            GuardError::PrematureDone { .. } => Reason::PrematureDone,
        }
    }
}

/// Checks `decision` against `view`; `Ok` means the host may execute all of
/// it, in order.
///
/// Deletions are counted in order against each replica set's unavailable
/// pods: deleting a serving pod raises the count, deleting one that does not
/// serve leaves it. Master checks look at the view as observed: a switch in
/// the same decision does not make deleting the old master acceptable, since
/// the host must see the switch take effect first.
pub fn check(view: &RoleView, decision: &Decision) -> Result<(), GuardError> {
    let pods: usize = view.replicasets.iter().map(|rs| rs.pods.len()).sum();
    let max = pods + view.replicasets.len() + 1;
    if decision.actions.len() > max {
        return Err(GuardError::TooManyActions {
            actions: decision.actions.len(),
            max,
            pods,
            replicasets: view.replicasets.len(),
        });
    }

    let mut unavailable: Vec<u32> = view
        .replicasets
        .iter()
        .map(ReplicaSet::unavailable)
        .collect();
    let mut targeted = HashSet::new();
    let mut switched = HashSet::new();
    for (index, action) in decision.actions.iter().enumerate() {
        let target = match *action {
            Action::Wait(seconds) if seconds > MAX_WAIT_SECONDS => {
                return Err(GuardError::WaitTooLong {
                    seconds,
                    max: MAX_WAIT_SECONDS,
                });
            }
            Action::Wait(_) => continue,
            Action::DeletePod(r) | Action::SwitchMaster(r) => r,
        };
        let pod = Target::resolve(view, index, target)?;
        if !targeted.insert(target) {
            return Err(GuardError::DuplicateTarget { pod: pod.name() });
        }
        match action {
            Action::DeletePod(_) => check_delete(
                &pod,
                &mut unavailable[target.replicaset as usize],
                view.max_unavailable,
            )?,
            Action::SwitchMaster(_) => {
                let why = switch_problem(&pod, !switched.insert(target.replicaset));
                if let Some(why) = why {
                    return Err(GuardError::BadSwitchTarget {
                        pod: pod.name(),
                        replicaset: pod.rs.name.clone(),
                        why,
                    });
                }
            }
            Action::Wait(_) => {}
        }
    }

    if decision.done {
        if let Some(r) = view.pod_refs().find(|(_, p)| !p.updated).map(|(r, _)| r) {
            let name = view.pod_name(r).unwrap_or_default();
            return Err(GuardError::PrematureDone {
                why: format!("{name} still runs the old revision"),
            });
        }
        if decision
            .actions
            .iter()
            .any(|a| !matches!(a, Action::Wait(_)))
        {
            return Err(GuardError::PrematureDone {
                why: "the same decision deletes pods or switches a master".into(),
            });
        }
    }
    Ok(())
}

/// A pod an action names, resolved against the view.
struct Target<'v> {
    view: &'v RoleView,
    rs: &'v ReplicaSet,
    at: PodRef,
}

impl<'v> Target<'v> {
    fn resolve(view: &'v RoleView, action: usize, at: PodRef) -> Result<Self, GuardError> {
        view.replicasets
            .get(at.replicaset as usize)
            .filter(|rs| (at.pod as usize) < rs.pods.len())
            .map(|rs| Target { view, rs, at })
            .ok_or_else(|| GuardError::UnknownPod {
                action,
                role: view.role.clone(),
                replicaset: at.replicaset,
                pod: at.pod,
            })
    }

    fn pod(&self) -> &'v strategy_sdk::Pod {
        &self.rs.pods[self.at.pod as usize]
    }

    /// The Kubernetes name of the pod at `at` (resolved, so always known).
    fn name_of(&self, at: PodRef) -> String {
        self.view.pod_name(at).unwrap_or_default()
    }

    fn name(&self) -> String {
        self.name_of(self.at)
    }

    /// Another pod of the replica set that serves, if any.
    fn available_peer(&self) -> Option<String> {
        (0..self.rs.pods.len() as u32)
            .filter(|&pod| pod != self.at.pod && self.rs.pods[pod as usize].available())
            .map(|pod| self.name_of(PodRef { pod, ..self.at }))
            .next()
    }
}

fn check_delete(pod: &Target<'_>, unavailable: &mut u32, max: u32) -> Result<(), GuardError> {
    let p = pod.pod();
    if p.terminating {
        return Err(GuardError::AlreadyTerminating { pod: pod.name() });
    }
    if p.master
        && let Some(peer) = pod.available_peer()
    {
        return Err(GuardError::MasterDeletion {
            pod: pod.name(),
            replicaset: pod.rs.name.clone(),
            peer,
        });
    }
    if p.available() {
        *unavailable += 1;
        if *unavailable > max {
            return Err(GuardError::BudgetExceeded {
                pod: pod.name(),
                replicaset: pod.rs.name.clone(),
                unavailable: *unavailable,
                max,
            });
        }
    }
    Ok(())
}

/// What makes `pod` unfit to become master, if anything.
fn switch_problem(pod: &Target<'_>, second_switch: bool) -> Option<&'static str> {
    let p = pod.pod();
    if second_switch {
        Some("the decision already switches the master of this replica set")
    } else if p.master {
        Some("it is already the master")
    } else if !p.available() {
        Some("it is not available (not ready or terminating)")
    } else if !p.healthy {
        Some("it is not healthy")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(replicaset: u32, pod: u32) -> PodRef {
        PodRef { replicaset, pod }
    }

    fn decision(actions: Vec<Action>) -> Decision {
        Decision {
            actions,
            ..Decision::default()
        }
    }

    fn refused(view: &RoleView, actions: Vec<Action>) -> GuardError {
        match check(view, &decision(actions)) {
            Err(e) => e,
            Ok(()) => panic!("decision passed the guard"),
        }
    }

    #[test]
    fn a_sound_decision_passes() {
        let view = RoleView::sample(2, 3);
        let d = decision(vec![
            Action::DeletePod(at(0, 2)),
            Action::DeletePod(at(1, 1)),
            Action::Wait(10),
        ]);
        assert_eq!(check(&view, &d), Ok(()));
    }

    #[test]
    fn unknown_pods_are_refused() {
        let view = RoleView::sample(2, 3);
        for bad in [at(2, 0), at(0, 3)] {
            let e = refused(&view, vec![Action::Wait(1), Action::DeletePod(bad)]);
            assert_eq!(e.reason(), Reason::UnknownPod);
            assert!(e.to_string().contains("action 1"), "{e}");
        }
        let e = refused(&view, vec![Action::SwitchMaster(at(7, 7))]);
        assert!(matches!(e, GuardError::UnknownPod { replicaset: 7, .. }));
    }

    #[test]
    fn deletions_count_against_the_budget_in_order() {
        let mut view = RoleView::sample(1, 4);
        let e = refused(
            &view,
            vec![Action::DeletePod(at(0, 3)), Action::DeletePod(at(0, 2))],
        );
        assert_eq!(
            e,
            GuardError::BudgetExceeded {
                pod: "r-0-2".into(),
                replicaset: "r-0".into(),
                unavailable: 2,
                max: 1
            }
        );
        assert!(e.to_string().contains("refused to delete r-0-2"), "{e}");
        // A pod that is not ready already counts; deleting it costs nothing,
        // but it leaves no room for a serving one.
        view.pod_mut(0, 1).ready = false;
        assert_eq!(
            check(&view, &decision(vec![Action::DeletePod(at(0, 1))])),
            Ok(())
        );
        let e = refused(
            &view,
            vec![Action::DeletePod(at(0, 1)), Action::DeletePod(at(0, 2))],
        );
        assert_eq!(e.reason(), Reason::BudgetExceeded);
        // Missing pods count too.
        let mut view = RoleView::sample(1, 3);
        view.replicasets[0].desired_replicas = 4;
        let e = refused(&view, vec![Action::DeletePod(at(0, 2))]);
        assert_eq!(e.reason(), Reason::BudgetExceeded);
        // Budgets are per replica set.
        let view = RoleView::sample(2, 2);
        let d = decision(vec![
            Action::DeletePod(at(0, 1)),
            Action::DeletePod(at(1, 1)),
        ]);
        assert_eq!(check(&view, &d), Ok(()));
    }

    #[test]
    fn the_master_goes_only_when_no_peer_serves() {
        let mut view = RoleView::sample(1, 2);
        let e = refused(&view, vec![Action::DeletePod(at(0, 0))]);
        assert_eq!(
            e,
            GuardError::MasterDeletion {
                pod: "r-0-0".into(),
                replicaset: "r-0".into(),
                peer: "r-0-1".into()
            }
        );
        // A switch in the same decision does not make it acceptable.
        view.pod_mut(0, 1).updated = true;
        let e = refused(
            &view,
            vec![Action::SwitchMaster(at(0, 1)), Action::DeletePod(at(0, 0))],
        );
        assert_eq!(e.reason(), Reason::MasterDeletion);
        // With no serving peer the master may go (a one-pod replica set).
        view.pod_mut(0, 1).ready = false;
        view.max_unavailable = 2;
        assert_eq!(
            check(&view, &decision(vec![Action::DeletePod(at(0, 0))])),
            Ok(())
        );
        let single = RoleView::sample(1, 1);
        assert_eq!(
            check(&single, &decision(vec![Action::DeletePod(at(0, 0))])),
            Ok(())
        );
    }

    #[test]
    fn switch_targets_must_be_able_to_lead() {
        let mut view = RoleView::sample(1, 4);
        view.pod_mut(0, 1).ready = false;
        view.pod_mut(0, 2).healthy = false;
        for (target, why) in [
            (0, "already the master"),
            (1, "not available"),
            (2, "not healthy"),
        ] {
            let e = refused(&view, vec![Action::SwitchMaster(at(0, target))]);
            assert_eq!(e.reason(), Reason::BadSwitchTarget);
            assert!(e.to_string().contains(why), "{e}");
        }
        view.pod_mut(0, 1).ready = true;
        view.pod_mut(0, 1).terminating = true;
        let e = refused(&view, vec![Action::SwitchMaster(at(0, 1))]);
        assert!(e.to_string().contains("not available"), "{e}");
        assert_eq!(
            check(&view, &decision(vec![Action::SwitchMaster(at(0, 3))])),
            Ok(())
        );
    }

    #[test]
    fn one_switch_per_replica_set() {
        let view = RoleView::sample(2, 3);
        let e = refused(
            &view,
            vec![
                Action::SwitchMaster(at(0, 1)),
                Action::SwitchMaster(at(0, 2)),
            ],
        );
        assert!(e.to_string().contains("already switches"), "{e}");
        let d = decision(vec![
            Action::SwitchMaster(at(0, 1)),
            Action::SwitchMaster(at(1, 2)),
        ]);
        assert_eq!(check(&view, &d), Ok(()));
    }

    #[test]
    fn a_pod_is_targeted_once() {
        let mut view = RoleView::sample(1, 3);
        view.max_unavailable = 3;
        let e = refused(
            &view,
            vec![Action::DeletePod(at(0, 2)), Action::DeletePod(at(0, 2))],
        );
        assert_eq!(
            e,
            GuardError::DuplicateTarget {
                pod: "r-0-2".into()
            }
        );
        let e = refused(
            &view,
            vec![Action::SwitchMaster(at(0, 2)), Action::DeletePod(at(0, 2))],
        );
        assert_eq!(e.reason(), Reason::DuplicateTarget);
    }

    #[test]
    fn terminating_pods_are_not_deleted_again() {
        let mut view = RoleView::sample(1, 3);
        view.pod_mut(0, 2).terminating = true;
        let e = refused(&view, vec![Action::DeletePod(at(0, 2))]);
        assert_eq!(
            e,
            GuardError::AlreadyTerminating {
                pod: "r-0-2".into()
            }
        );
    }

    #[test]
    fn waits_are_bounded() {
        let view = RoleView::sample(1, 1);
        let d = decision(vec![Action::Wait(MAX_WAIT_SECONDS)]);
        assert_eq!(check(&view, &d), Ok(()));
        let e = refused(&view, vec![Action::Wait(MAX_WAIT_SECONDS + 1)]);
        assert_eq!(e.reason(), Reason::WaitTooLong);
        assert!(e.to_string().contains("3601"), "{e}");
    }

    #[test]
    fn action_count_is_bounded() {
        let view = RoleView::sample(2, 2);
        // 4 pods + 2 replica sets + 1 = 7.
        assert_eq!(check(&view, &decision(vec![Action::Wait(1); 7])), Ok(()));
        let e = refused(&view, vec![Action::Wait(1); 8]);
        assert_eq!(
            e,
            GuardError::TooManyActions {
                actions: 8,
                max: 7,
                pods: 4,
                replicasets: 2
            }
        );
    }

    #[test]
    fn done_only_when_nothing_is_left() {
        let mut view = RoleView::sample(1, 2);
        let done = |actions| Decision {
            actions,
            done: true,
            ..Decision::default()
        };
        let e = check(&view, &done(vec![])).unwrap_err();
        assert_eq!(e.reason(), Reason::PrematureDone);
        assert!(
            e.to_string().contains("r-0-0 still runs the old revision"),
            "{e}"
        );
        view.pod_mut(0, 0).updated = true;
        view.pod_mut(0, 1).updated = true;
        assert_eq!(check(&view, &done(vec![Action::Wait(5)])), Ok(()));
        let e = check(&view, &done(vec![Action::SwitchMaster(at(0, 1))])).unwrap_err();
        assert_eq!(e.reason(), Reason::PrematureDone);
    }
}
