//! The console client and the Cartridge topology against REAL Tarantool:
//! `tarantool tests/fixtures/console.lua <socket>` serves its admin console on
//! a unix socket, reached directly (SocketTransport) and through
//! `tarantoolctl connect` run as a local process with the operator's default
//! console command (CommandTransport: what exec runs inside a pod).
//!
//! Tarantool is required: without `tarantool`/`tarantoolctl` these tests fail
//! with a message rather than pass without checking anything (`make
//! setup-tarantool` installs them; `make test` and `make test-unit` do it
//! first).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tarantool_operator::api::Console as ConsoleSpec;
use tarantool_operator::console::{
    CommandTransport, Console, ConsoleError, ConsoleOptions, ConsoleTransport, SocketTransport,
};
use tarantool_operator::topology::cartridge::ConsoleTopology;
use tarantool_operator::topology::{
    FailoverParams, JoinServer, ReplicasetEdit, Topology, TopologyEdit, TopologyError,
    VshardBootstrap,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails the test, saying how to install them, when `tarantool` or
/// `tarantoolctl` is missing: a test that returned early would pass having
/// checked nothing.
fn require_tarantool() {
    let missing: Vec<&str> = ["tarantool", "tarantoolctl"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} not found on PATH: these tests need real Tarantool; install it with \
         `make setup-tarantool` (apt-get install -y tarantool)",
        missing.join(" and ")
    );
}

/// A Tarantool process serving its console at `<dir>/<name>.control`.
struct Instance {
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
    name: String,
}

impl Instance {
    async fn start(name: &str, fake_cartridge: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join(format!("{name}.control"));
        let mut cmd = tokio::process::Command::new("tarantool");
        cmd.arg(fixtures().join("console.lua"))
            .arg(&socket)
            .current_dir(dir.path())
            .env("FAKE_CARTRIDGE", if fake_cartridge { "1" } else { "0" })
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("tarantool starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "tarantool never listened on {socket:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            _child: child,
            dir,
            name: name.into(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(format!("{}.control", self.name))
    }

    /// The socket itself.
    fn socket_transport(&self) -> Arc<dyn ConsoleTransport> {
        Arc::new(SocketTransport::new(self.socket()))
    }

    /// The operator's default console command, run locally with
    /// TARANTOOL_RUN_DIR pointing at the socket's directory: exactly what
    /// exec runs in a pod.
    fn command_transport(&self) -> Arc<dyn ConsoleTransport> {
        let command = ConsoleSpec::default_command()
            .iter()
            .map(|a| a.replace("{instance}", &self.name))
            .collect();
        Arc::new(
            CommandTransport::new(command)
                .env("TARANTOOL_RUN_DIR", self.dir.path().to_string_lossy()),
        )
    }

    fn transports(&self) -> Vec<(&'static str, Arc<dyn ConsoleTransport>)> {
        vec![
            ("socket", self.socket_transport()),
            ("tarantoolctl", self.command_transport()),
        ]
    }
}

fn console(transport: Arc<dyn ConsoleTransport>) -> Console {
    Console::new(transport, ConsoleOptions::default())
}

#[tokio::test]
async fn multi_line_chunks_with_arguments_return_json() {
    require_tarantool();
    let instance = Instance::start("storage-0", false).await;
    let code = r#"
        local json = require('json')
        local args = ...
        -- comments, quotes ' " and a long string: all survive the encoding
        local s = [[line one
line two]]
        local out = {}
        for i = 1, args.n do
            table.insert(out, args.word .. i)
        end
        return json.encode({out = out, s = s, quoted = "it's \"fine\""})
    "#;
    for (name, transport) in instance.transports() {
        let c = console(transport);
        let reply: Value = c
            .call("multi", code, &json!({"n": 3, "word": "w'"}))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            reply,
            json!({"out": ["w'1", "w'2", "w'3"], "s": "line one\nline two", "quoted": "it's \"fine\""}),
            "{name}"
        );
        // Several plain values come back as YAML values.
        let values = c
            .eval("values", "return 1, 'two', nil, {a = true}", None)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(values.len(), 4, "{name}: {values:?}");
        assert_eq!(values[1], serde_yaml::Value::String("two".into()), "{name}");
        // Nothing returned: an empty document.
        let values = c.eval("nothing", "local x = 1", None).await.unwrap();
        assert!(values.is_empty(), "{name}: {values:?}");
    }
}

#[tokio::test]
async fn lua_errors_come_back_typed_with_their_message() {
    require_tarantool();
    let instance = Instance::start("router-0", false).await;
    for (name, transport) in instance.transports() {
        let c = console(transport);
        match c
            .eval("failing", "local x = 1\nerror('boom: ' .. x, 0)", None)
            .await
        {
            Err(ConsoleError::Lua { message }) => assert_eq!(message, "boom: 1", "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // A runtime error names the chunk and the line.
        match c.eval("named", "local t = nil\nreturn t.x", None).await {
            Err(ConsoleError::Lua { message }) => {
                assert!(message.starts_with("named:2:"), "{name}: {message}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // A syntax error is a Lua error too.
        match c.eval("syntax", "return (", None).await {
            Err(ConsoleError::Lua { message }) => {
                assert!(message.contains("syntax"), "{name}: {message}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn large_replies_pass_and_oversized_ones_are_refused() {
    require_tarantool();
    let instance = Instance::start("big", false).await;
    let code = "local n = ... return require('json').encode({data = string.rep('x', n)})";
    for (name, transport) in instance.transports() {
        let c = console(transport.clone());
        let reply: Value = c.call("big", code, &json!(1024 * 1024)).await.unwrap();
        assert_eq!(
            reply["data"].as_str().map(str::len),
            Some(1024 * 1024),
            "{name}"
        );

        let small = Console::new(
            transport,
            ConsoleOptions {
                max_reply: 512 * 1024,
                ..ConsoleOptions::default()
            },
        );
        match small
            .call::<_, Value>("big", code, &json!(1024 * 1024))
            .await
        {
            Err(ConsoleError::ReplyTooLarge { limit }) => assert_eq!(limit, 512 * 1024),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_hung_instance_times_out_within_the_timeout() {
    require_tarantool();
    let instance = Instance::start("hung", false).await;
    for (name, transport) in instance.transports() {
        let c = Console::new(
            transport,
            ConsoleOptions {
                timeout: Duration::from_secs(1),
                ..ConsoleOptions::default()
            },
        );
        let started = Instant::now();
        match c
            .eval("sleep", "require('fiber').sleep(1000) return 1", None)
            .await
        {
            Err(ConsoleError::Timeout { after }) => assert_eq!(after, Duration::from_secs(1)),
            other => panic!("{name}: {other:?}"),
        }
        // Generous: only checks that the exchange was cut, not how fast.
        assert!(started.elapsed() < Duration::from_secs(30), "{name}");
        // The instance still serves other sessions.
        let values = c.eval("after", "return 2", None).await.unwrap();
        assert_eq!(values, vec![serde_yaml::Value::Number(2.into())], "{name}");
    }
}

/// A fake console: sends `greeting`, reads a line, answers `reply`, then
/// keeps the connection open (a garbage reply must not wait for a timeout).
async fn fake_console(dir: &Path, greeting: Vec<u8>, reply: &'static [u8]) -> PathBuf {
    let path = dir.join(format!("fake-{}.control", reply.len()));
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let greeting = greeting.clone();
            tokio::spawn(async move {
                let _ = stream.write_all(&greeting).await;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    path
}

fn greeting(first: &str) -> Vec<u8> {
    format!("{first:<63}\n{:<63}\n", "type 'help' for interactive help").into_bytes()
}

#[tokio::test]
async fn garbage_replies_are_protocol_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lua = greeting("Tarantool 2.6.0 (Lua console)");
    let options = ConsoleOptions {
        timeout: Duration::from_secs(20),
        ..ConsoleOptions::default()
    };
    for (greeting, reply) in [
        (lua.clone(), &b"garbage that is not YAML\n"[..]),
        (lua.clone(), b"---\n- [unclosed\n...\n"),
        (lua.clone(), b"---\nkey: value\n...\n"),
        (greeting("Tarantool 2.6.0 (Binary) 7d8a3e49"), b""),
        (greeting("SSH-2.0-OpenSSH_9.2"), b""),
    ] {
        let path = fake_console(dir.path(), greeting, reply).await;
        let c = Console::new(Arc::new(SocketTransport::new(&path)), options);
        let started = Instant::now();
        match c.call::<_, Value>("x", "return 1", &json!({})).await {
            Err(ConsoleError::Protocol { .. }) => {}
            other => panic!("{reply:?}: {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{reply:?} waited"
        );
        std::fs::remove_file(&path).unwrap();
    }
    // A valid document that is not the one JSON string a chunk promises.
    let path = fake_console(dir.path(), lua.clone(), b"---\n- 1\n- 2\n...\n").await;
    let c = Console::new(Arc::new(SocketTransport::new(&path)), options);
    assert!(matches!(
        c.call::<_, Value>("x", "return 1", &json!({})).await,
        Err(ConsoleError::Protocol { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    let path = fake_console(dir.path(), lua, b"---\n- '{not json'\n...\n").await;
    let c = Console::new(Arc::new(SocketTransport::new(&path)), options);
    assert!(matches!(
        c.call::<_, Value>("x", "return 1", &json!({})).await,
        Err(ConsoleError::Protocol { .. })
    ));

    // A command that prints garbage and exits 0.
    let c = Console::new(
        Arc::new(CommandTransport::new(vec![
            "sh".into(),
            "-c".into(),
            "cat >/dev/null; echo garbage".into(),
        ])),
        options,
    );
    assert!(matches!(
        c.eval("x", "return 1", None).await,
        Err(ConsoleError::Protocol { .. })
    ));
}

#[tokio::test]
async fn missing_consoles_are_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(Arc::new(SocketTransport::new(
        dir.path().join("none.control"),
    )));
    assert!(matches!(
        c.eval("x", "return 1", None).await,
        Err(ConsoleError::Unreachable { .. })
    ));
    let c = console(Arc::new(CommandTransport::new(vec![
        "/nonexistent/tarantoolctl".into(),
    ])));
    assert!(matches!(
        c.eval("x", "return 1", None).await,
        Err(ConsoleError::Unreachable { .. })
    ));
    require_tarantool();
    // tarantoolctl itself, without a socket to connect to.
    let command = ConsoleSpec::default_command()
        .iter()
        .map(|a| a.replace("{instance}", "nobody"))
        .collect();
    let c = console(Arc::new(
        CommandTransport::new(command).env("TARANTOOL_RUN_DIR", dir.path().to_string_lossy()),
    ));
    match c.eval("x", "return 1", None).await {
        Err(ConsoleError::Unreachable { message }) => {
            assert!(message.contains("exited with code"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_chunk_can_travel_as_an_argument() {
    require_tarantool();
    let instance = Instance::start("argv", false).await;
    // The fallback for exec paths that cannot close stdin.
    let command = vec![
        "sh".to_string(),
        "-c".into(),
        "printf '%s\\n' \"$1\" | exec tarantoolctl connect \"$0\"".into(),
        instance.socket().to_string_lossy().into_owned(),
        "{chunk}".into(),
    ];
    let c = console(Arc::new(CommandTransport::new(command)));
    let reply: Value = c
        .call(
            "arg",
            "local a = ...\nreturn require('json').encode(a)",
            &json!({"k": "v w"}),
        )
        .await
        .unwrap();
    assert_eq!(reply, json!({"k": "v w"}));
}

// ------------------------------------------------------------------ Cartridge

async fn fake_calls(instance: &Instance) -> Value {
    console(instance.socket_transport())
        .call("calls", "return _G.fake_calls_json()", &json!({}))
        .await
        .unwrap()
}

fn topology(transport: Arc<dyn ConsoleTransport>) -> ConsoleTopology {
    ConsoleTopology::new("storage-1-1", console(transport))
}

#[tokio::test]
async fn console_topology_projects_cartridge_replicasets() {
    require_tarantool();
    let instance = Instance::start("storage-1-1", true).await;
    for (name, transport) in instance.transports() {
        let replicasets = topology(transport).replicasets().await.unwrap();
        assert_eq!(replicasets.len(), 2, "{name}");
        let storage = &replicasets[1];
        assert_eq!(storage.alias, "storage-1");
        assert_eq!(storage.roles, ["vshard-storage"]);
        assert_eq!(storage.weight, Some(1.0));
        assert_eq!(storage.vshard_group.as_deref(), Some("default"));
        assert!(!storage.all_rw);
        // Failover priority order, whatever order Cartridge's table had.
        let aliases: Vec<_> = storage.servers.iter().map(|s| s.alias.as_str()).collect();
        assert_eq!(
            aliases,
            ["storage-1-1", "storage-1-0", "storage-1-2"],
            "{name}"
        );
        assert_eq!(storage.master_alias(), Some("storage-1-1"));
        assert_eq!(storage.bucket_count(), Some(1500));
        let master = &storage.servers[0];
        assert!(master.healthy && master.replicating);
        assert_eq!(master.replication_lag, None);
        let replica = &storage.servers[1];
        assert!(replica.healthy && replica.replicating);
        assert_eq!(replica.replication_lag, Some(0.25));
        assert_eq!(replica.bucket_count, Some(0));
        // Unreachable: unhealthy, no stats.
        let down = &storage.servers[2];
        assert!(!down.healthy && !down.replicating);
        assert_eq!((down.bucket_count, down.replication_lag), (None, None));

        let router = &replicasets[0];
        assert_eq!(router.alias, "router-1");
        assert_eq!(router.roles, ["app.api", "vshard-router"]);
        assert_eq!(router.weight, None);
        assert!(router.all_rw);
        // 'void' placeholders mean no master.
        assert_eq!(router.master, None);
        assert_eq!(router.bucket_count(), None);
        assert!(router.servers[0].healthy);
    }
}

#[tokio::test]
async fn console_topology_calls_cartridge_and_maps_its_errors() {
    require_tarantool();
    let instance = Instance::start("storage-1-1", true).await;
    for (name, transport) in instance.transports() {
        let t = topology(transport);
        t.probe("localhost:3301").await.unwrap();
        match t.probe("nowhere:3301").await {
            Err(TopologyError::Refused { call, message }) => {
                assert_eq!(call, "admin_probe_server");
                assert!(
                    message.contains(r#"Probe "nowhere:3301" failed"#),
                    "{message}"
                );
                // The short text, not the stack trace.
                assert!(!message.contains("stack traceback"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
        match t
            .edit(&TopologyEdit {
                replicasets: vec![ReplicasetEdit {
                    uuid: "bad".into(),
                    ..ReplicasetEdit::default()
                }],
                expel: vec![],
            })
            .await
        {
            Err(TopologyError::Refused { call, message }) => {
                assert_eq!(call, "admin_edit_topology");
                assert!(message.contains("EditTopologyError"), "{message}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    let t = topology(instance.command_transport());
    // One call joins both servers and expels one.
    let edit = TopologyEdit {
        replicasets: vec![ReplicasetEdit {
            uuid: "rs-uuid".into(),
            alias: Some("storage-2".into()),
            roles: Some(vec!["vshard-storage".into()]),
            weight: Some(0.0),
            all_rw: Some(false),
            vshard_group: None,
            join_servers: vec![
                JoinServer {
                    uri: "a:3301".into(),
                    uuid: "ua".into(),
                },
                JoinServer {
                    uri: "b:3301".into(),
                    uuid: "ub".into(),
                },
            ],
            failover_priority: Some(vec!["ua".into(), "ub".into()]),
        }],
        expel: vec!["old".into()],
    };
    t.edit(&edit).await.unwrap();
    let calls = fake_calls(&instance).await;
    let sent = calls
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["name"] == "admin_edit_topology")
        .unwrap();
    assert_eq!(
        sent["arg"],
        json!({
            "replicasets": [{
                "uuid": "rs-uuid", "alias": "storage-2", "roles": ["vshard-storage"],
                "weight": 0, "all_rw": false,
                "join_servers": [{"uri": "a:3301", "uuid": "ua"}, {"uri": "b:3301", "uuid": "ub"}],
                "failover_priority": ["ua", "ub"],
            }],
            "servers": [{"uuid": "old", "expelled": true}],
        })
    );

    assert_eq!(
        t.bootstrap_vshard().await.unwrap(),
        VshardBootstrap::Bootstrapped
    );
    assert_eq!(
        t.bootstrap_vshard().await.unwrap(),
        VshardBootstrap::AlreadyBootstrapped
    );

    // No promotion under disabled failover: the priority moved the master.
    assert!(!t.promote("rs-uuid", "ub").await.unwrap());
    let promoted = |calls: &Value| {
        calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == "failover_promote")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(promoted(&fake_calls(&instance).await).is_empty());

    let failover = t.failover().await.unwrap();
    assert_eq!(
        failover,
        FailoverParams {
            mode: "disabled".into(),
            failover_timeout: Some(20.0),
            fencing_enabled: Some(false),
            ..FailoverParams::default()
        }
    );
    let wanted = FailoverParams {
        mode: "stateful".into(),
        state_provider: Some("stateboard".into()),
        tarantool_params: Some(json!({"uri": "stateboard:4401", "password": "pw"})),
        ..FailoverParams::default()
    };
    t.set_failover(&wanted).await.unwrap();
    let got = t.failover().await.unwrap();
    assert_eq!(got.mode, "stateful");
    // Under stateful failover the appointed master moves only when promoted.
    assert!(t.promote("rs-uuid", "ub").await.unwrap());
    assert_eq!(
        promoted(&fake_calls(&instance).await),
        vec![
            json!({"name": "failover_promote", "arg": {"leaders": {"rs-uuid": "ub"}, "opts": {"force_inconsistency": false}}})
        ]
    );
    assert_eq!(got.state_provider.as_deref(), Some("stateboard"));
    assert_eq!(got.tarantool_params, wanted.tarantool_params);
    assert_eq!(got.failover_timeout, Some(20.0));
    match t
        .set_failover(&FailoverParams {
            mode: "bogus".into(),
            ..FailoverParams::default()
        })
        .await
    {
        Err(TopologyError::Refused { call, .. }) => assert_eq!(call, "failover_set_params"),
        other => panic!("{other:?}"),
    }

    let sections = ["app".to_string(), "schema.yml".into(), "absent".into()];
    let config = t.config(&sections).await.unwrap();
    assert_eq!(
        Value::Object(config),
        json!({"app": {"greeting": "hi", "nested": {"list": [1, 2, 3]}}, "schema.yml": "spaces: {}"})
    );
    let mut patch = Map::new();
    patch.insert("app".into(), Value::Null);
    patch.insert("new".into(), json!({"k": [1]}));
    t.patch_config(&patch).await.unwrap();
    let config = t.config(&["app".to_string(), "new".into()]).await.unwrap();
    assert_eq!(Value::Object(config), json!({"new": {"k": [1]}}));
    assert!(t.config(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn console_topology_without_cartridge_is_refused() {
    require_tarantool();
    let instance = Instance::start("plain", false).await;
    match topology(instance.socket_transport()).replicasets().await {
        Err(e @ TopologyError::Refused { .. }) => {
            assert_eq!(
                e.reason(),
                tarantool_operator::api::Reason::CartridgeRefused
            );
            assert!(e.to_string().contains("Cartridge is not loaded"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let gone = ConsoleTopology::new(
        "gone",
        console(Arc::new(SocketTransport::new(dir.path().join("x.control")))),
    );
    assert!(matches!(
        gone.bootstrap_vshard().await,
        Err(TopologyError::Unreachable { .. })
    ));
}
