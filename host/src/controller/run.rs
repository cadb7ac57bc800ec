//! Both controllers on one client, until shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, reflector};
use kube::runtime::utils::Backoff;
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, warn};

use super::cache::Cache;
use super::cluster::ClusterPass;
use super::fleet::Fleet;
use super::lifecycle::{Reconciler, error_policy, reconcile};
use super::role::RolePass;
use super::{Context, wake};
use crate::api::cluster::Cluster;
use crate::api::role::Role;
use crate::resources::labels;

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Drops what no pass reads from a stored object before the store keeps
/// it: `managedFields` (an entry per field manager, often larger than the
/// rest of a pod). Drift is judged on values, never on field managers.
fn lean<K: ResourceExt>(object: &mut K) {
    object.managed_fields_mut().clear();
}

/// A kind the controllers watch into a store.
trait Watched:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The watch of the objects of kind `K` that `config` selects, feeding the
/// store behind `writer` (without `managedFields`), retried with
/// [`watch_backoff`]: its events, for the stream that wakes a controller.
fn stored<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Watched,
{
    reflector(writer, watcher(api, config).modify(lean)).backoff(watch_backoff())
}

/// The operator's objects of kind `K` (`owned` selects them): every change
/// goes into the store behind `writer`, and the stream yields those that
/// moved `wakes` (or were deleted), to wake their Role ([`wake::changed`]).
fn stored_changes<K>(
    writer: reflector::store::Writer<K>,
    api: Api<K>,
    owned: watcher::Config,
    wakes: impl Fn(&K) -> u64 + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Watched,
{
    wake::changed(stored(writer, api, owned), wakes)
}

/// A controller's own objects: the store its passes read (every change,
/// status included) and the stream that wakes it, which drops changes
/// [`wake::wakes`] calls status-only, so that a pass's own status write does
/// not start another pass at once. A deleted object, or one missing from a
/// fresh list, leaves `fleet` (the gauges) as `controller`'s.
fn own_objects<K>(
    api: Api<K>,
    controller: &'static str,
    fleet: Arc<Fleet>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Watched,
{
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let wakes = reflector(
        writer,
        watcher(api, watcher::Config::default())
            .modify(lean)
            .backoff(watch_backoff()),
    )
    // The store has the event applied by now.
    .inspect(move |event| match event {
        Ok(watcher::Event::Delete(object)) => fleet.forget(
            controller,
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        ),
        Ok(watcher::Event::InitDone) => fleet.retain(controller, |ns, name| {
            store.get(&ObjectRef::new(name).within(ns)).is_some()
        }),
        _ => {}
    })
    .applied_objects()
    .predicate_filter(wake::wakes, PredicateConfig::default());
    (reader, wakes)
}

/// The Role an object of the operator belongs to, by its Role label.
fn role_of<K: Resource + ResourceExt>(object: K) -> Option<ObjectRef<Role>> {
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    object
        .labels()
        .get(labels::ROLE)
        .map(|role| ObjectRef::<Role>::new(role).within(&namespace))
}

/// The shortest wait before a failed watch is tried again.
pub const WATCH_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(800);
/// The longest (jittered: up to twice that). Shorter than kube-runtime's
/// default (30 s, so up to a minute): after an apiserver restart the first
/// retries can still fail (the apiserver binds its port before it serves,
/// pooled connections to the old process are dead), and each such failure
/// at the default's ceiling left a watch, and the passes it wakes, idle for
/// up to a minute more; an operator that had seen the apiserver back took
/// minutes to act again. At this ceiling an outage costs each watch one
/// request every 5 to 10 s.
pub const WATCH_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// The backoff of every watch of the controllers: from
/// [`WATCH_BACKOFF_MIN`] doubling to [`WATCH_BACKOFF_MAX`], each delay
/// stretched by a random factor in [1, 2); it starts over once the watch
/// delivers again.
fn watch_backoff() -> watcher::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(WATCH_BACKOFF_MIN)
        .with_max_delay(WATCH_BACKOFF_MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .into()
}

/// The backoff `Controller` puts on all of its watches together: none.
/// kube-runtime's default pauses every watch of a controller (and so the
/// stores they feed) for as long as a backoff shared by all of them says,
/// after an error of any one: after an apiserver restart, with nine watches
/// failing and relisting, that pause grew to 40-60 s at a time, during
/// which no pod, StatefulSet or Role change reached a pass and the stores
/// the passes read stayed stale (found by `faults.rs`). Each watch here has
/// its own backoff ([`watch_backoff`]) instead, so an error of one delays
/// only that one.
#[derive(Debug, Clone, Copy)]
struct NoSharedBackoff;

impl Iterator for NoSharedBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::ZERO)
    }
}

impl Backoff for NoSharedBackoff {
    fn reset(&mut self) {}
}

/// The metadata of owned objects of one kind, as `Controller::owns` would
/// watch them, but with [`watch_backoff`]: `owns` retries a failed watch
/// at once, so while the apiserver is down every such watch would reconnect
/// in a tight loop. Every watch of the controllers backs off.
fn owned_metadata<K>(
    api: Api<PartialObjectMeta<K>>,
    config: &watcher::Config,
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, config.clone())
        .backoff(watch_backoff())
        .touched_objects()
}

/// Runs the Cluster and Role controllers until `shutdown` resolves.
/// `namespace` limits them to one namespace.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let owned =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // Passes read through stores fed by the very streams that wake them
    // (see `cache`): Roles for the Cluster passes; pods, Clusters,
    // StatefulSets, Services and budgets for the Role passes.
    let (cache, writers) = Cache::new();
    ctx.set_cache(Some(Arc::new(cache)));
    let (cluster_reader, cluster_wakes) = own_objects(
        api::<Cluster>(&client, ns),
        <ClusterPass as Reconciler>::CONTROLLER,
        ctx.metrics.fleet.clone(),
    );
    // At most `concurrency` passes of each controller at once.
    let config = controller::Config::default().concurrency(ctx.settings.concurrency);
    let clusters = Controller::for_stream(cluster_wakes, cluster_reader)
        .with_config(config.clone())
        .trigger_backoff(NoSharedBackoff);
    let cluster_store = clusters.store();
    let clusters = clusters
        .owns_stream(owned_metadata(
            api::<PartialObjectMeta<Service>>(&client, ns),
            &owned,
        ))
        // A Role wakes every Cluster that lists it, owner or not yet; its
        // status too (unfiltered): a Cluster waits for its Roles to be Ready.
        .watches_stream(
            stored(writers.roles, api(&client, ns), watcher::Config::default()).touched_objects(),
            move |role: Role| {
                let namespace = role.namespace();
                let name = role.name_any();
                cluster_store
                    .state()
                    .into_iter()
                    .filter(|c| {
                        c.namespace() == namespace && c.spec.role_names().any(|r| r == name)
                    })
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            reconcile::<ClusterPass>,
            error_policy::<ClusterPass>,
            ctx.clone(),
        )
        .for_each(|result| async move {
            if let Err(e) = result {
                debug!(error = %e, "cluster controller");
            }
        });

    // Each kind wakes a Role only when something a pass reads moved
    // (`wake`): kwok, kubelets and the StatefulSet and disruption
    // controllers write statuses several times per pod restart, and at a
    // thousand pods every extra pass was a console call more.
    let pod_events = stored_changes(
        writers.pods,
        api(&client, ns),
        owned.clone(),
        wake::pod_wakes,
    );
    let cluster_events = stored(
        writers.clusters,
        api(&client, ns),
        watcher::Config::default(),
    )
    .touched_objects();
    // StatefulSets too: a pass reads them from the store (a list only when
    // the store may lag behind the operator's own apply, see
    // `role::observe::store_lags`), and a change wakes the owning Role.
    let statefulset_events = stored_changes(
        writers.statefulsets,
        api(&client, ns),
        owned.clone(),
        wake::statefulset_wakes,
    );
    // The Roles' headless Services: SyncService reads them from the store
    // instead of a GET a pass.
    let service_events =
        stored(writers.services, api(&client, ns), owned.clone()).touched_objects();
    // Budgets too: a pass reads them from the store instead of listing them,
    // and a budget deleted or changed by hand (not its status, which no pass
    // reads) wakes its Role, which puts it back.
    let budget_events = stored_changes(
        writers.budgets,
        api(&client, ns),
        owned.clone(),
        |budget: &PodDisruptionBudget| wake::wakes(budget).unwrap_or_default(),
    );
    let (role_reader, role_wakes) = own_objects(
        api::<Role>(&client, ns),
        <RolePass as Reconciler>::CONTROLLER,
        ctx.metrics.fleet.clone(),
    );
    let roles = Controller::for_stream(role_wakes, role_reader)
        .with_config(config)
        .trigger_backoff(NoSharedBackoff);
    let role_store = roles.store();
    let roles = roles
        .owns_stream(statefulset_events)
        .owns_stream(service_events)
        .watches_stream(pod_events, role_of)
        .watches_stream(budget_events, role_of)
        // A Cluster's change, status included (its bootstrap, its leader),
        // wakes its Roles.
        .watches_stream(cluster_events, |cluster: Cluster| {
            let namespace = cluster.namespace().unwrap_or_default();
            cluster
                .spec
                .role_names()
                .map(|r| ObjectRef::<Role>::new(r).within(&namespace))
                .collect::<Vec<_>>()
        })
        // A custom strategy's ConfigMap wakes the Roles that use it: a new
        // component is validated again. Only labelled ConfigMaps, and only
        // their metadata: the operator keeps no one's data in memory and
        // fetches a component when a pass needs it.
        .watches_stream(
            watcher(
                api::<PartialObjectMeta<ConfigMap>>(&client, ns),
                watcher::Config::default().labels(labels::STRATEGY),
            )
            .backoff(watch_backoff())
            .touched_objects(),
            move |cm: PartialObjectMeta<ConfigMap>| {
                let namespace = cm.namespace();
                let name = cm.name_any();
                role_store
                    .state()
                    .into_iter()
                    .filter(|r| {
                        r.namespace() == namespace
                            && r.spec
                                .update_strategy
                                .config_map_ref
                                .as_ref()
                                .is_some_and(|c| c.name == name)
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stopped(stop_rx))
        .run(reconcile::<RolePass>, error_policy::<RolePass>, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                debug!(error = %e, "role controller");
            }
        });

    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    futures::join!(clusters, roles);
    // The stores stop with the streams: later passes ask the apiserver.
    ctx.set_cache(None);
    // What the last passes reported still goes out (a replica that lost its
    // Lease is fenced: those fail, and are logged).
    if !ctx.events.flush(std::time::Duration::from_secs(5)).await {
        warn!("Events still queued at shutdown were not published");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watches_together_never_wait() {
        let mut shared = NoSharedBackoff;
        for _ in 0..100 {
            assert_eq!(shared.next(), Some(std::time::Duration::ZERO));
        }
    }

    #[test]
    fn a_failing_watch_waits_longer_each_time_up_to_its_ceiling() {
        let mut backoff = watch_backoff();
        // Base delays 0.8, 1.6, 3.2, then 5 s for good; each jittered in
        // [base, 2 * base).
        let bases = [0.8, 1.6, 3.2, 5.0, 5.0, 5.0];
        for (n, base) in bases.iter().enumerate() {
            let base = std::time::Duration::from_secs_f64(*base);
            let got = backoff.next().unwrap_or_default();
            assert!(
                got >= base && got < base * 2,
                "retry {}: {got:?} not in [{base:?}, {:?})",
                n + 1,
                base * 2
            );
        }
    }
}
