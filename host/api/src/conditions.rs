//! Conditions in the metav1 shape (`type`, `status`, `reason`, `message`,
//! `lastTransitionTime`, `observedGeneration`), as Clusters and Roles report
//! them, and the one way to set them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::Reason;

/// The object is doing what its spec asks.
pub const READY: &str = "Ready";
/// The operator is changing something (deploy, scale, rolling update).
pub const PROGRESSING: &str = "Progressing";
/// Something needs attention: a refused strategy decision, a failed step.
pub const DEGRADED: &str = "Degraded";

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"`.
    Unknown,
}

impl Status {
    /// The string Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// What a controller wants a condition to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCondition<'a> {
    /// `Ready`, `Progressing`, `Degraded`, ...
    pub type_: &'a str,
    /// Its status.
    pub status: Status,
    /// Why.
    pub reason: Reason,
    /// A sentence for humans.
    pub message: &'a str,
    /// The generation of the spec it was computed from.
    pub observed_generation: Option<i64>,
}

/// Sets a condition in `conditions`, keeping `lastTransitionTime` unless the
/// status changes (as `meta.SetStatusCondition` does). Returns whether
/// anything changed, so a controller in steady state writes nothing.
///
/// The message goes through [`crate::text::message`] (bounded, no control
/// characters): it may carry what a console or Cartridge said.
pub fn set(conditions: &mut Vec<Condition>, new: &NewCondition<'_>, now: Timestamp) -> bool {
    let status = new.status.as_str();
    let message = crate::text::message(new.message);
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        let unchanged = existing.status == status
            && existing.reason == new.reason.as_str()
            && existing.message == message
            && existing.observed_generation == new.observed_generation;
        if unchanged {
            return false;
        }
        if existing.status != status {
            existing.last_transition_time = Time(now);
        }
        existing.status = status.to_string();
        existing.reason = new.reason.as_str().to_string();
        existing.message = message;
        existing.observed_generation = new.observed_generation;
        return true;
    }
    conditions.push(Condition {
        type_: new.type_.to_string(),
        status: status.to_string(),
        reason: new.reason.as_str().to_string(),
        message,
        observed_generation: new.observed_generation,
        last_transition_time: Time(now),
    });
    true
}

/// The condition of type `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == Status::True.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(status: Status, reason: Reason) -> NewCondition<'static> {
        NewCondition {
            type_: READY,
            status,
            reason,
            message: "m",
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let t0 = Timestamp::from_second(1_000).expect("time");
        let t1 = Timestamp::from_second(2_000).expect("time");
        let t2 = Timestamp::from_second(3_000).expect("time");
        let mut c = Vec::new();
        assert!(set(&mut c, &ready(Status::False, Reason::PodsNotReady), t0));
        assert!(
            !set(&mut c, &ready(Status::False, Reason::PodsNotReady), t1),
            "no-op"
        );
        assert!(set(&mut c, &ready(Status::False, Reason::Scaling), t1));
        assert_eq!(c[0].last_transition_time, Time(t0), "same status");
        assert!(set(&mut c, &ready(Status::True, Reason::Converged), t2));
        assert_eq!(c[0].last_transition_time, Time(t2));
        assert_eq!(c.len(), 1);
        assert!(is_true(&c, READY));
        assert!(!is_true(&c, DEGRADED));
    }
}
