//! The timeline recorder against the real control plane (no operator): a
//! labelled StatefulSet pod is created, becomes Ready, is deleted and comes
//! back on another uid, and the operator's Events (`PodDeleted` through
//! kube's Event recorder, as the operator publishes it, and an `UpdateStep`
//! through the core/v1 API) are posted on a Role; the recording holds all of
//! it, and the after-the-fact reconstruction finds the Events too.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, Event as CoreEvent, EventSource, ObjectReference, Pod, PodSpec, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder as EventRecorder, Reporter};
use tarantool_operator_api::labels::{MANAGED_BY, MANAGER, REPLICASET, ROLE};
use tarantool_operator_api::{Reason, Role};
use tarantool_operator_timeline::notes::pod_deleted_note;
use tarantool_operator_timeline::record::Recorder;
use tarantool_operator_timeline::{Kind, REVISION_LABEL, Record, from_events, read_jsonl};
use test_harness::{Error, TestContext, run};

/// Any failure of these tests, with what was being checked.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Harness(#[from] Error),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("timeline: {0}")]
    Timeline(#[from] tarantool_operator_timeline::TimelineError),
    #[error("{0}")]
    Check(String),
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(what()))
    }
}

/// A writer the test can read while the recorder writes.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut inner = self
            .0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        inner.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn records(&self) -> Result<Vec<Record>, Failure> {
        let bytes = self
            .0
            .lock()
            .map_err(|_| Failure::Check("recording buffer poisoned".into()))?
            .clone();
        Ok(read_jsonl(&bytes[..])?)
    }
}

const STS: &str = "router-0-7dfd9f68f";

fn statefulset() -> StatefulSet {
    let labels: BTreeMap<String, String> = [
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (ROLE.to_string(), "router".to_string()),
        (REPLICASET.to_string(), STS.to_string()),
    ]
    .into();
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(STS.into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(1),
            service_name: Some("router".into()),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "cartridge".into(),
                        image: Some("example.invalid/tarantool:1".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

fn ready(pod: &Pod) -> bool {
    tarantool_operator_timeline::record::pod_ready(pod)
}

async fn ready_pod(t: &TestContext, name: &str, not_uid: Option<&str>) -> Result<Pod, Error> {
    let pods = t.api::<Pod>();
    t.eventually(&format!("pod {name} Ready"), || async {
        Ok(pods
            .get_opt(name)
            .await?
            .filter(|p| ready(p) && not_uid.is_none_or(|u| p.metadata.uid.as_deref() != Some(u))))
    })
    .await
}

fn kinds_of(records: &[Record], pod: &str) -> Vec<Kind> {
    records
        .iter()
        .filter(|r| r.pod == pod)
        .map(|r| r.kind)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_recorder_sees_pods_and_role_events() {
    run("timeline-record", |t| async move {
        t.install_crds().await?;
        let router = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/article/router.yaml");
        t.kubectl(&["apply", "-f", &router.display().to_string()]).await?;
        let role = t.api::<Role>().get("router").await?;

        let out = Shared::default();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let recorder = tokio::spawn(
            Recorder::new(t.client.clone(), &t.namespace)
                .on_ready(ready_tx)
                .run(out.clone(), async move {
                    let _ = stop_rx.await;
                }),
        );
        ready_rx
            .await
            .map_err(|_| Failure::Check("the recorder stopped before it was ready".into()))?;

        t.api::<StatefulSet>()
            .create(&PostParams::default(), &statefulset())
            .await?;
        let pod_name = format!("{STS}-0");
        let first = ready_pod(&t, &pod_name, None).await?;
        let uid = first.metadata.uid.clone().unwrap_or_default();
        let revision = first
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .cloned()
            .unwrap_or_default();
        check(!revision.is_empty(), || "the pod has no controller-revision-hash".into())?;

        t.api::<Pod>()
            .delete(&pod_name, &DeleteParams::default())
            .await?;
        // As the operator publishes it (events.k8s.io through kube's recorder).
        EventRecorder::new(
            t.client.clone(),
            Reporter {
                controller: "tarantool-operator".into(),
                instance: Some("timeline-test".into()),
            },
        )
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: Reason::PodDeleted.as_str().into(),
                note: Some(pod_deleted_note(&pod_name, STS, &revision, "next")),
                action: Reason::PodDeleted.as_str().into(),
                secondary: None,
            },
            &role.object_ref(&()),
        )
        .await?;
        // And through the core/v1 API, as older tools write Events.
        let now = Time(Timestamp::now());
        t.api::<CoreEvent>()
            .create(
                &PostParams::default(),
                &CoreEvent {
                    metadata: ObjectMeta {
                        name: Some("router.step-1".into()),
                        ..ObjectMeta::default()
                    },
                    involved_object: ObjectReference {
                        api_version: Some("tarantool.io/v1alpha1".into()),
                        kind: Some("Role".into()),
                        name: Some("router".into()),
                        namespace: Some(t.namespace.clone()),
                        uid: role.metadata.uid.clone(),
                        ..ObjectReference::default()
                    },
                    reason: Some(Reason::UpdateStep.as_str().into()),
                    message: Some("router-0-7dfd9f68f: waiting for <router-0-7dfd9f68f-0> & co".into()),
                    type_: Some("Normal".into()),
                    first_timestamp: Some(now.clone()),
                    last_timestamp: Some(now),
                    count: Some(1),
                    source: Some(EventSource {
                        component: Some("timeline-test".into()),
                        ..EventSource::default()
                    }),
                    ..CoreEvent::default()
                },
            )
            .await?;
        ready_pod(&t, &pod_name, Some(&uid)).await?;

        let records = t
            .eventually("the recording to hold the pod's second Ready and both Events", || {
                let out = out.clone();
                let pod_name = pod_name.clone();
                async move {
                    let records = out.records().map_err(|e| Error::Watch {
                        what: "the recording".into(),
                        message: e.to_string(),
                    })?;
                    let kinds = kinds_of(&records, &pod_name);
                    let readies = kinds.iter().filter(|k| **k == Kind::Ready).count();
                    let steps = records.iter().filter(|r| r.kind == Kind::Step).count();
                    Ok((readies >= 2 && steps >= 1 && kinds.iter().filter(|k| **k == Kind::Deleted).count() >= 2)
                        .then_some(records))
                }
            })
            .await?;
        let _ = stop_tx.send(());
        let written = recorder
            .await
            .map_err(|e| Failure::Check(format!("recorder task: {e}")))??;
        check(written >= records.len(), || format!("{written} written, {} read", records.len()))?;

        let pod_records: Vec<&Record> = records.iter().filter(|r| r.pod == pod_name).collect();
        check(
            pod_records.first().map(|r| r.kind) == Some(Kind::Created),
            || format!("first record of the pod is not `created`: {pod_records:?}"),
        )?;
        for r in &pod_records {
            check(r.replicaset == STS && r.role == "router", || format!("labels: {r:?}"))?;
        }
        let from_event = pod_records
            .iter()
            .find(|r| r.kind == Kind::Deleted && r.detail.starts_with("deleted pod "))
            .ok_or_else(|| Failure::Check(format!("no PodDeleted record: {pod_records:?}")))?;
        check(
            from_event.role == "router" && from_event.replicaset == STS && from_event.revision == revision,
            || format!("{from_event:?}"),
        )?;
        let from_watch = pod_records
            .iter()
            .find(|r| r.kind == Kind::Deleted && !r.detail.starts_with("deleted pod "))
            .ok_or_else(|| Failure::Check(format!("no deletion seen on the pod: {pod_records:?}")))?;
        check(from_watch.revision == revision, || format!("{from_watch:?}"))?;
        let step = records
            .iter()
            .find(|r| r.kind == Kind::Step)
            .ok_or_else(|| Failure::Check("no step".into()))?;
        check(step.role == "router" && step.detail.contains("& co"), || format!("{step:?}"))?;
        check(records.windows(2).all(|w| w[0].t <= w[1].t), || {
            "records out of time order".into()
        })?;

        // After the fact, from the Events and the pods.
        let rebuilt = from_events::collect(t.client.clone(), &t.namespace).await?;
        check(
            rebuilt.iter().any(|r| r.kind == Kind::Deleted && r.pod == pod_name && r.revision == revision)
                && rebuilt.iter().any(|r| r.kind == Kind::Step)
                // The new pod's Ready condition (same revision: the template
                // did not change), besides the assumed one before the deletion.
                && rebuilt.iter().any(|r| {
                    r.kind == Kind::Ready && r.pod == pod_name && r.detail != from_events::ASSUMED_READY
                }),
            || format!("rebuilt: {rebuilt:?}"),
        )?;
        Ok::<_, Failure>(())
    })
    .await;
}
