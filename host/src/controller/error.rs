//! The controllers' error type.

use std::time::Duration;

use crate::api::Reason;
use crate::fence::Fenced;
use crate::strategy::PlanError;
use crate::strategy::guard::GuardError;
use crate::strategy::registry::RegistryError;
use crate::topology::TopologyError;

/// Why a reconcile pass failed. Every error requeues the object with
/// backoff; [`Error::reason`] labels metrics and conditions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Cartridge refused or could not be reached.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The object cannot be acted on as written (the admission rules should
    /// have caught it; objects written before a rule existed may not be).
    #[error("invalid {kind} {name}: {message}")]
    InvalidSpec {
        /// `Cluster` or `Role`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The update strategy cannot be used, failed, or made a decision the
    /// host refused. Only this Role's update pauses.
    #[error(transparent)]
    Strategy(#[from] StrategyError),
    /// The operator will not go on without a human: going on would lose
    /// data (e.g. deleting the only storage Role, whose buckets have
    /// nowhere to go).
    #[error("{message}")]
    Blocked {
        /// Why, as a condition and Event reason.
        reason: Reason,
        /// What is blocked, and how to unblock it.
        message: String,
    },
    /// A Secret a Cluster names cannot be used.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// An object lacks a field every stored object has (name, namespace).
    #[error("object without {0}")]
    MissingField(&'static str),
    /// This replica may no longer act: its Lease may be taken over.
    #[error(transparent)]
    Fenced(#[from] Fenced),
    /// The pass ran past `--pass-timeout-seconds` and was abandoned where
    /// it stood (a hung request, an unanswered console).
    #[error("the pass took longer than {limit:?} and was abandoned")]
    PassTimeout {
        /// The bound.
        limit: Duration,
    },
}

impl Error {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Kube(kube::Error::Api(e)) if e.code == 409 => Reason::Conflict,
            // The client's fence refused the request.
            Self::Kube(kube::Error::Service(e)) if e.downcast_ref::<Fenced>().is_some() => {
                Reason::Fenced
            }
            Self::Kube(_) => Reason::KubernetesApi,
            Self::Topology(e) => e.reason(),
            Self::InvalidSpec { .. } => Reason::InvalidSpec,
            Self::MissingField(_) => Reason::MissingField,
            Self::Strategy(e) => e.reason(),
            Self::Blocked { reason, .. } => *reason,
            Self::Secret(_) => Reason::SecretNotFound,
            Self::Fenced(_) => Reason::Fenced,
            Self::PassTimeout { .. } => Reason::PassTimeout,
        }
    }
}

/// Why a password cannot be read from the Secret a `passwordSecretRef`
/// names. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No such Secret in the Cluster's namespace.
    #[error(
        "{field}: Secret {namespace}/{name} does not exist; failover settings left as they are"
    )]
    NotFound {
        /// The spec field naming it.
        field: &'static str,
        /// Its namespace (the Cluster's).
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The Secret has no such key (or its value is not UTF-8 text).
    #[error(
        "{field}: Secret {namespace}/{name} has no {what} key {key:?}; failover settings left as they are"
    )]
    KeyMissing {
        /// The spec field naming it.
        field: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key asked for.
        key: String,
        /// "such" or "UTF-8 text under the".
        what: &'static str,
    },
}

/// Kubernetes refuses ConfigMaps over 1 MiB, so no component can be bigger.
pub(crate) const CONFIG_MAP_LIMIT: usize = 1024 * 1024;

/// Why a Role's update cannot go on: the strategy engine's own errors, kept
/// with their sources, and the host's reasons to pause.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The registry could not resolve the strategy: unknown, not fetched,
    /// or its component failed to load.
    #[error("{0}")]
    Registry(#[from] RegistryError),
    /// The strategy could not produce a decision.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The host guard refused the strategy's decision.
    #[error("{0}")]
    Guard(#[from] GuardError),
    /// `configMapRef` names a ConfigMap that does not exist.
    #[error("ConfigMap {namespace}/{name} does not exist")]
    ConfigMapMissing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The ConfigMap lacks the label that marks it as a strategy.
    #[error(
        "ConfigMap {namespace}/{name} is not labelled {label}: the operator loads strategies only from ConfigMaps that say they hold one (kubectl label configmap -n {namespace} {name} {label}=true)",
        label = crate::resources::labels::STRATEGY
    )]
    ConfigMapNotLabelled {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The ConfigMap has no component under the key.
    #[error(
        "ConfigMap {namespace}/{name} has no binaryData key {key:?}{hint}; keys: {keys:?} (a ConfigMap holds at most {limit} bytes)",
        limit = CONFIG_MAP_LIMIT
    )]
    KeyMissing {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The key asked for.
        key: String,
        /// The keys it has, binary first.
        keys: Vec<String>,
        /// How to fix a likely mistake, or empty.
        hint: &'static str,
    },
    /// The blocking task that loads or calls the strategy ended without an
    /// answer (it panicked, or the runtime is shutting down).
    #[error("the task that loads or calls the strategy ended without an answer")]
    LoadLost(#[source] tokio::task::JoinError),
    /// The component changed mid-rollout and the old one is gone (the
    /// operator restarted).
    #[error(
        "the component changed during this rollout (started with sha256 {recorded}, now {current}); the operator restarted and no longer has the old one. Revert the ConfigMap, or set spec.updateStrategy.sha256 to the new digest to continue with it"
    )]
    ChangedMidRollout {
        /// The digest the rollout started with.
        recorded: String,
        /// The digest of the component now.
        current: String,
    },
    /// An updated pod stayed unready past the progress deadline.
    #[error(
        "pod {replicaset}-{ordinal} runs the new template but has not been ready for {age_seconds}s (progressDeadlineSeconds {deadline}); the update is paused until it is"
    )]
    Stuck {
        /// The pod's replica set (its StatefulSet).
        replicaset: String,
        /// The pod's ordinal.
        ordinal: u32,
        /// How long it has been there.
        age_seconds: u32,
        /// `progressDeadlineSeconds`.
        deadline: u32,
    },
}

impl StrategyError {
    /// The label of metrics, and the reason of conditions and Events: the
    /// engine's own, or the host's.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Registry(e) => e.reason(),
            Self::Plan(e) => e.reason(),
            Self::Guard(e) => e.reason(),
            Self::ConfigMapMissing { .. }
            | Self::ConfigMapNotLabelled { .. }
            | Self::KeyMissing { .. } => Reason::ComponentNotFound,
            Self::LoadLost(_) => Reason::StrategyLoad,
            Self::ChangedMidRollout { .. } => Reason::StrategyChangedMidRollout,
            Self::Stuck { .. } => Reason::UpdateStuck,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::strategy::LoadError;

    /// The chain of sources below `error`, as text.
    fn chain(error: &dyn std::error::Error) -> Vec<String> {
        let mut chain = Vec::new();
        let mut next = error.source();
        while let Some(source) = next {
            chain.push(source.to_string());
            next = source.source();
        }
        chain
    }

    /// A strategy's failure keeps the engine's error as its source, its
    /// label, and the message users saw when it was flattened to text.
    #[test]
    fn a_strategy_error_keeps_its_source_and_label() {
        let error = Error::from(StrategyError::from(RegistryError::Load {
            name: "custom".into(),
            source: LoadError::Compile("bad opcode".into()),
        }));
        assert_eq!(error.reason(), Reason::CompileFailed);
        assert_eq!(
            error.to_string(),
            "strategy \"custom\": cannot compile the component: bad opcode"
        );
        let Some(registry) = error
            .source()
            .and_then(|e| e.downcast_ref::<RegistryError>())
        else {
            panic!("no RegistryError below {error:?}");
        };
        assert!(matches!(registry, RegistryError::Load { .. }));
        assert_eq!(
            chain(&error),
            [
                "strategy \"custom\": cannot compile the component: bad opcode",
                "cannot compile the component: bad opcode",
            ]
        );
    }

    #[test]
    fn the_guards_and_hosts_refusals_keep_their_labels_and_messages() {
        let cases = [
            (
                StrategyError::from(GuardError::AlreadyTerminating {
                    pod: "storage-0-x-1".into(),
                }),
                Reason::AlreadyTerminating,
                "refused to delete storage-0-x-1: it is already terminating".to_string(),
            ),
            (
                StrategyError::Stuck {
                    replicaset: "storage-0-x".into(),
                    ordinal: 1,
                    age_seconds: 700,
                    deadline: 600,
                },
                Reason::UpdateStuck,
                "pod storage-0-x-1 runs the new template but has not been ready for 700s (progressDeadlineSeconds 600); the update is paused until it is".to_string(),
            ),
            (
                StrategyError::KeyMissing {
                    namespace: "ns".into(),
                    name: "strategy".into(),
                    key: "strategy.wasm".into(),
                    keys: vec!["other".into()],
                    hint: "",
                },
                Reason::ComponentNotFound,
                format!(
                    "ConfigMap ns/strategy has no binaryData key \"strategy.wasm\"; keys: [\"other\"] (a ConfigMap holds at most {CONFIG_MAP_LIMIT} bytes)"
                ),
            ),
        ];
        for (error, reason, message) in cases {
            let error = Error::from(error);
            assert_eq!((error.reason(), error.to_string()), (reason, message));
        }
    }
}
