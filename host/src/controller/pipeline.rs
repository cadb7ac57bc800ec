//! Running a controller's steps in order.
//!
//! A step is an async function over the pass's state that says how the
//! pass goes on ([`Flow`]). [`Pipeline::run`] starts it only while the fence
//! lets this replica act, times it, and on failure wraps the error with the
//! step's name, which labels the metric and the condition.
//! [`Pipeline::bounded`] gives a whole pass a deadline.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::Error;
use super::metrics::{Metrics, StepErrorLabels};
use crate::api::Reason;
use crate::fence::Fence;

/// How a pass goes on after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Run the next step.
    Next,
    /// End the pass: waiting on something that will change on its own
    /// (looked at again after `after`, or on the next watch event).
    Wait {
        /// Why, as a condition reason.
        reason: Reason,
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
    pub fn wait(reason: Reason, message: impl Into<String>, after: Duration) -> Self {
        Self::Wait {
            reason,
            message: message.into(),
            after: Some(after),
        }
    }

    /// Waiting for a watch event.
    pub fn wait_for_event(reason: Reason, message: impl Into<String>) -> Self {
        Self::Wait {
            reason,
            message: message.into(),
            after: None,
        }
    }
}

/// How a pass's steps ended: a flow, or the step that failed.
pub(crate) type Outcome = Result<Flow, StepFailed>;

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
pub(crate) struct Pipeline<'a> {
    controller: &'static str,
    metrics: &'a Metrics,
    fence: &'a Fence,
    /// The step running (or last run), for a pass that runs out of time.
    current: Mutex<&'static str>,
}

impl<'a> Pipeline<'a> {
    /// A pass of `controller` (`cluster` or `role`) whose steps start only
    /// while `fence` lets this replica act.
    pub(crate) fn new(controller: &'static str, metrics: &'a Metrics, fence: &'a Fence) -> Self {
        Self {
            controller,
            metrics,
            fence,
            current: Mutex::new("Start"),
        }
    }

    /// Runs step `name`.
    pub(crate) async fn run(
        &self,
        name: &'static str,
        step: impl Future<Output = Result<Flow, Error>>,
    ) -> Result<Flow, StepFailed> {
        self.yields(name, step).await
    }

    /// Runs step `name`, one that yields a value for the steps after it
    /// (an observation) instead of a [`Flow`]: timed, fenced and labelled
    /// like every other.
    pub(crate) async fn yields<T>(
        &self,
        name: &'static str,
        step: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, StepFailed> {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = name;
        if let Err(fenced) = self.fence.check() {
            return Err(self.failed(name, fenced.into()));
        }
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
            // A step that failed once the fence tripped failed because of
            // it (its client refused the write or the exec), whatever error
            // that surfaced as.
            let source = match self.fence.check() {
                Err(fenced) => fenced.into(),
                Ok(()) => source,
            };
            self.failed(name, source)
        })
    }

    /// Runs `pass` (steps run through [`Pipeline::run`]) for at most
    /// `limit`; past it the pass is dropped where it stood and fails with
    /// [`Error::PassTimeout`], labelled with the step that was running.
    pub(crate) async fn bounded(
        &self,
        limit: Duration,
        pass: impl Future<Output = Result<Flow, StepFailed>>,
    ) -> Result<Flow, StepFailed> {
        match tokio::time::timeout(limit, Box::pin(pass)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                let step = *self.current.lock().unwrap_or_else(|e| e.into_inner());
                warn!(
                    controller = self.controller,
                    step,
                    ?limit,
                    "pass abandoned: out of time"
                );
                Err(self.failed(step, Error::PassTimeout { limit }))
            }
        }
    }

    /// Counts the failure of `step` and wraps it.
    fn failed(&self, step: &'static str, source: Error) -> StepFailed {
        self.metrics
            .errors
            .get_or_create(&StepErrorLabels {
                controller: self.controller.into(),
                step: step.into(),
                reason: source.reason().as_str().into(),
            })
            .inc();
        StepFailed { step, source }
    }
}

/// What a step that hands something to the steps after it returns: the
/// value, or how the pass ends here (a wait, typically). Run it with
/// [`Pipeline::yields`].
#[derive(Debug)]
pub(crate) enum Then<T> {
    /// Go on with this.
    Go(T),
    /// End the pass with this flow.
    End(Flow),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn errors(metrics: &Metrics, step: &str, reason: Reason) -> u64 {
        metrics
            .errors
            .get_or_create(&StepErrorLabels {
                controller: "role".into(),
                step: step.into(),
                reason: reason.as_str().into(),
            })
            .get()
    }

    /// A pass whose step never ends fails, once its bound passed, with
    /// `PassTimeout` naming that step (real time, milliseconds: only the
    /// outcome is asserted).
    #[tokio::test]
    async fn a_pass_past_its_deadline_fails_naming_the_step_that_hung() {
        let metrics = Metrics::unregistered();
        let fence = Fence::unfenced();
        let p = Pipeline::new("role", &metrics, &fence);
        let pass = async {
            p.yields("Observe", async { Ok(()) }).await?;
            p.run("JoinTopology", std::future::pending()).await
        };
        let failed = p
            .bounded(Duration::from_millis(20), pass)
            .await
            .expect_err("the pass cannot end");
        assert_eq!(failed.step, "JoinTopology");
        assert!(
            matches!(failed.source, Error::PassTimeout { limit } if limit == Duration::from_millis(20)),
            "{failed}"
        );
        assert_eq!(errors(&metrics, "JoinTopology", Reason::PassTimeout), 1);
    }

    #[tokio::test]
    async fn no_step_starts_once_fenced() {
        let metrics = Metrics::unregistered();
        let fence = Fence::new(Duration::from_secs(15), Duration::from_secs(2)).expect("fence");
        fence.renewed(std::time::Instant::now());
        let p = Pipeline::new("role", &metrics, &fence);
        assert_eq!(
            p.run("SyncService", async { Ok(Flow::Next) }).await.ok(),
            Some(Flow::Next)
        );
        fence.trip("another replica holds the Lease");
        let ran = AtomicBool::new(false);
        let failed = p
            .run("RollingUpdate", async {
                ran.store(true, Ordering::SeqCst);
                Ok(Flow::Next)
            })
            .await
            .expect_err("fenced");
        assert!(!ran.load(Ordering::SeqCst), "the step ran");
        assert_eq!(failed.source.reason(), Reason::Fenced);
        assert_eq!(errors(&metrics, "RollingUpdate", Reason::Fenced), 1);
    }

    /// A step that fails because its client refused a write once the fence
    /// tripped during the step is reported as fenced, not as whatever the
    /// refusal surfaced as.
    #[tokio::test]
    async fn a_step_cut_off_by_the_fence_fails_as_fenced() {
        let metrics = Metrics::unregistered();
        let fence = Fence::new(Duration::from_secs(15), Duration::from_secs(2)).expect("fence");
        fence.renewed(std::time::Instant::now());
        let p = Pipeline::new("role", &metrics, &fence);
        let failed = p
            .run("RollingUpdate", async {
                fence.trip("the Lease was not renewed");
                Err(Error::MissingField("stand-in for the refused request"))
            })
            .await
            .expect_err("fenced");
        assert_eq!(failed.source.reason(), Reason::Fenced);
    }
}
