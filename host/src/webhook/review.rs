//! The HTTP layer of the eviction webhook: reads an AdmissionReview of a
//! `pods/eviction` CREATE, gathers the facts [`decide`] needs from the
//! apiserver (the pod, its Role's status, the other pods of its replica
//! set), and answers; a first denial is written on the pod (see
//! `controller::role::evictions`), which also wakes the Role's controller.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::response::Status;
use kube::runtime::events::{EventType, Recorder};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use super::decision::{Decision, Facts, PodFacts, ReplicasetFacts, decide};
use crate::api::Reason;
use crate::api::labels;
use crate::api::role::Role;
use crate::controller::events;
use crate::controller::members::is_ready;
use crate::controller::metrics::{EvictionLabels, Metrics};
use crate::controller::role::evictions::{DENIED_SINCE, HAND_OVER_UNTIL};

/// What the webhook's handler needs.
pub(crate) struct Reviewer {
    /// A client of this replica (not fenced: standbys serve too).
    pub client: Client,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Events on Roles.
    pub recorder: Recorder,
    /// `--eviction-max-wait-seconds`.
    pub bound: Duration,
}

/// `POST /validate-eviction`.
pub(crate) async fn handle(
    State(reviewer): State<Arc<Reviewer>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(e) => {
            warn!(error = %e, "an admission review without a request");
            return Json(AdmissionResponse::invalid(e.to_string()).into_review());
        }
    };
    Json(reviewer.review(&request).await.into_review())
}

impl Reviewer {
    async fn review(&self, request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
        let response = AdmissionResponse::from(request);
        let is_eviction = request.resource.resource == "pods"
            && request.sub_resource.as_deref() == Some("eviction");
        let (Some(namespace), true) = (request.namespace.as_deref(), is_eviction) else {
            // Registered for evictions only: anything else is not ours.
            return response;
        };
        let pod = request.name.as_str();
        let now = Timestamp::now();
        let (decision, role, found) = match self.facts(namespace, pod, now).await {
            Ok(found) => (decide(&found.facts), found.role, Some(found.pod)),
            Err(e) => {
                warn!(error = %e, namespace, pod, "cannot judge an eviction: admitted");
                (
                    Decision::Admit(super::decision::AdmitReason::Error),
                    None,
                    None,
                )
            }
        };
        self.metrics
            .evictions
            .get_or_create(&EvictionLabels {
                decision: decision.label().to_string(),
                reason: decision.reason().to_string(),
            })
            .inc();
        info!(namespace, pod, decision = decision.label(), reason = decision.reason(), why = %decision, "eviction");
        // A dry run changes nothing (registered `sideEffects:
        // NoneOnDryRun`): no mark, no Event.
        if let (Some(role), Some(found), false) = (role.as_ref(), found.as_ref(), request.dry_run) {
            self.carry_out(&decision, role, found, now).await;
        }
        if decision.allowed() {
            return response;
        }
        let mut denied = response.deny(decision.to_string());
        // 429: `kubectl drain` and the autoscaler retry, as they do when a
        // PodDisruptionBudget holds an eviction back.
        denied.result = Status::failure(&decision.to_string(), "TooManyRequests").with_code(429);
        denied
    }

    /// Marks the first denial on the pod (and the hand-over request for a
    /// master), and reports it.
    async fn carry_out(&self, decision: &Decision, role: &Role, pod: &Pod, now: Timestamp) {
        let annotations = pod.annotations();
        let since = annotations.get(DENIED_SINCE).cloned();
        let mut patch = serde_json::Map::new();
        match decision {
            Decision::Deny(_) | Decision::DenyAndSwitch { .. } => {
                let since = match since {
                    Some(since) => since,
                    None => {
                        patch.insert(DENIED_SINCE.into(), json!(now.to_string()));
                        now.to_string()
                    }
                };
                if matches!(decision, Decision::DenyAndSwitch { .. })
                    && !annotations.contains_key(HAND_OVER_UNTIL)
                {
                    let start = since.parse::<Timestamp>().unwrap_or(now);
                    let bound = SignedDuration::try_from(self.bound).unwrap_or(SignedDuration::MAX);
                    let until = start.checked_add(bound).unwrap_or(Timestamp::MAX);
                    patch.insert(HAND_OVER_UNTIL.into(), json!(until.to_string()));
                }
            }
            Decision::AdmitAfterBound { would } => {
                let note = format!(
                    "eviction of pod {} admitted after waiting {}s (--eviction-max-wait-seconds), although {would}",
                    pod.name_any(),
                    self.bound.as_secs()
                );
                events::publish(
                    &self.recorder,
                    role,
                    EventType::Warning,
                    Reason::EvictionAdmittedAfterWait,
                    note,
                )
                .await;
                return;
            }
            Decision::Admit(_) => return,
        }
        if patch.is_empty() {
            return;
        }
        let first = patch.contains_key(DENIED_SINCE);
        let pods: Api<Pod> =
            Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let body = json!({"metadata": {"annotations": patch}});
        if let Err(e) = pods
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&body),
            )
            .await
        {
            warn!(error = %e, pod = %pod.name_any(), "cannot mark the denied eviction on the pod");
        }
        if first {
            let note = format!(
                "eviction of pod {} denied for now: {decision}",
                pod.name_any()
            );
            events::publish(
                &self.recorder,
                role,
                EventType::Normal,
                Reason::EvictionDeferred,
                note,
            )
            .await;
        }
    }

    /// The facts about an eviction of `namespace/name`.
    async fn facts(
        &self,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<Found, kube::Error> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let unmanaged = |pod: Pod| Found {
            facts: Facts {
                pod: None,
                replicaset: None,
                waited: None,
                bound: self.bound,
            },
            role: None,
            pod,
        };
        let Some(pod) = pods.get_opt(name).await? else {
            return Ok(unmanaged(Pod::default()));
        };
        let labels_of = pod.labels();
        let (Some(role_name), Some(replicaset)) = (
            labels_of.get(labels::ROLE).cloned(),
            labels_of.get(labels::REPLICASET).cloned(),
        ) else {
            return Ok(unmanaged(pod));
        };
        let roles: Api<Role> = Api::namespaced(self.client.clone(), namespace);
        let Some(role) = roles.get_opt(&role_name).await? else {
            return Ok(unmanaged(pod));
        };
        let record = role
            .status
            .as_ref()
            .and_then(|s| s.replicasets.iter().find(|r| r.name == replicaset))
            .cloned();
        let Some(record) = record else {
            return Ok(unmanaged(pod));
        };
        let siblings = pods
            .list(&ListParams::default().labels(&format!("{}={replicaset}", labels::REPLICASET)))
            .await?;
        let others: Vec<&Pod> = siblings
            .items
            .iter()
            .filter(|p| p.name_any() != name)
            .collect();
        let mut unavailable_others: Vec<String> = others
            .iter()
            .filter(|p| !is_ready(p))
            .map(|p| p.name_any())
            .collect();
        let replicas = u32::try_from(record.replicas).unwrap_or(0);
        let missing = usize::try_from(replicas)
            .unwrap_or(0)
            .saturating_sub(others.len() + 1);
        if missing > 0 {
            unavailable_others.push(format!("{missing} missing"));
        }
        let waited = pod
            .annotations()
            .get(DENIED_SINCE)
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map(|since| {
                now.duration_since(since)
                    .try_into()
                    .unwrap_or(Duration::ZERO)
            });
        let facts = Facts {
            pod: Some(PodFacts {
                name: name.to_string(),
                role: role_name,
                replicaset,
                available: is_ready(&pod),
            }),
            replicaset: Some(ReplicasetFacts {
                master: record.master.clone(),
                replicas,
                unavailable_others,
            }),
            waited,
            bound: self.bound,
        };
        Ok(Found {
            facts,
            role: Some(role),
            pod,
        })
    }
}

/// The facts, with the objects they came from.
struct Found {
    facts: Facts,
    role: Option<Role>,
    pod: Pod,
}
