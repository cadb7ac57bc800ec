//! One PodDisruptionBudget per replica set, in step with its StatefulSet:
//! decided purely ([`decide`]), then carried out ([`sync`]).
//!
//! A budget exists while its StatefulSet does and is not being deleted: a
//! new replica set gets one with its StatefulSet; a retiring one keeps it
//! through the drain and expel (its pods still serve), and loses it once
//! its StatefulSet is deleted. The Role owns every budget, so the garbage
//! collector removes them with the Role.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

use super::RolePass;
use super::observe::Snapshot;
use crate::api::Reason;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error, events};
use crate::resources::apply::{self, Applied};
use crate::resources::{disruption_budget, labels};

/// A StatefulSet of the Role, as the budgets see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatefulSetFacts {
    /// Its name (the replica set's, and its budget's).
    pub name: String,
    /// It carries a deletion timestamp.
    pub deleting: bool,
}

/// What [`sync`] does this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Budgets to apply (skipped when unchanged), by replica set.
    pub apply: Vec<String>,
    /// Budgets to delete: their StatefulSet is gone or going.
    pub delete: Vec<String>,
}

/// The budgets a Role should have, from its StatefulSets and the budgets
/// it has (by name).
pub(crate) fn decide(statefulsets: &[StatefulSetFacts], existing: &[String]) -> Plan {
    let apply: Vec<String> = statefulsets
        .iter()
        .filter(|s| !s.deleting)
        .map(|s| s.name.clone())
        .collect();
    let delete = existing
        .iter()
        .filter(|name| !apply.contains(name))
        .cloned()
        .collect();
    Plan { apply, delete }
}

/// Whether the watched store may be behind this operator's own writes: it
/// lacks a budget that a live StatefulSet should have (created a moment
/// ago, or really missing). Then the apiserver is asked, so that a budget
/// just created is not applied again with a second Event. A budget the store
/// still shows after its deletion costs at most a 404.
pub(crate) fn store_lags(
    statefulsets: &[StatefulSetFacts],
    cached: &[PodDisruptionBudget],
) -> bool {
    statefulsets
        .iter()
        .filter(|s| !s.deleting)
        .any(|s| !cached.iter().any(|b| b.name_any() == s.name))
}

/// The step: reads the Role's budgets from the watched store (listing them
/// only when the store lacks one, see [`store_lags`]), applies the missing
/// or changed ones and deletes those whose StatefulSet is gone, each with an
/// Event. Steady state: no request at all.
pub(crate) async fn sync(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let cluster = snap.cluster_name();
    let owner = pass.owner_ref()?;
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    let facts: Vec<StatefulSetFacts> = snap
        .statefulsets
        .iter()
        .map(|s| StatefulSetFacts {
            name: s.name_any(),
            deleting: s.metadata.deletion_timestamp.is_some(),
        })
        .collect();
    let cached = ctx
        .cache()
        .filter(|c| c.ready())
        .map(|c| c.role_budgets(&pass.namespace, &pass.name));
    let existing = match cached {
        Some(cached) if !store_lags(&facts, &cached) => cached,
        _ => {
            api.list(&ListParams::default().labels(&labels::role_selector(&pass.name)))
                .await?
                .items
        }
    };
    let names: Vec<String> = existing.iter().map(ResourceExt::name_any).collect();
    let plan = decide(&facts, &names);
    for name in &plan.apply {
        let desired =
            disruption_budget::build(&pass.namespace, &cluster, &pass.name, name, owner.clone());
        // A budget someone else loosened is applied again, hash or not.
        let found = existing.iter().find(|p| &p.name_any() == name);
        let current = apply::unless_drifted(&desired, found);
        let drifted = found.is_some() && current.is_none();
        let verb = match apply::apply(&ctx.client, desired, current).await?.0 {
            Applied::Unchanged => continue,
            _ if drifted => "put back (changed outside the operator)",
            Applied::Created => "created",
            Applied::Updated => "updated",
        };
        events::normal(
            ctx,
            pass.role.as_ref(),
            Reason::DisruptionBudgetApplied,
            format!("PodDisruptionBudget {name} {verb} (at most 1 of its pods evicted at a time)"),
        )
        .await;
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e.into()),
        }
        events::normal(
            ctx,
            pass.role.as_ref(),
            Reason::DisruptionBudgetDeleted,
            format!("PodDisruptionBudget {name} deleted (its StatefulSet is gone)"),
        )
        .await;
    }
    Ok(Flow::Next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(name: &str, deleting: bool) -> StatefulSetFacts {
        StatefulSetFacts {
            name: name.into(),
            deleting,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn budgets_follow_the_statefulsets() {
        let cases = [
            (
                "a new Role: one per replica set",
                vec![sts("s-0", false), sts("s-1", false)],
                names(&[]),
                Plan {
                    apply: names(&["s-0", "s-1"]),
                    delete: names(&[]),
                },
            ),
            (
                "converged: applied (a no-op by hash), nothing deleted",
                vec![sts("s-0", false)],
                names(&["s-0"]),
                Plan {
                    apply: names(&["s-0"]),
                    delete: names(&[]),
                },
            ),
            (
                "scaled up: the new replica set gets one",
                vec![sts("s-0", false), sts("s-1", false), sts("s-2", false)],
                names(&["s-0", "s-1"]),
                Plan {
                    apply: names(&["s-0", "s-1", "s-2"]),
                    delete: names(&[]),
                },
            ),
            (
                "a retiring replica set draining: its StatefulSet is there, so is its budget",
                vec![sts("s-0", false), sts("s-1", false)],
                names(&["s-0", "s-1"]),
                Plan {
                    apply: names(&["s-0", "s-1"]),
                    delete: names(&[]),
                },
            ),
            (
                "its StatefulSet deleted after the expel",
                vec![sts("s-0", false), sts("s-1", true)],
                names(&["s-0", "s-1"]),
                Plan {
                    apply: names(&["s-0"]),
                    delete: names(&["s-1"]),
                },
            ),
            (
                "its StatefulSet gone",
                vec![sts("s-0", false)],
                names(&["s-0", "s-1"]),
                Plan {
                    apply: names(&["s-0"]),
                    delete: names(&["s-1"]),
                },
            ),
        ];
        for (case, statefulsets, existing, want) in cases {
            assert_eq!(decide(&statefulsets, &existing), want, "{case}");
        }
    }

    fn budget(name: &str) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_apiserver_is_asked_only_when_the_store_lacks_a_budget() {
        let cases = [
            (
                "converged: the store has every budget",
                vec![sts("s-0", false), sts("s-1", false)],
                vec!["s-0", "s-1"],
                false,
            ),
            (
                "a new replica set: its budget is not there yet",
                vec![sts("s-0", false), sts("s-1", false)],
                vec!["s-0"],
                true,
            ),
            ("no StatefulSet yet: nothing to miss", vec![], vec![], false),
            (
                "a deleted StatefulSet needs no budget",
                vec![sts("s-0", false), sts("s-1", true)],
                vec!["s-0"],
                false,
            ),
            (
                "a stale budget the store still shows is deleted, not listed for",
                vec![sts("s-0", false)],
                vec!["s-0", "s-1"],
                false,
            ),
            (
                "an empty store while StatefulSets exist (created a moment ago)",
                vec![sts("s-0", false)],
                vec![],
                true,
            ),
        ];
        for (case, statefulsets, cached, lags) in cases {
            let cached: Vec<PodDisruptionBudget> = cached.into_iter().map(budget).collect();
            assert_eq!(store_lags(&statefulsets, &cached), lags, "{case}");
        }
    }
}
