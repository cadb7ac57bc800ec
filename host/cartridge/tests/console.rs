//! The console client and the Cartridge topology against REAL Tarantool:
//! `tarantool tests/fixtures/console.lua <socket>` serves its admin console on
//! a unix socket, and the Cartridge double (tests/tarantool/cartridge_double.lua)
//! plays Cartridge, reached directly (SocketTransport) and through
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

mod support;

use serde_json::{Map, Value, json};
use support::double::{LocalDouble, require_tarantool};
use tarantool_operator_api::Console as ConsoleSpec;
use tarantool_operator_cartridge::console::{
    CommandTransport, Console, ConsoleError, ConsoleOptions, ConsoleTransport, SocketTransport,
};
use tarantool_operator_cartridge::topology::cartridge::ConsoleTopology;
use tarantool_operator_cartridge::topology::conformance::CartridgeModel;
use tarantool_operator_cartridge::topology::{
    FailoverParams, JoinServer, ReplicasetEdit, Topology, TopologyEdit, TopologyError,
    VshardBootstrap, password_sha256,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A Tarantool process serving its console at `<dir>/<name>.control`.
struct Instance {
    _child: tokio::process::Child,
    dir: tempfile::TempDir,
    name: String,
}

impl Instance {
    async fn start(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join(format!("{name}.control"));
        let mut cmd = tokio::process::Command::new("tarantool");
        cmd.arg(fixtures().join("console.lua"))
            .arg(&socket)
            .current_dir(dir.path())
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
    let instance = Instance::start("storage-0").await;
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
    let instance = Instance::start("router-0").await;
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
    let instance = Instance::start("big").await;
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
    let instance = Instance::start("hung").await;
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
    let instance = Instance::start("argv").await;
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
// The Cartridge calls run against the Lua double (the same model the dev
// cluster's pods run), through both transports; the scenarios of Cartridge's
// behaviour are the conformance suite's (tests/conformance.rs).

fn uri(double: &LocalDouble, alias: &str) -> String {
    double.uri(alias)
}

fn topology(transport: Arc<dyn ConsoleTransport>) -> ConsoleTopology {
    ConsoleTopology::new("storage-1-1", console(transport))
}

/// A router (all_rw) and a storage of three instances, `storage-1-1` first
/// in priority, 1500 buckets bootstrapped, `storage-1-0` lagging 0.25 s and
/// `storage-1-2` gone.
async fn projected_cluster() -> Arc<LocalDouble> {
    let double = LocalDouble::start("console-projection").await;
    let aliases = ["router-1-0", "storage-1-0", "storage-1-1", "storage-1-2"];
    double.start(&aliases).await.expect("serve");
    double
        .control()
        .set_bucket_count(1500)
        .await
        .expect("buckets");
    let t = double.through("router-1-0");
    let join = |alias: &str, uuid: &str| JoinServer {
        uri: uri(&double, alias),
        uuid: uuid.into(),
    };
    t.edit(&TopologyEdit {
        replicasets: vec![
            ReplicasetEdit {
                uuid: "bbbbbbbb-0000-4000-8000-000000000002".into(),
                alias: Some("router-1".into()),
                roles: Some(vec!["vshard-router".into(), "app.api".into()]),
                all_rw: Some(true),
                join_servers: vec![join("router-1-0", "aaaaaaaa-0000-4000-8000-000000000004")],
                ..ReplicasetEdit::default()
            },
            ReplicasetEdit {
                uuid: "bbbbbbbb-0000-4000-8000-000000000001".into(),
                alias: Some("storage-1".into()),
                roles: Some(vec!["vshard-storage".into()]),
                join_servers: vec![
                    join("storage-1-0", "aaaaaaaa-0000-4000-8000-000000000001"),
                    join("storage-1-1", "aaaaaaaa-0000-4000-8000-000000000002"),
                    join("storage-1-2", "aaaaaaaa-0000-4000-8000-000000000003"),
                ],
                failover_priority: Some(vec!["aaaaaaaa-0000-4000-8000-000000000002".into()]),
                ..ReplicasetEdit::default()
            },
        ],
        expel: vec![],
    })
    .await
    .expect("join");
    assert_eq!(
        t.bootstrap_vshard().await.expect("bootstrap"),
        VshardBootstrap::Bootstrapped
    );
    double
        .control()
        .call(
            "set_lag",
            json!([double.control().namespace(), "storage-1-0", 0.25]),
        )
        .await
        .expect("lag");
    double.stop("storage-1-2").await.expect("unserve");
    double
}

#[tokio::test]
async fn console_topology_projects_cartridge_replicasets() {
    require_tarantool();
    let double = projected_cluster().await;
    let transports = [
        ("socket", double.socket_transport("storage-1-1")),
        ("tarantoolctl", double.command_transport("storage-1-1")),
    ];
    for (name, transport) in transports {
        let replicasets = topology(transport).replicasets().await.unwrap();
        assert_eq!(replicasets.len(), 2, "{name}");
        let storage = &replicasets[1];
        assert_eq!(storage.alias, "storage-1");
        assert_eq!(storage.roles, ["vshard-storage"]);
        assert_eq!(storage.weight, Some(1.0));
        assert_eq!(storage.vshard_group.as_deref(), Some("default"));
        assert!(!storage.all_rw);
        // Failover priority order.
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
        assert_eq!(master.read_only, Some(false));
        let replica = &storage.servers[1];
        assert!(replica.healthy && replica.replicating);
        assert_eq!(replica.replication_lag, Some(0.25));
        assert_eq!(replica.read_only, Some(true));
        // Unreachable: unhealthy, no stats.
        let down = &storage.servers[2];
        assert!(!down.healthy && !down.replicating);
        assert_eq!(
            (down.bucket_count, down.replication_lag, down.read_only),
            (None, None, None)
        );

        let router = &replicasets[0];
        assert_eq!(router.alias, "router-1");
        // Sorted.
        assert_eq!(router.roles, ["app.api", "vshard-router"]);
        assert_eq!(router.weight, None);
        assert!(router.all_rw);
        assert_eq!(router.master_alias(), Some("router-1-0"));
        assert_eq!(router.bucket_count(), None);
        assert_eq!(router.servers[0].read_only, Some(false), "all_rw");
    }
}

#[tokio::test]
async fn console_topology_calls_cartridge_and_maps_its_errors() {
    require_tarantool();
    let double = LocalDouble::start("console-calls").await;
    double.start(&["storage-1-1", "storage-1-0"]).await.unwrap();
    for (name, transport) in [
        ("socket", double.socket_transport("storage-1-1")),
        ("tarantoolctl", double.command_transport("storage-1-1")),
    ] {
        let t = topology(transport);
        t.probe(&uri(&double, "storage-1-0")).await.unwrap();
        match t.probe("nowhere:3301").await {
            Err(TopologyError::Refused { call, message }) => {
                assert_eq!(call, "admin_probe_server");
                assert_eq!(
                    message,
                    r#"admin_probe_server: ProbeServerError: Probe "nowhere:3301" failed: no response"#,
                    "{name}"
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
                assert_eq!(
                    message,
                    r#"admin_edit_topology: Editing cluster topology failed: Replicaset "bad" not in config"#
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        // A bad argument is a Lua error (Cartridge's checks), refused too.
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
    }

    let t = topology(double.command_transport("storage-1-1"));
    // One call joins both servers; another expels one.
    let edit = TopologyEdit {
        replicasets: vec![ReplicasetEdit {
            uuid: "rs-uuid".into(),
            alias: Some("storage-2".into()),
            roles: Some(vec!["vshard-storage".into(), "vshard-router".into()]),
            weight: Some(1.0),
            all_rw: Some(false),
            vshard_group: None,
            join_servers: vec![
                JoinServer {
                    uri: uri(&double, "storage-1-0"),
                    uuid: "ua".into(),
                },
                JoinServer {
                    uri: uri(&double, "storage-1-1"),
                    uuid: "ub".into(),
                },
            ],
            failover_priority: Some(vec!["ub".into(), "ua".into()]),
        }],
        expel: vec![],
    };
    t.edit(&edit).await.unwrap();
    let rs = &t.replicasets().await.unwrap()[0];
    let servers: Vec<_> = rs.servers.iter().map(|s| s.uuid.as_str()).collect();
    assert_eq!(servers, ["ub", "ua"]);
    t.edit(&TopologyEdit {
        replicasets: vec![],
        expel: vec!["ua".into()],
    })
    .await
    .unwrap();
    let rs = &t.replicasets().await.unwrap()[0];
    assert_eq!(rs.servers.len(), 1);

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
    assert_eq!(t.failover().await.unwrap().mode, "disabled");
    let wanted = FailoverParams {
        mode: "stateful".into(),
        state_provider: Some("tarantool".into()),
        tarantool_params: Some(json!({"uri": "stateboard:4401", "password": "pw"})),
        ..FailoverParams::default()
    };
    t.set_failover(&wanted).await.unwrap();
    let got = t.failover().await.unwrap();
    assert_eq!(got.mode, "stateful");
    assert_eq!(got.state_provider.as_deref(), Some("tarantool"));
    // The password never comes back, only its digest.
    assert_eq!(
        got.tarantool_params,
        Some(json!({"uri": "stateboard:4401", "password_sha256": password_sha256("pw")}))
    );
    // Under stateful failover the chunk calls failover_promote.
    let calls = |v: Value| v["failover_promote"].as_u64().unwrap_or(0);
    let before = calls(
        double
            .control()
            .call("calls", json!([double.control().namespace()]))
            .await
            .unwrap(),
    );
    assert!(t.promote("rs-uuid", "ub").await.unwrap());
    let after = calls(
        double
            .control()
            .call("calls", json!([double.control().namespace()]))
            .await
            .unwrap(),
    );
    assert_eq!(after, before + 1);

    let mut patch = Map::new();
    patch.insert(
        "app".into(),
        json!({"greeting": "hi", "nested": {"list": [1, 2, 3]}}),
    );
    patch.insert("new".into(), json!({"k": [1]}));
    t.patch_config(&patch).await.unwrap();
    let mut delete = Map::new();
    delete.insert("app".into(), Value::Null);
    t.patch_config(&delete).await.unwrap();
    let config = t.config(&["app".to_string(), "new".into()]).await.unwrap();
    assert_eq!(Value::Object(config), json!({"new": {"k": [1]}}));
    assert!(t.config(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn console_topology_without_cartridge_is_refused() {
    require_tarantool();
    let instance = Instance::start("plain").await;
    match topology(instance.socket_transport()).replicasets().await {
        Err(e @ TopologyError::Refused { .. }) => {
            assert_eq!(e.reason(), tarantool_operator_api::Reason::CartridgeRefused);
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

/// Every console profile the operator ships that runs with what Debian's
/// tarantool package has (`tt` is not there) reaches a real console, as
/// exec would run it in a pod: `{instance}` and `{chunk}` substituted, the
/// run dir or Cartridge's console socket from the environment.
#[tokio::test]
async fn the_console_profiles_reach_a_real_console() {
    use tarantool_operator_api::ConsoleProfile;
    use tarantool_operator_cartridge::console::access::ConsoleAccess;
    use tarantool_operator_cartridge::topology::InstanceTarget;
    require_tarantool();
    let instance = Instance::start("profiled").await;
    let run_dir = instance.dir.path().to_string_lossy().into_owned();
    let cases = [
        (
            ConsoleProfile::Tarantoolctl,
            "TARANTOOL_RUN_DIR",
            run_dir.clone(),
        ),
        (
            ConsoleProfile::ConsoleSock,
            "TARANTOOL_CONSOLE_SOCK",
            instance.socket().to_string_lossy().into_owned(),
        ),
        (
            ConsoleProfile::TarantoolctlArgument,
            "TARANTOOL_RUN_DIR",
            run_dir,
        ),
    ];
    for (profile, variable, value) in cases {
        let access = ConsoleAccess {
            command: profile.command(),
            container: None,
        };
        let target = InstanceTarget::for_pod("ns", "profiled", Some(&access));
        let c = console(Arc::new(
            CommandTransport::new(target.command).env(variable, value),
        ));
        let reply: Value = c
            .call(
                "profile",
                "return require('json').encode(...)",
                &json!({"p": 1}),
            )
            .await
            .unwrap_or_else(|e| panic!("{profile:?}: {e}"));
        assert_eq!(reply, json!({"p": 1}), "{profile:?}");
    }
}
