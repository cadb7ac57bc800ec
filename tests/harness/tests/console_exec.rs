//! The operator's console path end to end through the real apiserver and
//! kwok: a pod whose command runs a local Tarantool serving its console on
//! `$TARANTOOL_RUN_DIR/<pod>.control`, reached with kube-rs `pods/exec`
//! running the operator's DEFAULT console command (`tarantoolctl connect`,
//! the chunk on stdin, stdin closed through the `v5.channel.k8s.io`
//! protocol); and the topology client over the same path to the dev
//! cluster's Cartridge double.

mod support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{ObjectMeta, PostParams};
use serde_json::{Value, json};
use support::double::PodDouble;
use tarantool_operator_cartridge::console::{Console, ConsoleError, ConsoleOptions, ExecTransport};
use tarantool_operator_cartridge::topology::cartridge::ExecConnector;
use tarantool_operator_cartridge::topology::conformance::CartridgeModel;
use tarantool_operator_cartridge::topology::{
    Connector, InstanceTarget, JoinServer, ReplicasetEdit, TopologyEdit, TopologyError,
};
use test_harness::{TestContext, run};

/// A failure of this test, with its context.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<test_harness::Error> for Failure {
    fn from(e: test_harness::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<ConsoleError> for Failure {
    fn from(e: ConsoleError) -> Self {
        Self(format!("console: {} ({})", e, e.reason()))
    }
}

impl From<TopologyError> for Failure {
    fn from(e: TopologyError) -> Self {
        Self(format!("topology: {} ({})", e, e.reason()))
    }
}

/// Creates pod `name` running Tarantool with a console socket in its run
/// dir, waits until it is Running and the socket exists.
async fn tarantool_pod(t: &TestContext, name: &str) -> Result<(), Failure> {
    let fixture =
        t.cp.repo()
            .join("host/cartridge/tests/fixtures/console.lua");
    let work_dir = t.cp.pods_dir().join(&t.namespace).join(name);
    // The agent gives every exec'd and locally run command of the pod the
    // same TARANTOOL_RUN_DIR (a short dir: socket paths have at most 107
    // bytes); the script listens there, as an image would, and the default
    // console command reads the same variable.
    let script = format!(
        r#"run="${{TARANTOOL_RUN_DIR:-$POD_WORKDIR/run}}"; mkdir -p "$run"; echo "$run" > run-dir; exec tarantool {} "$run/$POD_NAME.control""#,
        fixture.display()
    );
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: Some(
                [(
                    "local.tarantool-operator.dev/run".to_string(),
                    "true".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "tarantool".into(),
                image: Some("example.invalid/tarantool:1".into()),
                command: Some(vec!["sh".into(), "-c".into(), script]),
                ..Container::default()
            }],
            termination_grace_period_seconds: Some(2),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let pods = t.api::<Pod>();
    pods.create(&PostParams::default(), &pod).await?;
    t.eventually(&format!("pod {name} Running"), || async {
        Ok(pods
            .get_opt(name)
            .await?
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")))
    })
    .await?;
    t.eventually(&format!("the console socket of {name}"), || async {
        let run = std::fs::read_to_string(work_dir.join("run-dir")).unwrap_or_default();
        let socket = std::path::Path::new(run.trim()).join(format!("{name}.control"));
        Ok((!run.trim().is_empty() && socket.exists()).then_some(()))
    })
    .await?;
    Ok(())
}

fn exec_console(t: &TestContext, pod: &str, options: ConsoleOptions) -> Console {
    let target = InstanceTarget::for_pod(&t.namespace, pod, None);
    Console::new(
        Arc::new(ExecTransport::new(
            t.api::<Pod>(),
            target.pod,
            target.container,
            target.command,
        )),
        options,
    )
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn default_console_command_runs_chunks_through_pod_exec() {
    run("console-exec", |t| async move {
        tarantool_pod(&t, "storage-0").await?;
        let console = exec_console(&t, "storage-0", ConsoleOptions::default());

        // A multi-line chunk with arguments; the reply is its JSON. It only
        // arrives if closing stdin reached tarantoolctl through the
        // apiserver and kwok.
        let reply: Value = console
            .call(
                "hello",
                "local args = ...\nlocal json = require('json')\n\
                 return json.encode({pod = os.getenv('POD_NAME'), echo = args.echo, n = #args.list})",
                &json!({"echo": "it's \"quoted\"", "list": [1, 2, 3]}),
            )
            .await?;
        assert_eq!(
            reply,
            json!({"pod": "storage-0", "echo": "it's \"quoted\"", "n": 3})
        );

        // A Lua error: tarantoolctl exits 3, the apiserver relays
        // NonZeroExitCode, the message comes from stderr.
        match console.eval("fails", "error('boom', 0)", None).await {
            Err(ConsoleError::Lua { message }) => assert_eq!(message, "boom"),
            other => return Err(Failure(format!("expected a Lua error, got {other:?}"))),
        }

        // A large reply streams through the exec websocket.
        let big: Value = console
            .call(
                "big",
                "return require('json').encode(string.rep('x', ...))",
                &json!(1024 * 1024),
            )
            .await?;
        assert_eq!(big.as_str().map(str::len), Some(1024 * 1024));

        // A hung instance: the whole exchange is cut at the timeout.
        let hasty = exec_console(
            &t,
            "storage-0",
            ConsoleOptions {
                timeout: Duration::from_secs(2),
                ..ConsoleOptions::default()
            },
        );
        match hasty
            .eval("sleep", "require('fiber').sleep(1000)", None)
            .await
        {
            Err(ConsoleError::Timeout { .. }) => {}
            other => return Err(Failure(format!("expected a timeout, got {other:?}"))),
        }

        // A pod that does not exist: unreachable, not a protocol error.
        match exec_console(&t, "nobody", ConsoleOptions::default())
            .eval("x", "return 1", None)
            .await
        {
            Err(ConsoleError::Unreachable { .. }) => {}
            other => return Err(Failure(format!("expected unreachable, got {other:?}"))),
        }
        Ok::<_, Failure>(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn exec_connector_reads_the_topology_through_a_pod() {
    run("console-topology", |t| async move {
        // An operator-labelled pod: the dev cluster's Cartridge double serves
        // its console (the same double every harness test's Cartridge is).
        let double = PodDouble::new(&t).map_err(|e| Failure(e.to_string()))?;
        double
            .start(&["storage-1-1"])
            .await
            .map_err(|e| Failure(e.to_string()))?;
        let connector = ExecConnector::new(t.client.clone(), ConsoleOptions::default());
        let topology =
            connector.connect(&InstanceTarget::for_pod(&t.namespace, "storage-1-1", None));
        topology
            .edit(&TopologyEdit {
                replicasets: vec![ReplicasetEdit {
                    uuid: "bbbbbbbb-0000-4000-8000-000000000001".into(),
                    alias: Some("storage-1".into()),
                    roles: Some(vec!["vshard-storage".into()]),
                    join_servers: vec![JoinServer {
                        uri: double.uri("storage-1-1"),
                        uuid: "aaaaaaaa-0000-4000-8000-000000000002".into(),
                    }],
                    ..ReplicasetEdit::default()
                }],
                expel: vec![],
            })
            .await?;
        let replicasets = topology.replicasets().await?;
        let aliases: Vec<_> = replicasets.iter().map(|r| r.alias.as_str()).collect();
        assert_eq!(aliases, ["storage-1"]);
        assert_eq!(replicasets[0].master_alias(), Some("storage-1-1"));
        match topology.probe("nowhere:3301").await {
            Err(TopologyError::Refused { call, .. }) => assert_eq!(call, "admin_probe_server"),
            other => return Err(Failure(format!("expected a refusal, got {other:?}"))),
        }
        double.reset().await;
        Ok::<_, Failure>(())
    })
    .await;
}
