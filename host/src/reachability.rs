//! Whether the apiserver answers the controllers' client, for `/readyz` and
//! for a metric.
//!
//! [`ReachabilityLayer`] sits in the controllers' client and sees every
//! request it sends (reads, watches, writes, Events, exec): each is counted
//! by [`Outcome`] (`tarantool_operator_apiserver_requests_total`) and the
//! last outcome is kept. While the apiserver is down (connections refused
//! or timing out) or failing (answering 5xx, as it does while etcd is down),
//! readiness says so ([`Reachability::readiness`]): the controllers cannot
//! act, and the counter shows how often they still try (the backoffs, not
//! the outage, bound it). A single answer of any other status (404 and 409
//! included: the apiserver answered) makes it ready again.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

/// The error type of a Kubernetes client's service stack.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What became of one request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    /// The apiserver answered (any status below 500).
    Answered,
    /// The apiserver answered 5xx: it runs but cannot serve (its storage,
    /// etcd, is unreachable, or it is shutting down).
    ServerError,
    /// No answer: the connection was refused, reset or timed out.
    Unreachable,
}

/// What a response status says about the apiserver.
pub(crate) fn classify(status: StatusCode) -> Outcome {
    if status.is_server_error() {
        Outcome::ServerError
    } else {
        Outcome::Answered
    }
}

/// Labels of [`Reachability`]'s counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The request's [`Outcome`].
    pub outcome: Outcome,
}

/// The last failure and since when every request failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Failing {
    /// The first failure after the last answer; `None`: the last request
    /// was answered (or none was sent yet).
    since: Option<Instant>,
    /// What the last failure was.
    last: String,
}

impl Failing {
    /// Records `outcome` at `at`; `detail` describes a failure.
    pub(crate) fn record(&mut self, outcome: Outcome, at: Instant, detail: impl FnOnce() -> String) {
        match outcome {
            Outcome::Answered => *self = Self::default(),
            Outcome::ServerError | Outcome::Unreachable => {
                self.since.get_or_insert(at);
                self.last = detail();
            }
        }
    }

    /// Whether the operator is ready at `now`, and what `/readyz` says.
    pub(crate) fn readiness(&self, now: Instant) -> (bool, String) {
        match self.since {
            None => (true, "ready".into()),
            Some(since) => (
                false,
                format!(
                    "apiserver unreachable for {}s: {}; the controllers retry with backoff",
                    now.saturating_duration_since(since).as_secs(),
                    self.last
                ),
            ),
        }
    }
}

/// The apiserver as the controllers' client sees it.
#[derive(Debug, Default)]
pub struct Reachability {
    failing: Mutex<Failing>,
    requests: Family<OutcomeLabels, Counter>,
}

impl Reachability {
    /// A tracker; nothing recorded yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers its counter in `registry` as
    /// `tarantool_operator_apiserver_requests_total{outcome}`.
    pub fn register(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_prefix("tarantool_operator")
            .register(
                "apiserver_requests",
                "Requests the controllers sent to the apiserver, by outcome (answered, server_error, unreachable)",
                self.requests.clone(),
            );
    }

    fn record(&self, outcome: Outcome, detail: impl FnOnce() -> String) {
        self.requests.get_or_create(&OutcomeLabels { outcome }).inc();
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(outcome, Instant::now(), detail);
    }

    /// Whether the last request was answered; the body of `/readyz`.
    pub fn readiness(&self) -> (bool, String) {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .readiness(Instant::now())
    }

    /// How many requests had `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests.get_or_create(&OutcomeLabels { outcome }).get()
    }
}

/// A layer for the controllers' client recording every request's outcome
/// in a [`Reachability`].
#[derive(Debug, Clone)]
pub struct ReachabilityLayer {
    reachability: Arc<Reachability>,
}

impl ReachabilityLayer {
    /// Records into `reachability`.
    pub fn new(reachability: Arc<Reachability>) -> Self {
        Self { reachability }
    }
}

impl<S> Layer<S> for ReachabilityLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded {
            inner,
            reachability: self.reachability.clone(),
        }
    }
}

/// The service [`ReachabilityLayer`] makes.
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    reachability: Arc<Reachability>,
}

type ResponseFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B, RB> Service<Request<B>> for Recorded<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = ResponseFuture<Response<RB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let reachability = self.reachability.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await.map_err(Into::into) {
                Ok(response) => {
                    let status = response.status();
                    reachability.record(classify(status), || format!("answered {status}"));
                    Ok(response)
                }
                Err(e) => {
                    reachability.record(Outcome::Unreachable, || e.to_string());
                    Err(e)
                }
            }
        })
    }
}

/// How long `/readyz` waits for the apiserver when it looks again.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_say_whether_the_apiserver_serves() {
        let cases = [
            (StatusCode::OK, Outcome::Answered),
            (StatusCode::CREATED, Outcome::Answered),
            (StatusCode::NOT_FOUND, Outcome::Answered),
            (StatusCode::CONFLICT, Outcome::Answered),
            (StatusCode::TOO_MANY_REQUESTS, Outcome::Answered),
            (StatusCode::INTERNAL_SERVER_ERROR, Outcome::ServerError),
            (StatusCode::SERVICE_UNAVAILABLE, Outcome::ServerError),
            (StatusCode::GATEWAY_TIMEOUT, Outcome::ServerError),
        ];
        for (status, want) in cases {
            assert_eq!(classify(status), want, "{status}");
        }
    }

    #[test]
    fn readiness_follows_the_last_outcome_and_counts_from_the_first_failure() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut f = Failing::default();
        assert_eq!(f.readiness(at(0)), (true, "ready".into()), "nothing sent yet");
        f.record(Outcome::Answered, at(1), String::new);
        assert!(f.readiness(at(1)).0);
        f.record(Outcome::Unreachable, at(2), || "connection refused".into());
        f.record(Outcome::Unreachable, at(5), || "connection refused".into());
        f.record(Outcome::ServerError, at(7), || "answered 504".into());
        let (ready, body) = f.readiness(at(12));
        assert!(!ready);
        assert_eq!(
            body,
            "apiserver unreachable for 10s: answered 504; the controllers retry with backoff",
            "counted from the first failure, naming the last"
        );
        f.record(Outcome::Answered, at(13), String::new);
        assert_eq!(f.readiness(at(13)), (true, "ready".into()), "one answer is enough");
        f.record(Outcome::ServerError, at(20), || "answered 500".into());
        assert!(
            f.readiness(at(20)).1.contains("for 0s"),
            "a new streak starts anew"
        );
    }
}
