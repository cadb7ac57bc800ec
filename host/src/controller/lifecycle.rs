//! One pass of a controller, the same for both: start from the status
//! written last, run the steps under the pass deadline, write the status
//! under a deadline of its own, and say when to look again.
//!
//! A controller says only what differs ([`Reconciler`]): its pass type, its
//! steps and how it finishes. [`reconcile`] and [`error_policy`] are what
//! `run` hands to kube's `Controller`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Resource;
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use serde::de::DeserializeOwned;
use tracing::warn;

use super::metrics::{ControllerLabels, Metrics};
use super::pipeline::{Flow, Outcome, Pipeline, StepFailed};
use super::{Context, Error, Settings, backoff};

/// What a controller's pass is: built from the object, a list of steps, and
/// a finish that reports how the steps ended (its status write).
pub(crate) trait Reconciler: Sized + Send {
    /// The object reconciled (a Cluster, a Role).
    type Object: Resource<DynamicType = ()>
        + HasStatus<Status: DeserializeOwned>
        + Clone
        + Send
        + Sync
        + 'static;

    /// The controller's name in metrics and logs (`cluster`, `role`).
    const CONTROLLER: &'static str;

    /// A pass over `object`, starting from its status (which
    /// [`reconcile`] sets to the one this operator wrote last).
    fn new(object: Arc<Self::Object>) -> Result<Self, Error>;

    /// The steps, in order, each through `p`.
    fn run_steps(
        &mut self,
        ctx: &Context,
        p: &Pipeline<'_>,
    ) -> impl Future<Output = Outcome> + Send;

    /// How long a converged object may go unlooked-at: the resync, unless
    /// the object depends on something no watch reports (a Cluster that
    /// reads Secrets it may not watch).
    fn resync(&self, settings: &Settings) -> std::time::Duration {
        settings.resync
    }

    /// Reports how the steps ended (conditions, Events, the status write).
    /// Returns when to look again at the latest, when sooner than the steps
    /// said: a status write put off (see [`super::status::PROGRESS_EVERY`]).
    fn finish(
        &mut self,
        ctx: &Context,
        outcome: &Outcome,
    ) -> impl Future<Output = Result<Option<Duration>, Error>> + Send;
}

/// One reconcile of `object` by `R`: the steps under the pass deadline, then
/// the status, then when to look again.
pub(crate) async fn reconcile<R: Reconciler>(
    object: Arc<R::Object>,
    ctx: Arc<Context>,
) -> Result<Action, StepFailed> {
    let _timer = PassTimer::start(&ctx.metrics, R::CONTROLLER);
    let key = backoff_key(R::CONTROLLER, object.as_ref());
    // The watch cache may not show the status the previous pass wrote yet;
    // the pass starts from that one.
    let object = match ctx.written.last(object.as_ref()) {
        Some(status) => {
            let mut latest = R::Object::clone(&object);
            *latest.status_mut() = Some(status);
            Arc::new(latest)
        }
        None => object,
    };
    let mut pass = R::new(object).map_err(|source| StepFailed {
        step: "GetObject",
        source,
    })?;
    let p = Pipeline::new(R::CONTROLLER, &ctx.metrics, &ctx.fence);
    let limit = ctx.settings.pass_timeout;
    let outcome = p.bounded(limit, pass.run_steps(&ctx, &p)).await;
    // The status write has a deadline of its own: it must be able to
    // report a pass that ran out of time.
    let mut look_again = None;
    let finish = p.run("UpdateStatus", async {
        look_again = pass.finish(&ctx, &outcome).await?;
        Ok(Flow::Next)
    });
    p.bounded(limit, finish).await?;
    let resync = pass.resync(&ctx.settings);
    let flow = outcome?;
    ctx.backoffs.succeeded(&key);
    Ok(action_after(resync, &flow, look_again))
}

/// The object's key in [`Context::backoffs`].
fn backoff_key<K: Resource>(controller: &'static str, object: &K) -> backoff::Key {
    let meta = object.meta();
    (
        controller,
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// How long a failed object waits before its next pass (the failure
/// counted in its backoff).
fn retry_delay<R: Reconciler>(object: &R::Object, ctx: &Context) -> Duration {
    ctx.backoffs.failed(backoff_key(R::CONTROLLER, object))
}

/// When to look at an object again after a pass failed: the failure was
/// counted and reported by the pass; the object backs off (see
/// [`backoff`]), a watch event still waking it at once.
pub(crate) fn error_policy<R: Reconciler>(
    object: Arc<R::Object>,
    error: &StepFailed,
    ctx: Arc<Context>,
) -> Action {
    let after = retry_delay::<R>(object.as_ref(), &ctx);
    // The same bound as the condition and the Event the pass wrote.
    let message = crate::api::text::message(&error.source.to_string());
    warn!(
        step = error.step,
        reason = error.source.reason().as_str(),
        error = message.as_str(),
        retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        "reconcile failed"
    );
    Action::requeue(after)
}

/// When to look at an object again after a pass ended with `flow`, and at
/// the latest after `look_again` (what the finish put off).
pub(crate) fn action_after(
    resync: std::time::Duration,
    flow: &Flow,
    look_again: Option<Duration>,
) -> Action {
    let after = match flow {
        Flow::Wait {
            after: Some(after), ..
        } => *after,
        // Watch events wake the object; the resync is a safety net.
        _ => resync,
    };
    Action::requeue(look_again.map_or(after, |again| again.min(after)))
}

/// Counts a pass and records its duration when dropped.
struct PassTimer<'a> {
    metrics: &'a Metrics,
    labels: ControllerLabels,
    started: Instant,
}

impl<'a> PassTimer<'a> {
    /// Starts timing a pass of `controller`.
    fn start(metrics: &'a Metrics, controller: &str) -> Self {
        let labels = ControllerLabels {
            controller: controller.into(),
        };
        metrics.reconciles.get_or_create(&labels).inc();
        Self {
            metrics,
            labels,
            started: Instant::now(),
        }
    }
}

impl Drop for PassTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    //! The lifecycle with a probe controller whose steps and finish do what
    //! its spec says: no apiserver involved.

    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use kube::CustomResource;
    use kube::api::ObjectMeta;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::api::Reason;
    use crate::controller::metrics::StepErrorLabels;
    use crate::controller::testing;
    use crate::topology::fake::FakeConnector;

    /// `steps`: comma-separated `next`, `wait`, `event`, `stop`, `fail`,
    /// `hang`; `finish`: `ok`, `fail` or `hang`.
    #[derive(CustomResource, Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "test.tarantool.io",
        version = "v1",
        kind = "Probe",
        namespaced,
        status = "ProbeStatus"
    )]
    struct ProbeSpec {
        steps: String,
        finish: String,
    }

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
    struct ProbeStatus {
        passes: u32,
    }

    /// How a finish saw the pass end: the flow, or the failed step and its
    /// reason.
    type Seen = Result<Flow, (&'static str, Reason)>;

    /// What each probe's finish saw, by probe name (tests run in parallel;
    /// each uses its own name).
    static FINISHED: Mutex<BTreeMap<String, (ProbeStatus, Seen)>> = Mutex::new(BTreeMap::new());

    fn finished(name: &str) -> Option<(ProbeStatus, Seen)> {
        FINISHED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    struct ProbePass {
        probe: Arc<Probe>,
        status: ProbeStatus,
    }

    impl Reconciler for ProbePass {
        type Object = Probe;

        const CONTROLLER: &'static str = "probe";

        fn new(probe: Arc<Probe>) -> Result<Self, Error> {
            probe
                .metadata
                .namespace
                .as_ref()
                .ok_or(Error::MissingField("namespace"))?;
            let status = probe.status.clone().unwrap_or_default();
            Ok(Self { probe, status })
        }

        async fn run_steps(
            &mut self,
            _ctx: &Context,
            p: &Pipeline<'_>,
        ) -> Result<Flow, StepFailed> {
            for word in self.probe.spec.steps.split(',') {
                let flow = match word {
                    "wait" => {
                        p.run("Wait", async {
                            Ok(Flow::wait(
                                Reason::Scaling,
                                "probing",
                                Duration::from_secs(7),
                            ))
                        })
                        .await?
                    }
                    "event" => {
                        p.run("Event", async {
                            Ok(Flow::wait_for_event(Reason::Scaling, "probing"))
                        })
                        .await?
                    }
                    "stop" => p.run("Stop", async { Ok(Flow::Stop) }).await?,
                    "fail" => {
                        p.run("Fail", async {
                            Err(Error::Blocked {
                                reason: Reason::NowhereToDrain,
                                message: "told to fail".into(),
                            })
                        })
                        .await?
                    }
                    "hang" => p.run("Hang", std::future::pending()).await?,
                    _ => p.run("Next", async { Ok(Flow::Next) }).await?,
                };
                if flow != Flow::Next {
                    return Ok(flow);
                }
            }
            Ok(Flow::Next)
        }

        async fn finish(
            &mut self,
            _ctx: &Context,
            flow: &Result<Flow, StepFailed>,
        ) -> Result<Option<Duration>, Error> {
            let seen = match flow {
                Ok(flow) => Ok(flow.clone()),
                Err(failed) => Err((failed.step, failed.source.reason())),
            };
            let name = self.probe.metadata.name.clone().unwrap_or_default();
            FINISHED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name, (self.status.clone(), seen));
            match self.probe.spec.finish.as_str() {
                "hang" => std::future::pending().await,
                "fail" => Err(Error::MissingField("probe status")),
                _ => Ok(None),
            }
        }
    }

    fn probe(name: &str, steps: &str, finish: &str) -> Arc<Probe> {
        let mut probe = Probe::new(
            name,
            ProbeSpec {
                steps: steps.into(),
                finish: finish.into(),
            },
        );
        probe.metadata.namespace = Some("ns".into());
        Arc::new(probe)
    }

    /// A context whose passes may take `limit`.
    fn context(limit: Duration) -> Arc<Context> {
        let mut ctx = testing::context(FakeConnector::new());
        ctx.settings.pass_timeout = limit;
        Arc::new(ctx)
    }

    fn step_errors(ctx: &Context, step: &str, reason: Reason) -> u64 {
        ctx.metrics
            .errors
            .get_or_create(&StepErrorLabels {
                controller: "probe".into(),
                step: step.into(),
                reason: reason.as_str().into(),
            })
            .get()
    }

    /// Runs one pass over a new probe; a failure as its step and reason.
    async fn pass(
        ctx: &Arc<Context>,
        name: &str,
        steps: &str,
        finish: &str,
    ) -> Result<Action, (&'static str, Reason)> {
        reconcile::<ProbePass>(probe(name, steps, finish), ctx.clone())
            .await
            .map_err(|failed| (failed.step, failed.source.reason()))
    }

    /// How the finish of probe `name` saw its pass end.
    fn seen(name: &str) -> Option<Seen> {
        finished(name).map(|(_, seen)| seen)
    }

    /// A pass over a new probe fails as `failed` (step, reason), its finish
    /// saw that failure, and the failure was counted once.
    async fn fails_finished(
        ctx: &Arc<Context>,
        name: &str,
        steps: &str,
        failed: (&'static str, Reason),
    ) {
        assert_eq!(pass(ctx, name, steps, "ok").await, Err(failed));
        assert_eq!(seen(name), Some(Err(failed)));
        assert_eq!(step_errors(ctx, failed.0, failed.1), 1);
    }

    #[tokio::test]
    async fn a_converged_pass_writes_its_status_and_resyncs() {
        let ctx = context(Duration::from_secs(5));
        let resync = Action::requeue(ctx.settings.resync);
        assert_eq!(pass(&ctx, "converged", "next,next", "ok").await, Ok(resync));
        assert_eq!(seen("converged"), Some(Ok(Flow::Next)));
        let labels = ControllerLabels {
            controller: "probe".into(),
        };
        assert_eq!(ctx.metrics.reconciles.get_or_create(&labels).get(), 1);
    }

    #[tokio::test]
    async fn a_waiting_pass_looks_again_when_its_step_said() {
        let ctx = context(Duration::from_secs(5));
        let after = Action::requeue(Duration::from_secs(7));
        assert_eq!(
            pass(&ctx, "waiting", "next,wait,fail", "ok").await,
            Ok(after)
        );
        let seen = seen("waiting");
        assert!(
            matches!(
                seen,
                Some(Ok(Flow::Wait {
                    reason: Reason::Scaling,
                    ..
                }))
            ),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn a_pass_starts_from_the_objects_status() {
        let ctx = context(Duration::from_secs(5));
        let mut object = Probe::clone(&probe("resumed", "next", "ok"));
        object.status = Some(ProbeStatus { passes: 3 });
        reconcile::<ProbePass>(Arc::new(object), ctx)
            .await
            .expect("the pass ends");
        assert_eq!(
            finished("resumed").map(|(status, _)| status),
            Some(ProbeStatus { passes: 3 })
        );
    }

    /// The step's error reaches the finish (conditions, Events) and the
    /// controller (the error policy's back-off), labelled with its step.
    #[tokio::test]
    async fn a_failed_step_is_finished_then_backs_off() {
        let ctx = context(Duration::from_secs(5));
        fails_finished(
            &ctx,
            "failing",
            "next,fail,next",
            ("Fail", Reason::NowhereToDrain),
        )
        .await;
        let failed = StepFailed {
            step: "Fail",
            source: Error::MissingField("namespace"),
        };
        // The first retry comes after the minimum backoff, jittered; a
        // second failure waits longer; a successful pass starts over.
        let min = ctx.settings.backoff_min;
        let object = probe("failing", "", "");
        let delay = || retry_delay::<ProbePass>(object.as_ref(), &ctx);
        let first = delay();
        assert!(first >= min && first < min * 2, "{first:?}");
        let second = delay();
        assert!(second >= min * 2 && second < min * 4, "{second:?}");
        assert!(pass(&ctx, "failing", "next", "ok").await.is_ok());
        let again = delay();
        assert!(again >= min && again < min * 2, "{again:?}");
        let action = error_policy::<ProbePass>(object.clone(), &failed, ctx.clone());
        assert_ne!(action, Action::await_change(), "a failed object is retried");
    }

    /// A pass that runs out of its deadline is abandoned where it stood, and
    /// its status is still written, saying so (real time, milliseconds).
    #[tokio::test]
    async fn a_pass_out_of_time_still_writes_its_status() {
        let ctx = context(Duration::from_millis(30));
        fails_finished(&ctx, "hung", "next,hang", ("Hang", Reason::PassTimeout)).await;
    }

    /// The status write has a deadline of its own, and failing it fails the
    /// pass even when the steps went through.
    #[tokio::test]
    async fn a_status_write_that_fails_or_hangs_fails_the_pass() {
        let ctx = context(Duration::from_millis(30));
        let hung = pass(&ctx, "unwritten", "next", "hang").await;
        assert_eq!(hung, Err(("UpdateStatus", Reason::PassTimeout)));
        let refused = pass(&ctx, "refused", "wait", "fail").await;
        assert_eq!(refused, Err(("UpdateStatus", Reason::MissingField)));
    }

    #[tokio::test]
    async fn an_object_without_namespace_fails_as_get_object() {
        let ctx = context(Duration::from_secs(5));
        let mut object = Probe::clone(&probe("homeless", "next", "ok"));
        object.metadata = ObjectMeta {
            name: Some("homeless".into()),
            ..ObjectMeta::default()
        };
        let failed = reconcile::<ProbePass>(Arc::new(object), ctx)
            .await
            .expect_err("no namespace");
        assert_eq!(failed.step, "GetObject");
        assert!(finished("homeless").is_none(), "finished without a pass");
    }

    #[test]
    fn a_flow_maps_to_when_to_look_again() {
        let settings = Settings::default();
        let resync = Action::requeue(settings.resync);
        let four = Duration::from_secs(4);
        let put_off = Some(Duration::from_millis(300));
        // (flow, what the finish put off, when to look again)
        let cases = [
            (Flow::Next, None, resync.clone()),
            (Flow::Stop, None, resync.clone()),
            (
                Flow::wait_for_event(Reason::PodsNotReady, "for an event"),
                None,
                resync.clone(),
            ),
            (
                Flow::wait(Reason::PodsNotReady, "for pods", four),
                None,
                Action::requeue(four),
            ),
            (
                Flow::Next,
                put_off,
                Action::requeue(Duration::from_millis(300)),
            ),
            (
                Flow::wait(Reason::PodsNotReady, "for pods", four),
                put_off,
                Action::requeue(Duration::from_millis(300)),
            ),
            (
                Flow::wait(Reason::PodsNotReady, "for pods", Duration::from_millis(100)),
                put_off,
                Action::requeue(Duration::from_millis(100)),
            ),
        ];
        for (flow, look_again, expected) in cases {
            assert_eq!(
                action_after(settings.resync, &flow, look_again),
                expected,
                "{flow:?} {look_again:?}"
            );
        }
    }
}
