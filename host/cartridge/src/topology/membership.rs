//! What the topology should be, and the one edit that gets it there.
//!
//! The controllers describe the replica sets the Kubernetes objects say
//! should exist ([`DesiredReplicaset`]); [`join_edit`] compares them with
//! what Cartridge reports and returns the single `admin_edit_topology` that
//! joins what is missing and corrects settings that drifted. Running it
//! twice is harmless: the second time the edit is empty.

use super::{JoinServer, ReplicasetEdit, ReplicasetInfo, TopologyEdit};

/// A replica set as the Kubernetes objects describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredReplicaset {
    /// Deterministic UUID.
    pub uuid: String,
    /// Alias (the StatefulSet name).
    pub alias: String,
    /// Cartridge roles.
    pub roles: Vec<String>,
    /// vshard weight; `None` leaves Cartridge's.
    pub weight: Option<f64>,
    /// Every instance writable; `None` leaves Cartridge's.
    pub all_rw: Option<bool>,
    /// vshard group; `None` leaves Cartridge's.
    pub vshard_group: Option<String>,
    /// Its instances in pod order (only ready ones are listed: a replica
    /// set joins with all of its instances at once).
    pub servers: Vec<JoinServer>,
}

/// The edit that makes `observed` match `desired`: joins what is missing
/// and, with `resend_settings` (the spec changed since it was last
/// applied), sets every existing replica set's roles, weight, all_rw and
/// group that differ. Never expels: removal is a drain, decided elsewhere.
///
/// Settings are not compared on every pass: a Role's status says whether its
/// spec changed since they were applied. Roles count as in place when every
/// role of the spec is enabled: Cartridge reports a replica set's roles with
/// their dependencies added (an application role brings `vshard-storage`),
/// so the operator cannot tell a dependency from a role removed from the
/// spec, and does not disable roles (do that in Cartridge).
pub fn join_edit(
    desired: &[DesiredReplicaset],
    observed: &[ReplicasetInfo],
    resend_settings: bool,
) -> TopologyEdit {
    let joined: std::collections::BTreeSet<&str> = observed
        .iter()
        .flat_map(|r| r.servers.iter().map(|s| s.uuid.as_str()))
        .collect();
    let mut edit = TopologyEdit::default();
    for want in desired {
        let current = observed.iter().find(|r| r.uuid == want.uuid);
        let join_servers: Vec<JoinServer> = want
            .servers
            .iter()
            .filter(|s| !joined.contains(s.uuid.as_str()))
            .cloned()
            .collect();
        let change = match current {
            None if join_servers.is_empty() => continue,
            None => ReplicasetEdit {
                uuid: want.uuid.clone(),
                alias: Some(want.alias.clone()),
                roles: Some(want.roles.clone()),
                weight: want.weight,
                all_rw: want.all_rw,
                vshard_group: want.vshard_group.clone(),
                join_servers,
                failover_priority: None,
            },
            Some(have) => {
                let mut change = ReplicasetEdit {
                    uuid: want.uuid.clone(),
                    join_servers,
                    ..ReplicasetEdit::default()
                };
                if !resend_settings {
                    // Joins only.
                } else if !want.roles.iter().all(|r| have.roles.contains(r)) {
                    change.roles = Some(want.roles.clone());
                }
                if resend_settings && want.weight.is_some() && want.weight != have.weight {
                    change.weight = want.weight;
                }
                if resend_settings && want.all_rw.is_some_and(|rw| rw != have.all_rw) {
                    change.all_rw = want.all_rw;
                }
                if resend_settings
                    && want.vshard_group.is_some()
                    && want.vshard_group != have.vshard_group
                {
                    change.vshard_group.clone_from(&want.vshard_group);
                }
                if change
                    == (ReplicasetEdit {
                        uuid: want.uuid.clone(),
                        ..ReplicasetEdit::default()
                    })
                {
                    continue;
                }
                change
            }
        };
        edit.replicasets.push(change);
    }
    edit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::ServerInfo;

    fn desired(uuid: &str, servers: &[&str]) -> DesiredReplicaset {
        DesiredReplicaset {
            uuid: uuid.into(),
            alias: format!("{uuid}-alias"),
            roles: vec!["vshard-storage".into()],
            weight: Some(1.0),
            all_rw: None,
            vshard_group: None,
            servers: servers
                .iter()
                .map(|s| JoinServer {
                    uri: format!("{s}.svc:3301"),
                    uuid: (*s).into(),
                })
                .collect(),
        }
    }

    fn observed(uuid: &str, servers: &[&str]) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: uuid.into(),
            alias: format!("{uuid}-alias"),
            roles: vec!["vshard-storage".into()],
            weight: Some(1.0),
            servers: servers
                .iter()
                .map(|s| ServerInfo {
                    uuid: (*s).into(),
                    ..ServerInfo::default()
                })
                .collect(),
            ..ReplicasetInfo::default()
        }
    }

    #[test]
    fn a_new_replica_set_joins_with_all_its_servers_in_one_edit() {
        let edit = join_edit(&[desired("rs1", &["a", "b", "c"])], &[], false);
        assert_eq!(edit.replicasets.len(), 1);
        assert_eq!(edit.replicasets[0].join_servers.len(), 3);
        assert_eq!(
            edit.replicasets[0].roles.as_deref(),
            Some(&["vshard-storage".to_string()][..])
        );
    }

    #[test]
    fn a_converged_topology_needs_no_edit() {
        for resend in [false, true] {
            let edit = join_edit(
                &[desired("rs1", &["a", "b"])],
                &[observed("rs1", &["a", "b"])],
                resend,
            );
            assert!(edit.is_empty(), "{edit:?}");
        }
    }

    #[test]
    fn only_missing_servers_and_drifted_settings_are_sent() {
        let mut want = desired("rs1", &["a", "b", "c"]);
        want.weight = Some(0.0);
        let joins_only = join_edit(&[want.clone()], &[observed("rs1", &["a", "b"])], false);
        assert_eq!(
            joins_only.replicasets[0].weight, None,
            "settings only when resent"
        );
        let edit = join_edit(&[want], &[observed("rs1", &["a", "b"])], true);
        let rs = &edit.replicasets[0];
        assert_eq!(
            rs.join_servers
                .iter()
                .map(|s| s.uuid.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(rs.weight, Some(0.0));
        assert_eq!(rs.roles, None);
    }

    #[test]
    fn an_empty_replica_set_is_not_created() {
        assert!(join_edit(&[desired("rs1", &[])], &[], true).is_empty());
    }
}
