//! Feature-gated backends: the only place in the crate that names a runtime
//! or an HTTP library. Each is a thin adapter with no policy of its own.
//!
//! | module | implements | feature |
//! |---|---|---|
//! | `tokio` | [`Spawn`](crate::rt::Spawn) + timer on tokio | `tokio` |
//! | `reqwest` | [`HttpClient`](crate::net::HttpClient) on reqwest 0.13 (rustls, ring) | `reqwest` (implies `tokio`) |
//! | `smol` | [`Spawn`](crate::rt::Spawn) + timer + blocking pool on smol | `smol` |
//! | `smol_http` | [`HttpClient`](crate::net::HttpClient): the crate's own HTTP/1.1 client on smol (rustls, ring; no tokio) | `smol-http` (implies `smol`) |
//! | `async_std` | [`Spawn`](crate::rt::Spawn) + timer on async-std (discontinued upstream) | `async-std` |
//! | `surf` | [`HttpClient`](crate::net::HttpClient) on surf (async-h1, rustls 0.18; unmaintained upstream) | `surf` (implies `async-std`) |
//!
//! For an application without tokio, smol + `smol-http` is the recommended
//! pair: both are maintained, and its tree has no tokio and no crate with a
//! RustSec advisory. async-std + surf stay for existing users; async-std is
//! discontinued (RUSTSEC-2025-0052) and surf's tree carries rustls 0.18,
//! webpki 0.21 and ring 0.16 (advisories) and tokio (through
//! `http-client` → `deadpool`).
//!
//! Any other executor or client plugs in by implementing the two traits.
//!
//! # TLS
//! Both bundled clients on rustls 0.23 use the **ring** crypto provider,
//! set explicitly per client (no process-wide provider is installed or
//! needed), and the system's trust store (rustls-platform-verifier). ring
//! needs only a C compiler: no cmake, no `aws-lc-sys`, no system OpenSSL.

#[cfg(feature = "async-std")]
#[cfg_attr(docsrs, doc(cfg(feature = "async-std")))]
pub mod async_std;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub mod reqwest;
#[cfg(feature = "smol")]
#[cfg_attr(docsrs, doc(cfg(feature = "smol")))]
pub mod smol;
#[cfg(feature = "smol-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "smol-http")))]
pub mod smol_http;
#[cfg(feature = "surf")]
#[cfg_attr(docsrs, doc(cfg(feature = "surf")))]
pub mod surf;
#[cfg(any(feature = "reqwest", feature = "smol-http"))]
mod tls;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

/// Why a default-backend constructor could not build a downloader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The tokio + reqwest default was asked for outside a tokio runtime.
    #[error(
        "no tokio runtime: call the default constructor from inside a tokio runtime, or build DownloaderConfig::new with an explicit Spawn"
    )]
    NoRuntime,
    /// The HTTP client could not be built (TLS or resolver initialisation).
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// The default backend pair, when more than one client feature is on, in
/// this order:
///
/// 1. tokio + reqwest (`reqwest`; the crate's default feature), when called
///    inside a tokio runtime;
/// 2. smol (global executor) + [`SmolHttpClient`](smol_http::SmolHttpClient)
///    (`smol-http`), which works anywhere, so it is also the fallback
///    outside a tokio runtime when `reqwest` is on too;
/// 3. async-std + surf (`surf`).
///
/// To pick a pair explicitly, build
/// `DownloaderConfig::new(Arc::new(runtime), Arc::new(client))`.
#[cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf")))
)]
impl crate::dl::DownloaderConfig {
    /// A config with every default on the default backend pair (see above).
    ///
    /// With tokio + reqwest it must be called inside a tokio runtime (the
    /// loop and the fetches are spawned on the current one).
    ///
    /// # Errors
    /// [`BackendError::NoRuntime`] outside a tokio runtime when `reqwest` is
    /// the only client feature; [`BackendError::Client`] when the HTTP
    /// client cannot be built. Never panics.
    pub fn default_backend() -> Result<Self, BackendError> {
        use std::sync::Arc;
        let client_err = |e: &dyn std::fmt::Display| BackendError::Client(e.to_string());
        #[cfg(feature = "reqwest")]
        if let Some(spawn) = self::tokio::TokioRuntime::current() {
            let client = self::reqwest::ReqwestClient::new()?;
            return Ok(Self::new(Arc::new(spawn), Arc::new(client)));
        }
        #[cfg(feature = "smol-http")]
        {
            let _ = client_err;
            let client = self::smol_http::SmolHttpClient::new()?;
            Ok(Self::new(
                Arc::new(self::smol::SmolRuntime::global()),
                Arc::new(client),
            ))
        }
        #[cfg(all(not(feature = "smol-http"), feature = "surf"))]
        {
            let client = self::surf::SurfClient::new().map_err(|e| client_err(&e))?;
            Ok(Self::new(
                Arc::new(self::async_std::AsyncStdRuntime),
                Arc::new(client),
            ))
        }
        #[cfg(not(any(feature = "smol-http", feature = "surf")))]
        {
            let _ = client_err;
            Err(BackendError::NoRuntime)
        }
    }
}

#[cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf")))
)]
impl crate::dl::Downloader {
    /// `Downloader::new(DownloaderConfig::default_backend()?)`: a downloader
    /// on the default backend pair (see
    /// [`DownloaderConfig::default_backend`](crate::dl::DownloaderConfig::default_backend)
    /// for the order when several are on).
    ///
    /// ```
    /// # #[cfg(all(feature = "reqwest", not(feature = "smol-http"), not(feature = "surf")))]
    /// # {
    /// // With only tokio + reqwest, outside a tokio runtime the default is a typed error.
    /// assert!(kithara_stream::dl::Downloader::with_default_backend().is_err());
    /// # }
    /// # #[cfg(feature = "reqwest")]
    /// # {
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let dl = rt.block_on(async { kithara_stream::dl::Downloader::with_default_backend() });
    /// assert!(dl.is_ok());
    /// # }
    /// ```
    ///
    /// # Errors
    /// See [`DownloaderConfig::default_backend`](crate::dl::DownloaderConfig::default_backend).
    pub fn with_default_backend() -> Result<Self, BackendError> {
        Ok(Self::new(crate::dl::DownloaderConfig::default_backend()?))
    }
}

/// The downloader an [`HttpFile`](crate::HttpFile) without an explicit one
/// uses: [`Downloader::with_default_backend`](crate::dl::Downloader::with_default_backend).
#[cfg(any(feature = "reqwest", feature = "smol-http", feature = "surf"))]
pub(crate) fn default_downloader() -> Result<crate::dl::Downloader, crate::SourceError> {
    crate::dl::Downloader::with_default_backend().map_err(crate::SourceError::other)
}

/// Without a backend feature there is no default downloader.
#[cfg(not(any(feature = "reqwest", feature = "smol-http", feature = "surf")))]
pub(crate) fn default_downloader() -> Result<crate::dl::Downloader, crate::SourceError> {
    Err(crate::SourceError::Unsupported(
        "no downloader configured and no backend feature enabled",
    ))
}
