//! Plain Rust mirrors of the WIT types, shared by guests and the host.

/// One Tarantool instance (a pod of a replica set's StatefulSet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pod {
    /// StatefulSet ordinal; the pod is `<replicaset name>-<ordinal>`.
    pub ordinal: u32,
    /// Runs the Role's update revision.
    pub updated: bool,
    /// Kubernetes reports it Ready.
    pub ready: bool,
    /// Deletion requested.
    pub terminating: bool,
    /// Cartridge master of its replica set.
    pub master: bool,
    /// Cartridge reports it healthy and replicating.
    pub healthy: bool,
    /// Container restarts.
    pub restarts: u32,
    /// Seconds since creation.
    pub age_seconds: u32,
    /// Replication lag behind the master, milliseconds.
    pub lag_millis: u32,
}

impl Pod {
    /// Serving: ready and not on its way out.
    pub fn available(&self) -> bool {
        self.ready && !self.terminating
    }
}

/// One replica set (one StatefulSet).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaSet {
    /// StatefulSet name, `<role>-<n>-<hash>`.
    pub name: String,
    /// vshard weight.
    pub weight: f64,
    /// Storage (true) or data-less router (false).
    pub holds_data: bool,
    /// Replicas the StatefulSet should run.
    pub desired_replicas: u32,
    /// Its pods, in any order.
    pub pods: Vec<Pod>,
}

/// What a strategy sees of a Role.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoleView {
    /// The Role's name.
    pub role: String,
    /// `spec.updateStrategy.params`, sorted by key.
    pub params: Vec<(String, String)>,
    /// Host budget: pods of one replica set that may be unavailable at once.
    pub max_unavailable: u32,
    /// The replica sets.
    pub replicasets: Vec<ReplicaSet>,
    /// Current time, Unix seconds.
    pub now_unix: u64,
    /// The strategy's state from its previous decision.
    pub state: Option<String>,
}

/// A pod by position in a [`RoleView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    /// Index into [`RoleView::replicasets`].
    pub replicaset: u32,
    /// Index into that replica set's [`ReplicaSet::pods`].
    pub pod: u32,
}

/// One step for the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delete the pod so it comes back on the new revision.
    DeletePod(PodRef),
    /// Make the pod the master of its replica set.
    SwitchMaster(PodRef),
    /// Plan again after at most this many seconds.
    Wait(u32),
}

/// A strategy's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// What to do now, in order.
    pub actions: Vec<Action>,
    /// Opaque state for the next call.
    pub state: Option<String>,
    /// One line for humans.
    pub message: String,
    /// Every pod is updated; nothing left to do.
    pub done: bool,
}

/// A parameter a strategy accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamSpec {
    /// Key in `spec.updateStrategy.params`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Value used when absent.
    pub default: Option<String>,
}

/// A strategy's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Info {
    /// Name as used in `spec.updateStrategy.name`.
    pub name: String,
    /// Semantic version of the strategy.
    pub version: String,
    /// One paragraph for humans.
    pub description: String,
    /// Accepted params.
    pub params: Vec<ParamSpec>,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Diagnostic.
    Debug,
    /// Normal.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}
