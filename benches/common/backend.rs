//! The backend pairs the network benches compare, shared by `pipeline` and
//! `rangeless`: tokio + reqwest, async-std + surf, smol + smol-http. Each
//! brings its executor, our client adapter and the raw client under it
//! (for smol-http the adapter is the client: it is the crate's own).
//!
//! Include it only when at least one pair's features are on.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kithara_stream::dl::{Downloader, DownloaderConfig};
use kithara_stream::net::{HttpClient, NetError};
use kithara_stream::rt::{BoxFuture, Spawn};
use url::Url;

/// One backend pair: its executor, our client adapter and the raw client.
pub(crate) struct Backend {
    /// The pair's name in tables and in `KITHARA_BENCH_BACKENDS`.
    pub(crate) name: &'static str,
    kind: Kind,
    pub(crate) spawn: Arc<dyn Spawn>,
    pub(crate) client: Arc<dyn HttpClient>,
}

enum Kind {
    #[cfg(feature = "reqwest")]
    Reqwest {
        rt: tokio::runtime::Runtime,
        raw: reqwest::Client,
    },
    #[cfg(feature = "surf")]
    Surf { raw: surf::Client },
    #[cfg(feature = "smol-http")]
    SmolHttp {
        raw: kithara_stream::backends::smol_http::SmolHttpClient,
    },
}

impl Backend {
    /// Every enabled pair whose name `filter` (comma-separated names;
    /// `None` for all) lists, in the order reqwest, surf, smol-http.
    pub(crate) fn all(filter: Option<&str>) -> Vec<Backend> {
        let wanted = |name: &str| filter.is_none_or(|f| f.split(',').any(|x| x.trim() == name));
        let mut out = Vec::new();
        #[cfg(feature = "reqwest")]
        if wanted("reqwest") {
            use kithara_stream::backends::{reqwest::ReqwestClient, tokio::TokioRuntime};
            // The default multi-thread runtime: one worker per core.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            let ours = ReqwestClient::new().unwrap();
            let raw = ours.client().clone();
            out.push(Backend {
                name: "reqwest",
                spawn: Arc::new(TokioRuntime::from(rt.handle().clone())),
                client: Arc::new(ours),
                kind: Kind::Reqwest { rt, raw },
            });
        }
        #[cfg(feature = "surf")]
        if wanted("surf") {
            use kithara_stream::backends::{async_std::AsyncStdRuntime, surf::SurfClient};
            let ours = SurfClient::new().unwrap();
            let raw = ours.client().clone();
            out.push(Backend {
                name: "surf",
                spawn: Arc::new(AsyncStdRuntime),
                client: Arc::new(ours),
                kind: Kind::Surf { raw },
            });
        }
        #[cfg(feature = "smol-http")]
        if wanted("smol-http") {
            use kithara_stream::backends::{smol::SmolRuntime, smol_http::SmolHttpClient};
            // smol's global executor, as a user starts it (`SMOL_THREADS`
            // threads, default 1); clones of the client share its pool.
            let ours = SmolHttpClient::new().unwrap();
            out.push(Backend {
                name: "smol-http",
                spawn: Arc::new(SmolRuntime::global()),
                client: Arc::new(ours.clone()),
                kind: Kind::SmolHttp { raw: ours },
            });
        }
        out
    }

    /// Runs `fut` to completion on the calling thread, inside the pair's
    /// runtime.
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.kind {
            #[cfg(feature = "reqwest")]
            Kind::Reqwest { rt, .. } => rt.block_on(fut),
            #[cfg(feature = "surf")]
            Kind::Surf { .. } => async_std::task::block_on(fut),
            #[cfg(feature = "smol-http")]
            Kind::SmolHttp { .. } => smol::block_on(fut),
        }
    }

    /// Spawns `fut` on the backend's executor; the result comes back
    /// through the returned future.
    pub(crate) fn spawn_join<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<'static, T> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.spawn.spawn(Box::pin(async move {
            let _ = tx.send(fut.await);
        }));
        Box::pin(async move { rx.await.expect("task finished") })
    }

    /// A downloader on this pair with `max_concurrent` fetches at once.
    pub(crate) fn downloader(&self, max_concurrent: usize) -> Downloader {
        Downloader::new(
            DownloaderConfig::new(self.spawn.clone(), self.client.clone())
                .max_concurrent(max_concurrent),
        )
    }

    /// The raw client drains `url` into nothing: (time to first chunk, bytes).
    pub(crate) fn raw_drain(&self, url: Url) -> BoxFuture<'static, (Duration, u64)> {
        match &self.kind {
            #[cfg(feature = "reqwest")]
            Kind::Reqwest { raw, .. } => {
                let client = raw.clone();
                Box::pin(async move {
                    let t0 = Instant::now();
                    let mut resp = client.get(url).send().await.unwrap();
                    assert!(resp.status().is_success());
                    let mut first = None;
                    let mut n = 0u64;
                    while let Some(chunk) = resp.chunk().await.unwrap() {
                        first.get_or_insert_with(|| t0.elapsed());
                        n += chunk.len() as u64;
                    }
                    (first.unwrap_or_default(), n)
                })
            }
            #[cfg(feature = "surf")]
            Kind::Surf { raw } => {
                use futures::AsyncBufReadExt;
                let client = raw.clone();
                Box::pin(async move {
                    let t0 = Instant::now();
                    let req = surf::Request::new(surf::http::Method::Get, url);
                    let mut resp = client.send(req).await.unwrap();
                    assert!(resp.status().is_success());
                    let mut body = resp.take_body().into_reader();
                    let mut first = None;
                    let mut n = 0u64;
                    loop {
                        let len = body.fill_buf().await.unwrap().len();
                        if len == 0 {
                            break;
                        }
                        first.get_or_insert_with(|| t0.elapsed());
                        body.consume_unpin(len);
                        n += len as u64;
                    }
                    (first.unwrap_or_default(), n)
                })
            }
            #[cfg(feature = "smol-http")]
            Kind::SmolHttp { raw } => {
                use kithara_stream::net::HttpRequest;
                let client = raw.clone();
                Box::pin(async move {
                    let t0 = Instant::now();
                    let resp = client.send(HttpRequest::get(url)).await.unwrap();
                    assert!(resp.status.is_success());
                    drain_timed(resp.body, t0).await
                })
            }
        }
    }
}

/// Drains a body into nothing: (time from `t0` to the first chunk, bytes).
/// Panics on a body error (a bench has no use for a broken run).
pub(crate) async fn drain_timed(
    mut body: impl futures::Stream<Item = Result<bytes::Bytes, NetError>> + Unpin,
    t0: Instant,
) -> (Duration, u64) {
    use futures::StreamExt;
    let mut first = None;
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        first.get_or_insert_with(|| t0.elapsed());
        n += chunk.unwrap().len() as u64;
    }
    (first.unwrap_or_default(), n)
}
