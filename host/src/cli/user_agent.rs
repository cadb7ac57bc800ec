//! The operator's `User-Agent`: its version and its replica's identity, so
//! that an apiserver's audit log (or its request metrics by user agent)
//! tells which replica sent a request; with two replicas, that the standby
//! sends no write and no exec.

use http::HeaderValue;
use http::header::USER_AGENT;

/// `tarantool-operator/<version> (<identity>)`; the identity is the one the
/// replica holds the Lease under.
pub fn user_agent(version: &str, identity: &str) -> String {
    format!("tarantool-operator/{version} ({identity})")
}

/// Sends [`user_agent`] with every request of clients built from `config`.
/// An identity that cannot go in a header (a control character) is left
/// out of it rather than refused: the user agent is for humans and audits,
/// the Lease does not depend on it.
pub fn identify(config: &mut kube::Config, identity: &str) {
    let version = env!("CARGO_PKG_VERSION");
    let value = HeaderValue::from_str(&user_agent(version, identity)).unwrap_or_else(|_| {
        tracing::warn!(
            identity,
            "the identity cannot go in a User-Agent header; sending the version alone"
        );
        HeaderValue::from_str(&format!("tarantool-operator/{version}"))
            .unwrap_or_else(|_| HeaderValue::from_static("tarantool-operator"))
    });
    config.headers.retain(|(name, _)| name != USER_AGENT);
    config.headers.push((USER_AGENT, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> kube::Config {
        kube::Config::new("https://127.0.0.1:6443".parse().unwrap_or_default())
    }

    fn agents(config: &kube::Config) -> Vec<String> {
        config
            .headers
            .iter()
            .filter(|(name, _)| name == USER_AGENT)
            .map(|(_, value)| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn the_user_agent_names_the_version_and_the_identity() {
        let version = env!("CARGO_PKG_VERSION");
        // (identity, user agent sent)
        let cases = [
            (
                "tarantool-operator-7d9f-abcde",
                format!("tarantool-operator/{version} (tarantool-operator-7d9f-abcde)"),
            ),
            (
                "replica a",
                format!("tarantool-operator/{version} (replica a)"),
            ),
            ("bad\nname", format!("tarantool-operator/{version}")),
        ];
        for (identity, want) in cases {
            let mut config = config();
            identify(&mut config, identity);
            assert_eq!(agents(&config), vec![want], "{identity:?}");
        }
    }

    #[test]
    fn identify_replaces_a_user_agent_set_before() {
        let mut config = config();
        identify(&mut config, "first");
        identify(&mut config, "second");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            agents(&config),
            vec![format!("tarantool-operator/{version} (second)")]
        );
    }
}
