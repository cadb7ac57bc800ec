//! The Cluster controller's steps, one function each, in pipeline order.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Map, Value, json};

use super::ClusterPass;
use super::leader::{self, Leader};
use super::observe::Snapshot;
use super::secrets::{self, Passwords};
use crate::api::Reason;
use crate::api::cluster::{AppliedSettings, ClusterPhase};
use crate::api::failover::{Failover, FailoverMode, StateProvider};
use crate::api::role::{Role, RolePhase};
use crate::console::access::ConsoleAccess;
use crate::controller::claim::{self, Claim};
use crate::controller::fleet::Report;
use crate::controller::members;
use crate::controller::pipeline::{Flow, StepFailed, Then};
use crate::controller::{Context, Error, events, owned, status};
use crate::resources::apply::desired_hash;
use crate::resources::{labels, service};
use crate::topology::membership::join_edit;
use crate::topology::{FailoverParams, InstanceTarget, Topology, VshardBootstrap, password_sha256};

/// The Cluster is being deleted: nothing to do (the garbage collector
/// removes what it owns).
pub(crate) async fn check_deletion(pass: &mut ClusterPass) -> Result<Flow, Error> {
    if pass.cluster.meta().deletion_timestamp.is_some() {
        return Ok(Flow::Stop);
    }
    Ok(Flow::Next)
}

/// Make the Cluster the controller-owner of each Role it lists and that
/// names it (see [`claim`]), so that deleting the Cluster deletes them and a
/// Role's change wakes the Cluster. A Role that names no Cluster, names
/// another, or is owned by another object is left alone and reported.
/// Yields the snapshot with the Roles as adopted.
pub(crate) async fn setup_roles_ownership(
    ctx: &Context,
    snap: &Arc<Snapshot>,
    pass: &ClusterPass,
) -> Result<Then<Arc<Snapshot>>, Error> {
    let api: Api<Role> = Api::namespaced(ctx.client.clone(), &pass.namespace);
    let owner = pass
        .cluster
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("uid"))?;
    let mut roles = Vec::new();
    let mut adopted_any = false;
    for seen in &snap.roles {
        let name = seen.name_any();
        let mut role = seen.clone();
        let mut claim = claim::claim(&role, &pass.name, &owner.uid);
        if claim != Claim::Owned && claim.refusal(&name, &pass.name).is_none() {
            // About to write on what the store said: read the Role afresh
            // (the store may not show an adoption this operator just made).
            role = api.get(&name).await?;
            claim = claim::claim(&role, &pass.name, &owner.uid);
        }
        if let Some(why) = claim.refusal(&name, &pass.name) {
            let reason = match claim {
                Claim::OwnedElsewhere { .. } => Reason::RoleOwnedElsewhere,
                _ => Reason::RoleNotClaimed,
            };
            return Ok(Then::End(Flow::wait_for_event(reason, why)));
        }
        if claim == Claim::Owned {
            roles.push(role);
            continue;
        }
        let mut new_refs = role.owner_references().to_vec();
        new_refs.push(owner.clone());
        // The resourceVersion makes this a compare-and-swap: a concurrent
        // change of the owner list, or of the label, is not overwritten.
        let patch = json!({"metadata": {
            "ownerReferences": new_refs,
            "resourceVersion": role.resource_version(),
        }});
        let adopted = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        events::normal(
            ctx,
            pass.cluster.as_ref(),
            Reason::RoleAdopted,
            format!(
                "Role {name} is now owned by Cluster {}: it names it in its label {}",
                pass.name,
                labels::CLUSTER
            ),
        )
        .await;
        roles.push(adopted);
        adopted_any = true;
    }
    if adopted_any {
        return Ok(Then::Go(Arc::new(snap.with_roles(roles))));
    }
    Ok(Then::Go(snap.clone()))
}

/// The Cluster's client Service.
pub(crate) async fn sync_cluster_wide_service(
    ctx: &Context,
    pass: &mut ClusterPass,
) -> Result<Flow, Error> {
    let owner = pass
        .cluster
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("uid"))?;
    let http = pass
        .cluster
        .spec
        .client_service
        .as_ref()
        .is_some_and(|s| s.http);
    let desired = service::client(&pass.namespace, &pass.name, http, owner);
    // From the watched store: a Cluster pass runs at every status write of
    // its Roles, and a GET each time was most of a converged operator's
    // reads.
    owned::apply_service(ctx, pass.cluster.as_ref(), desired).await?;
    Ok(Flow::Next)
}

/// Which command reaches the console of the Cluster's pods: the operator's
/// [`ConsolePolicy`](crate::console::access::ConsolePolicy) decides. A
/// refused `spec.console` fails the pass (Degraded, a Warning Event,
/// reason `ConsoleCommandNotAllowed`) before anything is exec'd.
pub(crate) async fn resolve_console(ctx: &Context, pass: &mut ClusterPass) -> Result<Flow, Error> {
    console(ctx, pass)?;
    Ok(Flow::Next)
}

/// The pass's console access, resolved under the operator's policy the
/// first time it is needed (every step that execs goes through here).
fn console(ctx: &Context, pass: &mut ClusterPass) -> Result<ConsoleAccess, Error> {
    if let Some(access) = &pass.console {
        return Ok(access.clone());
    }
    let access = ctx
        .settings
        .console
        .resolve(pass.cluster.spec.console.as_ref())
        .map_err(|e| Error::Blocked {
            reason: Reason::ConsoleCommandNotAllowed,
            message: e.to_string(),
        })?;
    pass.console = Some(access.clone());
    Ok(access)
}

/// Every listed Role exists; before the bootstrap, every one is Ready at
/// its current generation.
pub(crate) async fn wait_for_roles_ready(
    snap: &Snapshot,
    pass: &mut ClusterPass,
) -> Result<Flow, Error> {
    let missing: Vec<&str> = pass
        .cluster
        .spec
        .role_names()
        .filter(|n| !snap.roles.iter().any(|r| r.name_any() == *n))
        .collect();
    if !missing.is_empty() {
        return Ok(Flow::wait_for_event(
            Reason::WaitingForRoles,
            format!("Roles not found: {}", missing.join(", ")),
        ));
    }
    if !pass.status.bootstrapped {
        let not_ready: Vec<String> = snap
            .roles
            .iter()
            .filter(|r| {
                let status = r.status.as_ref();
                status.map(|s| s.phase) != Some(RolePhase::Ready)
                    || status.and_then(|s| s.observed_generation) != r.metadata.generation
            })
            .map(ResourceExt::name_any)
            .collect();
        if !not_ready.is_empty() {
            pass.status.phase = ClusterPhase::Pending;
            return Ok(Flow::wait_for_event(
                Reason::WaitingForRoles,
                format!("Roles not ready yet: {}", not_ready.join(", ")),
            ));
        }
    }
    Ok(Flow::Next)
}

/// The instance to talk to: see [`leader::choose`]. Yields its pod's name.
pub(crate) async fn get_leader(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut ClusterPass,
) -> Result<Then<String>, Error> {
    let console = console(ctx, pass)?;
    let order: Vec<&str> = pass.cluster.spec.role_names().collect();
    // Never a pod of a replica set on its way out (scaled down, replaced
    // by a new volume generation, or of a Role being deleted): it is about
    // to be expelled.
    let current: Vec<String> = snap
        .roles
        .iter()
        // A Role being deleted is drained and expelled: not a home for the
        // leader either.
        .filter(|r| r.metadata.deletion_timestamp.is_none())
        .flat_map(members::statefulset_names)
        .collect();
    let staying: Vec<Pod> = snap
        .pods
        .iter()
        .filter(|p| {
            p.labels()
                .get(labels::REPLICASET)
                .is_some_and(|rs| current.contains(rs))
        })
        .cloned()
        .collect();
    let candidates = leader::candidates(&staying, &order);
    let namespace = pass.namespace.clone();
    let chosen = leader::choose(
        pass.status.leader.as_deref(),
        &candidates,
        pass.status.bootstrapped,
        ctx.connector.as_ref(),
        |pod| InstanceTarget::for_pod(&namespace, &pod.name_any(), Some(&console)),
    )
    .await;
    match chosen {
        Leader::Pod(pod) => {
            if pass.status.leader.as_deref() != Some(pod.as_str()) {
                events::normal(
                    ctx,
                    pass.cluster.as_ref(),
                    Reason::LeaderChosen,
                    format!("topology changes go through {pod}"),
                )
                .await;
            }
            pass.status.leader = Some(pod.clone());
            Ok(Then::Go(pod))
        }
        Leader::NoneReady => Ok(Then::End(Flow::wait(
            Reason::NoReadyInstance,
            "no instance of the cluster is ready",
            ctx.settings.poll,
        ))),
        Leader::NoneAnswered(why) => Ok(Then::End(Flow::wait(
            Reason::LeaderUnavailable,
            format!("no ready instance answered as a cluster member: {why}"),
            ctx.settings.poll,
        ))),
    }
}

/// A topology client through the leader.
pub(crate) async fn create_topology_client(
    ctx: &Context,
    pass: &mut ClusterPass,
    leader: &str,
) -> Result<Arc<dyn Topology>, Error> {
    let console = console(ctx, pass)?;
    let target = InstanceTarget::for_pod(&pass.namespace, leader, Some(&console));
    Ok(ctx.connector.connect(&target))
}

/// Join every replica set of every Role (each with all its instances, the
/// leader's first), then bootstrap vshard. Safe to repeat: what is joined
/// is not joined again and a bootstrapped vshard is left as it is.
pub(crate) async fn bootstrap(
    ctx: &Context,
    snap: &Snapshot,
    pass: &mut ClusterPass,
    leader: &str,
    topology: &dyn Topology,
) -> Result<Flow, Error> {
    if pass.status.bootstrapped {
        return Ok(Flow::Next);
    }
    pass.status.phase = ClusterPhase::Bootstrapping;
    let desired: Vec<_> = snap
        .roles
        .iter()
        .flat_map(|role| {
            // Before the bootstrap no instance was expelled: epochs are 0.
            members::desired_replicasets(&pass.namespace, &pass.name, role, &snap.pods, &[])
        })
        .collect();
    let observed = topology.replicasets().await?;
    let mut edit = join_edit(&desired, &observed, false);
    // Cartridge creates the cluster on the instance that receives the first
    // edit; that instance must be in it, so its replica set goes first.
    edit.replicasets.sort_by_key(|rs| {
        !rs.join_servers
            .iter()
            .any(|s| s.uri.split('.').next() == Some(leader))
    });
    if !edit.is_empty() {
        topology.edit(&edit).await?;
        let instances: usize = edit.replicasets.iter().map(|r| r.join_servers.len()).sum();
        events::normal(
            ctx,
            pass.cluster.as_ref(),
            Reason::TopologyJoined,
            format!(
                "joined {} replica sets with {instances} instances",
                edit.replicasets.len()
            ),
        )
        .await;
    }
    // Only when the Cluster asks for it: from role names alone the operator
    // cannot tell whether an application role brings vshard-storage.
    let wants_vshard = pass
        .cluster
        .spec
        .vshard
        .as_ref()
        .is_some_and(|v| v.bootstrap);
    if wants_vshard && topology.bootstrap_vshard().await? == VshardBootstrap::Bootstrapped {
        events::normal(
            ctx,
            pass.cluster.as_ref(),
            Reason::VshardBootstrapped,
            "buckets created".into(),
        )
        .await;
    }
    pass.status.bootstrapped = true;
    Ok(Flow::Next)
}

/// Cartridge's failover parameters for a `spec.failover`, with the
/// passwords read from its Secrets. A password the operator does not know
/// is left out, and Cartridge keeps the one it has (`failover_set.lua`).
pub(crate) fn failover_params(spec: &Failover, passwords: &Passwords) -> FailoverParams {
    let mode = match spec.mode {
        FailoverMode::Disabled => "disabled",
        FailoverMode::Eventual => "eventual",
        FailoverMode::Stateful => "stateful",
        FailoverMode::Raft => "raft",
    };
    FailoverParams {
        mode: mode.into(),
        state_provider: spec.state_provider.map(|p| match p {
            StateProvider::Stateboard => "tarantool".to_string(),
            StateProvider::Etcd2 => "etcd2".to_string(),
        }),
        failover_timeout: spec.failover_timeout,
        fencing_enabled: spec.fencing_enabled,
        tarantool_params: spec.stateboard_params.as_ref().map(|p| {
            let mut m = Map::new();
            m.insert("uri".into(), json!(p.uri));
            if let Some(password) = &passwords.stateboard {
                m.insert("password".into(), json!(password.expose()));
            }
            Value::Object(m)
        }),
        etcd2_params: spec.etcd2_params.as_ref().map(|p| {
            let mut m = Map::new();
            m.insert("endpoints".into(), json!(p.endpoints));
            if let Some(prefix) = &p.prefix {
                m.insert("prefix".into(), json!(prefix));
            }
            if let Some(delay) = p.lock_delay {
                m.insert("lock_delay".into(), json!(delay));
            }
            if let Some(user) = &p.username {
                m.insert("username".into(), json!(user));
            }
            if let Some(password) = &passwords.etcd2 {
                m.insert("password".into(), json!(password.expose()));
            }
            Value::Object(m)
        }),
    }
}

/// Whether `current` already has every parameter `want` sets.
pub(crate) fn failover_matches(current: &FailoverParams, want: &FailoverParams) -> bool {
    current.mode == want.mode
        && (want.state_provider.is_none() || current.state_provider == want.state_provider)
        && (want.failover_timeout.is_none() || current.failover_timeout == want.failover_timeout)
        && (want.fencing_enabled.is_none() || current.fencing_enabled == want.fencing_enabled)
        && provider_matches(
            current.tarantool_params.as_ref(),
            want.tarantool_params.as_ref(),
        )
        && provider_matches(current.etcd2_params.as_ref(), want.etcd2_params.as_ref())
}

/// Whether a state provider's params as read (`current`, passwords as
/// `password_sha256`) have every key `want` sets; a password by its digest.
fn provider_matches(current: Option<&Value>, want: Option<&Value>) -> bool {
    let Some(want) = want.and_then(Value::as_object) else {
        return true;
    };
    let Some(current) = current else {
        return false;
    };
    want.iter().all(|(key, value)| match (key.as_str(), value) {
        ("password", Value::String(password)) => {
            current.get("password_sha256") == Some(&json!(password_sha256(password)))
        }
        // Cartridge reports numbers as floats or integers alike.
        (_, Value::Number(n)) => current.get(key).and_then(Value::as_f64) == n.as_f64(),
        _ => current.get(key) == Some(value),
    })
}

fn applied(pass: &mut ClusterPass) -> &mut AppliedSettings {
    pass.status
        .applied
        .get_or_insert_with(AppliedSettings::default)
}

/// The applied-settings hash of `spec.failover` with the Secrets its
/// passwords came from (their versions, never the passwords): a rotated
/// Secret changes it. Without references, the hash of the spec alone (as
/// before passwords were read, so existing Clusters are not re-applied).
pub(crate) fn failover_hash(spec: &Failover, passwords: &Passwords) -> String {
    if passwords.versions.is_empty() {
        desired_hash(spec)
    } else {
        desired_hash(&(spec, &passwords.versions))
    }
}

/// `spec.failover` in Cartridge, asked and set only when the spec (or a
/// Secret it reads a password from) changed since it was last applied. A
/// missing Secret or key fails the pass (`SecretNotFound`) and changes
/// nothing in Cartridge.
pub(crate) async fn setup_failover(
    ctx: &Context,
    pass: &mut ClusterPass,
    topology: &dyn Topology,
) -> Result<Flow, Error> {
    let spec = pass.cluster.spec.failover_or_default();
    let passwords = secrets::read(ctx, &pass.namespace, &spec).await?;
    let hash = failover_hash(&spec, &passwords);
    if pass
        .status
        .applied
        .as_ref()
        .and_then(|a| a.failover.as_ref())
        == Some(&hash)
    {
        return Ok(Flow::Next);
    }
    let want = failover_params(&spec, &passwords);
    let current = topology.failover().await?;
    if !failover_matches(&current, &want) {
        topology.set_failover(&want).await?;
        let from: Vec<String> = passwords
            .versions
            .iter()
            .map(|v| format!("{} from Secret {}", v.field, v.name))
            .collect();
        events::normal(
            ctx,
            pass.cluster.as_ref(),
            Reason::FailoverConfigured,
            if from.is_empty() {
                format!("failover mode {}", want.mode)
            } else {
                format!("failover mode {}; {}", want.mode, from.join(", "))
            },
        )
        .await;
    }
    applied(pass).failover = Some(hash);
    Ok(Flow::Next)
}

/// `spec.config` in Cartridge's clusterwide config: the sections that
/// differ are patched, only when the spec changed since it was applied.
pub(crate) async fn apply_config(
    ctx: &Context,
    pass: &mut ClusterPass,
    topology: &dyn Topology,
) -> Result<Flow, Error> {
    let Some(config) = pass.cluster.spec.config.clone() else {
        return Ok(Flow::Next);
    };
    let hash = desired_hash(&config);
    if pass.status.applied.as_ref().and_then(|a| a.config.as_ref()) == Some(&hash) {
        return Ok(Flow::Next);
    }
    let sections: Vec<String> = config.keys().cloned().collect();
    let current = topology.config(&sections).await?;
    let patch: Map<String, Value> = config
        .into_iter()
        .filter(|(k, v)| current.get(k) != Some(v))
        .collect();
    if !patch.is_empty() {
        topology.patch_config(&patch).await?;
        let names: Vec<&str> = patch.keys().map(String::as_str).collect();
        events::normal(
            ctx,
            pass.cluster.as_ref(),
            Reason::ConfigApplied,
            format!("clusterwide config sections patched: {}", names.join(", ")),
        )
        .await;
    }
    applied(pass).config = Some(hash);
    Ok(Flow::Next)
}

/// Phase, conditions and observed generation from how the pass ended;
/// written only when changed.
pub(crate) async fn finish(
    ctx: &Context,
    pass: &mut ClusterPass,
    flow: &Result<Flow, StepFailed>,
) -> Result<(), Error> {
    if matches!(flow, Ok(Flow::Stop)) {
        return Ok(());
    }
    let generation = pass.cluster.meta().generation;
    pass.status.observed_generation = generation;
    pass.status.phase = match flow {
        Ok(Flow::Next) => ClusterPhase::Ready,
        Ok(Flow::Wait { .. }) if !pass.status.bootstrapped => {
            if pass.status.phase == ClusterPhase::Bootstrapping {
                ClusterPhase::Bootstrapping
            } else {
                ClusterPhase::Pending
            }
        }
        Ok(_) => ClusterPhase::Ready,
        Err(_) => ClusterPhase::Degraded,
    };
    if let Err(failed) = flow {
        events::warning(
            ctx,
            pass.cluster.as_ref(),
            failed.source.reason(),
            failed.to_string(),
        )
        .await;
    }
    status::set_conditions(&mut pass.status.conditions, flow, generation);
    ctx.metrics.fleet.record(
        "cluster",
        &pass.cluster.namespace().unwrap_or_default(),
        &pass.cluster.name_any(),
        Report::cluster(flow),
        std::time::SystemTime::now(),
    );
    status::write(
        ctx,
        pass.cluster.as_ref(),
        pass.cluster.status.as_ref(),
        &pass.status,
    )
    .await?;
    Ok(())
}
