//! `SwitchMasterUpdate`: every replica set in parallel; inside each, replicas
//! one by one (within the host's budget), then the master moves to the most
//! caught-up updated replica, then the old master is updated.
//!
//! The logic lives in [`strategy_sdk::rollout`]; this strategy applies it to
//! every replica set with no role-wide limit.

use strategy_sdk::rollout::{decide, plan_every};
use strategy_sdk::{Decision, Info, RoleView, Strategy};

/// The `SwitchMasterUpdate` strategy.
pub struct SwitchMasterUpdate;

impl Strategy for SwitchMasterUpdate {
    fn describe() -> Info {
        Info {
            name: "SwitchMasterUpdate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Updates every replica set in parallel. Inside a replica set, outdated \
                          replicas go first (not-ready ones before serving ones), never more \
                          than maxUnavailable at a time, each waited for until ready and \
                          healthy; then the master switches to the updated replica with the \
                          lowest lag, and the old master is updated last. For storages."
                .into(),
            params: Vec::new(),
        }
    }

    fn plan(view: &RoleView) -> Result<Decision, String> {
        Ok(decide(view, "", &plan_every(view, u32::MAX)))
    }
}

#[cfg(test)]
mod tests;

strategy_sdk::export_strategy!(SwitchMasterUpdate, "SwitchMasterUpdate");
