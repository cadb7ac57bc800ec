//! The fence at the socket: the controllers' client writes no byte to the
//! apiserver once this replica's deadline passed.
//!
//! [`FenceLayer`](super::FenceLayer) checks a request when the client's
//! stack takes it. Between that check and the bytes leaving, the request
//! can wait: for a connection from the pool, for a TLS handshake, for a
//! retry's backoff (the client retries 429 and 503 for up to minutes), or
//! for the whole process to be thawed after a freeze (SIGSTOP, a paused
//! VM). A leader frozen right after it decided to delete a pod would, when
//! resumed, send that delete after a standby took the Lease over. So the
//! connections themselves refuse to write once the fence lapsed
//! ([`Fence::lapsed`]): a request cut short leaves the apiserver with an
//! incomplete request, which it never acts on.
//!
//! The stack is kube's own default, rebuilt here because kube offers no
//! seam for the connection under TLS: TCP, this wrapper, rustls, the
//! connect and write timeouts, the base URI, authentication, extra headers
//! and the retry of 429/503/504. Left out: a proxy (a Config with a proxy
//! URL gets kube's stack and the request-level fence only; see
//! [`client_builder`]) and the expiry of client certificates that an exec
//! credential plugin returns (kube keeps that to itself).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use kube::Config;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody};
use tower::util::BoxService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use super::{Fence, Fenced};

/// The service a fenced client is built on (kube's own boxed shape).
pub type WireService = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// Why the fenced client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the fenced Kubernetes client: {0}")]
pub struct WireError(#[from] kube::Error);

/// A client builder for `config` whose connections refuse to write once
/// `fence` lapsed. With a proxy in `config`, kube's default stack (the
/// request-level fence still applies, the socket-level one does not: the
/// caller logs that).
pub fn client_builder(
    config: &Config,
    fence: Arc<Fence>,
) -> Result<ClientBuilder<WireService>, WireError> {
    if config.proxy_url.is_some() {
        let builder = ClientBuilder::try_from(config.clone())?;
        return Ok(builder);
    }
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    let fenced = FencedConnector { inner: tcp, fence };
    let tls = config.rustls_https_connector_with_connector(fenced)?;
    let mut timed = hyper_timeout::TimeoutConnector::new(tls);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    timed.set_reset_reader_on_write(config.reset_reader_on_write);
    let http: hyper_util::client::legacy::Client<_, Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(timed);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| tower::retry::RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http)
        .map_response(|response: Response<hyper::body::Incoming>| {
            response.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>
            })
        })
        .boxed();
    Ok(ClientBuilder::new(
        service,
        config.default_namespace.clone(),
    ))
}

/// Wraps every connection `inner` makes in a [`FencedIo`].
#[derive(Debug, Clone)]
struct FencedConnector<C> {
    inner: C,
    fence: Arc<Fence>,
}

impl<C> Service<Uri> for FencedConnector<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
{
    type Response = FencedIo<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let fence = self.fence.clone();
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let inner = connecting.await?;
            Ok(FencedIo { inner, fence })
        })
    }
}

/// A connection that refuses to write once the fence lapsed. Reads pass:
/// what the apiserver already sent does no harm.
#[derive(Debug)]
pub struct FencedIo<T> {
    inner: T,
    fence: Arc<Fence>,
}

impl<T> FencedIo<T> {
    /// The refusal a write gets once the fence lapsed.
    fn refused(&self) -> Option<io::Error> {
        self.fence
            .lapsed()
            .map(|fenced: Fenced| io::Error::new(io::ErrorKind::PermissionDenied, fenced))
    }
}

impl<T: Read + Unpin> Read for FencedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for FencedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(refused) = self.refused() {
            return Poll::Ready(Err(refused));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(refused) = self.refused() {
            return Poll::Ready(Err(refused));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T: Connection> Connection for FencedIo<T> {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt;

    use super::*;

    /// Writes `bytes` through `io` with hyper's traits.
    async fn write(
        io: &mut FencedIo<TokioIo<tokio::io::DuplexStream>>,
        bytes: &[u8],
    ) -> io::Result<usize> {
        std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, bytes)).await
    }

    /// A leader writes while its fence holds; frozen past its deadline and
    /// resumed, the bytes it had queued never reach the peer, and neither
    /// does anything after. A replica that never led writes (it is how a
    /// standby's reads and its taking of the Lease go out).
    #[tokio::test]
    async fn a_connection_writes_nothing_once_the_fence_lapsed() {
        let lease = Duration::from_millis(400);
        let fence = Fence::new(lease, Duration::from_millis(100)).expect("fence");
        let (near, mut far) = tokio::io::duplex(1024);
        let mut io = FencedIo {
            inner: TokioIo::new(near),
            fence: fence.clone(),
        };
        assert_eq!(write(&mut io, b"standby ").await.expect("never led"), 8);
        fence.renewed(std::time::Instant::now());
        assert_eq!(write(&mut io, b"leader ").await.expect("leading"), 7);
        tokio::time::sleep(lease).await;
        let refused = write(&mut io, b"DELETE pod").await.expect_err("lapsed");
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(fence.is_tripped(), "a lapsed write trips the fence");
        drop(io);
        let mut got = String::new();
        far.read_to_string(&mut got).await.expect("read");
        assert_eq!(got, "standby leader ");
    }

    /// Unfenced (no leader election), a connection always writes.
    #[tokio::test]
    async fn an_unfenced_connection_always_writes() {
        let fence = Fence::unfenced();
        let (near, _far) = tokio::io::duplex(64);
        let mut io = FencedIo {
            inner: TokioIo::new(near),
            fence,
        };
        assert_eq!(write(&mut io, b"x").await.expect("unfenced"), 1);
    }
}
