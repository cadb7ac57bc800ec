//! Node maintenance on the dev cluster with the Cartridge double: the
//! operator binary serves the eviction webhook (HTTPS, its own rotating
//! certificate), registered with the real apiserver by a
//! ValidatingWebhookConfiguration that calls `https://127.0.0.1:<port>`
//! and whose `caBundle` the operator keeps. `kubectl drain` of the node
//! holding storage masters moves each master before its pod is evicted;
//! an eviction that cannot be served is admitted after the bound with a
//! Warning Event; certificate rotations keep the apiserver calling.
//!
//! The tests drain nodes and evict pods of the shared kwok nodes: they run
//! one at a time ([`SERIAL`]).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{DeleteParams, EvictParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tarantool_operator_api::Role;
use tarantool_operator_timeline::record::Recorder;
use tarantool_operator_timeline::render::{RenderOptions, render_svg};
use tarantool_operator_timeline::{Kind, Record, read_jsonl};
use test_harness::TestContext;

use support::double::cartridge as topology;
use support::scenario::{Failure, check, create_article, ready, wait_bootstrapped, wait_joined};
use support::{double, invariants, process};

/// One test at a time: a drain evicts every pod of its node, whichever
/// test's it is.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The Secret the operator keeps its certificate in (its default name).
const SECRET: &str = "tarantool-operator-webhook-tls";

/// The webhook's registration for the test's namespace only, calling the
/// operator on 127.0.0.1:`port`, without a caBundle (the operator adds it).
fn registration(
    name: &str,
    namespace: &str,
    port: u16,
) -> Result<ValidatingWebhookConfiguration, Failure> {
    serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "evictions.tarantool.io",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "NoneOnDryRun",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/validate-eviction")},
            "rules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["pods/eviction"], "scope": "Namespaced",
            }],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }],
    }))
    .map_err(|e| Failure::Check(format!("the registration: {e}")))
}

/// The operator with the webhook on a free port (and `flags`), the
/// webhook registered, and the article's cluster bootstrapped on the
/// double. Returns the child, its log and the registration's name.
async fn start(
    t: &TestContext,
    flags: &[&str],
) -> Result<(tokio::process::Child, PathBuf, String), Failure> {
    t.install_crds().await?;
    let port = process::free_port().map_err(Failure::Check)?;
    let name = format!("evictions-{}", t.namespace);
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(t.client.clone());
    configurations
        .create(
            &PostParams::default(),
            &registration(&name, &t.namespace, port)?,
        )
        .await?;
    let port = port.to_string();
    let configuration = format!("--eviction-webhook-configuration={name}");
    let lease_namespace = format!("--lease-namespace={}", t.namespace);
    let mut all = vec![
        "--eviction-webhook-port",
        port.as_str(),
        "--eviction-webhook-hosts=127.0.0.1,localhost",
        configuration.as_str(),
        lease_namespace.as_str(),
        "--eviction-webhook-refresh-seconds=1",
    ];
    all.extend_from_slice(flags);
    let (child, log) = process::start_operator(t, &all)?;
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    Ok((child, log, name))
}

/// Removes the registration (cluster-scoped: the namespace's deletion
/// does not take it).
async fn unregister(t: &TestContext, name: &str) {
    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(t.client.clone());
    if let Err(e) = configurations.delete(name, &DeleteParams::default()).await {
        eprintln!("deleting {name}: {e}");
    }
}

/// Storage replica set -> master pod, as the Role's status says it and as
/// the double says it, once the two agree.
async fn agreed_masters(t: &TestContext) -> Result<BTreeMap<String, String>, Failure> {
    Ok(t.eventually(
        "the storage Role's status and the double to agree on the masters",
        || async {
            let role = t.api::<Role>().get("storage").await?;
            let status: BTreeMap<String, String> = role
                .status
                .iter()
                .flat_map(|s| s.replicasets.iter())
                .filter_map(|r| Some((r.name.clone(), r.master.clone()?)))
                .collect();
            let Ok(cartridge) = topology(t).await else {
                return Ok(None);
            };
            let double: BTreeMap<String, String> = cartridge
                .iter()
                .filter(|r| r.alias.starts_with("storage"))
                .filter_map(|r| Some((r.alias.clone(), r.master_alias()?.to_string())))
                .collect();
            Ok((status.len() == 2 && status == double).then_some(status))
        },
    )
    .await?)
}

/// What an eviction of `pod` got: `Ok(())` admitted, `Err(message)`
/// denied with 429.
async fn evict(t: &TestContext, pod: &str, dry_run: bool) -> Result<Result<(), String>, Failure> {
    let params = EvictParams {
        delete_options: None,
        post_options: PostParams {
            dry_run,
            ..PostParams::default()
        },
    };
    // kube's client retries a 429 on its own (with a backoff growing to
    // minutes): a drain's evictions come from a client that reports it.
    let mut config = t.cp.config().await?;
    config.default_retry = false;
    let client = kube::Client::try_from(config)?;
    match Api::<Pod>::namespaced(client, &t.namespace)
        .evict(pod, &params)
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Api(status)) if status.code == 429 => Ok(Err(status.message.clone())),
        Err(e) => Err(e.into()),
    }
}

/// Waits until the apiserver calls the webhook over TLS: a dry-run
/// eviction of master `pod` is denied by it (until the operator put its CA
/// into the registration, the apiserver cannot call it and, with
/// `failurePolicy: Ignore`, admits).
async fn wait_webhook_called(t: &TestContext, pod: &str) -> Result<(), Failure> {
    Ok(
        t.eventually("the apiserver to call the eviction webhook", || async {
            Ok(match evict(t, pod, true).await {
                Ok(Err(message)) if message.contains("being moved") => Some(()),
                _ => None,
            })
        })
        .await?,
    )
}

/// Reasons of the Events on Role `role`, with their notes.
async fn role_events(
    t: &TestContext,
    role: &str,
) -> Result<Vec<(String, String, String)>, Failure> {
    let events = t
        .api::<Event>()
        .list(&ListParams::default().fields(&format!(
            "involvedObject.name={role},involvedObject.kind=Role"
        )))
        .await?;
    Ok(events
        .items
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.type_.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect())
}

/// `tarantool-operator timeline record` of the namespace, in the test's
/// process: what the timeline shows of the drain.
struct Recording {
    path: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<usize, tarantool_operator_timeline::TimelineError>>,
}

impl Recording {
    /// Records from now on (once the recorder has listed the pods).
    async fn start(t: &TestContext) -> Result<Self, Failure> {
        let path = std::env::temp_dir().join(format!("{}-drain.jsonl", t.namespace));
        let file = std::fs::File::create(&path)
            .map_err(|e| Failure::Check(format!("{}: {e}", path.display())))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let recorder = Recorder::new(t.client.clone(), &t.namespace).on_ready(ready_tx);
        let task = tokio::spawn(async move {
            recorder
                .run(std::io::BufWriter::new(file), async move {
                    let _ = stopped.await;
                })
                .await
        });
        let _ = ready.await;
        Ok(Self { path, stop, task })
    }

    /// Stops, draws the picture next to the records (its path printed:
    /// docs/drain-timeline.svg is one), and returns the records.
    async fn stop(self) -> Result<Vec<Record>, Failure> {
        let _ = self.stop.send(());
        let written = self
            .task
            .await
            .map_err(|e| Failure::Check(format!("the recorder: {e}")))?;
        written.map_err(|e| Failure::Check(format!("the recorder: {e}")))?;
        let file = std::fs::File::open(&self.path).map_err(|e| Failure::Check(e.to_string()))?;
        let records =
            read_jsonl(std::io::BufReader::new(file)).map_err(|e| Failure::Check(e.to_string()))?;
        let svg = self.path.with_extension("svg");
        let options = RenderOptions {
            title: Some("kubectl drain of the node holding storage masters".into()),
        };
        std::fs::write(&svg, render_svg(&records, &options))
            .map_err(|e| Failure::Check(e.to_string()))?;
        eprintln!(
            "drain timeline: {} ({})",
            svg.display(),
            self.path.display()
        );
        Ok(records)
    }
}

/// Node of each pod of the namespace.
async fn nodes(t: &TestContext) -> Result<BTreeMap<String, String>, Failure> {
    Ok(t.api::<Pod>()
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|p| Some((p.name_any(), p.spec.as_ref()?.node_name.clone()?)))
        .collect())
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn a_drain_moves_storage_masters_before_their_pods_are_evicted() {
    let _serial = SERIAL.lock().await;
    test_harness::run("drain-masters", |t| async move {
        let (mut child, log, registration) =
            start(&t, &["--eviction-max-wait-seconds=300"]).await?;
        let mut drained = None;
        let outcome = async {
            let before = agreed_masters(&t).await?;
            let placed = nodes(&t).await?;
            // The node holding the most storage masters.
            let mut per_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for master in before.values() {
                if let Some(node) = placed.get(master) {
                    per_node
                        .entry(node.clone())
                        .or_default()
                        .push(master.clone());
                }
            }
            let (node, moved) = per_node
                .into_iter()
                .max_by_key(|(_, masters)| masters.len())
                .ok_or_else(|| {
                    Failure::Check(format!("no master placed: {before:?} {placed:?}"))
                })?;
            wait_webhook_called(&t, &moved[0]).await?;
            let watcher = invariants::watch(&t, 2, invariants::over_exec(&t)).await;
            let recording = Recording::start(&t).await?;
            drained = Some(node.clone());
            let out = test_harness::output(t.cp.command("kubectl").args([
                "drain",
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--timeout=300s",
                &node,
            ]))
            .await?;
            eprintln!("kubectl drain {node}:\n{out}");
            // Every pod of the namespace is back, elsewhere.
            t.eventually("every pod ready again off the drained node", || async {
                let pods = t.api::<Pod>().list(&ListParams::default()).await?;
                let back = pods.items.len() == 6
                    && pods.items.iter().all(|p| {
                        ready(p)
                            && p.spec.as_ref().and_then(|s| s.node_name.as_deref())
                                != Some(node.as_str())
                    });
                Ok(back.then_some(()))
            })
            .await?;
            let records = recording.stop().await?;
            let after = agreed_masters(&t).await?;
            let role = t.api::<Role>().get("storage").await?;
            for (replicaset, old) in before.iter().filter(|(_, m)| moved.contains(m)) {
                let new = after.get(replicaset).cloned().unwrap_or_default();
                check(&new != old, || {
                    format!("{replicaset}: master {old} was not moved ({after:?})")
                })?;
                let switch = role
                    .status
                    .iter()
                    .flat_map(|s| s.replicasets.iter())
                    .find(|r| &r.name == replicaset)
                    .and_then(|r| r.switch.clone());
                // The recorded timeline: the new master took over before
                // the old one's pod was deleted.
                let took_over = records
                    .iter()
                    .find(|r| r.kind == Kind::Master && r.pod == new && r.detail.contains(old.as_str()))
                    .map(|r| r.t);
                let deleted = records
                    .iter()
                    .find(|r| r.kind == Kind::Deleted && &r.pod == old)
                    .map(|r| r.t);
                check(took_over.is_some() && deleted.is_some() && took_over < deleted, || {
                    format!("{replicaset}: {new} master at {took_over:?}, {old} deleted at {deleted:?}")
                })?;
                check(
                    switch
                        .as_ref()
                        .is_some_and(|s| &s.from == old && s.to == new && s.writable_at.is_some()),
                    || format!("{replicaset}: the status records {switch:?}, not {old} -> {new}"),
                )?;
            }
            let (clean, report, evicted) = {
                let seen = watcher.lock().unwrap_or_else(|e| e.into_inner());
                (seen.clean(), format!("{seen:?}"), seen.deleted.clone())
            };
            check(clean, || format!("invariants: {report}"))?;
            for master in &moved {
                check(evicted.contains(master), || {
                    format!("{master} was never evicted: {report}")
                })?;
            }
            // The apiserver called the webhook: it denied the masters'
            // first evictions, and the operator moved them.
            let events = role_events(&t, "storage").await?;
            for wanted in ["EvictionDeferred", "EvictionHandOver"] {
                check(events.iter().any(|(r, _, _)| r == wanted), || {
                    format!("no {wanted} Event on Role storage: {events:?}")
                })?;
            }
            Ok(())
        }
        .await;
        if let Some(node) = drained {
            let _ = test_harness::output(t.cp.command("kubectl").args(["uncordon", &node])).await;
        }
        unregister(&t, &registration).await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn rotations_keep_the_webhook_called_and_an_unservable_eviction_is_admitted_after_the_bound()
{
    let _serial = SERIAL.lock().await;
    test_harness::run("drain-bound", |t| async move {
        // Certificates valid 30 s (a new one with 10 s left); evictions
        // held back at most 15 s.
        let (mut child, log, registration) = start(
            &t,
            &["--eviction-max-wait-seconds=15", "--eviction-webhook-cert-validity-seconds=30"],
        )
        .await?;
        let outcome = async {
            let masters = agreed_masters(&t).await?;
            let (replicaset, master) = masters
                .iter()
                .next()
                .map(|(r, m)| (r.clone(), m.clone()))
                .ok_or_else(|| Failure::Check("no storage master".into()))?;
            wait_webhook_called(&t, &master).await?;
            // Rotation: dry-run evictions keep being judged by the webhook
            // (denied: the master) across certificates, beyond the first
            // certificate's validity. One that the apiserver could not
            // deliver would be admitted (failurePolicy: Ignore).
            let secrets = t.api::<Secret>();
            let configurations: Api<ValidatingWebhookConfiguration> = Api::all(t.client.clone());
            let mut certificates = BTreeSet::new();
            let mut bundles = BTreeSet::new();
            let mut calls = 0;
            while certificates.len() < 3 && calls < 600 {
                let secret = secrets.get(SECRET).await?;
                if let Some(cert) = secret.data.as_ref().and_then(|d| d.get("tls.crt")) {
                    certificates.insert(cert.0.clone());
                }
                let bundle = configurations
                    .get(&registration)
                    .await?
                    .webhooks
                    .and_then(|w| w.into_iter().next())
                    .and_then(|w| w.client_config.ca_bundle);
                if let Some(bundle) = bundle {
                    bundles.insert(bundle.0);
                }
                let got = evict(&t, &master, true).await?;
                check(matches!(&got, Err(m) if m.contains("being moved")), || {
                    format!("dry-run eviction #{calls} of master {master} after {} certificates: {got:?}", certificates.len())
                })?;
                calls += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            check(certificates.len() >= 3 && bundles.len() >= 3, || {
                format!("{} certificates and {} caBundles seen in {calls} calls", certificates.len(), bundles.len())
            })?;
            // The bound: no replica can take over (it lags 100 s), so the
            // master's evictions are denied until 15 s after the first.
            let replica = topology(&t)
                .await?
                .iter()
                .find(|r| r.alias == replicaset)
                .and_then(|r| r.servers.iter().find(|s| s.alias != master).map(|s| s.alias.clone()))
                .ok_or_else(|| Failure::Check(format!("no replica in {replicaset}")))?;
            double::set(&t, &format!("set_lag('{}', '{replica}', 100)", t.namespace)).await?;
            // Evictions as a drain sends them, one a second, until one is
            // admitted (a bounded number of tries, not a clock).
            let mut denied = 0;
            let mut admitted = false;
            for _ in 0..180 {
                if evict(&t, &master, false).await?.is_ok() {
                    admitted = true;
                    break;
                }
                denied += 1;
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            check(admitted, || format!("the eviction of {master} was never admitted ({denied} denials)"))?;
            check(denied > 0, || "the first eviction was not denied".into())?;
            let events = role_events(&t, "storage").await?;
            check(
                events.iter().any(|(r, ty, note)| r == "EvictionAdmittedAfterWait" && ty == "Warning" && note.contains(&master)),
                || format!("no Warning EvictionAdmittedAfterWait for {master}: {events:?}"),
            )?;
            check(events.iter().any(|(r, _, _)| r == "EvictionNoCandidate"), || {
                format!("no EvictionNoCandidate Event: {events:?}")
            })?;
            double::set(&t, &format!("set_lag('{}', '{replica}', nil)", t.namespace)).await?;
            Ok(())
        }
        .await;
        unregister(&t, &registration).await;
        process::finish(&mut child, &log, outcome).await
    })
    .await;
}
