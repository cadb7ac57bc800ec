//! Which Cluster a Role belongs to: a handshake of two halves.
//!
//! The Cluster lists the Role by name in `spec.roles`, and the Role names the
//! Cluster in its label `tarantool.io/cluster`. Neither half alone is
//! enough: a Cluster's author cannot take a Role whose author did not name
//! that Cluster (and with it the Role's pods, and on the Cluster's deletion
//! its data), and a Role does not join a Cluster that does not list it.
//!
//! A Role the Cluster already controls stays with it: only the operator
//! sets that ownerReference, so it was given under the same rules (or, for a
//! Role adopted before the label was required, by name alone; see
//! docs/operations.md).

use kube::ResourceExt;

use crate::api::cluster::Cluster;
use crate::api::role::Role;
use crate::resources::labels;

/// What a Cluster may do with a Role it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The Cluster already controls the Role.
    Owned,
    /// The Role names this Cluster and no one controls it: take it.
    Adopt,
    /// Another object controls the Role.
    OwnedElsewhere {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// The Role names no Cluster.
    Unlabelled,
    /// The Role names another Cluster.
    NamesOther(String),
}

impl Claim {
    /// Why a Cluster waits for a Role it may not take, or `None` when it
    /// may have it.
    pub(crate) fn refusal(&self, role: &str, cluster: &str) -> Option<String> {
        let label = labels::CLUSTER;
        match self {
            Self::Owned | Self::Adopt => None,
            Self::OwnedElsewhere { kind, name } => {
                Some(format!("Role {role} belongs to {kind} {name}"))
            }
            Self::Unlabelled => Some(format!(
                "Role {role} names no Cluster: its author takes it into this one with the label {label}={cluster}"
            )),
            Self::NamesOther(other) => Some(format!(
                "Role {role} names Cluster {other} in its label {label}, not {cluster}: it is not taken"
            )),
        }
    }
}

/// The controller ownerReference of kind Cluster on a Role: its uid.
fn owner_uid(role: &Role) -> Option<&str> {
    role.owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "Cluster")
        .map(|r| r.uid.as_str())
}

/// What the Cluster `cluster_name` (uid `cluster_uid`) may do with `role`.
pub(crate) fn claim(role: &Role, cluster_name: &str, cluster_uid: &str) -> Claim {
    let refs = role.owner_references();
    if refs.iter().any(|r| r.uid == cluster_uid) {
        return Claim::Owned;
    }
    if let Some(other) = refs.iter().find(|r| r.controller == Some(true)) {
        return Claim::OwnedElsewhere {
            kind: other.kind.clone(),
            name: other.name.clone(),
        };
    }
    match role.labels().get(labels::CLUSTER) {
        Some(named) if named == cluster_name => Claim::Adopt,
        Some(named) => Claim::NamesOther(named.clone()),
        None => Claim::Unlabelled,
    }
}

/// A Role's Cluster: the Cluster that controls it, if that one lists it;
/// else the Cluster its label names, if that one lists it. Otherwise why
/// it has none, for its condition.
pub(crate) fn cluster_of<'a>(role: &Role, clusters: &'a [Cluster]) -> Result<&'a Cluster, String> {
    let name = role.name_any();
    let listing: Vec<&Cluster> = clusters
        .iter()
        .filter(|c| c.spec.role_names().any(|r| r == name))
        .collect();
    // The controlling Cluster, while it exists, decides alone: a Role it
    // no longer lists joins no other (that one could not take it anyway).
    if let Some(uid) = owner_uid(role)
        && let Some(owner) = clusters.iter().find(|c| c.uid().as_deref() == Some(uid))
    {
        return if listing.iter().any(|c| c.uid().as_deref() == Some(uid)) {
            Ok(owner)
        } else {
            Err(format!(
                "Role {name} belongs to Cluster {}, which no longer lists it",
                owner.name_any()
            ))
        };
    }
    let label = labels::CLUSTER;
    let Some(named) = role.labels().get(labels::CLUSTER) else {
        let listed_by: Vec<String> = listing.iter().map(|c| c.name_any()).collect();
        return Err(if listed_by.is_empty() {
            format!("Role {name} names no Cluster (label {label}) and no Cluster lists it")
        } else {
            format!(
                "Role {name} names no Cluster: label it {label}=<cluster> to join one (listed by {})",
                listed_by.join(", ")
            )
        });
    };
    if let Some(cluster) = listing.iter().find(|c| c.name_any() == *named) {
        return Ok(cluster);
    }
    Err(if clusters.iter().any(|c| c.name_any() == *named) {
        format!(
            "Cluster {named}, named by the Role's label {label}, does not list Role {name} in spec.roles"
        )
    } else {
        format!("Cluster {named}, named by the Role's label {label}, does not exist")
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;
    use crate::controller::testing::{self, ROUTER};

    fn owner(kind: &str, name: &str, uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "tarantool.io/v1alpha1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    /// The router Role with `label` as its Cluster label and `owners`.
    fn role(label: Option<&str>, owners: Vec<OwnerReference>) -> Role {
        let mut role = testing::role(ROUTER);
        let labels = role.metadata.labels.get_or_insert_default();
        labels.remove(labels::CLUSTER);
        if let Some(label) = label {
            labels.insert(labels::CLUSTER.into(), label.into());
        }
        role.metadata.owner_references = (!owners.is_empty()).then_some(owners);
        role
    }

    /// A Cluster `name` (uid `uid-NAME`) listing `roles`.
    fn cluster(name: &str, roles: &[&str]) -> Cluster {
        let mut cluster = testing::cluster();
        cluster.metadata.name = Some(name.into());
        cluster.metadata.uid = Some(format!("uid-{name}"));
        cluster.spec.roles = roles
            .iter()
            .map(|r| crate::api::cluster::RoleRef { name: (*r).into() })
            .collect();
        cluster
    }

    #[test]
    fn a_cluster_takes_only_a_role_that_names_it() {
        let cases: Vec<(&str, Role, Claim)> = vec![
            ("names it", role(Some("demo"), vec![]), Claim::Adopt),
            ("unlabelled", role(None, vec![]), Claim::Unlabelled),
            (
                "names another",
                role(Some("other"), vec![]),
                Claim::NamesOther("other".into()),
            ),
            (
                "already owned, label gone",
                role(None, vec![owner("Cluster", "demo", "uid-demo", true)]),
                Claim::Owned,
            ),
            (
                "controlled by another Cluster though it names this one",
                role(
                    Some("demo"),
                    vec![owner("Cluster", "other", "uid-other", true)],
                ),
                Claim::OwnedElsewhere {
                    kind: "Cluster".into(),
                    name: "other".into(),
                },
            ),
            (
                "a non-controller owner does not stop the adoption",
                role(
                    Some("demo"),
                    vec![owner("ConfigMap", "keep", "uid-cm", false)],
                ),
                Claim::Adopt,
            ),
        ];
        for (name, role, want) in cases {
            let got = claim(&role, "demo", "uid-demo");
            assert_eq!(got, want, "{name}");
            assert_eq!(
                got.refusal("router", "demo").is_none(),
                matches!(want, Claim::Owned | Claim::Adopt),
                "{name}"
            );
        }
    }

    #[test]
    fn the_refusal_tells_the_role_author_what_to_do() {
        let msg = Claim::Unlabelled
            .refusal("router", "demo")
            .unwrap_or_default();
        assert!(msg.contains("tarantool.io/cluster=demo"), "{msg}");
        let msg = Claim::NamesOther("other".into())
            .refusal("router", "demo")
            .unwrap_or_default();
        assert!(msg.contains("names Cluster other"), "{msg}");
    }

    #[test]
    fn a_role_joins_the_cluster_its_label_names_if_that_cluster_lists_it() {
        let demo = cluster("demo", &["router"]);
        let other = cluster("other", &["router"]);
        let silent = cluster("silent", &[]);
        // (case, role, clusters, the chosen Cluster or a word of the reason)
        type Case = (
            &'static str,
            Role,
            Vec<Cluster>,
            Result<&'static str, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "named and listing",
                role(Some("demo"), vec![]),
                vec![other.clone(), demo.clone()],
                Ok("demo"),
            ),
            (
                "listed by two, the label decides",
                role(Some("other"), vec![]),
                vec![demo.clone(), other.clone()],
                Ok("other"),
            ),
            (
                "listed but unlabelled",
                role(None, vec![]),
                vec![demo.clone()],
                Err("listed by demo"),
            ),
            (
                "unlabelled and unlisted",
                role(None, vec![]),
                vec![silent.clone()],
                Err("no Cluster lists it"),
            ),
            (
                "named but not listing",
                role(Some("silent"), vec![]),
                vec![silent.clone(), demo.clone()],
                Err("does not list Role router"),
            ),
            (
                "named but missing",
                role(Some("gone"), vec![]),
                vec![demo.clone()],
                Err("does not exist"),
            ),
            (
                "the owner wins over the label",
                role(
                    Some("other"),
                    vec![owner("Cluster", "demo", "uid-demo", true)],
                ),
                vec![other.clone(), demo.clone()],
                Ok("demo"),
            ),
            (
                "an owner that no longer lists it keeps it from others",
                role(
                    Some("other"),
                    vec![owner("Cluster", "silent", "uid-silent", true)],
                ),
                vec![silent.clone(), other.clone()],
                Err("no longer lists it"),
            ),
            (
                "an owner that is gone leaves the label to decide",
                role(
                    Some("other"),
                    vec![owner("Cluster", "gone", "uid-gone", true)],
                ),
                vec![other.clone()],
                Ok("other"),
            ),
        ];
        for (name, role, clusters, want) in cases {
            let got = cluster_of(&role, &clusters).map(|c| c.name_any());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
                (Err(why), Err(word)) => assert!(why.contains(word), "{name}: {why}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
