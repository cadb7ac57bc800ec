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
    /// When a request was last answered.
    answered: Option<Instant>,
}

impl Failing {
    /// Records `outcome` at `at`; `detail` describes a failure.
    pub(crate) fn record(
        &mut self,
        outcome: Outcome,
        at: Instant,
        detail: impl FnOnce() -> String,
    ) {
        match outcome {
            Outcome::Answered => {
                *self = Self {
                    answered: Some(at),
                    ..Self::default()
                }
            }
            Outcome::ServerError | Outcome::Unreachable => {
                self.since.get_or_insert(at);
                self.last = detail();
            }
        }
    }

    /// Whether the operator is ready at `now`, and what `/readyz` says;
    /// `oldest` is when the longest-waiting request in flight was sent.
    pub(crate) fn readiness(&self, now: Instant, oldest: Option<Instant>) -> (bool, String) {
        let waiting = oldest.map(|o| now.saturating_duration_since(o));
        match self.since {
            None => match waiting {
                Some(waited) if waited >= STALL => (
                    false,
                    format!(
                        "apiserver not answering: a request has waited {}s (is etcd down?); the controllers retry with backoff",
                        waited.as_secs()
                    ),
                ),
                _ => (true, "ready".into()),
            },
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

/// How long a request (not a watch) may wait for its answer before
/// readiness says the apiserver is not answering: while etcd is down the
/// apiserver accepts requests and holds them (writes for up to a minute)
/// instead of failing them.
pub const STALL: Duration = Duration::from_secs(5);

/// The apiserver as the controllers' client sees it.
#[derive(Debug, Default)]
pub struct Reachability {
    failing: Mutex<Failing>,
    /// Requests (watches aside) waiting for their answer, by a serial.
    in_flight: Mutex<(u64, std::collections::BTreeMap<u64, Instant>)>,
    requests: Family<OutcomeLabels, Counter>,
}

/// A request in flight; forgotten when dropped (answered, failed or
/// abandoned).
struct InFlight {
    reachability: Arc<Reachability>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.reachability
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(&self.id);
    }
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
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(outcome, Instant::now(), detail);
    }

    fn sent(self: &Arc<Self>) -> InFlight {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.0 += 1;
        let id = in_flight.0;
        in_flight.1.insert(id, Instant::now());
        InFlight {
            reachability: self.clone(),
            id,
        }
    }

    /// Whether the last request was answered and none waits too long; the
    /// body of `/readyz`.
    pub fn readiness(&self) -> (bool, String) {
        let oldest = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .values()
            .min()
            .copied();
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .readiness(Instant::now(), oldest)
    }

    /// Whether nothing was answered for [`STALL`] (or ever): a client that
    /// sends nothing learns nothing, so `/readyz` then reads once itself.
    pub fn quiet(&self) -> bool {
        self.failing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .answered
            .is_none_or(|at| at.elapsed() >= STALL)
    }

    /// How many requests had `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .get()
    }
}

/// How long a request may wait for the apiserver's answer (its status and
/// headers; a watch's events and a long list's body come after and are not
/// bounded by it) before it fails: half the apiserver's own 60 s limit.
/// Without it a request sent as the apiserver restarts could wait forever:
/// a watch whose relist never returned left the operator blind to its pods
/// (found by `faults.rs`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The apiserver did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the apiserver within {0:?}")]
pub struct NoAnswer(pub Duration);

/// A layer for the controllers' client recording every request's outcome
/// in a [`Reachability`], and failing a request that waits for its answer
/// longer than [`REQUEST_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct ReachabilityLayer {
    reachability: Arc<Reachability>,
    timeout: Duration,
}

impl ReachabilityLayer {
    /// Records into `reachability`.
    pub fn new(reachability: Arc<Reachability>) -> Self {
        Self {
            reachability,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// Another timeout than [`REQUEST_TIMEOUT`].
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
}

impl<S> Layer<S> for ReachabilityLayer {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded {
            inner,
            reachability: self.reachability.clone(),
            timeout: self.timeout,
        }
    }
}

/// The service [`ReachabilityLayer`] makes.
#[derive(Debug, Clone)]
pub struct Recorded<S> {
    inner: S,
    reachability: Arc<Reachability>,
    timeout: Duration,
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
        // A watch's answer (its headers) comes at once, but it is a
        // long-running request all the same: not counted as waiting.
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        let waiting = (!watch).then(|| reachability.sent());
        let response = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            let _waiting = waiting;
            let answer = match tokio::time::timeout(timeout, response).await {
                Ok(answer) => answer.map_err(Into::into),
                Err(_) => Err(Box::new(NoAnswer(timeout)) as BoxError),
            };
            match answer {
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
        assert_eq!(
            f.readiness(at(0), None),
            (true, "ready".into()),
            "nothing sent yet"
        );
        f.record(Outcome::Answered, at(1), String::new);
        assert!(f.readiness(at(1), None).0);
        f.record(Outcome::Unreachable, at(2), || "connection refused".into());
        f.record(Outcome::Unreachable, at(5), || "connection refused".into());
        f.record(Outcome::ServerError, at(7), || "answered 504".into());
        let (ready, body) = f.readiness(at(12), None);
        assert!(!ready);
        assert_eq!(
            body, "apiserver unreachable for 10s: answered 504; the controllers retry with backoff",
            "counted from the first failure, naming the last"
        );
        f.record(Outcome::Answered, at(13), String::new);
        assert_eq!(
            f.readiness(at(13), None),
            (true, "ready".into()),
            "one answer is enough"
        );
        f.record(Outcome::ServerError, at(20), || "answered 500".into());
        assert!(
            f.readiness(at(20), None).1.contains("for 0s"),
            "a new streak starts anew"
        );
    }

    #[test]
    fn a_request_held_past_the_stall_makes_it_unready() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let f = Failing::default();
        let cases = [
            ("nothing in flight", None, true),
            ("in flight briefly", Some(at(8)), true),
            ("in flight just under the stall", Some(at(6)), true),
            ("in flight for the stall", Some(at(5)), false),
            ("held for long", Some(at(0)), false),
        ];
        for (name, oldest, ready) in cases {
            assert_eq!(f.readiness(at(10), oldest).0, ready, "{name}");
        }
        assert_eq!(
            f.readiness(at(10), Some(at(0))).1,
            "apiserver not answering: a request has waited 10s (is etcd down?); the controllers retry with backoff"
        );
    }

    /// An operator that had nothing answered lately is quiet: `/readyz`
    /// then reads once itself. An answer makes it not quiet, a failure
    /// does not.
    #[test]
    fn quiet_until_something_is_answered() {
        let r = Reachability::new();
        assert!(r.quiet(), "nothing sent yet");
        r.record(Outcome::ServerError, || "503".into());
        assert!(r.quiet(), "a failure is no answer");
        r.record(Outcome::Answered, String::new);
        assert!(!r.quiet(), "just answered");
    }

    #[tokio::test]
    async fn a_request_never_answered_fails_and_says_so() {
        let reachability = Reachability::new();
        let never = tower::service_fn(|_: Request<()>| {
            std::future::pending::<Result<Response<()>, BoxError>>()
        });
        let mut client = ReachabilityLayer::new(reachability.clone())
            .with_timeout(Duration::from_millis(20))
            .layer(never);
        let got = client.call(Request::new(())).await;
        assert!(
            got.is_err_and(|e| e.to_string().starts_with("no answer from the apiserver")),
            "a request held forever fails"
        );
        assert_eq!(reachability.count(Outcome::Unreachable), 1);
        let (ready, body) = reachability.readiness();
        assert!(!ready && body.contains("no answer"), "{body}");
        let answered =
            tower::service_fn(|_: Request<()>| async { Ok::<_, BoxError>(Response::new(())) });
        let mut client = ReachabilityLayer::new(reachability.clone()).layer(answered);
        assert!(client.call(Request::new(())).await.is_ok());
        assert_eq!(reachability.readiness(), (true, "ready".to_string()));
        assert_eq!(reachability.count(Outcome::Answered), 1);
    }
}
