//! `strategy check`: drives a strategy through many generated Roles in the
//! simulator and collects every way it fails (refused decisions, broken
//! invariants, no progress, plan errors).
//!
//! A strategy that deletes nothing on purpose (like `OnDelete`) leaves the
//! deletions to a human. The checker plays that human: when a run stalls and
//! the strategy made no deletion or switch in it, the checker deletes one
//! outdated pod itself, without breaking the budget, and continues. A strategy
//! that does act and then stalls is reported as stuck.

use super::planner::Planner;
use super::simulator::{Outcome, RandomShape, RoleDescription, RunLimits, Simulator};

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Seeds to run: `first_seed..first_seed + cases`.
    pub first_seed: u64,
    /// How many generated Roles.
    pub cases: u64,
    /// The shape generated Roles are drawn from.
    pub shape: RandomShape,
    /// Bounds on each run.
    pub limits: RunLimits,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            first_seed: 0,
            cases: 32,
            shape: RandomShape::default(),
            limits: RunLimits::default(),
        }
    }
}

/// The result of one generated Role.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Its seed (reproduces the Role with [`RoleDescription::random`]).
    pub seed: u64,
    /// Replica sets in the Role.
    pub replicasets: usize,
    /// Pods in the Role.
    pub pods: usize,
    /// How it ended.
    pub outcome: Outcome,
    /// Pods the checker deleted as the human operator.
    pub manual_deletions: u32,
    /// Pods the strategy deleted.
    pub deletions: u32,
    /// Master switches the strategy made.
    pub switches: u32,
    /// Plans made.
    pub plans: u32,
    /// Simulated seconds to the end.
    pub makespan_secs: u64,
}

/// All results.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// One per seed.
    pub cases: Vec<CaseResult>,
}

impl CheckReport {
    /// Every case completed cleanly.
    pub fn clean(&self) -> bool {
        self.cases.iter().all(|c| c.outcome.is_completed())
    }

    /// The cases that did not.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.outcome.is_completed())
    }
}

/// Runs `planner` over `config.cases` generated Roles.
pub fn check(planner: &dyn Planner, config: &CheckConfig) -> CheckReport {
    let cases = (config.first_seed..config.first_seed.saturating_add(config.cases))
        .map(|seed| check_one(planner, seed, config))
        .collect();
    CheckReport { cases }
}

fn check_one(planner: &dyn Planner, seed: u64, config: &CheckConfig) -> CaseResult {
    let description = RoleDescription::random(seed, &config.shape);
    let replicasets = description.replicasets.len();
    let pods = description
        .replicasets
        .iter()
        .map(|r| r.replicas as usize)
        .sum();
    let mut result = CaseResult {
        seed,
        replicasets,
        pods,
        outcome: Outcome::Completed,
        manual_deletions: 0,
        deletions: 0,
        switches: 0,
        plans: 0,
        makespan_secs: 0,
    };
    let mut sim = match Simulator::from_description(&description) {
        Ok(sim) => sim,
        Err(e) => {
            // Generated descriptions are valid by construction; say so loudly
            // if that ever stops being true rather than hide it.
            result.outcome = Outcome::NoProgress {
                idle_secs: 0,
                pending: vec![format!("generated role is invalid: {e}")],
            };
            return result;
        }
    };
    loop {
        let report = sim.run(planner, config.limits);
        result.deletions += report.stats.deletions;
        result.switches += report.stats.switches;
        result.plans += report.stats.plans;
        result.makespan_secs = sim.now();
        let acted = report.stats.deletions > 0 || report.stats.switches > 0;
        match report.outcome {
            Outcome::NoProgress { .. }
                if !acted
                    && result.manual_deletions as usize <= pods
                    && delete_by_hand(&mut sim) =>
            {
                result.manual_deletions += 1;
            }
            outcome => {
                result.outcome = outcome;
                return result;
            }
        }
    }
}

/// Deletes one outdated pod the way a careful human would: in a replica set
/// with room in its budget, a replica before the master. False if there is
/// nothing such to delete.
fn delete_by_hand(sim: &mut Simulator) -> bool {
    let view = sim.view();
    let candidate = view
        .pod_refs()
        .filter(|(r, p)| {
            let rs = &view.replicasets[r.replicaset as usize];
            !p.updated
                && !p.terminating
                && (!p.available() || rs.unavailable() < view.max_unavailable)
        })
        .min_by_key(|(_, p)| (p.available(), p.master))
        .map(|(r, _)| r);
    candidate.is_some_and(|r| sim.delete_pod(r))
}
