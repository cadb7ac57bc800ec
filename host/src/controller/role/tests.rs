//! The Role's topology step against the in-memory Cartridge: after the
//! Cluster's bootstrap it records what is joined, asks nothing when
//! converged, and joins only what scaling added.

use std::sync::Arc;

use kube::ResourceExt;

use super::cartridge::CartridgeView;
use super::observe::Snapshot;
use super::{RolePass, steps};
use crate::api::cluster::ClusterStatus;
use crate::controller::cluster::observe::Snapshot as ClusterSnapshot;
use crate::controller::cluster::{ClusterPass, steps as cluster_steps};
use crate::controller::lifecycle::Reconciler;
use crate::controller::pipeline::Then;
use crate::controller::testing::{self, ROUTER, STORAGE};
use crate::topology::fake::{CallKind, FakeConnector};

/// A storage Role pass whose Cluster is bootstrapped through `ctx`, and
/// what it observes.
async fn bootstrapped(
    ctx: &crate::controller::Context,
    replicas: i32,
) -> (RolePass, Snapshot, ClusterStatus) {
    let mut role = testing::role(STORAGE);
    let template = role.spec.replicaset_template.as_mut().expect("template");
    template.replicas = replicas;
    let mut cluster = ClusterPass::new(Arc::new(testing::cluster())).expect("cluster");
    // Cartridge bootstraps vshard only with a router in the cluster.
    let router = testing::role(ROUTER);
    let mut pods = testing::pods(&role, true);
    pods.extend(testing::pods(&router, true));
    let seen = ClusterSnapshot {
        roles: vec![role.clone(), router.clone()],
        pods,
    };
    let Then::Go(leader) = cluster_steps::get_leader(ctx, &seen, &mut cluster)
        .await
        .expect("leader")
    else {
        panic!("no leader");
    };
    let topology = cluster_steps::create_topology_client(ctx, &mut cluster, &leader)
        .await
        .expect("client");
    cluster_steps::bootstrap(ctx, &seen, &mut cluster, &leader, topology.as_ref())
        .await
        .expect("bootstrap");
    let mut with_status = testing::cluster();
    with_status.status = Some(cluster.status.clone());
    let pass = RolePass::new(Arc::new(role.clone())).expect("pass");
    let snap = Snapshot {
        cluster: with_status,
        pods: seen.pods.clone(),
        statefulsets: testing::statefulsets(&role),
    };
    (pass, snap, cluster.status)
}

/// JoinTopology then ObserveReadiness over `snap`.
async fn joined(ctx: &crate::controller::Context, snap: &Snapshot, pass: &mut RolePass) {
    steps::join_topology(ctx, snap, pass).await.expect("join");
    steps::observe_readiness(snap, pass).await.expect("observe");
}

#[tokio::test]
async fn after_bootstrap_the_role_records_its_members_once() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (mut pass, snap, _) = bootstrapped(&ctx, 2).await;
    let writes = model.state().writes().len();
    joined(&ctx, &snap, &mut pass).await;
    assert_eq!(pass.status.replicasets.len(), 2);
    for rs in &pass.status.replicasets {
        assert_eq!(rs.joined, 2, "{rs:?}");
        assert!(rs.uuid.is_some() && rs.master.is_some(), "{rs:?}");
    }
    // Roles as Cartridge reports them include dependencies; that is not a
    // reason to edit, but the first pass after bootstrap applies the spec's
    // settings once.
    let calls_after_first = model.state().calls.len();
    assert!(model.state().writes().len() <= writes + 1);

    // Converged: the next pass asks Cartridge nothing.
    let mut next = recorded_after(&pass);
    steps::join_topology(&ctx, &snap, &mut next)
        .await
        .expect("join");
    assert_eq!(model.state().calls.len(), calls_after_first);
}

#[tokio::test]
async fn scaling_replicas_up_joins_only_the_new_instances_once_all_are_ready() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (mut pass, snap, _) = bootstrapped(&ctx, 2).await;
    joined(&ctx, &snap, &mut pass).await;

    let (role, mut grown) = grown(&pass, 3);
    // The new pods are not ready yet: nothing is joined.
    let mut pods = testing::pods(&role, true);
    for pod in &mut pods {
        if pod
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.ends_with("-2"))
        {
            pod.status = testing::pod("x", "storage", "x", false).status;
        }
    }
    let mut seen = Snapshot {
        cluster: snap.cluster.clone(),
        pods,
        statefulsets: testing::statefulsets(&role),
    };
    let edits_before = model.state().writes().len();
    steps::join_topology(&ctx, &seen, &mut grown)
        .await
        .expect("join");
    assert_eq!(
        model.state().writes().len(),
        edits_before,
        "joined before every pod was ready"
    );

    seen.pods = testing::pods(&role, true);
    steps::join_topology(&ctx, &seen, &mut grown)
        .await
        .expect("join");
    let state = model.state();
    let joins: Vec<usize> = state.writes()[edits_before..]
        .iter()
        .filter_map(|c| match &c.kind {
            CallKind::Edit(e) => Some(e.replicasets.iter().map(|r| r.join_servers.len()).sum()),
            _ => None,
        })
        .collect();
    assert_eq!(
        joins,
        vec![2],
        "one edit joining one instance per replica set"
    );
    assert!(
        state
            .replicasets
            .iter()
            .filter(|r| r.alias.starts_with("storage"))
            .all(|r| r.servers.len() == 3)
    );
}

#[tokio::test]
async fn an_empty_answer_right_after_a_join_is_not_what_the_pass_acts_on() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (mut pass, snap, _) = bootstrapped(&ctx, 2).await;
    joined(&ctx, &snap, &mut pass).await;
    let recorded = pass.status.replicasets.clone();

    // One more instance per replica set, all ready: JoinTopology edits.
    let (role, mut grown) = grown(&pass, 3);
    let mut pods = testing::pods(&role, true);
    pods.extend(
        snap.pods
            .iter()
            .filter(|p| !p.name_any().starts_with("storage"))
            .cloned(),
    );
    let seen = Snapshot {
        cluster: snap.cluster.clone(),
        statefulsets: testing::statefulsets(&role),
        pods,
    };
    // Every console answers [] once the edit is applied.
    model.state().empty_after_edit = seen.pods.iter().map(|p| p.name_any()).collect();
    let edits = model.state().writes().len();
    let flow = steps::join_topology(&ctx, &seen, &mut grown)
        .await
        .expect("join");
    assert!(matches!(flow, crate::controller::pipeline::Flow::Next));
    assert_eq!(model.state().writes().len(), edits + 1, "the join was sent");
    // The answer after the edit is judged: `[]` is no evidence, so the
    // steps after this one (switches, deletions) have nothing to act on.
    match &grown.cartridge {
        CartridgeView::Unknown(why) => assert!(why.contains("answered []"), "{why}"),
        other => panic!("an empty answer was taken as Cartridge's view: {other:?}"),
    }
    // And the status keeps what was recorded instead of forgetting it.
    steps::observe_readiness(&seen, &mut grown)
        .await
        .expect("observe");
    for before in &recorded {
        let after = grown
            .status
            .replicasets
            .iter()
            .find(|r| r.name == before.name)
            .expect("replica set");
        assert_eq!(
            (&after.uuid, &after.master, after.joined),
            (&before.uuid, &before.master, before.joined),
            "{}",
            before.name
        );
    }
}

/// `pass`'s Role with `replicas` per replica set, and a pass over it that
/// starts from `pass`'s status.
fn grown(pass: &RolePass, replicas: i32) -> (crate::api::role::Role, RolePass) {
    let mut role = (*pass.role).clone();
    role.spec
        .replicaset_template
        .as_mut()
        .expect("template")
        .replicas = replicas;
    let mut grown = RolePass::new(Arc::new(role.clone())).expect("pass");
    grown.status = pass.status.clone();
    (role, grown)
}

/// A converged storage Role whose status records its joined replica sets,
/// and what it observes.
async fn recorded(ctx: &crate::controller::Context) -> (RolePass, Snapshot) {
    let (mut pass, snap, _) = bootstrapped(ctx, 2).await;
    joined(ctx, &snap, &mut pass).await;
    (recorded_after(&pass), snap)
}

fn leader(snap: &Snapshot) -> String {
    snap.cluster
        .status
        .as_ref()
        .and_then(|s| s.leader.clone())
        .expect("leader")
}

#[tokio::test]
async fn an_empty_answer_from_the_leader_is_not_evidence_and_a_member_is_asked() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (pass, snap) = recorded(&ctx).await;
    let leader = leader(&snap);
    model.state().answers_empty.insert(leader.clone());
    match pass.ask_cartridge(&ctx, &snap).await {
        CartridgeView::Answered(answer) => {
            assert_ne!(answer.source, leader);
            // The storage Role's two replica sets and the router's.
            assert_eq!(answer.replicasets.len(), 3);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn empty_or_silent_consoles_everywhere_leave_cartridge_unknown() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (pass, snap) = recorded(&ctx).await;
    let pods: Vec<String> = snap.pods.iter().map(kube::ResourceExt::name_any).collect();
    {
        let mut state = model.state();
        for (i, pod) in pods.iter().enumerate() {
            if i % 2 == 0 {
                state.answers_empty.insert(pod.clone());
            } else {
                state.unreachable.insert(pod.clone());
            }
        }
    }
    match pass.ask_cartridge(&ctx, &snap).await {
        CartridgeView::Unknown(why) => {
            assert!(why.contains("answered []"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_view_that_misses_a_joined_replica_set_is_not_evidence() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (pass, snap) = recorded(&ctx).await;
    // Cartridge "forgets" the second replica set (a stale or partial view).
    let forgotten = pass.status.replicasets[1].uuid.clone().expect("uuid");
    model.state().replicasets.retain(|r| r.uuid != forgotten);
    match pass.ask_cartridge(&ctx, &snap).await {
        CartridgeView::Unknown(why) => assert!(why.contains("does not know"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn before_the_bootstrap_cartridge_is_not_asked() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let role = testing::role(STORAGE);
    let pass = RolePass::new(Arc::new(role.clone())).expect("pass");
    let snap = Snapshot {
        cluster: testing::cluster(),
        pods: testing::pods(&role, true),
        statefulsets: Vec::new(),
    };
    assert!(matches!(
        pass.ask_cartridge(&ctx, &snap).await,
        CartridgeView::NotBootstrapped
    ));
    assert!(model.state().calls.is_empty());
}

#[tokio::test]
async fn a_switch_is_measured_once_cartridge_reports_the_new_master_writable() {
    let connector = FakeConnector::new();
    let model = connector.topology.clone();
    let ctx = testing::context(connector);
    let (mut pass, snap, _) = bootstrapped(&ctx, 2).await;
    joined(&ctx, &snap, &mut pass).await;
    let name = pass.status.replicasets[0].name.clone();
    let info = model
        .state()
        .replicaset_by_alias(&name)
        .cloned()
        .expect("joined");
    let master = info.master_alias().expect("a master").to_string();
    let replica = info
        .servers
        .iter()
        .find(|s| s.alias != master)
        .cloned()
        .expect("a replica");
    let through = pass.ask_cartridge(&ctx, &snap).await;
    let answer = through.answer().expect("verified answer");
    let started = super::rollout::execute::switch_master(
        &ctx,
        pass.role.as_ref(),
        answer.client.as_ref(),
        &info,
        &replica.uuid,
        &replica.alias,
    )
    .await
    .expect("switch");
    super::switchover::record(&mut pass.status.replicasets, &name, &started);
    assert_eq!(
        (started.from.as_str(), started.to.as_str()),
        (master.as_str(), replica.alias.as_str())
    );

    // A pass that did not ask Cartridge measures nothing.
    let mut next = recorded_after(&pass);
    steps::observe_readiness(&snap, &mut next)
        .await
        .expect("observe");
    assert!(next.completed_switches.is_empty());
    let entry = |p: &RolePass| {
        p.status
            .replicasets
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.switch.clone())
            .expect("the switch stays recorded")
    };
    assert_eq!(entry(&next).writable_at, None);

    // The next verified answer shows the new master writable: measured once.
    let mut next = recorded_after(&next);
    next.cartridge = next.ask_cartridge(&ctx, &snap).await;
    steps::observe_readiness(&snap, &mut next)
        .await
        .expect("observe");
    let done = entry(&next);
    assert!(done.writable_at.is_some(), "{done:?}");
    assert!(done.write_unavailable_seconds.is_some_and(|s| s >= 0.0));
    assert_eq!(next.completed_switches.len(), 1);
    steps::observe_readiness(&snap, &mut next)
        .await
        .expect("observe");
    assert_eq!(next.completed_switches.len(), 1, "not measured twice");
}

/// A fresh pass over the same Role, starting from `pass`'s status.
fn recorded_after(pass: &RolePass) -> RolePass {
    let mut next = RolePass::new(pass.role.clone()).expect("pass");
    next.status = pass.status.clone();
    next
}
