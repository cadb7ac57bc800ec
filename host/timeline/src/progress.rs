//! The current state of every Role's update, as a plain-text table (for
//! `tarantool-operator progress`). Formatting is a pure function of the
//! Roles, so it is tested without a cluster.

use std::fmt::Write as _;

use crate::api::conditions::{DEGRADED, PROGRESSING};
use crate::api::{Role, RolePhase};

/// One table per Role: each replica set's updated/total pods, ready pods
/// and master, and the update's state and the strategy's last message.
/// Roles are sorted by name; replica sets keep the status's order.
pub fn progress_table(roles: &[Role]) -> String {
    let mut roles: Vec<&Role> = roles.iter().collect();
    roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if roles.is_empty() {
        return "no Roles\n".to_string();
    }
    let mut out = String::new();
    for (i, role) in roles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let name = role.metadata.name.as_deref().unwrap_or("?");
        let status = role.status.clone().unwrap_or_default();
        let strategy = role.spec.update_strategy.name.as_str();
        let _ = writeln!(out, "Role {name} ({:?}, strategy {strategy})", status.phase);
        match &status.update {
            None => {
                let _ = writeln!(out, "  update: none in progress");
            }
            Some(u) => {
                let state = if u.done { "done" } else { "running" };
                let revision = u.revision.as_deref().unwrap_or("?");
                let _ = writeln!(
                    out,
                    "  update: {state}, {}/{} pods on revision {revision} ({})",
                    u.updated_pods, u.total_pods, u.strategy
                );
                let message = u.message.as_deref().unwrap_or("-");
                // One line per message line, so a long multi-line message
                // keeps the table readable.
                for (n, line) in message.lines().enumerate() {
                    let lead = if n == 0 { "  step:   " } else { "          " };
                    let _ = writeln!(out, "{lead}{line}");
                }
            }
        }
        // Scaling, a deletion or a failure: what the Role waits for.
        let waiting = match status.phase {
            RolePhase::Degraded => Some(DEGRADED),
            RolePhase::Scaling | RolePhase::Terminating => Some(PROGRESSING),
            _ => None,
        };
        if let Some(condition) =
            waiting.and_then(|t| status.conditions.iter().find(|c| c.type_ == t))
        {
            let _ = writeln!(out, "  {}: {}", condition.reason, condition.message);
        }
        for rs in &status.replicasets {
            if let Some(drain) = &rs.drain {
                let _ = writeln!(out, "  drain:  {}: {drain}", rs.name);
            }
        }
        let header = ["REPLICASET", "UPDATED", "READY", "MASTER"];
        let rows: Vec<[String; 4]> = status
            .replicasets
            .iter()
            .map(|rs| {
                [
                    rs.name.clone(),
                    format!("{}/{}", rs.updated, rs.replicas),
                    format!("{}/{}", rs.ready, rs.replicas),
                    rs.master.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        if rows.is_empty() {
            let _ = writeln!(out, "  no replica sets in status yet");
            continue;
        }
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut line = |cells: [&str; 4]| {
            let mut l = String::from("  ");
            for (n, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if n + 1 == cells.len() {
                    l.push_str(cell);
                } else {
                    let _ = write!(l, "{cell:<w$}  ");
                }
            }
            let _ = writeln!(out, "{}", l.trim_end());
        };
        line(header);
        for row in &rows {
            line([&row[0], &row[1], &row[2], &row[3]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ReplicasetStatus, RolePhase, RoleStatus, UpdateProgress};

    fn role(name: &str, update: Option<UpdateProgress>) -> Role {
        let spec: crate::api::RoleSpec = serde_json::from_value(serde_json::json!({
            "replicasets": 2,
            "replicasetTemplate": {"replicas": 3, "podTemplate": {}},
            "updateStrategy": {"name": "SwitchMasterUpdate"},
        }))
        .expect("a valid spec");
        let mut role = Role::new(name, spec);
        role.status = Some(RoleStatus {
            phase: RolePhase::Updating,
            replicasets: vec![
                ReplicasetStatus {
                    name: format!("{name}-0-7dfd9f68f"),
                    replicas: 3,
                    ready: 3,
                    updated: 3,
                    master: Some(format!("{name}-0-7dfd9f68f-1")),
                    ..ReplicasetStatus::default()
                },
                ReplicasetStatus {
                    name: format!("{name}-1-7dfd9f68f"),
                    replicas: 3,
                    ready: 2,
                    updated: 1,
                    master: None,
                    ..ReplicasetStatus::default()
                },
            ],
            update,
            ..RoleStatus::default()
        });
        role
    }

    #[test]
    fn a_table_per_role() {
        let update = UpdateProgress {
            strategy: "SwitchMasterUpdate".into(),
            revision: Some("abc".into()),
            updated_pods: 4,
            total_pods: 6,
            message: Some("storage-1-7dfd9f68f: waiting for storage-1-7dfd9f68f-2".into()),
            ..UpdateProgress::default()
        };
        let table = progress_table(&[role("storage", Some(update)), role("router", None)]);
        let expected = "\
Role router (Updating, strategy SwitchMasterUpdate)
  update: none in progress
  REPLICASET          UPDATED  READY  MASTER
  router-0-7dfd9f68f  3/3      3/3    router-0-7dfd9f68f-1
  router-1-7dfd9f68f  1/3      2/3    -

Role storage (Updating, strategy SwitchMasterUpdate)
  update: running, 4/6 pods on revision abc (SwitchMasterUpdate)
  step:   storage-1-7dfd9f68f: waiting for storage-1-7dfd9f68f-2
  REPLICASET           UPDATED  READY  MASTER
  storage-0-7dfd9f68f  3/3      3/3    storage-0-7dfd9f68f-1
  storage-1-7dfd9f68f  1/3      2/3    -
";
        assert_eq!(table, expected);
        assert_eq!(progress_table(&[]), "no Roles\n");
    }

    #[test]
    fn a_scaling_role_says_what_it_waits_for_and_how_its_drain_goes() {
        use crate::api::{DrainProgress, RemovalStage};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
        use k8s_openapi::jiff::Timestamp;
        let mut role = role("storage", None);
        let at = |s: i64| Time(Timestamp::from_second(1_700_000_000 + s).expect("time"));
        if let Some(status) = role.status.as_mut() {
            status.phase = RolePhase::Scaling;
            status.conditions = vec![Condition {
                type_: PROGRESSING.into(),
                status: "True".into(),
                reason: crate::api::Reason::Scaling.as_str().into(),
                message: "waiting for storage-1-7dfd9f68f to drain".into(),
                last_transition_time: at(0),
                observed_generation: None,
            }];
            let start = DrainProgress::observe(None, 1_000, at(0));
            status.replicasets[1].removal = Some(RemovalStage::Draining);
            status.replicasets[1].drain = Some(DrainProgress::observe(Some(&start), 880, at(10)));
        }
        let table = progress_table(&[role]);
        assert!(
            table.contains("  Scaling: waiting for storage-1-7dfd9f68f to drain\n"),
            "{table}"
        );
        assert!(
            table.contains(
                "  drain:  storage-1-7dfd9f68f: 880 buckets left, 12.0/s, about 1m13s to go\n"
            ),
            "{table}"
        );
    }
}
