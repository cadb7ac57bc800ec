//! Model-based property test of a rolling update's host side: whatever a
//! strategy decides, what the host does keeps the data.
//!
//! A small world (replica sets of pods on an old or new template, the
//! Cartridge truth behind them: which instance is master, which instances
//! take writes) evolves pass by pass. Each pass observes it (or gets no
//! verified answer: then nothing is planned, as in `topology_facts`), builds
//! the strategy's view with [`view::build`] from Kubernetes objects, asks a
//! strategy (the built-in `SwitchMasterUpdate`, `ClusterPartitionUpdate`,
//! or a scripted one naming random pods), checks its decision with the
//! guard, decides the host's acts with [`execute::decide`], and applies
//! them. A pass that switched a master plans again on a fresh observation,
//! as `rolling_update` does. Cartridge misbehaves as observed with 2.17.2:
//! promotes are refused, the reported master follows a switch late, the
//! new master takes writes only after a while and the old one stops only
//! after a while; the operator may crash before recording the strategy's
//! state. Checked against the truth at every act:
//!
//! - a master's pod is deleted only when no other pod of its replica set
//!   serves;
//! - a pod switched away from is deleted only once it refuses writes and
//!   its replica set's new master takes them;
//! - no deletion takes a replica set past its budget of unavailable pods.
//!
//! And, with `SwitchMasterUpdate`, once Cartridge answers truly and accepts
//! promotes, every pod ends on the new template, ready.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use proptest::prelude::*;
use strategy_sdk::{Action, Decision, PodRef, RoleView};

use super::execute::{self, Act, SwitchFacts};
use super::view;
use crate::api::role::MasterSwitch;
use crate::controller::role::switchover;
use crate::controller::testing;
use crate::resources::{labels, names};
use crate::strategy::guard;
use crate::strategy::native::Native;
use crate::strategy::planner::{PlanError, Planner};
use crate::topology::{ReplicasetInfo, ServerInfo};

const ROLE: &str = "storage";

fn epoch() -> Time {
    Time(Timestamp::UNIX_EPOCH)
}

#[derive(Debug, Clone)]
struct TruePod {
    /// The pod object exists (it is recreated after a deletion).
    present: bool,
    /// It runs the new template.
    new: bool,
    ready: bool,
    terminating: bool,
    /// Passes until a terminating pod is back.
    back_in: u32,
    /// Bumped on every recreation (the UID precondition).
    generation: u32,
    /// Its instance takes writes (`ro=false`).
    writable: bool,
    /// Replication lag, seconds (negative as Cartridge reports it at times).
    lag: f64,
}

impl TruePod {
    fn available(&self) -> bool {
        self.present && self.ready && !self.terminating
    }
}

#[derive(Debug, Clone)]
struct TrueReplicaset {
    name: String,
    pods: Vec<TruePod>,
    /// Cartridge's master (by failover priority or promote).
    master: u32,
    /// The master Cartridge reports (late after a switch).
    reported: u32,
    report_in: u32,
    /// The previous master while its hand-over runs, and the passes until
    /// it stops taking writes and the new one starts.
    old: Option<u32>,
    old_stops_in: u32,
    new_starts_in: u32,
}

impl TrueReplicaset {
    fn unavailable(&self) -> usize {
        self.pods.iter().filter(|p| !p.available()).count()
    }
}

/// What Cartridge does during one pass.
#[derive(Debug, Clone)]
struct Weather {
    /// No verified answer (`[]`, a timeout, a stranger's view).
    unknown: bool,
    /// Promotes fail (`State provider unavailable`).
    refuse: bool,
    /// Passes the reported master lags behind a switch.
    report_delay: u32,
    /// Passes the old master keeps taking writes after a switch.
    old_delay: u32,
    /// Passes until the new master takes writes.
    new_delay: u32,
    /// Passes a deleted pod takes to come back.
    back_in: u32,
    /// The operator crashes after acting, before recording the state.
    crash: bool,
    /// The scripted strategy's picks: (kind, replica set, pod).
    script: Vec<(u8, u32, u32)>,
}

fn weather(calm: bool) -> impl Strategy<Value = Weather> {
    let p = if calm { 0.0 } else { 0.25 };
    (
        prop::bool::weighted(p),
        prop::bool::weighted(p),
        0u32..=2,
        0u32..=2,
        0u32..=3,
        1u32..=3,
        prop::bool::weighted(if calm { 0.0 } else { 0.1 }),
        prop::collection::vec((0u8..3, 0u32..4, 0u32..4), 0..=3),
    )
        .prop_map(
            |(unknown, refuse, report_delay, old_delay, new_delay, back_in, crash, script)| {
                Weather {
                    unknown,
                    refuse,
                    report_delay,
                    old_delay,
                    new_delay,
                    back_in,
                    crash,
                    script,
                }
            },
        )
}

/// A strategy that names random pods (what a broken or hostile component
/// may do): the host alone must keep the data.
struct Scripted {
    picks: RefCell<VecDeque<Vec<(u8, u32, u32)>>>,
}

impl Planner for Scripted {
    fn plan(&self, view: &RoleView) -> Result<Decision, PlanError> {
        let picks = self.picks.borrow_mut().pop_front().unwrap_or_default();
        let n = view.replicasets.len() as u32;
        let actions = picks
            .into_iter()
            .filter(|_| n > 0)
            .map(|(kind, rs, pod)| {
                let rs = rs % n;
                let size = view.replicasets[rs as usize].pods.len().max(1) as u32;
                let at = PodRef {
                    replicaset: rs,
                    pod: pod % size,
                };
                match kind {
                    0 => Action::SwitchMaster(at),
                    _ => Action::DeletePod(at),
                }
            })
            .collect();
        Ok(Decision {
            actions,
            ..Decision::default()
        })
    }
}

struct World {
    replicasets: Vec<TrueReplicaset>,
    max_unavailable: u32,
    /// The strategy's state and the switches, as the Role's status records
    /// them (a crash before the status write loses what the pass added).
    state: Option<String>,
    switches: BTreeMap<String, MasterSwitch>,
    violations: Vec<String>,
}

impl World {
    fn new(replicasets: u32, replicas: u32, masters: &[u32], lags: &[f64], budget: u32) -> Self {
        let replicasets = (0..replicasets)
            .map(|r| {
                let master = masters[r as usize % masters.len()] % replicas;
                TrueReplicaset {
                    name: format!("{ROLE}-{r}-h"),
                    pods: (0..replicas)
                        .map(|i| TruePod {
                            present: true,
                            new: false,
                            ready: true,
                            terminating: false,
                            back_in: 0,
                            generation: 0,
                            writable: i == master,
                            lag: lags[(r * replicas + i) as usize % lags.len()],
                        })
                        .collect(),
                    master,
                    reported: master,
                    report_in: 0,
                    old: None,
                    old_stops_in: 0,
                    new_starts_in: 0,
                }
            })
            .collect();
        Self {
            replicasets,
            max_unavailable: budget,
            state: None,
            switches: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    fn names(&self) -> Vec<String> {
        self.replicasets.iter().map(|r| r.name.clone()).collect()
    }

    fn statefulsets(&self) -> Vec<StatefulSet> {
        self.replicasets
            .iter()
            .map(|r| StatefulSet {
                metadata: ObjectMeta {
                    name: Some(r.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: StatefulSetSpec {
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            annotations: Some(BTreeMap::from([(
                                labels::TEMPLATE_REVISION.to_string(),
                                "new".to_string(),
                            )])),
                            ..ObjectMeta::default()
                        }),
                        spec: None,
                    },
                    ..StatefulSetSpec::default()
                },
                status: None,
            })
            .collect()
    }

    fn pods(&self) -> Vec<Pod> {
        let mut pods = Vec::new();
        for rs in &self.replicasets {
            for (i, p) in rs.pods.iter().enumerate() {
                if !p.present {
                    continue;
                }
                let name = names::pod_name(&rs.name, i as u32);
                let mut pod = testing::pod(&name, ROLE, &rs.name, p.ready);
                pod.metadata.uid = Some(format!("{name}/{}", p.generation));
                pod.metadata.annotations = Some(BTreeMap::from([(
                    labels::TEMPLATE_REVISION.to_string(),
                    if p.new { "new" } else { "old" }.to_string(),
                )]));
                if p.terminating {
                    pod.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
                }
                pods.push(pod);
            }
        }
        pods
    }

    /// What a verified member reports.
    fn answer(&self) -> Vec<ReplicasetInfo> {
        self.replicasets
            .iter()
            .enumerate()
            .map(|(r, rs)| {
                let uuid = |i: usize| format!("server-{r}-{i}");
                ReplicasetInfo {
                    uuid: format!("rs-{r}"),
                    alias: rs.name.clone(),
                    master: Some(uuid(rs.reported as usize)),
                    weight: Some(1.0),
                    servers: rs
                        .pods
                        .iter()
                        .enumerate()
                        .map(|(i, p)| {
                            let up = p.present && p.ready && !p.terminating;
                            ServerInfo {
                                uuid: uuid(i),
                                alias: names::pod_name(&rs.name, i as u32),
                                healthy: up,
                                replicating: up,
                                replication_lag: (i as u32 != rs.master).then_some(p.lag),
                                read_only: up.then_some(!p.writable),
                                ..ServerInfo::default()
                            }
                        })
                        .collect(),
                    ..ReplicasetInfo::default()
                }
            })
            .collect()
    }

    /// One plan round; `true` when a master moved (the pass plans again).
    fn round(&mut self, planner: &dyn Planner, w: &Weather) -> bool {
        let names = self.names();
        let (statefulsets, pods) = (self.statefulsets(), self.pods());
        let answer = self.answer();
        let params = BTreeMap::new();
        let built = view::build(&view::Inputs {
            role: ROLE,
            statefulsets: &names,
            observed: &statefulsets,
            pods: &pods,
            replicas: self.replicasets.first().map_or(0, |r| r.pods.len() as u32),
            topology: Some(&answer),
            params: &params,
            max_unavailable: self.max_unavailable,
            now: Timestamp::UNIX_EPOCH,
            state: self.state.clone(),
        });
        if built.stale == 0 {
            return false;
        }
        let Ok(decision) = planner.plan(&built.view) else {
            return false;
        };
        if guard::check(&built.view, &decision).is_err() {
            return false;
        }
        // The status as recorded: a switch confirmed by this answer is
        // complete (what `refresh_status` does at the end of a pass).
        for (r, info) in answer.iter().enumerate() {
            if let Some(switch) = self.switches.get_mut(&self.replicasets[r].name)
                && let Some(done) = switchover::observe(switch, info, &epoch())
            {
                *switch = done;
            }
        }
        let recorded: Vec<(&str, &MasterSwitch)> = self
            .switches
            .iter()
            .map(|(rs, s)| (rs.as_str(), s))
            .collect();
        let acts = execute::decide(
            &built,
            &decision.actions,
            &SwitchFacts {
                answered: true,
                replicasets: &answer,
                max_lag_seconds: 1.0,
                supervised: false,
                approved: None,
                role: ("ns", ROLE),
                switches: &recorded,
            },
        );
        // The rollout records each switch before it sends it (a crash
        // after this write keeps it).
        for act in &acts.acts {
            if let Act::Switch { at, .. } = act {
                let rs = &self.replicasets[at.replicaset as usize];
                self.switches.insert(
                    rs.name.clone(),
                    switchover::started(
                        &names::pod_name(&rs.name, rs.reported),
                        &names::pod_name(&rs.name, at.pod),
                        epoch(),
                    ),
                );
            }
        }
        let mut switched = false;
        let mut started = Vec::new();
        for act in &acts.acts {
            match act {
                Act::Delete(at) => self.delete(*at, w),
                Act::Switch { at, .. } => {
                    if w.refuse {
                        // The pass fails here: nothing after it happens,
                        // and nothing is recorded.
                        return false;
                    }
                    if let Some(s) = self.switch(*at, w) {
                        started.push(s);
                    }
                    switched = true;
                }
                Act::Leads(_) => switched = true,
            }
        }
        if !w.crash {
            self.state = decision.state;
            for (rs, switch) in started {
                self.switches.insert(rs, switch);
            }
        }
        switched && acts.deferred.is_none()
    }

    fn delete(&mut self, at: PodRef, w: &Weather) {
        let budget = self.max_unavailable as usize;
        let rs = &mut self.replicasets[at.replicaset as usize];
        let name = names::pod_name(&rs.name, at.pod);
        let i = at.pod as usize;
        let peer_serves = rs
            .pods
            .iter()
            .enumerate()
            .any(|(j, p)| j != i && p.available());
        if i as u32 == rs.master && peer_serves {
            self.violations
                .push(format!("{name} deleted while master, a peer serving"));
        }
        if rs.old == Some(i as u32) {
            if rs.pods[i].writable {
                self.violations
                    .push(format!("{name} deleted while it still takes writes"));
            }
            if !rs.pods[rs.master as usize].writable {
                self.violations.push(format!(
                    "{name} deleted before the new master of {} takes writes",
                    rs.name
                ));
            }
        }
        let pod = &mut rs.pods[i];
        if pod.terminating || !pod.present {
            self.violations
                .push(format!("{name} deleted while already going"));
        }
        pod.terminating = true;
        pod.ready = false;
        pod.back_in = w.back_in;
        if rs.unavailable() > budget {
            self.violations.push(format!(
                "{} has {} pods unavailable, over its budget of {budget}",
                rs.name,
                rs.unavailable()
            ));
        }
    }

    /// Moves the master; the switch as the operator records it.
    fn switch(&mut self, at: PodRef, w: &Weather) -> Option<(String, MasterSwitch)> {
        let rs = &mut self.replicasets[at.replicaset as usize];
        if rs.master == at.pod {
            return None;
        }
        let record = switchover::started(
            &names::pod_name(&rs.name, rs.master),
            &names::pod_name(&rs.name, at.pod),
            epoch(),
        );
        let name = rs.name.clone();
        rs.old = Some(rs.master);
        rs.master = at.pod;
        rs.report_in = w.report_delay;
        rs.old_stops_in = w.old_delay;
        rs.new_starts_in = w.new_delay;
        if w.report_delay == 0 {
            rs.reported = rs.master;
        }
        self.settle_handover(at.replicaset as usize);
        Some((name, record))
    }

    /// Applies hand-over steps whose time has come.
    fn settle_handover(&mut self, r: usize) {
        let rs = &mut self.replicasets[r];
        if let Some(old) = rs.old {
            if rs.old_stops_in == 0 && old != rs.master {
                rs.pods[old as usize].writable = false;
            }
            if rs.new_starts_in == 0 {
                let master = rs.master as usize;
                let up = rs.pods[master].available();
                rs.pods[master].writable = up;
            }
            if !rs.pods[old as usize].writable && rs.pods[rs.master as usize].writable {
                rs.old = None;
            }
        }
    }

    /// Time passes between passes.
    fn tick(&mut self) {
        for r in 0..self.replicasets.len() {
            let rs = &mut self.replicasets[r];
            rs.report_in = rs.report_in.saturating_sub(1);
            if rs.report_in == 0 {
                rs.reported = rs.master;
            }
            rs.old_stops_in = rs.old_stops_in.saturating_sub(1);
            rs.new_starts_in = rs.new_starts_in.saturating_sub(1);
            let master = rs.master;
            for (i, p) in rs.pods.iter_mut().enumerate() {
                if p.terminating {
                    if p.back_in == 0 {
                        // Recreated from the current template, not ready
                        // yet; a master comes back taking writes once ready.
                        p.terminating = false;
                        p.new = true;
                        p.generation += 1;
                        p.writable = false;
                    } else {
                        p.back_in -= 1;
                    }
                } else if p.present && !p.ready {
                    p.ready = true;
                    p.writable = i as u32 == master && rs.old.is_none();
                }
            }
            self.settle_handover(r);
        }
    }

    fn done(&self) -> bool {
        self.replicasets
            .iter()
            .all(|rs| rs.pods.iter().all(|p| p.new && p.available()))
    }
}

/// Which strategy plans.
#[derive(Debug, Clone, Copy)]
enum Which {
    SwitchMaster,
    ClusterPartition,
    Scripted,
}

fn run(
    which: Which,
    shape: (u32, u32, u32),
    masters: &[u32],
    lags: &[f64],
    stormy: &[Weather],
    calm: &[Weather],
) -> Result<(), TestCaseError> {
    let (replicasets, replicas, budget) = shape;
    let mut world = World::new(replicasets, replicas, masters, lags, budget);
    let scripted = Scripted {
        picks: RefCell::new(stormy.iter().map(|w| w.script.clone()).collect()),
    };
    let switch_master = Native::<switch_master_update::SwitchMasterUpdate>::new();
    let partition = Native::<cluster_partition_update::ClusterPartitionUpdate>::new();
    let planner: &dyn Planner = match which {
        Which::SwitchMaster => &switch_master,
        Which::ClusterPartition => &partition,
        Which::Scripted => &scripted,
    };
    for (n, w) in stormy.iter().chain(calm).enumerate() {
        if n == stormy.len() {
            // The calm: replicas catch up.
            for rs in &mut world.replicasets {
                for p in &mut rs.pods {
                    p.lag = p.lag.min(0.3);
                }
            }
        }
        if !w.unknown && world.round(planner, w) {
            world.round(planner, w);
        }
        prop_assert!(world.violations.is_empty(), "{:?}", world.violations);
        world.tick();
    }
    if matches!(which, Which::SwitchMaster) {
        prop_assert!(
            world.done(),
            "the rollout did not converge: {:?}",
            world.replicasets
        );
    }
    Ok(())
}

fn shape() -> impl Strategy<Value = (u32, u32, u32)> {
    (1u32..=3, 1u32..=3, 1u32..=2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn a_rollout_keeps_every_master_and_budget_whatever_cartridge_does(
        which in prop_oneof![
            Just(Which::SwitchMaster),
            Just(Which::ClusterPartition),
            Just(Which::Scripted),
        ],
        shape in shape(),
        masters in prop::collection::vec(0u32..3, 3),
        lags in prop::collection::vec(prop_oneof![Just(0.0), Just(-0.07), Just(0.3), Just(5.0)], 1..6),
        stormy in prop::collection::vec(weather(false), 0..30),
        calm in prop::collection::vec(weather(true), 60),
    ) {
        // Replicas lagging 5 s are never promoted; in the calm they catch up.
        run(which, shape, &masters, &lags, &stormy, &calm)?;
    }
}

#[test]
fn the_model_catches_a_host_that_deletes_before_the_hand_over() {
    // Mutation check of the model itself: the old master still takes
    // writes, and a decision deletes it right after the switch. Were
    // `decide` to skip the hand-over check, the model would report it.
    let mut world = World::new(1, 2, &[0], &[0.0], 1);
    let w = Weather {
        unknown: false,
        refuse: false,
        report_delay: 0,
        old_delay: 2,
        new_delay: 2,
        back_in: 1,
        crash: false,
        script: Vec::new(),
    };
    world.switch(
        PodRef {
            replicaset: 0,
            pod: 1,
        },
        &w,
    );
    world.delete(
        PodRef {
            replicaset: 0,
            pod: 0,
        },
        &w,
    );
    assert!(
        world
            .violations
            .iter()
            .any(|v| v.contains("still takes writes")),
        "{:?}",
        world.violations
    );
}
