//! What a Role's spec asks for, worked out once per pass: the steps read
//! it instead of recomputing names and counts from the spec.

use crate::api::role::Role;
use crate::controller::members;
use crate::resources::apply::desired_hash;

/// The Role as its spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Its StatefulSets, `<role>-<n>-<hash>`, ordinal order.
    pub statefulsets: Vec<String>,
    /// Instances per replica set.
    pub replicas: u32,
    /// The pod template's revision: a rollout's identity.
    pub revision: String,
}

impl Desired {
    /// What `role`'s spec asks for.
    pub fn of(role: &Role) -> Self {
        let template = role.spec.replicaset_template();
        Self {
            statefulsets: members::statefulset_names(role),
            replicas: template.map_or(0, |t| u32::try_from(t.replicas).unwrap_or(0)),
            revision: desired_hash(&template.map(|t| &t.pod_template)),
        }
    }

    /// `replicas` as the API's integer type.
    pub fn replicas_i32(&self) -> i32 {
        i32::try_from(self.replicas).unwrap_or(i32::MAX)
    }

    /// The spec names this StatefulSet.
    pub fn wants(&self, statefulset: &str) -> bool {
        self.statefulsets.iter().any(|s| s == statefulset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing;

    #[test]
    fn the_desired_role_follows_its_spec() {
        let mut role = testing::role(testing::STORAGE);
        let before = Desired::of(&role);
        assert_eq!(before.statefulsets.len(), 2);
        assert_eq!(before.replicas, 2);
        assert!(before.wants(&before.statefulsets[0]));
        assert!(!before.wants("storage-9-x"));
        if let Some(template) = role.spec.replicaset_template.as_mut() {
            template.replicas = 3;
        }
        let more = Desired::of(&role);
        assert_eq!((more.replicas, more.replicas_i32()), (3, 3));
        assert_eq!(
            more.revision, before.revision,
            "the pod template did not change"
        );
        if let Some(spec) = role
            .spec
            .replicaset_template
            .as_mut()
            .and_then(|t| t.pod_template.spec.as_mut())
        {
            spec.containers[0].image = Some("other:1".into());
        }
        assert_ne!(Desired::of(&role).revision, before.revision);
    }
}
