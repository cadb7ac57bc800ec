//! The WIT boundary: host bindings generated from `wit/strategy.wit` and the
//! conversions between them and the SDK's plain types.

use strategy_sdk as sdk;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "update-strategy",
});

use tarantool::strategy::types as wit;

/// Lowers the SDK view into the WIT view.
pub(crate) fn view_to_wit(view: &sdk::RoleView) -> wit::RoleView {
    wit::RoleView {
        role: view.role.clone(),
        params: view.params.clone(),
        max_unavailable: view.max_unavailable,
        replicasets: view
            .replicasets
            .iter()
            .map(|rs| wit::Replicaset {
                name: rs.name.clone(),
                weight: rs.weight,
                holds_data: rs.holds_data,
                desired_replicas: rs.desired_replicas,
                pods: rs.pods.iter().map(pod_to_wit).collect(),
            })
            .collect(),
        now_unix: view.now_unix,
        state: view.state.clone(),
    }
}

fn pod_to_wit(p: &sdk::Pod) -> wit::Pod {
    let mut flags = wit::PodFlags::empty();
    for (set, flag) in [
        (p.updated, wit::PodFlags::UPDATED),
        (p.ready, wit::PodFlags::READY),
        (p.terminating, wit::PodFlags::TERMINATING),
        (p.master, wit::PodFlags::MASTER),
        (p.healthy, wit::PodFlags::HEALTHY),
    ] {
        if set {
            flags |= flag;
        }
    }
    wit::Pod {
        ordinal: p.ordinal,
        flags,
        restarts: p.restarts,
        age_seconds: p.age_seconds,
        lag_millis: p.lag_millis,
    }
}

fn pod_ref_from_wit(r: wit::PodRef) -> sdk::PodRef {
    sdk::PodRef {
        replicaset: r.replicaset,
        pod: r.pod,
    }
}

/// Lifts a WIT decision into the SDK's decision.
pub(crate) fn decision_from_wit(d: wit::Decision) -> sdk::Decision {
    sdk::Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                wit::Action::DeletePod(r) => sdk::Action::DeletePod(pod_ref_from_wit(r)),
                wit::Action::SwitchMaster(r) => sdk::Action::SwitchMaster(pod_ref_from_wit(r)),
                wit::Action::Wait(s) => sdk::Action::Wait(s),
            })
            .collect(),
        state: d.state,
        message: d.message,
        done: d.done,
    }
}

/// Lifts a WIT info into the SDK's info.
pub(crate) fn info_from_wit(i: wit::Info) -> sdk::Info {
    sdk::Info {
        name: i.name,
        version: i.version,
        description: i.description,
        params: i
            .params
            .into_iter()
            .map(|p| sdk::ParamSpec {
                name: p.name,
                description: p.description,
                default: p.default,
            })
            .collect(),
    }
}

pub(crate) fn log_level_from_wit(level: wit::LogLevel) -> sdk::LogLevel {
    match level {
        wit::LogLevel::Trace => sdk::LogLevel::Trace,
        wit::LogLevel::Debug => sdk::LogLevel::Debug,
        wit::LogLevel::Info => sdk::LogLevel::Info,
        wit::LogLevel::Warn => sdk::LogLevel::Warn,
        wit::LogLevel::Error => sdk::LogLevel::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_flags_survive_the_round_trip() {
        let pod = sdk::Pod {
            ordinal: 2,
            updated: true,
            ready: false,
            terminating: true,
            master: false,
            healthy: true,
            restarts: 3,
            age_seconds: 40,
            lag_millis: 7,
        };
        let w = pod_to_wit(&pod);
        assert!(
            w.flags
                .contains(wit::PodFlags::UPDATED | wit::PodFlags::TERMINATING)
        );
        assert!(w.flags.contains(wit::PodFlags::HEALTHY));
        assert!(
            !w.flags
                .intersects(wit::PodFlags::READY | wit::PodFlags::MASTER)
        );
        assert_eq!(
            (w.ordinal, w.restarts, w.age_seconds, w.lag_millis),
            (2, 3, 40, 7)
        );
    }
}
