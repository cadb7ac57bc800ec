//! The Cartridge double's control socket: its counters, its model, and the
//! faults and behaviours of real Cartridge a test switches on
//! (docs/tarantool-double.md); and the double behind the test's pods as a
//! conformance model ([`PodDouble`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use tarantool_operator_api::Cluster;
use tarantool_operator_api::labels;
use tarantool_operator_cartridge::console::{Console, ConsoleOptions, SocketTransport};
use tarantool_operator_cartridge::topology::cartridge::ExecConnector;
use tarantool_operator_cartridge::topology::conformance::{
    CartridgeModel, DoubleControl, ModelError,
};
use tarantool_operator_cartridge::topology::{Connector, InstanceTarget, ReplicasetInfo, Topology};
use test_harness::TestContext;

use super::scenario::Failure;

/// The double's control socket, from the control plane's `ports.env`.
pub fn control_socket(t: &TestContext) -> Result<String, Failure> {
    let ports = std::fs::read_to_string(t.cp.run_dir().join("ports.env"))
        .map_err(|e| Failure::Check(format!("ports.env: {e}")))?;
    ports
        .lines()
        .find_map(|l| l.strip_prefix("DOUBLE_CONTROL="))
        .map(str::to_string)
        .ok_or_else(|| Failure::Check("no DOUBLE_CONTROL in ports.env".into()))
}

/// Runs `chunk` on the double's control socket and returns its one reply
/// item as text (`- value` -> `value`, quotes undone).
pub async fn control(t: &TestContext, chunk: &str) -> Result<String, Failure> {
    let socket = control_socket(t)?;
    let mut child = tokio::process::Command::new("tarantoolctl")
        .args(["connect", &socket])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Failure::Check(format!("tarantoolctl: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(chunk.as_bytes())
            .await
            .map_err(|e| Failure::Check(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Failure::Check(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("- "))
        .map(|v| v.trim_matches('\'').replace("''", "'"))
        .ok_or_else(|| Failure::Check(format!("double: {chunk}: {text}")))
}

/// Calls `cartridge_double.<call>` on the control socket and expects `true`.
pub async fn set(t: &TestContext, call: &str) -> Result<(), Failure> {
    let reply = control(t, &format!("return require('cartridge_double').{call}")).await?;
    if reply == "true" {
        Ok(())
    } else {
        Err(Failure::Check(format!("double {call}: {reply}")))
    }
}

/// A JSON value from `require('cartridge_double').<call>` (encoded there).
pub async fn json(t: &TestContext, call: &str) -> Result<serde_json::Value, Failure> {
    let reply = control(
        t,
        &format!("return require('json').encode(require('cartridge_double').{call})"),
    )
    .await?;
    serde_json::from_str(&reply).map_err(|e| Failure::Check(format!("double {call} {reply}: {e}")))
}

/// Replica sets (by alias) the double's model holds for the test's
/// namespace: what Cartridge itself would say, not what any console says.
pub async fn replicaset_aliases(t: &TestContext) -> Result<Vec<String>, Failure> {
    let model = json(t, &format!("model('{}')", t.namespace)).await?;
    let mut aliases: Vec<String> = match model.get("replicasets") {
        Some(serde_json::Value::Object(map)) => map
            .values()
            .filter_map(|r| r.get("alias").and_then(|a| a.as_str()).map(str::to_string))
            .collect(),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|r| r.get("alias").and_then(|a| a.as_str()).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    aliases.sort();
    Ok(aliases)
}

/// The double behind pods of the test's namespace, reached as the operator
/// reaches Cartridge: `pods/exec` with the default console command and the
/// operator's chunks ([`ExecConnector`]). An instance is a bare pod labelled
/// as the operator labels its pods: the dev cluster's agent has the double
/// serve its console once it runs, and stop when it is deleted.
pub struct PodDouble {
    t: TestContext,
    control: DoubleControl,
    connector: ExecConnector,
}

impl PodDouble {
    /// The double of `t`'s namespace.
    pub fn new(t: &TestContext) -> Result<Self, Failure> {
        let console = Console::new(
            Arc::new(SocketTransport::new(control_socket(t)?)),
            ConsoleOptions::default(),
        );
        Ok(Self {
            t: t.clone(),
            control: DoubleControl::new(console, t.namespace.clone()),
            connector: ExecConnector::new(t.client.clone(), ConsoleOptions::default()),
        })
    }

    /// The control socket, for the namespace.
    pub fn control(&self) -> &DoubleControl {
        &self.control
    }

    /// Polls until the double serves exactly the wanted state of `alias`
    /// (the agent's watch and the double's 0.1 s poll lie between); the
    /// bound only guards against hangs.
    async fn wait_served(&self, aliases: &[&str], served: bool) -> Result<(), ModelError> {
        let deadline = tokio::time::Instant::now() + test_harness::default_timeout();
        loop {
            let now = self.control.served().await?;
            if aliases.iter().all(|a| now.iter().any(|s| s == a) == served) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ModelError(format!(
                    "the double never {} {aliases:?} (serves {now:?})",
                    if served { "served" } else { "stopped serving" }
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[async_trait]
impl CartridgeModel for PodDouble {
    fn uri(&self, alias: &str) -> String {
        format!(
            "{alias}.conformance.{}.svc.cluster.local:3301",
            self.t.namespace
        )
    }

    fn through(&self, alias: &str) -> Arc<dyn Topology> {
        self.connector
            .connect(&InstanceTarget::for_pod(&self.t.namespace, alias, None))
    }

    async fn start(&self, aliases: &[&str]) -> Result<(), ModelError> {
        let pods = self.t.api::<Pod>();
        for alias in aliases {
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some(alias.to_string()),
                    labels: Some(
                        [(labels::MANAGED_BY.to_string(), labels::MANAGER.to_string())].into(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "tarantool".into(),
                        image: Some("example.invalid/tarantool:1".into()),
                        ..Container::default()
                    }],
                    termination_grace_period_seconds: Some(0),
                    ..PodSpec::default()
                }),
                ..Pod::default()
            };
            match pods.create(&PostParams::default(), &pod).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(ModelError(format!("creating pod {alias}: {e}"))),
            }
        }
        self.wait_served(aliases, true).await
    }

    async fn stop(&self, alias: &str) -> Result<(), ModelError> {
        match self
            .t
            .api::<Pod>()
            .delete(alias, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(ModelError(format!("deleting pod {alias}: {e}"))),
        }
        self.wait_served(&[alias], false).await
    }

    async fn set_bucket_count(&self, buckets: u64) -> Result<(), ModelError> {
        self.control.set_bucket_count(buckets).await
    }

    async fn hold_rebalancer(&self, hold: bool) -> Result<(), ModelError> {
        self.control
            .set_drain_rate(if hold { 0 } else { 3000 })
            .await
    }

    async fn set_state_provider(&self, reachable: bool) -> Result<(), ModelError> {
        self.control.set_state_provider(reachable).await
    }

    async fn set_config_as_stored(&self, on: bool) -> Result<(), ModelError> {
        self.control.set_config_as_stored(on).await
    }

    async fn tick(&self) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl PodDouble {
    /// Forgets the namespace's model in the shared double (its pods go with
    /// the namespace).
    pub async fn reset(&self) {
        let _ = self.control.call("reset", json!([self.t.namespace])).await;
    }
}

/// What the double holds, read over exec through the Cluster's leader (or,
/// while that one restarts, any ready instance).
pub async fn cartridge(t: &TestContext) -> Result<Vec<ReplicasetInfo>, Failure> {
    Ok(t.eventually("Cartridge to answer", || async {
        Ok(leader_topology(t).await?.replicasets().await.ok())
    })
    .await?)
}

/// Cartridge over exec through the Cluster's leader as the status names it
/// now.
pub async fn leader_topology(t: &TestContext) -> Result<Arc<dyn Topology>, kube::Error> {
    let leader = t
        .api::<Cluster>()
        .get("tarantool-cluster")
        .await?
        .status
        .and_then(|s| s.leader)
        .unwrap_or_default();
    Ok(
        ExecConnector::new(t.client.clone(), ConsoleOptions::default())
            .connect(&InstanceTarget::for_pod(&t.namespace, &leader, None)),
    )
}
