//! [`HttpClient`] on reqwest (rustls).

use futures::TryStreamExt;
use url::Url;

use crate::net::{HttpClient, HttpRequest, HttpResponse, NetError, TimeoutKind, TransportKind};

/// An [`HttpClient`] backed by a `reqwest::Client`.
///
/// Cloning shares the connection pool. Build it from the application's own
/// client with [`From`] to share that client's pool, proxy and TLS settings;
/// keep automatic decompression off in such a client, since `Range` offsets
/// address the bytes on the wire.
///
/// Needs a tokio runtime to run on (reqwest's requirement).
///
/// ```
/// let shared = reqwest::Client::new();
/// let client = kithara_stream::backends::reqwest::ReqwestClient::from(shared.clone());
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestClient {
    client: ::reqwest::Client,
}

impl ReqwestClient {
    /// A client with reqwest's defaults (rustls, no decompression).
    ///
    /// # Errors
    /// reqwest's error when its TLS backend or resolver cannot be initialised.
    pub fn new() -> Result<Self, ::reqwest::Error> {
        Ok(Self {
            client: ::reqwest::Client::builder().tcp_nodelay(true).build()?,
        })
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

#[async_trait::async_trait]
impl HttpClient for ReqwestClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, NetError> {
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
    }
}
