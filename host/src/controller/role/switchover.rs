//! How long a master switch left a replica set without a writable
//! instance. A switch is recorded in the replica set's status when the
//! operator sends it ([`started`]); it completes at the first verified
//! answer in which the new master reports itself writable and the old one
//! read-only ([`observe`]). The interval between the two is an upper bound
//! of the write-unavailable time: before the switch the old master took
//! writes, and the operator looks again at most a second later while a
//! switch is under way.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Reason;
use crate::api::role::{MasterSwitch, ReplicasetStatus, Role};
use crate::controller::{Context, events};
use crate::topology::ReplicasetInfo;

/// A switch of `from` to `to`, sent at `now`.
pub(crate) fn started(from: &str, to: &str, now: Time) -> MasterSwitch {
    MasterSwitch {
        from: from.to_string(),
        to: to.to_string(),
        requested_at: now,
        writable_at: None,
        write_unavailable_seconds: None,
    }
}

/// A switch of `replicaset` (as Cartridge reported it) to pod `to`, as the
/// status records it before it is sent: (replica set, switch) from the
/// master Cartridge names.
pub(crate) fn planned(replicaset: &ReplicasetInfo, to: &str, now: &Time) -> (String, MasterSwitch) {
    (
        replicaset.alias.clone(),
        started(replicaset.master_alias().unwrap_or(""), to, now.clone()),
    )
}

/// Records `switch` as the last one of replica set `replicaset`.
pub(crate) fn record(records: &mut [ReplicasetStatus], replicaset: &str, switch: &MasterSwitch) {
    if let Some(entry) = records.iter_mut().find(|r| r.name == replicaset) {
        entry.switch = Some(switch.clone());
    }
}

/// The switch, completed at `now`, when `info` (a verified answer) shows it
/// done: `to` is master and does not report `ro=true`, and `from` does not
/// report `ro=false` (the rule the hand-over check of a deletion follows;
/// a flag not reported holds nothing back). Replica sets where every
/// instance is writable are done as soon as `to` leads.
pub(crate) fn observe(
    switch: &MasterSwitch,
    info: &ReplicasetInfo,
    now: &Time,
) -> Option<MasterSwitch> {
    if switch.writable_at.is_some() || info.master_alias() != Some(switch.to.as_str()) {
        return None;
    }
    let to = info.server_by_alias(&switch.to)?;
    let handed_over = info.all_rw
        || (to.read_only != Some(true)
            && info
                .server_by_alias(&switch.from)
                .is_none_or(|from| from.read_only != Some(false)));
    if !handed_over {
        return None;
    }
    let seconds = now
        .0
        .duration_since(switch.requested_at.0)
        .as_secs_f64()
        .max(0.0);
    Some(MasterSwitch {
        writable_at: Some(now.clone()),
        write_unavailable_seconds: Some((seconds * 1000.0).round() / 1000.0),
        ..switch.clone()
    })
}

/// Reports a completed switch: an Event and the histogram.
pub(crate) async fn report(ctx: &Context, role: &Role, replicaset: &str, switch: &MasterSwitch) {
    let Some(seconds) = switch.write_unavailable_seconds else {
        return;
    };
    ctx.metrics.switch_write_unavailable.observe(seconds);
    events::distinct(
        ctx,
        role,
        Reason::MasterWritable,
        format!(
            "replica set {replicaset}: {} writable {seconds:.3}s after the switch from {} was sent (writes unavailable at most that long)",
            switch.to, switch.from
        ),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::topology::ServerInfo;

    fn at(ms: i64) -> Time {
        Time(Timestamp::UNIX_EPOCH + SignedDuration::from_millis(1_700_000_000_000 + ms))
    }

    fn server(alias: &str, ro: Option<bool>) -> ServerInfo {
        ServerInfo {
            uuid: format!("u-{alias}"),
            alias: alias.into(),
            healthy: true,
            replicating: true,
            read_only: ro,
            ..ServerInfo::default()
        }
    }

    fn replicaset(master: &str, servers: Vec<ServerInfo>, all_rw: bool) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: "rs".into(),
            alias: "storage-0".into(),
            master: Some(format!("u-{master}")),
            servers,
            all_rw,
            ..ReplicasetInfo::default()
        }
    }

    #[test]
    fn a_switch_completes_only_on_a_confirmed_hand_over() {
        let switch = started("s-0", "s-1", at(0));
        // (case, answer, completed after)
        let cases: Vec<(&str, ReplicasetInfo, Option<f64>)> = vec![
            (
                "new master writable, old read-only",
                replicaset(
                    "s-1",
                    vec![server("s-0", Some(true)), server("s-1", Some(false))],
                    false,
                ),
                Some(0.42),
            ),
            (
                "old master gone from the answer",
                replicaset("s-1", vec![server("s-1", Some(false))], false),
                Some(0.42),
            ),
            (
                "Cartridge still routes writes to the old master",
                replicaset(
                    "s-0",
                    vec![server("s-0", Some(true)), server("s-1", Some(false))],
                    false,
                ),
                None,
            ),
            (
                "new master not writable yet",
                replicaset(
                    "s-1",
                    vec![server("s-0", Some(true)), server("s-1", Some(true))],
                    false,
                ),
                None,
            ),
            (
                "old master still writable",
                replicaset(
                    "s-1",
                    vec![server("s-0", Some(false)), server("s-1", Some(false))],
                    false,
                ),
                None,
            ),
            (
                "flags not reported: nothing holds it back",
                replicaset("s-1", vec![server("s-0", None), server("s-1", None)], false),
                Some(0.42),
            ),
            (
                "every instance writable: done once it leads",
                replicaset(
                    "s-1",
                    vec![server("s-0", Some(false)), server("s-1", Some(false))],
                    true,
                ),
                Some(0.42),
            ),
        ];
        for (case, info, expected) in cases {
            let done = observe(&switch, &info, &at(420));
            assert_eq!(
                done.as_ref().and_then(|d| d.write_unavailable_seconds),
                expected,
                "{case}"
            );
            if let Some(done) = done {
                assert_eq!(done.writable_at, Some(at(420)), "{case}");
                assert_eq!((done.from.as_str(), done.to.as_str()), ("s-0", "s-1"));
            }
        }
    }

    #[test]
    fn a_completed_switch_is_not_measured_again() {
        let info = replicaset(
            "s-1",
            vec![server("s-0", Some(true)), server("s-1", Some(false))],
            false,
        );
        let done = observe(&started("s-0", "s-1", at(0)), &info, &at(300));
        let Some(done) = done else {
            panic!("the switch completes");
        };
        assert_eq!(observe(&done, &info, &at(900)), None);
    }

    #[test]
    fn a_clock_step_back_gives_zero_not_a_negative_interval() {
        let info = replicaset(
            "s-1",
            vec![server("s-0", Some(true)), server("s-1", Some(false))],
            false,
        );
        let done = observe(&started("s-0", "s-1", at(500)), &info, &at(100));
        assert_eq!(done.and_then(|d| d.write_unavailable_seconds), Some(0.0));
    }
}
