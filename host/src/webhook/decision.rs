//! Whether an eviction of a pod may go through now: a pure function of
//! what the webhook observed about the pod, its replica set and how long
//! the pod's evictions have been denied ([`decide`]). The HTTP layer
//! (`review`) gathers the facts and carries the decision out.

use std::fmt;
use std::time::Duration;

/// What the webhook knows about the pod being evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodFacts {
    /// The pod's name.
    pub name: String,
    /// Its Role (the pod's `tarantool.io/role` label).
    pub role: String,
    /// Its replica set (the StatefulSet; `tarantool.io/replicaset`).
    pub replicaset: String,
    /// Ready and not terminating.
    pub available: bool,
}

/// What the webhook knows about the pod's replica set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ReplicasetFacts {
    /// Its master's pod, as the Role's status last recorded it.
    pub master: Option<String>,
    /// Instances wanted (the Role's status).
    pub replicas: u32,
    /// The other pods of the replica set that are not available (not ready,
    /// terminating, or missing: counted up to `replicas`), by name.
    pub unavailable_others: Vec<String>,
}

/// Why an eviction is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmitReason {
    /// Not a pod of a Role (or its Role is unknown).
    NotManaged,
    /// The pod is not available anyway: evicting it takes nothing away.
    AlreadyUnavailable,
    /// A replica, with every other instance of its replica set available.
    Replica,
    /// The only instance of its replica set: there is no one to hand over
    /// to, and waiting would only delay the drain.
    NoReplica,
    /// The webhook could not find out (an error reading the pod or its
    /// Role): admitted, as the apiserver does when the webhook is
    /// unreachable (`failurePolicy: Ignore`).
    Error,
}

/// Why an eviction is denied (for now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DenyReason {
    /// Another instance of the replica set is unavailable.
    OtherUnavailable(Vec<String>),
}

/// The decision on one eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Let it through.
    Admit(AdmitReason),
    /// 429: the drain retries.
    Deny(DenyReason),
    /// 429, and the operator is asked to move the master of `replicaset`
    /// away from the pod.
    DenyAndSwitch {
        /// The replica set.
        replicaset: String,
        /// The master's pod (the one being evicted).
        master: String,
    },
    /// It would wait, but has waited `bound` already: let it through (with
    /// a Warning Event). `would` is what held it back.
    AdmitAfterBound {
        /// The denial it would have been.
        would: Box<Decision>,
    },
}

impl Decision {
    /// Whether the eviction goes through.
    pub(crate) fn allowed(&self) -> bool {
        matches!(self, Self::Admit(_) | Self::AdmitAfterBound { .. })
    }

    /// `admit` or `deny`: the `decision` label of the metric.
    pub(crate) fn label(&self) -> &'static str {
        if self.allowed() { "admit" } else { "deny" }
    }

    /// The `reason` label of the metric.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Admit(AdmitReason::NotManaged) => "not-managed",
            Self::Admit(AdmitReason::AlreadyUnavailable) => "already-unavailable",
            Self::Admit(AdmitReason::Replica) => "replica",
            Self::Admit(AdmitReason::NoReplica) => "no-replica",
            Self::Admit(AdmitReason::Error) => "error",
            Self::Deny(DenyReason::OtherUnavailable(_)) => "other-unavailable",
            Self::DenyAndSwitch { .. } => "master",
            Self::AdmitAfterBound { .. } => "bound",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admit(AdmitReason::NotManaged) => f.write_str("not a pod of a Role"),
            Self::Admit(AdmitReason::AlreadyUnavailable) => f.write_str("the pod is not available"),
            Self::Admit(AdmitReason::Replica) => {
                f.write_str("a replica, and its replica set is otherwise available")
            }
            Self::Admit(AdmitReason::NoReplica) => {
                f.write_str("the only instance of its replica set: no one to hand over to")
            }
            Self::Admit(AdmitReason::Error) => f.write_str("the webhook could not tell"),
            Self::Deny(DenyReason::OtherUnavailable(names)) => write!(
                f,
                "another instance of its replica set is unavailable ({}); at most one at a time",
                names.join(", ")
            ),
            Self::DenyAndSwitch { replicaset, master } => write!(
                f,
                "{master} is the master of replica set {replicaset}: the master is being moved to a caught-up replica; retry"
            ),
            Self::AdmitAfterBound { would } => {
                write!(f, "waited the bound, admitted although {would}")
            }
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// The pod; `None` when it is not a Role's pod.
    pub pod: Option<PodFacts>,
    /// Its replica set; `None` when the Role's status does not list it.
    pub replicaset: Option<ReplicasetFacts>,
    /// Time since the first denied eviction of this pod, if any.
    pub waited: Option<Duration>,
    /// The longest an eviction waits (`--eviction-max-wait-seconds`).
    pub bound: Duration,
}

/// The decision on an eviction:
/// - not a Role's pod, or a replica set the Role does not report:
///   admitted;
/// - a pod that is not available anyway: admitted;
/// - another instance of its replica set unavailable: denied;
/// - the master: denied, and the master is moved (`DenyAndSwitch`);
///   the only instance: admitted;
/// - a replica: admitted;
/// - and any denial, once the pod's evictions have been denied for
///   `bound`: admitted after all (`AdmitAfterBound`).
pub(crate) fn decide(facts: &Facts) -> Decision {
    let would = unbounded(facts);
    match (&would, facts.waited) {
        (Decision::Deny(_) | Decision::DenyAndSwitch { .. }, Some(waited))
            if waited >= facts.bound =>
        {
            Decision::AdmitAfterBound {
                would: Box::new(would),
            }
        }
        _ => would,
    }
}

fn unbounded(facts: &Facts) -> Decision {
    let (Some(pod), Some(rs)) = (&facts.pod, &facts.replicaset) else {
        return Decision::Admit(AdmitReason::NotManaged);
    };
    if !pod.available {
        return Decision::Admit(AdmitReason::AlreadyUnavailable);
    }
    if !rs.unavailable_others.is_empty() {
        return Decision::Deny(DenyReason::OtherUnavailable(rs.unavailable_others.clone()));
    }
    if rs.master.as_deref() != Some(pod.name.as_str()) {
        return Decision::Admit(AdmitReason::Replica);
    }
    if rs.replicas <= 1 {
        return Decision::Admit(AdmitReason::NoReplica);
    }
    Decision::DenyAndSwitch {
        replicaset: pod.replicaset.clone(),
        master: pod.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(300);

    fn pod(name: &str, available: bool) -> Option<PodFacts> {
        Some(PodFacts {
            name: name.into(),
            role: "storage".into(),
            replicaset: "storage-0-abc".into(),
            available,
        })
    }

    fn rs(master: Option<&str>, replicas: u32, unavailable: &[&str]) -> Option<ReplicasetFacts> {
        Some(ReplicasetFacts {
            master: master.map(str::to_string),
            replicas,
            unavailable_others: unavailable.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn switch() -> Decision {
        Decision::DenyAndSwitch {
            replicaset: "storage-0-abc".into(),
            master: "s-0".into(),
        }
    }

    /// (case, pod, replica set, waited, decision, metric reason)
    type Case = (
        &'static str,
        Option<PodFacts>,
        Option<ReplicasetFacts>,
        Option<Duration>,
        Decision,
        &'static str,
    );

    #[test]
    fn evictions_wait_for_the_master_to_move_and_for_the_replica_set_but_not_forever() {
        let secs = |s| Some(Duration::from_secs(s));
        let other = Decision::Deny(DenyReason::OtherUnavailable(vec!["s-1".into()]));
        // (case, pod, replica set, waited, decision, metric reason)
        let cases: Vec<Case> = vec![
            (
                "not a Role's pod",
                None,
                None,
                None,
                Decision::Admit(AdmitReason::NotManaged),
                "not-managed",
            ),
            (
                "replica set not in the status",
                pod("s-0", true),
                None,
                None,
                Decision::Admit(AdmitReason::NotManaged),
                "not-managed",
            ),
            (
                "a replica, others available",
                pod("s-1", true),
                rs(Some("s-0"), 3, &[]),
                None,
                Decision::Admit(AdmitReason::Replica),
                "replica",
            ),
            (
                "master unknown: not held back",
                pod("s-1", true),
                rs(None, 2, &[]),
                None,
                Decision::Admit(AdmitReason::Replica),
                "replica",
            ),
            (
                "the master: moved first",
                pod("s-0", true),
                rs(Some("s-0"), 2, &[]),
                None,
                switch(),
                "master",
            ),
            (
                "the master, still within the bound",
                pod("s-0", true),
                rs(Some("s-0"), 2, &[]),
                secs(299),
                switch(),
                "master",
            ),
            (
                "the master, bound reached",
                pod("s-0", true),
                rs(Some("s-0"), 2, &[]),
                secs(300),
                Decision::AdmitAfterBound {
                    would: Box::new(switch()),
                },
                "bound",
            ),
            (
                "the master moved away: admitted",
                pod("s-0", true),
                rs(Some("s-1"), 2, &[]),
                secs(20),
                Decision::Admit(AdmitReason::Replica),
                "replica",
            ),
            (
                "the only instance",
                pod("s-0", true),
                rs(Some("s-0"), 1, &[]),
                None,
                Decision::Admit(AdmitReason::NoReplica),
                "no-replica",
            ),
            (
                "another instance down",
                pod("s-2", true),
                rs(Some("s-0"), 3, &["s-1"]),
                None,
                other.clone(),
                "other-unavailable",
            ),
            (
                "another instance down, master evicted",
                pod("s-0", true),
                rs(Some("s-0"), 3, &["s-1"]),
                secs(10),
                other.clone(),
                "other-unavailable",
            ),
            (
                "another instance down past the bound",
                pod("s-2", true),
                rs(Some("s-0"), 3, &["s-1"]),
                secs(301),
                Decision::AdmitAfterBound {
                    would: Box::new(other),
                },
                "bound",
            ),
            (
                "the pod itself is down",
                pod("s-0", false),
                rs(Some("s-0"), 3, &["s-1"]),
                None,
                Decision::Admit(AdmitReason::AlreadyUnavailable),
                "already-unavailable",
            ),
            (
                "an admission never turns into a bound admission",
                pod("s-1", true),
                rs(Some("s-0"), 2, &[]),
                secs(900),
                Decision::Admit(AdmitReason::Replica),
                "replica",
            ),
        ];
        for (case, pod, replicaset, waited, expected, reason) in cases {
            let got = decide(&Facts {
                pod,
                replicaset,
                waited,
                bound: BOUND,
            });
            assert_eq!(got, expected, "{case}");
            assert_eq!(got.reason(), reason, "{case}");
            assert_eq!(
                got.allowed(),
                matches!(
                    expected,
                    Decision::Admit(_) | Decision::AdmitAfterBound { .. }
                ),
                "{case}"
            );
        }
    }

    #[test]
    fn a_denial_for_the_master_says_it_is_being_moved() {
        let text = switch().to_string();
        assert!(text.contains("s-0 is the master"), "{text}");
        assert!(text.contains("being moved"), "{text}");
    }
}
