//! A master-aware, budgeted rollout of one replica set, and the decision that
//! sums several of them up. The built-in strategies and the example canary are
//! all made of these pieces; a custom strategy can reuse them the same way.
//!
//! The rules, per replica set:
//! - Outdated non-master pods go first. Those that do not serve anyway (not
//!   ready, or ready but unhealthy) go before serving ones: deleting a pod that
//!   is not ready costs no availability.
//! - A deletion of a serving pod must fit the budget: the host's
//!   `max-unavailable` for the replica set and, for role-wide strategies, the
//!   number of slots left across the role.
//! - Updated pods that are back but not yet healthy still count against the
//!   budget: the next pod waits until replication has caught up.
//! - When every other pod is updated, serving and healthy and the master is
//!   outdated, the master moves to the replica with the lowest lag. The old
//!   master is deleted only by a later plan, once the view shows the switch.
//! - A replica set whose only pod is the master just deletes it.

use crate::{Action, Decision, Pod, PodRef, ReplicaSet, RoleView};

/// Seconds a strategy asks the host to wait before planning again while pods
/// restart. The host also plans again on any pod event, so this only bounds
/// how stale a decision can get.
pub const POLL_SECONDS: u32 = 10;

/// The longest single wait the host accepts; longer pauses are split.
pub const MAX_WAIT_SECONDS: u32 = 3600;

/// Pods of a replica set that do not count as serving for budgeting: missing,
/// not ready, terminating, or updated and ready but not yet healthy.
///
/// It is never lower than [`ReplicaSet::unavailable`], the count the host's
/// guard uses, so a deletion that fits here also fits the guard.
pub fn busy(rs: &ReplicaSet) -> u32 {
    rs.unavailable() + rs.pods.iter().filter(|p| settling(p)).count() as u32
}

/// Back on the new revision and serving, but replication has not caught up.
fn settling(p: &Pod) -> bool {
    p.updated && p.available() && !p.healthy
}

/// Every pod updated, serving and healthy, and none missing.
pub fn replicaset_done(rs: &ReplicaSet) -> bool {
    rs.pods.iter().all(|p| p.updated) && busy(rs) == 0
}

/// Where one replica set stands after [`plan_replicaset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every pod updated, serving and healthy.
    Done,
    /// Actions were planned for it.
    Acting,
    /// Nothing to do until pods come back; the text says what it waits for.
    Waiting(String),
}

/// The plan for one replica set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSetPlan {
    /// Index of the replica set in the view.
    pub replicaset: u32,
    /// Deletions and at most one master switch, in order.
    pub actions: Vec<Action>,
    /// Where the replica set stands.
    pub progress: Progress,
}

/// Plans the next actions for replica set `r` of `view`.
///
/// `slots` is how many more serving pods may be taken down across the whole
/// role; each planned deletion of a serving pod takes one. Strategies that
/// budget per replica set only pass `&mut u32::MAX`.
///
/// An index out of range yields an empty plan marked done: there is nothing
/// to roll.
pub fn plan_replicaset(view: &RoleView, r: usize, slots: &mut u32) -> ReplicaSetPlan {
    let replicaset = r as u32;
    let Some(rs) = view.replicasets.get(r) else {
        return ReplicaSetPlan {
            replicaset,
            actions: Vec::new(),
            progress: Progress::Done,
        };
    };
    if replicaset_done(rs) {
        return ReplicaSetPlan {
            replicaset,
            actions: Vec::new(),
            progress: Progress::Done,
        };
    }
    let pod_ref = |p: usize| PodRef {
        replicaset,
        pod: p as u32,
    };
    let max = view.max_unavailable;
    let mut busy = busy(rs);
    let mut actions = Vec::new();
    let mut waiting = None;

    // Take down a serving pod only if both budgets allow; a pod that does not
    // serve is free to delete.
    let mut may_delete = |pod: &Pod, busy: &mut u32| -> bool {
        if !pod.available() {
            return true;
        }
        if *busy < max && *slots > 0 {
            *busy += 1;
            *slots -= 1;
            return true;
        }
        false
    };

    let master = rs.master();
    // Pods flagged master never go in this first pass, not even a second one
    // in a view caught mid-failover: the guard would refuse the decision.
    let mut outdated: Vec<usize> = (0..rs.pods.len())
        .filter(|&i| {
            let p = &rs.pods[i];
            !p.master && !p.updated && !p.terminating
        })
        .collect();
    // Not ready first, then unhealthy, then by descending ordinal (the order
    // a StatefulSet itself rolls in).
    outdated.sort_by_key(|&i| {
        let p = &rs.pods[i];
        (p.available(), p.healthy, std::cmp::Reverse(p.ordinal))
    });
    for &i in &outdated {
        if may_delete(&rs.pods[i], &mut busy) {
            actions.push(Action::DeletePod(pod_ref(i)));
        } else {
            waiting = Some(no_room(busy, max));
            break;
        }
    }

    let others_pending = rs
        .pods
        .iter()
        .enumerate()
        .any(|(i, p)| Some(i) != master && !p.updated);
    if let Some(m) = master.filter(|&m| !rs.pods[m].updated && !rs.pods[m].terminating) {
        let mut others = rs.pods.iter().enumerate().filter(|&(i, _)| i != m);
        if others_pending {
            // The master goes last; the deletions above are under way.
        } else if rs.pods.len() == 1 {
            if may_delete(&rs.pods[m], &mut busy) {
                actions.push(Action::DeletePod(pod_ref(m)));
            } else {
                waiting = Some(no_room(busy, max));
            }
        } else if others.all(|(_, p)| p.available() && p.healthy) {
            // Leadership moves only to a fully caught-up replica set: a switch
            // while replicas restart would leave fewer places to fail over to.
            match switch_target(rs, m) {
                Some(t) => actions.push(Action::SwitchMaster(pod_ref(t))),
                None => waiting = Some("no updated healthy replica can take over the master"),
            }
        } else {
            waiting = Some(
                "waiting for the updated replicas to be ready and healthy before switching the master",
            );
        }
    }

    let progress = if !actions.is_empty() {
        Progress::Acting
    } else {
        Progress::Waiting(
            waiting
                .unwrap_or("waiting for restarted pods to become ready and healthy")
                .to_string(),
        )
    };
    ReplicaSetPlan {
        replicaset,
        actions,
        progress,
    }
}

/// Why a serving pod may not go now: its replica set's budget, or else the
/// role-wide slots.
fn no_room(busy: u32, max: u32) -> &'static str {
    if busy >= max {
        "budget: waiting for restarted pods to become ready and healthy"
    } else {
        "the role-wide batch is full"
    }
}

/// Plans every replica set in view order, sharing `slots` serving pods that
/// may go down across the role (`u32::MAX` for no role-wide limit).
pub fn plan_every(view: &RoleView, mut slots: u32) -> Vec<ReplicaSetPlan> {
    (0..view.replicasets.len())
        .map(|r| plan_replicaset(view, r, &mut slots))
        .collect()
}

/// The replica that should take over from master `m`: updated, serving,
/// healthy, with the lowest lag (then the lowest ordinal, to be predictable).
pub fn switch_target(rs: &ReplicaSet, m: usize) -> Option<usize> {
    rs.pods
        .iter()
        .enumerate()
        .filter(|&(i, p)| i != m && !p.master && p.updated && p.available() && p.healthy)
        .min_by_key(|(_, p)| (p.lag_millis, p.ordinal))
        .map(|(i, _)| i)
}

/// Counts for a progress message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Pods in the view.
    pub pods: u32,
    /// Pods on the update revision.
    pub updated: u32,
    /// Replica sets in the view.
    pub replicasets: u32,
    /// Replica sets done (see [`replicaset_done`]).
    pub replicasets_done: u32,
}

impl Tally {
    /// Counts `view`.
    pub fn of(view: &RoleView) -> Self {
        let mut t = Tally::default();
        for rs in &view.replicasets {
            t.replicasets += 1;
            t.replicasets_done += replicaset_done(rs) as u32;
            t.pods += rs.pods.len() as u32;
            t.updated += rs.pods.iter().filter(|p| p.updated).count() as u32;
        }
        t
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} pods updated, {}/{} replica sets done",
            self.updated, self.pods, self.replicasets_done, self.replicasets
        )
    }
}

/// Sums replica-set plans up into one decision: their actions in order, a
/// wait of [`POLL_SECONDS`] while anything is left, a message naming what is
/// deleted, switched and awaited, and `done` once every replica set is done.
///
/// `prefix` opens the message (for example the phase of a canary).
pub fn decide(view: &RoleView, prefix: &str, plans: &[ReplicaSetPlan]) -> Decision {
    let tally = Tally::of(view);
    let done = tally.replicasets_done == tally.replicasets;
    let mut actions: Vec<Action> = plans
        .iter()
        .flat_map(|p| p.actions.iter().copied())
        .collect();
    let mut message = format!("{prefix}{tally}");
    if done {
        return Decision {
            actions: Vec::new(),
            state: None,
            message,
            done,
        };
    }
    let names = |refs: Vec<PodRef>| -> Vec<String> {
        refs.into_iter().filter_map(|r| view.pod_name(r)).collect()
    };
    let deleting = names(deletions(&actions));
    let switching = names(switches(&actions));
    if !deleting.is_empty() {
        message.push_str(&format!("; deleting {}", brief_list(&deleting, SHOWN)));
    }
    if !switching.is_empty() {
        message.push_str(&format!(
            "; switching master to {}",
            brief_list(&switching, SHOWN)
        ));
    }
    let waiting: Vec<String> = plans
        .iter()
        .filter_map(|p| match &p.progress {
            Progress::Waiting(why) => view
                .replicasets
                .get(p.replicaset as usize)
                .map(|rs| format!("{} ({why})", rs.name)),
            _ => None,
        })
        .collect();
    if !waiting.is_empty() {
        message.push_str(&format!("; waiting on {}", brief_list(&waiting, SHOWN)));
    }
    actions.push(Action::Wait(POLL_SECONDS));
    Decision {
        actions,
        state: None,
        message,
        done,
    }
}

/// The pods `actions` delete, in order.
pub fn deletions(actions: &[Action]) -> Vec<PodRef> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::DeletePod(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// The pods `actions` make masters, in order.
pub fn switches(actions: &[Action]) -> Vec<PodRef> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SwitchMaster(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// The first `shown` items joined with commas, then how many more: a
/// message is one line however large the Role.
pub fn brief_list(items: &[String], shown: usize) -> String {
    let mut s = items
        .iter()
        .take(shown)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > shown {
        s.push_str(&format!(" and {} more", items.len() - shown));
    }
    s
}

/// Names shown in a decision's message.
const SHOWN: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn del(r: u32, p: u32) -> Action {
        Action::DeletePod(PodRef {
            replicaset: r,
            pod: p,
        })
    }

    fn plan(view: &RoleView) -> ReplicaSetPlan {
        let mut slots = u32::MAX;
        plan_replicaset(view, 0, &mut slots)
    }

    #[test]
    fn non_masters_go_first_highest_ordinal_first() {
        let view = RoleView::sample(1, 3);
        assert_eq!(plan(&view).actions, vec![del(0, 2)]);
    }

    #[test]
    fn not_ready_pods_go_first_and_cost_nothing() {
        let mut view = RoleView::sample(1, 4);
        view.pod_mut(0, 1).ready = false;
        // Pod 1 already uses the budget of one: deleting it is free, but no
        // serving pod may follow.
        assert_eq!(plan(&view).actions, vec![del(0, 1)]);
        // With a budget of two, pod 3 follows.
        view.max_unavailable = 2;
        assert_eq!(plan(&view).actions, vec![del(0, 1), del(0, 3)]);
    }

    #[test]
    fn budget_counts_settling_pods() {
        let mut view = RoleView::sample(1, 3);
        let p = view.pod_mut(0, 2);
        p.updated = true;
        p.healthy = false;
        let plan = plan(&view);
        assert!(plan.actions.is_empty());
        assert!(matches!(plan.progress, Progress::Waiting(_)));
    }

    #[test]
    fn role_slots_bound_deletions() {
        let mut view = RoleView::sample(1, 4);
        view.max_unavailable = 3;
        let mut slots = 2;
        let plan = plan_replicaset(&view, 0, &mut slots);
        assert_eq!(plan.actions, vec![del(0, 3), del(0, 2)]);
        assert_eq!(slots, 0);
    }

    #[test]
    fn master_switches_to_lowest_lag_then_goes() {
        let mut view = RoleView::sample(1, 3);
        for (p, lag) in [(1, 50), (2, 20)] {
            let pod = view.pod_mut(0, p);
            pod.updated = true;
            pod.lag_millis = lag;
        }
        assert_eq!(
            plan(&view).actions,
            vec![Action::SwitchMaster(PodRef {
                replicaset: 0,
                pod: 2
            })]
        );
        view.pod_mut(0, 0).master = false;
        view.pod_mut(0, 2).master = true;
        assert_eq!(plan(&view).actions, vec![del(0, 0)]);
    }

    #[test]
    fn master_waits_while_peers_restart() {
        let mut view = RoleView::sample(1, 2);
        let p = view.pod_mut(0, 1);
        p.updated = true;
        p.ready = false;
        assert!(plan(&view).actions.is_empty());
    }

    #[test]
    fn a_second_master_flag_is_never_deleted() {
        let mut view = RoleView::sample(1, 3);
        view.pod_mut(0, 2).master = true;
        assert_eq!(plan(&view).actions, vec![del(0, 1)]);
    }

    #[test]
    fn single_pod_replicaset_deletes_its_master() {
        let view = RoleView::sample(1, 1);
        assert_eq!(plan(&view).actions, vec![del(0, 0)]);
    }

    #[test]
    fn decide_waits_until_done() {
        let mut view = RoleView::sample(2, 1);
        let plans: Vec<_> = (0..2).map(|r| plan_replicaset(&view, r, &mut 1)).collect();
        let d = decide(&view, "", &plans);
        assert!(!d.done);
        assert_eq!(d.actions.last(), Some(&Action::Wait(POLL_SECONDS)));
        assert!(d.message.contains("deleting r-0-0"), "{}", d.message);
        for r in 0..2 {
            view.pod_mut(r, 0).updated = true;
        }
        let d = decide(&view, "", &[]);
        assert!(d.done && d.actions.is_empty());
        assert!(d.message.contains("2/2 pods updated"), "{}", d.message);
    }
}
