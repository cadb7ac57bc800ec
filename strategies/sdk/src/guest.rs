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

/// Converts the lifted WIT view into the SDK's view, moving strings.
pub fn view_from_wit(view: wit::RoleView) -> RoleView {
    RoleView {
        role: view.role,
        params: view.params,
        max_unavailable: view.max_unavailable,
        replicasets: view
            .replicasets
            .into_iter()
            .map(|rs| ReplicaSet {
                name: rs.name,
                weight: rs.weight,
                holds_data: rs.holds_data,
                desired_replicas: rs.desired_replicas,
                pods: rs
                    .pods
                    .into_iter()
                    .map(|p| Pod {
                        ordinal: p.ordinal,
                        updated: p.flags.contains(wit::PodFlags::UPDATED),
                        ready: p.flags.contains(wit::PodFlags::READY),
                        terminating: p.flags.contains(wit::PodFlags::TERMINATING),
                        master: p.flags.contains(wit::PodFlags::MASTER),
                        healthy: p.flags.contains(wit::PodFlags::HEALTHY),
                        restarts: p.restarts,
                        age_seconds: p.age_seconds,
                        lag_millis: p.lag_millis,
                    })
                    .collect(),
            })
            .collect(),
        now_unix: view.now_unix,
        state: view.state,
    }
}

fn pod_ref_to_wit(r: PodRef) -> wit::PodRef {
    wit::PodRef {
        replicaset: r.replicaset,
        pod: r.pod,
    }
}

/// Converts the SDK's decision into the WIT type for lowering.
pub fn decision_to_wit(d: Decision) -> wit::Decision {
    wit::Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                Action::DeletePod(r) => wit::Action::DeletePod(pod_ref_to_wit(r)),
                Action::SwitchMaster(r) => wit::Action::SwitchMaster(pod_ref_to_wit(r)),
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
