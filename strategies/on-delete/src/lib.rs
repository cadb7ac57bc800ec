//! `OnDelete`: the operator deletes nothing; a human deletes pods and the
//! strategy reports which are still pending.

use strategy_sdk::{Decision, Info, RoleView, Strategy};

/// The `OnDelete` strategy.
pub struct OnDelete;

impl Strategy for OnDelete {
    fn describe() -> Info {
        Info {
            name: "OnDelete".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Deletes nothing. Pods move to the new revision when you delete them; \
                          the status lists the pods still pending."
                .into(),
            params: Vec::new(),
        }
    }

    fn plan(view: &RoleView) -> Result<Decision, String> {
        let pending: Vec<String> = view
            .pod_refs()
            .filter(|(_, p)| !p.updated)
            .filter_map(|(r, _)| view.pod_name(r))
            .collect();
        let done = pending.is_empty();
        let message = if done {
            "all pods run the update revision".to_string()
        } else {
            format!(
                "{} pod(s) wait for manual deletion: {}",
                pending.len(),
                strategy_sdk::rollout::brief_list(&pending, 5)
            )
        };
        Ok(Decision {
            actions: Vec::new(),
            state: None,
            message,
            done,
        })
    }
}

strategy_sdk::export_strategy!(OnDelete, "OnDelete");
