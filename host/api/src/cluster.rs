//! The `Cluster` resource: one Tarantool Cartridge cluster, its Roles, and
//! the settings that are cluster-wide (failover, application config, vshard,
//! how to reach the console).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::failover::Failover;
use super::validation::DNS_LABEL_PATTERN;

/// Desired state of a Cartridge cluster (`tarantool.io/v1alpha1` `Cluster`).
// clippy reads the repeated `type_ = "string"` of printcolumn(...) as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tarantool.io",
    version = "v1alpha1",
    kind = "Cluster",
    namespaced,
    status = "ClusterStatus",
    derive = "PartialEq",
    shortname = "tntc",
    shortname = "tntcluster",
    category = "tarantool",
    doc = "A Tarantool Cartridge cluster: the Roles it is made of, failover, the clusterwide config.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Bootstrapped",
        type_ = "boolean",
        json_path = ".status.bootstrapped"
    ),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(
        name = "Failover",
        type_ = "string",
        json_path = ".spec.failover.mode",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The Roles (in this namespace) that make up the cluster, by name.
    #[serde(default)]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub roles: Vec<RoleRef>,
    /// Failover settings; absent keeps Cartridge's (disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// Clusterwide (application) config: section name -> value, applied with
    /// `config_patch_clusterwide`. Free-form; sections not listed here are
    /// left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_form_object")]
    pub config: Option<Map<String, Value>>,
    /// vshard bootstrap settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vshard: Option<ClusterVshard>,
    /// How the operator reaches an instance's admin console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<Console>,
    /// What the client Service `<cluster>` publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_service: Option<ClientService>,
}

/// The ports of the Cluster's client Service. iproto (3301) always: it is
/// what applications connect to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientService {
    /// Also publish Cartridge's HTTP port (8081: web UI and admin HTTP
    /// API). Off by default: Cartridge serves it without authentication
    /// unless the application enables it, and anyone who reaches it can
    /// change the topology. Turn it on only with auth enabled or a
    /// NetworkPolicy that limits who reaches it.
    #[serde(default)]
    pub http: bool,
}

/// A Role of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RoleRef {
    /// The Role's name.
    #[schemars(length(min = 1, max = 63), regex(pattern = DNS_LABEL_PATTERN))]
    pub name: String,
}

/// vshard settings of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVshard {
    /// Bootstrap vshard (`admin_bootstrap_vshard`) once every Role is ready.
    #[serde(default = "default_true")]
    pub bootstrap: bool,
    /// Number of buckets; fixed for the life of the cluster (Cartridge's
    /// default: 30000). Passed to instances as `TARANTOOL_BUCKET_COUNT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub bucket_count: Option<i32>,
}

impl Default for ClusterVshard {
    fn default() -> Self {
        Self {
            bootstrap: true,
            bucket_count: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// The command the operator execs in a pod to talk to its instance's
/// console; the Lua chunk goes to its standard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Console {
    /// The command and its arguments; `{instance}` in an argument stands for
    /// the instance name. Default: `tarantoolctl connect
    /// /var/run/tarantool/{instance}.control`; for `tt`, e.g. `["tt",
    /// "connect", "/var/run/tarantool/{instance}.control"]`.
    #[schemars(length(min = 1, max = 32), inner(length(max = 4096)))]
    pub command: Vec<String>,
    /// The container to exec in; default: the pod's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub container: Option<String>,
}

impl Console {
    /// The console command used when the Cluster sets none: `tarantoolctl
    /// connect` to the instance's control socket in `TARANTOOL_RUN_DIR`
    /// (Cartridge's variable for it; `/var/run/tarantool` when unset).
    /// Through `sh` so the variable is read inside the container.
    pub fn default_command() -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            "exec tarantoolctl connect \"${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$0.control\""
                .into(),
            "{instance}".into(),
        ]
    }
}

/// Where a Cluster is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterPhase {
    /// Waiting for its Roles to become ready.
    #[default]
    Pending,
    /// Joining replica sets and bootstrapping vshard.
    Bootstrapping,
    /// Bootstrapped; failover and config applied.
    Ready,
    /// A step failed; see the conditions.
    Degraded,
    /// Being deleted.
    Terminating,
}

/// Observed state of a Cluster, written by the operator only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Where the Cluster is in its life.
    #[serde(default)]
    pub phase: ClusterPhase,
    /// vshard is bootstrapped (never goes back to false).
    #[serde(default)]
    pub bootstrapped: bool,
    /// The pod the operator talks to for topology changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Hashes of the failover settings and config last applied to Cartridge,
    /// so that a converged cluster is not asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedSettings>,
    /// Ready, Progressing and Degraded, in the metav1 shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// What the operator last applied to Cartridge, as hashes of the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedSettings {
    /// Hash of `spec.failover` when it was last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    /// Hash of `spec.config` when it was last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

impl ClusterSpec {
    /// The failover settings in force: the spec's, or Cartridge's default.
    pub fn failover_or_default(&self) -> Failover {
        self.failover.clone().unwrap_or_default()
    }

    /// Names of the cluster's Roles.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }
}
