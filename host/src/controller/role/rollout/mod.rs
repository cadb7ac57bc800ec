//! The Role's rolling update: when pods run an outdated revision, the
//! strategy named in `spec.updateStrategy` decides which pod goes next,
//! the host guard checks the decision, and the host carries it out.
//!
//! - [`view`]: the strategy's view from StatefulSets, pods and Cartridge.
//! - [`component`]: the strategy itself, built-in or from a ConfigMap.
//! - [`execute`]: deleting pods and switching masters.
//!
//! Level-triggered: every pass rebuilds the view from what it observes, so
//! an operator restarted mid-update resumes where the cluster is. The
//! strategy's opaque state lives in the Role's status and is reset when a
//! new rollout (a new pod template) starts. The component is pinned for a
//! rollout: the operator keeps the one it started with in memory; after a
//! restart, a component whose digest changed mid-rollout pauses the Role.

pub(crate) mod component;
pub(crate) mod execute;
#[cfg(test)]
mod model;
pub(crate) mod pins;
pub mod preview;
pub(crate) mod state;
pub(crate) mod view;

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use tracing::{debug, info};

use self::execute::{Executed, Switching};
use super::RolePass;
use super::cartridge::CartridgeView;
use super::observe::Snapshot;
use crate::api::role::UpdateProgress;
use crate::api::{Reason, labels, maintenance};
use crate::controller::error::StrategyError;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error, events};
use strategy_sdk::LogLevel;

use crate::strategy::{Caller, WasmStrategy, guard};
use crate::topology::{ReplicasetInfo, Topology};

/// `params` key: pods per replica set the host lets be unavailable.
pub const MAX_UNAVAILABLE: &str = "maxUnavailable";
/// `params` key: seconds a replica may lag and still be promoted.
pub const MAX_REPLICATION_LAG: &str = "maxReplicationLag";
/// `params` key: seconds an updated pod has to become ready before the
/// update pauses itself.
pub const PROGRESS_DEADLINE: &str = "progressDeadlineSeconds";

/// A strategy param of the Role, parsed, else `default`.
pub(crate) fn param<T: std::str::FromStr>(pass: &RolePass, key: &str, default: T) -> T {
    pass.role
        .spec
        .update_strategy
        .params
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The strategy for this rollout: the one it started with while this
/// operator runs, else resolved now (and checked against the digest the
/// rollout recorded).
async fn strategy_for(
    ctx: &Context,
    pass: &RolePass,
    revision: &str,
) -> Result<Arc<WasmStrategy>, Error> {
    if let Some(strategy) = ctx.pins.get(&pass.namespace, &pass.name, revision) {
        return Ok(strategy);
    }
    let strategy = component::resolve(ctx, &pass.role, &pass.namespace).await?;
    let recorded = pass
        .status
        .update
        .as_ref()
        .filter(|u| u.revision.as_deref() == Some(revision))
        .and_then(|u| u.component.clone());
    if let Some(recorded) = recorded
        && recorded != strategy.digest().hex()
    {
        return Err(StrategyError::ChangedMidRollout {
            recorded,
            current: strategy.digest().hex(),
        }
        .into());
    }
    ctx.pins
        .pin(&pass.namespace, &pass.name, revision, strategy.clone());
    Ok(strategy)
}

/// Cartridge (see [`RolePass::ask_cartridge`]; the answer of this pass
/// when there is one), and the Role's replica sets as it reports them:
/// `Ok(None)` before the Cluster's bootstrap, `Err(why)` when no verified
/// member answered. Without evidence no master is known, so a strategy
/// must not plan: it could take a master for a replica.
async fn topology_facts(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
    fresh: bool,
) -> Result<Option<(Arc<dyn Topology>, Vec<ReplicasetInfo>)>, String> {
    if fresh || pass.cartridge.answer().is_none() {
        pass.cartridge = pass.ask_cartridge(ctx, snap).await;
    }
    let answer = match &pass.cartridge {
        CartridgeView::NotBootstrapped => return Ok(None),
        CartridgeView::Answered(answer) => answer,
        other => return Err(other.why_unknown()),
    };
    let replicasets = answer
        .replicasets
        .iter()
        .filter(|r| pass.desired.wants(&r.alias))
        .cloned()
        .collect();
    Ok(Some((answer.client.clone(), replicasets)))
}

/// The rolling-update step.
pub(crate) async fn rolling_update(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let names = pass.desired.statefulsets.clone();
    let replicas = pass.desired.replicas;
    let revision = pass.desired.revision.clone();
    let strategy_name = pass.role.spec.update_strategy.name.clone();
    let now_built = view::build(&view::Inputs {
        role: &pass.name,
        statefulsets: &names,
        observed: &snap.statefulsets,
        pods: &snap.pods,
        replicas,
        topology: None,
        params: &pass.role.spec.update_strategy.params,
        max_unavailable: 1,
        now: pass.now,
        state: None,
    });
    let outdated_now = now_built.outdated;
    let unready = now_built
        .view
        .replicasets
        .iter()
        .flat_map(|rs| &rs.pods)
        .filter(|p| !p.ready)
        .count();
    let windows = pass
        .role
        .spec
        .update_strategy
        .windows()
        .map_err(|e| Error::InvalidSpec {
            kind: "Role",
            name: pass.name.clone(),
            message: e.to_string(),
        })?;
    let rollout_now = pass
        .role
        .annotations()
        .get(labels::ROLLOUT_NOW)
        .is_some_and(|v| v == "true");
    let step = state::next(&state::Facts {
        revision: &revision,
        recorded: pass.status.update.as_ref(),
        stale: now_built.stale,
        outdated: outdated_now,
        unready,
        paused: pass.role.spec.update_strategy.paused == Some(true),
        window: maintenance::standing(&windows, pass.now.as_second()),
        rollout_now,
    });
    let total = names.len() * replicas as usize;
    match step {
        state::Step::Idle => return Ok(Flow::Next),
        state::Step::AwaitReturn { pods } => {
            return Ok(Flow::wait(
                Reason::Updating,
                format!("waiting for {pods} pods to come back"),
                ctx.settings.poll,
            ));
        }
        state::Step::Finish => {
            if let Some(update) = pass.status.update.as_mut() {
                update.done = true;
                update.updated_pods = update.total_pods;
                update.message = Some("every pod runs the current template".into());
            }
            ctx.pins.release(&pass.namespace, &pass.name);
            events::normal(
                ctx,
                pass.role.as_ref(),
                Reason::UpdateFinished,
                format!("rollout {revision} finished"),
            )
            .await;
            return Ok(Flow::Next);
        }
        state::Step::RecordSettled => {
            let total = i32::try_from(total).unwrap_or(i32::MAX);
            pass.status.update = Some(UpdateProgress {
                strategy: strategy_name,
                revision: Some(revision),
                updated_pods: total,
                total_pods: total,
                done: true,
                ..UpdateProgress::default()
            });
            ctx.pins.release(&pass.namespace, &pass.name);
            return Ok(Flow::Next);
        }
        state::Step::OutsideWindow { opens_at } => {
            return Ok(outside_window(pass, outdated_now, opens_at));
        }
        state::Step::Start { forced, .. } => {
            if forced {
                // One annotation, one rollout: the next waits for its window.
                execute::consume_annotation(
                    ctx,
                    pass.role.as_ref(),
                    &pass.namespace,
                    labels::ROLLOUT_NOW,
                    "true",
                )
                .await?;
            }
            // A new rollout: the strategy starts from a clean state.
            pass.status.update = Some(UpdateProgress {
                strategy: strategy_name.clone(),
                revision: Some(revision.clone()),
                ..UpdateProgress::default()
            });
            events::normal(
                ctx,
                pass.role.as_ref(),
                Reason::UpdateStarted,
                if forced {
                    format!(
                        "{outdated_now} pods to update with {strategy_name}, outside the maintenance windows ({}=true, now removed)",
                        labels::ROLLOUT_NOW
                    )
                } else {
                    format!("{outdated_now} pods to update with {strategy_name}")
                },
            )
            .await;
        }
        state::Step::Pause | state::Step::Roll => {}
    }
    if matches!(
        step,
        state::Step::Pause | state::Step::Start { paused: true, .. }
    ) {
        let message = format!(
            "paused (spec.updateStrategy.paused): {outdated_now} of {total} pods still to update"
        );
        let preview = paused_preview(ctx, pass, &revision, &now_built).await?;
        if let Some(update) = pass.status.update.as_mut() {
            update.total_pods = i32::try_from(total).unwrap_or(i32::MAX);
            update.updated_pods = i32::try_from(total - outdated_now).unwrap_or(i32::MAX);
            update.message = Some(message.clone());
            update.preview = preview;
        }
        return Ok(Flow::wait_for_event(Reason::Paused, message));
    }
    // The preview is for a paused rollout only.
    if let Some(update) = pass.status.update.as_mut() {
        update.preview = None;
    }
    let strategy = strategy_for(ctx, pass, &revision).await?;
    let facts = match topology_facts(ctx, snap, pass, false).await {
        Ok(facts) => facts,
        Err(why) => return Ok(unknown(ctx, &why)),
    };
    let mut round = plan_and_execute(ctx, snap, pass, &strategy, &revision, facts).await?;
    if !round.executed.switched.is_empty() && round.executed.deferred.is_none() {
        // A master moved: plan once more on fresh topology facts, so that
        // the old master goes in this pass rather than in the next one. The
        // pods just deleted count as going: they hold the budget.
        let after = snap.with_deleted(&round.executed.deleted, &Time(Timestamp::now()));
        match topology_facts(ctx, &after, pass, true).await {
            Ok(facts) => {
                round = plan_and_execute(ctx, &after, pass, &strategy, &revision, facts).await?;
            }
            Err(why) => return Ok(unknown(ctx, &why)),
        }
    }
    let (built, decision, executed) = (round.built, round.decision, round.executed);
    if let Some(why) = executed.deferred {
        // A hand-over under way (or the StatefulSet controller catching up
        // with a template) is over within seconds: looked at every second at
        // most (a switch's write-unavailable time is measured so).
        let after = if why.is_brief() {
            ctx.settings.poll.min(std::time::Duration::from_secs(1))
        } else {
            ctx.settings.poll
        };
        let reason = match why {
            // Not a switch: the update waits for the StatefulSet controller
            // (whose status change wakes the Role).
            execute::Deferral::TemplateNotObserved { .. } => Reason::Updating,
            _ => Reason::SwitchDeferred,
        };
        return Ok(Flow::wait(reason, why.to_string(), after));
    }
    let after = match executed.wait {
        Some(s) => std::time::Duration::from_secs(u64::from(s)).min(ctx.settings.poll * 5),
        // Nothing done, and every replica set left waits for a pod: its
        // events wake the Role; the look-again is only a safety net.
        None if executed.deleted.is_empty()
            && executed.switched.is_empty()
            && built.waits_on_pods() =>
        {
            ctx.settings.poll * 5
        }
        None => ctx.settings.poll,
    };
    Ok(Flow::wait(
        Reason::Updating,
        format!(
            "{}/{} pods updated: {}",
            built.total - built.outdated,
            built.total,
            decision.message
        ),
        after,
    ))
}

/// The preview of a paused rollout (`status.update.preview`): the one
/// recorded while what it was computed from is unchanged (no plan, no
/// write), else simulated anew with masters and weights as the status
/// records them (no console call).
async fn paused_preview(
    ctx: &Context,
    pass: &RolePass,
    revision: &str,
    built: &view::Built,
) -> Result<Option<crate::api::role::RolloutPreview>, Error> {
    let mut described = preview::describe(
        &view::Built {
            view: strategy_sdk::RoleView {
                max_unavailable: param(pass, MAX_UNAVAILABLE, 1u32).max(1),
                ..built.view.clone()
            },
            ..built.clone()
        },
        false,
    );
    preview::with_recorded(&mut described, &pass.status.replicasets);
    let strategy_name = &pass.role.spec.update_strategy.name;
    let key = preview::key(strategy_name, revision, &described);
    let recorded = pass
        .status
        .update
        .as_ref()
        .and_then(|u| u.preview.clone())
        .filter(|p| p.key == key);
    if recorded.is_some() {
        return Ok(recorded);
    }
    let strategy = strategy_for(ctx, pass, revision).await?;
    let report = preview::simulate(strategy.as_ref(), &described)?;
    Ok(Some(preview::to_status(key, &report)))
}

/// A rollout pending outside every maintenance window: the pass says when
/// the next opens and comes back then.
fn outside_window(pass: &RolePass, outdated: usize, opens_at: i64) -> Flow {
    let when =
        Timestamp::from_second(opens_at).map_or_else(|_| opens_at.to_string(), |t| t.to_string());
    let wait = u64::try_from(opens_at - pass.now.as_second())
        .unwrap_or(0)
        .max(1);
    Flow::wait(
        Reason::OutsideMaintenanceWindow,
        format!(
            "{outdated} pods to update; the rollout starts when the next maintenance window opens at {when} (or now with: kubectl annotate -n {} roles.tarantool.io {} {}=true)",
            pass.namespace,
            pass.name,
            labels::ROLLOUT_NOW
        ),
        std::time::Duration::from_secs(wait),
    )
}

/// The rollout waits while Cartridge gives no evidence.
fn unknown(ctx: &Context, why: &str) -> Flow {
    Flow::wait(
        Reason::CartridgeUnknown,
        format!("no verified answer from Cartridge, so no master is known: {why}"),
        ctx.settings.poll,
    )
}

/// One plan of a pass: what the strategy saw, decided, and what was done.
struct Round {
    built: view::Built,
    decision: strategy_sdk::Decision,
    executed: Executed,
}

/// Builds the view from what the pass observed and fresh topology facts,
/// asks the strategy, checks its decision, carries it out and records it.
async fn plan_and_execute(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
    strategy: &Arc<WasmStrategy>,
    revision: &str,
    facts: Option<(Arc<dyn Topology>, Vec<ReplicasetInfo>)>,
) -> Result<Round, Error> {
    let names = pass.desired.statefulsets.clone();
    let replicas = pass.desired.replicas;
    let strategy_name = pass.role.spec.update_strategy.name.clone();
    let (topology, replicasets) = match facts {
        Some((topology, replicasets)) => (Some(topology), replicasets),
        None => (None, Vec::new()),
    };
    let now = Timestamp::now();
    let built = view::build(&view::Inputs {
        role: &pass.name,
        statefulsets: &names,
        observed: &snap.statefulsets,
        pods: &snap.pods,
        replicas,
        topology: topology.as_ref().map(|_| replicasets.as_slice()),
        params: &pass.role.spec.update_strategy.params,
        max_unavailable: param(pass, MAX_UNAVAILABLE, 1u32).max(1),
        now,
        state: pass.status.update.as_ref().and_then(|u| u.state.clone()),
    });
    stuck_check(pass, &built)?;
    // Off the async runtime: a strategy may use its whole CPU budget (and
    // wait for a call slot), which must not stall watches or the Lease.
    let owner = format!("{}/{}", pass.namespace, pass.name);
    let (plan_strategy, view) = (strategy.clone(), built.view.clone());
    let started = std::time::Instant::now();
    let planned =
        tokio::task::spawn_blocking(move || plan_strategy.plan_as(Caller::Owner(&owner), &view))
            .await;
    ctx.metrics
        .strategy_plan
        .observe(started.elapsed().as_secs_f64());
    let (decision, log) = planned
        .map_err(StrategyError::LoadLost)?
        .map_err(StrategyError::from)?;
    for (level, line) in &log.lines {
        match level {
            LogLevel::Error | LogLevel::Warn => {
                info!(role = %pass.name, strategy = %strategy_name, "{line}")
            }
            _ => debug!(role = %pass.name, strategy = %strategy_name, "{line}"),
        }
    }
    if let Err(refusal) = guard::check(&built.view, &decision) {
        ctx.metrics.refused(refusal.reason());
        events::warning(
            ctx,
            pass.role.as_ref(),
            refusal.reason(),
            refusal.to_string(),
        )
        .await;
        return Err(StrategyError::from(refusal).into());
    }
    // A switch is recorded before it is sent: an operator restarted while
    // Cartridge still reports the old master knows which pods wait.
    let planned = execute::planned_switches(
        pass.role.as_ref(),
        &pass.namespace,
        &built,
        &decision.actions,
        &switching(pass, topology.as_ref(), &replicasets),
    );
    pass.record_switches_before_sending(ctx, &planned).await?;
    let executed = execute::execute(
        ctx,
        pass.role.as_ref(),
        &pass.namespace,
        &built,
        &decision.actions,
        &switching(pass, topology.as_ref(), &replicasets),
    )
    .await?;
    for switched in &executed.switched {
        if let Some(started) = &switched.started {
            super::switchover::record(&mut pass.status.replicasets, &switched.replicaset, started);
        }
    }
    record(
        ctx, pass, strategy, revision, &built, &decision, &executed, now,
    )
    .await;
    Ok(Round {
        built,
        decision,
        executed,
    })
}

/// What the host's switches depend on in this pass (the status as it
/// stands: a switch recorded before it is sent counts).
fn switching<'a>(
    pass: &'a RolePass,
    topology: Option<&'a Arc<dyn Topology>>,
    replicasets: &'a [ReplicasetInfo],
) -> Switching<'a> {
    Switching {
        topology,
        replicasets,
        max_lag_seconds: param(pass, MAX_REPLICATION_LAG, 1.0f64),
        supervised: pass.role.spec.update_strategy.supervised == Some(true),
        switches: &pass.status.replicasets,
    }
}

/// Pauses the update when an updated pod stays unready past the deadline:
/// deleting more pods would only make it worse.
fn stuck_check(pass: &RolePass, built: &view::Built) -> Result<(), Error> {
    let deadline: u32 = param(pass, PROGRESS_DEADLINE, 600u32);
    for rs in &built.view.replicasets {
        for pod in &rs.pods {
            if pod.updated && !pod.ready && !pod.terminating && pod.age_seconds > deadline {
                return Err(StrategyError::Stuck {
                    replicaset: rs.name.clone(),
                    ordinal: pod.ordinal,
                    age_seconds: pod.age_seconds,
                    deadline,
                }
                .into());
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record(
    ctx: &Context,
    pass: &mut RolePass,
    strategy: &WasmStrategy,
    revision: &str,
    built: &view::Built,
    decision: &strategy_sdk::Decision,
    executed: &Executed,
    now: Timestamp,
) {
    let message = executed
        .deferred
        .as_ref()
        .map_or_else(|| decision.message.clone(), ToString::to_string);
    let previous = pass.status.update.as_ref().and_then(|u| u.message.clone());
    if previous.as_deref() != Some(message.as_str()) && !message.is_empty() {
        events::distinct(ctx, pass.role.as_ref(), Reason::UpdateStep, message.clone()).await;
    }
    let update = pass
        .status
        .update
        .get_or_insert_with(UpdateProgress::default);
    update.strategy = pass.role.spec.update_strategy.name.clone();
    update.revision = Some(revision.to_string());
    update.component = Some(strategy.digest().hex());
    update.updated_pods = i32::try_from(built.total - built.outdated).unwrap_or(i32::MAX);
    update.total_pods = i32::try_from(built.total).unwrap_or(i32::MAX);
    // The plan time moves only when the plan did something or changed: a
    // status write per pass would patch the apiserver for nothing (and wake
    // the Cluster that lists the Role).
    let acted = !executed.deleted.is_empty() || !executed.switched.is_empty();
    if acted
        || update.message.as_deref() != Some(message.as_str())
        || update.state != decision.state
    {
        update.last_plan_time = Some(Time(now));
    }
    update.message = Some(message);
    update.state = decision.state.clone();
    update.done = false;
}
