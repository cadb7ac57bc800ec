//! Properties of the built-in strategies (and the example canary), driven
//! natively through the simulator over random Roles: 1-50 replica sets of
//! 1-5 pods, random masters (or none known), some pods not ready or already
//! updated, a budget of 1-2.
//!
//! Three layers check each run: the guard refuses unsafe decisions, the
//! simulator checks the invariants from its own state, and these tests check
//! the report and, through [`Watched`], every decision against the view it
//! was made from.

use std::cell::RefCell;

use cluster_partition_update::{BATCH_SIZE, ClusterPartitionUpdate};
use custom_strategy::{CANARY_WAIT_SECONDS, Canary};
use on_delete::OnDelete;
use proptest::prelude::*;
use strategy_sdk::{Action, Decision, PodRef, RoleView};
use switch_master_update::SwitchMasterUpdate;
use tarantool_operator_strategy::native::Native;
use tarantool_operator_strategy::planner::{PlanError, Planner};
use tarantool_operator_strategy::simulator::{
    Outcome, ReplicaSetDescription, RoleDescription, RunLimits, RunReport, Simulator, StepAction,
};

/// A small Role, a few pods deleted by hand first (so that the view also has
/// terminating ones), and a random decision naming mostly pods of that Role.
fn guard_case() -> impl Strategy<Value = (RoleDescription, Vec<PodRef>, Decision)> {
    (prop::collection::vec(replicaset(), 1..=3), 1u32..=2).prop_flat_map(
        |(replicasets, max_unavailable)| {
            let sizes: Vec<u32> = replicasets.iter().map(|r| r.replicas).collect();
            let d = RoleDescription {
                role: "g".into(),
                params: Default::default(),
                max_unavailable,
                restart_seconds: 30,
                terminate_seconds: 5,
                replicasets,
            };
            // A pod of the Role, or now and then one past its end.
            let pod = (
                0..sizes.len() as u32,
                any::<prop::sample::Index>(),
                prop::bool::weighted(0.05),
            )
                .prop_map(move |(r, i, past)| PodRef {
                    replicaset: r,
                    pod: if past {
                        sizes[r as usize]
                    } else {
                        i.index(sizes[r as usize] as usize) as u32
                    },
                });
            let action = prop_oneof![
                6 => pod.clone().prop_map(Action::DeletePod),
                2 => pod.clone().prop_map(Action::SwitchMaster),
                1 => (0u32..4000).prop_map(Action::Wait),
            ];
            let decision = (
                prop::collection::vec(action, 0..=4),
                prop::bool::weighted(0.2),
            )
                .prop_map(|(actions, done)| Decision {
                    actions,
                    state: None,
                    message: String::new(),
                    done,
                });
            (Just(d), prop::collection::vec(pod, 0..=1), decision)
        },
    )
}

/// Plays one decision, then nothing.
struct Once(RefCell<Option<Decision>>);

impl Planner for Once {
    fn plan(&self, _: &RoleView) -> Result<Decision, PlanError> {
        Ok(self.0.borrow_mut().take().unwrap_or_default())
    }
}

fn config() -> ProptestConfig {
    // Each case simulates up to 250 pods; 64 keeps the file to a few seconds
    // in a debug build.
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

fn replicaset() -> impl Strategy<Value = ReplicaSetDescription> {
    (1u32..=5)
        .prop_flat_map(|n| {
            (
                Just(n),
                prop::option::weighted(0.9, 0..n),
                prop::collection::vec(prop::bool::weighted(0.15), n as usize),
                prop::collection::vec(prop::bool::weighted(0.1), n as usize),
                any::<bool>(),
            )
        })
        .prop_map(|(replicas, master, not_ready, updated, holds_data)| {
            let ordinals = |flags: Vec<bool>| {
                (0..replicas)
                    .filter(|&o| flags[o as usize])
                    .collect::<Vec<_>>()
            };
            ReplicaSetDescription {
                name: None,
                replicas,
                master,
                holds_data,
                weight: 1.0,
                not_ready: ordinals(not_ready),
                updated: ordinals(updated),
                failing: Vec::new(),
            }
        })
}

fn role() -> impl Strategy<Value = RoleDescription> {
    (
        prop::collection::vec(replicaset(), 1..=50),
        1u32..=2,
        1u64..=60,
        0u64..=10,
    )
        .prop_map(
            |(replicasets, max_unavailable, restart_seconds, terminate_seconds)| RoleDescription {
                role: "p".into(),
                params: Default::default(),
                max_unavailable,
                restart_seconds,
                terminate_seconds,
                replicasets,
            },
        )
}

/// Wraps a planner and checks each of its decisions against the view it saw,
/// trusting neither the guard nor the simulator: a master that had a serving
/// peer must never be deleted.
struct Watched<'a> {
    inner: &'a dyn Planner,
    problems: RefCell<Vec<String>>,
}

impl<'a> Watched<'a> {
    fn new(inner: &'a dyn Planner) -> Self {
        Watched {
            inner,
            problems: RefCell::new(Vec::new()),
        }
    }
}

impl Planner for Watched<'_> {
    fn plan(&self, view: &RoleView) -> Result<Decision, PlanError> {
        let decision = self.inner.plan(view)?;
        for action in &decision.actions {
            let Action::DeletePod(PodRef { replicaset, pod }) = *action else {
                continue;
            };
            let Some(rs) = view.replicasets.get(replicaset as usize) else {
                continue;
            };
            let master = rs.pods.get(pod as usize).is_some_and(|p| p.master);
            let peer = rs
                .pods
                .iter()
                .enumerate()
                .any(|(i, p)| i != pod as usize && p.available());
            if master && peer {
                self.problems.borrow_mut().push(format!(
                    "master {}-{pod} deleted with a serving peer",
                    rs.name
                ));
            }
        }
        Ok(decision)
    }
}

fn pods(d: &RoleDescription) -> usize {
    d.replicasets.iter().map(|r| r.replicas as usize).sum()
}

/// Enough plans for any sane strategy: a few per pod event.
fn limits(d: &RoleDescription) -> RunLimits {
    RunLimits {
        max_steps: 20 * pods(d) + 100,
        ..RunLimits::default()
    }
}

/// Runs `planner` on `d` under watch, and checks what holds for every
/// strategy that completes: every pod updated, no replica set pushed over
/// its budget, no master deleted with a serving peer.
fn run_to_completion(
    d: &RoleDescription,
    planner: &dyn Planner,
) -> Result<RunReport, TestCaseError> {
    let mut sim = Simulator::from_description(d).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let watched = Watched::new(planner);
    let report = sim.run(&watched, limits(d));
    prop_assert_eq!(&report.outcome, &Outcome::Completed, "{}", report.outcome);
    prop_assert!(sim.outdated_pods().is_empty());
    let view = sim.view();
    prop_assert!(
        view.pod_refs().all(|(_, p)| p.available() && p.healthy),
        "done before every pod was back"
    );
    prop_assert!(
        watched.problems.borrow().is_empty(),
        "{:?}",
        watched.problems.borrow()
    );
    for rs in &report.stats.replicasets {
        prop_assert!(
            rs.max_unavailable <= d.max_unavailable.max(rs.initial_unavailable),
            "{} reached {} unavailable, budget {}",
            rs.name,
            rs.max_unavailable,
            d.max_unavailable
        );
    }
    Ok(report)
}

/// Seconds one pod needs from deletion to ready and healthy.
fn cycle(d: &RoleDescription) -> u64 {
    d.terminate_seconds + d.restart_seconds
}

/// The replica set a pod name belongs to: `p-3-1` is in `p-3`.
fn replicaset_of(pod: &str) -> &str {
    pod.rsplit_once('-').map_or(pod, |(rs, _)| rs)
}

fn deletions(report: &RunReport) -> impl Iterator<Item = (u64, &str)> {
    report.steps.iter().flat_map(|s| {
        s.actions.iter().filter_map(move |a| match a {
            StepAction::Delete { pod } => Some((s.at, pod.as_str())),
            _ => None,
        })
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn switch_master_update_is_safe_and_finishes(d in role()) {
        let report = run_to_completion(&d, &Native::<SwitchMasterUpdate>::new())?;
        // Replica sets roll in parallel: each needs at most one cycle per pod,
        // plus one for pods that start not ready.
        let replicas = d.replicasets.iter().map(|r| u64::from(r.replicas)).max().unwrap_or(0);
        prop_assert!(
            report.stats.makespan_secs <= (replicas + 1) * cycle(&d),
            "makespan {} s for at most {} replicas", report.stats.makespan_secs, replicas
        );
    }

    #[test]
    fn cluster_partition_update_stays_within_its_batch(d in role(), batch in 1u32..=4) {
        let mut d = d;
        d.params.insert(BATCH_SIZE.into(), batch.to_string());
        let report = run_to_completion(&d, &Native::<ClusterPartitionUpdate>::new())?;
        let stats = &report.stats;
        prop_assert!(
            stats.max_unavailable_role <= batch.max(stats.initial_unavailable_role),
            "{} unavailable across the role with a batch of {} ({} at the start)",
            stats.max_unavailable_role, batch, stats.initial_unavailable_role
        );
        for step in &report.steps {
            prop_assert!(step.unavailable <= batch.max(stats.initial_unavailable_role));
        }
        prop_assert!(report.stats.makespan_secs <= (pods(&d) as u64 + 1) * cycle(&d));
    }

    #[test]
    fn on_delete_only_waits_for_the_human(d in role()) {
        let mut sim = Simulator::from_description(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let planner = Native::<OnDelete>::new();
        let mut rounds = 0;
        let report = loop {
            let report = sim.run(&planner, limits(&d));
            prop_assert_eq!(report.stats.deletions + report.stats.switches, 0);
            prop_assert!(report.steps.iter().all(|s| s.actions.is_empty()));
            if report.outcome.is_completed() {
                break report;
            }
            prop_assert!(matches!(report.outcome, Outcome::NoProgress { .. }), "{}", report.outcome);
            // The human deletes every pod still outdated, as `kubectl delete`.
            let view = sim.view();
            for (r, pod) in view.pod_refs() {
                if !pod.updated && !pod.terminating {
                    sim.delete_pod(r);
                }
            }
            rounds += 1;
            prop_assert!(rounds <= 2, "not done after the human deleted every outdated pod");
        };
        prop_assert!(sim.outdated_pods().is_empty());
        prop_assert!(report.steps.last().is_some_and(|s| s.done));
    }

    #[test]
    fn canary_goes_first_and_soaks(d in role(), soak in 0u32..=600) {
        let mut d = d;
        d.params.insert(CANARY_WAIT_SECONDS.into(), soak.to_string());
        let report = run_to_completion(&d, &Native::<Canary>::new())?;
        let canary = format!("{}-0", d.role);
        let last_canary = deletions(&report).filter(|(_, p)| replicaset_of(p) == canary).map(|(t, _)| t).max();
        let first_other = deletions(&report).find(|(_, p)| replicaset_of(p) != canary).map(|(t, _)| t);
        if let (Some(last), Some(first)) = (last_canary, first_other) {
            prop_assert!(
                first >= last + u64::from(soak),
                "another replica set was deleted at {} s, the canary's last pod at {} s, soak {} s",
                first, last, soak
            );
        }
    }

    #[test]
    fn an_injected_failure_stops_its_replica_set_safely(d in role(), pick in any::<prop::sample::Index>()) {
        let mut sim = Simulator::from_description(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let view = sim.view();
        let refs: Vec<PodRef> = view.pod_refs().map(|(r, _)| r).collect();
        let failing = refs[pick.index(refs.len())];
        prop_assert!(sim.fail_pod(failing));
        // Ten idle minutes are enough to tell a stuck run; the steps limit
        // leaves room for the 10 s waits in between.
        let limits = RunLimits { max_steps: 20 * pods(&d) + 200, max_idle_secs: 600 };
        let report = sim.run(&Native::<SwitchMasterUpdate>::new(), limits);
        prop_assert!(
            matches!(report.outcome, Outcome::Completed | Outcome::NoProgress { .. }),
            "{}", report.outcome
        );
        for rs in &report.stats.replicasets {
            prop_assert!(rs.max_unavailable <= d.max_unavailable.max(rs.initial_unavailable));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the guard lets through, the simulator's own invariant checks
    /// accept: the guard is never the weaker of the two.
    #[test]
    fn the_guard_lets_nothing_unsafe_through((d, by_hand, decision) in guard_case()) {
        let mut sim = Simulator::from_description(&d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for pod in by_hand {
            sim.delete_pod(pod);
        }
        let report = sim.run(&Once(RefCell::new(Some(decision))), RunLimits { max_steps: 3, max_idle_secs: 60 });
        prop_assert!(!matches!(report.outcome, Outcome::Violation(_)), "{}", report.outcome);
    }
}

#[test]
fn a_failed_pod_halts_only_its_replica_set_without_looping() {
    let mut sim = Simulator::uniform(3, 3).expect("a valid role");
    // role-1-2 is the first pod of role-1 to go; it never comes back.
    assert!(sim.fail_pod(PodRef {
        replicaset: 1,
        pod: 2
    }));
    let report = sim.run(&Native::<SwitchMasterUpdate>::new(), RunLimits::default());
    let Outcome::NoProgress { pending, .. } = &report.outcome else {
        panic!("expected no progress, got {}", report.outcome);
    };
    assert_eq!(pending, &["role-1-0", "role-1-1", "role-1-2"]);
    let in_failed: Vec<&str> = deletions(&report)
        .map(|(_, p)| p)
        .filter(|p| replicaset_of(p) == "role-1")
        .collect();
    assert_eq!(
        in_failed,
        ["role-1-2"],
        "the strategy kept deleting in role-1"
    );
    assert!(
        report
            .stats
            .replicasets
            .iter()
            .all(|rs| rs.max_unavailable <= 1)
    );
    // Two idle hours of 10 s waits at most, not an endless loop.
    assert!(report.steps.len() < 1000, "{} steps", report.steps.len());
}
