//! The `Role` resource: a number of identical replica sets of a Cartridge
//! cluster (routers, storages, ...), each run by its own StatefulSet.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::update_strategy::UpdateStrategy;

/// Desired state of a Role (`tarantool.io/v1alpha1` `Role`).
///
/// The replica set template has two places: `spec.replicasetTemplate` (the
/// canonical one) and `spec.vshard.replicasetTemplate` (where the article's
/// manifest puts it, accepted as an alias). Admission refuses a Role that
/// sets both or neither; should an object still carry both (written before
/// the CRD had that rule), the canonical place wins.
// clippy reads the repeated `type_ = "string"` of printcolumn(...) as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tarantool.io",
    version = "v1alpha1",
    kind = "Role",
    namespaced,
    status = "RoleStatus",
    derive = "PartialEq",
    shortname = "tntr",
    shortname = "tntrole",
    category = "tarantool",
    doc = "Replica sets of one kind in a Tarantool Cartridge cluster: how many, their Cartridge roles and vshard settings, their pod template, and how they are updated.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.ready",
        description = "replica sets with every instance ready / replica sets wanted"
    ),
    printcolumn(
        name = "Updated",
        type_ = "integer",
        json_path = ".status.updatedReplicasets",
        description = "replica sets whose every pod runs the current template"
    ),
    printcolumn(
        name = "Strategy",
        type_ = "string",
        json_path = ".spec.updateStrategy.name",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::validation::role_spec_rules)]
pub struct RoleSpec {
    /// Number of replica sets (0 keeps the Role with no instances).
    #[serde(default = "default_one")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicasets: i32,
    /// Cartridge roles and vshard settings of every replica set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vshard: Option<RoleVshard>,
    /// What every replica set runs (canonical place; see the type's docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicaset_template: Option<ReplicasetTemplate>,
    /// How pods are updated when the pod template changes.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
}

/// Cartridge settings of each replica set of the Role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleVshard {
    /// Cartridge roles enabled on every replica set, e.g. `vshard-router`,
    /// `failover-coordinator`, `app.roles.router`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 256)), extend("x-kubernetes-list-type" = "set"))]
    pub cluster_roles: Vec<String>,
    /// vshard weight of each replica set (storages; 0 drains its buckets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub weight: Option<f64>,
    /// vshard group of the replica sets (multi-group clusters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub vshard_group: Option<String>,
    /// Every instance writable, not just the master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_rw: Option<bool>,
    /// Alias of `spec.replicasetTemplate`, where the article's manifest puts
    /// it. Set one of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicaset_template: Option<ReplicasetTemplate>,
}

/// What each replica set of a Role runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasetTemplate {
    /// Instances per replica set.
    #[serde(default = "default_one")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// Pod template of every instance.
    #[schemars(schema_with = "super::schema::pod_template")]
    pub pod_template: PodTemplateSpec,
    /// Volume claim templates of every instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::volume_claim_templates")]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
}

fn default_one() -> i32 {
    1
}

impl RoleSpec {
    /// The replica set template in force: `spec.replicasetTemplate`, else
    /// `spec.vshard.replicasetTemplate`.
    pub fn replicaset_template(&self) -> Option<&ReplicasetTemplate> {
        self.replicaset_template.as_ref().or_else(|| {
            self.vshard
                .as_ref()
                .and_then(|v| v.replicaset_template.as_ref())
        })
    }

    /// Whether the template is set in both places (admission refuses it; an
    /// older object may still have it).
    pub fn has_both_templates(&self) -> bool {
        self.replicaset_template.is_some()
            && self
                .vshard
                .as_ref()
                .is_some_and(|v| v.replicaset_template.is_some())
    }

    /// The same spec with the template in its canonical place only (the
    /// alias moved there, or dropped when both are set), so that where the
    /// template was written never changes what it means.
    pub fn normalized(mut self) -> Self {
        let alias = self
            .vshard
            .as_mut()
            .and_then(|v| v.replicaset_template.take());
        if self.replicaset_template.is_none() {
            self.replicaset_template = alias;
        }
        self
    }

    /// Replica sets wanted, as a count (negative values count as 0).
    pub fn replicaset_count(&self) -> u32 {
        u32::try_from(self.replicasets).unwrap_or(0)
    }
}

/// Where a Role is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RolePhase {
    /// Being created; not every replica set is ready yet.
    #[default]
    Pending,
    /// Every replica set ready and on the current template.
    Ready,
    /// Rolling pods to a new template.
    Updating,
    /// Adding or removing replica sets or instances.
    Scaling,
    /// Something needs attention; see the conditions.
    Degraded,
    /// Being deleted.
    Terminating,
}

/// Observed state of a Role, written by the operator only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// Where the Role is in its life.
    #[serde(default)]
    pub phase: RolePhase,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `ready/wanted` replica sets, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    /// Replica sets with every instance ready.
    #[serde(default)]
    pub ready_replicasets: i32,
    /// Replica sets whose every pod runs the current template.
    #[serde(default)]
    pub updated_replicasets: i32,
    /// One entry per replica set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub replicasets: Vec<ReplicasetStatus>,
    /// Hash of `spec.vshard` (roles, weight, all_rw, group) when it was last
    /// applied to Cartridge, so a converged Role is not asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_vshard: Option<String>,
    /// Progress of the rolling update, while there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateProgress>,
    /// Ready, Progressing and Degraded, in the metav1 shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions", extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Observed state of one replica set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicasetStatus {
    /// Its StatefulSet's name, `<role>-<ordinal>-<hash>`.
    pub name: String,
    /// Its Cartridge replica set UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Instances wanted.
    #[serde(default)]
    pub replicas: i32,
    /// Instances ready.
    #[serde(default)]
    pub ready: i32,
    /// Instances running the current template.
    #[serde(default)]
    pub updated: i32,
    /// Instances joined to the Cartridge topology, as last seen there.
    #[serde(default)]
    pub joined: i32,
    /// The pod of the current master, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Its vshard weight as Cartridge reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// How far its removal has gone, while the spec no longer names it
    /// (fewer replica sets, or a new volume template). Recorded before each
    /// destructive step, so that a restarted operator knows that an absent
    /// replica set was expelled by itself and not merely unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal: Option<RemovalStage>,
    /// How its drain goes, while it drains (buckets left, and from when and
    /// how many, for a rate and an estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainProgress>,
    /// Instances removed by a smaller `replicas`, from the moment their
    /// expel is decided until their volumes are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["pod"]))]
    pub removed_instances: Vec<InstanceRemoval>,
    /// The last master switch the operator asked for, and, once Cartridge
    /// reported the new master writable, how long writes were unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<MasterSwitch>,
    /// The generation of its StatefulSet as the operator last applied or
    /// accepted it: a newer one means someone else changed its spec, and the
    /// operator puts its own fields back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statefulset_generation: Option<i64>,
}

/// A master switch the operator asked Cartridge for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MasterSwitch {
    /// The pod that was master.
    pub from: String,
    /// The pod made master.
    pub to: String,
    /// When the switch was sent: the old master was last seen writable
    /// before it.
    pub requested_at: Time,
    /// When Cartridge first reported the new master writable (and the old
    /// one read-only); unset while the switch is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_at: Option<Time>,
    /// `writableAt - requestedAt`: an upper bound of the time no instance
    /// of the replica set took writes. Its resolution is how often the
    /// operator looks during a switch (at most a second apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_unavailable_seconds: Option<f64>,
}

/// A drain under way: what Cartridge reported when it started and last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainProgress {
    /// When the operator first saw it drain.
    pub started_at: Time,
    /// Buckets it held then.
    pub initial_buckets: i64,
    /// Buckets it holds now.
    pub buckets: i64,
    /// When `buckets` was seen.
    pub observed_at: Time,
}

impl DrainProgress {
    /// The progress after seeing `buckets` at `now` (`None`: a new drain).
    pub fn observe(previous: Option<&Self>, buckets: i64, now: Time) -> Self {
        match previous {
            Some(p) => Self {
                buckets,
                observed_at: now,
                ..p.clone()
            },
            None => Self {
                started_at: now.clone(),
                initial_buckets: buckets,
                buckets,
                observed_at: now,
            },
        }
    }

    /// Buckets per second so far and the seconds left at that rate, once
    /// any bucket moved.
    pub fn estimate(&self) -> Option<(f64, f64)> {
        let elapsed = self
            .observed_at
            .0
            .duration_since(self.started_at.0)
            .as_secs_f64();
        let moved = self.initial_buckets - self.buckets;
        if elapsed <= 0.0 || moved <= 0 {
            return None;
        }
        let rate = moved as f64 / elapsed;
        Some((rate, self.buckets.max(0) as f64 / rate))
    }
}

impl std::fmt::Display for DrainProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} buckets left", self.buckets)?;
        if let Some((rate, left)) = self.estimate() {
            let left = left.round() as u64;
            write!(
                f,
                ", {rate:.1}/s, about {}m{:02}s to go",
                left / 60,
                left % 60
            )?;
        }
        Ok(())
    }
}

/// How far the removal of a replica set has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RemovalStage {
    /// Weight 0: its buckets are moving away.
    Draining,
    /// Drained and out of the leader's way: it is expelled next, and once a
    /// verified member no longer reports it, its StatefulSet and volumes
    /// are deleted.
    Expelling,
}

/// An instance on its way out of the topology and off its volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRemoval {
    /// Its pod (gone by now).
    pub pod: String,
    /// The instance UUID to expel.
    pub uuid: String,
    /// How far it went.
    pub stage: InstanceStage,
}

/// How far the removal of an instance has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum InstanceStage {
    /// Its expel is due (its ordinal's epoch was moved first).
    Expelling,
    /// A verified member no longer reports it: its volume claims were
    /// deleted, and the ordinal may come back once they are gone.
    ClaimsDeleting,
}

/// Progress of a rolling update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProgress {
    /// The strategy running it.
    pub strategy: String,
    /// The pod template revision being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Pods on that revision.
    #[serde(default)]
    pub updated_pods: i32,
    /// Pods of the Role.
    #[serde(default)]
    pub total_pods: i32,
    /// The strategy's last message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub message: Option<String>,
    /// The opaque state the strategy returned last time, given back to it on
    /// the next plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub state: Option<String>,
    /// sha256 of the strategy component running this rollout (pinned: a
    /// changed component takes effect at the next rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub component: Option<String>,
    /// When the strategy last planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan_time: Option<Time>,
    /// The strategy said done and every pod is updated.
    #[serde(default)]
    pub done: bool,
    /// While the rollout is paused: what the strategy would do once
    /// unpaused, simulated to the end (`tarantool-operator plan -n NS ROLE`
    /// prints the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<RolloutPreview>,
}

/// The steps a paused rollout would take, simulated on the Role as it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutPreview {
    /// What it was computed for (the revision, strategy, params and the
    /// Role's shape, hashed): recomputed only when that changes.
    #[schemars(length(max = 64))]
    pub key: String,
    /// The first steps, one line each: simulated seconds, then actions
    /// (at most 64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = 64, "items" = {"type": "string", "maxLength": 512}))]
    pub steps: Vec<String>,
    /// Steps left out past the bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_steps: i32,
    /// The simulated time to the end, seconds (the makespan estimate).
    pub makespan_seconds: i64,
    /// How the simulation ended (`completed`, or why not).
    #[schemars(length(max = 256))]
    pub outcome: String,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl RolloutPreview {
    /// At most this many steps are kept in the status.
    pub const MAX_STEPS: usize = 64;
    /// A step line is cut to this many bytes.
    pub const MAX_LINE: usize = 512;
}

impl RoleStatus {
    /// The `ready` column text: `2/3`.
    pub fn ready_text(ready: u32, wanted: u32) -> String {
        format!("{ready}/{wanted}")
    }
}
