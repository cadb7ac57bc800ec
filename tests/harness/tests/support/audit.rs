//! The dev cluster's audit log, as the apiserver wrote it: every write and
//! every exec (tests/control-plane/audit-policy.yaml), one JSON object a
//! line, in `logs/audit/` (the current file and its rotated backups).
//!
//! What the operator did, seen from the apiserver rather than from the
//! operator's own word; its replicas tell themselves apart by user agent,
//! `tarantool-operator/<version> (<identity>)`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde::Deserialize;
use test_harness::TestContext;

/// One write or exec the apiserver received.
#[derive(Debug, Clone)]
pub struct Act {
    /// The request's user agent.
    pub user_agent: String,
    /// Its verb (`create`, `patch`, `delete`, ...; `get` or `create` for an exec).
    pub verb: String,
    /// The object's resource (`pods`, `roles`, `events`, `leases`, ...).
    pub resource: String,
    /// The subresource (`exec`, `status`), if any.
    pub subresource: Option<String>,
    /// The object's name, if any.
    pub name: Option<String>,
    /// When the apiserver received it, in microseconds since the epoch.
    pub received_us: i64,
}

impl Act {
    /// Whether a replica whose Lease identity is `identity` sent it.
    pub fn by(&self, identity: &str) -> bool {
        self.user_agent.starts_with("tarantool-operator/")
            && self.user_agent.ends_with(&format!("({identity})"))
    }

    /// Whether it is a write of a Lease (leader election itself, not an
    /// act of the controllers).
    pub fn on_lease(&self) -> bool {
        self.resource == "leases"
    }
}

impl std::fmt::Display for Act {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{} {} at {}us by {:?}",
            self.verb,
            self.resource,
            self.subresource
                .as_deref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default(),
            self.name.as_deref().unwrap_or("-"),
            self.received_us,
            self.user_agent
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(rename = "auditID")]
    audit_id: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    user_agent: String,
    object_ref: Option<ObjectRef>,
    request_received_timestamp: Option<MicroTime>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

/// Every act the audit log holds on objects of the test's namespace, in
/// the order the apiserver received them. A long request (an exec) is
/// logged when its response starts and again when it completes: counted
/// once.
pub fn acts(t: &TestContext) -> Result<Vec<Act>, String> {
    let dir = t.cp.logs_dir().join("audit");
    let files = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "{}: {e} (is the control plane started with its audit policy?)",
            dir.display()
        )
    })?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for file in files {
        let path = file.map_err(|e| e.to_string())?.path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // The last line may be half written.
        for event in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Event>(l).ok())
        {
            let (Some(object), Some(received)) =
                (event.object_ref, event.request_received_timestamp)
            else {
                continue;
            };
            if object.namespace.as_deref() != Some(t.namespace.as_str())
                || !seen.insert(event.audit_id)
            {
                continue;
            }
            out.push(Act {
                user_agent: event.user_agent,
                verb: event.verb,
                resource: object.resource,
                subresource: object.subresource,
                name: object.name,
                received_us: received.0.as_microsecond(),
            });
        }
    }
    out.sort_by_key(|a| a.received_us);
    Ok(out)
}
