//! Unit tests of the resource types: the article's manifests, the template
//! alias, defaults, serde round trips and the shape of the generated CRDs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use super::*;

const ARTICLE_CLUSTER: &str = include_str!("../../../examples/article/cluster.yaml");
const ARTICLE_ROUTER: &str = include_str!("../../../examples/article/router.yaml");
const ARTICLE_STORAGE: &str = include_str!("../../../examples/article/storage.yaml");

fn role(spec: Value) -> Result<RoleSpec, serde_json::Error> {
    serde_json::from_value(spec)
}

fn pod_spec() -> Value {
    json!({"spec": {"containers": [{"name": "cartridge", "image": "img:1"}]}})
}

#[test]
fn the_article_cluster_reads_as_a_cluster() {
    let c: Cluster = serde_yaml::from_str(ARTICLE_CLUSTER).expect("cluster.yaml");
    assert_eq!(c.metadata.name.as_deref(), Some("tarantool-cluster"));
    assert_eq!(
        c.spec.role_names().collect::<Vec<_>>(),
        ["router", "storage"]
    );
    let failover = c.spec.failover_or_default();
    assert_eq!(failover.mode, FailoverMode::Eventual);
    assert_eq!(failover.state_provider, None);
    assert_eq!(c.spec.vshard.map(|v| v.bootstrap), Some(true));
}

#[test]
fn the_article_router_keeps_its_template_under_vshard() {
    let r: Role = serde_yaml::from_str(ARTICLE_ROUTER).expect("router.yaml");
    assert_eq!(r.spec.replicasets, 1);
    assert!(r.spec.replicaset_template.is_none(), "written under vshard");
    let template = r.spec.replicaset_template().expect("the alias is found");
    assert_eq!(template.replicas, 2);
    let containers = template
        .pod_template
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    assert_eq!(containers.len(), 1);
    assert_eq!(
        containers[0].image.as_deref(),
        Some("tarantool/tarantool-operator-examples-kv:0.0.4")
    );
    let vshard = r.spec.vshard.as_ref().expect("vshard");
    assert_eq!(
        vshard.cluster_roles,
        ["failover-coordinator", "app.roles.router"]
    );
    assert_eq!(r.spec.update_strategy.name, "ClusterPartitionUpdate");
}

#[test]
fn the_storage_example_uses_the_canonical_place() {
    let r: Role = serde_yaml::from_str(ARTICLE_STORAGE).expect("storage.yaml");
    let t = r.spec.replicaset_template.as_ref().expect("canonical");
    assert_eq!(t.volume_claim_templates.len(), 1);
    assert_eq!(r.spec.vshard.as_ref().and_then(|v| v.weight), Some(1.0));
    assert_eq!(
        r.spec
            .update_strategy
            .params
            .get("maxUnavailable")
            .map(String::as_str),
        Some("1")
    );
}

#[test]
fn alias_and_canonical_template_mean_the_same() {
    let canonical = role(json!({"replicasetTemplate": {"replicas": 3, "podTemplate": pod_spec()}}))
        .expect("canonical");
    let alias =
        role(json!({"vshard": {"replicasetTemplate": {"replicas": 3, "podTemplate": pod_spec()}}}))
            .expect("alias");
    assert_eq!(canonical.replicaset_template(), alias.replicaset_template());
    let normalized = alias.clone().normalized();
    assert_eq!(
        normalized.replicaset_template,
        canonical.replicaset_template
    );
    assert_eq!(normalized.vshard.and_then(|v| v.replicaset_template), None);
    assert!(!alias.has_both_templates());
}

#[test]
fn the_canonical_template_wins_when_both_are_set() {
    let both = role(json!({
        "replicasetTemplate": {"replicas": 1, "podTemplate": pod_spec()},
        "vshard": {"replicasetTemplate": {"replicas": 5, "podTemplate": pod_spec()}},
    }))
    .expect("both");
    assert!(both.has_both_templates());
    assert_eq!(both.replicaset_template().map(|t| t.replicas), Some(1));
    let normalized = both.normalized();
    assert_eq!(normalized.replicaset_template.map(|t| t.replicas), Some(1));
    assert!(
        normalized
            .vshard
            .and_then(|v| v.replicaset_template)
            .is_none()
    );
}

#[test]
fn defaults_fill_what_a_minimal_role_leaves_out() {
    let r = role(json!({"replicasetTemplate": {"podTemplate": pod_spec()}})).expect("minimal");
    assert_eq!(r.replicasets, 1);
    assert_eq!(r.replicaset_count(), 1);
    assert_eq!(r.replicaset_template().map(|t| t.replicas), Some(1));
    assert_eq!(r.update_strategy, UpdateStrategy::default());
    assert_eq!(r.update_strategy.name, "SwitchMasterUpdate");
    assert!(!r.update_strategy.is_paused());
    assert!(!r.update_strategy.is_supervised());
    assert_eq!(
        role(json!({"replicasets": -3}))
            .map(|r| r.replicaset_count())
            .ok(),
        Some(0)
    );
}

#[test]
fn defaults_of_a_minimal_cluster() {
    let c: ClusterSpec = serde_json::from_value(json!({})).expect("empty");
    assert!(c.roles.is_empty());
    assert_eq!(c.failover_or_default().mode, FailoverMode::Disabled);
    let v: ClusterVshard = serde_json::from_value(json!({})).expect("vshard");
    assert_eq!(v, ClusterVshard::default());
    assert!(v.bootstrap);
    let r: ConfigMapKeyRef = serde_json::from_value(json!({"name": "s"})).expect("ref");
    assert_eq!(r.key, update_strategy::DEFAULT_COMPONENT_KEY);
}

#[test]
fn the_default_strategy_and_the_examples_name_builtins() {
    use update_strategy::BUILTIN_NAMES;
    assert!(BUILTIN_NAMES.contains(&UpdateStrategy::default().name.as_str()));
    for text in [ARTICLE_ROUTER, ARTICLE_STORAGE] {
        let r: Role = serde_yaml::from_str(text).expect("role");
        assert!(BUILTIN_NAMES.contains(&r.spec.update_strategy.name.as_str()));
    }
}

#[test]
fn strategy_params_must_be_strings() {
    let err = serde_json::from_value::<UpdateStrategy>(
        json!({"name": "OnDelete", "params": {"maxUnavailable": 1}}),
    );
    assert!(err.is_err());
}

#[test]
fn strategy_selector_points_at_the_roles_namespace() {
    let s: UpdateStrategy = serde_json::from_value(json!({
        "name": "Canary", "configMapRef": {"name": "my-strategy"}, "sha256": "ab".repeat(32)
    }))
    .expect("strategy");
    let sel = s.selector("ns1");
    assert_eq!(sel.name, "Canary");
    assert_eq!(
        sel.location,
        Some(update_strategy::ComponentLocation::ConfigMap {
            namespace: "ns1".into(),
            name: "my-strategy".into(),
            key: "strategy.wasm".into(),
        })
    );
    assert_eq!(UpdateStrategy::default().selector("x").location, None);
}

#[test]
fn round_trips_keep_every_field() {
    let role: Role = serde_yaml::from_str(ARTICLE_STORAGE).expect("storage");
    let mut role = role;
    role.status = Some(RoleStatus {
        phase: RolePhase::Updating,
        observed_generation: Some(3),
        ready: Some(RoleStatus::ready_text(1, 2)),
        ready_replicasets: 1,
        updated_replicasets: 0,
        replicasets: vec![ReplicasetStatus {
            name: "storage-0-7dfd9f68f".into(),
            uuid: Some("aaaaaaaa-0000-5000-8000-000000000000".into()),
            replicas: 2,
            ready: 2,
            updated: 1,
            joined: 2,
            master: Some("storage-0-7dfd9f68f-0".into()),
            weight: Some(1.0),
            removal: Some(RemovalStage::Draining),
            drain: Some(DrainProgress::observe(
                None,
                100,
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
            )),
            removed_instances: vec![InstanceRemoval {
                pod: "storage-0-7dfd9f68f-2".into(),
                uuid: "bbbbbbbb-0000-5000-8000-000000000000".into(),
                stage: InstanceStage::Expelling,
            }],
            switch: Some(MasterSwitch {
                from: "storage-0-7dfd9f68f-0".into(),
                to: "storage-0-7dfd9f68f-1".into(),
                requested_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
                writable_at: None,
                write_unavailable_seconds: Some(0.25),
            }),
            statefulset_generation: Some(3),
        }],
        applied_vshard: Some("abc".into()),
        update: Some(UpdateProgress {
            strategy: "SwitchMasterUpdate".into(),
            updated_pods: 1,
            total_pods: 4,
            state: Some("{}".into()),
            ..UpdateProgress::default()
        }),
        conditions: Vec::new(),
    });
    let json = serde_json::to_value(&role).expect("serialize");
    assert_eq!(json["status"]["ready"], "1/2");
    assert_eq!(
        json["status"]["replicasets"][0]["master"],
        "storage-0-7dfd9f68f-0"
    );
    let back: Role = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, role);

    let cluster: Cluster = serde_yaml::from_str(ARTICLE_CLUSTER).expect("cluster");
    let mut cluster = cluster;
    cluster.spec.config =
        serde_json::from_value(json!({"app": {"ttl": 5, "nested": [1, "x"]}})).ok();
    cluster.status = Some(ClusterStatus {
        phase: ClusterPhase::Ready,
        bootstrapped: true,
        leader: Some("router-0-7dfd9f68f-0".into()),
        observed_generation: Some(1),
        applied: Some(AppliedSettings {
            failover: Some("f".into()),
            config: None,
        }),
        conditions: Vec::new(),
    });
    let back: Cluster = serde_json::from_value(serde_json::to_value(&cluster).expect("serialize"))
        .expect("deserialize");
    assert_eq!(back, cluster);
}

#[test]
fn failover_serializes_in_cartridge_words() {
    let f = Failover {
        mode: FailoverMode::Stateful,
        state_provider: Some(StateProvider::Etcd2),
        etcd2_params: Some(Etcd2Params {
            endpoints: vec!["http://etcd:2379".into()],
            prefix: None,
            lock_delay: Some(10.0),
            username: None,
            password_secret_ref: Some(SecretKeyRef {
                name: "etcd".into(),
                key: "password".into(),
            }),
        }),
        fencing_enabled: Some(true),
        ..Failover::default()
    };
    let v = serde_json::to_value(&f).expect("serialize");
    assert_eq!(v["mode"], "stateful");
    assert_eq!(v["stateProvider"], "etcd2");
    assert_eq!(v["etcd2Params"]["lockDelay"], 10.0);
    assert_eq!(v["etcd2Params"]["passwordSecretRef"]["key"], "password");
    assert!(
        v.get("stateboardParams").is_none(),
        "unset fields are omitted: {v}"
    );
}

fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).expect("schema")
}

#[test]
fn crds_have_short_names_columns_and_the_status_subresource() {
    for (crd, short) in [(Cluster::crd(), "tntc"), (Role::crd(), "tntr")] {
        let names = &crd.spec.names;
        assert!(names.short_names.iter().flatten().any(|n| n == short));
        assert_eq!(
            names.categories.as_deref(),
            Some(&["tarantool".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION);
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns.first(), Some(&"Phase"));
        assert_eq!(columns.last(), Some(&"Age"));
    }
    let role_columns: Vec<String> = Role::crd().spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| format!("{}={}", c.name, c.json_path))
        .collect();
    assert!(role_columns.contains(&"Ready=.status.ready".to_string()));
    assert!(role_columns.contains(&"Updated=.status.updatedReplicasets".to_string()));
}

#[test]
fn config_keeps_unknown_fields_and_templates_are_compact() {
    let cluster = schema_of(&Cluster::crd());
    let config = &cluster["properties"]["spec"]["properties"]["config"];
    assert_eq!(config["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(config["type"], "object");

    let role = Role::crd();
    let text = serde_json::to_string(&role).expect("json");
    // The apiserver stores objects up to 1.5 MiB, and a client-side
    // `kubectl apply` keeps the whole object in a 256 KiB annotation.
    assert!(text.len() < 256 * 1024, "Role CRD is {} bytes", text.len());
    let schema = schema_of(&role);
    let pod = &schema["properties"]["spec"]["properties"]["replicasetTemplate"]["properties"]["podTemplate"];
    let containers = &pod["properties"]["spec"]["properties"]["containers"];
    assert_eq!(containers["type"], "array", "the pod schema is kept");
    assert!(
        containers.get("description").is_none(),
        "but not its API docs"
    );
}

#[test]
fn schemas_are_structural_enough_for_the_apiserver() {
    // No oneOf/anyOf/allOf with types (the apiserver refuses them in
    // structural schemas), and every CEL rule has a message.
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for key in ["oneOf", "anyOf", "allOf"] {
                    if map.contains_key(key) {
                        problems.push(format!("{path}: {key}"));
                    }
                }
                if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                    for r in rules {
                        if r.get("message").is_none() {
                            problems.push(format!("{path}: rule without message"));
                        }
                    }
                }
                for (k, v) in map {
                    walk(v, &format!("{path}/{k}"), problems);
                }
            }
            Value::Array(list) => list.iter().for_each(|v| walk(v, path, problems)),
            _ => {}
        }
    }
    for crd in crds::definitions() {
        let mut problems = Vec::new();
        walk(&schema_of(&crd), "", &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[test]
fn a_drain_reports_its_rate_and_an_estimate() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    let at = |s: i64| Time(Timestamp::from_second(1_700_000_000 + s).expect("time"));
    let start = DrainProgress::observe(None, 15_000, at(0));
    assert_eq!(start.estimate(), None);
    assert_eq!(start.to_string(), "15000 buckets left");
    // 12 buckets/s, as real Cartridge moves them on 2 cores.
    let later = DrainProgress::observe(Some(&start), 15_000 - 1_200, at(100));
    let (rate, left) = later.estimate().expect("an estimate");
    assert!((rate - 12.0).abs() < 1e-9, "{rate}");
    assert!((left - 1_150.0).abs() < 1e-9, "{left}");
    assert_eq!(
        later.to_string(),
        "13800 buckets left, 12.0/s, about 19m10s to go"
    );
    // Buckets coming back (weight restored elsewhere): no estimate.
    let back = DrainProgress::observe(Some(&start), 15_100, at(10));
    assert_eq!(back.estimate(), None);
}
