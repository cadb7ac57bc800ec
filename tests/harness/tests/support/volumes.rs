//! A volume watcher: at every claim deletion it asks the Cartridge double's
//! own model (not a console: the truth) whether the claim's instance is
//! still a member. A claim of a member going is data lost.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use kube::runtime::watcher;
use test_harness::TestContext;

use super::double;

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct Losses {
    /// Claims deleted while their instance was a member.
    pub members: Vec<String>,
    /// Claim deletions seen.
    pub deletions: usize,
    /// Deletions the double's model could not be read for.
    pub unchecked: usize,
}

/// Pods with a server in the double's model that is not expelled.
async fn members(t: &TestContext) -> Option<BTreeSet<String>> {
    let model = double::json(t, &format!("model('{}')", t.namespace))
        .await
        .ok()?;
    let servers = model.get("servers")?.as_array()?.clone();
    Some(
        servers
            .iter()
            .filter(|s| s.get("expelled").and_then(|e| e.as_bool()) != Some(true))
            .filter_map(|s| s.get("alias").and_then(|a| a.as_str()).map(str::to_string))
            .collect(),
    )
}

/// Watches the namespace's claims (`<template>-<pod>`, templates named in
/// `templates`) from now on.
pub fn watch(t: &TestContext, templates: &[&str]) -> Arc<Mutex<Losses>> {
    let out = Arc::new(Mutex::new(Losses::default()));
    let seen = out.clone();
    let t = t.clone();
    let prefixes: Vec<String> = templates.iter().map(|p| format!("{p}-")).collect();
    tokio::spawn(async move {
        let mut going: BTreeSet<String> = BTreeSet::new();
        let mut stream =
            watcher(t.api::<PersistentVolumeClaim>(), watcher::Config::default()).boxed();
        while let Some(Ok(event)) = stream.next().await {
            let (claim, gone) = match event {
                watcher::Event::Apply(c) | watcher::Event::InitApply(c) => {
                    let gone = c.metadata.deletion_timestamp.is_some();
                    (c, gone)
                }
                watcher::Event::Delete(c) => (c, true),
                _ => continue,
            };
            let name = claim.name_any();
            if !gone || !going.insert(name.clone()) {
                continue;
            }
            let Some(pod) = prefixes.iter().find_map(|p| name.strip_prefix(p.as_str())) else {
                continue;
            };
            let members = members(&t).await;
            let mut v = seen.lock().unwrap_or_else(|e| e.into_inner());
            v.deletions += 1;
            match members {
                Some(m) if m.contains(pod) => v.members.push(format!("{name} (of member {pod})")),
                Some(_) => {}
                None => v.unchecked += 1,
            }
        }
    });
    out
}
