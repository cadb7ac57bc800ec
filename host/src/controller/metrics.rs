//! Prometheus metrics of the controllers (prometheus-client).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `cluster` or `role`.
    pub controller: String,
}

/// Labels of a failed step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepErrorLabels {
    /// `cluster` or `role`.
    pub controller: String,
    /// The step that failed.
    pub step: String,
    /// [`Error::reason`](super::Error::reason).
    pub reason: String,
}

/// Labels of an eviction the webhook decided on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvictionLabels {
    /// `admit` or `deny`.
    pub decision: String,
    /// Why (see `docs/operations.md`).
    pub reason: String,
}

/// The controllers' metrics.
#[derive(Debug)]
pub struct Metrics {
    /// Reconcile passes.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// Failed passes, by step and reason.
    pub errors: Family<StepErrorLabels, Counter>,
    /// Duration of a pass.
    pub duration: Family<ControllerLabels, Histogram>,
    /// Seconds a master switch left its replica set without a writable
    /// instance (an upper bound; see `role::switchover`).
    pub switch_write_unavailable: Histogram,
    /// Evictions the eviction webhook decided on, by decision and reason.
    pub evictions: Family<EvictionLabels, Counter>,
}

impl Metrics {
    /// Metrics registered in `registry` under `tarantool_operator_`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            // 50 ms to about 100 s.
            switch_write_unavailable: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            evictions: Family::default(),
        };
        let registry = registry.sub_registry_with_prefix("tarantool_operator");
        registry.register("reconciles", "Reconcile passes", metrics.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconcile passes by step and reason",
            metrics.errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile pass",
            metrics.duration.clone(),
        );
        registry.register(
            "switch_write_unavailable_seconds",
            "Time from a master switch being sent until Cartridge reports the new master writable",
            metrics.switch_write_unavailable.clone(),
        );
        registry.register(
            "evictions",
            "Evictions the eviction webhook admitted or denied, by reason",
            metrics.evictions.clone(),
        );
        metrics
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> Self {
        Self::new(&mut Registry::default())
    }
}
