//! The eviction webhook: a validating admission webhook on `pods/eviction`
//! (a drain, the cluster autoscaler) served by every operator replica.
//! An eviction of a replica set's master is denied with 429 (the drain
//! retries) while the leader moves the master to a healthy, caught-up
//! replica; an eviction while another instance of the replica set is
//! unavailable waits likewise; every wait is bounded
//! (`--eviction-max-wait-seconds`), after which the eviction is admitted
//! with a Warning Event. The decision is [`decision::decide`]; the Role's
//! side of the hand-over is `controller::role::evictions`; the certificate
//! is [`certs`].
//!
//! Registered with `failurePolicy: Ignore`: a webhook that is down (every
//! operator replica gone, a certificate not trusted yet) must not stop
//! drains, autoscaling and node upgrades cluster-wide; the per-replica-set
//! PodDisruptionBudgets still hold then.

pub(crate) mod certs;
pub(crate) mod decision;
pub(crate) mod review;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::controller::metrics::Metrics;

/// The path the apiserver posts AdmissionReviews to.
pub const PATH: &str = "/validate-eviction";

/// Flags of the eviction webhook (`tarantool-operator run`).
#[derive(Debug, Clone, clap::Args)]
pub struct EvictionWebhookArgs {
    /// Serve the eviction webhook (HTTPS) on this port, on every address.
    /// Off when not given.
    #[arg(long, env = "EVICTION_WEBHOOK_PORT")]
    pub eviction_webhook_port: Option<u16>,
    /// Seconds an eviction may be held back (counted from its pod's first
    /// denied eviction); then it is admitted with a Warning Event.
    #[arg(long, default_value_t = 300)]
    pub eviction_max_wait_seconds: u64,
    /// cert-manager: serve `tls.crt`/`tls.key` from this directory (a
    /// mounted Secret), reloaded when they change. Without it the operator
    /// issues and rotates its own certificate.
    #[arg(long, env = "EVICTION_WEBHOOK_CERT_DIR")]
    pub eviction_webhook_cert_dir: Option<PathBuf>,
    /// Self-managed certificate: the Secret that holds it, in the
    /// operator's namespace (`--lease-namespace`).
    #[arg(long, default_value = "tarantool-operator-webhook-tls")]
    pub eviction_webhook_secret: String,
    /// Self-managed certificate: the ValidatingWebhookConfiguration whose
    /// `caBundle` the leader keeps.
    #[arg(long, env = "EVICTION_WEBHOOK_CONFIGURATION")]
    pub eviction_webhook_configuration: Option<String>,
    /// Self-managed certificate: the names it is for (DNS names or IP
    /// addresses; comma separated), e.g. the webhook Service's
    /// `<service>.<namespace>.svc`.
    #[arg(long, value_delimiter = ',', env = "EVICTION_WEBHOOK_HOSTS")]
    pub eviction_webhook_hosts: Vec<String>,
    /// Self-managed certificate: seconds it is valid; a new one is issued
    /// when a third is left.
    #[arg(long, default_value_t = 90 * 24 * 3600, value_parser = clap::value_parser!(u64).range(30..))]
    pub eviction_webhook_cert_validity_seconds: u64,
    /// Seconds between looks at the certificate (the Secret or the files;
    /// the leader: its expiry and `caBundle`).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub eviction_webhook_refresh_seconds: u64,
}

/// Errors of the webhook's setup.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Its port.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, #[source] std::io::Error),
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Tls(String),
    /// A certificate or key that does not parse.
    #[error("certificate: {0}")]
    Pem(String),
    /// Issuing a certificate failed.
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
    /// The self-managed certificate has no names.
    #[error("--eviction-webhook-hosts is required without --eviction-webhook-cert-dir")]
    NoHosts,
    /// The apiserver.
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// A running webhook; the leader adds the certificate's upkeep
/// ([`Started::lead`]).
#[derive(Debug)]
pub struct Started {
    keeper: Option<certs::Keeper>,
}

impl Started {
    /// On becoming the leader: issue, rotate and publish the self-managed
    /// certificate through `client` (the controllers' fenced client).
    /// Nothing with cert-manager.
    pub fn lead(self, client: Client) {
        if let Some(keeper) = self.keeper {
            keeper.spawn(client);
        }
    }
}

/// Starts the webhook on every replica when `--eviction-webhook-port` is
/// given: the HTTPS server and the certificate's reloading. `client` reads
/// pods and Roles and marks denials (unfenced: standbys serve too);
/// `namespace` is the operator's own (the Secret's).
pub async fn start(
    args: &EvictionWebhookArgs,
    client: Client,
    metrics: Arc<Metrics>,
    reporter: Reporter,
    namespace: &str,
) -> Result<Option<Started>, WebhookError> {
    let Some(port) = args.eviction_webhook_port else {
        return Ok(None);
    };
    let every = Duration::from_secs(args.eviction_webhook_refresh_seconds);
    let certs = Arc::new(tls::Reloadable::default());
    let keeper = match &args.eviction_webhook_cert_dir {
        Some(dir) => {
            certs::watch_files(dir.clone(), certs.clone(), every);
            None
        }
        None => {
            if args.eviction_webhook_hosts.is_empty() {
                return Err(WebhookError::NoHosts);
            }
            let secret = certs::SecretRef {
                namespace: namespace.to_string(),
                name: args.eviction_webhook_secret.clone(),
            };
            certs::watch_secret(client.clone(), secret.clone(), certs.clone(), every);
            Some(certs::Keeper {
                secret,
                configuration: args.eviction_webhook_configuration.clone(),
                hosts: args.eviction_webhook_hosts.clone(),
                validity: Duration::from_secs(args.eviction_webhook_cert_validity_seconds),
                every,
            })
        }
    };
    let reviewer = Arc::new(review::Reviewer {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        metrics,
        bound: Duration::from_secs(args.eviction_max_wait_seconds),
    });
    let router = Router::new()
        .route(PATH, post(review::handle))
        .with_state(reviewer);
    tls::serve(SocketAddr::from(([0, 0, 0, 0], port)), certs, router).await?;
    Ok(Some(Started { keeper }))
}
