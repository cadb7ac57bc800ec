//! Fencing: the leader stops acting before its Lease can be taken over.
//!
//! Leader election (kube-lease-manager) tells the operator when it became
//! the leader and when it *saw* that it lost the Lease. Between the two, a
//! renewal can stall (a hung request, a starved runtime, a partition): the
//! old leader still believes it leads while a standby, whose clock says the
//! Lease expired `lease` after its last `renewTime`, takes it and starts
//! deleting pods too. So the leader keeps its own deadline: the start of its
//! last successful renewal plus the lease duration minus a margin (for clock
//! skew between replicas and for requests already on the wire). Past it,
//! without a newer renewal, the [`Fence`] trips: every write and exec the
//! controllers' client would send is refused ([`FenceLayer`]), and the
//! process exits so that Kubernetes restarts it as a follower.
//!
//! The renewal outcomes come from the Lease manager's own client
//! ([`RenewalTap`]): kube-lease-manager does not publish when it renewed, but
//! each renewal is a PATCH of the Lease, and while this replica leads, a
//! successful PATCH of its Lease is a renewal. The time recorded is when the
//! request was sent, never when its answer came: the Lease's `renewTime`,
//! which a standby counts from, was taken just before sending.
//!
//! What the fence covers: every request of the controllers' client that is
//! not a read (create, update, patch, delete, Events, status) and every exec
//! (the Cartridge console), checked against the clock when the request is
//! sent, plus the start of every reconcile step (a typed
//! [`Fenced`] error), plus every write on the client's connections
//! ([`wire`]: a request checked before a freeze is not sent after it). What
//! it cannot cover: bytes already written before the deadline and delivered
//! after it; the margin is there for those.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use tokio::sync::watch;
use tower::{Layer, Service};

/// The error type of a Kubernetes client's service stack.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a leader whose last successful renewal started at `last_renewal`
/// may still act at `now`: strictly before `last_renewal + lease - margin`.
/// Never renewed: no.
pub fn may_act(
    last_renewal: Option<Instant>,
    now: Instant,
    lease: Duration,
    margin: Duration,
) -> bool {
    let Some(last) = last_renewal else {
        return false;
    };
    match last.checked_add(lease.saturating_sub(margin)) {
        Some(deadline) => now < deadline,
        // A deadline beyond what Instant represents is never reached.
        None => true,
    }
}

/// A source of the current time, so that tests can move it by hand.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The monotonic system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A refusal: this replica may no longer act for the Lease it held.
#[derive(Debug, Clone, thiserror::Error)]
#[error("fenced: {reason}; this replica no longer acts and exits to restart as a follower")]
pub struct Fenced {
    /// Why the fence tripped.
    pub reason: String,
}

/// Settings a fence cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceConfigError {
    /// The margin leaves no time to act at all.
    #[error("the fence margin ({margin:?}) must be shorter than the lease ({lease:?})")]
    MarginTooLong {
        /// The lease duration.
        lease: Duration,
        /// The margin asked for.
        margin: Duration,
    },
    /// The fence would trip before the regular renewal, `grace` before the
    /// lease ends, had a chance to answer.
    #[error(
        "the fence margin ({margin:?}) must be shorter than the renewal grace ({grace:?}): \
         the leader renews that long before its Lease ends"
    )]
    MarginBeforeRenewal {
        /// How long before the lease ends the leader renews.
        grace: Duration,
        /// The margin asked for.
        margin: Duration,
    },
}

/// The margin the default settings take: long enough for clock skew
/// between replicas and a request on the wire, short enough to leave a
/// renewal time to answer.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(2);

/// The margin for a leader that renews `grace` before its Lease ends:
/// `asked`, or [`DEFAULT_MARGIN`] capped at half the grace; refused when it
/// leaves a renewal no time to answer before the fence trips.
pub fn margin_for(grace: Duration, asked: Option<Duration>) -> Result<Duration, FenceConfigError> {
    let margin = asked.unwrap_or_else(|| DEFAULT_MARGIN.min(grace / 2));
    if margin >= grace {
        return Err(FenceConfigError::MarginBeforeRenewal { grace, margin });
    }
    Ok(margin)
}

/// The lease duration and the margin taken off it.
#[derive(Debug, Clone, Copy)]
struct Limits {
    lease: Duration,
    margin: Duration,
}

/// The leader's deadline: renewals push it forward, and once it passed the
/// fence stays tripped (the process is about to exit).
pub struct Fence {
    /// `None`: no leader election, nothing to fence.
    limits: Option<Limits>,
    clock: Arc<dyn Clock>,
    last_renewal: Mutex<Option<Instant>>,
    tripped: watch::Sender<Option<Fenced>>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("limits", &self.limits)
            .field("last_renewal", &self.last_renewal())
            .field("tripped", &self.is_tripped())
            .finish()
    }
}

impl Fence {
    /// A fence that never trips: the operator runs without leader election.
    pub fn unfenced() -> Arc<Self> {
        Arc::new(Self::build(None, Arc::new(SystemClock)))
    }

    /// A fence for a Lease of `lease`, tripping `margin` before it could be
    /// taken over.
    pub fn new(lease: Duration, margin: Duration) -> Result<Arc<Self>, FenceConfigError> {
        Self::with_clock(lease, margin, Arc::new(SystemClock))
    }

    /// [`Fence::new`] reading the time from `clock`.
    pub fn with_clock(
        lease: Duration,
        margin: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, FenceConfigError> {
        if margin >= lease {
            return Err(FenceConfigError::MarginTooLong { lease, margin });
        }
        Ok(Arc::new(Self::build(Some(Limits { lease, margin }), clock)))
    }

    fn build(limits: Option<Limits>, clock: Arc<dyn Clock>) -> Self {
        Self {
            limits,
            clock,
            last_renewal: Mutex::new(None),
            tripped: watch::Sender::new(None),
        }
    }

    /// The current time of the fence's clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Records a successful renewal whose request was sent at `sent`.
    pub fn renewed(&self, sent: Instant) {
        let mut last = self.last_renewal.lock().unwrap_or_else(|e| e.into_inner());
        // Answers can arrive out of order: keep the latest start.
        if last.is_none_or(|l| l < sent) {
            *last = Some(sent);
        }
    }

    /// The start of the last successful renewal.
    pub fn last_renewal(&self) -> Option<Instant> {
        *self.last_renewal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the fence trips without another renewal; `None` when unfenced
    /// or never renewed.
    pub fn deadline(&self) -> Option<Instant> {
        let limits = self.limits?;
        self.last_renewal()?
            .checked_add(limits.lease.saturating_sub(limits.margin))
    }

    /// Ok while this replica may act; past the deadline, trips the fence
    /// and refuses, as it does ever after.
    pub fn check(&self) -> Result<(), Fenced> {
        if let Some(fenced) = self.tripped.borrow().clone() {
            return Err(fenced);
        }
        let Some(limits) = self.limits else {
            return Ok(());
        };
        let last = self.last_renewal();
        if may_act(last, self.now(), limits.lease, limits.margin) {
            return Ok(());
        }
        let reason = match last {
            Some(last) => format!(
                "the Lease was last renewed {:.1?} ago; it may be taken over {:.1?} after a renewal \
                 (the fence keeps a margin of {:.1?})",
                self.now().saturating_duration_since(last),
                limits.lease,
                limits.margin
            ),
            None => "the Lease was never renewed by this replica".into(),
        };
        Err(self.trip(reason))
    }

    /// Trips the fence for `reason` (unless it tripped already) and returns
    /// the refusal every later check gets.
    pub fn trip(&self, reason: impl Into<String>) -> Fenced {
        let fenced = Fenced {
            reason: reason.into(),
        };
        let first = self.tripped.send_if_modified(|tripped| {
            if tripped.is_some() {
                return false;
            }
            *tripped = Some(fenced.clone());
            true
        });
        if first {
            tracing::error!(reason = %fenced.reason, "fence tripped: no more writes or execs");
        }
        self.tripped.borrow().clone().unwrap_or(fenced)
    }

    /// Why the fence tripped, once it did (the deadline is not looked at).
    fn refusal(&self) -> Option<Fenced> {
        self.tripped.borrow().clone()
    }

    /// Why this replica may not write at all, neither its Lease nor on a
    /// connection of its controllers' client: the fence tripped, or its
    /// deadline passed since the last renewal (which trips it). A replica
    /// that never renewed may: that is how a standby reads and takes the
    /// Lease.
    pub fn lapsed(&self) -> Option<Fenced> {
        if self.last_renewal().is_none() {
            return self.refusal();
        }
        self.check().err()
    }

    /// Whether the fence tripped.
    pub fn is_tripped(&self) -> bool {
        self.tripped.borrow().is_some()
    }

    /// Resolves once the fence tripped, with why.
    pub async fn tripped(&self) -> Fenced {
        let mut rx = self.tripped.subscribe();
        // The guard the wait returns must not live across an await.
        let fenced = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|fenced| fenced.clone());
        match fenced {
            Some(fenced) => fenced,
            // The sender lives in `self`: it cannot be gone while borrowed.
            None => std::future::pending().await,
        }
    }

    /// Trips the fence when its deadline passes without a renewal: sleeps
    /// until the deadline, looks again (a renewal may have moved it), and
    /// returns once tripped. Never returns when unfenced. Requests check
    /// the clock themselves; this wakes the rest of the process (the
    /// controllers stop, the binary exits) even when nothing is sent.
    pub async fn watchdog(self: Arc<Self>) -> Fenced {
        if self.limits.is_none() {
            return std::future::pending().await;
        }
        loop {
            if let Err(fenced) = self.check() {
                return fenced;
            }
            // check() passed, so there is a deadline in the future; the
            // fallback only guards against a renewal racing this read.
            let wait = self.deadline().map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(self.now())
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                fenced = self.tripped() => return fenced,
            }
        }
    }
}

/// Whether a request changes something or reaches into a pod: everything
/// but reads and watches, and every exec, attach or port-forward (a
/// websocket exec is a GET).
fn acts(method: &Method, path: &str) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let into_pod = ["/exec", "/attach", "/portforward"]
        .iter()
        .any(|s| path.ends_with(s));
    !read || into_pod
}

/// A layer for the controllers' Kubernetes client: refuses every request
/// that acts ([`acts`]) once the fence tripped or its deadline passed.
#[derive(Debug, Clone)]
pub struct FenceLayer {
    fence: Arc<Fence>,
}

impl FenceLayer {
    /// Guards requests with `fence`.
    pub fn new(fence: Arc<Fence>) -> Self {
        Self { fence }
    }
}

impl<S> Layer<S> for FenceLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            fence: self.fence.clone(),
        }
    }
}

/// The service [`FenceLayer`] makes.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    fence: Arc<Fence>,
}

type ResponseFuture<R> = Pin<Box<dyn Future<Output = Result<R, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for Guarded<S>
where
    S: Service<Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if acts(request.method(), request.uri().path())
            && let Err(fenced) = self.fence.check()
        {
            tracing::warn!(method = %request.method(), path = request.uri().path(), "refused: fenced");
            return Box::pin(std::future::ready(Err(Box::new(fenced) as BoxError)));
        }
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map_err(Into::into) })
    }
}

/// A layer for the Lease manager's own client: every successful PATCH or
/// PUT of the Lease `path` is a renewal, recorded in the fence at the time
/// the request was sent. Once the fence tripped or its deadline passed, it
/// refuses every write (reads pass): a fenced replica neither renews nor
/// releases.
#[derive(Debug, Clone)]
pub struct RenewalTap {
    fence: Arc<Fence>,
    path: Arc<str>,
}

impl RenewalTap {
    /// Taps writes of Lease `name` in `namespace`.
    pub fn new(fence: Arc<Fence>, namespace: &str, name: &str) -> Self {
        Self {
            fence,
            path: lease_path(namespace, name).into(),
        }
    }
}

/// The API path of a Lease.
pub fn lease_path(namespace: &str, name: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
}

impl<S> Layer<S> for RenewalTap {
    type Service = Tapped<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tapped {
            inner,
            tap: self.clone(),
        }
    }
}

/// The service [`RenewalTap`] makes.
#[derive(Debug, Clone)]
pub struct Tapped<S> {
    inner: S,
    tap: RenewalTap,
}

impl<S, B, RB> Service<Request<B>> for Tapped<S>
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
        // Once fenced, or past its deadline, the Lease manager writes
        // nothing either: not a renewal, and not the release it sends when
        // the process stops listening to it. Sent late (the apiserver was
        // slow, which may be why the fence tripped), a release would clear
        // the Lease of the replica that took over meanwhile. A leader frozen
        // past its deadline (SIGSTOP, a stalled VM) wakes with its renewal
        // timer and its watchdog both due: whichever runs first, the renewal
        // does not go out.
        if acts(request.method(), request.uri().path())
            && let Some(fenced) = self.tap.fence.lapsed()
        {
            tracing::warn!(method = %request.method(), path = request.uri().path(), "Lease write refused: fenced");
            return Box::pin(std::future::ready(Err(Box::new(fenced) as BoxError)));
        }
        let renewal = matches!(*request.method(), Method::PATCH | Method::PUT)
            && request.uri().path() == &*self.tap.path;
        let fence = self.tap.fence.clone();
        let sent = fence.now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await.map_err(Into::into)?;
            if renewal && response.status().is_success() {
                fence.renewed(sent);
            }
            Ok(response)
        })
    }
}

pub mod wire;

#[cfg(test)]
mod tests;
