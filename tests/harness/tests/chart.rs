//! The Helm chart (`charts/tarantool-operator`) against the real apiserver:
//! `helm install` into a fresh namespace, then, acting as the chart's
//! ServiceAccount (a TokenRequest token, no admin identity), every permission
//! the operator needs is allowed with exactly the verbs the chart grants, and
//! what it must not have is denied; `helm uninstall` leaves none of the
//! release's objects behind except the CRDs (Helm never deletes those).
//!
//! The Deployment's pods are kwok pods: they turn Running and Ready without
//! running the image, which is all `helm install --wait` needs here.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Client, Resource};
use test_harness::{Error, TestContext, run};

/// Any failure of these tests, with what was being checked.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Harness(#[from] Error),
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Check(String),
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(what()))
    }
}

/// Every verb a resource can be asked for; what the chart does not grant
/// must be denied.
const ALL_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// One RBAC rule the operator needs: (API group, resource, subresource, verbs).
type Rule = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

/// The operator's permissions in the namespaces it watches: the contract of
/// charts/tarantool-operator/templates/_rules.tpl (each rule's reason is
/// written there).
const OPERATOR_RULES: &[Rule] = &[
    ("tarantool.io", "clusters", "", &["get", "list", "watch"]),
    (
        "tarantool.io",
        "roles",
        "",
        &["get", "list", "watch", "patch"],
    ),
    ("tarantool.io", "clusters", "status", &["patch"]),
    ("tarantool.io", "roles", "status", &["patch"]),
    ("tarantool.io", "clusters", "finalizers", &["update"]),
    ("tarantool.io", "roles", "finalizers", &["update"]),
    (
        "apps",
        "statefulsets",
        "",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "",
        "services",
        "",
        &["get", "list", "watch", "create", "patch"],
    ),
    (
        "policy",
        "poddisruptionbudgets",
        "",
        &["list", "watch", "create", "patch", "delete"],
    ),
    ("", "pods", "", &["get", "list", "watch", "delete"]),
    ("", "pods", "exec", &["create", "get"]),
    ("", "persistentvolumeclaims", "", &["list", "delete"]),
    ("", "secrets", "", &["get"]),
    ("", "configmaps", "", &["get", "list", "watch"]),
    ("", "events", "", &["create", "patch"]),
    ("events.k8s.io", "events", "", &["create", "patch"]),
];

/// Leader election, in the release namespace only.
const LEASE_RULE: Rule = (
    "coordination.k8s.io",
    "leases",
    "",
    &["get", "create", "update", "patch"],
);

/// Things the operator must never be able to do, wherever it runs:
/// (namespace or None for cluster scope, group, resource, subresource, verb).
const FORBIDDEN: &[(Option<&str>, &str, &str, &str, &str)] = &[
    (Some("@release"), "", "secrets", "", "list"),
    (Some("@release"), "", "secrets", "", "watch"),
    (None, "", "nodes", "", "list"),
    (None, "", "namespaces", "", "list"),
    (
        None,
        "rbac.authorization.k8s.io",
        "clusterroles",
        "",
        "create",
    ),
    (
        None,
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "",
        "create",
    ),
    (
        Some("@release"),
        "rbac.authorization.k8s.io",
        "roles",
        "",
        "create",
    ),
    (
        None,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "",
        "create",
    ),
    (Some("@release"), "", "serviceaccounts", "token", "create"),
    (Some("@release"), "", "pods", "", "create"),
    (Some("@release"), "tarantool.io", "roles", "", "create"),
    (Some("@release"), "tarantool.io", "clusters", "", "delete"),
    (Some("@release"), "", "configmaps", "", "update"),
    (Some("@release"), "apps", "deployments", "", "get"),
];

/// A namespace where nothing of the release is bound (need not exist:
/// SelfSubjectAccessReview evaluates RBAC, not existence).
const ELSEWHERE: &str = "chart-test-elsewhere";

fn repo_path(rel: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
        .display()
        .to_string()
}

/// `helm install RELEASE charts/tarantool-operator` into the test namespace,
/// with an image that does not exist (kwok never pulls it) and `extra`
/// `--set` values; waits until the Deployment is available.
async fn install(t: &TestContext, release: &str, extra: &[&str]) -> Result<(), Failure> {
    let chart = repo_path("charts/tarantool-operator");
    let mut args = vec![
        "install",
        release,
        chart.as_str(),
        "--set",
        "image.repository=example.invalid/tarantool-operator",
        "--set",
        "image.tag=chart-test",
        "--wait",
        "--timeout",
        "3m",
    ];
    for value in extra {
        args.extend(["--set", *value]);
    }
    t.helm(&args).await?;
    Ok(())
}

/// Asks the apiserver, as `client`, whether it may do `verb` on the resource.
async fn allowed(
    client: &Client,
    namespace: Option<&str>,
    group: &str,
    resource: &str,
    subresource: &str,
    verb: &str,
) -> Result<bool, Failure> {
    allowed_on(
        client,
        ResourceAttributes {
            namespace: namespace.map(str::to_string),
            group: Some(group.to_string()),
            resource: Some(resource.to_string()),
            subresource: (!subresource.is_empty()).then(|| subresource.to_string()),
            verb: Some(verb.to_string()),
            ..ResourceAttributes::default()
        },
    )
    .await
}

/// Asks the apiserver, as `client`, whether it may do what `attributes` say.
async fn allowed_on(client: &Client, attributes: ResourceAttributes) -> Result<bool, Failure> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(attributes),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

fn describe(namespace: Option<&str>, group: &str, resource: &str, sub: &str, verb: &str) -> String {
    let group = if group.is_empty() { "core" } else { group };
    let sub = if sub.is_empty() {
        String::new()
    } else {
        format!("/{sub}")
    };
    format!(
        "{verb} {group}/{resource}{sub} in {}",
        namespace.unwrap_or("(cluster scope)")
    )
}

/// Checks a rule in `namespace`: with `granted`, exactly its verbs are
/// allowed and every other verb denied; without, every verb is denied.
/// Returns one line per mismatch.
async fn check_rule(
    client: &Client,
    namespace: &str,
    (group, resource, sub, verbs): Rule,
    granted: bool,
) -> Result<Vec<String>, Failure> {
    let mut problems = Vec::new();
    for verb in ALL_VERBS {
        let expected = granted && verbs.contains(verb);
        let got = allowed(client, Some(namespace), group, resource, sub, verb).await?;
        if got != expected {
            problems.push(format!(
                "{}: {}",
                describe(Some(namespace), group, resource, sub, verb),
                if got {
                    "allowed, should be denied"
                } else {
                    "denied, should be allowed"
                }
            ));
        }
    }
    Ok(problems)
}

/// What must be denied in every install.
async fn check_forbidden(client: &Client, release_ns: &str) -> Result<Vec<String>, Failure> {
    let mut problems = Vec::new();
    for &(ns, group, resource, sub, verb) in FORBIDDEN {
        let ns = ns.map(|n| if n == "@release" { release_ns } else { n });
        if allowed(client, ns, group, resource, sub, verb).await? {
            problems.push(format!(
                "{}: allowed, must be denied",
                describe(ns, group, resource, sub, verb)
            ));
        }
    }
    Ok(problems)
}

/// A client acting as the release's ServiceAccount; checks that the
/// apiserver really sees it as that ServiceAccount (not as the admin).
async fn operator_client(t: &TestContext, service_account: &str) -> Result<Client, Failure> {
    let client =
        t.cp.service_account_client(&t.namespace, service_account)
            .await?;
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let user = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .unwrap_or_default();
    let expected = format!("system:serviceaccount:{}:{service_account}", t.namespace);
    check(user == expected, || {
        format!("the token authenticates as {user:?}, expected {expected:?}")
    })?;
    Ok(client)
}

fn by_label(release: &str) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/instance={release}"))
}

fn names<K: Resource>(items: impl IntoIterator<Item = K>) -> Vec<String> {
    let mut names: Vec<String> = items
        .into_iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    names.sort();
    names
}

/// The release's objects in the test namespace, by kind, found by the
/// standard `app.kubernetes.io/instance` label (so an object without the
/// chart's labels shows up as missing).
async fn namespaced_objects(
    t: &TestContext,
    release: &str,
) -> Result<BTreeMap<&'static str, Vec<String>>, Failure> {
    let lp = by_label(release);
    Ok(BTreeMap::from([
        (
            "ServiceAccount",
            names(t.api::<ServiceAccount>().list(&lp).await?),
        ),
        ("Role", names(t.api::<Role>().list(&lp).await?)),
        (
            "RoleBinding",
            names(t.api::<RoleBinding>().list(&lp).await?),
        ),
        ("Deployment", names(t.api::<Deployment>().list(&lp).await?)),
        ("Service", names(t.api::<Service>().list(&lp).await?)),
        (
            "PodDisruptionBudget",
            names(t.api::<PodDisruptionBudget>().list(&lp).await?),
        ),
        (
            "NetworkPolicy",
            names(t.api::<NetworkPolicy>().list(&lp).await?),
        ),
    ]))
}

/// ClusterRoles and ClusterRoleBindings of a release installed in `namespace`
/// (their names start with the namespace; other tests' releases may carry
/// the same instance label).
async fn cluster_objects(
    client: &Client,
    release: &str,
    namespace: &str,
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let lp = by_label(release);
    let mine = |names: Vec<String>| -> Vec<String> {
        names
            .into_iter()
            .filter(|n| n.starts_with(&format!("{namespace}-")))
            .collect()
    };
    let roles = mine(names(
        Api::<ClusterRole>::all(client.clone()).list(&lp).await?,
    ));
    let bindings = mine(names(
        Api::<ClusterRoleBinding>::all(client.clone())
            .list(&lp)
            .await?,
    ));
    Ok((roles, bindings))
}

fn container_of(deployment: &Deployment) -> Result<(PodSpec, Container), Failure> {
    let pod = deployment
        .spec
        .template
        .spec
        .clone()
        .ok_or_else(|| Failure::Check("the Deployment has no pod spec".into()))?;
    let container = pod
        .containers
        .first()
        .cloned()
        .ok_or_else(|| Failure::Check("the Deployment has no container".into()))?;
    Ok((pod, container))
}

/// The Deployment as the chart promises it: `replicas`, the operator's
/// arguments, a hardened pod, probes, the downward API and the cache dir.
fn check_deployment(
    deployment: &Deployment,
    service_account: &str,
    namespace: &str,
    watch_namespace: Option<&str>,
    want_replicas: i32,
) -> Result<(), Failure> {
    let replicas = deployment.spec.replicas;
    check(replicas == Some(want_replicas), || {
        format!("replicas {replicas:?}")
    })?;
    let (pod, c) = container_of(deployment)?;
    check(
        pod.service_account_name.as_deref() == Some(service_account),
        || format!("serviceAccountName {:?}", pod.service_account_name),
    )?;
    check(
        c.image.as_deref() == Some("example.invalid/tarantool-operator:chart-test"),
        || format!("image {:?}", c.image),
    )?;

    let mut expected = vec![
        "run".to_string(),
        "--leader-elect".into(),
        format!("--lease-namespace={namespace}"),
    ];
    if let Some(ns) = watch_namespace {
        expected.push(format!("--namespace={ns}"));
    }
    expected.extend([
        "--metrics-addr=0.0.0.0:8080".into(),
        "--health-addr=0.0.0.0:8081".into(),
        "--log-format=json".into(),
        "--log-level=info".into(),
        "--cache-dir=/tmp/cache".into(),
    ]);
    let args = c.args.clone().unwrap_or_default();
    check(args == expected, || {
        format!("args {args:?}, expected {expected:?}")
    })?;

    let psc = pod.security_context.clone().unwrap_or_default();
    check(psc.run_as_non_root == Some(true), || format!("pod {psc:?}"))?;
    check(psc.run_as_user == Some(65532), || format!("pod {psc:?}"))?;
    let sc = c.security_context.clone().unwrap_or_default();
    let hardened = sc.run_as_non_root == Some(true)
        && sc.run_as_user == Some(65532)
        && sc.read_only_root_filesystem == Some(true)
        && sc.allow_privilege_escalation == Some(false)
        && sc
            .capabilities
            .as_ref()
            .and_then(|c| c.drop.clone())
            .is_some_and(|d| d == ["ALL"])
        && sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) == Some("RuntimeDefault");
    check(hardened, || format!("container securityContext {sc:?}"))?;

    let resources = c.resources.clone().unwrap_or_default();
    for (what, list) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let list = list.clone().unwrap_or_default();
        check(
            list.contains_key("cpu") && list.contains_key("memory"),
            || format!("resources.{what} {list:?}"),
        )?;
    }

    let port = |name: &str| {
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
    };
    check(port("metrics") == Some(8080), || {
        format!("ports {:?}", c.ports)
    })?;
    check(port("health") == Some(8081), || {
        format!("ports {:?}", c.ports)
    })?;
    for (what, probe, path) in [
        ("liveness", &c.liveness_probe, "/healthz"),
        ("readiness", &c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().and_then(|p| p.http_get.clone());
        let ok = get.as_ref().is_some_and(|g| {
            g.path.as_deref() == Some(path)
                && matches!(&g.port,
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) if s == "health")
        });
        check(ok, || format!("{what} probe {get:?}"))?;
    }

    let env = c.env.clone().unwrap_or_default();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let from = env
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.clone());
        check(from.as_deref() == Some(field), || {
            format!("env {name}: {from:?}")
        })?;
    }

    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/tmp")
        .map(|m| m.name.clone());
    let empty_dir = pod
        .volumes
        .iter()
        .flatten()
        .any(|v| Some(&v.name) == mount.as_ref() && v.empty_dir.is_some());
    check(empty_dir, || {
        format!(
            "/tmp is not an emptyDir: mounts {:?}, volumes {:?}",
            c.volume_mounts, pod.volumes
        )
    })?;
    Ok(())
}

/// The metrics Service selects the operator's pods on the port named metrics.
fn check_service(service: &Service, deployment: &Deployment) -> Result<(), Failure> {
    let spec = service.spec.clone().unwrap_or_default();
    let port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"));
    check(port.is_some_and(|p| p.port == 8080), || {
        format!("ports {:?}", spec.ports)
    })?;
    let pod_labels = deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.unwrap_or_default();
    check(
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        || format!("selector {selector:?} does not select pods labelled {pod_labels:?}"),
    )
}

/// `helm uninstall` and what must be gone afterwards; the CRDs stay.
async fn uninstall_and_check(
    t: &TestContext,
    release: &str,
    operator: &Client,
) -> Result<(), Failure> {
    t.helm(&["uninstall", release, "--wait", "--timeout", "3m"])
        .await?;
    let left = namespaced_objects(t, release).await?;
    check(left.values().all(Vec::is_empty), || {
        format!("left behind after uninstall: {left:?}")
    })?;
    let (roles, bindings) = cluster_objects(&t.client, release, &t.namespace).await?;
    check(roles.is_empty() && bindings.is_empty(), || {
        format!(
            "left behind after uninstall: ClusterRoles {roles:?}, ClusterRoleBindings {bindings:?}"
        )
    })?;
    // Helm does not delete what it installed from crds/.
    let crds = Api::<CustomResourceDefinition>::all(t.client.clone());
    for name in ["clusters.tarantool.io", "roles.tarantool.io"] {
        check(crds.get_opt(name).await?.is_some(), || {
            format!("CRD {name} was removed by helm uninstall")
        })?;
    }
    // The ServiceAccount is gone, so its token stops authenticating (the
    // apiserver looks ServiceAccounts up through its informer cache, so this
    // takes a moment).
    let reviews = Api::<SelfSubjectReview>::all(operator.clone());
    t.eventually(
        "the operator's token to be rejected after uninstall",
        || async {
            match reviews
                .create(&PostParams::default(), &SelfSubjectReview::default())
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 401 => Ok(Some(())),
                Ok(_) => Ok(None),
                Err(e) => Err(Error::Kube(e)),
            }
        },
    )
    .await?;
    Ok(())
}

/// Runs `body`; if it fails, uninstalls the release anyway (best effort) so
/// that its cluster-scoped RBAC does not outlive the test namespace.
async fn with_cleanup<F>(t: &TestContext, release: &str, body: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), Failure>>,
{
    let outcome = body.await;
    if outcome.is_err() {
        let _ = t
            .helm(&["uninstall", release, "--wait", "--timeout", "1m"])
            .await;
    }
    outcome
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn cluster_wide_install_grants_exactly_what_the_operator_needs() {
    run("chart-cluster-wide", |t| async move {
        let release = "tarantool-operator";
        with_cleanup(&t, release, async {
            install(&t, release, &[]).await?;
            let ns = t.namespace.as_str();
            // The release name contains the chart name: objects are named
            // after the release alone.
            let objects = namespaced_objects(&t, release).await?;
            let expected = BTreeMap::from([
                ("ServiceAccount", vec![release.to_string()]),
                ("Role", vec![format!("{release}-leader-election")]),
                ("RoleBinding", vec![format!("{release}-leader-election")]),
                ("Deployment", vec![release.to_string()]),
                ("Service", vec![format!("{release}-metrics")]),
                // One replica: no PDB (it would only block drains); no
                // NetworkPolicy unless asked.
                ("PodDisruptionBudget", vec![]),
                ("NetworkPolicy", vec![]),
            ]);
            check(objects == expected, || {
                format!("release objects {objects:?}, expected {expected:?}")
            })?;
            let (roles, bindings) = cluster_objects(&t.client, release, ns).await?;
            let cluster_name = vec![format!("{ns}-{release}")];
            check(roles == cluster_name && bindings == cluster_name, || {
                format!("ClusterRoles {roles:?}, ClusterRoleBindings {bindings:?}")
            })?;

            let deployment = t.api::<Deployment>().get(release).await?;
            check_deployment(&deployment, release, ns, None, 1)?;
            let service = t
                .api::<Service>()
                .get(&format!("{release}-metrics"))
                .await?;
            check_service(&service, &deployment)?;

            let operator = operator_client(&t, release).await?;
            let mut problems = Vec::new();
            // Cluster-wide: the same rules in the release namespace and in
            // any other.
            for namespace in [ns, ELSEWHERE] {
                for rule in OPERATOR_RULES {
                    problems.extend(check_rule(&operator, namespace, *rule, true).await?);
                }
            }
            // The Lease only in the release namespace.
            problems.extend(check_rule(&operator, ns, LEASE_RULE, true).await?);
            problems.extend(check_rule(&operator, ELSEWHERE, LEASE_RULE, false).await?);
            problems.extend(check_forbidden(&operator, ns).await?);
            check(problems.is_empty(), || problems.join("\n"))?;

            // Real requests, not only reviews: a list it may do, a read it may not.
            Api::<StatefulSet>::namespaced(operator.clone(), ns)
                .list(&ListParams::default())
                .await?;
            let secret = Api::<Secret>::namespaced(operator.clone(), ns)
                .list(&ListParams::default())
                .await;
            check(
                matches!(secret, Err(kube::Error::Api(ref s)) if s.code == 403),
                || format!("listing Secrets as the operator: {secret:?}"),
            )?;

            // The same identity for a local process: a kubeconfig with the
            // token (how the operator runs with the chart's permissions).
            let token =
                t.cp.service_account_token(ns, release, Duration::from_secs(600))
                    .await?;
            let kubeconfig = std::env::temp_dir().join(format!("{ns}.kubeconfig"));
            t.cp.write_token_kubeconfig(&token, &kubeconfig).await?;
            let whoami = test_harness::output(t.cp.command("kubectl").args([
                "--kubeconfig",
                &kubeconfig.display().to_string(),
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ]))
            .await;
            let _ = std::fs::remove_file(&kubeconfig);
            let whoami = whoami?;
            check(
                whoami == format!("system:serviceaccount:{ns}:{release}"),
                || format!("kubectl with the token kubeconfig is {whoami:?}"),
            )?;

            uninstall_and_check(&t, release, &operator).await
        })
        .await
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn watch_namespace_install_grants_only_that_namespace() {
    run("chart-watch-ns", |t| async move {
        // The operator lives in the test namespace and watches a second one.
        let watched = format!("{}-w", t.namespace);
        let namespaces = Api::<Namespace>::all(t.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(watched.clone()),
                        labels: Some(
                            [(
                                test_harness::NAMESPACE_LABEL.to_string(),
                                "chart-watch-ns".to_string(),
                            )]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await?;
        let release = "scoped";
        let fullname = "scoped-tarantool-operator";
        let outcome = with_cleanup(&t, release, async {
            // Two replicas (a PDB) and the NetworkPolicy: the apiserver
            // accepts what the chart renders for them.
            install(
                &t,
                release,
                &[
                    &format!("watchNamespace={watched}"),
                    "replicaCount=2",
                    "networkPolicy.enabled=true",
                ],
            )
            .await?;
            let ns = t.namespace.as_str();

            // Only the leader-election Role is in the release namespace; the
            // operator's Role and RoleBinding are in the watched one.
            let objects = namespaced_objects(&t, release).await?;
            let expected = BTreeMap::from([
                ("ServiceAccount", vec![fullname.to_string()]),
                ("Role", vec![format!("{fullname}-leader-election")]),
                ("RoleBinding", vec![format!("{fullname}-leader-election")]),
                ("Deployment", vec![fullname.to_string()]),
                ("Service", vec![format!("{fullname}-metrics")]),
                ("PodDisruptionBudget", vec![fullname.to_string()]),
                ("NetworkPolicy", vec![fullname.to_string()]),
            ]);
            check(objects == expected, || {
                format!("release objects {objects:?}, expected {expected:?}")
            })?;
            let lp = by_label(release);
            let in_watched = (
                names(Api::<Role>::namespaced(t.client.clone(), &watched).list(&lp).await?),
                names(
                    Api::<RoleBinding>::namespaced(t.client.clone(), &watched)
                        .list(&lp)
                        .await?,
                ),
            );
            let fullname_only = vec![fullname.to_string()];
            check(
                in_watched == (fullname_only.clone(), fullname_only.clone()),
                || format!("Role, RoleBinding in {watched}: {in_watched:?}"),
            )?;
            let (roles, bindings) = cluster_objects(&t.client, release, ns).await?;
            check(roles.is_empty() && bindings.is_empty(), || {
                format!("watchNamespace set, yet ClusterRoles {roles:?}, ClusterRoleBindings {bindings:?}")
            })?;

            let deployment = t.api::<Deployment>().get(fullname).await?;
            check_deployment(&deployment, fullname, ns, Some(&watched), 2)?;

            let operator = operator_client(&t, fullname).await?;
            let mut problems = Vec::new();
            for rule in OPERATOR_RULES {
                problems.extend(check_rule(&operator, &watched, *rule, true).await?);
                // Neither its own namespace nor any other is watched: every
                // verb of every rule (StatefulSets included) is denied there.
                problems.extend(check_rule(&operator, ns, *rule, false).await?);
                problems.extend(check_rule(&operator, ELSEWHERE, *rule, false).await?);
            }
            problems.extend(check_rule(&operator, ns, LEASE_RULE, true).await?);
            problems.extend(check_rule(&operator, &watched, LEASE_RULE, false).await?);
            problems.extend(check_forbidden(&operator, ns).await?);
            check(problems.is_empty(), || problems.join("\n"))?;

            Api::<StatefulSet>::namespaced(operator.clone(), &watched)
                .list(&ListParams::default())
                .await?;
            let outside = Api::<StatefulSet>::namespaced(operator.clone(), ns)
                .list(&ListParams::default())
                .await;
            check(
                matches!(outside, Err(kube::Error::Api(ref s)) if s.code == 403),
                || format!("listing StatefulSets outside the watched namespace: {outside:?}"),
            )?;

            uninstall_and_check(&t, release, &operator).await?;
            let left = (
                names(Api::<Role>::namespaced(t.client.clone(), &watched).list(&lp).await?),
                names(
                    Api::<RoleBinding>::namespaced(t.client.clone(), &watched)
                        .list(&lp)
                        .await?,
                ),
            );
            check(left.0.is_empty() && left.1.is_empty(), || {
                format!("left behind in {watched}: {left:?}")
            })
        })
        .await;
        if std::env::var_os("HARNESS_KEEP_NAMESPACES").is_none() {
            let _ = namespaces.delete(&watched, &DeleteParams::background()).await;
        }
        outcome
    })
    .await;
}

/// A named object's permission: (namespace or None, group, resource, name,
/// verb, allowed).
type Named = (
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
);

#[tokio::test]
#[ignore = "needs the local control plane: make test-control-plane"]
async fn the_eviction_webhook_install_grants_its_certificate_and_the_denial_mark() {
    run("chart-webhook", |t| async move {
        let release = "tarantool-operator";
        let ns = t.namespace.clone();
        let configuration = format!("{ns}-{release}-evictions");
        let secret = format!("{release}-webhook-tls");
        with_cleanup(&t, release, async {
            install(&t, release, &["webhook.enabled=true"]).await?;
            // The registration: evictions only, never blocking, its CA
            // left to the operator.
            let registered = Api::<ValidatingWebhookConfiguration>::all(t.client.clone())
                .get(&configuration)
                .await?;
            let webhook = registered.webhooks.unwrap_or_default().into_iter().next();
            check(
                webhook.as_ref().is_some_and(|w| {
                    w.failure_policy.as_deref() == Some("Ignore")
                        && w.side_effects == "NoneOnDryRun"
                        && w.client_config.ca_bundle.is_none()
                        && w.client_config.service.as_ref().is_some_and(|s| {
                            s.name == format!("{release}-webhook") && s.namespace == ns
                        })
                        && w.rules.iter().flatten().all(|r| {
                            r.resources.as_deref() == Some(&["pods/eviction".to_string()][..])
                        })
                }),
                || format!("the registration: {webhook:?}"),
            )?;
            let service = t
                .api::<Service>()
                .get(&format!("{release}-webhook"))
                .await?;
            let port = service
                .spec
                .and_then(|s| s.ports)
                .and_then(|p| p.into_iter().next())
                .and_then(|p| p.target_port);
            check(
                port == Some(
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                        "webhook".into(),
                    ),
                ),
                || format!("the webhook Service targets {port:?}"),
            )?;

            let operator = operator_client(&t, release).await?;
            let mut problems = Vec::new();
            // The denial mark, wherever Roles live; nothing else new on pods.
            let pods_with_mark: Rule =
                ("", "pods", "", &["get", "list", "watch", "patch", "delete"]);
            for namespace in [ns.as_str(), ELSEWHERE] {
                problems.extend(check_rule(&operator, namespace, pods_with_mark, true).await?);
            }
            // Its own Secret and its own registration, by name only.
            let named: Vec<Named> = vec![
                (Some("@release"), "", "secrets", "@secret", "get", true),
                (Some("@release"), "", "secrets", "@secret", "update", true),
                (Some("@release"), "", "secrets", "@secret", "delete", false),
                (Some("@release"), "", "secrets", "other", "update", false),
                (Some("@release"), "", "secrets", "", "create", true),
                (Some(ELSEWHERE), "", "secrets", "", "create", false),
                (Some(ELSEWHERE), "", "secrets", "@secret", "update", false),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    "@configuration",
                    "get",
                    true,
                ),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    "@configuration",
                    "patch",
                    true,
                ),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    "@configuration",
                    "delete",
                    false,
                ),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    "other",
                    "patch",
                    false,
                ),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "validatingwebhookconfigurations",
                    "",
                    "list",
                    false,
                ),
                (
                    None,
                    "admissionregistration.k8s.io",
                    "mutatingwebhookconfigurations",
                    "",
                    "create",
                    false,
                ),
            ];
            for (namespace, group, resource, name, verb, expected) in named {
                let namespace = namespace.map(|n| if n == "@release" { ns.as_str() } else { n });
                let name = match name {
                    "@secret" => secret.clone(),
                    "@configuration" => configuration.clone(),
                    other => other.to_string(),
                };
                let got = allowed_on(
                    &operator,
                    ResourceAttributes {
                        namespace: namespace.map(str::to_string),
                        group: Some(group.to_string()),
                        resource: Some(resource.to_string()),
                        name: (!name.is_empty()).then(|| name.clone()),
                        verb: Some(verb.to_string()),
                        ..ResourceAttributes::default()
                    },
                )
                .await?;
                if got != expected {
                    problems.push(format!(
                        "{} {name:?}: {}",
                        describe(namespace, group, resource, "", verb),
                        if got {
                            "allowed, should be denied"
                        } else {
                            "denied, should be allowed"
                        }
                    ));
                }
            }
            problems.extend(check_forbidden(&operator, &ns).await?);
            check(problems.is_empty(), || problems.join("\n"))?;

            uninstall_and_check(&t, release, &operator).await?;
            let left = Api::<ValidatingWebhookConfiguration>::all(t.client.clone())
                .get_opt(&configuration)
                .await?;
            check(left.is_none(), || {
                format!("{configuration} left behind after uninstall")
            })
        })
        .await
    })
    .await;
}
