//! The WIT boundary: host bindings generated from `wit/strategy.wit` and the
//! conversions between them and the SDK's plain types.

use strategy_sdk as sdk;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "update-strategy",
});

use tarantool::strategy::types as wit;

/// Lowers the SDK view into the flat WIT view.
pub(crate) fn view_to_wit(view: &sdk::RoleView) -> wit::RoleView {
    let pod_count = view.replicasets.iter().map(|rs| rs.pods.len()).sum();
    let mut pods = Vec::with_capacity(pod_count);
    let mut names =
        String::with_capacity(view.replicasets.iter().map(|rs| rs.name.len() + 1).sum());
    let replicasets = view
        .replicasets
        .iter()
        .map(|rs| {
            let first_pod = pods.len() as u32;
            pods.extend(rs.pods.iter().map(pod_to_wit));
            names.push_str(&rs.name);
            names.push('\n');
            wit::Replicaset {
                weight: rs.weight,
                holds_data: rs.holds_data,
                desired_replicas: rs.desired_replicas,
                first_pod,
                pod_count: rs.pods.len() as u32,
            }
        })
        .collect();
    wit::RoleView {
        role: view.role.clone(),
        params: view.params.clone(),
        max_unavailable: view.max_unavailable,
        replicasets,
        replicaset_names: names,
        pods,
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

/// Maps indices into the flat pod list back to [`sdk::PodRef`]s.
struct PodIndex<'v> {
    view: &'v sdk::RoleView,
    /// Flat index of each replica set's first pod.
    starts: Vec<usize>,
}

impl<'v> PodIndex<'v> {
    fn new(view: &'v sdk::RoleView) -> Self {
        let mut starts = Vec::with_capacity(view.replicasets.len());
        let mut total = 0;
        for rs in &view.replicasets {
            starts.push(total);
            total += rs.pods.len();
        }
        Self { view, starts }
    }

    /// An index past the end becomes a reference to a replica set that does
    /// not exist, so the guard refuses it as an unknown pod.
    fn resolve(&self, index: u32) -> sdk::PodRef {
        let i = index as usize;
        // The last replica set starting at or before `i` (empty ones share a
        // start with their successor, so take the last of equal starts).
        let r = self.starts.partition_point(|&start| start <= i);
        if let Some(r) = r.checked_sub(1)
            && i - self.starts[r] < self.view.replicasets[r].pods.len()
        {
            return sdk::PodRef {
                replicaset: r as u32,
                pod: (i - self.starts[r]) as u32,
            };
        }
        sdk::PodRef {
            replicaset: u32::MAX,
            pod: index,
        }
    }
}

/// Lifts a WIT decision into the SDK's decision, resolving pod indices
/// against the `view` the strategy was given.
pub(crate) fn decision_from_wit(d: wit::Decision, view: &sdk::RoleView) -> sdk::Decision {
    let pods = PodIndex::new(view);
    sdk::Decision {
        actions: d
            .actions
            .into_iter()
            .map(|a| match a {
                wit::Action::DeletePod(i) => sdk::Action::DeletePod(pods.resolve(i)),
                wit::Action::SwitchMaster(i) => sdk::Action::SwitchMaster(pods.resolve(i)),
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

    fn view() -> sdk::RoleView {
        let rs = |name: &str, n: u32| sdk::ReplicaSet {
            name: name.into(),
            desired_replicas: n,
            pods: (0..n)
                .map(|ordinal| sdk::Pod {
                    ordinal,
                    ..sdk::Pod::default()
                })
                .collect(),
            ..sdk::ReplicaSet::default()
        };
        sdk::RoleView {
            replicasets: vec![rs("a-0", 2), rs("a-1", 0), rs("a-2", 3)],
            ..sdk::RoleView::default()
        }
    }

    #[test]
    fn the_flat_view_keeps_every_pod_and_name_in_order() {
        let w = view_to_wit(&view());
        assert_eq!(w.replicaset_names, "a-0\na-1\na-2\n");
        assert_eq!(w.pods.len(), 5);
        let spans: Vec<_> = w
            .replicasets
            .iter()
            .map(|r| (r.first_pod, r.pod_count))
            .collect();
        assert_eq!(spans, vec![(0, 2), (2, 0), (2, 3)]);
    }

    #[test]
    fn pod_indices_resolve_across_replica_sets_and_past_the_end() {
        let v = view();
        let index = PodIndex::new(&v);
        let at = |i| index.resolve(i);
        assert_eq!(
            at(1),
            sdk::PodRef {
                replicaset: 0,
                pod: 1
            }
        );
        assert_eq!(
            at(2),
            sdk::PodRef {
                replicaset: 2,
                pod: 0
            }
        );
        assert_eq!(
            at(4),
            sdk::PodRef {
                replicaset: 2,
                pod: 2
            }
        );
        assert_eq!(at(5).replicaset, u32::MAX);
    }

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
