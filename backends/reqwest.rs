//! [`HttpClient`] on reqwest 0.13 (rustls with the ring provider).

use futures::TryStreamExt;
use url::Url;

use crate::net::{HttpClient, HttpRequest, HttpResponse, NetError, TimeoutKind, TransportKind};
use crate::rt::BoxFuture;

/// An [`HttpClient`] backed by a `reqwest::Client`.
///
/// Cloning shares the connection pool. Build it from the application's own
/// client with [`From`] to share that client's pool, proxy and TLS settings;
/// keep automatic decompression off in such a client, since `Range` offsets
/// address the bytes on the wire.
///
/// Needs a tokio runtime to run on (reqwest's requirement).
///
/// This crate turns on reqwest's `rustls-no-provider` only; a
/// `reqwest::Client` built with no TLS settings would then have no crypto
/// provider (reqwest panics). Start from [`ReqwestClient::builder`] (ring,
/// the system's trust store) or enable reqwest's own `rustls` feature.
///
/// ```
/// use kithara_stream::backends::reqwest::ReqwestClient;
/// let shared = ReqwestClient::builder().unwrap().pool_max_idle_per_host(4).build().unwrap();
/// let client = ReqwestClient::from(shared.clone());
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: ::reqwest::Client,
}

impl ReqwestClient {
    /// A client with reqwest's defaults (no decompression, HTTP/2 where the
    /// server offers it) on rustls with the **ring** crypto provider and the
    /// system's trust store, set explicitly (see the `reqwest` feature's
    /// notes: no aws-lc-sys, no cmake, no OpenSSL; the process-wide rustls
    /// provider is neither needed nor touched).
    ///
    /// # Errors
    /// [`BackendError::Client`](super::BackendError::Client) when the TLS
    /// configuration (the system's trust store) or reqwest's resolver cannot
    /// be initialised.
    pub fn new() -> Result<Self, super::BackendError> {
        let client = Self::builder()?
            .build()
            .map_err(|e| super::BackendError::Client(e.to_string()))?;
        Ok(Self { client })
    }

    /// reqwest's builder with this crate's settings (`TCP_NODELAY`, rustls on
    /// ring with the system's trust store, ALPN `h2` and `http/1.1`), for an
    /// application that sets the rest (proxy, headers, pool) itself and
    /// shares the client through [`From`].
    ///
    /// # Errors
    /// [`BackendError::Client`](super::BackendError::Client) when the
    /// system's trust store cannot be loaded.
    pub fn builder() -> Result<::reqwest::ClientBuilder, super::BackendError> {
        let tls = super::tls::client_config(&[b"h2", b"http/1.1"])
            .map_err(|e| super::BackendError::Client(e.to_string()))?;
        Ok(::reqwest::Client::builder()
            .tcp_nodelay(true)
            .tls_backend_preconfigured(tls))
    }

    /// The underlying reqwest client.
    pub fn client(&self) -> &::reqwest::Client {
        &self.client
    }
}

impl From<::reqwest::Client> for ReqwestClient {
    fn from(client: ::reqwest::Client) -> Self {
        Self { client }
    }
}

fn map_err(url: &Url, err: &::reqwest::Error, default: TransportKind) -> NetError {
    if err.is_timeout() {
        return NetError::Timeout {
            kind: TimeoutKind::Backend,
            url: url.clone(),
        };
    }
    let kind = if err.is_connect() {
        TransportKind::Connect
    } else if err.is_body() || err.is_decode() {
        TransportKind::Body
    } else if err.is_builder() || err.is_redirect() {
        TransportKind::Other
    } else {
        default
    };
    NetError::transport(kind, url.clone(), err)
}

impl HttpClient for ReqwestClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let url = request.url;
            let response = self
                .client
                .request(request.method.as_http(), url.clone())
                .headers(request.headers)
                .send()
                .await
                .map_err(|e| map_err(&url, &e, TransportKind::Request))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response
                .bytes_stream()
                .map_err(move |e| map_err(&url, &e, TransportKind::Body));
            Ok(HttpResponse::new(status, headers, Box::pin(body)))
        })
    }
}
