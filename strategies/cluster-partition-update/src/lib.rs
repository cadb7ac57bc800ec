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
        let batch = view.param_u32(BATCH_SIZE, 1)?;
        if batch == 0 {
            return Err(format!(
                "param {BATCH_SIZE}=0 would never update a serving pod"
            ));
        }
        if let Some(rs) = view.replicasets.iter().find(|rs| rs.holds_data) {
            // Still safe (master-aware and budgeted), but slower than it needs
            // to be and likely a misconfiguration: say so.
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
        Ok(decide(view, &format!("batch {batch}: "), &plans))
    }
}

strategy_sdk::export_strategy!(ClusterPartitionUpdate);

#[cfg(test)]
mod tests {
    use super::*;
    use strategy_sdk::PodRef;

    fn deleted(d: &Decision) -> Vec<PodRef> {
        strategy_sdk::rollout::deletions(&d.actions)
    }

    #[test]
    fn one_pod_of_the_role_at_a_time_by_default() {
        let view = RoleView::sample(4, 1);
        let d = ClusterPartitionUpdate::plan(&view).unwrap();
        assert_eq!(
            deleted(&d),
            vec![PodRef {
                replicaset: 0,
                pod: 0
            }]
        );
    }

    #[test]
    fn batch_spans_replica_sets() {
        let mut view = RoleView::sample(4, 1);
        view.set_param(BATCH_SIZE, "3");
        assert_eq!(
            deleted(&ClusterPartitionUpdate::plan(&view).unwrap()).len(),
            3
        );
        // A pod already down anywhere in the role takes a slot.
        view.pod_mut(3, 0).updated = true;
        view.pod_mut(3, 0).ready = false;
        let d = ClusterPartitionUpdate::plan(&view).unwrap();
        assert_eq!(deleted(&d).len(), 2);
        view.set_param(BATCH_SIZE, "1");
        let d = ClusterPartitionUpdate::plan(&view).unwrap();
        assert!(deleted(&d).is_empty());
        assert!(
            d.message.contains("r-0 (the role-wide batch is full)"),
            "{}",
            d.message
        );
    }

    #[test]
    fn not_ready_pods_are_free() {
        let mut view = RoleView::sample(3, 1);
        view.pod_mut(2, 0).ready = false;
        let d = ClusterPartitionUpdate::plan(&view).unwrap();
        // The not-ready pod fills the batch of one, but deleting it is free.
        assert_eq!(
            deleted(&d),
            vec![PodRef {
                replicaset: 2,
                pod: 0
            }]
        );
    }

    #[test]
    fn bad_batch_size_is_an_error() {
        let mut view = RoleView::sample(1, 1);
        for bad in ["0", "-1", "many"] {
            view.set_param(BATCH_SIZE, bad);
            assert!(ClusterPartitionUpdate::plan(&view).is_err(), "{bad}");
        }
    }
}
