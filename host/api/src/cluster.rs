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

/// How the operator reaches an instance's admin console: a named profile
/// (a command the operator ships), in a container of the Cluster's own pods.
///
/// Which command runs in a pod is the operator's decision, not the
/// Cluster's author's: editing a Cluster must not grant `pods/exec`. So a
/// Cluster picks one of the operator's [`ConsoleProfile`]s by name, and a
/// free-form `command` is only honoured when the operator runs with
/// `--allow-custom-console-command` (Helm value
/// `console.allowCustomCommand`, off by default); otherwise the Cluster is
/// Degraded with reason `ConsoleCommandNotAllowed` and nothing is exec'd.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Console {
    /// The operator's console profile to use (default: `tarantoolctl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ConsoleProfile>,
    /// A command of your own and its arguments; `{instance}` in an argument
    /// stands for the instance name, `{chunk}` for the encoded Lua chunk
    /// (else it goes to stdin). Honoured ONLY when the operator runs with
    /// `--allow-custom-console-command`; takes precedence over `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), inner(length(max = 4096)))]
    pub command: Option<Vec<String>>,
    /// The container of the Cluster's pods to exec in; default: the pod's
    /// first. Left to the Cluster: it selects among containers its own Role
    /// templates declare, so it grants nothing a Role's author lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub container: Option<String>,
}

/// The console commands the operator ships. Each reaches the control socket
/// Cartridge listens on (`console_sock`) and takes the Lua chunk on stdin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConsoleProfile {
    /// `tarantoolctl connect ${TARANTOOL_RUN_DIR:-/var/run/tarantool}/<instance>.control`
    /// (Tarantool 1.10 and 2.x images; the default).
    #[default]
    Tarantoolctl,
    /// `tt connect` to the same socket (images with `tt` instead of
    /// `tarantoolctl`, e.g. Tarantool 2.11+ built with tt).
    Tt,
    /// `tarantoolctl connect "$TARANTOOL_CONSOLE_SOCK"`: the socket Cartridge
    /// itself is told to listen on (`cartridge.cfg`'s `console_sock`, which
    /// images packed by cartridge-cli set through that variable), falling
    /// back to the `tarantoolctl` profile's path when it is unset.
    ConsoleSock,
    /// The `tarantoolctl` profile with the chunk as an argument instead of
    /// on stdin, for exec paths that cannot close stdin (no
    /// `v5.channel.k8s.io` between the operator and the kubelet). The chunk
    /// (with a failover password, when one is sent) is then visible in the
    /// pod's process list while it runs.
    TarantoolctlArgument,
}

impl ConsoleProfile {
    /// Every profile, for documentation and tests.
    pub const ALL: [ConsoleProfile; 4] = [
        Self::Tarantoolctl,
        Self::Tt,
        Self::ConsoleSock,
        Self::TarantoolctlArgument,
    ];

    /// The name a Cluster selects it by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tarantoolctl => "tarantoolctl",
            Self::Tt => "tt",
            Self::ConsoleSock => "console-sock",
            Self::TarantoolctlArgument => "tarantoolctl-argument",
        }
    }

    /// The command line; `{instance}` stands for the instance name. Through
    /// `sh` so that the variables are read inside the container; the
    /// instance name is passed as `$0`, never spliced into the script.
    pub fn command(self) -> Vec<String> {
        let script = match self {
            Self::Tarantoolctl => {
                "exec tarantoolctl connect \"${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$0.control\""
            }
            // `-f -`: run what stdin holds and exit (tt's interactive mode
            // would wait for a terminal).
            Self::Tt => {
                "exec tt connect \"${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$0.control\" -f -"
            }
            Self::ConsoleSock => {
                "exec tarantoolctl connect \"${TARANTOOL_CONSOLE_SOCK:-${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$0.control}\""
            }
            Self::TarantoolctlArgument => {
                "printf '%s\\n' \"$1\" | exec tarantoolctl connect \"${TARANTOOL_RUN_DIR:-/var/run/tarantool}/$0.control\""
            }
        };
        let mut command = vec!["sh".into(), "-c".into(), script.into(), "{instance}".into()];
        if self == Self::TarantoolctlArgument {
            // In place of `{chunk}` the console passes the encoded chunk.
            command.push("{chunk}".into());
        }
        command
    }
}

impl Console {
    /// The console command used when the Cluster sets none: the
    /// `tarantoolctl` profile's.
    pub fn default_command() -> Vec<String> {
        ConsoleProfile::default().command()
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
    #[schemars(schema_with = "super::schema::conditions", extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
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
