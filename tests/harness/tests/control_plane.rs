//! Tests of the local control plane alone (no operator): the API semantics the
//! operator relies on work with real components.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, Pod, PodSpec, PodTemplateSpec, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use test_harness::{Error, TestContext, run};

fn labels(app: &str) -> BTreeMap<String, String> {
    [("app".to_string(), app.to_string())].into()
}

fn container(name: &str, env: &[(&str, &str)]) -> Container {
    Container {
        name: name.into(),
        image: Some("example.invalid/tarantool:1".into()),
        env: Some(
            env.iter()
                .map(|(k, v)| EnvVar {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..EnvVar::default()
                })
                .collect(),
        ),
        ..Container::default()
    }
}

fn statefulset(name: &str, replicas: i32, on_delete: bool) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(name.into()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(labels(name)),
                ..LabelSelector::default()
            },
            update_strategy: on_delete.then(|| StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..StatefulSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container("tarantool", &[("VERSION", "1")])],
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn revision(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

/// Waits until the pod named `name` exists, is Running and Ready, and (if
/// given) is not the pod with uid `not_uid`.
async fn ready_pod(t: &TestContext, name: &str, not_uid: Option<&str>) -> Result<Pod, Error> {
    let pods = t.api::<Pod>();
    t.eventually(&format!("pod {name} Running and Ready"), || async {
        Ok(pods.get_opt(name).await?.filter(|p| {
            is_running_and_ready(p) && not_uid.is_none_or(|u| p.metadata.uid.as_deref() != Some(u))
        }))
    })
    .await
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn statefulset_on_delete_updates_only_deleted_pods() {
    run("sts-on-delete", |t| async move {
        let sts_api = t.api::<StatefulSet>();
        sts_api
            .create(&PostParams::default(), &statefulset("web", 3, true))
            .await?;
        let mut before = Vec::new();
        for i in 0..3 {
            before.push(ready_pod(&t, &format!("web-{i}"), None).await?);
        }
        let old_rev = revision(&before[0]);
        assert!(!old_rev.is_empty(), "pods carry controller-revision-hash");
        assert!(before.iter().all(|p| revision(p) == old_rev));
        t.wait_for("web", "3 ready replicas", |s: Option<&StatefulSet>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|st| st.ready_replicas == Some(3))
        })
        .await?;

        // Change the template: with OnDelete nothing restarts by itself.
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
            {"name": "tarantool", "env": [{"name": "VERSION", "value": "2"}]}
        ]}}}});
        sts_api
            .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
            .await?;
        let sts = t
            .wait_for("web", "a new update revision", |s: Option<&StatefulSet>| {
                s.is_some_and(|s| {
                    let st = s.status.clone().unwrap_or_default();
                    st.observed_generation == s.metadata.generation
                        && st.update_revision.is_some()
                        && st.update_revision != st.current_revision
                })
            })
            .await?;
        let new_rev = sts
            .status
            .and_then(|s| s.update_revision)
            .unwrap_or_default();
        assert_ne!(new_rev, old_rev);

        let pods = t.api::<Pod>();
        let old_uid = before[1].metadata.uid.clone().unwrap_or_default();
        pods.delete("web-1", &DeleteParams::default()).await?;
        let recreated = ready_pod(&t, "web-1", Some(&old_uid)).await?;
        assert_eq!(
            revision(&recreated),
            new_rev,
            "web-1 comes back on the new revision"
        );
        let env = recreated.spec.as_ref().map(|s| s.containers[0].env.clone());
        assert!(
            format!("{env:?}").contains("\"2\""),
            "new template: {env:?}"
        );

        for i in [0, 2] {
            let p = pods.get(&format!("web-{i}")).await?;
            assert_eq!(
                p.metadata.uid, before[i].metadata.uid,
                "web-{i} was not restarted"
            );
            assert_eq!(revision(&p), old_rev, "web-{i} stays on the old revision");
            assert!(is_running_and_ready(&p));
        }
        Ok::<_, Error>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn exec_runs_local_command_in_pod_work_dir() {
    run("exec", |t| async move {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("box".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container("main", &[("GREETING", "hello from env")])],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        t.api::<Pod>().create(&PostParams::default(), &pod).await?;
        ready_pod(&t, "box", None).await?;

        let script = r#"pwd; echo "$POD_NAMESPACE/$POD_NAME $CONTAINER_NAME: $GREETING"; tr a-z A-Z; echo written > marker; echo to-stderr >&2"#;
        let out = t
            .exec(
                "box",
                Some("main"),
                &["sh", "-c", script],
                Some(b"ping over stdin\n"),
            )
            .await?;
        let work_dir = t.cp.pods_dir().join(&t.namespace).join("box");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            vec![
                work_dir.to_string_lossy().as_ref(),
                &format!("{}/box main: hello from env", t.namespace),
                "PING OVER STDIN",
            ],
            "stderr: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim(), "to-stderr");
        assert_eq!(out.exit_code(), Some(0));
        let marker = std::fs::read_to_string(work_dir.join("marker")).map_err(|source| {
            Error::Io {
                path: work_dir.join("marker"),
                source,
            }
        })?;
        assert_eq!(marker, "written\n");

        let failed = t
            .exec("box", None, &["sh", "-c", "echo nope >&2; exit 3"], None)
            .await?;
        assert_eq!(failed.exit_code(), Some(3), "status: {:?}", failed.status);
        assert_eq!(failed.stderr.trim(), "nope");
        Ok::<_, Error>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn garbage_collector_removes_dependents() {
    run("gc", |t| async move {
        let cms = t.api::<ConfigMap>();
        let owner = cms
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: ObjectMeta {
                        name: Some("owner".into()),
                        ..ObjectMeta::default()
                    },
                    ..ConfigMap::default()
                },
            )
            .await?;
        let owner_ref = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.metadata.uid.clone().unwrap_or_default(),
            ..OwnerReference::default()
        };
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![owner_ref.clone()]),
            ..ObjectMeta::default()
        };
        cms.create(
            &PostParams::default(),
            &ConfigMap {
                metadata: meta("dependent"),
                ..ConfigMap::default()
            },
        )
        .await?;
        t.api::<Pod>()
            .create(
                &PostParams::default(),
                &Pod {
                    metadata: meta("dependent-pod"),
                    spec: Some(PodSpec {
                        containers: vec![container("main", &[])],
                        ..PodSpec::default()
                    }),
                    ..Pod::default()
                },
            )
            .await?;
        ready_pod(&t, "dependent-pod", None).await?;

        cms.delete("owner", &DeleteParams::background()).await?;
        t.wait_deleted::<ConfigMap>("dependent", "the dependent ConfigMap to be collected")
            .await?;
        let pods = t.api::<Pod>();
        t.eventually("the dependent pod to be collected", || async {
            Ok(pods.get_opt("dependent-pod").await?.is_none().then_some(()))
        })
        .await?;
        Ok::<_, Error>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn volume_claim_template_binds_and_pod_starts() {
    run("pvc", |t| async move {
        let mut sts = statefulset("db", 1, false);
        {
            let spec = &mut sts.spec;
            spec.volume_claim_templates = Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some([("storage".to_string(), Quantity("2Gi".into()))].into()),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]);
            if let Some(pod) = spec.template.spec.as_mut() {
                pod.containers[0].volume_mounts = Some(vec![VolumeMount {
                    name: "data".into(),
                    mount_path: "/var/lib/tarantool".into(),
                    ..VolumeMount::default()
                }]);
            }
        }
        t.api::<StatefulSet>()
            .create(&PostParams::default(), &sts)
            .await?;
        let pvc = t
            .wait_for(
                "data-db-0",
                "the PVC to bind",
                |c: Option<&PersistentVolumeClaim>| {
                    c.and_then(|c| c.status.as_ref())
                        .is_some_and(|s| s.phase.as_deref() == Some("Bound"))
                },
            )
            .await?;
        let pod = ready_pod(&t, "db-0", None).await?;
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
        );

        let pv_name = pvc.spec.and_then(|s| s.volume_name).unwrap_or_default();
        let pvs = Api::<PersistentVolume>::all(t.client.clone());
        let pv = pvs.get(&pv_name).await?;
        let spec = pv.spec.unwrap_or_default();
        assert_eq!(
            spec.capacity.and_then(|c| c.get("storage").cloned()),
            Some(Quantity("2Gi".into()))
        );
        let host_path = spec.host_path.map(|h| h.path).unwrap_or_default();
        assert!(
            host_path.starts_with(&*t.cp.volumes_dir().to_string_lossy()),
            "{host_path}"
        );
        assert!(std::path::Path::new(&host_path).is_dir());

        // Released volumes of the default class are deleted with their data.
        t.api::<StatefulSet>()
            .delete("db", &DeleteParams::default())
            .await?;
        let pods = t.api::<Pod>();
        t.eventually("db-0 to go away", || async {
            Ok(pods.get_opt("db-0").await?.is_none().then_some(()))
        })
        .await?;
        t.api::<PersistentVolumeClaim>()
            .delete("data-db-0", &DeleteParams::default())
            .await?;
        t.eventually("the released PV to be deleted", || async {
            Ok(pvs.get_opt(&pv_name).await?.is_none().then_some(()))
        })
        .await?;
        assert!(!std::path::Path::new(&host_path).exists());
        Ok::<_, Error>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn helm_installs_and_uninstalls_a_chart() {
    run("helm", |t| async move {
        let chart = t.cp.repo().join("tests/control-plane/testdata/hello-chart");
        let chart = chart.to_string_lossy();
        t.helm(&[
            "install",
            "hello",
            &chart,
            "--set",
            "greeting=hi",
            "--wait",
            "--timeout",
            "3m",
        ])
        .await?;
        let cm = t.api::<ConfigMap>().get("hello-greeting").await?;
        assert_eq!(
            cm.data.and_then(|d| d.get("greeting").cloned()).as_deref(),
            Some("hi")
        );
        let pods = t
            .api::<Pod>()
            .list(&ListParams::default().labels("app.kubernetes.io/instance=hello"))
            .await?;
        assert_eq!(pods.items.len(), 2);
        assert!(pods.items.iter().all(is_running_and_ready));
        let status = t.helm(&["status", "hello", "-o", "json"]).await?;
        assert!(status.contains("\"status\":\"deployed\""), "{status}");

        t.helm(&["uninstall", "hello", "--wait", "--timeout", "3m"])
            .await?;
        assert!(
            t.api::<ConfigMap>()
                .get_opt("hello-greeting")
                .await?
                .is_none()
        );
        let list = t.helm(&["list", "-q"]).await?;
        assert!(list.trim().is_empty(), "{list}");
        Ok::<_, Error>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn annotated_pod_runs_its_command_locally_while_it_exists() {
    run("run-locally", |t| async move {
        let mut main = container("main", &[("GREETING", "hi")]);
        main.command = Some(vec!["sh".into(), "-c".into()]);
        main.args = Some(vec![
            r#"echo $$ > pid; echo "$POD_NAME $GREETING" > started; exec sleep 600"#.into(),
        ]);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("proc".into()),
                annotations: Some(
                    [(
                        "local.tarantool-operator.dev/run".to_string(),
                        "true".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![main],
                termination_grace_period_seconds: Some(5),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        t.api::<Pod>().create(&PostParams::default(), &pod).await?;
        ready_pod(&t, "proc", None).await?;
        let dir = t.cp.pods_dir().join(&t.namespace).join("proc");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let pid = t
            .eventually("the pod's process to start", || async {
                let started = read("started");
                let pid = read("pid").trim().parse::<u32>().ok();
                Ok(pid.filter(|_| started.ends_with('\n')))
            })
            .await?;
        assert_eq!(read("started"), "proc hi\n");
        let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_dir.exists(), "the process runs while the pod exists");
        let out = t
            .exec("proc", Some("main"), &["cat", "started"], None)
            .await?;
        assert_eq!(out.stdout, "proc hi\n");

        t.api::<Pod>()
            .delete("proc", &DeleteParams::default())
            .await?;
        t.eventually("the pod's process to stop", || async {
            Ok((!proc_dir.exists()).then_some(()))
        })
        .await?;
        Ok::<_, Error>(())
    })
    .await;
}

/// The Kubernetes release `versions.env` pins for this run: the oldest
/// supported one when the control plane was built with `CP_KUBERNETES=oldest`
/// (`make test-control-plane-oldest`), the newest otherwise.
fn pinned_version(repo: &std::path::Path) -> String {
    let key = match std::env::var("CP_KUBERNETES").as_deref() {
        Ok("oldest") => "KUBERNETES_OLDEST_VERSION=",
        _ => "KUBERNETES_VERSION=",
    };
    let versions =
        std::fs::read_to_string(repo.join("tests/control-plane/versions.env")).unwrap_or_default();
    versions
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_control_plane_runs_the_pinned_kubernetes_release() {
    run("version", |t| async move {
        let wanted = pinned_version(t.cp.repo());
        assert!(wanted.starts_with("v1."), "versions.env pins {wanted:?}");
        let served = t.client.apiserver_version().await?.git_version;
        assert_eq!(served, wanted, "the apiserver of this run");
        let kubectl = t.kubectl(&["version", "--client", "-o", "json"]).await?;
        assert!(
            kubectl.contains(&format!("\"gitVersion\": \"{wanted}\"")),
            "kubectl of this run: {kubectl}"
        );
        Ok::<_, Error>(())
    })
    .await;
}
