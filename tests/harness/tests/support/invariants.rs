//! An invariant watcher over the real Cartridge double: it follows every
//! pod of the namespace and, at each deletion, asks Cartridge over exec
//! (through another ready instance) whether the deleted pod was a master.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::watcher;
use tarantool_operator::console::ConsoleOptions;
use tarantool_operator::resources::labels;
use tarantool_operator::topology::cartridge::ExecConnector;
use tarantool_operator::topology::{Connector, InstanceTarget};
use test_harness::TestContext;

use super::scenario::ready;

/// What the watcher saw go wrong.
#[derive(Debug, Default)]
pub struct Violations {
    /// Moments a replica set had more than one pod unavailable.
    pub budget: Vec<String>,
    /// Masters deleted while other members were ready.
    pub master_deleted: Vec<String>,
    /// Pod deletions seen.
    pub deletions: usize,
}

/// Watches pods; on every deletion asks Cartridge (through another ready
/// instance, over exec) whether the deleted pod is a master.
pub fn watch(t: &TestContext, replicas: usize) -> Arc<Mutex<Violations>> {
    let out = Arc::new(Mutex::new(Violations::default()));
    let seen = out.clone();
    let pods = t.api::<Pod>();
    let namespace = t.namespace.clone();
    let connector = ExecConnector::new(t.client.clone(), ConsoleOptions::default());
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    tokio::spawn(async move {
        let mut state: BTreeMap<String, (String, bool)> = BTreeMap::new();
        let mut stream = watcher(pods, watcher::Config::default().labels(&selector)).boxed();
        while let Some(Ok(event)) = stream.next().await {
            let (pod, gone) = match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    let gone = p.metadata.deletion_timestamp.is_some();
                    (p, gone)
                }
                watcher::Event::Delete(p) => (p, true),
                _ => continue,
            };
            let name = pod.name_any();
            let rs = pod
                .labels()
                .get(labels::REPLICASET)
                .cloned()
                .unwrap_or_default();
            let was_known = state.contains_key(&name);
            if gone {
                state.remove(&name);
            } else {
                state.insert(name.clone(), (rs.clone(), ready(&pod)));
            }
            if gone && was_known {
                // Ask Cartridge through any other ready instance.
                let via = state
                    .iter()
                    .find(|(_, (_, ok))| *ok)
                    .map(|(p, _)| p.clone());
                let mut master = None;
                if let Some(via) = via {
                    let topology =
                        connector.connect(&InstanceTarget::for_pod(&namespace, &via, None));
                    if let Ok(rss) = topology.replicasets().await {
                        let others_ready = state
                            .iter()
                            .any(|(p, (r, ok))| *r == rs && *p != name && *ok);
                        master = rss
                            .iter()
                            .find(|r| r.alias == rs)
                            .and_then(|r| r.master_alias().map(str::to_string))
                            .filter(|m| *m == name && others_ready);
                    }
                }
                let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                v.deletions += 1;
                if let Some(m) = master {
                    v.master_deleted.push(m);
                }
            }
            let mut ready_per_rs: BTreeMap<&String, usize> = BTreeMap::new();
            for (r, ok) in state.values() {
                *ready_per_rs.entry(r).or_default() += usize::from(*ok);
            }
            for (r, ok) in ready_per_rs {
                if replicas.saturating_sub(ok) > 1 {
                    let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                    v.budget.push(format!("{r}: {} unavailable", replicas - ok));
                }
            }
        }
    });
    out
}
