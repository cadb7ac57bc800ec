//! The webhook's HTTPS server: rustls (ring) with a certificate that can be
//! swapped while it serves ([`Reloadable`]), so a rotated certificate is
//! served from the next connection on, without a restart.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::WebhookError;

/// The serving certificate, replaceable while the server runs. Until one
/// is set, handshakes fail (the apiserver then applies the webhook's
/// `failurePolicy: Ignore`).
#[derive(Debug, Default)]
pub(crate) struct Reloadable {
    current: RwLock<Option<(Arc<CertifiedKey>, String)>>,
}

impl Reloadable {
    /// Serves `cert_pem` (the chain, leaf first) with `key_pem` from the
    /// next handshake on. Returns whether it changed.
    pub(crate) fn set(&self, cert_pem: &str, key_pem: &str) -> Result<bool, WebhookError> {
        let fingerprint = format!("{cert_pem}{key_pem}");
        if self
            .current
            .read()
            .map(|c| c.as_ref().is_some_and(|(_, f)| *f == fingerprint))
            .unwrap_or(false)
        {
            return Ok(false);
        }
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WebhookError::Pem(e.to_string()))?;
        if certs.is_empty() {
            return Err(WebhookError::Pem("no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| WebhookError::Pem(e.to_string()))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| WebhookError::Pem(e.to_string()))?;
        let certified = Arc::new(CertifiedKey::new(certs, signing));
        if let Ok(mut current) = self.current.write() {
            *current = Some((certified, fingerprint));
        }
        Ok(true)
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|(key, _)| key.clone()))
    }
}

/// Listens on `addr` and serves `router` over TLS with `certs`, until the
/// process ends.
pub(crate) async fn serve(
    addr: SocketAddr,
    certs: Arc<Reloadable>,
    router: Router,
) -> Result<(), WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| WebhookError::Listen(addr, e))?;
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "eviction webhook: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        debug!(error = %e, %peer, "eviction webhook: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let service = TowerToHyperService::new(router);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await
                {
                    debug!(error = %e, %peer, "eviction webhook: connection ended");
                }
            });
        }
    });
    Ok(())
}
