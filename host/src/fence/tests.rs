use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use kube::client::Body;
use tower::{Layer, ServiceExt};

use super::*;

const S: Duration = Duration::from_secs(1);

/// A clock the test moves by hand.
struct FakeClock(Mutex<Instant>);

impl FakeClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[test]
fn may_act_until_the_margin_before_the_lease_ends() {
    let t0 = Instant::now();
    let lease = 15 * S;
    let margin = 2 * S;
    let ms = Duration::from_millis;
    // (what, last renewal, now, lease, margin, may act)
    let cases = [
        ("never renewed", None, t0, lease, margin, false),
        ("right after a renewal", Some(t0), t0, lease, margin, true),
        (
            "within the lease",
            Some(t0),
            t0 + 10 * S,
            lease,
            margin,
            true,
        ),
        (
            "just before the deadline",
            Some(t0),
            t0 + 13 * S - ms(1),
            lease,
            margin,
            true,
        ),
        (
            "at the deadline",
            Some(t0),
            t0 + 13 * S,
            lease,
            margin,
            false,
        ),
        (
            "inside the margin",
            Some(t0),
            t0 + 14 * S,
            lease,
            margin,
            false,
        ),
        (
            "when a standby may take over",
            Some(t0),
            t0 + lease,
            lease,
            margin,
            false,
        ),
        ("long after", Some(t0), t0 + 60 * S, lease, margin, false),
        (
            "no margin: up to the lease",
            Some(t0),
            t0 + lease - ms(1),
            lease,
            Duration::ZERO,
            true,
        ),
        (
            "no margin: not at the lease",
            Some(t0),
            t0 + lease,
            lease,
            Duration::ZERO,
            false,
        ),
        (
            "a margin as long as the lease",
            Some(t0),
            t0,
            lease,
            lease,
            false,
        ),
        (
            "a margin longer than the lease",
            Some(t0),
            t0,
            lease,
            2 * lease,
            false,
        ),
    ];
    for (what, last, now, lease, margin, want) in cases {
        assert_eq!(may_act(last, now, lease, margin), want, "{what}");
    }
}

#[test]
fn a_margin_must_leave_time_to_act() {
    assert_eq!(
        Fence::new(15 * S, 15 * S).map(|_| ()),
        Err(FenceConfigError::MarginTooLong {
            lease: 15 * S,
            margin: 15 * S
        })
    );
    assert!(Fence::new(15 * S, 2 * S).is_ok());
}

#[test]
fn the_margin_leaves_a_renewal_time_to_answer() {
    let ms = Duration::from_millis;
    // (grace, asked, margin or the grace it ran into)
    let cases = [
        (5 * S, None, Ok(DEFAULT_MARGIN)),
        (S, None, Ok(ms(500))),
        (5 * S, Some(ms(4900)), Ok(ms(4900))),
        (5 * S, Some(5 * S), Err(5 * S)),
        (S, Some(2 * S), Err(S)),
    ];
    for (grace, asked, want) in cases {
        let want = want.map_err(|grace| FenceConfigError::MarginBeforeRenewal {
            grace,
            margin: asked.unwrap_or_default(),
        });
        assert_eq!(
            margin_for(grace, asked),
            want,
            "grace {grace:?}, asked {asked:?}"
        );
    }
}

#[test]
fn an_unfenced_operator_always_acts() {
    let fence = Fence::unfenced();
    assert!(fence.check().is_ok());
    assert_eq!(fence.deadline(), None);
    assert!(!fence.is_tripped());
}

#[test]
fn a_tripped_fence_stays_tripped() {
    let clock = FakeClock::new();
    let fence = Fence::with_clock(15 * S, 2 * S, clock.clone()).expect("fence");
    fence.renewed(clock.now());
    clock.advance(14 * S);
    assert!(fence.check().is_err());
    // A renewal answered late does not bring the old leader back: it is
    // already stopping.
    fence.renewed(clock.now());
    assert!(fence.check().is_err());
    assert!(fence.is_tripped());
}

#[test]
fn reads_pass_a_tripped_fence_but_writes_and_execs_do_not() {
    let cases = [
        (Method::GET, "/api/v1/namespaces/ns/pods", false),
        (
            Method::GET,
            "/apis/tarantool.io/v1alpha1/namespaces/ns/roles/storage",
            false,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/ns/pods/storage-0-0/exec",
            true,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/ns/pods/storage-0-0/exec",
            true,
        ),
        (
            Method::GET,
            "/api/v1/namespaces/ns/pods/storage-0-0/attach",
            true,
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/ns/pods/storage-0-0",
            true,
        ),
        (
            Method::PATCH,
            "/apis/apps/v1/namespaces/ns/statefulsets/storage-0",
            true,
        ),
        (
            Method::PATCH,
            "/apis/tarantool.io/v1alpha1/namespaces/ns/roles/storage/status",
            true,
        ),
        (
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/ns/events",
            true,
        ),
        (Method::PUT, "/api/v1/namespaces/ns/services/storage", true),
    ];
    for (method, path, want) in cases {
        assert_eq!(acts(&method, path), want, "{method} {path}");
    }
}

type Reply = Pin<Box<dyn Future<Output = Result<Response<Body>, std::io::Error>> + Send>>;

/// The apiserver as the old leader sees it: Lease writes answer until
/// `stall` is set, then hang forever; every other request answers at once
/// and is counted in `served`.
#[derive(Clone, Default)]
struct Apiserver {
    stall: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
}

impl Apiserver {
    fn reply(&self, request: &Request<Body>) -> Reply {
        let lease = request.uri().path().contains("/leases/");
        if lease && self.stall.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        if !lease {
            self.served.fetch_add(1, Ordering::SeqCst);
        }
        let body = match *request.method() {
            Method::DELETE => serde_json::json!({
                "apiVersion": "v1", "kind": "Status", "status": "Success",
                "metadata": {}
            }),
            _ => serde_json::json!({
                "apiVersion": "v1", "kind": "List", "items": [], "metadata": {}
            }),
        };
        let response = Response::builder()
            .status(StatusCode::OK)
            .body(Body::from(body.to_string().into_bytes()));
        Box::pin(async move { response.map_err(std::io::Error::other) })
    }

    fn service(
        &self,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = std::io::Error,
        Future = Reply,
    > + Clone
    + Send
    + 'static {
        let apiserver = self.clone();
        tower::service_fn(move |request: Request<Body>| apiserver.reply(&request))
    }
}

fn renewal() -> Request<Body> {
    Request::builder()
        .method(Method::PATCH)
        .uri(lease_path("ops", "tarantool-operator"))
        .body(Body::from(b"{}".to_vec()))
        .expect("request")
}

/// The old leader renews at t0 and then its renewal hangs. It goes on
/// deleting pods every 250 ms through the fenced client: every delete
/// before `t0 + lease - margin` goes out, none after, and the last one
/// leaves before `t0 + lease`, when a standby's clock lets it take over.
#[tokio::test]
async fn a_stalled_renewal_stops_the_leaders_writes_before_the_lease_can_be_taken_over() {
    let lease = 15 * S;
    let margin = 2 * S;
    let clock = FakeClock::new();
    let fence = Fence::with_clock(lease, margin, clock.clone()).expect("fence");
    let apiserver = Apiserver::default();
    let lease_client =
        RenewalTap::new(fence.clone(), "ops", "tarantool-operator").layer(apiserver.service());
    let client = kube::Client::new(
        FenceLayer::new(fence.clone()).layer(apiserver.service()),
        "ns",
    );
    let pods: Api<Pod> = Api::namespaced(client, "ns");

    let t0 = clock.now();
    let answer = lease_client
        .clone()
        .oneshot(renewal())
        .await
        .expect("acquired");
    assert!(answer.status().is_success());
    assert_eq!(fence.last_renewal(), Some(t0));

    let step = Duration::from_millis(250);
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    while clock.now() < t0 + 20 * S {
        if clock.now() == t0 + 10 * S {
            // The renewal kube-lease-manager sends `grace` before expiry:
            // it never gets an answer.
            apiserver.stall.store(true, Ordering::SeqCst);
            tokio::spawn(lease_client.clone().oneshot(renewal()));
            tokio::task::yield_now().await;
        }
        let at = clock.now() - t0;
        match pods.delete("storage-0-0", &DeleteParams::default()).await {
            Ok(_) => sent.push(at),
            // What a step sees: a Kubernetes error whose reason is Fenced.
            Err(e) => match crate::controller::Error::from(e) {
                e if e.reason() == crate::api::Reason::Fenced => refused.push(at),
                e => panic!("unexpected error at {at:?}: {e}"),
            },
        }
        clock.advance(step);
    }

    let last_sent = *sent
        .last()
        .expect("the leader acted while it held the Lease");
    let first_refused = *refused.first().expect("the leader was fenced");
    assert!(last_sent < lease - margin, "sent at {last_sent:?}");
    assert!(
        last_sent < lease,
        "a write at {last_sent:?} may meet the next leader's"
    );
    assert_eq!(first_refused, lease - margin);
    assert!(
        sent.iter().all(|t| *t < first_refused),
        "no write after the first refusal"
    );
    assert_eq!(apiserver.served.load(Ordering::SeqCst), sent.len());
    assert!(fence.is_tripped());
    // Reads go on (the watches, until the process exits).
    assert!(pods.list(&ListParams::default()).await.is_ok());
}

/// The same leader, with renewals that answer: it never stops.
#[tokio::test]
async fn renewals_that_answer_keep_the_leader_acting() {
    let clock = FakeClock::new();
    let fence = Fence::with_clock(15 * S, 2 * S, clock.clone()).expect("fence");
    let apiserver = Apiserver::default();
    let lease_client =
        RenewalTap::new(fence.clone(), "ops", "tarantool-operator").layer(apiserver.service());
    let client = kube::Client::new(
        FenceLayer::new(fence.clone()).layer(apiserver.service()),
        "ns",
    );
    let pods: Api<Pod> = Api::namespaced(client, "ns");
    let t0 = clock.now();
    for second in 0..60u32 {
        if second % 10 == 0 {
            lease_client
                .clone()
                .oneshot(renewal())
                .await
                .expect("renewed");
        }
        assert!(
            pods.delete("storage-0-0", &DeleteParams::default())
                .await
                .is_ok(),
            "refused at {second}s"
        );
        clock.advance(S);
    }
    assert_eq!(fence.last_renewal(), Some(t0 + 50 * S));
    assert!(!fence.is_tripped());
}

#[tokio::test]
async fn only_successful_writes_of_the_lease_count_as_renewals() {
    let clock = FakeClock::new();
    let fence = Fence::with_clock(15 * S, 2 * S, clock.clone()).expect("fence");
    let answering = |status: StatusCode| {
        tower::service_fn(move |_request: Request<Body>| async move {
            Response::builder()
                .status(status)
                .body(Body::from(Vec::new()))
                .map_err(std::io::Error::other)
        })
    };
    let tap = RenewalTap::new(fence.clone(), "ops", "tarantool-operator");
    let request = |method: Method, path: String| {
        Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(Vec::new()))
            .expect("request")
    };
    let path = lease_path("ops", "tarantool-operator");
    let not_renewals = [
        (StatusCode::OK, request(Method::GET, path.clone())),
        (StatusCode::CONFLICT, request(Method::PATCH, path.clone())),
        (
            StatusCode::OK,
            request(Method::PATCH, lease_path("ops", "other")),
        ),
        (
            StatusCode::CREATED,
            request(Method::POST, lease_path("ops", "")),
        ),
    ];
    for (status, req) in not_renewals {
        let what = format!("{} {} -> {status}", req.method(), req.uri());
        tap.layer(answering(status))
            .oneshot(req)
            .await
            .expect("answered");
        assert_eq!(fence.last_renewal(), None, "{what}");
    }
    tap.layer(answering(StatusCode::OK))
        .oneshot(request(Method::PATCH, path))
        .await
        .expect("answered");
    assert_eq!(fence.last_renewal(), Some(clock.now()));
}

/// Once fenced, the Lease manager's writes go nowhere: neither a renewal
/// nor the release it sends when the process stops listening to it (which,
/// delivered late, would clear the Lease of the replica that took over).
/// Its reads go on. Past the deadline, before anything tripped the fence
/// (a process frozen and resumed), its renewal is refused too and trips it.
#[tokio::test]
async fn a_fenced_replica_writes_no_lease() {
    let clock = FakeClock::new();
    let fence = Fence::with_clock(15 * S, 2 * S, clock.clone()).expect("fence");
    let reached = Arc::new(AtomicUsize::new(0));
    let apiserver = {
        let reached = reached.clone();
        tower::service_fn(move |_request: Request<Body>| {
            reached.fetch_add(1, Ordering::SeqCst);
            async move {
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(Vec::new()))
                    .map_err(std::io::Error::other)
            }
        })
    };
    let tap = RenewalTap::new(fence.clone(), "ops", "tarantool-operator").layer(apiserver);
    let path = lease_path("ops", "tarantool-operator");
    let request = |method: Method| {
        Request::builder()
            .method(method)
            .uri(path.clone())
            .body(Body::from(Vec::new()))
            .expect("request")
    };
    // Never renewed: taking the Lease is a write, and it goes out.
    assert!(tap.clone().oneshot(request(Method::PATCH)).await.is_ok());
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    assert_eq!(fence.last_renewal(), Some(clock.now()));
    // Within the deadline, renewals go out.
    clock.advance(10 * S);
    assert!(tap.clone().oneshot(request(Method::PATCH)).await.is_ok());
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    let renewed = clock.now();
    assert!(!fence.is_tripped());
    // Past the deadline (13 s after the renewal), nothing tripped yet: the
    // renewal of a resumed process stays home and trips the fence.
    clock.advance(14 * S);
    let late = tap.clone().oneshot(request(Method::PATCH)).await;
    assert!(late.is_err_and(|e| e.downcast_ref::<Fenced>().is_some()));
    assert_eq!(reached.load(Ordering::SeqCst), 2);
    assert!(fence.is_tripped());
    // (method, reaches the apiserver)
    let cases = [
        (Method::GET, true),
        (Method::PATCH, false),
        (Method::PUT, false),
        (Method::DELETE, false),
        (Method::POST, false),
    ];
    for (method, want) in cases {
        let before = reached.load(Ordering::SeqCst);
        let answer = tap.clone().oneshot(request(method.clone())).await;
        assert_eq!(answer.is_ok(), want, "{method}");
        assert_eq!(
            reached.load(Ordering::SeqCst) - before,
            usize::from(want),
            "{method}"
        );
        if let Err(e) = answer {
            assert!(e.downcast_ref::<Fenced>().is_some(), "{method}: {e}");
        }
    }
    assert_eq!(fence.last_renewal(), Some(renewed));
}

/// The watchdog trips the fence on its own when nothing is sent, so the
/// process stops even while no pass runs (real time, milliseconds: only
/// that it trips is asserted, not when).
#[tokio::test]
async fn the_watchdog_trips_the_fence_without_renewals() {
    let fence = Fence::new(Duration::from_millis(300), Duration::from_millis(100)).expect("fence");
    fence.renewed(Instant::now());
    let watchdog = tokio::spawn(fence.clone().watchdog());
    let fenced = tokio::time::timeout(Duration::from_secs(60), watchdog)
        .await
        .expect("the watchdog returns")
        .expect("the watchdog did not panic");
    assert!(fenced.reason.contains("last renewed"), "{}", fenced.reason);
    assert!(fence.is_tripped());
    assert!(fence.check().is_err());
}

#[tokio::test]
async fn tripping_wakes_whoever_waits_for_it() {
    let fence = Fence::new(15 * S, 2 * S).expect("fence");
    fence.renewed(Instant::now());
    let waiter = tokio::spawn({
        let fence = fence.clone();
        async move { fence.tripped().await }
    });
    let watchdog = tokio::spawn(fence.clone().watchdog());
    fence.trip("the Lease was lost");
    let fenced = waiter.await.expect("waiter");
    assert_eq!(fenced.reason, "the Lease was lost");
    assert_eq!(
        watchdog.await.expect("watchdog").reason,
        "the Lease was lost"
    );
}
