//! Where a Role's rollout stands: a pure function of the template's
//! revision, the rollout the status records and what the pass counted.

use crate::api::maintenance::Standing;
use crate::api::role::UpdateProgress;

/// What a pass observed about the rollout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The revision of the pod template now.
    pub revision: &'a str,
    /// The rollout the Role's status records.
    pub recorded: Option<&'a UpdateProgress>,
    /// Pods that exist and run another template: what a rollout is for.
    pub stale: usize,
    /// Pods not on the template, the missing ones included.
    pub outdated: usize,
    /// Pods not ready.
    pub unready: usize,
    /// `spec.updateStrategy.paused`.
    pub paused: bool,
    /// Where the pass's `now` stands with respect to the maintenance
    /// windows (`Open` without windows).
    pub window: Standing,
    /// The Role carries `tarantool.io/rollout-now=true`.
    pub rollout_now: bool,
}

/// What the pass does about the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The rollout of this template is done: nothing to do.
    Idle,
    /// No pod to replace and no rollout of this template recorded (the
    /// first deployment, or a template no pod had to change for): recorded
    /// as done, with no rollout to report.
    RecordSettled,
    /// This rollout replaced every stale pod and some are still coming
    /// back: it ends when the last is ready.
    AwaitReturn {
        /// Pods still missing, outdated or not ready.
        pods: usize,
    },
    /// This rollout's pods are all back and ready: it ends now.
    Finish,
    /// Stale pods no rollout has counted yet: a rollout starts (its
    /// strategy state reset, announced once), then pauses or plans.
    Start {
        /// The spec pauses it at once.
        paused: bool,
        /// It starts outside every window, by `tarantool.io/rollout-now`
        /// (which the start consumes).
        forced: bool,
    },
    /// Stale pods no rollout has counted yet, outside every maintenance
    /// window: nothing starts until the next window opens.
    OutsideWindow {
        /// When the next window opens (unix seconds).
        opens_at: i64,
    },
    /// The rollout under way is paused by the spec.
    Pause,
    /// The rollout under way plans its next step with the strategy.
    Roll,
}

/// The rollout's next step.
pub(crate) fn next(f: &Facts<'_>) -> Step {
    let this = f
        .recorded
        .filter(|u| u.revision.as_deref() == Some(f.revision));
    if f.stale == 0 {
        return match this {
            Some(u) if !u.done && (f.outdated > 0 || f.unready > 0) => Step::AwaitReturn {
                pods: f.outdated.max(f.unready),
            },
            Some(u) if !u.done => Step::Finish,
            Some(_) => Step::Idle,
            None => Step::RecordSettled,
        };
    }
    // A rollout has begun once its progress was counted (by a plan, or
    // while paused); a record made while the StatefulSets caught up has
    // not, so this pass is its start. Counted once: no repeated Event.
    let begun = this.is_some_and(|u| !u.done && u.total_pods > 0);
    // Windows confine the start only: a rollout under way goes on when its
    // window closes (as Strimzi's), and a paused one a human unpauses goes
    // on at once (an urgent change). A paused start is no disruption: it
    // is recorded (with its preview) whatever the window.
    match (begun, f.paused, f.window) {
        (false, false, Standing::Closed { opens_at }) if !f.rollout_now => {
            Step::OutsideWindow { opens_at }
        }
        (false, paused, window) => Step::Start {
            paused,
            forced: f.rollout_now && !paused && window != Standing::Open,
        },
        (true, true, _) => Step::Pause,
        (true, false, _) => Step::Roll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(revision: &str, done: bool, total: i32) -> UpdateProgress {
        UpdateProgress {
            revision: Some(revision.into()),
            done,
            total_pods: total,
            ..UpdateProgress::default()
        }
    }

    #[test]
    fn every_rollout_state_has_its_next_step() {
        let done = progress("new", true, 6);
        let running = progress("new", false, 6);
        let counted_not = progress("new", false, 0);
        let older = progress("old", false, 6);
        let facts = |recorded, stale, outdated, unready, paused| Facts {
            revision: "new",
            recorded,
            stale,
            outdated,
            unready,
            paused,
            window: Standing::Open,
            rollout_now: false,
        };
        let closed = Standing::Closed { opens_at: 1000 };
        let outside = |recorded, stale, paused, rollout_now| Facts {
            window: closed,
            rollout_now,
            ..facts(recorded, stale, stale, 0, paused)
        };
        let cases = [
            (
                "first deployment",
                facts(None, 0, 0, 0, false),
                Step::RecordSettled,
            ),
            (
                "a template no pod had to change for",
                facts(Some(&done), 0, 0, 0, false),
                Step::Idle,
            ),
            (
                "an older rollout recorded, nothing stale now",
                facts(Some(&older), 0, 0, 0, false),
                Step::RecordSettled,
            ),
            ("converged", facts(Some(&done), 0, 0, 0, false), Step::Idle),
            (
                "deleted pods still missing",
                facts(Some(&running), 0, 2, 1, false),
                Step::AwaitReturn { pods: 2 },
            ),
            (
                "back, one not ready",
                facts(Some(&running), 0, 0, 1, false),
                Step::AwaitReturn { pods: 1 },
            ),
            (
                "all back and ready",
                facts(Some(&running), 0, 0, 0, false),
                Step::Finish,
            ),
            (
                "a new template",
                facts(Some(&done), 4, 4, 0, false),
                Step::Start {
                    paused: false,
                    forced: false,
                },
            ),
            (
                "a new template over an unfinished older rollout",
                facts(Some(&older), 4, 4, 0, false),
                Step::Start {
                    paused: false,
                    forced: false,
                },
            ),
            (
                "a new template, paused",
                facts(None, 4, 4, 0, true),
                Step::Start {
                    paused: true,
                    forced: false,
                },
            ),
            (
                "recorded while the StatefulSets caught up, not counted yet",
                facts(Some(&counted_not), 4, 4, 0, false),
                Step::Start {
                    paused: false,
                    forced: false,
                },
            ),
            (
                "under way",
                facts(Some(&running), 3, 3, 0, false),
                Step::Roll,
            ),
            (
                "under way, paused",
                facts(Some(&running), 3, 3, 0, true),
                Step::Pause,
            ),
            (
                "a new template outside every window: it waits for the next",
                outside(Some(&done), 4, false, false),
                Step::OutsideWindow { opens_at: 1000 },
            ),
            (
                "recorded but not counted, outside every window: still waits",
                outside(Some(&counted_not), 4, false, false),
                Step::OutsideWindow { opens_at: 1000 },
            ),
            (
                "outside every window with rollout-now: starts, forced",
                outside(Some(&done), 4, false, true),
                Step::Start {
                    paused: false,
                    forced: true,
                },
            ),
            (
                "a paused start outside every window is recorded (and previewed)",
                outside(None, 4, true, false),
                Step::Start {
                    paused: true,
                    forced: false,
                },
            ),
            (
                "under way when its window closed: it goes on",
                outside(Some(&running), 3, false, false),
                Step::Roll,
            ),
            (
                "paused under way, unpaused outside a window: it goes on (urgent)",
                outside(Some(&running), 3, false, false),
                Step::Roll,
            ),
            (
                "inside a window, rollout-now set: a plain start",
                Facts {
                    rollout_now: true,
                    ..facts(Some(&done), 4, 4, 0, false)
                },
                Step::Start {
                    paused: false,
                    forced: false,
                },
            ),
            (
                "nothing stale outside a window: idle",
                outside(Some(&done), 0, false, false),
                Step::Idle,
            ),
        ];
        for (case, facts, want) in cases {
            assert_eq!(next(&facts), want, "{case}");
        }
    }
}
