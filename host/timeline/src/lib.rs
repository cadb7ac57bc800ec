//! Timelines of rolling updates: what happened to which pod, and when.
//!
//! A run is a list of [`Record`]s, stored as JSON lines (one record per
//! line, see [`read_jsonl`] and [`write_record`]). Records come from two
//! places:
//!
//! - [`record`]: a recorder that watches a namespace while an update runs
//!   (pods and the operator's Events), for an exact picture;
//! - [`from_events`]: a reconstruction after the fact from the Events the
//!   operator left on its Roles and the pods' current state.
//!
//! [`render`] turns a run into an SVG picture, [`progress`] prints the
//! current state of every Role's update as a table, and [`notes`] holds the
//! formats of the Event notes the operator writes and this crate parses.
//!
//! This crate draws and tabulates updates; it knows the API types and the
//! Kubernetes client, not the controllers or the strategy engine.

// Each crate's public face is what other crates use; the rest is pub(crate).
#![warn(unreachable_pub)]

pub mod from_events;
pub mod notes;
pub mod progress;
pub mod record;
pub mod render;

/// The API types, under the name the timeline modules use.
use tarantool_operator_api as api;

use std::fmt;
use std::io::{BufRead, Write};
use std::str::FromStr;

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The label the StatefulSet controller puts on every pod: the revision of
/// the pod template it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// What a [`Record`] says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The pod appeared (or was there when recording started).
    Created,
    /// The pod's Ready condition became True.
    Ready,
    /// The pod's Ready condition stopped being True.
    Unready,
    /// The pod is being deleted (deletionTimestamp set, gone, or the
    /// operator's `PodDeleted` Event).
    Deleted,
    /// The pod became the master of its replica set; `detail` names the
    /// previous one.
    Master,
    /// The update strategy reported a step; `detail` is its message.
    Step,
}

impl Kind {
    /// The name used in the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Ready => "ready",
            Kind::Unready => "unready",
            Kind::Deleted => "deleted",
            Kind::Master => "master",
            Kind::Step => "step",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened during an update run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When it happened (RFC 3339, millisecond precision in the file).
    #[serde(with = "rfc3339_ms")]
    pub t: Timestamp,
    /// What happened.
    pub kind: Kind,
    /// The pod; empty for a `step` that is about no pod in particular.
    #[serde(default)]
    pub pod: String,
    /// The pod's replica set (its StatefulSet's name).
    #[serde(default)]
    pub replicaset: String,
    /// The Role.
    #[serde(default)]
    pub role: String,
    /// The pod's `controller-revision-hash`, when known.
    #[serde(default)]
    pub revision: String,
    /// Free text: the Event's note, the strategy's message, ...
    #[serde(default)]
    pub detail: String,
}

impl Record {
    /// A record with empty text fields, to be filled in.
    pub fn new(t: Timestamp, kind: Kind) -> Record {
        Record {
            t,
            kind,
            pod: String::new(),
            replicaset: String::new(),
            role: String::new(),
            revision: String::new(),
            detail: String::new(),
        }
    }
}

/// Errors of reading, recording and rendering timelines.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// A line of a JSON lines file is not a record.
    #[error("line {line}: {source}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// Why it is not a record.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding a record failed (it cannot, with these types; kept for
    /// honesty rather than an unwrap).
    #[error("encoding a record: {0}")]
    Encode(#[source] serde_json::Error),
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A watch failed for good.
    #[error("watch of {what}: {message}")]
    Watch {
        /// What was watched.
        what: &'static str,
        /// The watcher's error.
        message: String,
    },
}

/// Reads records from JSON lines; blank lines are skipped. The records are
/// returned in file order (see [`sort_records`]).
pub fn read_jsonl(reader: impl BufRead) -> Result<Vec<Record>, TimelineError> {
    let mut records = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| TimelineError::Parse {
            line: i + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Appends one record as a JSON line and flushes, so that a recorder that is
/// killed leaves every record it saw in the file.
pub fn write_record(mut writer: impl Write, record: &Record) -> Result<(), TimelineError> {
    let line = serde_json::to_string(record).map_err(TimelineError::Encode)?;
    writer.write_all(line.as_bytes())?;
    writer.write_all(b"\n")?;
    writer.flush()?;
    Ok(())
}

/// Sorts records by time; records with equal times keep their order (the
/// order they were observed in).
pub fn sort_records(records: &mut [Record]) {
    records.sort_by_key(|r| r.t);
}

/// Formats a timestamp as RFC 3339 in UTC with exactly three fractional
/// digits, e.g. `2025-03-01T10:00:01.250Z`.
pub(crate) fn format_time(t: Timestamp) -> String {
    // jiff truncates to the precision asked for; always three digits keeps
    // the file's lines aligned and easy to compare.
    format!("{t:.3}")
}

/// Parses an RFC 3339 timestamp (any precision, any offset).
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    Timestamp::from_str(s).ok()
}

/// Seconds from `from` to `to` (negative when `to` is earlier).
pub(crate) fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    let d = to.as_duration().saturating_sub(from.as_duration());
    d.as_secs_f64()
}

mod rfc3339_ms {
    use k8s_openapi::jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json_lines() {
        let t = parse_time("2025-03-01T10:00:01.25+01:00").expect("valid time");
        let mut r = Record::new(t, Kind::Deleted);
        r.pod = "storage-0-7dfd9f68f-1".into();
        r.detail = "quote \" and newline\n".into();
        let mut buf = Vec::new();
        write_record(&mut buf, &r).expect("writes");
        let text = String::from_utf8(buf.clone()).expect("utf-8");
        assert!(
            text.starts_with(r#"{"t":"2025-03-01T09:00:01.250Z","kind":"deleted""#),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
        let back = read_jsonl(&buf[..]).expect("reads");
        assert_eq!(back, vec![r]);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let input = "\n{\"t\":\"2025-03-01T10:00:00Z\",\"kind\":\"step\"}\n{\"t\":\"yesterday\",\"kind\":\"step\"}\n";
        match read_jsonl(input.as_bytes()) {
            Err(TimelineError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seconds_between_is_signed() {
        let a = parse_time("2025-03-01T10:00:00Z").expect("time");
        let b = parse_time("2025-03-01T10:00:01.5Z").expect("time");
        assert_eq!(seconds_between(a, b), 1.5);
        assert_eq!(seconds_between(b, a), -1.5);
    }
}
