//! What Cartridge says about a Role in one pass, and whether it counts as
//! evidence.
//!
//! Real Cartridge answers `admin_get_replicasets` with `[]` from an
//! instance its membership has not reached, and with the whole cluster
//! (proxied) from one that is not a member at all; a console may time out,
//! refuse, or (misrouted) describe another cluster. None of that may be
//! read as "this replica set is gone". So an answer is evidence only when
//! its source is a member Cartridge itself reports as configured and
//! healthy, and it knows every replica set the Role's status records as
//! joined ([`judge`]). Anything else is [`CartridgeView::Unknown`]:
//! nothing is destroyed on it.

use std::fmt;
use std::sync::Arc;

use crate::api::role::{RemovalStage, ReplicasetStatus};
use crate::topology::{ReplicasetInfo, Topology};

/// What the pass knows of Cartridge.
#[derive(Clone)]
pub(crate) enum CartridgeView {
    /// Nothing in this pass needed Cartridge.
    NotAsked,
    /// The Cluster reports no bootstrap yet. A hint, not evidence: it
    /// lets the operator skip Cartridge for replica sets that never
    /// joined, and nothing else.
    NotBootstrapped,
    /// Asked, and no answer could be trusted; why, per source.
    Unknown(String),
    /// A verified member answered.
    Answered(Answer),
}

impl fmt::Debug for CartridgeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAsked => f.write_str("NotAsked"),
            Self::NotBootstrapped => f.write_str("NotBootstrapped"),
            Self::Unknown(why) => f.debug_tuple("Unknown").field(why).finish(),
            Self::Answered(a) => f
                .debug_struct("Answered")
                .field("source", &a.source)
                .field("replicasets", &a.replicasets)
                .finish(),
        }
    }
}

impl CartridgeView {
    /// The verified answer, if there is one.
    pub(crate) fn answer(&self) -> Option<&Answer> {
        match self {
            Self::Answered(a) => Some(a),
            _ => None,
        }
    }

    /// Why there is no verified answer (for wait messages).
    pub(crate) fn why_unknown(&self) -> String {
        match self {
            Self::NotAsked => "Cartridge was not asked".into(),
            Self::NotBootstrapped => "the Cluster reports no bootstrap".into(),
            Self::Unknown(why) => why.clone(),
            Self::Answered(a) => format!("{} answered", a.source),
        }
    }
}

/// An answer from a verified member, with the client that asked it (edits
/// go through the same member).
#[derive(Clone)]
pub(crate) struct Answer {
    /// The pod whose console answered.
    pub source: String,
    /// Every replica set it reports.
    pub replicasets: Vec<ReplicasetInfo>,
    /// The console it answered on.
    pub client: Arc<dyn Topology>,
}

impl Answer {
    /// The replica set with this UUID.
    pub(crate) fn replicaset(&self, uuid: &str) -> Option<&ReplicasetInfo> {
        self.replicasets.iter().find(|r| r.uuid == uuid)
    }
}

/// Why an answer is not evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Distrust {
    /// `[]`: the source has not been reached by membership (or knows of no
    /// cluster); from a bootstrapped cluster this says nothing.
    Empty,
    /// The source does not report itself among the servers: it is not a
    /// member (Cartridge proxies the call) or describes another cluster.
    NotAMember,
    /// The source's server sits in a replica set whose UUID is not the
    /// one its StatefulSet gives: another cluster's view.
    Stranger,
    /// The source reports itself unhealthy.
    Unhealthy,
    /// The source does not know a replica set the Role joined.
    MissingJoined(String),
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("answered []"),
            Self::NotAMember => f.write_str("is not a member of the topology it reports"),
            Self::Stranger => f.write_str("describes another cluster"),
            Self::Unhealthy => f.write_str("reports itself unhealthy"),
            Self::MissingJoined(alias) => write!(f, "does not know joined replica set {alias}"),
        }
    }
}

/// The replica sets the Role's status records as joined and not on their
/// way out: `(uuid, name)`. A verified answer must know each of them.
pub(crate) fn joined(records: &[ReplicasetStatus]) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r.joined > 0 && r.removal != Some(RemovalStage::Expelling))
        .filter_map(|r| Some((r.uuid.clone()?, r.name.clone())))
        .collect()
}

/// Whether `answer`, given by pod `source`, is evidence about a Role that
/// joined `joined` (`(uuid, name)` pairs). `expected` is the replica set
/// UUID the source's own StatefulSet gives it, when known: deterministic
/// UUIDs name the namespace and the cluster, so no other cluster's view
/// carries it.
pub(crate) fn judge(
    source: &str,
    expected: Option<&str>,
    answer: &[ReplicasetInfo],
    joined: &[(String, String)],
) -> Result<(), Distrust> {
    if answer.is_empty() {
        return Err(Distrust::Empty);
    }
    let (home, me) = answer
        .iter()
        .flat_map(|r| r.servers.iter().map(move |s| (r, s)))
        .find(|(_, s)| s.alias == source)
        .ok_or(Distrust::NotAMember)?;
    if expected.is_some_and(|uuid| uuid != home.uuid) {
        return Err(Distrust::Stranger);
    }
    if !me.healthy {
        return Err(Distrust::Unhealthy);
    }
    for (uuid, name) in joined {
        if !answer.iter().any(|r| &r.uuid == uuid) {
            return Err(Distrust::MissingJoined(name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::ServerInfo;

    fn rs(uuid: &str, servers: &[(&str, bool)]) -> ReplicasetInfo {
        ReplicasetInfo {
            uuid: uuid.into(),
            alias: format!("alias-{uuid}"),
            servers: servers
                .iter()
                .map(|(alias, healthy)| ServerInfo {
                    uuid: format!("u-{alias}"),
                    alias: (*alias).into(),
                    healthy: *healthy,
                    ..ServerInfo::default()
                })
                .collect(),
            ..ReplicasetInfo::default()
        }
    }

    /// Source, answer, joined replica sets, verdict.
    type JudgeCase = (
        &'static str,
        Vec<ReplicasetInfo>,
        Vec<(String, String)>,
        Result<(), Distrust>,
    );

    fn joined_rs(uuid: &str) -> (String, String) {
        (uuid.into(), format!("alias-{uuid}"))
    }

    #[test]
    fn answers_are_judged() {
        let healthy = vec![
            rs("a", &[("p0", true), ("p1", true)]),
            rs("b", &[("q0", true)]),
        ];
        let cases: Vec<JudgeCase> = vec![
            (
                "p0",
                healthy.clone(),
                vec![joined_rs("a"), joined_rs("b")],
                Ok(()),
            ),
            (
                "q0",
                healthy.clone(),
                vec![joined_rs("a")],
                Err(Distrust::Stranger),
            ),
            ("p0", healthy.clone(), vec![], Ok(())),
            ("p0", vec![], vec![], Err(Distrust::Empty)),
            ("p0", vec![], vec![joined_rs("a")], Err(Distrust::Empty)),
            // A new pod that is not a member: Cartridge proxies the call.
            (
                "new-0",
                healthy.clone(),
                vec![joined_rs("a")],
                Err(Distrust::NotAMember),
            ),
            (
                "p1",
                vec![rs("a", &[("p0", true), ("p1", false)])],
                vec![],
                Err(Distrust::Unhealthy),
            ),
            // Another cluster's view, or a stale one.
            (
                "p0",
                vec![rs("a", &[("p0", true)])],
                vec![joined_rs("a"), joined_rs("b")],
                Err(Distrust::MissingJoined("alias-b".into())),
            ),
        ];
        for (source, answer, joined, want) in cases {
            // p* pods belong to replica set a, q* to b's StatefulSet "c".
            let expected = if source.starts_with('q') { "c" } else { "a" };
            assert_eq!(
                judge(source, Some(expected), &answer, &joined),
                want,
                "{source} {answer:?} {joined:?}"
            );
        }
    }

    #[test]
    fn replica_sets_on_their_way_out_need_not_be_known() {
        let record = |name: &str, joined: i32, removal: Option<RemovalStage>| ReplicasetStatus {
            name: name.into(),
            uuid: Some(format!("uuid-{name}")),
            joined,
            removal,
            ..ReplicasetStatus::default()
        };
        let records = vec![
            record("a", 2, None),
            record("b", 2, Some(RemovalStage::Draining)),
            record("c", 2, Some(RemovalStage::Expelling)),
            record("d", 0, None),
        ];
        let names: Vec<String> = joined(&records).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, vec!["a", "b"]);
    }
}
