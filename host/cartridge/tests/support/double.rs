//! The Cartridge double (`tests/tarantool/cartridge_double.lua`) in a local
//! Tarantool process, as a conformance model and for the console tests.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tarantool_operator_api::Console as ConsoleSpec;
use tarantool_operator_cartridge::console::{
    CommandTransport, Console, ConsoleOptions, ConsoleTransport, SocketTransport,
};
use tarantool_operator_cartridge::topology::Topology;
use tarantool_operator_cartridge::topology::cartridge::ConsoleTopology;
use tarantool_operator_cartridge::topology::conformance::{
    CartridgeModel, DoubleControl, ModelError,
};

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
pub fn require_tarantool() {
    let missing: Vec<&str> = ["tarantool", "tarantoolctl"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} not found on PATH: the double's conformance tests need real Tarantool; \
         install it with `make setup-tarantool` (apt-get install -y tarantool)",
        missing.join(" and ")
    );
}

/// The double in a Tarantool process of its own (killed when dropped), its
/// instances' console sockets in a temporary run dir.
pub struct LocalDouble {
    _process: tokio::process::Child,
    dir: tempfile::TempDir,
    control: DoubleControl,
}

impl LocalDouble {
    /// A fresh double whose instances belong to `namespace`.
    pub async fn start(namespace: &str) -> Arc<Self> {
        require_tarantool();
        // A short dir: a unix socket path has at most 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("tconf")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let control = dir.path().join("double.control");
        let log = std::fs::File::create(dir.path().join("double.log")).expect("double.log");
        let process = tokio::process::Command::new("tarantool")
            .arg(super::workspace().join("tests/tarantool/cartridge_double.lua"))
            .arg(&control)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("tarantool starts");
        let console = Console::new(
            Arc::new(SocketTransport::new(&control)),
            ConsoleOptions::default(),
        );
        // Test names are longer than namespaces may be; the double only
        // needs it to be one name per scenario.
        let control = DoubleControl::new(console, namespace.replace('_', "-"));
        // The socket file appears at bind, a moment before the double
        // accepts: wait for an answer.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = control.served().await {
            assert!(
                Instant::now() < deadline,
                "the double never answered on its control socket: {e}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Arc::new(Self {
            _process: process,
            dir,
            control,
        })
    }

    /// The console socket of instance `alias`.
    pub fn socket(&self, alias: &str) -> PathBuf {
        self.dir.path().join(format!("{alias}.control"))
    }

    /// The double's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("double.log")).unwrap_or_default()
    }
}

impl LocalDouble {
    /// The double's control socket, for the namespace.
    pub fn control(&self) -> &DoubleControl {
        &self.control
    }

    /// The operator's default console command for `alias`, run locally
    /// with TARANTOOL_RUN_DIR at the sockets' dir: what exec runs in a pod.
    pub fn command_transport(&self, alias: &str) -> Arc<dyn ConsoleTransport> {
        let command = ConsoleSpec::default_command()
            .iter()
            .map(|a| a.replace("{instance}", alias))
            .collect();
        Arc::new(
            CommandTransport::new(command)
                .env("TARANTOOL_RUN_DIR", self.dir.path().to_string_lossy()),
        )
    }

    /// The console socket of `alias` itself.
    pub fn socket_transport(&self, alias: &str) -> Arc<dyn ConsoleTransport> {
        Arc::new(SocketTransport::new(self.socket(alias)))
    }
}

#[async_trait]
impl CartridgeModel for LocalDouble {
    fn uri(&self, alias: &str) -> String {
        format!(
            "{alias}.conformance.{}.svc.cluster.local:3301",
            self.control.namespace()
        )
    }

    fn through(&self, alias: &str) -> Arc<dyn Topology> {
        Arc::new(ConsoleTopology::new(
            alias,
            Console::new(self.command_transport(alias), ConsoleOptions::default()),
        ))
    }

    async fn start(&self, aliases: &[&str]) -> Result<(), ModelError> {
        for alias in aliases {
            self.control
                .serve(&self.socket(alias).to_string_lossy(), alias)
                .await?;
        }
        Ok(())
    }

    async fn stop(&self, alias: &str) -> Result<(), ModelError> {
        self.control
            .unserve(&self.socket(alias).to_string_lossy())
            .await
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
        // The double's rebalancer and failover work in 0.1 s steps.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
