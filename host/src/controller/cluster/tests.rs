//! The Cluster's topology steps against the in-memory Cartridge: bootstrap,
//! failover and config happen once and are safe to repeat, and the leader
//! is chosen from readiness and membership, moving when it must.

use std::sync::Arc;

use super::observe::Snapshot;
use super::{ClusterPass, leader, steps};
use crate::controller::lifecycle::Reconciler;
use crate::controller::pipeline::{Flow, Then};
use crate::controller::testing::{self, ROUTER, STORAGE};
use crate::topology::fake::{CallKind, FakeConnector};

fn pass() -> ClusterPass {
    ClusterPass::new(Arc::new(testing::cluster())).expect("pass")
}

/// The article's Roles and their pods, ready or not.
fn snap(ready: bool) -> Snapshot {
    let roles = vec![testing::role(ROUTER), testing::role(STORAGE)];
    let pods = roles.iter().flat_map(|r| testing::pods(r, ready)).collect();
    Snapshot { roles, pods }
}

/// GetLeader as the pipeline sees it: the leader chosen, or the flow.
async fn leader_of(
    ctx: &crate::controller::Context,
    snap: &Snapshot,
    pass: &mut ClusterPass,
) -> Result<String, Flow> {
    match steps::get_leader(ctx, snap, pass).await.expect("step") {
        Then::Go(leader) => Ok(leader),
        Then::End(flow) => Err(flow),
    }
}

async fn through_config(
    ctx: &crate::controller::Context,
    snap: &Snapshot,
    pass: &mut ClusterPass,
) -> Flow {
    let leader = match leader_of(ctx, snap, pass).await {
        Ok(leader) => leader,
        Err(flow) => return flow,
    };
    let topology = steps::create_topology_client(ctx, pass, &leader)
        .await
        .expect("client");
    for flow in [
        steps::bootstrap(ctx, snap, pass, &leader, topology.as_ref()).await,
        steps::setup_failover(ctx, pass, topology.as_ref()).await,
        steps::apply_config(ctx, pass, topology.as_ref()).await,
    ] {
        match flow.expect("step") {
            Flow::Next => {}
            other => return other,
        }
    }
    Flow::Next
}

#[tokio::test]
async fn bootstrap_joins_everything_in_one_edit_then_vshard_and_failover() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let mut pass = pass();
    assert_eq!(
        through_config(&ctx, &snap(true), &mut pass).await,
        Flow::Next
    );
    assert!(pass.status.bootstrapped);
    let leader = pass.status.leader.clone().expect("leader");
    assert!(
        leader.starts_with("router-0-"),
        "first ready pod of the first Role: {leader}"
    );
    let state = model.state();
    assert_eq!(state.replicasets.len(), 3);
    assert!(state.bootstrapped);
    assert_eq!(state.failover.mode, "eventual");
    let writes: Vec<&CallKind> = state.writes().into_iter().map(|c| &c.kind).collect();
    assert!(
        matches!(writes[0], CallKind::Edit(e) if e.replicasets.len() == 3),
        "{writes:?}"
    );
    assert!(matches!(writes[1], CallKind::BootstrapVshard));
    assert!(matches!(writes[2], CallKind::SetFailover(_)));
    assert_eq!(writes.len(), 3, "{writes:?}");
    assert!(state.writes().iter().all(|c| c.through == leader));
}

#[tokio::test]
async fn a_restart_mid_bootstrap_changes_nothing_and_fails_nothing() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let mut first = pass();
    assert_eq!(
        through_config(&ctx, &snap(true), &mut first).await,
        Flow::Next
    );
    let writes_before = model.state().writes().len();
    // The operator died before writing its status: a new pass starts from
    // the old (empty) status and must find everything already done.
    let mut again = pass();
    assert_eq!(
        through_config(&ctx, &snap(true), &mut again).await,
        Flow::Next
    );
    assert!(again.status.bootstrapped);
    let state = model.state();
    let new_writes: Vec<&CallKind> = state.writes()[writes_before..]
        .iter()
        .map(|c| &c.kind)
        .collect();
    // vshard's bootstrap is asked again (it answers "already"); nothing is
    // joined or set twice.
    assert!(
        new_writes
            .iter()
            .all(|k| matches!(k, CallKind::BootstrapVshard)),
        "{new_writes:?}"
    );
    assert_eq!(state.replicasets.len(), 3);
}

#[tokio::test]
async fn a_converged_cluster_asks_cartridge_nothing() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let mut first = pass();
    through_config(&ctx, &snap(true), &mut first).await;
    let calls = model.state().calls.len();
    let mut next = pass();
    next.status = first.status.clone();
    assert_eq!(
        through_config(&ctx, &snap(true), &mut next).await,
        Flow::Next
    );
    assert_eq!(
        model.state().calls.len(),
        calls,
        "{:?}",
        &model.state().calls[calls..]
    );
}

#[tokio::test]
async fn failover_and_config_changes_apply_once() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let mut first = pass();
    through_config(&ctx, &snap(true), &mut first).await;

    let mut cluster = testing::cluster();
    cluster.spec.failover = Some(crate::api::failover::Failover {
        mode: crate::api::failover::FailoverMode::Disabled,
        ..Default::default()
    });
    cluster.spec.config = serde_json::from_value(serde_json::json!({"app": {"ttl": 5}})).ok();
    for round in 0..2 {
        let mut next = pass();
        next.cluster = Arc::new(cluster.clone());
        next.status = first.status.clone();
        assert_eq!(
            through_config(&ctx, &snap(true), &mut next).await,
            Flow::Next
        );
        first.status = next.status.clone();
        let state = model.state();
        let sets = state
            .calls
            .iter()
            .filter(|c| matches!(c.kind, CallKind::SetFailover(_)))
            .count();
        let patches = state
            .calls
            .iter()
            .filter(|c| matches!(c.kind, CallKind::PatchConfig(_)))
            .count();
        assert_eq!((sets, patches), (2, 1), "round {round}");
        assert_eq!(state.failover.mode, "disabled");
        assert_eq!(
            state.config.get("app"),
            Some(&serde_json::json!({"ttl": 5}))
        );
    }
}

#[tokio::test]
async fn no_ready_pod_means_waiting_not_failing() {
    let ctx = testing::context(FakeConnector::new());
    let mut pass = pass();
    match leader_of(&ctx, &snap(false), &mut pass).await {
        Err(Flow::Wait { reason, .. }) => assert_eq!(reason, crate::api::Reason::NoReadyInstance),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_leader_stays_while_ready_and_moves_to_a_member_when_not() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector.clone());
    let mut first = pass();
    through_config(&ctx, &snap(true), &mut first).await;
    let leader = first.status.leader.clone().expect("leader");

    // Ready: kept without asking anyone.
    let calls = model.state().calls.len();
    let mut same = pass();
    same.status = first.status.clone();
    leader_of(&ctx, &snap(true), &mut same)
        .await
        .expect("a leader");
    assert_eq!(same.status.leader.as_deref(), Some(leader.as_str()));
    assert_eq!(model.state().calls.len(), calls);

    // Not ready and unreachable: another member takes over.
    let mut moved = pass();
    moved.status = first.status.clone();
    let mut moved_snap = snap(true);
    for pod in &mut moved_snap.pods {
        if pod.metadata.name.as_deref() == Some(leader.as_str()) {
            *pod = testing::pod(
                &leader,
                "router",
                leader.rsplit_once('-').map_or("", |p| p.0),
                false,
            );
        }
    }
    model.state().unreachable.insert(leader.clone());
    leader_of(&ctx, &moved_snap, &mut moved)
        .await
        .expect("a leader");
    let new_leader = moved.status.leader.clone().expect("leader");
    assert_ne!(new_leader, leader);

    // No member answers on a bootstrapped cluster: wait, do not pick a
    // stranger that would start a second cluster.
    let candidates: Vec<String> = moved_snap
        .pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    model.state().unreachable.extend(candidates);
    let mut stuck = pass();
    stuck.status = moved.status.clone();
    stuck.status.leader = None;
    let order: Vec<&str> = vec!["router", "storage"];
    let all = snap(true);
    let candidates = leader::candidates(&all.pods, &order);
    let chosen = leader::choose(None, &candidates, true, &connector, |p| {
        crate::topology::InstanceTarget::for_pod("ns", &kube::ResourceExt::name_any(p), None)
    })
    .await;
    assert!(
        matches!(chosen, leader::Leader::NoneAnswered(_)),
        "{chosen:?}"
    );
}

/// A Cluster that sets its own console command, under an operator that
/// does not allow it: the pass fails before any exec, with the reason, and
/// the fake Cartridge saw no call at all. Allowed, the same Cluster works.
#[tokio::test]
async fn a_custom_console_command_runs_only_when_the_operator_allows_it() {
    use crate::api::Reason;
    use crate::api::cluster::Console;
    for allow in [false, true] {
        let connector = FakeConnector::new();
        let model = connector.topology.clone();
        let mut ctx = testing::context(connector);
        ctx.settings.console.allow_custom_command = allow;
        let mut cluster = testing::cluster();
        cluster.spec.console = Some(Console {
            command: Some(vec!["sh".into(), "-c".into(), "cat /secret >&2".into()]),
            ..Console::default()
        });
        let mut pass = pass();
        pass.cluster = Arc::new(cluster);
        let resolved = steps::resolve_console(&ctx, &mut pass).await;
        if allow {
            assert_eq!(resolved.expect("allowed"), Flow::Next);
            assert_eq!(
                through_config(&ctx, &snap(true), &mut pass).await,
                Flow::Next
            );
            assert!(!model.state().calls.is_empty());
        } else {
            let refused = resolved.expect_err("refused");
            assert_eq!(refused.reason(), Reason::ConsoleCommandNotAllowed);
            assert!(
                refused
                    .to_string()
                    .contains("--allow-custom-console-command"),
                "{refused}"
            );
            // Every step that execs resolves the console first.
            let leader = steps::get_leader(&ctx, &snap(true), &mut pass).await;
            assert_eq!(
                leader.expect_err("refused").reason(),
                Reason::ConsoleCommandNotAllowed
            );
            assert!(model.state().calls.is_empty(), "nothing exec'd");
        }
    }
}

/// Passwords: sent only when read from a Secret; compared by digest; a
/// spec without references hashes as before passwords were read.
#[test]
fn failover_params_carry_only_known_passwords() {
    use serde_json::json;

    use super::secrets::{Passwords, SecretVersion};
    use crate::api::failover::{Failover, FailoverMode, StateProvider, StateboardParams};
    use crate::resources::apply::desired_hash;
    use crate::topology::{FailoverParams, password_sha256};

    let spec = Failover {
        mode: FailoverMode::Stateful,
        state_provider: Some(StateProvider::Stateboard),
        stateboard_params: Some(StateboardParams {
            uri: "sb:4401".into(),
            password_secret_ref: None,
        }),
        ..Failover::default()
    };
    let none = Passwords::default();
    let with = Passwords {
        stateboard: Some(super::secrets::tests_support::password("s3cret")),
        versions: vec![SecretVersion {
            field: "spec.failover.stateboardParams.passwordSecretRef",
            name: "sb".into(),
            key: "password".into(),
            uid: "u".into(),
            resource_version: "1".into(),
        }],
        ..Passwords::default()
    };
    let without_pw = steps::failover_params(&spec, &none);
    assert_eq!(without_pw.tarantool_params, Some(json!({"uri": "sb:4401"})));
    let with_pw = steps::failover_params(&spec, &with);
    assert_eq!(
        with_pw.tarantool_params,
        Some(json!({"uri": "sb:4401", "password": "s3cret"}))
    );
    assert!(!format!("{with_pw:?}").contains("s3cret"));
    assert_eq!(steps::failover_hash(&spec, &none), desired_hash(&spec));
    assert_ne!(
        steps::failover_hash(&spec, &with),
        steps::failover_hash(&spec, &none)
    );

    let read = |uri: &str, password: &str| FailoverParams {
        mode: "stateful".into(),
        state_provider: Some("tarantool".into()),
        failover_timeout: Some(20.0),
        fencing_enabled: Some(false),
        tarantool_params: Some(json!({"uri": uri, "password_sha256": password_sha256(password)})),
        etcd2_params: None,
    };
    let cases = [
        (
            "unknown password, same uri",
            read("sb:4401", "by-hand"),
            &without_pw,
            true,
        ),
        (
            "unknown password, other uri",
            read("sb:9", "by-hand"),
            &without_pw,
            false,
        ),
        (
            "known password in force",
            read("sb:4401", "s3cret"),
            &with_pw,
            true,
        ),
        (
            "known password rotated",
            read("sb:4401", "old"),
            &with_pw,
            false,
        ),
    ];
    for (name, current, want, matches) in cases {
        assert_eq!(steps::failover_matches(&current, want), matches, "{name}");
    }
}
