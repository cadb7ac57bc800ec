//! Prometheus metrics of the operator (prometheus-client).
//!
//! Every metric is declared once in [`CATALOG`] (name, type, labels,
//! meaning): registration takes its name and help from there, the table in
//! `docs/operations.md` is [`markdown_table`] (checked by a test), and the
//! chart's dashboard and alerting rules may name only metrics of the
//! catalog (checked by a test). A new metric is a `const` [`MetricDoc`],
//! an entry in [`CATALOG`], and its registration in [`Metrics::new`].

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use super::fleet::Fleet;
use crate::api::Reason;

/// The prefix of every metric the operator exports.
pub const PREFIX: &str = "tarantool_operator";

/// The type of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (exported with `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The type as the exposition format writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric as users see it.
#[derive(Clone, Copy, Debug)]
pub struct MetricDoc {
    /// The name after [`PREFIX`] and before a type's suffix.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its labels.
    pub labels: &'static [&'static str],
    /// What it counts or measures (also its `# HELP`).
    pub help: &'static str,
}

impl MetricDoc {
    /// The family's name: what `# TYPE` names.
    pub fn family(&self) -> String {
        format!("{PREFIX}_{}", self.name)
    }

    /// The names its samples carry, the ones a query names.
    pub fn series(&self) -> Vec<String> {
        let family = self.family();
        match self.kind {
            Kind::Counter => vec![format!("{family}_total")],
            Kind::Gauge => vec![family],
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{family}{s}"))
                .collect(),
        }
    }

    /// The name the table shows: the counter's `_total`, the histogram's
    /// family.
    fn shown(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.family()),
            _ => self.family(),
        }
    }
}

/// Reconcile passes.
pub const RECONCILES: MetricDoc = MetricDoc {
    name: "reconciles",
    kind: Kind::Counter,
    labels: &["controller"],
    help: "Reconcile passes, by controller (cluster, role)",
};
/// Failed passes.
pub const RECONCILE_ERRORS: MetricDoc = MetricDoc {
    name: "reconcile_errors",
    kind: Kind::Counter,
    labels: &["controller", "step", "reason"],
    help: "Failed reconcile passes, by the step that failed and its reason",
};
/// Duration of a pass.
pub const RECONCILE_DURATION: MetricDoc = MetricDoc {
    name: "reconcile_duration_seconds",
    kind: Kind::Histogram,
    labels: &["controller"],
    help: "Duration of a reconcile pass (waits for pods end a pass, they are not in it)",
};
/// Write unavailability of master switches.
pub const SWITCH_WRITE_UNAVAILABLE: MetricDoc = MetricDoc {
    name: "switch_write_unavailable_seconds",
    kind: Kind::Histogram,
    labels: &[],
    help: "Time from a master switch being sent until Cartridge reports the new master writable (an upper bound of the replica set's write unavailability)",
};
/// A strategy's plan call as a Role pass waits for it.
pub const STRATEGY_PLAN: MetricDoc = MetricDoc {
    name: "strategy_plan_seconds",
    kind: Kind::Histogram,
    labels: &[],
    help: "Duration of a strategy's plan call as a Role pass waits for it (call slot, hand-off, sandboxed call): the strategy engine's share of pass time",
};
/// Evictions the eviction webhook decided on.
pub const EVICTIONS: MetricDoc = MetricDoc {
    name: "evictions",
    kind: Kind::Counter,
    labels: &["decision", "reason"],
    help: "Pod evictions the eviction webhook admitted or denied, by decision (admit, deny) and reason",
};
/// Strategy decisions the guard refused.
pub const STRATEGY_REFUSALS: MetricDoc = MetricDoc {
    name: "strategy_refusals",
    kind: Kind::Counter,
    labels: &["reason"],
    help: "Update strategy decisions the guard refused (nothing of them was done), by reason",
};
/// Whether this replica acts.
pub const LEADER: MetricDoc = MetricDoc {
    name: "leader",
    kind: Kind::Gauge,
    labels: &[],
    help: "1 while this replica runs the controllers (holds the Lease, or runs without --leader-elect), else 0",
};
/// Leadership gained and lost.
pub const LEADERSHIP_CHANGES: MetricDoc = MetricDoc {
    name: "leadership_changes",
    kind: Kind::Counter,
    labels: &["change"],
    help: "Leadership changes of this replica: acquired (took the Lease), lost (fenced or the Lease taken; the replica then exits)",
};
/// Clusters and Roles by how their last pass ended.
pub const OBJECTS: MetricDoc = MetricDoc {
    name: "objects",
    kind: Kind::Gauge,
    labels: &["controller", "condition", "reason"],
    help: "Clusters and Roles by how their last pass ended: condition Ready, Progressing (waiting) or Degraded (failed), with the condition's reason",
};
/// Roles with a rollout in progress.
pub const ROLLOUTS: MetricDoc = MetricDoc {
    name: "rollouts",
    kind: Kind::Gauge,
    labels: &["reason"],
    help: "Roles with a rollout in progress, by the reason their last pass gave (Updating, Paused, SwitchDeferred, OutsideMaintenanceWindow, or a failure)",
};
/// Last progress of each running rollout.
pub const ROLLOUT_LAST_PROGRESS: MetricDoc = MetricDoc {
    name: "rollout_last_progress_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &["namespace", "role"],
    help: "Per Role whose rollout runs (not paused): Unix time it started, was resumed, or last had another pod updated",
};
/// Since when each paused rollout is paused.
pub const ROLLOUT_PAUSED: MetricDoc = MetricDoc {
    name: "rollout_paused_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &["namespace", "role"],
    help: "Per Role whose rollout is paused: Unix time the operator first saw it paused",
};
/// Replica sets draining.
pub const DRAINS: MetricDoc = MetricDoc {
    name: "drains_in_progress",
    kind: Kind::Gauge,
    labels: &[],
    help: "Replica sets draining their buckets before they leave (weight 0)",
};
/// When each Role's oldest drain started.
pub const DRAIN_STARTED: MetricDoc = MetricDoc {
    name: "drain_started_timestamp_seconds",
    kind: Kind::Gauge,
    labels: &["namespace", "role"],
    help: "Per Role with a replica set draining: Unix time its oldest drain started",
};

/// Every metric the operator exports, in the order of the docs' table.
/// (Another metric: add its `const` here and register it in
/// [`Metrics::new`].)
pub const CATALOG: &[MetricDoc] = &[
    RECONCILES,
    RECONCILE_ERRORS,
    RECONCILE_DURATION,
    OBJECTS,
    ROLLOUTS,
    ROLLOUT_LAST_PROGRESS,
    ROLLOUT_PAUSED,
    STRATEGY_PLAN,
    STRATEGY_REFUSALS,
    EVICTIONS,
    DRAINS,
    DRAIN_STARTED,
    SWITCH_WRITE_UNAVAILABLE,
    LEADER,
    LEADERSHIP_CHANGES,
];

/// The table of metrics for `docs/operations.md`, in Markdown.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n");
    for m in CATALOG {
        let labels = if m.labels.is_empty() {
            "-".to_string()
        } else {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        table.push_str(&format!(
            "| `{}` | {} | {labels} | {} |\n",
            m.shown(),
            m.kind.as_str(),
            m.help
        ));
    }
    table
}

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

/// Labels of a refusal: its reason only (a strategy's name is the user's
/// and would make the series unbounded; the Warning Event names the Role).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A [`Reason`] string.
    pub reason: String,
}

/// Labels of a leadership change.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// `acquired` or `lost`.
    pub change: String,
}

/// The operator's metrics.
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
    /// Strategy decisions the guard refused, by reason.
    pub strategy_refusals: Family<ReasonLabels, Counter>,
    /// 1 while this replica acts.
    pub leader: Gauge<i64, AtomicI64>,
    /// Leadership acquired and lost.
    pub leadership_changes: Family<ChangeLabels, Counter>,
    /// How each object's last pass ended (the gauges of Clusters, Roles,
    /// rollouts and drains, computed at each scrape).
    pub fleet: Arc<Fleet>,
    /// Duration of a strategy's plan call as a pass waits for it (a call
    /// slot, the thread hand-off and the sandboxed call): the strategy
    /// engine's share of pass time, beside [`Self::duration`].
    pub strategy_plan: Histogram,
    /// Evictions the eviction webhook decided on, by decision and reason.
    pub evictions: Family<EvictionLabels, Counter>,
}

impl Metrics {
    /// Metrics registered in `registry` under [`PREFIX`].
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            // 50 ms to about 100 s.
            switch_write_unavailable: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            strategy_refusals: Family::default(),
            leader: Gauge::default(),
            leadership_changes: Family::default(),
            fleet: Arc::new(Fleet::default()),
            // 0.1 ms to about 3 s.
            strategy_plan: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            evictions: Family::default(),
        };
        // Both changes show as 0 before the first, so that `increase` sees
        // the first one.
        for change in ["acquired", "lost"] {
            let _ = metrics.leadership_changes.get_or_create(&ChangeLabels {
                change: change.into(),
            });
        }
        let registry = registry.sub_registry_with_prefix(PREFIX);
        register(registry, &RECONCILES, metrics.reconciles.clone());
        register(registry, &RECONCILE_ERRORS, metrics.errors.clone());
        register(registry, &RECONCILE_DURATION, metrics.duration.clone());
        register(
            registry,
            &SWITCH_WRITE_UNAVAILABLE,
            metrics.switch_write_unavailable.clone(),
        );
        register(
            registry,
            &STRATEGY_REFUSALS,
            metrics.strategy_refusals.clone(),
        );
        register(registry, &LEADER, metrics.leader.clone());
        register(
            registry,
            &LEADERSHIP_CHANGES,
            metrics.leadership_changes.clone(),
        );
        registry.register_collector(Box::new(metrics.fleet.clone()));
        register(registry, &STRATEGY_PLAN, metrics.strategy_plan.clone());
        register(registry, &EVICTIONS, metrics.evictions.clone());
        metrics
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> Self {
        Self::new(&mut Registry::default())
    }

    /// Counts a strategy decision the guard refused.
    pub fn refused(&self, reason: Reason) {
        self.strategy_refusals
            .get_or_create(&ReasonLabels {
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// This replica now acts (`true`) or no longer does.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
        let change = if leading { "acquired" } else { "lost" };
        self.leadership_changes
            .get_or_create(&ChangeLabels {
                change: change.into(),
            })
            .inc();
    }
}

/// Registers `metric` under the name and help of `doc`.
fn register(registry: &mut Registry, doc: &MetricDoc, metric: impl Metric) {
    registry.register(doc.name, doc.help, metric);
}

#[cfg(test)]
mod tests {
    //! The catalog is what is registered and what the docs list.

    use std::collections::BTreeSet;

    use super::*;

    /// `(family, type)` of each `# TYPE` line of a scrape.
    fn exposed(registry: &Registry) -> BTreeSet<(String, String)> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .map(|(name, kind)| (name.to_string(), kind.to_string()))
            .collect()
    }

    #[test]
    fn every_registered_metric_is_in_the_catalog_and_back() {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        // A family shows once it has a series.
        let role = ControllerLabels {
            controller: "role".into(),
        };
        metrics.reconciles.get_or_create(&role).inc();
        metrics.duration.get_or_create(&role).observe(0.1);
        metrics
            .errors
            .get_or_create(&StepErrorLabels {
                controller: "role".into(),
                step: "RollingUpdate".into(),
                reason: Reason::BudgetExceeded.as_str().into(),
            })
            .inc();
        metrics.refused(Reason::BudgetExceeded);
        metrics
            .evictions
            .get_or_create(&EvictionLabels {
                decision: "deny".into(),
                reason: "master".into(),
            })
            .inc();
        let catalog: BTreeSet<(String, String)> = CATALOG
            .iter()
            .map(|m| (m.family(), m.kind.as_str().to_string()))
            .collect();
        assert_eq!(exposed(&registry), catalog);
    }

    #[test]
    fn names_are_unique_and_labels_bounded() {
        let mut seen = BTreeSet::new();
        for m in CATALOG {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(!m.help.trim().is_empty(), "{}", m.name);
            // Per-object labels only on gauges that exist while the object
            // is in that state (rollouts, drains): never on counters or
            // histograms, whose series would outlive the objects.
            if m.labels.contains(&"namespace") || m.labels.contains(&"role") {
                assert_eq!(m.kind, Kind::Gauge, "{}", m.name);
            }
        }
    }

    #[test]
    fn series_names_carry_the_type_suffixes() {
        assert_eq!(
            RECONCILES.series(),
            vec!["tarantool_operator_reconciles_total"]
        );
        assert_eq!(
            SWITCH_WRITE_UNAVAILABLE.series(),
            vec![
                "tarantool_operator_switch_write_unavailable_seconds_bucket",
                "tarantool_operator_switch_write_unavailable_seconds_sum",
                "tarantool_operator_switch_write_unavailable_seconds_count",
            ]
        );
        assert_eq!(LEADER.series(), vec!["tarantool_operator_leader"]);
    }

    #[test]
    fn leadership_changes_count_and_set_the_gauge() {
        let m = Metrics::unregistered();
        let count = |change: &str| {
            m.leadership_changes
                .get_or_create(&ChangeLabels {
                    change: change.into(),
                })
                .get()
        };
        assert_eq!(
            (m.leader.get(), count("acquired"), count("lost")),
            (0, 0, 0)
        );
        m.leading(true);
        assert_eq!(
            (m.leader.get(), count("acquired"), count("lost")),
            (1, 1, 0)
        );
        m.leading(false);
        assert_eq!(
            (m.leader.get(), count("acquired"), count("lost")),
            (0, 1, 1)
        );
    }

    /// The table in `docs/operations.md` is this catalog; on a difference
    /// the message carries the table to paste.
    #[test]
    fn the_docs_list_every_metric() {
        let docs = include_str!("../../../docs/operations.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/operations.md lacks the current table of metrics; replace it with:\n\n{table}"
        );
    }
}
