//! Running a controller's steps in order.
//!
//! A step is an async function over the pass's state that says how the
//! pass goes on ([`Flow`]). [`Pipeline::run`] times it, and on failure
//! wraps the error with the step's name, which labels the metric and the
//! condition.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::debug;

use super::Error;
use super::metrics::{Metrics, StepErrorLabels};

/// How a pass goes on after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Run the next step.
    Next,
    /// End the pass: waiting on something that will change on its own
    /// (looked at again after `after`, or on the next watch event).
    Wait {
        /// Why, as a condition reason (`WaitingForRoles`, ...).
        reason: &'static str,
        /// For humans.
        message: String,
        /// When to look again; `None`: only on a watch event.
        after: Option<Duration>,
    },
    /// End the pass with nothing more to do (the object is going away).
    Stop,
}

impl Flow {
    /// Waiting, looked at again after `after`.
    pub fn wait(reason: &'static str, message: impl Into<String>, after: Duration) -> Self {
        Self::Wait {
            reason,
            message: message.into(),
            after: Some(after),
        }
    }

    /// Waiting for a watch event.
    pub fn wait_for_event(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Wait {
            reason,
            message: message.into(),
            after: None,
        }
    }
}

/// A step failed.
#[derive(Debug, thiserror::Error)]
#[error("step {step} failed: {source}")]
pub struct StepFailed {
    /// The step's name.
    pub step: &'static str,
    /// Why.
    #[source]
    pub source: Error,
}

/// One pass through a controller's steps.
pub struct Pipeline<'a> {
    controller: &'static str,
    metrics: &'a Metrics,
}

impl<'a> Pipeline<'a> {
    /// A pass of `controller` (`cluster` or `role`).
    pub fn new(controller: &'static str, metrics: &'a Metrics) -> Self {
        Self {
            controller,
            metrics,
        }
    }

    /// Runs step `name`.
    pub async fn run(
        &self,
        name: &'static str,
        step: impl Future<Output = Result<Flow, Error>>,
    ) -> Result<Flow, StepFailed> {
        let started = Instant::now();
        // On the heap: step futures are large in debug builds, and a pass
        // runs on a runtime thread's stack.
        let result = Box::pin(step).await;
        debug!(
            controller = self.controller,
            step = name,
            elapsed_us = started.elapsed().as_micros() as u64,
            ok = result.is_ok(),
            "step"
        );
        result.map_err(|source| {
            self.metrics
                .errors
                .get_or_create(&StepErrorLabels {
                    controller: self.controller.into(),
                    step: name.into(),
                    reason: source.reason().into(),
                })
                .inc();
            StepFailed { step: name, source }
        })
    }
}

/// Runs a step and ends the enclosing function with its flow unless it is
/// [`Flow::Next`].
#[macro_export]
macro_rules! step {
    ($pipeline:expr, $name:literal, $step:expr) => {
        match $pipeline.run($name, $step).await? {
            $crate::controller::pipeline::Flow::Next => {}
            other => return Ok(other),
        }
    };
}
