//! `ClusterPartitionUpdate`: for data-less roles (routers). Rolls the whole
//! role in batches: at most `batchSize` pods unavailable across all replica
//! sets at once, and never more than the host's per-replica-set budget.
//!
//! Replica sets are taken in view order, so a batch fills up from the first
//! replica set that still has outdated pods. Masters are respected as in
//! `SwitchMasterUpdate` (a replica set with several pods switches before its
//! master is deleted): a router replica set rarely has more than one pod, but
//! when it has, the same safety holds.

use strategy_sdk::rollout::{busy, decide, plan_every};
use strategy_sdk::{Decision, Info, LogLevel, ParamSpec, RoleView, Strategy, log};

/// The `ClusterPartitionUpdate` strategy.
pub struct ClusterPartitionUpdate;

/// Name of the role-wide batch param.
pub const BATCH_SIZE: &str = "batchSize";

impl Strategy for ClusterPartitionUpdate {
    fn describe() -> Info {
        Info {
            name: "ClusterPartitionUpdate".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "For data-less roles (routers): updates pods across all replica sets \
                          of the role in batches, at most batchSize pods unavailable across \
                          the role at once (and never more than maxUnavailable in one replica \
                          set). Not-ready pods go first; masters switch before they are \
                          deleted."
                .into(),
            params: vec![ParamSpec {
                name: BATCH_SIZE.into(),
                description: "Pods of the whole role that may be unavailable at once during \
                              the update (a positive integer)."
                    .into(),
                default: Some("1".into()),
            }],
        }
    }

    fn plan(view: &RoleView) -> Result<Decision, String> {
        /// State kept once the data-holding warning was logged.
        const WARNED_HOLDS_DATA: &str = "warned:holds-data";
        let batch = view.param_u32(BATCH_SIZE, 1)?;
        if batch == 0 {
            return Err(format!(
                "param {BATCH_SIZE}=0 would never update a serving pod"
            ));
        }
        let holds_data = view.replicasets.iter().find(|rs| rs.holds_data);
        if let Some(rs) = holds_data
            && view.state.as_deref() != Some(WARNED_HOLDS_DATA)
        {
            // Still safe (master-aware and budgeted), but slower than it needs
            // to be and likely a misconfiguration: say so, once per rollout.
            log(
                LogLevel::Warn,
                &format!(
                    "ClusterPartitionUpdate is meant for data-less roles; replica set {} holds \
                     data (SwitchMasterUpdate fits storages)",
                    rs.name
                ),
            );
        }
        let role_busy: u32 = view.replicasets.iter().map(busy).sum();
        let plans = plan_every(view, batch.saturating_sub(role_busy));
        let mut decision = decide(view, &format!("batch {batch}: "), &plans);
        if holds_data.is_some() {
            decision.state = Some(WARNED_HOLDS_DATA.into());
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests;

strategy_sdk::export_strategy!(ClusterPartitionUpdate, "ClusterPartitionUpdate");
