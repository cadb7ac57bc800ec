//! The failover passwords a Cluster names by `passwordSecretRef`.
//!
//! Least privilege: each referenced Secret is read with one `get` in the
//! Cluster's own namespace (the chart grants `secrets: get`, no `list` or
//! `watch`), and only the referenced key is used. Since no watch reports a
//! rotated Secret, a Cluster that references one is looked at again every
//! `--secret-refresh-seconds` (see [`crate::controller::Settings`]), and
//! what identifies the Secret's content in the applied-settings hash is its
//! UID and resourceVersion, never the password or a digest of it (a status
//! is readable by whoever reads Clusters; an unsalted digest of a weak
//! password can be reversed).
//!
//! The passwords live only in the pass: no status, Event, log line or
//! `Debug` output holds one ([`Password`] redacts itself).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use serde::Serialize;

use crate::api::failover::{Failover, SecretKeyRef};
use crate::controller::error::SecretError;
use crate::controller::{Context, Error};

/// A password read from a Secret; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Password(String);

impl Password {
    /// The password itself, for the failover parameters sent to Cartridge.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Which version of a Secret was read: what goes into the applied hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SecretVersion {
    /// The spec field that names it.
    pub field: &'static str,
    /// The Secret's name.
    pub name: String,
    /// The key used.
    pub key: String,
    /// Its UID (a re-created Secret is another Secret).
    pub uid: String,
    /// Its resourceVersion (any change of the Secret changes it).
    pub resource_version: String,
}

/// The failover passwords of a Cluster, as read this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Passwords {
    /// `stateboardParams.passwordSecretRef`'s.
    pub stateboard: Option<Password>,
    /// `etcd2Params.passwordSecretRef`'s.
    pub etcd2: Option<Password>,
    /// The Secrets they came from.
    pub versions: Vec<SecretVersion>,
}

/// The references `spec` makes, with the field naming each.
pub(crate) fn references(spec: &Failover) -> Vec<(&'static str, &SecretKeyRef)> {
    let mut refs = Vec::new();
    if let Some(r) = spec
        .stateboard_params
        .as_ref()
        .and_then(|p| p.password_secret_ref.as_ref())
    {
        refs.push(("spec.failover.stateboardParams.passwordSecretRef", r));
    }
    if let Some(r) = spec
        .etcd2_params
        .as_ref()
        .and_then(|p| p.password_secret_ref.as_ref())
    {
        refs.push(("spec.failover.etcd2Params.passwordSecretRef", r));
    }
    refs
}

/// Reads every password `spec` references from `namespace`.
pub(crate) async fn read(
    ctx: &Context,
    namespace: &str,
    spec: &Failover,
) -> Result<Passwords, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let mut passwords = Passwords::default();
    for (field, reference) in references(spec) {
        let secret = api.get_opt(&reference.name).await?;
        let (password, version) = password_from(field, namespace, reference, secret)?;
        if field.contains("stateboard") {
            passwords.stateboard = Some(password);
        } else {
            passwords.etcd2 = Some(password);
        }
        passwords.versions.push(version);
    }
    Ok(passwords)
}

/// The referenced key of `secret` (as fetched, `None`: not found).
fn password_from(
    field: &'static str,
    namespace: &str,
    reference: &SecretKeyRef,
    secret: Option<Secret>,
) -> Result<(Password, SecretVersion), SecretError> {
    let Some(secret) = secret else {
        return Err(SecretError::NotFound {
            field,
            namespace: namespace.to_string(),
            name: reference.name.clone(),
        });
    };
    let missing = |what: &'static str| SecretError::KeyMissing {
        field,
        namespace: namespace.to_string(),
        name: reference.name.clone(),
        key: reference.key.clone(),
        what,
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .ok_or_else(|| missing("such"))?;
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| missing("UTF-8 text under the"))?;
    let version = SecretVersion {
        field,
        name: reference.name.clone(),
        key: reference.key.clone(),
        uid: secret.uid().unwrap_or_default(),
        resource_version: secret.resource_version().unwrap_or_default(),
    };
    Ok((Password(text), version))
}

/// Passwords made up by tests.
#[cfg(test)]
pub(crate) mod tests_support {
    /// `text` as a [`super::Password`].
    pub(crate) fn password(text: &str) -> super::Password {
        super::Password(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("sb".into()),
                uid: Some("u1".into()),
                resource_version: Some("7".into()),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn only_the_referenced_key_is_read() {
        let reference = SecretKeyRef {
            name: "sb".into(),
            key: "password".into(),
        };
        let field = "spec.failover.stateboardParams.passwordSecretRef";
        let cases: Vec<(&str, Option<Secret>, Result<&str, &str>)> = vec![
            (
                "the key",
                Some(secret(&[("password", b"s3cret"), ("other", b"x")])),
                Ok("s3cret"),
            ),
            ("no Secret", None, Err("Secret ns/sb does not exist")),
            (
                "no key",
                Some(secret(&[("other", b"x")])),
                Err("has no such key \"password\""),
            ),
            (
                "not text",
                Some(secret(&[("password", &[0xff, 0xfe])])),
                Err("has no UTF-8 text under the key \"password\""),
            ),
        ];
        for (name, secret, want) in cases {
            let got = password_from(field, "ns", &reference, secret);
            match (got, want) {
                (Ok((password, version)), Ok(want)) => {
                    assert_eq!(password.expose(), want, "{name}");
                    assert_eq!(
                        (version.uid.as_str(), version.resource_version.as_str()),
                        ("u1", "7")
                    );
                    assert!(!format!("{password:?}").contains(want), "{name}");
                }
                (Err(e), Err(want)) => {
                    let message = e.to_string();
                    assert!(message.contains(want), "{name}: {message}");
                    assert!(message.starts_with(field), "{name}: {message}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
