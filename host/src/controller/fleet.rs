//! What the last pass of each Cluster and Role concluded, kept for the
//! gauges a scrape computes from it: objects by condition, rollouts in
//! progress (running, paused, waiting), since when a rollout last made
//! progress, drains in progress.
//!
//! Passes [`Fleet::record`] their conclusion; the watch of the controllers'
//! own objects forgets deleted ones ([`Fleet::forget`], [`Fleet::retain`]).
//! A scrape aggregates, so the gauges never disagree with each other and no
//! series of a gone object stays behind.
//!
//! Label cardinality: the counts carry only bounded labels (controller,
//! condition, reason: fixed lists). The per-Role timestamps carry
//! `namespace` and `role` because an alert on a stuck rollout or a long
//! drain must say which Role; they exist only while that Role rolls out or
//! drains, so their number is that of Roles in such a state, not of Roles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::metrics::{
    DRAIN_STARTED, DRAINS, MetricDoc, OBJECTS, ROLLOUT_LAST_PROGRESS, ROLLOUT_PAUSED, ROLLOUTS,
};
use super::pipeline::{Flow, StepFailed};
use crate::api::Reason;
use crate::api::role::RoleStatus;

/// How an object's last pass ended, as its conditions say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Converged: `Ready` True.
    Ready,
    /// Waiting: `Progressing` True, with its reason.
    Progressing(Reason),
    /// Failed: `Degraded` True, with its reason.
    Degraded(Reason),
}

impl Standing {
    /// How a pass that ended with `flow` stands.
    pub fn of(flow: &Result<Flow, StepFailed>) -> Self {
        match flow {
            Ok(Flow::Next) | Ok(Flow::Stop) => Self::Ready,
            Ok(Flow::Wait { reason, .. }) => Self::Progressing(*reason),
            Err(failed) => Self::Degraded(failed.source.reason()),
        }
    }

    /// `(condition, reason)` labels.
    fn labels(self) -> (&'static str, Reason) {
        match self {
            Self::Ready => ("Ready", Reason::Converged),
            Self::Progressing(r) => ("Progressing", r),
            Self::Degraded(r) => ("Degraded", r),
        }
    }
}

/// What one pass concluded about its object.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// How the pass ended.
    pub standing: Standing,
    /// The rollout in progress, if any.
    pub rollout: Option<Rollout>,
    /// Replica sets draining.
    pub draining: u32,
    /// Unix second the oldest of those drains started.
    pub drain_started: Option<i64>,
}

/// A rollout in progress as a pass saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rollout {
    /// Paused by `spec.updateStrategy.paused`.
    pub paused: bool,
    /// What changes when it progresses (the revision, and pods updated).
    pub mark: (Option<String>, i64),
}

impl Report {
    /// A Cluster's: only how its pass ended.
    pub fn cluster(flow: &Result<Flow, StepFailed>) -> Self {
        Self {
            standing: Standing::of(flow),
            rollout: None,
            draining: 0,
            drain_started: None,
        }
    }

    /// A Role's, from how its pass ended and the status it is about to
    /// write.
    pub fn role(flow: &Result<Flow, StepFailed>, status: &RoleStatus) -> Self {
        let standing = Standing::of(flow);
        let waiting_window = standing == Standing::Progressing(Reason::OutsideMaintenanceWindow);
        let update = status.update.as_ref().filter(|u| !u.done);
        let rollout = (update.is_some() || waiting_window).then(|| {
            let updated: i64 = status
                .replicasets
                .iter()
                .map(|r| i64::from(r.updated))
                .sum::<i64>()
                + update.map_or(0, |u| i64::from(u.updated_pods));
            Rollout {
                paused: standing == Standing::Progressing(Reason::Paused),
                mark: (update.and_then(|u| u.revision.clone()), updated),
            }
        });
        let drains: Vec<i64> = status
            .replicasets
            .iter()
            .filter_map(|r| r.drain.as_ref())
            .map(|d| d.started_at.0.as_second())
            .collect();
        Self {
            standing,
            rollout,
            draining: u32::try_from(drains.len()).unwrap_or(u32::MAX),
            drain_started: drains.iter().copied().min(),
        }
    }
}

/// What is kept of an object between passes.
#[derive(Clone, Debug)]
struct Entry {
    report: Report,
    /// Unix seconds: when the rollout last progressed (running), or was
    /// first seen paused.
    rollout_since: f64,
}

/// `(controller, namespace, name)`.
type Key = (&'static str, String, String);

/// The last conclusion about each object; a [`Collector`] of the gauges.
#[derive(Debug, Default)]
pub struct Fleet {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Fleet {
    /// Records what a pass of `controller` over `namespace/name` concluded
    /// at `now`.
    pub fn record(
        &self,
        controller: &'static str,
        namespace: &str,
        name: &str,
        report: Report,
        now: SystemTime,
    ) {
        let now = unix_seconds(now);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (controller, namespace.to_string(), name.to_string());
        let since = match (
            entries
                .get(&key)
                .and_then(|e| Some((e.report.rollout.as_ref()?, e.rollout_since))),
            report.rollout.as_ref(),
        ) {
            // Still paused: since it was first seen paused.
            (Some((before, since)), Some(now_)) if before.paused && now_.paused => since,
            // Still running with nothing more updated.
            (Some((before, since)), Some(now_))
                if !before.paused && !now_.paused && before.mark == now_.mark =>
            {
                since
            }
            _ => now,
        };
        entries.insert(
            key,
            Entry {
                report,
                rollout_since: since,
            },
        );
    }

    /// Forgets a deleted object.
    pub fn forget(&self, controller: &'static str, namespace: &str, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(controller, namespace.to_string(), name.to_string()));
    }

    /// Forgets the objects of `controller` for which `exists(namespace,
    /// name)` is false (after a watch listed them all anew).
    pub fn retain(&self, controller: &'static str, exists: impl Fn(&str, &str) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(c, ns, name), _| *c != controller || exists(ns, name));
    }

    /// The gauges' values now, by metric name and labels.
    fn snapshot(&self) -> Snapshot {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = Snapshot::default();
        for ((controller, namespace, name), entry) in entries.iter() {
            let (condition, reason) = entry.report.standing.labels();
            *s.objects
                .entry((controller.to_string(), condition, reason.as_str()))
                .or_default() += 1;
            let role = || (namespace.clone(), name.clone());
            if let Some(rollout) = &entry.report.rollout {
                let reason = match entry.report.standing {
                    Standing::Ready => Reason::Updating,
                    Standing::Progressing(r) | Standing::Degraded(r) => r,
                };
                *s.rollouts.entry(reason.as_str()).or_default() += 1;
                let times = if rollout.paused {
                    &mut s.paused
                } else {
                    &mut s.progress
                };
                times.insert(role(), entry.rollout_since);
            }
            s.drains += i64::from(entry.report.draining);
            if let Some(started) = entry.report.drain_started {
                s.drain_started.insert(role(), started as f64);
            }
        }
        s
    }
}

/// Seconds since the Unix epoch (0 before it).
fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The gauges at one scrape.
#[derive(Debug, Default, PartialEq)]
struct Snapshot {
    objects: BTreeMap<(String, &'static str, &'static str), i64>,
    rollouts: BTreeMap<&'static str, i64>,
    progress: BTreeMap<(String, String), f64>,
    paused: BTreeMap<(String, String), f64>,
    drains: i64,
    drain_started: BTreeMap<(String, String), f64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    controller: String,
    condition: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabels {
    namespace: String,
    role: String,
}

type Timestamps = Family<RoleLabels, Gauge<f64, AtomicU64>>;

fn timestamps(values: &BTreeMap<(String, String), f64>) -> Timestamps {
    let family = Timestamps::default();
    for ((namespace, role), t) in values {
        family
            .get_or_create(&RoleLabels {
                namespace: namespace.clone(),
                role: role.clone(),
            })
            .set(*t);
    }
    family
}

fn encode(
    encoder: &mut DescriptorEncoder,
    doc: &MetricDoc,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(doc.name, doc.help, None, metric.metric_type())?)
}

impl Collector for Fleet {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.snapshot();
        let objects = Family::<ObjectLabels, Gauge>::default();
        for ((controller, condition, reason), n) in &s.objects {
            objects
                .get_or_create(&ObjectLabels {
                    controller: controller.clone(),
                    condition: condition.to_string(),
                    reason: reason.to_string(),
                })
                .set(*n);
        }
        encode(&mut encoder, &OBJECTS, &objects)?;
        let rollouts = Family::<RolloutLabels, Gauge>::default();
        for (reason, n) in &s.rollouts {
            rollouts
                .get_or_create(&RolloutLabels {
                    reason: reason.to_string(),
                })
                .set(*n);
        }
        encode(&mut encoder, &ROLLOUTS, &rollouts)?;
        encode(
            &mut encoder,
            &ROLLOUT_LAST_PROGRESS,
            &timestamps(&s.progress),
        )?;
        encode(&mut encoder, &ROLLOUT_PAUSED, &timestamps(&s.paused))?;
        let drains = Gauge::<i64>::default();
        drains.set(s.drains);
        encode(&mut encoder, &DRAINS, &drains)?;
        encode(&mut encoder, &DRAIN_STARTED, &timestamps(&s.drain_started))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn rolling(paused: bool, updated: i64) -> Report {
        Report {
            standing: Standing::Progressing(if paused {
                Reason::Paused
            } else {
                Reason::Updating
            }),
            rollout: Some(Rollout {
                paused,
                mark: (Some("r2".into()), updated),
            }),
            draining: 0,
            drain_started: None,
        }
    }

    fn key(ns: &str, role: &str) -> (String, String) {
        (ns.to_string(), role.to_string())
    }

    /// A name, the reports of one Role at seconds 10, 20, 30..., and what
    /// the progress and pause timestamps say after the last.
    type Case = (&'static str, Vec<Report>, Option<f64>, Option<f64>);

    /// Each case: the reports of one Role at seconds 10, 20, 30...; what
    /// the rollout timestamps say after the last.
    #[test]
    fn a_rollout_is_timed_from_its_last_progress_or_its_pause() {
        let cases: Vec<Case> = vec![
            ("started", vec![rolling(false, 0)], Some(10.0), None),
            (
                "no pod updated since the start",
                vec![rolling(false, 0), rolling(false, 0), rolling(false, 0)],
                Some(10.0),
                None,
            ),
            (
                "a pod updated at 30",
                vec![rolling(false, 0), rolling(false, 0), rolling(false, 1)],
                Some(30.0),
                None,
            ),
            (
                "paused at 20 and still",
                vec![rolling(false, 0), rolling(true, 0), rolling(true, 0)],
                None,
                Some(20.0),
            ),
            (
                "resumed at 30: timed from the resume",
                vec![rolling(true, 0), rolling(true, 0), rolling(false, 0)],
                Some(30.0),
                None,
            ),
            (
                "finished",
                vec![rolling(false, 0), Report::cluster(&Ok(Flow::Next))],
                None,
                None,
            ),
        ];
        for (name, reports, progress, paused) in cases {
            let fleet = Fleet::default();
            for (i, r) in reports.into_iter().enumerate() {
                fleet.record("role", "ns", "storage", r, at(10 * (i as u64 + 1)));
            }
            let s = fleet.snapshot();
            assert_eq!(
                s.progress.get(&key("ns", "storage")).copied(),
                progress,
                "{name}"
            );
            assert_eq!(
                s.paused.get(&key("ns", "storage")).copied(),
                paused,
                "{name}"
            );
        }
    }

    #[test]
    fn objects_are_counted_by_condition_and_forgotten_when_gone() {
        let fleet = Fleet::default();
        let failed = Report {
            standing: Standing::Degraded(Reason::UnknownStrategy),
            rollout: Some(Rollout {
                paused: false,
                mark: (None, 0),
            }),
            draining: 2,
            drain_started: Some(100),
        };
        fleet.record("role", "a", "storage", failed, at(5));
        fleet.record("role", "b", "storage", rolling(true, 0), at(5));
        fleet.record(
            "role",
            "a",
            "router",
            Report::cluster(&Ok(Flow::Next)),
            at(5),
        );
        fleet.record("cluster", "a", "c", Report::cluster(&Ok(Flow::Next)), at(5));
        let s = fleet.snapshot();
        let objects: Vec<_> = s
            .objects
            .iter()
            .map(|((c, cond, r), n)| (c.as_str(), *cond, *r, *n))
            .collect();
        assert_eq!(
            objects,
            vec![
                ("cluster", "Ready", "Converged", 1),
                ("role", "Degraded", "UnknownStrategy", 1),
                ("role", "Progressing", "Paused", 1),
                ("role", "Ready", "Converged", 1),
            ]
        );
        assert_eq!(
            s.rollouts.into_iter().collect::<Vec<_>>(),
            vec![("Paused", 1), ("UnknownStrategy", 1)]
        );
        assert_eq!(s.drains, 2);
        assert_eq!(s.drain_started.get(&key("a", "storage")), Some(&100.0));

        fleet.forget("role", "a", "storage");
        fleet.retain("role", |ns, _| ns != "b");
        let s = fleet.snapshot();
        assert_eq!(s.objects.values().sum::<i64>(), 2);
        assert_eq!((s.drains, s.rollouts.len(), s.paused.len()), (0, 0, 0));
    }

    #[test]
    fn a_role_report_reads_its_rollout_and_drains_from_the_status() {
        use crate::api::role::{DrainProgress, ReplicasetStatus, UpdateProgress};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        use k8s_openapi::jiff::Timestamp;

        let time = |s: i64| Time(Timestamp::from_second(s).unwrap_or_default());
        let drain = |s: i64| DrainProgress {
            started_at: time(s),
            initial_buckets: 10,
            buckets: 5,
            observed_at: time(s + 1),
        };
        let status = |done: bool| RoleStatus {
            update: Some(UpdateProgress {
                revision: Some("r2".into()),
                updated_pods: 1,
                done,
                ..UpdateProgress::default()
            }),
            replicasets: vec![
                ReplicasetStatus {
                    updated: 2,
                    drain: Some(drain(300)),
                    ..ReplicasetStatus::default()
                },
                ReplicasetStatus {
                    updated: 1,
                    drain: Some(drain(200)),
                    ..ReplicasetStatus::default()
                },
            ],
            ..RoleStatus::default()
        };
        let paused = Ok(Flow::wait_for_event(Reason::Paused, "paused"));
        let r = Report::role(&paused, &status(false));
        assert_eq!(
            r.rollout,
            Some(Rollout {
                paused: true,
                mark: (Some("r2".into()), 4),
            })
        );
        assert_eq!((r.draining, r.drain_started), (2, Some(200)));
        assert_eq!(Report::role(&Ok(Flow::Next), &status(true)).rollout, None);
        let window = Ok(Flow::wait_for_event(
            Reason::OutsideMaintenanceWindow,
            "later",
        ));
        assert!(
            Report::role(&window, &RoleStatus::default())
                .rollout
                .is_some_and(|r| !r.paused)
        );
    }

    #[test]
    fn a_scrape_shows_every_gauge() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = super::super::metrics::Metrics::new(&mut registry);
        metrics
            .fleet
            .record("role", "ns", "storage", rolling(false, 0), at(42));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap_or_default();
        for line in [
            "tarantool_operator_objects{controller=\"role\",condition=\"Progressing\",reason=\"Updating\"} 1",
            "tarantool_operator_rollouts{reason=\"Updating\"} 1",
            "tarantool_operator_rollout_last_progress_timestamp_seconds{namespace=\"ns\",role=\"storage\"} 42.0",
            "tarantool_operator_drains_in_progress 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }
}
