//! Views built by hand, for strategy unit tests (the SDK's and authors').

use crate::{Pod, ReplicaSet, RoleView};

impl RoleView {
    /// A Role `r` with `replicasets` replica sets `r-0`, `r-1`, ... of
    /// `replicas` pods each: every pod outdated, ready and healthy, pod 0 the
    /// master, a budget of one unavailable pod per replica set, no params.
    pub fn sample(replicasets: u32, replicas: u32) -> RoleView {
        RoleView {
            role: "r".into(),
            params: Vec::new(),
            max_unavailable: 1,
            replicasets: (0..replicasets)
                .map(|r| ReplicaSet {
                    name: format!("r-{r}"),
                    weight: 1.0,
                    holds_data: true,
                    desired_replicas: replicas,
                    pods: (0..replicas)
                        .map(|ordinal| Pod {
                            ordinal,
                            ready: true,
                            healthy: true,
                            master: ordinal == 0,
                            ..Pod::default()
                        })
                        .collect(),
                })
                .collect(),
            now_unix: 1_700_000_000,
            state: None,
        }
    }

    /// Pod `pod` of replica set `replicaset`, to adjust a sample.
    ///
    /// # Panics
    /// When either index is out of range: it is meant for tests.
    pub fn pod_mut(&mut self, replicaset: usize, pod: usize) -> &mut Pod {
        &mut self.replicasets[replicaset].pods[pod]
    }

    /// Sets a param (replacing an existing value), keeping params sorted by
    /// key as the host does.
    pub fn set_param(&mut self, key: &str, value: &str) {
        self.params.retain(|(k, _)| k != key);
        self.params.push((key.into(), value.into()));
        self.params.sort();
    }
}
