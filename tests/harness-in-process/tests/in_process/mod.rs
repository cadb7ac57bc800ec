//! The operator's controllers run in the test process, scoped to the test's
//! namespace, with the in-memory Cartridge (the topology test hook).

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Reporter;
use tarantool_operator::controller::metrics::Metrics;
use tarantool_operator::controller::{Context, Settings, run};
use tarantool_operator::strategy::{Registry, SandboxLimits, StrategyEngine};
use tarantool_operator::topology::fake::{FakeConnector, FakeTopology};
use test_harness::TestContext;

use crate::support::scenario::{Failure, create_article, wait_bootstrapped, wait_joined};

/// A running operator; stops when dropped.
pub struct Operator {
    /// The in-memory Cartridge it talks to.
    pub topology: Arc<FakeTopology>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One strategy registry per test binary: compiling the built-ins is the
/// slow part.
pub fn registry() -> Arc<Registry> {
    static REGISTRY: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let engine = StrategyEngine::new(SandboxLimits::default(), None)
                .unwrap_or_else(|e| panic!("wasm engine: {e}"));
            Arc::new(Registry::new(Arc::new(engine)))
        })
        .clone()
}

/// Starts both controllers on the test's namespace.
pub fn start(t: &TestContext) -> Operator {
    let connector = FakeConnector::new();
    let topology = connector.topology.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let namespace = t.namespace.clone();
    let cp = t.cp;
    // The operator gets a runtime of its own, as in its binary, with the
    // binary's thread stacks (a test thread's 2 MiB is too little for a
    // debug build's reconcile futures) and its own client.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("operator runtime: {e}"));
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let client = cp
                .client()
                .await
                .unwrap_or_else(|e| panic!("operator client: {e}"));
            let ctx = Arc::new(Context::new(
                client,
                Arc::new(connector),
                Arc::new(Metrics::unregistered()),
                Settings {
                    resync: Duration::from_secs(300),
                    poll: Duration::from_millis(500),
                    // Failures retried on the test's time scale, as polls are.
                    backoff_min: Duration::from_millis(500),
                    backoff_max: Duration::from_secs(4),
                    ..Settings::default()
                },
                registry(),
                Reporter {
                    controller: "tarantool-operator".into(),
                    instance: Some(format!("test-{namespace}")),
                },
            ));
            run::run(ctx, Some(namespace), async move {
                let _ = stopped.await;
            })
            .await;
        });
    });
    Operator {
        topology,
        stop: Some(stop),
    }
}

/// The article's cluster, converged, with the operator in-process on the
/// in-memory Cartridge.
pub async fn start_article(t: &TestContext) -> Result<Operator, Failure> {
    t.install_crds().await?;
    let operator = start(t);
    create_article(t).await?;
    wait_bootstrapped(t).await?;
    wait_joined(t).await?;
    Ok(operator)
}
