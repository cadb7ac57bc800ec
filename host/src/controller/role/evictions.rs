//! The Role's side of the eviction webhook (`crate::webhook`): a pod whose
//! eviction was denied because it is its replica set's master carries two
//! annotations, written by whichever operator replica served the denial:
//! [`DENIED_SINCE`] (the first denial) and [`HAND_OVER_UNTIL`] (the first
//! denial plus `--eviction-max-wait-seconds`). Annotations on the pod, not
//! memory: any replica may serve the next call (the Service balances), the
//! leader is the one that acts, and a restarted operator still counts the
//! bound from the first denial; the annotations go with the pod once it is
//! evicted.
//!
//! While a request is live (before its deadline), each pass asks Cartridge
//! (so the status names the current master, which is what the webhook
//! admits on) and [`decide`]s a hand-over for every replica set whose
//! master is a requested pod: a switch to a healthy, caught-up replica that
//! is neither requested nor unavailable, recorded in the status before it
//! is sent (as scaling and rollouts do), through the same `switch_master`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::RolePass;
use super::observe::Snapshot;
use crate::api::Reason;
use crate::api::role::MasterSwitch;
use crate::controller::pipeline::Flow;
use crate::controller::{Context, Error, events, members};
use crate::topology::ReplicasetInfo;

/// Pod annotation: when the first eviction of the pod was denied (RFC 3339).
pub(crate) const DENIED_SINCE: &str = "tarantool.io/eviction-denied-since";
/// Pod annotation: until when the operator moves the master away from the
/// pod for its eviction (RFC 3339): the first denial plus the bound.
pub(crate) const HAND_OVER_UNTIL: &str = "tarantool.io/eviction-hand-over-until";

/// Pods with a live hand-over request at `now`.
pub(crate) fn requested(pods: &[Pod], now: Timestamp) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| {
            p.annotations()
                .get(HAND_OVER_UNTIL)
                .and_then(|t| t.parse::<Timestamp>().ok())
                .is_some_and(|until| now < until)
        })
        .map(ResourceExt::name_any)
        .collect()
}

/// One hand-over step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HandOver {
    /// Make `to` (UUID; pod `to_alias`) master of `replicaset`.
    Switch {
        /// The replica set as the verified member reported it.
        replicaset: ReplicasetInfo,
        /// The new master's UUID.
        to: String,
        /// Its pod.
        to_alias: String,
    },
    /// No instance can take over from `master` now (the webhook keeps
    /// denying until one can, or until the bound).
    NoCandidate {
        /// The replica set's alias.
        replicaset: String,
        /// The requested master.
        master: String,
    },
}

/// The hand-overs for `requested` pods: for each replica set whose master
/// is requested, the first server that is healthy, replicating, at most
/// `max_lag` seconds behind, not requested itself and whose pod is not in
/// `unavailable`.
pub(crate) fn decide(
    requested: &BTreeSet<String>,
    unavailable: &BTreeSet<String>,
    topology: &[ReplicasetInfo],
    max_lag: f64,
) -> Vec<HandOver> {
    let mut steps = Vec::new();
    for info in topology {
        let Some(master) = info.master_alias().filter(|m| requested.contains(*m)) else {
            continue;
        };
        let candidate = info.servers.iter().find(|s| {
            s.alias != master
                && !requested.contains(&s.alias)
                && !unavailable.contains(&s.alias)
                && s.healthy
                && s.replicating
                && s.replication_lag.unwrap_or(0.0) <= max_lag
        });
        steps.push(match candidate {
            Some(next) => HandOver::Switch {
                replicaset: info.clone(),
                to: next.uuid.clone(),
                to_alias: next.alias.clone(),
            },
            None => HandOver::NoCandidate {
                replicaset: info.alias.clone(),
                master: master.to_string(),
            },
        });
    }
    steps
}

/// The switches among `steps`, as the status records them before they are
/// sent.
fn planned(steps: &[HandOver], now: &Time) -> Vec<(String, MasterSwitch)> {
    steps
        .iter()
        .filter_map(|step| match step {
            HandOver::Switch {
                replicaset,
                to_alias,
                ..
            } => Some(super::switchover::planned(replicaset, to_alias, now)),
            HandOver::NoCandidate { .. } => None,
        })
        .collect()
}

/// The HandOverEvictions step: moves masters away from pods whose eviction
/// waits for it. Ends the pass (looked at again after `--poll-seconds`)
/// when it sent a switch.
pub(crate) async fn hand_over_evictions(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut RolePass,
) -> Result<Flow, Error> {
    let requested = requested(&snap.pods, pass.now);
    if requested.is_empty() {
        return Ok(Flow::Next);
    }
    if pass.cartridge.answer().is_none() {
        pass.cartridge = pass.ask_cartridge(ctx, snap).await;
    }
    let Some(answer) = pass.cartridge.answer().cloned() else {
        // No verified view: no master is known, nothing is switched; the
        // webhook keeps denying until the bound.
        return Ok(Flow::Next);
    };
    let unavailable: BTreeSet<String> = snap
        .pods
        .iter()
        .filter(|p| !members::is_ready(p))
        .map(ResourceExt::name_any)
        .collect();
    let max_lag = super::rollout::param(pass, super::rollout::MAX_REPLICATION_LAG, 1.0f64);
    let steps = decide(&requested, &unavailable, &answer.replicasets, max_lag);
    if steps.is_empty() {
        return Ok(Flow::Next);
    }
    let planned = planned(&steps, &Time(Timestamp::now()));
    pass.record_switches_before_sending(ctx, &planned).await?;
    let mut sent = Vec::new();
    for step in &steps {
        match step {
            HandOver::Switch {
                replicaset,
                to,
                to_alias,
            } => {
                let from = replicaset.master_alias().unwrap_or("").to_string();
                events::normal(
                    ctx,
                    pass.role.as_ref(),
                    Reason::EvictionHandOver,
                    format!(
                        "replica set {}: {from} is being evicted; moving its master to {to_alias}",
                        replicaset.alias
                    ),
                )
                .await;
                let switch = super::rollout::execute::switch_master(
                    ctx,
                    pass.role.as_ref(),
                    answer.client.as_ref(),
                    replicaset,
                    to,
                    to_alias,
                )
                .await?;
                super::switchover::record(&mut pass.status.replicasets, &replicaset.alias, &switch);
                sent.push(format!("{} ({from} -> {to_alias})", replicaset.alias));
            }
            HandOver::NoCandidate { replicaset, master } => {
                events::warning(
                    ctx,
                    pass.role.as_ref(),
                    Reason::EvictionNoCandidate,
                    format!(
                        "replica set {replicaset}: {master} is being evicted, but no healthy, caught-up replica can take over; the eviction waits (bounded)"
                    ),
                )
                .await;
            }
        }
    }
    if sent.is_empty() {
        return Ok(Flow::Next);
    }
    // What Cartridge said is stale now.
    pass.cartridge = super::cartridge::CartridgeView::NotAsked;
    Ok(Flow::wait(
        Reason::EvictionHandOver,
        format!(
            "moving masters away from pods being evicted: {}",
            sent.join(", ")
        ),
        ctx.settings.poll,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::ServerInfo;

    fn server(alias: &str, healthy: bool, lag: Option<f64>) -> ServerInfo {
        ServerInfo {
            uuid: format!("u-{alias}"),
            alias: alias.into(),
            healthy,
            replicating: true,
            replication_lag: lag,
            ..ServerInfo::default()
        }
    }

    fn rs(alias: &str, master: &str, servers: Vec<ServerInfo>) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: format!("rs-{alias}"),
            alias: alias.into(),
            master: Some(format!("u-{master}")),
            servers,
            ..ReplicasetInfo::default()
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pod(name: &str, until: Option<&str>) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        if let Some(until) = until {
            pod.metadata.annotations = Some(
                [(HAND_OVER_UNTIL.to_string(), until.to_string())]
                    .into_iter()
                    .collect(),
            );
        }
        pod
    }

    #[test]
    fn only_live_requests_count() {
        let now: Timestamp = "2026-01-01T12:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let pods = vec![
            pod("live", Some("2026-01-01T12:05:00Z")),
            pod("expired", Some("2026-01-01T11:59:59Z")),
            pod("garbled", Some("soon")),
            pod("none", None),
        ];
        assert_eq!(requested(&pods, now), set(&["live"]));
    }

    /// (case, requested, unavailable, topology, expected)
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        Vec<ReplicasetInfo>,
        Vec<HandOver>,
    );

    #[test]
    fn a_requested_master_goes_to_a_healthy_caught_up_replica_that_stays() {
        let three = |lag1, healthy2| {
            vec![
                server("s-0", true, None),
                server("s-1", true, lag1),
                server("s-2", healthy2, Some(0.1)),
            ]
        };
        let switch = |to: &str| HandOver::Switch {
            replicaset: rs("rs", "s-0", three(Some(0.1), true)),
            to: format!("u-{to}"),
            to_alias: to.into(),
        };
        let none = HandOver::NoCandidate {
            replicaset: "rs".into(),
            master: "s-0".into(),
        };
        // (case, requested, unavailable, topology, expected)
        let cases: Vec<Case> = vec![
            (
                "nothing requested",
                &[],
                &[],
                vec![rs("rs", "s-0", three(Some(0.1), true))],
                vec![],
            ),
            (
                "a replica requested: nothing to move",
                &["s-1"],
                &[],
                vec![rs("rs", "s-0", three(Some(0.1), true))],
                vec![],
            ),
            (
                "the master requested",
                &["s-0"],
                &[],
                vec![rs("rs", "s-0", three(Some(0.1), true))],
                vec![switch("s-1")],
            ),
            (
                "a lagging replica is passed over",
                &["s-0"],
                &[],
                vec![rs("rs", "s-0", three(Some(5.0), true))],
                vec![HandOver::Switch {
                    replicaset: rs("rs", "s-0", three(Some(5.0), true)),
                    to: "u-s-2".into(),
                    to_alias: "s-2".into(),
                }],
            ),
            (
                "a replica being evicted too is passed over",
                &["s-0", "s-1"],
                &[],
                vec![rs("rs", "s-0", three(Some(0.1), true))],
                vec![switch("s-2")],
            ),
            (
                "an unready pod is passed over",
                &["s-0"],
                &["s-1"],
                vec![rs("rs", "s-0", three(Some(0.1), true))],
                vec![switch("s-2")],
            ),
            (
                "no one fit",
                &["s-0"],
                &["s-1"],
                vec![rs("rs", "s-0", three(Some(0.1), false))],
                vec![none],
            ),
        ];
        for (case, requested, unavailable, topology, expected) in cases {
            let mut got = decide(&set(requested), &set(unavailable), &topology, 1.0);
            // The replica set in a switch is the one reported: compare
            // targets only.
            for step in &mut got {
                if let HandOver::Switch { replicaset, .. } = step
                    && let Some(HandOver::Switch {
                        replicaset: want, ..
                    }) = expected.first()
                {
                    assert_eq!(replicaset.alias, want.alias, "{case}");
                    *replicaset = want.clone();
                }
            }
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn a_switch_is_recorded_from_the_master_cartridge_names() {
        let info = rs(
            "rs",
            "s-0",
            vec![server("s-0", true, None), server("s-1", true, Some(0.0))],
        );
        let steps = decide(&set(&["s-0"]), &set(&[]), &[info], 1.0);
        let now = Time(Timestamp::UNIX_EPOCH);
        let planned = planned(&steps, &now);
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].0, "rs");
        assert_eq!(
            (planned[0].1.from.as_str(), planned[0].1.to.as_str()),
            ("s-0", "s-1")
        );
        assert_eq!(planned[0].1.writable_at, None);
    }
}
