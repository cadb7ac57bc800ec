//! The real [`Topology`]: Cartridge's Lua admin API over an instance's
//! console.
//!
//! Every call is one Lua chunk from `lua/` (the shared `prelude.lua`
//! followed by the call's own file) that returns ONE JSON string: a
//! projection of Cartridge's answer, never the raw (cyclic) objects. A
//! Cartridge failure (`nil, err`) is raised in Lua, comes back as a console
//! error and becomes [`TopologyError::Refused`] naming the admin function.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{
    Connector, FailoverParams, InstanceTarget, ReplicasetInfo, Topology, TopologyEdit,
    TopologyError, VshardBootstrap,
};
use crate::console::{Console, ConsoleError, ConsoleOptions, ExecTransport};

macro_rules! chunk {
    ($file:literal) => {
        concat!(include_str!("lua/prelude.lua"), "\n", include_str!($file))
    };
}

/// The Lua chunks, one per call (prelude included).
pub mod lua {
    /// `admin_probe_server(args.uri)`.
    pub const PROBE: &str = chunk!("lua/probe.lua");
    /// `admin_get_replicasets` with per-server stats.
    pub const REPLICASETS: &str = chunk!("lua/replicasets.lua");
    /// `admin_edit_topology(args)`.
    pub const EDIT: &str = chunk!("lua/edit.lua");
    /// `admin_bootstrap_vshard()`.
    pub const BOOTSTRAP_VSHARD: &str = chunk!("lua/bootstrap_vshard.lua");
    /// `failover_get_params()`.
    pub const FAILOVER_GET: &str = chunk!("lua/failover_get.lua");
    /// `failover_set_params(args)`.
    pub const FAILOVER_SET: &str = chunk!("lua/failover_set.lua");
    /// `config_get_readonly(section)` for `args.sections`.
    pub const CONFIG_GET: &str = chunk!("lua/config_get.lua");
    /// `config_patch_clusterwide(args.patch)`.
    pub const CONFIG_PATCH: &str = chunk!("lua/config_patch.lua");
    /// `failover_promote` of `args.instance` in `args.replicaset`, under
    /// stateful and raft failover only.
    pub const PROMOTE: &str = chunk!("lua/promote.lua");
}

/// [`Topology`] through one instance's console.
#[derive(Debug, Clone)]
pub struct ConsoleTopology {
    pod: String,
    console: Console,
}

impl ConsoleTopology {
    /// Talks to Cartridge through `console`; `pod` names it in errors.
    pub fn new(pod: impl Into<String>, console: Console) -> Self {
        Self {
            pod: pod.into(),
            console,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        code: &str,
        args: Value,
    ) -> Result<T, TopologyError> {
        self.console
            .call(call, code, &args)
            .await
            .map_err(|e| self.error(call, e))
    }

    fn error(&self, call: &'static str, e: ConsoleError) -> TopologyError {
        match e {
            ConsoleError::Unreachable { message } => TopologyError::Unreachable {
                pod: self.pod.clone(),
                message,
            },
            ConsoleError::Timeout { after } => TopologyError::Timeout {
                pod: self.pod.clone(),
                seconds: after.as_secs_f64().ceil() as u64,
            },
            ConsoleError::Lua { message } => TopologyError::Refused { call, message },
            e @ (ConsoleError::ReplyTooLarge { .. } | ConsoleError::Protocol { .. }) => {
                TopologyError::Protocol {
                    call,
                    message: e.to_string(),
                }
            }
        }
    }
}

/// What `bootstrap_vshard.lua` returns.
#[derive(Deserialize)]
struct BootstrapReply {
    bootstrapped: bool,
}

#[async_trait]
impl Topology for ConsoleTopology {
    async fn probe(&self, uri: &str) -> Result<(), TopologyError> {
        let _: bool = self
            .call("admin_probe_server", lua::PROBE, json!({ "uri": uri }))
            .await?;
        Ok(())
    }

    async fn replicasets(&self) -> Result<Vec<ReplicasetInfo>, TopologyError> {
        self.call("admin_get_replicasets", lua::REPLICASETS, json!({}))
            .await
    }

    async fn edit(&self, edit: &TopologyEdit) -> Result<(), TopologyError> {
        let args = serde_json::to_value(edit).map_err(|e| TopologyError::Protocol {
            call: "admin_edit_topology",
            message: format!("cannot encode the edit: {e}"),
        })?;
        let _: bool = self.call("admin_edit_topology", lua::EDIT, args).await?;
        Ok(())
    }

    async fn promote(&self, replicaset: &str, instance: &str) -> Result<bool, TopologyError> {
        self.call(
            "failover_promote",
            lua::PROMOTE,
            json!({ "replicaset": replicaset, "instance": instance }),
        )
        .await
    }

    async fn bootstrap_vshard(&self) -> Result<VshardBootstrap, TopologyError> {
        let reply: BootstrapReply = self
            .call("admin_bootstrap_vshard", lua::BOOTSTRAP_VSHARD, json!({}))
            .await?;
        Ok(if reply.bootstrapped {
            VshardBootstrap::Bootstrapped
        } else {
            VshardBootstrap::AlreadyBootstrapped
        })
    }

    async fn failover(&self) -> Result<FailoverParams, TopologyError> {
        self.call("failover_get_params", lua::FAILOVER_GET, json!({}))
            .await
    }

    async fn set_failover(&self, params: &FailoverParams) -> Result<(), TopologyError> {
        let args = serde_json::to_value(params).map_err(|e| TopologyError::Protocol {
            call: "failover_set_params",
            message: format!("cannot encode the parameters: {e}"),
        })?;
        let _: bool = self
            .call("failover_set_params", lua::FAILOVER_SET, args)
            .await?;
        Ok(())
    }

    async fn config(&self, sections: &[String]) -> Result<Map<String, Value>, TopologyError> {
        if sections.is_empty() {
            return Ok(Map::new());
        }
        self.call(
            "config_get_readonly",
            lua::CONFIG_GET,
            json!({ "sections": sections }),
        )
        .await
    }

    async fn patch_config(&self, patch: &Map<String, Value>) -> Result<(), TopologyError> {
        if patch.is_empty() {
            return Ok(());
        }
        let _: bool = self
            .call(
                "config_patch_clusterwide",
                lua::CONFIG_PATCH,
                json!({ "patch": patch }),
            )
            .await?;
        Ok(())
    }
}

/// Makes [`ConsoleTopology`] values that reach pods over `pods/exec`.
#[derive(Clone)]
pub struct ExecConnector {
    client: kube::Client,
    options: ConsoleOptions,
}

impl ExecConnector {
    /// Execs with `client`; `options` bound every call.
    pub fn new(client: kube::Client, options: ConsoleOptions) -> Self {
        Self { client, options }
    }
}

impl Connector for ExecConnector {
    fn connect(&self, target: &InstanceTarget) -> Arc<dyn Topology> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &target.namespace);
        let transport = ExecTransport::new(
            pods,
            target.pod.clone(),
            target.container.clone(),
            target.command.clone(),
        );
        Arc::new(ConsoleTopology::new(
            target.pod.clone(),
            Console::new(Arc::new(transport), self.options),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_carry_the_prelude() {
        for code in [
            lua::PROBE,
            lua::REPLICASETS,
            lua::EDIT,
            lua::BOOTSTRAP_VSHARD,
            lua::FAILOVER_GET,
            lua::FAILOVER_SET,
            lua::CONFIG_GET,
            lua::CONFIG_PATCH,
            lua::PROMOTE,
        ] {
            assert!(code.starts_with("-- Prepended to every chunk"));
            assert!(code.contains("return json.encode("), "{code}");
        }
    }

    #[test]
    fn default_target_uses_the_default_command() {
        let t = InstanceTarget::for_pod("ns", "storage-0-0", None);
        assert_eq!(t.container, None);
        assert_eq!(t.command[0], "sh");
        assert_eq!(t.command[3], "storage-0-0");
        let access = crate::console::access::ConsoleAccess {
            command: vec![
                "tt".into(),
                "connect".into(),
                "/run/{instance}.control".into(),
            ],
            container: Some("app".into()),
        };
        let t = InstanceTarget::for_pod("ns", "r-0", Some(&access));
        assert_eq!(t.command, ["tt", "connect", "/run/r-0.control"]);
        assert_eq!(t.container.as_deref(), Some("app"));
    }
}
