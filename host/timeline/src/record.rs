//! The recorder: watches one namespace while an update runs and appends a
//! [`Record`] for everything the timeline shows.
//!
//! It watches the operator's pods (label `app.kubernetes.io/managed-by=
//! tarantool-operator`) for creation, Ready transitions and deletion, and
//! the Events on Roles for `PodDeleted`, `MasterSwitched` and `UpdateStep`.
//!
//! Every record is stamped with the recorder's clock when it saw the change,
//! not with a time taken from the object: pod conditions only carry whole
//! seconds, and one clock keeps the file in observation order. Pods that
//! exist when recording starts get `created` (and `ready`) records at the
//! start; Events that exist then are history and are skipped.
//!
//! The decisions are in `PodTracker` and `EventTracker`, plain state
//! machines fed with watcher events, so they are tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Write;

use futures::{StreamExt as _, future::Either, stream};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use tracing::{debug, info, warn};

use super::notes::{parse_master_switched_note, parse_pod_deleted_note};
use super::{Kind, REVISION_LABEL, Record, TimelineError, write_record};
use crate::api::Reason;
use crate::api::labels::{MANAGED_BY, MANAGER, REPLICASET, ROLE};

/// Detail of the records of pods that were there when recording started.
pub(crate) const PRESENT_AT_START: &str = "present when recording started";

/// What the recorder remembers about one pod (by uid: a StatefulSet pod
/// that is deleted and recreated keeps its name, not its uid).
#[derive(Debug, Clone)]
struct PodState {
    name: String,
    replicaset: String,
    role: String,
    revision: String,
    ready: bool,
    deleted: bool,
}

/// Turns pod watcher events into records.
#[derive(Debug, Default)]
pub(crate) struct PodTracker {
    pods: BTreeMap<String, PodState>,
    /// Seen in the current (re)list, to find pods that went away while the
    /// watch was broken.
    listed: BTreeSet<String>,
    initialised: bool,
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn label(pod: &Pod, key: &str) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .cloned()
        .unwrap_or_default()
}

fn pod_key(pod: &Pod) -> Option<String> {
    pod.metadata
        .uid
        .clone()
        .or_else(|| pod.metadata.name.clone())
}

impl PodState {
    fn of(pod: &Pod) -> PodState {
        PodState {
            name: pod.metadata.name.clone().unwrap_or_default(),
            replicaset: label(pod, REPLICASET),
            role: label(pod, ROLE),
            revision: label(pod, REVISION_LABEL),
            ready: false,
            deleted: false,
        }
    }

    fn record(&self, t: Timestamp, kind: Kind, detail: &str) -> Record {
        Record {
            t,
            kind,
            pod: self.name.clone(),
            replicaset: self.replicaset.clone(),
            role: self.role.clone(),
            revision: self.revision.clone(),
            detail: detail.to_string(),
        }
    }
}

impl PodTracker {
    /// A tracker that has seen nothing yet.
    pub(crate) fn new() -> PodTracker {
        PodTracker::default()
    }

    /// The records for one watcher event seen at `now`.
    pub(crate) fn apply(&mut self, event: watcher::Event<Pod>, now: Timestamp) -> Vec<Record> {
        let mut out = Vec::new();
        match event {
            watcher::Event::Init => self.listed.clear(),
            watcher::Event::InitApply(pod) => {
                if let Some(key) = pod_key(&pod) {
                    self.listed.insert(key);
                }
                let at_start = !self.initialised;
                self.observe(&pod, now, at_start, &mut out);
            }
            watcher::Event::InitDone => {
                // A relist after a broken watch: pods missing from it went
                // away in the gap.
                let gone: Vec<String> = self
                    .pods
                    .keys()
                    .filter(|k| !self.listed.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(state) = self.pods.remove(&key)
                        && !state.deleted
                    {
                        out.push(state.record(now, Kind::Deleted, "gone (seen on relist)"));
                    }
                }
                self.initialised = true;
            }
            watcher::Event::Apply(pod) => self.observe(&pod, now, false, &mut out),
            watcher::Event::Delete(pod) => {
                self.observe(&pod, now, false, &mut out);
                if let Some(state) = pod_key(&pod).and_then(|k| self.pods.remove(&k))
                    && !state.deleted
                {
                    out.push(state.record(now, Kind::Deleted, "gone"));
                }
            }
        }
        out
    }

    fn observe(&mut self, pod: &Pod, now: Timestamp, at_start: bool, out: &mut Vec<Record>) {
        let Some(key) = pod_key(pod) else {
            return;
        };
        let detail = if at_start { PRESENT_AT_START } else { "" };
        let state = match self.pods.get_mut(&key) {
            Some(state) => state,
            None => {
                let state = PodState::of(pod);
                out.push(state.record(now, Kind::Created, detail));
                self.pods.entry(key).or_insert(state)
            }
        };
        let ready = pod_ready(pod);
        if ready != state.ready {
            state.ready = ready;
            let kind = if ready { Kind::Ready } else { Kind::Unready };
            out.push(state.record(now, kind, detail));
        }
        if pod.metadata.deletion_timestamp.is_some() && !state.deleted {
            state.deleted = true;
            out.push(state.record(now, Kind::Deleted, "deletionTimestamp set"));
        }
    }
}

/// Turns Event watcher events into records: only new Events on
/// tarantool.io Roles with one of the reasons the timeline knows.
///
/// A repeated Event (a series, or a higher count) is not recorded again:
/// kube's Event recorder aggregates Events by reason, action and object, not
/// by note, and keeps the first note, so a later occurrence would repeat a
/// stale note (another pod's deletion, an old step) at the wrong time. The
/// pod watch still sees every deletion.
#[derive(Debug, Default)]
pub(crate) struct EventTracker {
    /// Events already seen, by uid.
    seen: BTreeSet<String>,
    initialised: bool,
}

/// Whether an Event is about a tarantool.io Role (not an RBAC Role).
pub(crate) fn about_role(event: &CoreEvent) -> bool {
    let involved = &event.involved_object;
    involved.kind.as_deref() == Some("Role")
        && involved
            .api_version
            .as_deref()
            .is_none_or(|v| v.is_empty() || v.starts_with("tarantool.io/"))
}

/// The record an operator Event stands for, stamped `t`; `None` for other
/// reasons and for notes that do not parse.
pub(crate) fn record_from_event(event: &CoreEvent, t: Timestamp) -> Option<Record> {
    let reason: Reason = event.reason.as_deref()?.parse().ok()?;
    let note = event.message.clone().unwrap_or_default();
    let mut record = Record::new(t, Kind::Step);
    record.role = event.involved_object.name.clone().unwrap_or_default();
    match reason {
        Reason::PodDeleted => {
            let Some(parsed) = parse_pod_deleted_note(&note) else {
                debug!(note, "a PodDeleted note in an unknown format");
                return None;
            };
            record.kind = Kind::Deleted;
            record.pod = parsed.pod;
            record.replicaset = parsed.replicaset;
            record.revision = parsed.old_revision;
        }
        Reason::MasterSwitched => {
            let Some(parsed) = parse_master_switched_note(&note) else {
                debug!(note, "a MasterSwitched note in an unknown format");
                return None;
            };
            record.kind = Kind::Master;
            record.pod = parsed.new;
            record.replicaset = parsed.replicaset;
        }
        Reason::UpdateStep => {}
        _ => return None,
    }
    record.detail = note;
    Some(record)
}

impl EventTracker {
    /// A tracker that has seen nothing yet.
    pub(crate) fn new() -> EventTracker {
        EventTracker::default()
    }

    /// The records for one watcher event seen at `now`.
    pub(crate) fn apply(
        &mut self,
        event: watcher::Event<CoreEvent>,
        now: Timestamp,
    ) -> Vec<Record> {
        match event {
            watcher::Event::Init | watcher::Event::Delete(_) => Vec::new(),
            watcher::Event::InitDone => {
                self.initialised = true;
                Vec::new()
            }
            // The first list is history, from before recording started.
            watcher::Event::InitApply(ev) if !self.initialised => {
                if let Some(uid) = ev.metadata.uid.clone() {
                    self.seen.insert(uid);
                }
                Vec::new()
            }
            watcher::Event::InitApply(ev) | watcher::Event::Apply(ev) => {
                self.consider(&ev, now).into_iter().collect()
            }
        }
    }

    fn consider(&mut self, event: &CoreEvent, now: Timestamp) -> Option<Record> {
        if !about_role(event) {
            return None;
        }
        if let Some(uid) = event.metadata.uid.clone()
            && !self.seen.insert(uid)
        {
            return None;
        }
        record_from_event(event, now)
    }
}

/// Records one namespace into a JSON lines writer.
pub struct Recorder {
    client: Client,
    namespace: String,
    on_ready: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Recorder {
    /// A recorder of `namespace`.
    pub fn new(client: Client, namespace: &str) -> Recorder {
        Recorder {
            client,
            namespace: namespace.to_string(),
            on_ready: None,
        }
    }

    /// Sends on `tx` once both watches have listed what exists, so a caller
    /// knows that what it does from then on is recorded.
    pub fn on_ready(mut self, tx: tokio::sync::oneshot::Sender<()>) -> Recorder {
        self.on_ready = Some(tx);
        self
    }

    /// Appends records to `out` until `shutdown` resolves; returns how many
    /// it wrote. A broken watch is retried with backoff (and logged); only a
    /// failing writer stops the recorder early.
    pub async fn run<W: Write>(
        mut self,
        mut out: W,
        shutdown: impl Future<Output = ()>,
    ) -> Result<usize, TimelineError> {
        let pods = watcher(
            Api::<Pod>::namespaced(self.client.clone(), &self.namespace),
            watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}")),
        )
        .default_backoff()
        .map(Either::Left)
        .boxed();
        let events = watcher(
            Api::<CoreEvent>::namespaced(self.client.clone(), &self.namespace),
            watcher::Config::default().fields("involvedObject.kind=Role"),
        )
        .default_backoff()
        .map(Either::Right)
        .boxed();
        let mut merged = stream::select(pods, events);
        let mut shutdown = std::pin::pin!(shutdown);
        let mut pod_tracker = PodTracker::new();
        let mut event_tracker = EventTracker::new();
        let (mut pods_listed, mut events_listed) = (false, false);
        let mut written = 0;
        info!(namespace = %self.namespace, "recording");
        loop {
            let next = tokio::select! {
                _ = &mut shutdown => break,
                next = merged.next() => next,
            };
            let now = Timestamp::now();
            let records = match next {
                None => break,
                Some(Either::Left(Ok(ev))) => {
                    pods_listed |= matches!(ev, watcher::Event::InitDone);
                    pod_tracker.apply(ev, now)
                }
                Some(Either::Right(Ok(ev))) => {
                    events_listed |= matches!(ev, watcher::Event::InitDone);
                    event_tracker.apply(ev, now)
                }
                Some(Either::Left(Err(e))) => {
                    warn!(error = %e, "pod watch failed; retrying");
                    continue;
                }
                Some(Either::Right(Err(e))) => {
                    warn!(error = %e, "event watch failed; retrying");
                    continue;
                }
            };
            for record in &records {
                debug!(kind = %record.kind, pod = %record.pod, "record");
                write_record(&mut out, record)?;
                written += 1;
            }
            if pods_listed
                && events_listed
                && let Some(tx) = self.on_ready.take()
            {
                // The receiver may have given up waiting; nothing to do then.
                let _ = tx.send(());
            }
        }
        info!(namespace = %self.namespace, records = written, "recording stopped");
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::{master_switched_note, pod_deleted_note};
    use k8s_openapi::api::core::v1::{ObjectReference, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_second(1_740_000_000 + s as i64).expect("valid")
    }

    fn pod(name: &str, uid: &str, revision: &str, ready: bool, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(uid.into()),
                labels: Some(
                    [
                        (REPLICASET.to_string(), "storage-0-x".to_string()),
                        (ROLE.to_string(), "storage".to_string()),
                        (REVISION_LABEL.to_string(), revision.to_string()),
                    ]
                    .into(),
                ),
                deletion_timestamp: deleting.then(|| Time(at(0))),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn kinds(records: &[Record]) -> Vec<(Kind, &str, &str)> {
        records
            .iter()
            .map(|r| (r.kind, r.pod.as_str(), r.revision.as_str()))
            .collect()
    }

    #[test]
    fn pods_present_at_start_then_a_rolled_pod() {
        let mut t = PodTracker::new();
        let mut out = t.apply(watcher::Event::Init, at(0));
        out.extend(t.apply(
            watcher::Event::InitApply(pod("p-0", "u1", "r1", true, false)),
            at(0),
        ));
        out.extend(t.apply(watcher::Event::InitDone, at(0)));
        assert_eq!(
            kinds(&out),
            [(Kind::Created, "p-0", "r1"), (Kind::Ready, "p-0", "r1")]
        );
        assert!(out.iter().all(|r| r.detail == PRESENT_AT_START));
        assert_eq!(out[0].replicaset, "storage-0-x");
        assert_eq!(out[0].role, "storage");

        // Deleted by the operator: terminating, then gone; the same name
        // comes back with a new uid and revision.
        let out = t.apply(
            watcher::Event::Apply(pod("p-0", "u1", "r1", true, true)),
            at(1),
        );
        assert_eq!(kinds(&out), [(Kind::Deleted, "p-0", "r1")]);
        let out = t.apply(
            watcher::Event::Apply(pod("p-0", "u2", "r2", false, false)),
            at(2),
        );
        assert_eq!(kinds(&out), [(Kind::Created, "p-0", "r2")]);
        let out = t.apply(
            watcher::Event::Delete(pod("p-0", "u1", "r1", false, true)),
            at(3),
        );
        assert_eq!(
            kinds(&out),
            [(Kind::Unready, "p-0", "r1")],
            "no second deletion"
        );
        let out = t.apply(
            watcher::Event::Apply(pod("p-0", "u2", "r2", true, false)),
            at(4),
        );
        assert_eq!(kinds(&out), [(Kind::Ready, "p-0", "r2")]);
        assert!(out[0].detail.is_empty());
        let out = t.apply(
            watcher::Event::Apply(pod("p-0", "u2", "r2", true, false)),
            at(5),
        );
        assert!(out.is_empty(), "no change, no record");
    }

    #[test]
    fn a_pod_missing_from_a_relist_is_deleted() {
        let mut t = PodTracker::new();
        t.apply(watcher::Event::Init, at(0));
        t.apply(
            watcher::Event::InitApply(pod("p-0", "u1", "r1", true, false)),
            at(0),
        );
        t.apply(
            watcher::Event::InitApply(pod("p-1", "u2", "r1", true, false)),
            at(0),
        );
        t.apply(watcher::Event::InitDone, at(0));
        let mut out = t.apply(watcher::Event::Init, at(5));
        out.extend(t.apply(
            watcher::Event::InitApply(pod("p-1", "u2", "r1", true, false)),
            at(5),
        ));
        out.extend(t.apply(watcher::Event::InitDone, at(5)));
        assert_eq!(kinds(&out), [(Kind::Deleted, "p-0", "r1")]);
    }

    fn event(uid: &str, reason: &str, note: &str, count: i32) -> CoreEvent {
        CoreEvent {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                kind: Some("Role".into()),
                api_version: Some("tarantool.io/v1alpha1".into()),
                name: Some("storage".into()),
                ..ObjectReference::default()
            },
            reason: Some(reason.into()),
            message: Some(note.into()),
            count: Some(count),
            ..CoreEvent::default()
        }
    }

    #[test]
    fn events_before_the_start_are_history() {
        let deleted = pod_deleted_note("storage-0-x-1", "storage-0-x", "r1", "r2");
        let mut t = EventTracker::new();
        t.apply(watcher::Event::Init, at(0));
        let out = t.apply(
            watcher::Event::InitApply(event("e1", Reason::PodDeleted.as_str(), &deleted, 1)),
            at(0),
        );
        assert!(out.is_empty());
        t.apply(watcher::Event::InitDone, at(0));
        // A repeat of a historic Event: its note is the old one, skipped.
        let out = t.apply(
            watcher::Event::Apply(event("e1", Reason::PodDeleted.as_str(), &deleted, 2)),
            at(1),
        );
        assert!(out.is_empty());
        // A new Event is recorded once, whatever its series does later.
        let out = t.apply(
            watcher::Event::Apply(event("e7", Reason::PodDeleted.as_str(), &deleted, 1)),
            at(2),
        );
        assert_eq!(kinds(&out), [(Kind::Deleted, "storage-0-x-1", "r1")]);
        let again = t.apply(
            watcher::Event::Apply(event("e7", Reason::PodDeleted.as_str(), &deleted, 2)),
            at(3),
        );
        assert!(again.is_empty());
        assert_eq!(out[0].role, "storage");
        assert_eq!(out[0].replicaset, "storage-0-x");
        assert_eq!(out[0].detail, deleted);
        assert_eq!(out[0].t, at(2));
    }

    #[test]
    fn master_and_step_events_become_records_others_do_not() {
        let mut t = EventTracker::new();
        t.apply(watcher::Event::InitDone, at(0));
        let switched = master_switched_note("storage-0-x", "storage-0-x-0", "storage-0-x-1");
        let out = t.apply(
            watcher::Event::Apply(event("e2", Reason::MasterSwitched.as_str(), &switched, 1)),
            at(1),
        );
        assert_eq!(kinds(&out), [(Kind::Master, "storage-0-x-1", "")]);
        let out = t.apply(
            watcher::Event::Apply(event(
                "e3",
                Reason::UpdateStep.as_str(),
                "waiting for <x>",
                1,
            )),
            at(2),
        );
        assert_eq!(kinds(&out), [(Kind::Step, "", "")]);
        assert_eq!(out[0].detail, "waiting for <x>");
        let out = t.apply(
            watcher::Event::Apply(event("e4", Reason::VshardBootstrapped.as_str(), "done", 1)),
            at(3),
        );
        assert!(out.is_empty());
        let out = t.apply(
            watcher::Event::Apply(event("e5", Reason::PodDeleted.as_str(), "garbled", 1)),
            at(3),
        );
        assert!(out.is_empty());
        let mut rbac = event("e6", Reason::UpdateStep.as_str(), "x", 1);
        rbac.involved_object.api_version = Some("rbac.authorization.k8s.io/v1".into());
        assert!(t.apply(watcher::Event::Apply(rbac), at(4)).is_empty());
    }
}
