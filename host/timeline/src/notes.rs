//! The notes of the Events the operator writes during an update, and their
//! parsers. These strings are a contract between the Role controller (which
//! writes them) and the timeline tools (which read them back), so both use
//! the functions here.
//!
//! The Events' reasons are `PodDeleted`, `MasterSwitched`
//! and `UpdateStep` (the API crate's `Reason`).
//!
//! Names of pods and StatefulSets are DNS names (no spaces), which is what
//! makes the formats unambiguous. An unknown revision or master is written
//! as `UNKNOWN` (`?`) and read back as an empty string.

/// How an unknown (empty) revision or master is written in a note.
pub(crate) const UNKNOWN: &str = "?";

const DELETED_PREFIX: &str = "deleted pod ";
const DELETED_OF: &str = " of replica set ";
const DELETED_REVISION: &str = " (revision ";
const ARROW: &str = " -> ";
const SWITCHED_PREFIX: &str = "replica set ";
const SWITCHED_MASTER: &str = ": master ";

/// A parsed `PodDeleted` note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDeleted {
    /// The deleted pod.
    pub pod: String,
    /// Its replica set (StatefulSet name).
    pub replicaset: String,
    /// The revision it ran (empty when unknown).
    pub old_revision: String,
    /// The revision it is deleted for (empty when unknown).
    pub new_revision: String,
}

/// A parsed `MasterSwitched` note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterSwitched {
    /// The replica set (StatefulSet name).
    pub replicaset: String,
    /// The previous master's pod (empty when unknown).
    pub old: String,
    /// The new master's pod.
    pub new: String,
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { UNKNOWN } else { s }
}

fn from_unknown(s: &str) -> String {
    if s == UNKNOWN {
        String::new()
    } else {
        s.to_string()
    }
}

/// A name in a note must be one word: a name with a space would make the
/// note ambiguous, so such a note is not ours.
fn word(s: &str) -> Option<&str> {
    (!s.is_empty() && !s.contains(char::is_whitespace)).then_some(s)
}

/// A revision or an old master may be unknown: written as [`UNKNOWN`], or
/// (by a writer that does not use these functions) left empty.
fn maybe_word(s: &str) -> Option<String> {
    (!s.contains(char::is_whitespace)).then(|| from_unknown(s))
}

/// `deleted pod <pod> of replica set <rs> (revision <old> -> <new>)`.
pub fn pod_deleted_note(
    pod: &str,
    replicaset: &str,
    old_revision: &str,
    new_revision: &str,
) -> String {
    format!(
        "{DELETED_PREFIX}{pod}{DELETED_OF}{replicaset}{DELETED_REVISION}{}{ARROW}{})",
        or_unknown(old_revision),
        or_unknown(new_revision)
    )
}

/// Parses a note written by [`pod_deleted_note`]; `None` for anything else.
pub(crate) fn parse_pod_deleted_note(note: &str) -> Option<PodDeleted> {
    let rest = note.trim().strip_prefix(DELETED_PREFIX)?;
    let (pod, rest) = rest.split_once(DELETED_OF)?;
    let (replicaset, rest) = rest.split_once(DELETED_REVISION)?;
    let (old, new) = rest.strip_suffix(')')?.split_once(ARROW)?;
    Some(PodDeleted {
        pod: word(pod)?.to_string(),
        replicaset: word(replicaset)?.to_string(),
        old_revision: maybe_word(old)?,
        new_revision: maybe_word(new)?,
    })
}

/// `replica set <rs>: master <old> -> <new>`.
pub fn master_switched_note(replicaset: &str, old: &str, new: &str) -> String {
    format!(
        "{SWITCHED_PREFIX}{replicaset}{SWITCHED_MASTER}{}{ARROW}{}",
        or_unknown(old),
        or_unknown(new)
    )
}

/// Parses a note written by [`master_switched_note`]; `None` for anything
/// else (including a note without a new master).
pub(crate) fn parse_master_switched_note(note: &str) -> Option<MasterSwitched> {
    let rest = note.trim().strip_prefix(SWITCHED_PREFIX)?;
    let (replicaset, rest) = rest.split_once(SWITCHED_MASTER)?;
    let (old, new) = rest.split_once(ARROW)?;
    let new = from_unknown(word(new)?);
    if new.is_empty() {
        return None;
    }
    Some(MasterSwitched {
        replicaset: word(replicaset)?.to_string(),
        old: maybe_word(old)?,
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_deleted_round_trips() {
        let note = pod_deleted_note(
            "storage-0-7dfd9f68f-1",
            "storage-0-7dfd9f68f",
            "storage-0-7dfd9f68f-6b8c9d7f5",
            "storage-0-7dfd9f68f-58d4b6c7d9",
        );
        assert_eq!(
            note,
            "deleted pod storage-0-7dfd9f68f-1 of replica set storage-0-7dfd9f68f \
             (revision storage-0-7dfd9f68f-6b8c9d7f5 -> storage-0-7dfd9f68f-58d4b6c7d9)"
        );
        assert_eq!(
            parse_pod_deleted_note(&note),
            Some(PodDeleted {
                pod: "storage-0-7dfd9f68f-1".into(),
                replicaset: "storage-0-7dfd9f68f".into(),
                old_revision: "storage-0-7dfd9f68f-6b8c9d7f5".into(),
                new_revision: "storage-0-7dfd9f68f-58d4b6c7d9".into(),
            })
        );
    }

    #[test]
    fn unknown_revisions_round_trip_as_empty() {
        let note = pod_deleted_note("r-0-x-0", "r-0-x", "", "");
        assert_eq!(
            note,
            "deleted pod r-0-x-0 of replica set r-0-x (revision ? -> ?)"
        );
        let parsed = parse_pod_deleted_note(&note).expect("parses");
        assert_eq!(
            (parsed.old_revision.as_str(), parsed.new_revision.as_str()),
            ("", "")
        );
    }

    #[test]
    fn master_switched_round_trips() {
        let note = master_switched_note("storage-0-x", "storage-0-x-0", "storage-0-x-1");
        assert_eq!(
            note,
            "replica set storage-0-x: master storage-0-x-0 -> storage-0-x-1"
        );
        assert_eq!(
            parse_master_switched_note(&note),
            Some(MasterSwitched {
                replicaset: "storage-0-x".into(),
                old: "storage-0-x-0".into(),
                new: "storage-0-x-1".into(),
            })
        );
        let first = master_switched_note("storage-0-x", "", "storage-0-x-1");
        assert_eq!(
            parse_master_switched_note(&first).map(|m| m.old),
            Some(String::new())
        );
    }

    #[test]
    fn other_notes_are_not_parsed() {
        for note in [
            "",
            "deleted pod a of replica set b",
            "deleted pod a b of replica set c (revision 1 -> 2)",
            "deleted pod a of replica set c (revision 1 -> 2",
            "deleted pod a of replica set c (revision 1 x -> 2)",
            "deleted pod  of replica set c (revision 1 -> 2)",
            "replica set a: master b",
            "replica set a: master b -> ?",
            "replica set a b: master c -> d",
            "switched master",
        ] {
            assert_eq!(parse_pod_deleted_note(note), None, "{note:?}");
            assert_eq!(parse_master_switched_note(note), None, "{note:?}");
        }
    }
}
