//! The apiserver's own request counters (`apiserver_request_total` on its
//! `/metrics`): what the operator wrote, without trusting the operator.

use std::collections::BTreeMap;

use test_harness::TestContext;

use super::scenario::Failure;

/// Resources the operator writes (Events aside: the control plane's own
/// controllers write them too).
pub const OPERATOR_RESOURCES: &[&str] = &[
    "clusters",
    "roles",
    "statefulsets",
    "services",
    "pods",
    "persistentvolumeclaims",
    "poddisruptionbudgets",
];

/// The verbs that write, as the apiserver's metrics name them.
pub const WRITE_VERBS: &[&str] = &[
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Write requests per `"VERB resource/subresource"` on
/// [`OPERATOR_RESOURCES`] so far, whatever their answer (a refused apply
/// is a request too). The counters have no namespace label: only meaningful
/// when nothing else writes these resources meanwhile.
pub async fn writes(t: &TestContext) -> Result<BTreeMap<String, f64>, Failure> {
    requests(t, WRITE_VERBS).await
}

/// Requests with a verb in `verbs` per `"VERB resource/subresource"` on
/// [`OPERATOR_RESOURCES`] so far (the apiserver's `apiserver_request_total`).
async fn requests(t: &TestContext, verbs: &[&str]) -> Result<BTreeMap<String, f64>, Failure> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| Failure::Check(e.to_string()))?;
    let text = t.client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let label = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let (verb, resource) = (label("verb"), label("resource"));
        if !verbs.contains(&verb.as_str()) || !OPERATOR_RESOURCES.contains(&resource.as_str()) {
            continue;
        }
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let key = format!("{verb} {resource}/{}", label("subresource"));
        *counts.entry(key).or_insert(0.0) += value;
    }
    Ok(counts)
}

/// `pods/exec` requests so far (the apiserver counts them as CONNECT; only
/// the operator execs into its pods).
pub async fn execs(t: &TestContext) -> Result<f64, Failure> {
    Ok(requests(t, &["CONNECT", "POST", "GET"])
        .await?
        .iter()
        .filter(|(k, _)| k.ends_with("pods/exec"))
        .map(|(_, v)| v)
        .sum())
}

/// GET and LIST requests on [`OPERATOR_RESOURCES`] so far (a WATCH is one
/// long request and not counted).
pub async fn reads(t: &TestContext) -> Result<f64, Failure> {
    Ok(requests(t, &["GET", "LIST"]).await?.values().sum())
}

/// The total of [`writes`].
pub async fn total_writes(t: &TestContext) -> Result<f64, Failure> {
    Ok(writes(t).await?.values().sum())
}
