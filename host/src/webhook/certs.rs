//! The webhook's certificate, the two ways the Kubernetes ecosystem does
//! it:
//! - **cert-manager** (`--eviction-webhook-cert-dir`): its Certificate's
//!   Secret is mounted; every replica reads `tls.crt`/`tls.key` and serves
//!   the new pair when the files change ([`watch_files`]); cert-manager's
//!   CA injector keeps the webhook configuration's `caBundle`.
//! - **self-managed** (`--eviction-webhook-secret`): the leader issues a
//!   CA and a serving certificate ([`issue`]), keeps them in a Secret,
//!   puts the CA into the ValidatingWebhookConfiguration's `caBundle`, and
//!   issues anew once less than a third of the validity is left
//!   ([`keep`]). Every replica serves what the Secret holds
//!   ([`watch_secret`]); standbys never write.
//!
//! A rotation must not break a call in flight between the two steps, so the
//! leader first puts the new CA into `caBundle` *next to* the previous one,
//! then writes the Secret: replicas still serving the previous certificate
//! stay trusted until they load the new one, and the previous CA leaves the
//! bundle at the next rotation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;
use tracing::{info, warn};

use super::WebhookError;
use super::tls::Reloadable;

/// Secret annotation: when the serving certificate expires (RFC 3339).
pub(crate) const NOT_AFTER: &str = "tarantool.io/webhook-cert-not-after";
/// Secret annotation: the names the serving certificate is for, comma
/// separated.
pub(crate) const HOSTS: &str = "tarantool.io/webhook-cert-hosts";
/// Secret key: the previous CA, kept in `caBundle` through a rotation.
pub(crate) const PREVIOUS_CA: &str = "ca-previous.crt";

/// A CA and a serving certificate it signed (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    /// The CA certificate.
    pub ca: String,
    /// The serving certificate.
    pub cert: String,
    /// Its key.
    pub key: String,
    /// When it expires.
    pub not_after: Timestamp,
}

fn offset(t: Timestamp) -> Result<time::OffsetDateTime, WebhookError> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second())
        .map_err(|e| WebhookError::Issue(e.to_string()))
}

/// A new CA and a serving certificate for `hosts` (DNS names or IP
/// addresses), valid from a minute before `now` for `validity`.
pub(crate) fn issue(
    hosts: &[String],
    now: Timestamp,
    validity: Duration,
) -> Result<Issued, WebhookError> {
    let err = |e: rcgen::Error| WebhookError::Issue(e.to_string());
    let validity =
        SignedDuration::try_from(validity).map_err(|e| WebhookError::Issue(e.to_string()))?;
    let not_before = now
        .checked_sub(SignedDuration::from_secs(60))
        .map_err(|e| WebhookError::Issue(e.to_string()))?;
    let not_after = now
        .checked_add(validity)
        .map_err(|e| WebhookError::Issue(e.to_string()))?;
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tarantool-operator eviction webhook CA");
    ca_params.not_before = offset(not_before)?;
    ca_params.not_after = offset(not_after)?;
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    params.distinguished_name.push(
        DnType::CommonName,
        hosts.first().map_or("tarantool-operator", String::as_str),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = offset(not_before)?;
    params.not_after = offset(not_after)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(Issued {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
        not_after,
    })
}

/// What the Secret holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Stored {
    /// The current CA (PEM).
    pub ca: Option<String>,
    /// The previous CA (PEM), kept in the bundle through a rotation.
    pub previous_ca: Option<String>,
    /// The serving certificate and key (PEM).
    pub cert: Option<(String, String)>,
    /// Its expiry, as recorded.
    pub not_after: Option<Timestamp>,
    /// The names it was issued for, as recorded.
    pub hosts: Vec<String>,
}

impl Stored {
    fn of(secret: &Secret) -> Self {
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.is_empty())
        };
        let annotations = secret.annotations();
        Self {
            ca: text("ca.crt"),
            previous_ca: text(PREVIOUS_CA),
            cert: text("tls.crt").zip(text("tls.key")),
            not_after: annotations.get(NOT_AFTER).and_then(|t| t.parse().ok()),
            hosts: annotations
                .get(HOSTS)
                .map(|h| h.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        }
    }
}

/// Whether the leader issues a new certificate now: none yet, for other
/// names, expiry unknown, or less than a third of `validity` left.
pub(crate) fn due(stored: &Stored, hosts: &[String], validity: Duration, now: Timestamp) -> bool {
    let Some(not_after) = stored.not_after else {
        return true;
    };
    if stored.cert.is_none() || stored.ca.is_none() || stored.hosts != hosts {
        return true;
    }
    let third = SignedDuration::try_from(validity / 3).unwrap_or(SignedDuration::MAX);
    now.checked_add(third).map_or(true, |t| t >= not_after)
}

/// The `caBundle` for a Secret: its CA, then the previous one.
pub(crate) fn bundle(stored: &Stored) -> String {
    [stored.ca.as_deref(), stored.previous_ca.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("")
}

/// Where the self-managed certificate lives.
#[derive(Debug, Clone)]
pub(crate) struct SecretRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Every replica: serves what the Secret holds, looked at every `every`.
pub(crate) fn watch_secret(
    client: Client,
    secret: SecretRef,
    certs: Arc<Reloadable>,
    every: Duration,
) {
    tokio::spawn(async move {
        let api: Api<Secret> = Api::namespaced(client, &secret.namespace);
        loop {
            match api.get_opt(&secret.name).await {
                Ok(Some(found)) => {
                    if let Some((cert, key)) = Stored::of(&found).cert {
                        match certs.set(&cert, &key) {
                            Ok(true) => {
                                info!(secret = %secret.name, "eviction webhook: serving the certificate from the Secret")
                            }
                            Ok(false) => {}
                            Err(e) => {
                                warn!(error = %e, "eviction webhook: the Secret's certificate is unusable")
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "eviction webhook: cannot read its Secret"),
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// Every replica (cert-manager): serves `dir/tls.crt` and `dir/tls.key`,
/// looked at every `every` (a mounted Secret changes by a symlink swap).
pub(crate) fn watch_files(dir: PathBuf, certs: Arc<Reloadable>, every: Duration) {
    tokio::spawn(async move {
        loop {
            let read = |name: &str| std::fs::read_to_string(dir.join(name));
            match (read("tls.crt"), read("tls.key")) {
                (Ok(cert), Ok(key)) => match certs.set(&cert, &key) {
                    Ok(true) => {
                        info!(dir = %dir.display(), "eviction webhook: serving the mounted certificate")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        warn!(error = %e, "eviction webhook: the mounted certificate is unusable")
                    }
                },
                (Err(e), _) | (_, Err(e)) => {
                    warn!(error = %e, dir = %dir.display(), "eviction webhook: no certificate to serve yet");
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// What the leader keeps.
#[derive(Debug, Clone)]
pub(crate) struct Keeper {
    /// The Secret.
    pub secret: SecretRef,
    /// The ValidatingWebhookConfiguration whose `caBundle` it keeps.
    pub configuration: Option<String>,
    /// The names the certificate is for.
    pub hosts: Vec<String>,
    /// How long a certificate is valid.
    pub validity: Duration,
    /// How often it looks.
    pub every: Duration,
}

impl Keeper {
    /// The leader's loop (until the process ends): issues and rotates the
    /// certificate, and keeps `caBundle` in step. `client` is the
    /// controllers' (fenced) client.
    pub(crate) fn spawn(self, client: Client) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.once(&client).await {
                    warn!(error = %e, "eviction webhook: cannot keep its certificate");
                }
                tokio::time::sleep(self.every).await;
            }
        });
    }

    async fn once(&self, client: &Client) -> Result<(), WebhookError> {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &self.secret.namespace);
        let existing = secrets.get_opt(&self.secret.name).await?;
        let stored = existing.as_ref().map(Stored::of).unwrap_or_default();
        let now = Timestamp::now();
        if !due(&stored, &self.hosts, self.validity, now) {
            // caBundle may have been reset (the chart re-applied).
            return self.ensure_bundle(client, &bundle(&stored)).await;
        }
        let issued = issue(&self.hosts, now, self.validity)?;
        let next = Stored {
            ca: Some(issued.ca.clone()),
            previous_ca: stored.ca.clone(),
            cert: Some((issued.cert.clone(), issued.key.clone())),
            not_after: Some(issued.not_after),
            hosts: self.hosts.clone(),
        };
        // The bundle first: whoever still serves the previous certificate
        // stays trusted.
        self.ensure_bundle(client, &bundle(&next)).await?;
        let mut data = BTreeMap::new();
        data.insert("ca.crt".to_string(), ByteString(issued.ca.into_bytes()));
        data.insert("tls.crt".to_string(), ByteString(issued.cert.into_bytes()));
        data.insert("tls.key".to_string(), ByteString(issued.key.into_bytes()));
        if let Some(previous) = stored.ca {
            data.insert(PREVIOUS_CA.to_string(), ByteString(previous.into_bytes()));
        }
        let mut secret = Secret {
            data: Some(data),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        };
        secret.metadata.name = Some(self.secret.name.clone());
        secret.metadata.namespace = Some(self.secret.namespace.clone());
        secret.metadata.annotations = Some(BTreeMap::from([
            (NOT_AFTER.to_string(), issued.not_after.to_string()),
            (HOSTS.to_string(), self.hosts.join(",")),
        ]));
        match existing {
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version;
                secrets
                    .replace(&self.secret.name, &PostParams::default(), &secret)
                    .await?;
            }
            None => {
                secrets.create(&PostParams::default(), &secret).await?;
            }
        }
        info!(secret = %self.secret.name, not_after = %issued.not_after, "eviction webhook: issued a new certificate");
        Ok(())
    }

    /// Puts `bundle` into every webhook of the configuration, if it differs.
    async fn ensure_bundle(&self, client: &Client, bundle: &str) -> Result<(), WebhookError> {
        let Some(name) = self.configuration.as_deref() else {
            return Ok(());
        };
        if bundle.is_empty() {
            return Ok(());
        }
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let Some(found) = api.get_opt(name).await? else {
            return Ok(());
        };
        let mut ops = Vec::new();
        for (i, webhook) in found.webhooks.iter().flatten().enumerate() {
            if webhook
                .client_config
                .ca_bundle
                .as_ref()
                .map(|b| b.0.as_slice())
                == Some(bundle.as_bytes())
            {
                continue;
            }
            ops.push(
                json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook.name}),
            );
            ops.push(json!({
                "op": "add",
                "path": format!("/webhooks/{i}/clientConfig/caBundle"),
                // ByteString serializes as base64, as caBundle wants.
                "value": ByteString(bundle.as_bytes().to_vec()),
            }));
        }
        if ops.is_empty() {
            return Ok(());
        }
        let patch: json_patch::Patch =
            serde_json::from_value(json!(ops)).map_err(|e| WebhookError::Issue(e.to_string()))?;
        api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await?;
        info!(configuration = name, "eviction webhook: caBundle updated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn hosts() -> Vec<String> {
        vec!["op.ns.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn an_issued_certificate_is_served_and_chains_to_its_ca() {
        let issued = match issue(&hosts(), at(0), Duration::from_secs(90)) {
            Ok(issued) => issued,
            Err(e) => panic!("issue: {e}"),
        };
        assert_eq!(issued.not_after, at(90));
        assert!(issued.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let certs = Reloadable::default();
        assert!(matches!(certs.set(&issued.cert, &issued.key), Ok(true)));
        // The same pair again is no change; a new one is.
        assert!(matches!(certs.set(&issued.cert, &issued.key), Ok(false)));
        let next = match issue(&hosts(), at(60), Duration::from_secs(90)) {
            Ok(next) => next,
            Err(e) => panic!("issue: {e}"),
        };
        assert!(matches!(certs.set(&next.cert, &next.key), Ok(true)));
        assert!(certs.set("garbage", &next.key).is_err());
    }

    #[test]
    fn a_certificate_is_issued_anew_when_a_third_of_its_validity_is_left() {
        let validity = Duration::from_secs(90);
        let fresh = Stored {
            ca: Some("ca".into()),
            previous_ca: None,
            cert: Some(("c".into(), "k".into())),
            not_after: Some(at(90)),
            hosts: hosts(),
        };
        // (case, stored, now, due)
        let cases = vec![
            ("nothing stored", Stored::default(), at(0), true),
            ("fresh", fresh.clone(), at(0), false),
            ("just before the last third", fresh.clone(), at(59), false),
            ("the last third", fresh.clone(), at(60), true),
            ("expired", fresh.clone(), at(200), true),
            (
                "other names",
                Stored {
                    hosts: vec!["x".into()],
                    ..fresh.clone()
                },
                at(0),
                true,
            ),
            (
                "expiry not recorded",
                Stored {
                    not_after: None,
                    ..fresh.clone()
                },
                at(0),
                true,
            ),
            (
                "no key",
                Stored {
                    cert: None,
                    ..fresh
                },
                at(0),
                true,
            ),
        ];
        for (case, stored, now, expected) in cases {
            assert_eq!(due(&stored, &hosts(), validity, now), expected, "{case}");
        }
    }

    #[test]
    fn the_bundle_trusts_the_previous_ca_through_a_rotation() {
        let stored = Stored {
            ca: Some("NEW\n".into()),
            previous_ca: Some("OLD\n".into()),
            ..Stored::default()
        };
        assert_eq!(bundle(&stored), "NEW\nOLD\n");
        assert_eq!(bundle(&Stored::default()), "");
    }
}
