#![cfg_attr(
    not(any(feature = "reqwest", feature = "smol-http", feature = "surf")),
    allow(unused_variables, unused_imports, unreachable_code)
)]
//! Run one async test body on every enabled backend pair.
//!
//! | backend | module name in test names | runtime | client | feature |
//! |---|---|---|---|---|
//! | [`Backend::TokioReqwest`] | `reqwest` | tokio multi-thread (2 workers), fresh per test | `ReqwestClient::new()` | `reqwest` |
//! | [`Backend::SmolHttp`] | `smol` | a `smol::Executor` of 2 threads, fresh per test (the body runs in `smol::block_on`) | `SmolHttpClient::new()` | `smol-http` |
//! | [`Backend::AsyncStdSurf`] | `surf` | `async_std::task::block_on` | `SurfClient::new()` | `surf` |
//!
//! # Usage
//!
//! ```ignore
//! #![allow(clippy::unwrap_used, clippy::expect_used)]
//! mod support;
//!
//! use std::time::Duration;
//! use kithara_stream::net::HttpRequest;
//! use support::backends::backend_tests;
//! use support::server::{Resource, TestServer};
//!
//! backend_tests! {
//!     /// Doc comments and attributes (e.g. `#[ignore]`) are passed through.
//!     fn full_get(env) {
//!         let server = TestServer::start();
//!         server.add("/a", Resource::new(&b"hello"[..]));
//!         let resp = env
//!             .timeout(Duration::from_secs(10), env.client.send(HttpRequest::get(server.url("/a"))))
//!             .await
//!             .expect("in time")
//!             .expect("sent");
//!         assert_eq!(&resp.bytes().await.unwrap()[..], b"hello");
//!     }
//!
//!     fn another_test(env) { /* ... */ }
//! }
//! ```
//!
//! This expands to one `#[test]` per test and enabled backend, named
//! `reqwest::full_get`, `smol::full_get`, `surf::full_get`, ... (filter with
//! `cargo test reqwest::`). With neither feature on, it expands to nothing.
//! The body is an `async` block with `env: Env` in scope; it need not be
//! `Send`. Each test is bounded by [`TEST_LIMIT`] and panics when it runs
//! over (instead of hanging CI).
//!
//! Items the test bodies use must be in scope of the test file's root (the
//! generated modules `use super::*`).
//!
//! Outside the macro, [`Backend::enabled`] lists the enabled backends and
//! [`Backend::run`] runs one body on one of them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kithara_stream::net::HttpClient;
use kithara_stream::rt::{Elapsed, Spawn};

/// The hard limit on one test body.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A backend pair (runtime + HTTP client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// tokio + reqwest.
    #[cfg(feature = "reqwest")]
    TokioReqwest,
    /// smol + the crate's own HTTP/1.1 client.
    #[cfg(feature = "smol-http")]
    SmolHttp,
    /// async-std + surf.
    #[cfg(feature = "surf")]
    AsyncStdSurf,
}

/// What a test body gets: the backend's executor/timer and HTTP client.
#[derive(Clone)]
pub struct Env {
    /// The backend's name: `"reqwest"`, `"smol"` or `"surf"`.
    pub name: &'static str,
    /// Which backend this is.
    pub backend: Backend,
    /// The runtime's spawner and timer.
    pub spawn: Arc<dyn Spawn>,
    /// A fresh HTTP client (its own connection pool) for this test.
    pub client: Arc<dyn HttpClient>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("name", &self.name).finish()
    }
}

impl Env {
    /// A downloader on this backend with `max_concurrent` slots and quick
    /// retries (3 within the budget, 5 ms doubling to 50 ms), as the
    /// HttpFile suites use it.
    pub fn downloader(&self, max_concurrent: usize) -> kithara_stream::dl::Downloader {
        use kithara_stream::dl::{Downloader, DownloaderConfig};
        use kithara_stream::net::RetryPolicy;
        Downloader::new(
            DownloaderConfig::new(self.spawn.clone(), self.client.clone())
                .max_concurrent(max_concurrent)
                .retry(RetryPolicy::new(
                    3,
                    Duration::from_millis(5),
                    Duration::from_millis(50),
                )),
        )
    }

    /// Runs `fut` with a deadline on this backend's timer.
    pub async fn timeout<F: Future>(&self, limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
        kithara_stream::rt::timeout(&*self.spawn, limit, fut).await
    }

    /// Sleeps on this backend's timer.
    pub async fn sleep(&self, duration: Duration) {
        self.spawn.sleep(duration).await;
    }

    /// Another client of the same backend, with its own connection pool.
    pub fn new_client(&self) -> Arc<dyn HttpClient> {
        self.backend.new_client()
    }
}

impl Backend {
    /// Every backend enabled in this build (possibly none).
    pub fn enabled() -> Vec<Backend> {
        vec![
            #[cfg(feature = "reqwest")]
            Backend::TokioReqwest,
            #[cfg(feature = "smol-http")]
            Backend::SmolHttp,
            #[cfg(feature = "surf")]
            Backend::AsyncStdSurf,
        ]
    }

    /// The backend's short name, as used in test names.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "reqwest")]
            Backend::TokioReqwest => "reqwest",
            #[cfg(feature = "smol-http")]
            Backend::SmolHttp => "smol",
            #[cfg(feature = "surf")]
            Backend::AsyncStdSurf => "surf",
        }
    }

    /// A new client of this backend (its own pool). For reqwest, call it
    /// inside the test body (in the runtime's context) or any time after
    /// [`run`](Self::run) started.
    pub fn new_client(self) -> Arc<dyn HttpClient> {
        match self {
            #[cfg(feature = "reqwest")]
            Backend::TokioReqwest => Arc::new(
                kithara_stream::backends::reqwest::ReqwestClient::new().expect("reqwest client"),
            ),
            #[cfg(feature = "smol-http")]
            Backend::SmolHttp => Arc::new(
                kithara_stream::backends::smol_http::SmolHttpClient::new().expect("smol client"),
            ),
            #[cfg(feature = "surf")]
            Backend::AsyncStdSurf => {
                Arc::new(kithara_stream::backends::surf::SurfClient::new().expect("surf client"))
            }
        }
    }

    /// Runs `body(env)` to completion on this backend, bounded by
    /// [`TEST_LIMIT`] (panics when exceeded). A tokio runtime is created for
    /// this call and shut down (bounded) afterwards.
    pub fn run<F, Fut>(self, body: F)
    where
        F: FnOnce(Env) -> Fut,
        Fut: Future<Output = ()>,
    {
        let name = self.name();
        match self {
            #[cfg(feature = "reqwest")]
            Backend::TokioReqwest => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let spawn: Arc<dyn Spawn> = Arc::new(
                    kithara_stream::backends::tokio::TokioRuntime::from(rt.handle().clone()),
                );
                let client = {
                    let _ctx = rt.enter();
                    self.new_client()
                };
                let env = Env {
                    name,
                    backend: self,
                    spawn: Arc::clone(&spawn),
                    client,
                };
                let out = rt.block_on(kithara_stream::rt::timeout(&*spawn, TEST_LIMIT, body(env)));
                rt.shutdown_timeout(Duration::from_secs(2));
                out.unwrap_or_else(|_| panic!("[{name}] test exceeded {TEST_LIMIT:?}"));
            }
            #[cfg(feature = "smol-http")]
            Backend::SmolHttp => {
                let ex = Arc::new(smol::Executor::new());
                let (stop, stopped) = smol::channel::bounded::<()>(1);
                let threads: Vec<_> = (0..2)
                    .map(|_| {
                        let (ex, stopped) = (Arc::clone(&ex), stopped.clone());
                        std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())))
                    })
                    .collect();
                let spawn: Arc<dyn Spawn> =
                    Arc::new(kithara_stream::backends::smol::SmolRuntime::from(ex));
                let env = Env {
                    name,
                    backend: self,
                    spawn: Arc::clone(&spawn),
                    client: self.new_client(),
                };
                let out =
                    smol::block_on(kithara_stream::rt::timeout(&*spawn, TEST_LIMIT, body(env)));
                // Closing the channel ends every `run`; the threads exit.
                drop(stop);
                for t in threads {
                    let _ = t.join();
                }
                out.unwrap_or_else(|_| panic!("[{name}] test exceeded {TEST_LIMIT:?}"));
            }
            #[cfg(feature = "surf")]
            Backend::AsyncStdSurf => {
                let spawn: Arc<dyn Spawn> =
                    Arc::new(kithara_stream::backends::async_std::AsyncStdRuntime);
                let env = Env {
                    name,
                    backend: self,
                    spawn: Arc::clone(&spawn),
                    client: self.new_client(),
                };
                async_std::task::block_on(kithara_stream::rt::timeout(
                    &*spawn,
                    TEST_LIMIT,
                    body(env),
                ))
                .unwrap_or_else(|_| panic!("[{name}] test exceeded {TEST_LIMIT:?}"));
            }
        }
    }
}

/// Defines each test once per enabled backend; see the module docs.
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* fn $name:ident($env:ident) $body:block )*) => {
        #[cfg(feature = "reqwest")]
        mod reqwest {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    $crate::support::backends::Backend::TokioReqwest
                        .run(|$env: $crate::support::backends::Env| async move $body);
                }
            )*
        }
        #[cfg(feature = "smol-http")]
        mod smol {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    $crate::support::backends::Backend::SmolHttp
                        .run(|$env: $crate::support::backends::Env| async move $body);
                }
            )*
        }
        #[cfg(feature = "surf")]
        mod surf {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    $crate::support::backends::Backend::AsyncStdSurf
                        .run(|$env: $crate::support::backends::Env| async move $body);
                }
            )*
        }
    };
}
#[allow(unused_imports)] // unused in test files that only need the server
pub(crate) use backend_tests;
