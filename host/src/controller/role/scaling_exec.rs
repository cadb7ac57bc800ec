//! Carries out a scaling [`Plan`]: the one place where replica sets and
//! instances are drained, expelled, and their StatefulSets and volumes
//! deleted. The decisions are made in [`super::scaling`]; this only acts,
//! and reports each act as an Event.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use super::cartridge::Answer;
use super::scaling::{Op, Plan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Reason;

use crate::api::role::{MasterSwitch, Role};
use crate::controller::{Context, Error, events};
use crate::resources::epochs;
use crate::topology::{ReplicasetEdit, TopologyEdit, TopologyError};

/// The switches [`execute`] will send for `plan`, as the status records
/// them (replica set, switch): written before they are sent, as a rollout
/// does, so that an operator restarted mid-switch still knows which two
/// pods wait for Cartridge's confirmation.
pub(crate) fn planned_switches(plan: &Plan, now: &Time) -> Vec<(String, MasterSwitch)> {
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::SwitchMaster {
                replicaset,
                to_alias,
                ..
            } => Some(super::switchover::planned(replicaset, to_alias, now)),
            _ => None,
        })
        .collect()
}

/// Performs `plan.ops` in order, through the verified member that answered
/// (`answer`; the plan holds topology steps only when there is one).
/// Returns the master switches sent (replica set, switch).
pub(crate) async fn execute(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    plan: &Plan,
    answer: Option<&Answer>,
) -> Result<Vec<(String, MasterSwitch)>, Error> {
    let mut switches = Vec::new();
    for op in &plan.ops {
        if let Op::SwitchMaster {
            replicaset,
            to,
            to_alias,
        } = op
        {
            let client = &cartridge(answer)?.client;
            let switch = super::rollout::execute::switch_master(
                ctx,
                role,
                client.as_ref(),
                replicaset,
                to,
                to_alias,
            )
            .await?;
            switches.push((replicaset.alias.clone(), switch));
        } else {
            perform(ctx, role, namespace, op, answer).await?;
        }
    }
    Ok(switches)
}

async fn set_weight(answer: &Answer, uuid: &str, weight: f64) -> Result<(), Error> {
    answer
        .client
        .edit(&TopologyEdit {
            replicasets: vec![ReplicasetEdit {
                uuid: uuid.to_string(),
                weight: Some(weight),
                ..ReplicasetEdit::default()
            }],
            expel: Vec::new(),
        })
        .await?;
    Ok(())
}

fn cartridge(answer: Option<&Answer>) -> Result<&Answer, Error> {
    answer.ok_or(Error::MissingField("a verified Cartridge answer"))
}

async fn perform(
    ctx: &Context,
    role: &Role,
    namespace: &str,
    op: &Op,
    answer: Option<&Answer>,
) -> Result<(), Error> {
    match op {
        // Sent by `execute`, which keeps what it returns.
        Op::SwitchMaster { .. } => Ok(()),
        Op::Drain { uuid, name } => {
            set_weight(cartridge(answer)?, uuid, 0.0).await?;
            events::normal(
                ctx,
                role,
                Reason::DrainStarted,
                format!("replica set {name}: weight 0, its buckets move away"),
            )
            .await;
            Ok(())
        }
        Op::Restore { uuid, name, weight } => {
            set_weight(cartridge(answer)?, uuid, *weight).await?;
            events::normal(
                ctx,
                role,
                Reason::DrainCancelled,
                format!("replica set {name} is wanted again: weight {weight}"),
            )
            .await;
            Ok(())
        }
        Op::BumpEpochs {
            statefulset,
            epochs,
        } => {
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace);
            api.patch(
                statefulset,
                &PatchParams::apply(epochs::FIELD_MANAGER).force(),
                &Patch::Apply(epochs.apply_patch(statefulset)),
            )
            .await?;
            Ok(())
        }
        Op::Expel {
            statefulset,
            uuids,
            whole,
        } => {
            let client = &cartridge(answer)?.client;
            let edit = TopologyEdit {
                replicasets: Vec::new(),
                expel: uuids.clone(),
            };
            match client.edit(&edit).await {
                Ok(()) => {}
                // Expelled already (a repeated pass): the next verified
                // answer confirms it.
                Err(TopologyError::Refused { message, .. })
                    if message.contains("not in config") || message.contains("is expelled") => {}
                Err(e) => return Err(e.into()),
            }
            let (reason, note) = if *whole {
                (
                    Reason::ReplicasetExpelled,
                    format!("replica set {statefulset} drained and expelled"),
                )
            } else {
                (
                    Reason::InstancesExpelled,
                    format!(
                        "expelled {} instances of {statefulset} removed by scaling down",
                        uuids.len()
                    ),
                )
            };
            events::normal(ctx, role, reason, note).await;
            Ok(())
        }
        Op::DeleteClaims {
            statefulset,
            claims,
        } => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
            let mut deleted = 0;
            for claim in claims {
                match api.delete(claim, &DeleteParams::default()).await {
                    Ok(_) => deleted += 1,
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if deleted > 0 {
                events::normal(
                    ctx,
                    role,
                    Reason::VolumesDeleted,
                    format!(
                        "{deleted} volume claims of {statefulset} deleted: Cartridge confirmed their instances expelled"
                    ),
                )
                .await;
            }
            Ok(())
        }
        Op::DeleteStatefulSet { name } => {
            let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), namespace);
            match api.delete(name, &DeleteParams::foreground()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            events::normal(
                ctx,
                role,
                Reason::StatefulSetDeleted,
                format!("StatefulSet {name} deleted (its replica set is out of the topology)"),
            )
            .await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::topology::{ReplicasetInfo, ServerInfo};

    fn server(uuid: &str, alias: &str) -> ServerInfo {
        ServerInfo {
            uuid: uuid.into(),
            alias: alias.into(),
            ..ServerInfo::default()
        }
    }

    /// Replica set `alias` with servers `a` and `b`, `master` its master.
    fn replicaset(alias: &str, master: Option<&str>) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: format!("{alias}-uuid"),
            alias: alias.into(),
            master: master.map(str::to_string),
            servers: vec![server("a-uuid", "a"), server("b-uuid", "b")],
            ..ReplicasetInfo::default()
        }
    }

    #[test]
    fn the_switches_a_scaling_plan_sends_are_recorded_from_the_master_it_saw() {
        let now = Time(Timestamp::UNIX_EPOCH);
        let switch = |rs: &str, master: Option<&str>| Op::SwitchMaster {
            replicaset: replicaset(rs, master),
            to: "b-uuid".into(),
            to_alias: "b".into(),
        };
        // (case, the plan's ops, the records: replica set, from, to)
        type Case = (
            &'static str,
            Vec<Op>,
            Vec<(&'static str, &'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            ("no switch", vec![], vec![]),
            (
                "one",
                vec![switch("rs1", Some("a-uuid"))],
                vec![("rs1", "a", "b")],
            ),
            (
                "two, in plan order",
                vec![switch("rs2", Some("a-uuid")), switch("rs1", Some("a-uuid"))],
                vec![("rs2", "a", "b"), ("rs1", "a", "b")],
            ),
            (
                "a master Cartridge did not name is recorded as unknown",
                vec![switch("rs1", None)],
                vec![("rs1", "", "b")],
            ),
        ];
        for (name, ops, want) in cases {
            let plan = Plan {
                ops,
                ..Plan::default()
            };
            let got: Vec<(String, String, String)> = planned_switches(&plan, &now)
                .into_iter()
                .map(|(rs, s)| {
                    assert_eq!(s.requested_at, now, "{name}");
                    assert!(s.writable_at.is_none(), "{name}");
                    (rs, s.from, s.to)
                })
                .collect();
            let want: Vec<(String, String, String)> = want
                .into_iter()
                .map(|(a, b, c)| (a.into(), b.into(), c.into()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
