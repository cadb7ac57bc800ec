//! The one thing every strategy can do: plan.

use std::time::Duration;

use strategy_sdk::{Decision, RoleView};

use crate::api::Reason;

/// A strategy ready to plan: a loaded wasm component or a native built-in.
pub trait Planner {
    /// Decide the next actions for `view`.
    fn plan(&self, view: &RoleView) -> Result<Decision, PlanError>;
}

/// Why a strategy could not produce a decision. Every variant pauses the
/// Role's update (fail-closed); none affects other Roles.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The strategy answered with an error of its own.
    #[error("strategy returned an error: {0}")]
    Rejected(String),
    /// It used its CPU budget (an endless loop, or too slow).
    #[error("strategy used its CPU budget of {0:?} and was stopped")]
    CpuBudget(Duration),
    /// It ran past its wall-clock deadline (the machine is overloaded, or
    /// the CPU clock could not be read).
    #[error("strategy ran past its deadline of {0:?} and was stopped")]
    Deadline(Duration),
    /// It tried to grow its memory beyond the limit.
    #[error("strategy exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// It recursed too deep.
    #[error("strategy overflowed its stack (recursion too deep)")]
    StackOverflow,
    /// It panicked; the message is what its panic hook logged.
    #[error("strategy panicked: {0}")]
    Panicked(String),
    /// Any other trap.
    #[error("strategy trapped: {0}")]
    Trap(String),
    /// It called a WASI function the sandbox denies.
    #[error("strategy {0}")]
    Denied(String),
    /// Its answer is bigger than the host accepts.
    #[error("strategy output too large: {what} is {size}, the limit is {max}")]
    OutputTooLarge {
        /// Which part: `message`, `state` or `actions`.
        what: &'static str,
        /// Its size (bytes or count).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The sandbox could not start an instance (e.g. the pool is exhausted).
    #[error("cannot start the strategy: {0}")]
    Instantiate(String),
    /// No call slot was free in time.
    #[error(
        "cannot start the strategy: no call slot was free within {waited:?}{}",
        if *owner { " (this Role already holds its share)" } else { "" }
    )]
    Busy {
        /// How long the call waited.
        waited: Duration,
        /// Whether the caller's own share was full (else the pool was).
        owner: bool,
    },
}

impl PlanError {
    /// The label of metrics, and the reason of conditions and Events.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Rejected(_) => Reason::StrategyRejected,
            Self::CpuBudget(_) | Self::Deadline(_) => Reason::StrategyDeadline,
            Self::MemoryLimit { .. } => Reason::StrategyMemoryLimit,
            Self::StackOverflow => Reason::StrategyStackOverflow,
            Self::Panicked(_) => Reason::StrategyPanicked,
            Self::Trap(_) => Reason::StrategyTrapped,
            Self::Denied(_) => Reason::StrategyDeniedCall,
            Self::OutputTooLarge { .. } => Reason::StrategyOutputTooLarge,
            Self::Instantiate(_) | Self::Busy { .. } => Reason::StrategyInstantiate,
        }
    }
}
