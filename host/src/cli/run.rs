//! `tarantool-operator run`: the operator. Leader election on a Lease with
//! a fence (see `tarantool_operator::fence`), both controllers, metrics and
//! health endpoints, until SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Args;
use kube::client::ClientBuilder;
use kube::runtime::events::Reporter;
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use tarantool_operator::console::ConsoleOptions;
use tarantool_operator::console::access::ConsolePolicy;
use tarantool_operator::controller::metrics::Metrics;
use tarantool_operator::controller::{Context, Settings, run};
use tarantool_operator::fence::{Fence, FenceLayer, Fenced, RenewalTap, margin_for, wire};
use tarantool_operator::reachability::{PROBE_TIMEOUT, Reachability, ReachabilityLayer};
use tarantool_operator::strategy::{Registry as Strategies, SandboxLimits, StrategyEngine};
use tarantool_operator::topology::Connector;
use tarantool_operator::topology::cartridge::ExecConnector;
use tracing::{error, info, warn};

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Run only while holding the Lease (for more than one replica).
    #[arg(long, env = "LEADER_ELECT")]
    leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "tarantool-operator", env = "LEASE_NAME")]
    lease_name: String,
    /// The Lease's namespace (default: the pod's, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: the pod's name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease holder has to renew it.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// Address of `/metrics`.
    #[arg(long, default_value = "127.0.0.1:8080", env = "METRICS_ADDR")]
    metrics_addr: SocketAddr,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, default_value = "127.0.0.1:8081", env = "HEALTH_ADDR")]
    health_addr: SocketAddr,
    /// Seconds between looks at a converged object.
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// Seconds between looks while waiting on pods or Cartridge.
    #[arg(long, default_value_t = 2)]
    poll_seconds: u64,
    /// Seconds a console call may take.
    #[arg(long, default_value_t = 10)]
    console_timeout_seconds: u64,
    /// Honour a Cluster's `spec.console.command` (a command of its author's
    /// choosing, exec'd in its pods). Off: only the operator's console
    /// profiles run, and a Cluster that sets a command is refused
    /// (`ConsoleCommandNotAllowed`). Turn on only where everyone who may
    /// edit a Cluster may also exec into its pods.
    #[arg(long, env = "ALLOW_CUSTOM_CONSOLE_COMMAND")]
    allow_custom_console_command: bool,
    /// Seconds between looks at a converged Cluster that reads a failover
    /// password from a Secret (Secrets are read with `get`, not watched, so
    /// a rotation is picked up within this period).
    #[arg(long, default_value_t = 60)]
    secret_refresh_seconds: u64,
    /// Seconds a reconcile pass may take before it is abandoned (fails
    /// with `PassTimeout`).
    #[arg(long, default_value_t = 120)]
    pass_timeout_seconds: u64,
    /// Seconds before the first retry of an object whose pass failed
    /// (each retry waits a random time between the delay and twice it;
    /// the delay doubles with each further failure).
    #[arg(long, default_value_t = 2)]
    backoff_min_seconds: u64,
    /// The longest delay between retries of a failing object (jittered up
    /// to twice it).
    #[arg(long, default_value_t = 60)]
    backoff_max_seconds: u64,
    /// Passes each controller (Clusters, Roles) runs at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Writes (applies, pod deletions) one pass has in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    writes_in_flight: u64,
    /// Seconds after SIGTERM/SIGINT within which the operator exits: running
    /// passes may finish and the Lease is handed over meanwhile; past it (or
    /// on a second signal) the process exits at once with code 4. Keep it
    /// below the pod's terminationGracePeriodSeconds (30).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    shutdown_timeout_seconds: u64,
    /// With `--leader-elect`: milliseconds before its Lease could be taken
    /// over at which a leader whose renewals stall stops acting and exits.
    /// Covers clock skew between replicas and requests in flight; must be
    /// shorter than the renewal grace (a third of the lease). Default: 2000,
    /// at most half the grace.
    #[arg(long)]
    fence_margin_ms: Option<u64>,
    /// Run a custom strategy (a component from a ConfigMap) only when its
    /// Role pins it with `spec.updateStrategy.sha256`; an unpinned one is
    /// refused (`StrategyNotPinned`) before it is fetched. Built-ins need
    /// no pin.
    #[arg(long, env = "REQUIRE_STRATEGY_SHA256")]
    require_strategy_sha256: bool,
    /// The eviction webhook (node maintenance).
    #[command(flatten)]
    eviction_webhook: Box<tarantool_operator::webhook::EvictionWebhookArgs>,
}

/// The exit code of a leader that was fenced or lost its Lease: not 0, so
/// that the restart shows, and not 1 or 2 (errors).
pub const FENCED_EXIT_CODE: u8 = 3;

/// The exit code of an operator that did not stop within
/// `--shutdown-timeout-seconds` after SIGTERM, or got a second signal.
pub const FORCED_EXIT_CODE: u8 = 4;

/// How the operator stopped.
enum Ended {
    /// Asked to (SIGTERM, SIGINT).
    Stopped,
    /// Fenced, or the Lease lost: it stopped acting at once.
    Fenced(Fenced),
}

/// Runs the operator until SIGTERM/SIGINT (exit 0), or until it is fenced
/// or loses its Lease ([`FENCED_EXIT_CODE`]).
pub fn run(args: RunArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Deep futures (a reconcile pass) and the Kubernetes client are
        // comfortable with more than tokio's 2 MiB default.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .context("cannot start the async runtime")?;
    let ended = runtime.block_on(serve(args, cache_dir));
    // A fenced leader leaves at once: what still runs (a pass cut short,
    // blocking work) is dropped, not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match ended? {
        Ended::Stopped => Ok(std::process::ExitCode::SUCCESS),
        Ended::Fenced(fenced) => {
            error!(reason = %fenced.reason, "stopped acting; exiting to restart as a follower");
            Ok(std::process::ExitCode::from(FENCED_EXIT_CODE))
        }
    }
}

/// The lease duration and the fence's margin.
fn lease_timing(args: &RunArgs) -> anyhow::Result<(Duration, Duration)> {
    // kube-lease-manager needs a grace shorter than the lease.
    anyhow::ensure!(
        args.lease_seconds >= 2,
        "--lease-seconds must be at least 2 (got {})",
        args.lease_seconds
    );
    let lease = Duration::from_secs(args.lease_seconds);
    let grace = Duration::from_secs(grace_seconds(args.lease_seconds));
    let margin = margin_for(grace, args.fence_margin_ms.map(Duration::from_millis))
        .context("invalid --fence-margin-ms")?;
    Ok((lease, margin))
}

/// A third of the lease, at least a second: the leader renews that long
/// before its Lease ends.
fn grace_seconds(lease_seconds: u64) -> u64 {
    lease_seconds.div_ceil(3).max(1)
}

async fn serve(args: RunArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<Ended> {
    // Signals first: whatever the operator is doing when asked to stop,
    // it is gone within the shutdown timeout.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    watch_signals(stop_tx, Duration::from_secs(args.shutdown_timeout_seconds));
    let engine = StrategyEngine::new(SandboxLimits::default(), cache_dir)
        .context("cannot start the wasm engine for update strategies")?;
    let strategies =
        Arc::new(Strategies::new(Arc::new(engine)).require_pinned(args.require_strategy_sha256));
    let mut config = kube::Config::infer()
        .await
        .context("cannot configure a Kubernetes client (KUBECONFIG or in-cluster)")?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("tarantool-operator-{}", std::process::id()));
    // Every request names this replica (its Lease identity) in its user
    // agent: audits tell the leader's writes from a standby's.
    super::user_agent::identify(&mut config, &identity);
    let fence = if args.leader_elect {
        let (lease, margin) = lease_timing(&args)?;
        Fence::new(lease, margin).context("invalid fence settings")?
    } else {
        Fence::unfenced()
    };
    // The controllers' client: every write and exec it sends passes the
    // fence first (one chokepoint for Kubernetes and Cartridge alike); what
    // the fence lets through is counted by outcome (`/readyz`, metrics).
    // Its connections refuse to write once the fence lapsed, so a request
    // checked before a freeze is not sent after it (`fence::wire`).
    if args.leader_elect && config.proxy_url.is_some() {
        warn!(
            "a proxy is configured: writes are fenced when requested, not at the socket \
             (a leader frozen mid-request may send it after its deadline)"
        );
    }
    let reachability = Reachability::new();
    let client = wire::client_builder(&config, fence.clone())?
        .with_layer(&ReachabilityLayer::new(reachability.clone()))
        .with_layer(&FenceLayer::new(fence.clone()))
        .build();
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry));
    let leader_metrics = metrics.clone();
    reachability.register(&mut registry);
    let ready = Arc::new(AtomicBool::new(false));
    spawn_server(
        "metrics",
        args.metrics_addr,
        metrics_router(Arc::new(registry)),
    )
    .await?;
    let health = Health {
        ready: ready.clone(),
        reachability,
        client: client.clone(),
        namespace: args.namespace.clone(),
    };
    spawn_server("health", args.health_addr, health_router(health)).await?;

    // Every replica serves the eviction webhook, standbys too (with their
    // own, unfenced client); the leader alone keeps its certificate.
    let webhook = tarantool_operator::webhook::start(
        &args.eviction_webhook,
        kube::Client::try_from(config.clone()).context("cannot build a Kubernetes client")?,
        metrics.clone(),
        Reporter {
            controller: "tarantool-operator".into(),
            instance: Some(identity.clone()),
        },
        args.lease_namespace.as_deref().unwrap_or("default"),
    )
    .await
    .context("cannot start the eviction webhook")?;
    let connector: Arc<dyn Connector> = Arc::new(ExecConnector::new(
        client.clone(),
        ConsoleOptions {
            timeout: Duration::from_secs(args.console_timeout_seconds),
            ..ConsoleOptions::default()
        },
    ));
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            connector,
            metrics,
            Settings {
                resync: Duration::from_secs(args.resync_seconds),
                poll: Duration::from_secs(args.poll_seconds),
                pass_timeout: Duration::from_secs(args.pass_timeout_seconds),
                backoff_min: Duration::from_secs(args.backoff_min_seconds),
                backoff_max: Duration::from_secs(args.backoff_max_seconds),
                concurrency: args.concurrency,
                writes_in_flight: usize::try_from(args.writes_in_flight).unwrap_or(usize::MAX),
                console: ConsolePolicy {
                    allow_custom_command: args.allow_custom_console_command,
                },
                secret_refresh: Duration::from_secs(args.secret_refresh_seconds.max(1)),
            },
            strategies,
            Reporter {
                controller: "tarantool-operator".into(),
                instance: Some(identity.clone()),
            },
        )
        .with_fence(fence.clone()),
    );

    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    if !args.leader_elect {
        // The only replica: it acts.
        leader_metrics.leading(true);
        if let Some(webhook) = webhook {
            webhook.lead(client.clone());
        }
        ready.store(true, Ordering::Relaxed);
        info!(namespace = ?args.namespace, "controllers starting");
        run::run(ctx, args.namespace, stopped(stop_rx)).await;
        return Ok(Ended::Stopped);
    }

    let lease_namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    // The Lease manager gets a client of its own: its renewals do not queue
    // behind the controllers' requests, and its successful writes of the
    // Lease are the renewals the fence counts from.
    let lease_client = ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client")?
        .with_layer(&RenewalTap::new(
            fence.clone(),
            &lease_namespace,
            &args.lease_name,
        ))
        .build();
    let manager = LeaseManagerBuilder::new(lease_client, &args.lease_name)
        .with_namespace(&lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_seconds)
        .with_grace(grace_seconds(args.lease_seconds))
        .build()
        .await
        .context("cannot set up leader election")?;
    let (mut leading, lease_task) = manager.watch().await;
    // A standby is healthy and ready: it is doing its job, waiting.
    ready.store(true, Ordering::Relaxed);
    info!(lease = %args.lease_name, namespace = %lease_namespace, identity = %identity, "waiting for the Lease");
    let mut stop = stop_rx.clone();
    tokio::select! {
        _ = leading.wait_for(|l| *l) => {}
        _ = stop.wait_for(|s| *s) => return Ok(Ended::Stopped),
    }
    // Taking the Lease was a successful write of it: the fence has its
    // first renewal and is armed from here on.
    leader_metrics.leading(true);
    info!(deadline_in = ?fence.deadline().map(|d| d.saturating_duration_since(fence.now())), "leading: controllers starting");
    if let Some(webhook) = webhook {
        webhook.lead(client.clone());
    }
    let lost = async move {
        // A closed channel (the Lease task ended) is a loss too.
        let _ = leading.wait_for(|l| !*l).await;
    };
    let ended = tokio::select! {
        () = run::run(ctx, args.namespace, stopped(stop_rx)) => Ended::Stopped,
        fenced = fence.clone().watchdog() => Ended::Fenced(fenced),
        () = lost => Ended::Fenced(fence.trip("another replica holds the Lease")),
    };
    match ended {
        Ended::Stopped => {
            // The controllers stopped: hand the Lease over now rather than
            // let the next leader wait for it to expire. The Lease task
            // releases it once the state channel (dropped with `lost`) is
            // closed.
            match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
                Ok(Ok(Ok(_))) => info!("Lease released"),
                Ok(Ok(Err(e))) => warn!(error = %e, "could not release the Lease"),
                Ok(Err(e)) => warn!(error = %e, "the Lease task failed"),
                Err(_) => warn!("the Lease was not released in time"),
            }
        }
        // Not released: this replica may no longer hold it, and must not
        // write anything more.
        Ended::Fenced(_) => {
            leader_metrics.leading(false);
            lease_task.abort();
        }
    }
    Ok(ended)
}

/// On SIGTERM or SIGINT: tells the operator to stop (`stop_tx`), which
/// lets running passes finish and hands the Lease over. Should that take
/// longer than `timeout`, or should a second signal come, the process
/// exits at once with [`FORCED_EXIT_CODE`]: a pass stuck in a console call
/// or an apiserver that is gone must not keep a terminating pod (and its
/// ports) alive past the grace period Kubernetes gives it.
fn watch_signals(stop_tx: tokio::sync::watch::Sender<bool>, timeout: Duration) {
    tokio::spawn(async move {
        shutdown_signal().await;
        info!(
            timeout_seconds = timeout.as_secs(),
            "stopping: running passes may finish"
        );
        let _ = stop_tx.send(true);
        // The deadline runs on a thread of its own: a runtime too busy to
        // poll a timer must not hold it back.
        let deadline = std::thread::Builder::new()
            .name("shutdown-deadline".into())
            .spawn(move || {
                std::thread::sleep(timeout);
                eprintln!(
                    "tarantool-operator: not stopped within --shutdown-timeout-seconds ({}s); exiting now",
                    timeout.as_secs()
                );
                std::process::exit(i32::from(FORCED_EXIT_CODE));
            });
        if let Err(e) = deadline {
            warn!(error = %e, "cannot start the shutdown deadline");
        }
        shutdown_signal().await;
        warn!("second signal: exiting now");
        std::process::exit(i32::from(FORCED_EXIT_CODE));
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn spawn_server(
    server: &'static str,
    addr: SocketAddr,
    router: Router,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // The address bound (a port 0 asked for is the kernel's choice).
    if let Ok(bound) = listener.local_addr() {
        info!(server, addr = %bound, "listening");
    }
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            warn!(error = %e, %addr, "HTTP server stopped");
        }
    });
    Ok(())
}

fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(registry)
}

async fn metrics_handler(State(registry): State<Arc<Registry>>) -> (StatusCode, String) {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => (StatusCode::OK, body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What `/healthz` and `/readyz` look at.
#[derive(Clone)]
struct Health {
    /// Set once the controllers start (or, with leader election, once the
    /// Lease is being watched).
    ready: Arc<AtomicBool>,
    /// Whether the apiserver answers the controllers' client.
    reachability: Arc<Reachability>,
    /// The controllers' client: `/readyz` reads through it once more while
    /// its last request failed (so that readiness comes back without
    /// waiting for the controllers' next request) or while nothing was
    /// answered lately (an idle operator sends nothing, and would not see
    /// etcd go).
    client: kube::Client,
    /// The namespace the controllers watch, if only one: the read is of
    /// the operator's own kind there (RBAC allows it).
    namespace: Option<String>,
}

/// `/readyz`'s own read: a list of at most one Cluster. Unlike `/version` it
/// needs etcd (a quorum read), so it hangs while etcd is down; its outcome
/// is recorded by the client's layer.
async fn read_once(health: &Health) -> Result<(), tokio::time::error::Elapsed> {
    let clusters: kube::Api<tarantool_operator::api::cluster::Cluster> = match &health.namespace {
        Some(ns) => kube::Api::namespaced(health.client.clone(), ns),
        None => kube::Api::all(health.client.clone()),
    };
    let listed = tokio::time::timeout(
        PROBE_TIMEOUT,
        clusters.list_metadata(&kube::api::ListParams::default().limit(1)),
    )
    .await?;
    drop(listed);
    Ok(())
}

/// `/healthz`: the process serves (an apiserver outage is no reason to
/// restart it). `/readyz`: 503 while starting, and while the apiserver is
/// unreachable or failing, with a body saying which and for how long.
fn health_router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(health): State<Health>| async move {
                if !health.ready.load(Ordering::Relaxed) {
                    return (StatusCode::SERVICE_UNAVAILABLE, "starting".to_string());
                }
                if (!health.reachability.readiness().0 || health.reachability.quiet())
                    && read_once(&health).await.is_err()
                {
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "apiserver not answering: a read waited {}s (is etcd down?); the controllers retry with backoff",
                            PROBE_TIMEOUT.as_secs()
                        ),
                    );
                }
                match health.reachability.readiness() {
                    (true, body) => (StatusCode::OK, body),
                    (false, body) => (StatusCode::SERVICE_UNAVAILABLE, body),
                }
            }),
        )
        .with_state(health)
}
