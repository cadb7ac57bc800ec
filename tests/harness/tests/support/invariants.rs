//! The one invariant watcher of the harness: it follows every operator pod
//! of the namespace and records, per replica set, how many were unavailable
//! at once (the budget) and, at each deletion, asks Cartridge, through
//! another ready instance, whether the deleted pod was the master of a
//! replica set with other ready members (a master must be switched first).
//!
//! Cartridge is whatever the operator under test talks to: the dev
//! cluster's double over exec ([`over_exec`]) or the in-memory fake of an
//! in-process operator ([`in_memory`]), both behind the operator's
//! [`Connector`], so the same checks hold for both.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use tarantool_operator_api::labels;
use tarantool_operator_cartridge::console::ConsoleOptions;
use tarantool_operator_cartridge::topology::cartridge::ExecConnector;
use tarantool_operator_cartridge::topology::fake::{FakeConnector, FakeTopology};
use tarantool_operator_cartridge::topology::{Connector, InstanceTarget};
use test_harness::TestContext;

use super::scenario::ready;

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct Violations {
    /// Moments a replica set had more than one pod unavailable.
    pub budget: Vec<String>,
    /// Most pods of each replica set unavailable at once.
    pub max_unavailable: BTreeMap<String, usize>,
    /// Masters deleted while other members were ready.
    pub master_deleted: Vec<String>,
    /// Pods seen deleted.
    pub deleted: BTreeSet<String>,
    /// Pod deletions seen (a pod deleted twice counts twice).
    pub deletions: usize,
    /// Pods in the order their deletions were seen.
    pub order: Vec<String>,
    /// The watch has listed the pods once: a deletion from now on is seen.
    pub listed: bool,
}

impl Violations {
    /// Neither invariant was broken.
    pub fn clean(&self) -> bool {
        self.budget.is_empty() && self.master_deleted.is_empty()
    }
}

/// Cartridge as the dev cluster's pods run it: the double, over exec.
pub fn over_exec(t: &TestContext) -> Arc<dyn Connector> {
    Arc::new(ExecConnector::new(
        t.client.clone(),
        ConsoleOptions::default(),
    ))
}

/// Cartridge as an in-process operator sees it: its in-memory fake.
pub fn in_memory(topology: Arc<FakeTopology>) -> Arc<dyn Connector> {
    Arc::new(FakeConnector { topology })
}

/// Watches the namespace's operator pods from now on; `replicas` is the
/// replica sets' size, `cartridge` how to ask who is master. Returns once
/// the watch has listed the pods (at most [`LISTED_WITHIN`] later): a pod
/// deleted before that would be missed, so the change a test makes next
/// must wait for it.
pub async fn watch(
    t: &TestContext,
    replicas: usize,
    cartridge: Arc<dyn Connector>,
) -> Arc<Mutex<Violations>> {
    let seen = start(t, replicas, cartridge);
    let started = std::time::Instant::now();
    while !seen.lock().unwrap_or_else(|e| e.into_inner()).listed {
        if started.elapsed() > LISTED_WITHIN {
            eprintln!("the invariant watcher has not listed the pods in {LISTED_WITHIN:?}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    seen
}

/// How long [`watch`] waits for the watch's first listing.
const LISTED_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

fn start(
    t: &TestContext,
    replicas: usize,
    cartridge: Arc<dyn Connector>,
) -> Arc<Mutex<Violations>> {
    let out = Arc::new(Mutex::new(Violations::default()));
    let seen = out.clone();
    let pods = t.api::<Pod>();
    let namespace = t.namespace.clone();
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    tokio::spawn(async move {
        // Pod -> (replica set, ready), for pods not being deleted.
        let mut state: BTreeMap<String, (String, bool)> = BTreeMap::new();
        // Pod objects (by uid) whose deletion was counted: one deletion each,
        // whatever events a busy apiserver or a relist repeats.
        let mut counted: BTreeSet<String> = BTreeSet::new();
        // Pods a relist (after the watch broke: an apiserver or etcd
        // restart, an expired resource version) has shown so far.
        let mut relisted: Option<BTreeSet<String>> = None;
        // With a backoff, and on through errors: the watch reconnects after
        // an outage of the apiserver instead of ending the watcher.
        let mut stream = watcher(pods, watcher::Config::default().labels(&selector))
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue };
            let (pod, gone) = match event {
                watcher::Event::Init => {
                    relisted = Some(BTreeSet::new());
                    continue;
                }
                watcher::Event::InitDone => {
                    seen.lock().unwrap_or_else(|e| e.into_inner()).listed = true;
                    // Pods deleted while the watch was down left no Delete
                    // event: they are gone from the relist. Counted as
                    // deletions (no master check: Cartridge has moved on).
                    if let Some(listed) = relisted.take() {
                        let vanished: Vec<String> = state
                            .keys()
                            .filter(|p| !listed.contains(*p))
                            .cloned()
                            .collect();
                        let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                        for name in vanished {
                            state.remove(&name);
                            v.deletions += 1;
                            v.deleted.insert(name.clone());
                            v.order.push(name);
                        }
                    }
                    // The budget is judged on the whole relisted view.
                    let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                    judge_budget(&state, replicas, &mut v);
                    continue;
                }
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    if let Some(listed) = relisted.as_mut() {
                        listed.insert(p.name_any());
                    }
                    let gone = p.metadata.deletion_timestamp.is_some();
                    (p, gone)
                }
                watcher::Event::Delete(p) => (p, true),
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
            let uid = pod.metadata.uid.clone().unwrap_or_else(|| name.clone());
            if gone && was_known && counted.insert(uid) {
                // Ask Cartridge through any other ready instance.
                let via = state
                    .iter()
                    .find(|(_, (_, ok))| *ok)
                    .map(|(p, _)| p.clone());
                let mut master = None;
                if let Some(via) = via {
                    let topology =
                        cartridge.connect(&InstanceTarget::for_pod(&namespace, &via, None));
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
                v.deleted.insert(name.clone());
                v.order.push(name.clone());
                if let Some(m) = master {
                    v.master_deleted.push(m);
                }
            }
            // Mid-listing, the state mixes pods seen just now with what
            // was seen before the watch broke (a pod not ready then, ready
            // by now): judged once the listing is done, not pod by pod.
            if relisted.is_none() {
                let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
                judge_budget(&state, replicas, &mut v);
            }
        }
    });
    out
}

/// Records, per replica set, how many of its `replicas` pods `state` shows
/// unavailable, and a budget violation when more than one.
fn judge_budget(state: &BTreeMap<String, (String, bool)>, replicas: usize, v: &mut Violations) {
    let mut ready_per_rs: BTreeMap<&String, usize> = BTreeMap::new();
    for (r, ok) in state.values() {
        *ready_per_rs.entry(r).or_default() += usize::from(*ok);
    }
    for (r, ok) in ready_per_rs {
        let unavailable = replicas.saturating_sub(ok);
        let max = v.max_unavailable.entry(r.clone()).or_default();
        *max = (*max).max(unavailable);
        if unavailable > 1 {
            v.budget.push(format!("{r}: {unavailable} unavailable"));
        }
    }
}
