//! `Canary`: an example custom update strategy.
//!
//! 1. The first replica set of the view (the canary) is updated on its own,
//!    master-aware, with the SDK's [`rollout`](strategy_sdk::rollout) helpers.
//! 2. Once it is fully updated, ready and healthy, the strategy waits
//!    `canaryWaitSeconds` so that a bad revision shows itself on a small part
//!    of the Role. The moment the canary finished is kept in the opaque
//!    `state`, which the operator stores in the Role's status: a restarted
//!    operator resumes the wait instead of starting it over.
//! 3. Then every other replica set is updated in parallel.
//!
//! To stop a bad rollout, change the Role back (or set `OnDelete`): the
//! canary's wait is the window to do it in.

use strategy_sdk::rollout::{
    MAX_WAIT_SECONDS, POLL_SECONDS, decide, plan_every, plan_replicaset, replicaset_done,
};
use strategy_sdk::{Action, Decision, Info, LogLevel, ParamSpec, RoleView, Strategy, log};

/// The `Canary` strategy.
pub struct Canary;

/// Name of the param holding the soak time after the canary.
pub const CANARY_WAIT_SECONDS: &str = "canaryWaitSeconds";

const DEFAULT_WAIT: u32 = 300;

/// Prefix of the state while the canary soaks: `soaking-since=<unix seconds>`.
const SOAKING_SINCE: &str = "soaking-since=";

/// Where the rollout is, as kept in `state`.
enum Phase {
    /// Updating the first replica set.
    Canary,
    /// The canary finished at this Unix time; waiting.
    Soaking(u64),
    /// The canary has soaked long enough: updating the rest.
    Rest,
}

impl Phase {
    fn parse(state: Option<&str>) -> Phase {
        match state {
            None | Some("") => Phase::Canary,
            Some("rest") => Phase::Rest,
            Some(s) => match s.strip_prefix(SOAKING_SINCE).map(str::parse) {
                Some(Ok(t)) => Phase::Soaking(t),
                _ => {
                    // Starting over is safe: a finished canary only soaks again.
                    log(
                        LogLevel::Warn,
                        &format!("unknown state {s:?}; starting with the canary"),
                    );
                    Phase::Canary
                }
            },
        }
    }

    fn state(&self) -> Option<String> {
        match self {
            Phase::Canary => None,
            Phase::Soaking(t) => Some(format!("{SOAKING_SINCE}{t}")),
            Phase::Rest => Some("rest".into()),
        }
    }
}

impl Strategy for Canary {
    fn describe() -> Info {
        Info {
            name: "Canary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Updates the first replica set alone (replicas first, then the master \
                          after a switch), waits canaryWaitSeconds, then updates every other \
                          replica set in parallel."
                .into(),
            params: vec![ParamSpec {
                name: CANARY_WAIT_SECONDS.into(),
                description: "Seconds to watch the updated canary replica set before the rest \
                              of the Role follows."
                    .into(),
                default: Some(DEFAULT_WAIT.to_string()),
            }],
        }
    }

    fn plan(view: &RoleView) -> Result<Decision, String> {
        let soak = view.param_u32(CANARY_WAIT_SECONDS, DEFAULT_WAIT)?;
        let Some(canary) = view.replicasets.first() else {
            return Ok(decide(view, "", &[]));
        };
        let mut phase = Phase::parse(view.state.as_deref());
        if let Phase::Canary = phase {
            if !replicaset_done(canary) {
                let mut unlimited = u32::MAX;
                let plan = plan_replicaset(view, 0, &mut unlimited);
                return Ok(decide(view, &format!("canary {}: ", canary.name), &[plan]));
            }
            phase = Phase::Soaking(view.now_unix);
        }
        if let Phase::Soaking(_) = phase
            && !replicaset_done(canary)
        {
            // The canary went unready or unhealthy while watched: that is the
            // signal a canary exists for. Hold, and watch it a full period
            // again once it recovers.
            return Ok(Decision {
                actions: vec![Action::Wait(POLL_SECONDS)],
                state: Phase::Soaking(view.now_unix).state(),
                message: format!(
                    "canary {} is not healthy; holding the rollout until it recovers",
                    canary.name
                ),
                done: false,
            });
        }
        if let Phase::Soaking(since) = phase {
            let elapsed = view.now_unix.saturating_sub(since);
            let left = u64::from(soak).saturating_sub(elapsed);
            if left > 0 && !view.replicasets.iter().all(replicaset_done) {
                let wait = left.min(u64::from(MAX_WAIT_SECONDS)) as u32;
                return Ok(Decision {
                    actions: vec![Action::Wait(wait)],
                    state: phase.state(),
                    message: format!(
                        "canary {} updated; watching it {left} s more before the rest",
                        canary.name
                    ),
                    done: false,
                });
            }
            phase = Phase::Rest;
        }
        let mut d = decide(view, "after the canary: ", &plan_every(view, u32::MAX));
        if !d.done {
            d.state = phase.state();
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests;

strategy_sdk::export_strategy!(Canary, "Canary");
