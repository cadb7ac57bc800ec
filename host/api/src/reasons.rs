//! Every reason the operator writes: in conditions (`Ready`, `Progressing`,
//! `Degraded`), in Events, and as the `reason` label of
//! `tarantool_operator_reconcile_errors_total`.
//!
//! Reasons are user-visible API (`kubectl get events`, conditions, alerts on
//! the metric, `tarantool-operator timeline`), so each string is fixed
//! here once and nowhere else. The strategy engine's and the console's error
//! labels are here too: a failed pass shows them as its condition and Event
//! reason, and users see one namespace of reasons, not one per module.
//! The table of reasons in `docs/operations.md` is checked against this
//! list by a test.

use std::fmt;
use std::str::FromStr;

/// How a reason reaches users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A pass that ends waiting: `Ready` False and `Progressing` True.
    Waiting,
    /// A pass that completed: `Ready` True, or `Degraded` False.
    Converged,
    /// A failed pass: `Ready` False and `Degraded` True, a Warning Event,
    /// and the label of the reconcile errors metric.
    Failure,
    /// A Normal Event.
    Event,
    /// A Warning Event of its own (not a failed pass).
    Warning,
    /// Only in the operator's logs (a console error a topology call reports
    /// under another reason).
    Log,
}

impl Use {
    /// How the table in `docs/operations.md` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Converged => "converged",
            Self::Failure => "failure",
            Self::Event => "Event",
            Self::Warning => "Warning Event",
            Self::Log => "log",
        }
    }
}

/// Declares [`Reason`] from one list: variant, exact string, use, and the
/// doc comment saying when it is written (also the docs table's text).
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])+ $name:ident = $string:literal, $use:ident; )+) => {
        /// A condition or Event reason, or an error label, as the operator
        /// writes it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[doc = $doc])+ $name, )+
        }

        impl Reason {
            /// Every reason, in the order declared.
            pub const ALL: &'static [Reason] = &[$(Self::$name),+];

            /// The string users see (unchanged since it was first written).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$name => $string, )+
                }
            }

            /// How the reason reaches users.
            pub const fn usage(self) -> Use {
                match self {
                    $( Self::$name => Use::$use, )+
                }
            }

            /// When it is written: its doc comment, on one line.
            pub const fn description(self) -> &'static str {
                match self {
                    $( Self::$name => concat!($($doc),+), )+
                }
            }
        }
    };
}

reasons! {
    // Conditions of a pass that completed.

    /// Everything in the spec is in place (`Ready`, `Progressing`, `Degraded`).
    Converged = "Converged", Converged;
    /// `Degraded` False while a pass waits: nothing failed.
    NoFailure = "NoFailure", Converged;

    // Conditions of a pass that waits.

    /// A Cluster lists a Role that another object controls.
    RoleOwnedElsewhere = "RoleOwnedElsewhere", Waiting;
    /// A Cluster lists a Role whose label `tarantool.io/cluster` does not
    /// name it (missing, or another Cluster): the Role is not taken.
    RoleNotClaimed = "RoleNotClaimed", Waiting;
    /// A Cluster waits for its Roles to exist and, before the bootstrap, to
    /// be Ready.
    WaitingForRoles = "WaitingForRoles", Waiting;
    /// A Cluster has no ready instance to send topology calls through.
    NoReadyInstance = "NoReadyInstance", Waiting;
    /// No ready instance of a Cluster answered as a cluster member.
    LeaderUnavailable = "LeaderUnavailable", Waiting;
    /// The Role has no Cluster: its label `tarantool.io/cluster` names none,
    /// or names one that does not list it. It creates nothing until then.
    NoCluster = "NoCluster", Waiting;
    /// A Role being deleted waits: for its Cluster's routers to go, for its
    /// StatefulSets to go, or for its finalizers to settle.
    Deleting = "Deleting", Waiting;
    /// A Role waits while replica sets or instances leave (drain, master
    /// hand-over, expel, volumes).
    Scaling = "Scaling", Waiting;
    /// Cartridge gave no verified answer, so the Role neither joins nor
    /// updates on it.
    CartridgeUnknown = "CartridgeUnknown", Waiting;
    /// A rolling update is under way, or pods still run another template.
    Updating = "Updating", Waiting;
    /// The rolling update is paused by `spec.updateStrategy.paused`.
    Paused = "Paused", Waiting;
    /// A pod's deletion waits for its replica set's master hand-over (or a
    /// supervised switch's approval).
    SwitchDeferred = "SwitchDeferred", Waiting;
    /// Some of a Role's replica sets are not ready.
    PodsNotReady = "PodsNotReady", Waiting;
    /// A rollout is pending outside the Role's
    /// `spec.updateStrategy.maintenanceWindows`: it starts when the next
    /// window opens (the message says when), or at once with the annotation
    /// `tarantool.io/rollout-now=true`.
    OutsideMaintenanceWindow = "OutsideMaintenanceWindow", Waiting;

    // Failed passes: the controllers' own.

    /// The apiserver refused a write made on a stale object (HTTP 409).
    Conflict = "Conflict", Failure;
    /// The apiserver refused or failed a request.
    KubernetesApi = "KubernetesApi", Failure;
    /// This replica may no longer act: its Lease may be taken over.
    Fenced = "Fenced", Failure;
    /// The object cannot be acted on as written.
    InvalidSpec = "InvalidSpec", Failure;
    /// An object lacks a field every stored object has.
    MissingField = "MissingField", Failure;
    /// The pass ran past `--pass-timeout-seconds` and was abandoned.
    PassTimeout = "PassTimeout", Failure;
    /// A storage Role's deletion would lose data: its buckets have nowhere
    /// to go.
    NowhereToDrain = "NowhereToDrain", Failure;
    /// A Cluster sets `spec.console.command` but the operator does not run
    /// with `--allow-custom-console-command`: nothing is exec'd.
    ConsoleCommandNotAllowed = "ConsoleCommandNotAllowed", Failure;
    /// A `passwordSecretRef` names a Secret or key that does not exist (or
    /// a value that is not UTF-8): the failover settings are left as they are.
    SecretNotFound = "SecretNotFound", Failure;

    // Failed passes: Cartridge and its console.

    /// The instance's console could not be reached.
    ConsoleUnreachable = "ConsoleUnreachable", Failure;
    /// The instance's console did not answer in time.
    ConsoleTimeout = "ConsoleTimeout", Failure;
    /// Cartridge refused a call (a Lua error).
    CartridgeRefused = "CartridgeRefused", Failure;
    /// A console reply was not what the protocol promises.
    ConsoleProtocol = "ConsoleProtocol", Failure;
    /// A console call raised a Lua error (a topology call reports it as
    /// `CartridgeRefused`).
    LuaError = "LuaError", Log;
    /// A console reply exceeded its bound (a topology call reports it as
    /// `ConsoleProtocol`).
    ConsoleReplyTooLarge = "ConsoleReplyTooLarge", Log;

    // Failed passes: the update strategy (only the Role's update pauses).

    /// `configMapRef` names a ConfigMap, or a key, that does not exist.
    ComponentNotFound = "ComponentNotFound", Failure;
    /// The task that loads or calls the strategy ended without an answer.
    StrategyLoad = "StrategyLoad", Failure;
    /// The component changed mid-rollout and the operator no longer has the
    /// old one.
    StrategyChangedMidRollout = "StrategyChangedMidRollout", Failure;
    /// An updated pod stayed unready past `progressDeadlineSeconds`.
    UpdateStuck = "UpdateStuck", Failure;
    /// No built-in strategy has the name asked for, and no `configMapRef` is
    /// set.
    UnknownStrategy = "UnknownStrategy", Failure;
    /// The strategy's component could not be fetched.
    StrategySourceUnavailable = "StrategySourceUnavailable", Failure;
    /// The component's `describe()` names another strategy.
    StrategyNameMismatch = "StrategyNameMismatch", Failure;
    /// The component was refused before compiling.
    InvalidComponent = "InvalidComponent", Failure;
    /// The component's sha256 is not the pinned `sha256`.
    DigestMismatch = "DigestMismatch", Failure;
    /// The operator requires custom strategies pinned by `sha256`
    /// (`--require-strategy-sha256`) and this Role sets none.
    StrategyNotPinned = "StrategyNotPinned", Failure;
    /// The component did not compile.
    CompileFailed = "CompileFailed", Failure;
    /// The component's imports do not match what the host provides.
    LinkFailed = "LinkFailed", Failure;
    /// The component's `describe()` failed or returned an invalid name.
    DescribeFailed = "DescribeFailed", Failure;
    /// The strategy answered with an error of its own.
    StrategyRejected = "StrategyRejected", Failure;
    /// The strategy used its CPU budget, or ran past its wall-clock
    /// deadline, and was stopped.
    StrategyDeadline = "StrategyDeadline", Failure;
    /// The strategy went past its memory limit.
    StrategyMemoryLimit = "StrategyMemoryLimit", Failure;
    /// The strategy overflowed its stack.
    StrategyStackOverflow = "StrategyStackOverflow", Failure;
    /// The strategy panicked.
    StrategyPanicked = "StrategyPanicked", Failure;
    /// The strategy trapped.
    StrategyTrapped = "StrategyTrapped", Failure;
    /// The strategy called a WASI function the sandbox denies.
    StrategyDeniedCall = "StrategyDeniedCall", Failure;
    /// The strategy's answer is bigger than the host accepts.
    StrategyOutputTooLarge = "StrategyOutputTooLarge", Failure;
    /// The sandbox could not start the strategy.
    StrategyInstantiate = "StrategyInstantiate", Failure;

    // Failed passes: the guard refused the strategy's decision (also a
    // Warning Event of its own).

    /// An action names a pod that is not in the view.
    UnknownPod = "UnknownPod", Failure;
    /// The decision makes more pods of a replica set unavailable than
    /// `maxUnavailable` allows.
    BudgetExceeded = "BudgetExceeded", Failure;
    /// The decision deletes a replica set's master while another pod of it
    /// serves.
    MasterDeletion = "MasterDeletion", Failure;
    /// The decision switches a master to a member that may not take it.
    BadSwitchTarget = "BadSwitchTarget", Failure;
    /// Two actions of the decision name the same pod.
    DuplicateTarget = "DuplicateTarget", Failure;
    /// The decision deletes a pod that is already terminating.
    AlreadyTerminating = "AlreadyTerminating", Failure;
    /// The decision waits longer than the host allows.
    WaitTooLong = "WaitTooLong", Failure;
    /// The decision has more actions than the host allows.
    TooManyActions = "TooManyActions", Failure;
    /// The decision says done while pods are still to update.
    PrematureDone = "PrematureDone", Failure;

    // Events of the Cluster controller.

    /// A Cluster became the controller-owner of a Role it lists.
    RoleAdopted = "RoleAdopted", Event;
    /// An owned Service was created or updated.
    ServiceApplied = "ServiceApplied", Event;
    /// Topology calls go through a new leader instance.
    LeaderChosen = "LeaderChosen", Event;
    /// The bootstrap joined replica sets and instances.
    TopologyJoined = "TopologyJoined", Event;
    /// `admin_bootstrap_vshard` created the buckets.
    VshardBootstrapped = "VshardBootstrapped", Event;
    /// Cartridge's failover settings were changed to the spec's.
    FailoverConfigured = "FailoverConfigured", Event;
    /// Sections of Cartridge's clusterwide config were patched.
    ConfigApplied = "ConfigApplied", Event;

    // Events of the Role controller.

    /// A StatefulSet was created or updated.
    StatefulSetApplied = "StatefulSetApplied", Event;
    /// Replica sets or instances were joined or reconfigured.
    TopologyChanged = "TopologyChanged", Event;
    /// A leaving replica set's weight went to 0.
    DrainStarted = "DrainStarted", Event;
    /// A draining replica set is wanted again: its weight is back.
    DrainCancelled = "DrainCancelled", Event;
    /// A drained replica set was expelled.
    ReplicasetExpelled = "ReplicasetExpelled", Event;
    /// Instances removed by scaling down were expelled.
    InstancesExpelled = "InstancesExpelled", Event;
    /// Claims of expelled instances were deleted.
    VolumesDeleted = "VolumesDeleted", Event;
    /// The StatefulSet of an expelled replica set was deleted.
    StatefulSetDeleted = "StatefulSetDeleted", Event;
    /// A replica set's PodDisruptionBudget was created or updated.
    DisruptionBudgetApplied = "DisruptionBudgetApplied", Event;
    /// The PodDisruptionBudget of a replica set whose StatefulSet is gone
    /// was deleted.
    DisruptionBudgetDeleted = "DisruptionBudgetDeleted", Event;
    /// A rolling update began.
    UpdateStarted = "UpdateStarted", Event;
    /// A rolling update ended: every pod runs the current template.
    UpdateFinished = "UpdateFinished", Event;
    /// A pod was deleted to update it (one Event each; the timeline reads
    /// its note).
    PodDeleted = "PodDeleted", Event;
    /// A replica set's master was switched (one Event each; the timeline
    /// reads its note).
    MasterSwitched = "MasterSwitched", Event;
    /// The strategy's message changed (one Event each; the timeline reads
    /// it).
    UpdateStep = "UpdateStep", Event;
    /// A switched master became writable (with the write-unavailable time).
    MasterWritable = "MasterWritable", Event;
    /// A Role being deleted was released: its finalizer is gone.
    Deleted = "Deleted", Event;
    /// A Role was released without draining, by
    /// `tarantool.io/force-delete=true`: its data is abandoned.
    ForceDeleted = "ForceDeleted", Warning;
    /// Masters are being moved away from pods whose eviction (a drain,
    /// the autoscaler) waits for it.
    EvictionHandOver = "EvictionHandOver", Waiting;
    /// An eviction of the Role's pod was denied for now (the first denial
    /// of that pod; the drain retries).
    EvictionDeferred = "EvictionDeferred", Event;
    /// A master's pod is being evicted but no healthy, caught-up replica
    /// can take over; the eviction waits, bounded.
    EvictionNoCandidate = "EvictionNoCandidate", Warning;
    /// An eviction that waited `--eviction-max-wait-seconds` was admitted
    /// although what held it back was still so.
    EvictionAdmittedAfterWait = "EvictionAdmittedAfterWait", Warning;
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is no reason of this operator's (e.g. an Event another
/// controller wrote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a reason of the operator: {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    /// The reason whose string is `s` exactly (how the timeline reads an
    /// Event's reason back).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_string()))
    }
}

/// The table of reasons for `docs/operations.md`, in Markdown.
pub fn markdown_table() -> String {
    let mut table = String::from("| reason | used as | when |\n| --- | --- | --- |\n");
    for reason in Reason::ALL {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            reason.as_str(),
            reason.usage().as_str(),
            reason.description().trim()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn no_two_reasons_share_a_string() {
        let mut seen = BTreeMap::new();
        for reason in Reason::ALL {
            if let Some(other) = seen.insert(reason.as_str(), reason) {
                panic!("{reason:?} and {other:?} are both {:?}", reason.as_str());
            }
        }
    }

    #[test]
    fn reasons_are_camel_case_and_parse_back() {
        for &reason in Reason::ALL {
            let s = reason.as_str();
            assert!(
                s.starts_with(|c: char| c.is_ascii_uppercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric()),
                "{s:?}"
            );
            assert_eq!(s.parse::<Reason>(), Ok(reason));
            assert_eq!(reason.to_string(), s);
            assert!(!reason.description().trim().is_empty(), "{s}");
        }
        assert_eq!(
            "Bootstrapped".parse::<Reason>(),
            Err(UnknownReason("Bootstrapped".into()))
        );
    }

    /// The table in `docs/operations.md` is this list; on a difference the
    /// message carries the table to paste.
    #[test]
    fn the_docs_list_every_reason() {
        let docs = include_str!("../../../docs/operations.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/operations.md lacks the current table of reasons; replace it with:\n\n{table}"
        );
    }
}
