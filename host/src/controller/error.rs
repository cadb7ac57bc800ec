//! The controllers' error type.

use std::time::Duration;

use crate::fence::Fenced;
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
    #[error("{message}")]
    Strategy {
        /// A CamelCase label (the registry's, engine's or guard's reason).
        reason: &'static str,
        /// For humans.
        message: String,
    },
    /// The operator will not go on without a human: going on would lose
    /// data (e.g. deleting the only storage Role, whose buckets have
    /// nowhere to go).
    #[error("{message}")]
    Blocked {
        /// A CamelCase label.
        reason: &'static str,
        /// What is blocked, and how to unblock it.
        message: String,
    },
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
    /// A short label for metrics and condition reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(e)) if e.code == 409 => "Conflict",
            // The client's fence refused the request.
            Self::Kube(kube::Error::Service(e)) if e.downcast_ref::<Fenced>().is_some() => "Fenced",
            Self::Kube(_) => "KubernetesApi",
            Self::Topology(e) => e.reason(),
            Self::InvalidSpec { .. } => "InvalidSpec",
            Self::MissingField(_) => "MissingField",
            Self::Strategy { reason, .. } => reason,
            Self::Blocked { reason, .. } => reason,
            Self::Fenced(_) => "Fenced",
            Self::PassTimeout { .. } => "PassTimeout",
        }
    }
}
