//! A user's own [`HttpClient`] on a blocking library (ureq 3), on smol: the
//! glue a new user writes from outside the crate, with nothing but this
//! crate (`http`, `url`, `bytes` are re-exported) and the two libraries.
//! It then streams a generated WAV served on 127.0.0.1.
//!
//! ```text
//! cargo run --example smol_ureq --no-default-features --features smol
//! ```
//!
//! A blocking library cannot abort a request in flight: dropping `send`
//! lets it finish its head on the blocking pool, dropping the body closes
//! the connection after the read in progress. `SmolHttpClient` (feature
//! `smol-http`) aborts at once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kithara_stream::backends::smol::SmolRuntime;
use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{HttpClient, HttpRequest, HttpResponse, NetError, TransportKind};
use kithara_stream::rt::BoxFuture;
use kithara_stream::{HttpFile, HttpFileConfig, Stream, http, net};

use support::BoxError;

// ---- the glue ----------------------------------------------------------

struct Ureq(ureq::Agent, SmolRuntime);

impl HttpClient for Ureq {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, NetError>> {
        let (agent, rt) = (self.0.clone(), self.1.clone());
        Box::pin(smol::unblock(move || {
            let url = req.url;
            let fail = |e: &(dyn std::error::Error + 'static)| {
                NetError::transport(TransportKind::Request, url.clone(), e)
            };
            let mut request = http::Request::builder()
                .method(req.method.as_http())
                .uri(url.as_str())
                .body(())
                .map_err(|e| fail(&e))?;
            *request.headers_mut() = req.headers;
            let (head, body) = agent.run(request).map_err(|e| fail(&e))?.into_parts();
            let body = net::blocking_body(body.into_reader(), url, rt);
            Ok(HttpResponse::new(head.status, head.headers, body))
        }))
    }
}

// ---- end of the glue ---------------------------------------------------

fn main() -> Result<(), BoxError> {
    let Some(support::Job {
        url,
        source,
        out_path,
    }) = support::job_from_args("smol_ureq", 1024 * 1024)?
    else {
        return Ok(());
    };
    // Statuses are the core's business: ureq must not turn 4xx/5xx into errors.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let rt = SmolRuntime::global();
    let client = Ureq(agent, rt.clone());
    let downloader = Downloader::new(DownloaderConfig::new(Arc::new(rt), Arc::new(client)));
    let config = HttpFileConfig::from_url(url)
        .downloader(downloader)
        .read_timeout(Some(Duration::from_secs(30)));
    let stream = smol::block_on(Stream::<HttpFile>::new(config))?;
    support::exercise(stream, source.as_deref(), out_path.as_deref())
}
