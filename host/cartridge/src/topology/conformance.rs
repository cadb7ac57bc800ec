//! One suite of Cartridge behaviours, written once and run against every
//! model of Cartridge the tests use.
//!
//! Two models answer the operator's [`Topology`] calls in tests: the Rust
//! fake ([`super::fake`], for controller unit tests) and the Lua double
//! (`tests/tarantool/cartridge_double.lua`, which every test that runs Lua
//! talks to through the operator's own console chunks). Both follow real
//! Cartridge 2.x (docs/tarantool-double.md and the observed reference); this
//! suite is what keeps them agreeing. Each scenario is a function over a
//! [`CartridgeModel`]; [`cartridge_conformance_tests!`](crate::cartridge_conformance_tests)
//! turns the list into one named test per scenario for a runner:
//!
//! - `host/cartridge/tests/conformance.rs`: the Rust fake ([`FakeModel`]), and the
//!   double in a local Tarantool process reached with the operator's
//!   default console command (`tarantoolctl connect`);
//! - `tests/harness/tests/conformance.rs`: the double behind dev-cluster
//!   pods, reached over `pods/exec` with [`super::cartridge::ExecConnector`].
//!
//! Refusals are compared by their whole text: Cartridge's error class and
//! message after the admin function's name, as the operator sees them.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::fake::FakeConnector;
use super::{
    Connector, FailoverParams, InstanceTarget, JoinServer, ReplicasetEdit, ReplicasetInfo,
    Topology, TopologyEdit, TopologyError, VshardBootstrap, password_sha256,
};
use crate::console::Console;

/// A model refused a control operation (start an instance, hold the
/// rebalancer...).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// Why a scenario failed.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// A topology call failed where the scenario expects it to succeed.
    #[error("{step}: {source}")]
    Call {
        /// What the scenario was doing.
        step: String,
        /// What the call said.
        source: TopologyError,
    },
    /// The model's own controls failed.
    #[error("the model: {0}")]
    Model(#[from] ModelError),
    /// A check did not hold.
    #[error("{0}")]
    Check(String),
}

/// A Cartridge to run the scenarios against: topology calls through any of
/// its instances, plus the few controls of time and faults a scenario needs.
#[async_trait]
pub trait CartridgeModel: Send + Sync {
    /// The advertise URI of instance `alias` (a pod name): its first DNS
    /// label is the alias, as with the operator's URIs.
    fn uri(&self, alias: &str) -> String;

    /// Cartridge's admin API through the console of `alias`.
    fn through(&self, alias: &str) -> Arc<dyn Topology>;

    /// Instances that run and answer from now on (fresh, not joined).
    async fn start(&self, aliases: &[&str]) -> Result<(), ModelError>;

    /// Instance `alias` is gone (its pod deleted, its process dead); it
    /// need not have run.
    async fn stop(&self, alias: &str) -> Result<(), ModelError>;

    /// The bucket count vshard's bootstrap creates.
    async fn set_bucket_count(&self, buckets: u64) -> Result<(), ModelError>;

    /// Holds (or releases) vshard's rebalancer: held, buckets stay put.
    async fn hold_rebalancer(&self, hold: bool) -> Result<(), ModelError>;

    /// Whether stateful failover's state provider answers.
    async fn set_state_provider(&self, reachable: bool) -> Result<(), ModelError>;

    /// Config sections come back as Cartridge stores them (`{}` as `[]`).
    async fn set_config_as_stored(&self, on: bool) -> Result<(), ModelError>;

    /// Lets a little time pass (the rebalancer, failover).
    async fn tick(&self);
}

/// The Rust fake as a [`CartridgeModel`]: time passes between reads (its
/// rebalancer and failover settle at once).
#[derive(Debug, Clone, Default)]
pub struct FakeModel {
    /// The fake; tests may look at it after a scenario.
    pub connector: FakeConnector,
}

#[async_trait]
impl CartridgeModel for FakeModel {
    fn uri(&self, alias: &str) -> String {
        format!("{alias}.conformance.fake.svc.cluster.local:3301")
    }

    fn through(&self, alias: &str) -> Arc<dyn Topology> {
        self.connector
            .connect(&InstanceTarget::for_pod("fake", alias, None))
    }

    async fn start(&self, aliases: &[&str]) -> Result<(), ModelError> {
        let mut state = self.connector.topology.state();
        for alias in aliases {
            state.unreachable.remove(*alias);
        }
        Ok(())
    }

    async fn stop(&self, alias: &str) -> Result<(), ModelError> {
        self.connector
            .topology
            .state()
            .unreachable
            .insert(alias.to_string());
        Ok(())
    }

    async fn set_bucket_count(&self, buckets: u64) -> Result<(), ModelError> {
        self.connector.topology.state().bucket_count = buckets;
        Ok(())
    }

    async fn hold_rebalancer(&self, hold: bool) -> Result<(), ModelError> {
        self.connector.topology.state().rebalancer_held = hold;
        Ok(())
    }

    async fn set_state_provider(&self, reachable: bool) -> Result<(), ModelError> {
        self.connector.topology.state().state_provider_unreachable = !reachable;
        Ok(())
    }

    async fn set_config_as_stored(&self, on: bool) -> Result<(), ModelError> {
        self.connector.topology.state().config_as_stored = on;
        Ok(())
    }

    async fn tick(&self) {}
}

/// The Cartridge double's control socket (`require('cartridge_double')`,
/// docs/tarantool-double.md) for one namespace: what a [`CartridgeModel`]
/// over the double uses for its controls.
#[derive(Debug, Clone)]
pub struct DoubleControl {
    console: Console,
    namespace: String,
}

impl DoubleControl {
    /// Controls `namespace`'s model through `console` (a console on the
    /// double's control socket).
    pub fn new(console: Console, namespace: impl Into<String>) -> Self {
        Self {
            console,
            namespace: namespace.into(),
        }
    }

    /// The namespace whose model this controls.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `cartridge_double.<function>(args...)`, its result as JSON.
    pub async fn call(&self, function: &str, args: Value) -> Result<Value, ModelError> {
        const CODE: &str = "local a = ...\n\
            local d = require('cartridge_double')\n\
            local args = a.args\n\
            return require('json').encode({result = d[a.fn](unpack(args, 1, a.n))})";
        let n = args.as_array().map_or(0, Vec::len);
        let reply: Value = self
            .console
            .call(
                "cartridge_double",
                CODE,
                &json!({"fn": function, "args": args, "n": n}),
            )
            .await
            .map_err(|e| ModelError(format!("cartridge_double.{function}: {e}")))?;
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn expect_true(&self, function: &str, args: Value) -> Result<(), ModelError> {
        match self.call(function, args.clone()).await? {
            Value::Bool(true) => Ok(()),
            other => Err(ModelError(format!(
                "cartridge_double.{function}({args}) answered {other}"
            ))),
        }
    }

    /// Serves instance `alias` of the namespace on the console socket
    /// `path` (absolute).
    pub async fn serve(&self, path: &str, alias: &str) -> Result<(), ModelError> {
        self.expect_true("serve", json!([path, self.namespace, alias]))
            .await
    }

    /// Stops serving `path` (no error when it was not served).
    pub async fn unserve(&self, path: &str) -> Result<(), ModelError> {
        self.call("unserve", json!([path])).await.map(|_| ())
    }

    /// Aliases of the namespace's served instances.
    pub async fn served(&self) -> Result<Vec<String>, ModelError> {
        let instances = self.call("instances", json!([])).await?;
        Ok(instances
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|i| i.get("namespace").and_then(Value::as_str) == Some(&self.namespace))
            .filter_map(|i| i.get("alias").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    /// The bucket count of the next vshard bootstrap.
    pub async fn set_bucket_count(&self, buckets: u64) -> Result<(), ModelError> {
        self.expect_true("set_bucket_count", json!([self.namespace, buckets]))
            .await
    }

    /// Buckets per second the rebalancer moves (0 holds it).
    pub async fn set_drain_rate(&self, rate: u64) -> Result<(), ModelError> {
        self.expect_true("set_drain_rate", json!([rate, self.namespace]))
            .await
    }

    /// `ok` or `unreachable`.
    pub async fn set_state_provider(&self, reachable: bool) -> Result<(), ModelError> {
        let state = if reachable { "ok" } else { "unreachable" };
        self.expect_true("set_state_provider", json!([self.namespace, state]))
            .await
    }

    /// Config sections without map/seq hints (`{}` reads back as `[]`).
    pub async fn set_config_as_stored(&self, on: bool) -> Result<(), ModelError> {
        self.expect_true("set_config_as_stored", json!([self.namespace, on]))
            .await
    }
}

// ---------------------------------------------------------------- helpers

/// Adds the step to a failed call.
trait At<T> {
    fn at(self, step: &str) -> Result<T, ConformanceError>;
}

impl<T> At<T> for Result<T, TopologyError> {
    fn at(self, step: &str) -> Result<T, ConformanceError> {
        self.map_err(|source| ConformanceError::Call {
            step: step.to_string(),
            source,
        })
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), ConformanceError> {
    if ok {
        Ok(())
    } else {
        Err(ConformanceError::Check(what()))
    }
}

fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), ConformanceError> {
    check(got == want, || {
        format!("{what}: got {got:?}, want {want:?}")
    })
}

/// `got` is Cartridge's refusal with exactly this text.
fn refused<T: std::fmt::Debug>(
    step: &str,
    got: Result<T, TopologyError>,
    want: &str,
) -> Result<(), ConformanceError> {
    match got {
        Err(TopologyError::Refused { message, .. }) if message == want => Ok(()),
        other => Err(ConformanceError::Check(format!(
            "{step}: want the refusal {want:?}, got {other:?}"
        ))),
    }
}

/// Polls `probe` (one tick apart) until it gives `Some`; fails after about
/// 300 ticks, saying what it waited for and what it saw last.
async fn eventually<T, F, Fut>(
    m: &dyn CartridgeModel,
    what: &str,
    mut probe: F,
) -> Result<T, ConformanceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, String>, ConformanceError>>,
{
    let mut last = String::new();
    for _ in 0..300 {
        match probe().await? {
            Ok(v) => return Ok(v),
            Err(seen) => last = seen,
        }
        m.tick().await;
    }
    Err(ConformanceError::Check(format!(
        "{what}: never happened; last seen: {last}"
    )))
}

const ROUTER: &str = "router-0";
const S1: [&str; 2] = ["s1-0", "s1-1"];
const S2: [&str; 2] = ["s2-0", "s2-1"];
const S3: &str = "s3-0";
const S4: &str = "s4-0";
const GONE: &str = "gone-0";

/// A deterministic UUID for a name (replica sets and servers).
fn uuid(name: &str) -> String {
    let n = name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)));
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    )
}

fn rs_uuid(alias: &str) -> String {
    uuid(&format!("replicaset {alias}"))
}

fn server_uuid(alias: &str) -> String {
    uuid(&format!("server {alias}"))
}

fn join(m: &dyn CartridgeModel, alias: &str, roles: &[&str], servers: &[&str]) -> ReplicasetEdit {
    ReplicasetEdit {
        uuid: rs_uuid(alias),
        alias: Some(alias.into()),
        roles: Some(roles.iter().map(|r| r.to_string()).collect()),
        join_servers: servers
            .iter()
            .map(|s| JoinServer {
                uri: m.uri(s),
                uuid: server_uuid(s),
            })
            .collect(),
        ..ReplicasetEdit::default()
    }
}

fn edit(replicasets: Vec<ReplicasetEdit>) -> TopologyEdit {
    TopologyEdit {
        replicasets,
        expel: Vec::new(),
    }
}

fn expel(servers: &[&str]) -> TopologyEdit {
    TopologyEdit {
        replicasets: Vec::new(),
        expel: servers.iter().map(|s| server_uuid(s)).collect(),
    }
}

fn weight(alias: &str, weight: f64) -> ReplicasetEdit {
    ReplicasetEdit {
        uuid: rs_uuid(alias),
        weight: Some(weight),
        ..ReplicasetEdit::default()
    }
}

/// The scenarios' cluster, joined in one edit through the router (as the
/// operator joins through its leader): a router, storage `s1` (weight left
/// to Cartridge: 1 before the bootstrap) and storage `s2` of weight 2, two
/// instances each; `extra` replica sets joined along.
async fn cluster(
    m: &dyn CartridgeModel,
    extra: Vec<ReplicasetEdit>,
) -> Result<(), ConformanceError> {
    let mut aliases = vec![ROUTER];
    aliases.extend(S1);
    aliases.extend(S2);
    let extra_aliases: Vec<String> = extra
        .iter()
        .flat_map(|r| r.join_servers.iter().map(|s| alias_of(&s.uri)))
        .collect();
    aliases.extend(extra_aliases.iter().map(String::as_str));
    m.start(&aliases).await?;
    let mut s2 = join(m, "s2", &["vshard-storage"], &S2);
    s2.weight = Some(2.0);
    let mut replicasets = vec![
        join(m, "router", &["app.roles.router"], &[ROUTER]),
        join(m, "s1", &["app.roles.storage"], &S1),
        s2,
    ];
    replicasets.extend(extra);
    m.through(ROUTER)
        .edit(&edit(replicasets))
        .await
        .at("join the cluster")
}

fn alias_of(uri: &str) -> String {
    uri.split('.').next().unwrap_or_default().to_string()
}

async fn read(m: &dyn CartridgeModel, via: &str) -> Result<Vec<ReplicasetInfo>, ConformanceError> {
    m.through(via)
        .replicasets()
        .await
        .at(&format!("read the replica sets through {via}"))
}

fn find<'a>(
    rss: &'a [ReplicasetInfo],
    alias: &str,
) -> Result<&'a ReplicasetInfo, ConformanceError> {
    rss.iter().find(|r| r.alias == alias).ok_or_else(|| {
        ConformanceError::Check(format!(
            "no replica set {alias} among {:?}",
            rss.iter().map(|r| &r.alias).collect::<Vec<_>>()
        ))
    })
}

async fn master_of(m: &dyn CartridgeModel, rs: &str) -> Result<Option<String>, ConformanceError> {
    let rss = read(m, ROUTER).await?;
    Ok(find(&rss, rs)?.master_alias().map(str::to_string))
}

fn aliases(rs: &ReplicasetInfo) -> Vec<&str> {
    rs.servers.iter().map(|s| s.alias.as_str()).collect()
}

fn buckets(rss: &[ReplicasetInfo]) -> Vec<(String, Option<u64>)> {
    rss.iter()
        .map(|r| (r.alias.clone(), r.bucket_count()))
        .collect()
}

fn switch(rs: &str, to: &[&str]) -> TopologyEdit {
    edit(vec![ReplicasetEdit {
        uuid: rs_uuid(rs),
        failover_priority: Some(to.iter().map(|s| server_uuid(s)).collect()),
        ..ReplicasetEdit::default()
    }])
}

fn stateful() -> FailoverParams {
    FailoverParams {
        mode: "stateful".into(),
        state_provider: Some("tarantool".into()),
        tarantool_params: Some(json!({"uri": "stateboard:4401", "password": "secret"})),
        ..FailoverParams::default()
    }
}

fn mode(name: &str) -> FailoverParams {
    FailoverParams {
        mode: name.into(),
        ..FailoverParams::default()
    }
}

/// Who takes writes in `rs`, by `read_only` as each server reports it.
fn writable(rs: &ReplicasetInfo) -> Vec<&str> {
    rs.servers
        .iter()
        .filter(|s| s.read_only == Some(false))
        .map(|s| s.alias.as_str())
        .collect()
}

// ---------------------------------------------------------------- scenarios

/// One edit joins every replica set; any instance reads them back sorted
/// by alias, servers in failover priority (join order), roles sorted with
/// their dependencies, weights of storages only (1 for a new storage before
/// the bootstrap), the `default` vshard group on storages, the first server
/// master and the only writable one, replicas following it.
pub async fn join_reports_replicasets_in_priority_order(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let rss = read(m, "s2-1").await?;
    same(
        "replica sets",
        rss.iter().map(|r| r.alias.as_str()).collect::<Vec<_>>(),
        vec!["router", "s1", "s2"],
    )?;
    let router = find(&rss, "router")?;
    same(
        "router roles",
        router.roles.clone(),
        vec!["app.roles.router".to_string(), "vshard-router".into()],
    )?;
    same("router weight", router.weight, None)?;
    same("router vshard group", router.vshard_group.as_deref(), None)?;
    same("router buckets", router.bucket_count(), None)?;
    let s1 = find(&rss, "s1")?;
    same(
        "s1 roles",
        s1.roles.clone(),
        vec!["app.roles.storage".to_string(), "vshard-storage".into()],
    )?;
    same("s1 weight", s1.weight, Some(1.0))?;
    same(
        "s1 vshard group",
        s1.vshard_group.as_deref(),
        Some("default"),
    )?;
    same("s1 uuid", s1.uuid.clone(), rs_uuid("s1"))?;
    same("s1 servers", aliases(s1), S1.to_vec())?;
    same("s1 master", s1.master_alias(), Some("s1-0"))?;
    same("s1 writable", writable(s1), vec!["s1-0"])?;
    same(
        "s1 buckets before the bootstrap",
        s1.bucket_count(),
        Some(0),
    )?;
    same("s1-1 uri", s1.servers[1].uri.clone(), m.uri("s1-1"))?;
    same("s1-1 uuid", s1.servers[1].uuid.clone(), server_uuid("s1-1"))?;
    let s2 = find(&rss, "s2")?;
    same(
        "s2 roles",
        s2.roles.clone(),
        vec!["vshard-storage".to_string()],
    )?;
    same("s2 weight", s2.weight, Some(2.0))?;
    same("s2 all_rw", s2.all_rw, false)?;
    for rs in &rss {
        for s in &rs.servers {
            let master = rs.master.as_deref() == Some(s.uuid.as_str());
            check(s.healthy && s.replicating, || {
                format!("{} not healthy: {s:?}", s.alias)
            })?;
            check(master == s.replication_lag.is_none(), || {
                format!("{}: a lag for replicas only: {s:?}", s.alias)
            })?;
        }
    }
    Ok(())
}

/// A server joins once: joining a joined UUID again is refused, and the
/// whole edit with it (a replica set created in the same edit is not).
pub async fn join_refuses_a_joined_uuid_and_changes_nothing(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    m.start(&[S3]).await?;
    let again = edit(vec![
        join(m, "s3", &["vshard-storage"], &[S3]),
        join(m, "s1", &["app.roles.storage"], &["s1-0"]),
    ]);
    refused(
        "join s1-0 again",
        m.through(ROUTER).edit(&again).await,
        &format!(
            "admin_edit_topology: Editing cluster topology failed: Server \"{}\" is already joined",
            server_uuid("s1-0")
        ),
    )?;
    let rss = read(m, ROUTER).await?;
    same(
        "replica sets after the refused edit",
        rss.iter().map(|r| r.alias.as_str()).collect::<Vec<_>>(),
        vec!["router", "s1", "s2"],
    )?;
    same("s1 servers", aliases(find(&rss, "s1")?), S1.to_vec())
}

/// An instance that does not answer cannot join (Cartridge probes it first).
pub async fn join_refuses_an_unreachable_instance(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    m.stop(GONE).await?;
    refused(
        "join a gone instance",
        m.through(ROUTER)
            .edit(&edit(vec![join(m, "gone", &["vshard-storage"], &[GONE])]))
            .await,
        &format!(
            "admin_edit_topology: ProbeError: Probe \"{}\" failed: no response",
            m.uri(GONE)
        ),
    )?;
    let rss = read(m, ROUTER).await?;
    same("replica sets", rss.len(), 3)
}

/// Editing a replica set that does not exist (and joins nobody) is refused.
pub async fn edit_refuses_an_unknown_replicaset(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    refused(
        "edit an unknown replica set",
        m.through(ROUTER)
            .edit(&edit(vec![weight("nowhere", 1.0)]))
            .await,
        &format!(
            "admin_edit_topology: Editing cluster topology failed: Replicaset \"{}\" not in config",
            rs_uuid("nowhere")
        ),
    )
}

/// `admin_probe_server` answers for a running instance, joined or not, and
/// refuses one that is gone.
pub async fn probe_answers_for_running_instances_only(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.start(&[ROUTER, "s1-0"]).await?;
    m.stop(GONE).await?;
    let t = m.through(ROUTER);
    t.probe(&m.uri("s1-0")).await.at("probe s1-0")?;
    refused(
        "probe a gone instance",
        t.probe(&m.uri(GONE)).await,
        &format!(
            "admin_probe_server: ProbeServerError: Probe \"{}\" failed: no response",
            m.uri(GONE)
        ),
    )
}

/// Under disabled failover the master is the first in priority: a new
/// priority switches it (and who takes writes), and promote does nothing.
pub async fn disabled_failover_switches_the_master_by_priority(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    same(
        "failover mode",
        t.failover().await.at("failover")?.mode,
        "disabled".to_string(),
    )?;
    t.edit(&switch("s1", &["s1-1"])).await.at("switch s1")?;
    let rss = read(m, "s2-0").await?;
    let s1 = find(&rss, "s1")?;
    same("s1 master", s1.master_alias(), Some("s1-1"))?;
    same("s1 priority", aliases(s1), vec!["s1-1", "s1-0"])?;
    same("s1 writable", writable(s1), vec!["s1-1"])?;
    same(
        "promote under disabled failover",
        t.promote(&rs_uuid("s1"), &server_uuid("s1-1"))
            .await
            .at("promote")?,
        false,
    )
}

/// A failover priority may list only servers of its own replica set.
pub async fn failover_priority_refuses_foreign_and_unknown_servers(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    refused(
        "s2-0 first in s1",
        t.edit(&switch("s1", &["s2-0"])).await,
        &format!(
            "admin_edit_topology: Invalid cluster topology config: replicasets[{}] leader \"{}\" belongs to another replicaset",
            rs_uuid("s1"),
            server_uuid("s2-0")
        ),
    )?;
    refused(
        "an unknown server first in s1",
        t.edit(&switch("s1", &["nobody"])).await,
        &format!(
            "admin_edit_topology: Invalid cluster topology config: replicasets[{}] leader \"{}\" doesn't exist",
            rs_uuid("s1"),
            server_uuid("nobody")
        ),
    )?;
    same("s1 master", master_of(m, "s1").await?, Some("s1-0".into()))
}

/// Under eventual failover the priority switches the master, promote does
/// nothing, and a gone master gives way to the next reachable one.
pub async fn eventual_failover_follows_priority_and_skips_a_gone_master(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.set_failover(&mode("eventual")).await.at("eventual")?;
    t.edit(&switch("s1", &["s1-1"])).await.at("switch s1")?;
    same("s1 master", master_of(m, "s1").await?, Some("s1-1".into()))?;
    same(
        "promote under eventual failover",
        t.promote(&rs_uuid("s1"), &server_uuid("s1-0"))
            .await
            .at("promote")?,
        false,
    )?;
    m.stop("s1-1").await?;
    eventually(m, "s1-0 master once s1-1 is gone", || async {
        let rss = read(m, ROUTER).await?;
        let s1 = find(&rss, "s1")?;
        let gone = s1.server_by_alias("s1-1").is_some_and(|s| !s.healthy);
        Ok(if s1.master_alias() == Some("s1-0") && gone {
            Ok(())
        } else {
            Err(format!("{s1:?}"))
        })
    })
    .await
}

/// Under stateful failover the appointed master stays when the priority
/// changes; promote appoints the new one.
pub async fn stateful_failover_moves_the_master_only_on_promote(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.set_failover(&stateful()).await.at("stateful")?;
    t.edit(&switch("s1", &["s1-1"])).await.at("switch s1")?;
    let rss = read(m, ROUTER).await?;
    let s1 = find(&rss, "s1")?;
    same("s1 priority", aliases(s1), vec!["s1-1", "s1-0"])?;
    same("s1 master before promote", s1.master_alias(), Some("s1-0"))?;
    same(
        "promote under stateful failover",
        t.promote(&rs_uuid("s1"), &server_uuid("s1-1"))
            .await
            .at("promote")?,
        true,
    )?;
    let rss = read(m, "s1-0").await?;
    let s1 = find(&rss, "s1")?;
    same("s1 master after promote", s1.master_alias(), Some("s1-1"))?;
    same("s1 writable", writable(s1), vec!["s1-1"])
}

/// Without its state provider stateful failover cannot promote: the
/// priority edit sent before is committed, the master stays, and promote
/// works again once the provider is back.
pub async fn stateful_promote_fails_without_the_state_provider(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.set_failover(&stateful()).await.at("stateful")?;
    m.set_state_provider(false).await?;
    t.edit(&switch("s1", &["s1-1"])).await.at("switch s1")?;
    refused(
        "promote without the state provider",
        t.promote(&rs_uuid("s1"), &server_uuid("s1-1")).await,
        "failover_promote: StateProviderError: State provider unavailable",
    )?;
    let rss = read(m, ROUTER).await?;
    let s1 = find(&rss, "s1")?;
    same("s1 priority (committed)", aliases(s1), vec!["s1-1", "s1-0"])?;
    same("s1 master (not appointed)", s1.master_alias(), Some("s1-0"))?;
    m.set_state_provider(true).await?;
    t.promote(&rs_uuid("s1"), &server_uuid("s1-1"))
        .await
        .at("promote with the provider back")?;
    same("s1 master", master_of(m, "s1").await?, Some("s1-1".into()))
}

/// Raft failover, like stateful, moves the master on promote only; and it
/// refuses replica sets with every instance writable.
pub async fn raft_failover_moves_the_master_only_on_promote(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.set_failover(&mode("raft")).await.at("raft")?;
    t.edit(&switch("s2", &["s2-1"])).await.at("switch s2")?;
    same(
        "s2 master before promote",
        master_of(m, "s2").await?,
        Some("s2-0".into()),
    )?;
    same(
        "promote under raft",
        t.promote(&rs_uuid("s2"), &server_uuid("s2-1"))
            .await
            .at("promote")?,
        true,
    )?;
    same(
        "s2 master after promote",
        master_of(m, "s2").await?,
        Some("s2-1".into()),
    )?;
    refused(
        "all_rw under raft",
        t.edit(&edit(vec![ReplicasetEdit {
            uuid: rs_uuid("s1"),
            all_rw: Some(true),
            ..ReplicasetEdit::default()
        }]))
        .await,
        "admin_edit_topology: Invalid cluster topology config: Raft failover can't be enabled with ALL_RW replicasets",
    )
}

/// Promote checks that the server belongs to the replica set.
pub async fn promote_refuses_foreign_servers_and_unknown_replicasets(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.set_failover(&stateful()).await.at("stateful")?;
    refused(
        "promote s2-0 in s1",
        t.promote(&rs_uuid("s1"), &server_uuid("s2-0")).await,
        &format!(
            "failover_promote: PromoteLeaderError: Server \"{}\" doesn't belong to replicaset \"{}\"",
            server_uuid("s2-0"),
            rs_uuid("s1")
        ),
    )?;
    refused(
        "promote in an unknown replica set",
        t.promote(&rs_uuid("nowhere"), &server_uuid("s1-1")).await,
        &format!(
            "failover_promote: PromoteLeaderError: Replicaset \"{}\" doesn't exist",
            rs_uuid("nowhere")
        ),
    )?;
    same("s1 master", master_of(m, "s1").await?, Some("s1-0".into()))
}

/// Failover parameters: refused before the cluster exists, read back with
/// Cartridge's defaults, validated with its messages, and a change keeps
/// the fields it leaves out.
pub async fn failover_params_read_back_with_defaults_and_are_validated(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.start(&[ROUTER]).await?;
    let t = m.through(ROUTER);
    refused(
        "failover before the cluster",
        t.set_failover(&mode("eventual")).await,
        "failover_set_params: FailoverSetParamsError: Cluster isn't bootstrapped yet",
    )?;
    cluster(m, Vec::new()).await?;
    let defaults = FailoverParams {
        mode: "disabled".into(),
        state_provider: None,
        failover_timeout: Some(20.0),
        fencing_enabled: Some(false),
        tarantool_params: Some(
            json!({"uri": "tcp://localhost:4401", "password_sha256": password_sha256("")}),
        ),
        etcd2_params: Some(json!({
            "endpoints": ["http://127.0.0.1:4001", "http://127.0.0.1:2379"],
            "prefix": "/", "lock_delay": 10, "username": "", "password_sha256": password_sha256(""),
        })),
    };
    same(
        "defaults",
        t.failover().await.at("failover")?,
        defaults.clone(),
    )?;
    let invalid = "failover_set_params: Invalid cluster topology config: topology_new.failover";
    refused(
        "stateful without a state provider",
        t.set_failover(&mode("stateful")).await,
        &format!("{invalid} missing state_provider for mode \"stateful\""),
    )?;
    refused(
        "the stateboard without its parameters",
        t.set_failover(&FailoverParams {
            state_provider: Some("tarantool".into()),
            ..mode("stateful")
        })
        .await,
        &format!("{invalid} missing tarantool_params"),
    )?;
    refused(
        "an unknown mode",
        t.set_failover(&mode("bogus")).await,
        &format!("{invalid} unknown mode \"bogus\""),
    )?;
    same(
        "unchanged",
        t.failover().await.at("failover")?,
        defaults.clone(),
    )?;
    t.set_failover(&FailoverParams {
        fencing_enabled: Some(true),
        failover_timeout: Some(5.0),
        ..stateful()
    })
    .await
    .at("stateful")?;
    let want = FailoverParams {
        mode: "stateful".into(),
        state_provider: Some("tarantool".into()),
        failover_timeout: Some(5.0),
        fencing_enabled: Some(true),
        tarantool_params: Some(
            json!({"uri": "stateboard:4401", "password_sha256": password_sha256("secret")}),
        ),
        etcd2_params: defaults.etcd2_params.clone(),
    };
    same("stateful", t.failover().await.at("failover")?, want.clone())?;
    t.set_failover(&mode("eventual")).await.at("eventual")?;
    same(
        "eventual keeps what it leaves out (fencing is stateful's only)",
        t.failover().await.at("failover")?,
        FailoverParams {
            mode: "eventual".into(),
            fencing_enabled: Some(false),
            ..want
        },
    )
}

/// A password left out of `tarantool_params` or `etcd2_params` is kept:
/// the operator sends one only when it knows it (a `passwordSecretRef`),
/// and a password set by hand must survive every other change. A password
/// sent replaces it. Read back, a password is only its SHA-256.
pub async fn failover_password_omitted_leaves_it_untouched(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.start(&[ROUTER]).await?;
    let t = m.through(ROUTER);
    cluster(m, Vec::new()).await?;
    let stateboard = |uri: &str, password: Option<&str>| {
        let mut p = json!({"uri": uri});
        if let Some(password) = password {
            p["password"] = json!(password);
        }
        FailoverParams {
            state_provider: Some("tarantool".into()),
            tarantool_params: Some(p),
            ..mode("stateful")
        }
    };
    let read = |uri: &str, password: &str| {
        Some(json!({"uri": uri, "password_sha256": password_sha256(password)}))
    };
    t.set_failover(&stateboard("stateboard:4401", None))
        .await
        .at("no password ever set")?;
    same(
        "no password ever set: empty",
        t.failover().await.at("failover")?.tarantool_params,
        read("stateboard:4401", ""),
    )?;
    t.set_failover(&stateboard("stateboard:4401", Some("by-hand")))
        .await
        .at("a password set by hand")?;
    t.set_failover(&stateboard("stateboard-2:4401", None))
        .await
        .at("a change without a password")?;
    same(
        "the uri changes, the password by hand stays",
        t.failover().await.at("failover")?.tarantool_params,
        read("stateboard-2:4401", "by-hand"),
    )?;
    t.set_failover(&mode("eventual")).await.at("eventual")?;
    t.set_failover(&FailoverParams {
        state_provider: Some("etcd2".into()),
        etcd2_params: Some(json!({"endpoints": ["http://etcd:2379"], "password": "e1"})),
        ..mode("stateful")
    })
    .await
    .at("etcd2 with a password")?;
    t.set_failover(&FailoverParams {
        state_provider: Some("etcd2".into()),
        etcd2_params: Some(json!({"endpoints": ["http://etcd:2379"], "prefix": "/p"})),
        ..mode("stateful")
    })
    .await
    .at("etcd2 without")?;
    let after = t.failover().await.at("failover")?;
    same(
        "etcd2's password stays too",
        after
            .etcd2_params
            .as_ref()
            .and_then(|p| p.get("password_sha256"))
            .cloned(),
        Some(json!(password_sha256("e1"))),
    )?;
    same(
        "and the stateboard's",
        after.tarantool_params,
        read("stateboard-2:4401", "by-hand"),
    )?;
    t.set_failover(&stateboard("stateboard-2:4401", Some("rotated")))
        .await
        .at("a new password")?;
    same(
        "a password sent replaces it",
        t.failover().await.at("failover")?.tarantool_params,
        read("stateboard-2:4401", "rotated"),
    )
}

/// vshard's bootstrap needs a cluster with a router, and a storage.
pub async fn bootstrap_vshard_needs_a_router_and_a_storage(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.start(&[ROUTER, "s1-0"]).await?;
    let t = m.through(ROUTER);
    refused(
        "bootstrap before the cluster",
        t.bootstrap_vshard().await,
        "admin_bootstrap_vshard: RemoteCallError: No remotes with role \"vshard-router\" available",
    )?;
    t.edit(&edit(vec![join(
        m,
        "router",
        &["vshard-router"],
        &[ROUTER],
    )]))
    .await
    .at("join the router")?;
    refused(
        "bootstrap without storages",
        t.bootstrap_vshard().await,
        "admin_bootstrap_vshard: Bootstrapping vshard failed: Sharding config is empty",
    )?;
    t.edit(&edit(vec![join(m, "s1", &["vshard-storage"], &["s1-0"])]))
        .await
        .at("join a storage")?;
    same(
        "bootstrap",
        t.bootstrap_vshard().await.at("bootstrap")?,
        VshardBootstrap::Bootstrapped,
    )?;
    let rss = read(m, ROUTER).await?;
    same("s1 buckets", find(&rss, "s1")?.bucket_count(), Some(30_000))
}

/// The bootstrap splits the buckets over storages by weight (largest
/// remainder, ties to the earlier replica set) once; a storage joined
/// later gets weight 0, and its share once given weight.
pub async fn bootstrap_vshard_splits_buckets_by_weight_once(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.set_bucket_count(101).await?;
    cluster(m, vec![join(m, "s3", &["vshard-storage"], &[S3])]).await?;
    let t = m.through(ROUTER);
    same(
        "bootstrap",
        t.bootstrap_vshard().await.at("bootstrap")?,
        VshardBootstrap::Bootstrapped,
    )?;
    same(
        "bootstrap again",
        t.bootstrap_vshard().await.at("bootstrap again")?,
        VshardBootstrap::AlreadyBootstrapped,
    )?;
    let s = |a: &str, n: Option<u64>| (a.to_string(), n);
    // Weights 1, 2, 1: 25.25, 50.5, 25.25.
    same(
        "buckets by weight",
        buckets(&read(m, ROUTER).await?),
        vec![
            s("router", None),
            s("s1", Some(25)),
            s("s2", Some(51)),
            s("s3", Some(25)),
        ],
    )?;
    m.start(&[S4]).await?;
    t.edit(&edit(vec![join(m, "s4", &["vshard-storage"], &[S4])]))
        .await
        .at("join s4")?;
    let rss = read(m, ROUTER).await?;
    let s4 = find(&rss, "s4")?;
    same("s4 weight after the bootstrap", s4.weight, Some(0.0))?;
    same("s4 buckets", s4.bucket_count(), Some(0))?;
    t.edit(&edit(vec![weight("s4", 1.0)]))
        .await
        .at("weigh s4")?;
    // Weights 1, 2, 1, 1: 20.2, 40.4, 20.2, 20.2.
    let want = vec![
        s("router", None),
        s("s1", Some(20)),
        s("s2", Some(41)),
        s("s3", Some(20)),
        s("s4", Some(20)),
    ];
    eventually(m, "buckets rebalanced onto s4", || async {
        let got = buckets(&read(m, ROUTER).await?);
        Ok(if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        })
    })
    .await
}

/// A drain: weight 0, buckets leave while the rebalancer works, the
/// replica set cannot be expelled until they are all gone, then can.
pub async fn drain_then_expel_a_storage(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.set_bucket_count(3000).await?;
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.bootstrap_vshard().await.at("bootstrap")?;
    m.hold_rebalancer(true).await?;
    t.edit(&edit(vec![weight("s2", 0.0)]))
        .await
        .at("weight 0 on s2")?;
    let rss = read(m, ROUTER).await?;
    same("s2 weight", find(&rss, "s2")?.weight, Some(0.0))?;
    same(
        "s2 buckets, rebalancer held",
        find(&rss, "s2")?.bucket_count(),
        Some(2000),
    )?;
    refused(
        "expel s2 with buckets",
        t.edit(&expel(&S2)).await,
        &format!(
            "admin_edit_topology: ValidateConfigError: replicasets[{}] rebalancing isn't finished yet",
            rs_uuid("s2")
        ),
    )?;
    m.hold_rebalancer(false).await?;
    eventually(m, "s2 drained", || async {
        let got = buckets(&read(m, ROUTER).await?);
        let want = vec![
            ("router".to_string(), None),
            ("s1".into(), Some(3000)),
            ("s2".into(), Some(0)),
        ];
        Ok(if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        })
    })
    .await?;
    t.edit(&expel(&S2)).await.at("expel the drained s2")?;
    let rss = read(m, ROUTER).await?;
    same(
        "replica sets",
        rss.iter().map(|r| r.alias.as_str()).collect::<Vec<_>>(),
        vec!["router", "s1"],
    )?;
    same("s1 buckets", find(&rss, "s1")?.bucket_count(), Some(3000))
}

/// Before the bootstrap a storage goes freely; after it, one with weight
/// cannot be removed.
pub async fn expel_refuses_a_storage_with_weight_after_the_bootstrap(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.edit(&expel(&S2))
        .await
        .at("expel s2 before the bootstrap")?;
    t.bootstrap_vshard().await.at("bootstrap")?;
    m.start(&[S3]).await?;
    t.edit(&edit(vec![join(m, "s3", &["vshard-storage"], &[S3])]))
        .await
        .at("join s3")?;
    t.edit(&edit(vec![weight("s3", 1.0)]))
        .await
        .at("weigh s3")?;
    refused(
        "expel s3 with weight",
        t.edit(&expel(&[S3])).await,
        &format!(
            "admin_edit_topology: ValidateConfigError: replicasets[{}] is a vshard-storage which can't be removed",
            rs_uuid("s3")
        ),
    )
}

/// The instance making the change cannot expel itself; another can.
pub async fn expel_refuses_the_caller(m: Arc<dyn CartridgeModel>) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    refused(
        "s1-1 expels itself",
        m.through("s1-1").edit(&expel(&["s1-1"])).await,
        &format!(
            "admin_edit_topology: Invalid cluster topology config: Current instance \"{}\" can not be expelled",
            m.uri("s1-1")
        ),
    )?;
    m.through(ROUTER)
        .edit(&expel(&["s1-1"]))
        .await
        .at("the router expels s1-1")?;
    let rss = read(m, ROUTER).await?;
    same("s1 servers", aliases(find(&rss, "s1")?), vec!["s1-0"])
}

/// Expelling a master hands it to the next in priority; an expelled server
/// stays out: expelling it again, expelling an unknown one and joining it
/// again are refused.
pub async fn expelled_servers_stay_out(m: Arc<dyn CartridgeModel>) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    t.edit(&expel(&["s1-0"]))
        .await
        .at("expel the master s1-0")?;
    let rss = read(m, ROUTER).await?;
    let s1 = find(&rss, "s1")?;
    same("s1 servers", aliases(s1), vec!["s1-1"])?;
    same("s1 master", s1.master_alias(), Some("s1-1"))?;
    let edit_failed = "admin_edit_topology: Editing cluster topology failed";
    refused(
        "expel s1-0 again",
        t.edit(&expel(&["s1-0"])).await,
        &format!(
            "{edit_failed}: Server \"{}\" is expelled",
            server_uuid("s1-0")
        ),
    )?;
    refused(
        "expel an unknown server",
        t.edit(&expel(&["nobody"])).await,
        &format!(
            "{edit_failed}: Server \"{}\" not in config",
            server_uuid("nobody")
        ),
    )?;
    refused(
        "join s1-0 again",
        t.edit(&edit(vec![join(
            m,
            "s1",
            &["app.roles.storage"],
            &["s1-0"],
        )]))
        .await,
        &format!(
            "{edit_failed}: Server \"{}\" is already joined",
            server_uuid("s1-0")
        ),
    )
}

/// At least one storage keeps a weight above 0.
pub async fn the_last_storage_keeps_its_weight(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    cluster(m, Vec::new()).await?;
    refused(
        "weight 0 everywhere",
        m.through(ROUTER)
            .edit(&edit(vec![weight("s1", 0.0), weight("s2", 0.0)]))
            .await,
        "admin_edit_topology: ValidateConfigError: At least one vshard-storage (default) must have weight > 0",
    )
}

/// The clusterwide config: refused before the cluster exists, sections read
/// back as patched (absent ones left out, `vshard` Cartridge's own), `null`
/// deletes one.
pub async fn config_patch_round_trip(m: Arc<dyn CartridgeModel>) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.start(&[ROUTER]).await?;
    let t = m.through(ROUTER);
    let mut patch = Map::new();
    patch.insert(
        "app".into(),
        json!({"greeting": "hi", "list": [1, 2, 3], "empty": {}}),
    );
    patch.insert("schema.yml".into(), json!("spaces: {}"));
    refused(
        "patch before the cluster",
        t.patch_config(&patch).await,
        "config_patch_clusterwide: PatchClusterwideError: Current instance isn't bootstrapped yet",
    )?;
    let sections = ["app".to_string(), "schema.yml".into(), "absent".into()];
    same(
        "config before the cluster",
        t.config(&sections).await.at("config")?,
        Map::new(),
    )?;
    cluster(m, Vec::new()).await?;
    t.patch_config(&patch).await.at("patch")?;
    same(
        "config read through another instance",
        m.through("s1-1").config(&sections).await.at("config")?,
        patch.clone(),
    )?;
    same(
        "the vshard section",
        Value::Object(t.config(&["vshard".into()]).await.at("vshard")?),
        json!({"vshard": {"bucket_count": 30_000, "bootstrapped": false}}),
    )?;
    let mut delete = Map::new();
    delete.insert("app".into(), Value::Null);
    t.patch_config(&delete).await.at("delete app")?;
    same(
        "config after deleting app",
        Value::Object(t.config(&sections).await.at("config")?),
        json!({"schema.yml": "spaces: {}"}),
    )
}

/// Config as Cartridge stores it: a section (or a table in one) patched as
/// `{}` reads back as `[]`, so comparing it with the spec finds a change.
pub async fn config_empty_tables_read_back_as_lists_when_stored(
    m: Arc<dyn CartridgeModel>,
) -> Result<(), ConformanceError> {
    let m = m.as_ref();
    m.set_config_as_stored(true).await?;
    cluster(m, Vec::new()).await?;
    let t = m.through(ROUTER);
    let mut patch = Map::new();
    patch.insert("empty".into(), json!({}));
    patch.insert("nested".into(), json!({"inner": {}, "list": [], "n": 1}));
    t.patch_config(&patch).await.at("patch")?;
    same(
        "stored config",
        Value::Object(
            t.config(&["empty".into(), "nested".into()])
                .await
                .at("config")?,
        ),
        json!({"empty": [], "nested": {"inner": [], "list": [], "n": 1}}),
    )
}

/// Runs every scenario, in one namespace each, through `$runner`, one
/// named test per scenario: `$runner(name, scenario)` builds a fresh model
/// and fails the test when the scenario fails. Extra attributes (such as
/// `#[ignore = "..."]`) go on every test.
#[macro_export]
macro_rules! cartridge_conformance_tests {
    ($runner:path $(, #[$attr:meta])* $(,)?) => {
        $crate::cartridge_conformance_tests!(@each $runner, [$(#[$attr])*],
            join_reports_replicasets_in_priority_order
            join_refuses_a_joined_uuid_and_changes_nothing
            join_refuses_an_unreachable_instance
            edit_refuses_an_unknown_replicaset
            probe_answers_for_running_instances_only
            disabled_failover_switches_the_master_by_priority
            failover_priority_refuses_foreign_and_unknown_servers
            eventual_failover_follows_priority_and_skips_a_gone_master
            stateful_failover_moves_the_master_only_on_promote
            stateful_promote_fails_without_the_state_provider
            raft_failover_moves_the_master_only_on_promote
            promote_refuses_foreign_servers_and_unknown_replicasets
            failover_params_read_back_with_defaults_and_are_validated
            failover_password_omitted_leaves_it_untouched
            bootstrap_vshard_needs_a_router_and_a_storage
            bootstrap_vshard_splits_buckets_by_weight_once
            drain_then_expel_a_storage
            expel_refuses_a_storage_with_weight_after_the_bootstrap
            expel_refuses_the_caller
            expelled_servers_stay_out
            the_last_storage_keeps_its_weight
            config_patch_round_trip
            config_empty_tables_read_back_as_lists_when_stored
        );
    };
    (@each $runner:path, $attrs:tt, $($name:ident)*) => {
        $( $crate::cartridge_conformance_tests!(@one $runner, $attrs, $name); )*
    };
    (@one $runner:path, [$($attr:tt)*], $name:ident) => {
        #[tokio::test]
        $($attr)*
        async fn $name() {
            $runner(
                stringify!($name),
                $crate::topology::conformance::$name,
            )
            .await
        }
    };
}
