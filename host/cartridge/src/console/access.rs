//! Which command the operator runs in a pod to reach its console: the
//! operator's decision, not the Cluster's author's.
//!
//! A Cluster names one of the operator's [`ConsoleProfile`]s; its free-form
//! `spec.console.command` is honoured only when the operator's own
//! configuration allows it ([`ConsolePolicy::allow_custom_command`], the
//! `run --allow-custom-console-command` flag). Whoever may edit a Cluster
//! but not exec into its pods must not get `pods/exec` through the
//! operator. [`ConsolePolicy::resolve`] is the only place that decides.

use crate::api::cluster::{Console, ConsoleProfile};

/// What the operator's configuration allows a Cluster to choose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsolePolicy {
    /// Honour `spec.console.command` (off by default).
    pub allow_custom_command: bool,
}

/// How the console of a Cluster's pods is reached, once the policy allowed
/// it: the command (`{instance}` not yet substituted) and the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsoleAccess {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The container to exec in; `None`: the pod's first.
    pub container: Option<String>,
}

impl Default for ConsoleAccess {
    /// The default profile in the pod's first container.
    fn default() -> Self {
        Self {
            command: ConsoleProfile::default().command(),
            container: None,
        }
    }
}

/// Why a Cluster's console spec is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A custom command without the operator's permission.
    #[error(
        "spec.console.command is set, but this operator runs only its console profiles ({profiles}; select one with spec.console.profile) unless started with --allow-custom-console-command; nothing was exec'd",
        profiles = profile_names()
    )]
    CustomCommandNotAllowed,
}

fn profile_names() -> String {
    ConsoleProfile::ALL
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConsolePolicy {
    /// The console access `console` (a Cluster's `spec.console`) asks for,
    /// if this policy allows it. A `command` wins over `profile` when
    /// allowed (it is the more specific wish); without the permission it is
    /// refused outright rather than silently replaced by a profile, so the
    /// Cluster's author learns it was ignored.
    pub fn resolve(&self, console: Option<&Console>) -> Result<ConsoleAccess, AccessError> {
        let Some(console) = console else {
            return Ok(ConsoleAccess::default());
        };
        let command = match (&console.command, self.allow_custom_command) {
            (Some(command), true) => command.clone(),
            (Some(_), false) => return Err(AccessError::CustomCommandNotAllowed),
            (None, _) => console.profile.unwrap_or_default().command(),
        };
        Ok(ConsoleAccess {
            command,
            container: console.container.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_decides_which_command_runs() {
        let custom = vec!["cat".to_string(), "/etc/shadow".into()];
        let spec = |profile: Option<ConsoleProfile>, command: Option<Vec<String>>| Console {
            profile,
            command,
            container: Some("app".into()),
        };
        let allow = ConsolePolicy {
            allow_custom_command: true,
        };
        let deny = ConsolePolicy::default();
        type Case = (
            &'static str,
            ConsolePolicy,
            Option<Console>,
            Result<Vec<String>, AccessError>,
        );
        let cases: Vec<Case> = vec![
            (
                "no console: the default profile",
                deny,
                None,
                Ok(ConsoleProfile::Tarantoolctl.command()),
            ),
            (
                "no console, allowed: the default",
                allow,
                None,
                Ok(ConsoleProfile::Tarantoolctl.command()),
            ),
            (
                "old manifest without profile",
                deny,
                Some(spec(None, None)),
                Ok(ConsoleProfile::Tarantoolctl.command()),
            ),
            (
                "tt",
                deny,
                Some(spec(Some(ConsoleProfile::Tt), None)),
                Ok(ConsoleProfile::Tt.command()),
            ),
            (
                "console-sock",
                deny,
                Some(spec(Some(ConsoleProfile::ConsoleSock), None)),
                Ok(ConsoleProfile::ConsoleSock.command()),
            ),
            (
                "custom, denied",
                deny,
                Some(spec(None, Some(custom.clone()))),
                Err(AccessError::CustomCommandNotAllowed),
            ),
            (
                "custom with a profile, denied",
                deny,
                Some(spec(Some(ConsoleProfile::Tt), Some(custom.clone()))),
                Err(AccessError::CustomCommandNotAllowed),
            ),
            (
                "custom, allowed",
                allow,
                Some(spec(None, Some(custom.clone()))),
                Ok(custom.clone()),
            ),
            (
                "custom wins over a profile when allowed",
                allow,
                Some(spec(Some(ConsoleProfile::Tt), Some(custom.clone()))),
                Ok(custom.clone()),
            ),
        ];
        for (name, policy, console, want) in cases {
            let got = policy.resolve(console.as_ref());
            match (&got, &want) {
                (Ok(access), Ok(command)) => {
                    assert_eq!(&access.command, command, "{name}");
                    let container = console.as_ref().and_then(|c| c.container.clone());
                    assert_eq!(access.container, container, "{name}");
                }
                _ => assert_eq!(got.map(|a| a.command), want, "{name}"),
            }
        }
    }

    #[test]
    fn profiles_pass_the_instance_as_an_argument_never_in_the_script() {
        for profile in ConsoleProfile::ALL {
            let command = profile.command();
            assert_eq!(command[..2], ["sh", "-c"], "{profile:?}");
            assert!(!command[2].contains("{instance}"), "{profile:?}");
            assert_eq!(command[3], "{instance}", "{profile:?}");
        }
        let message = AccessError::CustomCommandNotAllowed.to_string();
        assert!(
            message.contains("tarantoolctl, tt, console-sock"),
            "{message}"
        );
    }
}
