//! [`HttpClient`] on surf (async-h1 client, rustls).

use bytes::BytesMut;
use futures::AsyncReadExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use url::Url;

use crate::net::{HttpClient, HttpRequest, HttpResponse, NetError, TransportKind};
use crate::rt::BoxFuture;

/// An [`HttpClient`] backed by a `surf::Client`.
///
/// Build it from the application's own client with [`From`]; note that
/// surf's default `Config` has a 60 s *total* timeout, which would cut long
/// downloads: [`SurfClient::new`] turns it off (the core enforces its own
/// inactivity timeout on every backend).
///
/// # Keep-alive is off in [`SurfClient::new`]
/// surf's h1 connection pool (http-client 6.5) returns a connection to the
/// pool when a response body is dropped half-read, with the rest of that body
/// still on the wire; the next request on it then reads those bytes as its
/// response head (a corrupt or failed response). Dropping a body mid-stream
/// is routine here (a seek re-aims the download), so `new` opens one
/// connection per request instead. Connection failures also surface as
/// [`TransportKind::Connect`] only without the pool (the pool turns them
/// into strings). A client passed in with [`From`] keeps its own setting.
///
/// The adapter also turns a body that ends before its `Content-Length` into
/// a [`TransportKind::Body`] error (async-h1 ends it silently), and answers
/// `HEAD` with an empty body (async-h1 would wait for `Content-Length` bytes).
///
/// ```
/// let client = kithara_stream::backends::surf::SurfClient::new().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SurfClient {
    client: ::surf::Client,
}

impl SurfClient {
    /// A client with no total timeout, `TCP_NODELAY` on and keep-alive off
    /// (see the type's docs for why).
    ///
    /// # Errors
    /// surf's error when its configuration is rejected.
    pub fn new() -> Result<Self, ::surf::Error> {
        let client: ::surf::Client = ::surf::Config::new()
            .set_timeout(None)
            .set_tcp_no_delay(true)
            .set_http_keep_alive(false)
            .try_into()?;
        Ok(Self { client })
    }

    /// The underlying surf client.
    pub fn client(&self) -> &::surf::Client {
        &self.client
    }
}

impl From<::surf::Client> for SurfClient {
    fn from(client: ::surf::Client) -> Self {
        Self { client }
    }
}

/// The largest body chunk the adapter reads at once.
const READ_CHUNK: usize = 256 * 1024;
/// Chunks are cut from zeroed blocks of this size (one allocation per
/// block, freed when its last chunk is dropped; fresh zeroed memory is only
/// faulted in where a read lands).
const READ_BLOCK: usize = 4 * READ_CHUNK;

/// Connection failures arrive as an `io::Error` inside surf's error.
fn map_err(url: &Url, err: &::surf::Error, default: TransportKind) -> NetError {
    use std::io::ErrorKind as K;
    let kind = match err
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
    {
        Some(K::ConnectionRefused | K::AddrNotAvailable | K::NotFound) => TransportKind::Connect,
        _ => default,
    };
    let source: &(dyn std::error::Error + 'static) = err.as_ref();
    NetError::transport(kind, url.clone(), source)
}

impl HttpClient for SurfClient {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        Box::pin(async move {
            let url = request.url;
            let method = match request.method {
                crate::net::RequestMethod::Get => ::surf::http::Method::Get,
                crate::net::RequestMethod::Head => ::surf::http::Method::Head,
            };
            let mut req = ::surf::Request::new(method, url.clone());
            for (name, value) in &request.headers {
                if let Ok(v) = value.to_str() {
                    req.append_header(name.as_str(), v);
                }
            }
            let mut response = self
                .client
                .send(req)
                .await
                .map_err(|e| map_err(&url, &e, TransportKind::Request))?;
            let status = StatusCode::from_u16(response.status().into()).map_err(|_| {
                NetError::InvalidResponse {
                    url: url.clone(),
                    reason: format!("invalid status code {}", u16::from(response.status())),
                }
            })?;
            let mut headers = HeaderMap::new();
            for (name, values) in response.iter() {
                let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) else {
                    continue;
                };
                for value in values {
                    if let Ok(v) = HeaderValue::from_str(value.as_str()) {
                        headers.append(name.clone(), v);
                    }
                }
            }
            if request.method == crate::net::RequestMethod::Head {
                // No body follows a HEAD response, whatever Content-Length says.
                drop(response.take_body());
                return Ok(HttpResponse::new(
                    status,
                    headers,
                    Box::pin(futures::stream::empty()),
                ));
            }
            let body = response.take_body().into_reader();
            // Read straight into chunk buffers of up to `READ_CHUNK` bytes:
            // async-h1 hands a large read past its 8 KiB buffer, so each chunk
            // is one copy from the socket (no `fill_buf` + copy), and chunks are
            // as large as the socket has ready, so there are far fewer of them
            // (writer calls, storage notifications, reader wake-ups) downstream.
            let state = (body, url, BytesMut::new());
            let stream =
                futures::stream::try_unfold(state, move |(mut body, url, mut spare)| async move {
                    if spare.len() < READ_CHUNK {
                        spare = BytesMut::zeroed(READ_BLOCK);
                    }
                    let n = body
                        .read(&mut spare[..READ_CHUNK])
                        .await
                        .map_err(|e| NetError::transport(TransportKind::Body, url.clone(), &e))?;
                    if n == 0 {
                        return Ok(None);
                    }
                    let chunk = spare.split_to(n).freeze();
                    Ok(Some((chunk, (body, url, spare))))
                });
            Ok(HttpResponse::new(status, headers, Box::pin(stream)))
        })
    }
}
