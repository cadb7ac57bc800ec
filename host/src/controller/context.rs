//! What every reconcile gets.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Reporter;

use std::sync::RwLock;

use super::cache::Cache;
use super::metrics::Metrics;
use super::role::rollout::pins::Pins;
use crate::console::access::ConsolePolicy;
use crate::fence::Fence;
use crate::strategy::Registry;
use crate::topology::Connector;

/// Operator settings that change how controllers behave.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often a converged object is looked at again (and, for a Cluster,
    /// its topology probed over exec). Kept long: everything that matters
    /// arrives as a watch event.
    pub resync: Duration,
    /// Delay before looking again while waiting on something (pods to
    /// become ready, buckets to drain).
    pub poll: Duration,
    /// The longest a pass (its steps, then its status write) may take: a
    /// request that hangs fails the pass with `PassTimeout` instead of
    /// holding the object forever.
    pub pass_timeout: Duration,
    /// The first retry of an object whose pass failed comes after this
    /// (jittered up to twice it); each further failure doubles it.
    pub backoff_min: Duration,
    /// The longest base delay between retries of a failing object
    /// (jittered up to twice it).
    pub backoff_max: Duration,
    /// Passes of one controller running at once (Clusters, and Roles,
    /// each). Bounds the operator's load on the apiserver and on exec when
    /// many objects need work together.
    pub concurrency: u16,
    /// Writes (applies, deletions) one pass has in flight at once.
    pub writes_in_flight: usize,
    /// Which console commands a Cluster may choose (`run
    /// --allow-custom-console-command`).
    pub console: ConsolePolicy,
    /// How often a converged Cluster that reads a password from a Secret
    /// is looked at again, so a rotated Secret is applied: the operator may
    /// `get` Secrets but not watch them (least privilege), so no event
    /// tells it. Shorter than `resync`.
    pub secret_refresh: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            poll: Duration::from_secs(2),
            pass_timeout: Duration::from_secs(120),
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            concurrency: 16,
            writes_in_flight: 16,
            console: ConsolePolicy::default(),
            secret_refresh: Duration::from_secs(60),
        }
    }
}

/// Shared by every reconcile of both controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Makes topology clients for pods.
    pub connector: Arc<dyn Connector>,
    /// Publishes Events, in order, off the passes.
    pub(crate) events: super::events::EventQueue,
    /// Who publishes the Events.
    pub reporter: Reporter,
    /// Reconcile metrics.
    pub metrics: Arc<Metrics>,
    /// Behaviour settings.
    pub settings: Settings,
    /// Update strategies: built-ins and loaded components.
    pub strategies: Arc<Registry>,
    /// The strategy each running rollout started with: a component
    /// changed mid-rollout takes effect at the next one.
    pub pins: Pins,
    /// The statuses written last (a pass starts from them, not from a
    /// watch cache that may lag behind).
    pub written: super::status::Written,
    /// Whether this replica may still act for the Lease it holds; every
    /// step checks it first (the client's [`crate::fence::FenceLayer`]
    /// guards each request). Never trips without leader election.
    pub fence: Arc<Fence>,
    /// The objects whose passes keep failing, and when to retry each.
    pub(crate) backoffs: super::backoff::Backoffs,
    /// The stores the running controllers fill; `None` outside
    /// [`super::run::run`] (unit tests), where passes ask the apiserver.
    cache: RwLock<Option<Arc<Cache>>>,
}

impl Context {
    /// A context reporting Events as `reporter`.
    pub fn new(
        client: Client,
        connector: Arc<dyn Connector>,
        metrics: Arc<Metrics>,
        settings: Settings,
        strategies: Arc<Registry>,
        reporter: Reporter,
    ) -> Self {
        Self {
            events: super::events::EventQueue::start(client.clone(), reporter.clone()),
            backoffs: super::backoff::Backoffs::new(settings.backoff_min, settings.backoff_max),
            reporter,
            client,
            connector,
            metrics,
            settings,
            strategies,
            pins: Pins::default(),
            written: super::status::Written::default(),
            fence: Fence::unfenced(),
            cache: RwLock::default(),
        }
    }

    /// The same context, its steps checking `fence` (which should also
    /// guard the context's client: see [`crate::fence::FenceLayer`]).
    pub fn with_fence(mut self, fence: Arc<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The controllers' stores, while they run.
    pub fn cache(&self) -> Option<Arc<Cache>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the stores the controllers now fill (each run has its own).
    pub fn set_cache(&self, cache: Option<Arc<Cache>>) {
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = cache;
    }
}
