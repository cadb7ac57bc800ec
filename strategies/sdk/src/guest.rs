//! The wasm side: WIT bindings and conversions to the SDK's plain types.

/// Bindings generated from `wit/strategy.wit`.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "update-strategy",
        pub_export_macro: true,
        default_bindings_module: "strategy_sdk::guest::bindings",
    });
}

use bindings::tarantool::strategy::types as wit;

use crate::{Action, Decision, Info, LogLevel, Pod, PodRef, ReplicaSet, RoleView};

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Trace => wit::LogLevel::Trace,
        LogLevel::Debug => wit::LogLevel::Debug,
        LogLevel::Info => wit::LogLevel::Info,
        LogLevel::Warn => wit::LogLevel::Warn,
        LogLevel::Error => wit::LogLevel::Error,
    };
    bindings::tarantool::strategy::log::log(level, message);
}

/// Sends panic messages through the `log` import: the sandbox has no stderr.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(
                LogLevel::Error,
                &format!("{}{info}", crate::PANIC_LOG_PREFIX),
            );
        }))
    });
}

/// Rebuilds the SDK's nested view from the flat WIT view.
pub fn view_from_wit(view: wit::RoleView) -> RoleView {
    let mut names = view.replicaset_names.split('\n');
    let replicasets = view
        .replicasets
        .iter()
        .map(|rs| {
            let first = rs.first_pod as usize;
            let pods = view
                .pods
                .get(first..first.saturating_add(rs.pod_count as usize))
                .unwrap_or_default();
            ReplicaSet {
                name: names.next().unwrap_or_default().to_string(),
                weight: rs.weight,
                holds_data: rs.holds_data,
                desired_replicas: rs.desired_replicas,
                pods: pods.iter().map(pod_from_wit).collect(),
            }
        })
        .collect();
    RoleView {
        role: view.role,
        params: view.params,
        max_unavailable: view.max_unavailable,
        replicasets,
        now_unix: view.now_unix,
        state: view.state,
    }
}

fn pod_from_wit(p: &wit::Pod) -> Pod {
    Pod {
        ordinal: p.ordinal,
        updated: p.flags.contains(wit::PodFlags::UPDATED),
        ready: p.flags.contains(wit::PodFlags::READY),
        terminating: p.flags.contains(wit::PodFlags::TERMINATING),
        master: p.flags.contains(wit::PodFlags::MASTER),
        healthy: p.flags.contains(wit::PodFlags::HEALTHY),
        restarts: p.restarts,
        age_seconds: p.age_seconds,
        lag_millis: p.lag_millis,
    }
}

/// Converts the SDK's decision into the WIT type: pod references become
/// indices into the flat pod list of `view` (an invalid reference becomes an
/// invalid index, which the host refuses).
pub fn decision_to_wit(d: Decision, view: &RoleView) -> wit::Decision {
    // Index of each replica set's first pod in the flat list.
    let mut first = Vec::with_capacity(view.replicasets.len());
    let mut total = 0usize;
    for rs in &view.replicasets {
        first.push(total);
        total += rs.pods.len();
    }
    let index = |r: PodRef| -> u32 {
        let r_idx = r.replicaset as usize;
        match (view.replicasets.get(r_idx), first.get(r_idx)) {
            (Some(rs), Some(&start)) if (r.pod as usize) < rs.pods.len() => {
                u32::try_from(start + r.pod as usize).unwrap_or(u32::MAX)
            }
            _ => u32::MAX,
        }
    };
    wit::Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                Action::DeletePod(r) => wit::Action::DeletePod(index(r)),
                Action::SwitchMaster(r) => wit::Action::SwitchMaster(index(r)),
                Action::Wait(s) => wit::Action::Wait(s),
            })
            .collect(),
        state: d.state,
        message: d.message,
        done: d.done,
    }
}

/// Converts the SDK's info into the WIT type.
pub fn info_to_wit(i: Info) -> wit::Info {
    wit::Info {
        name: i.name,
        version: i.version,
        description: i.description,
        params: i
            .params
            .into_iter()
            .map(|p| wit::ParamSpec {
                name: p.name,
                description: p.description,
                default: p.default,
            })
            .collect(),
    }
}
