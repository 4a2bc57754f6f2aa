//! Feature-gated backends: the only place in the crate that names a runtime
//! or an HTTP library. Each is a thin adapter with no policy of its own.
//!
//! | module | implements | feature |
//! |---|---|---|
//! | [`tokio`] | [`Spawn`](crate::rt::Spawn) + timer on tokio | `tokio` |
//! | [`reqwest`] | [`HttpClient`](crate::net::HttpClient) on reqwest (rustls) | `reqwest` (implies `tokio`) |
//! | [`async_std`] | [`Spawn`](crate::rt::Spawn) + timer on async-std | `async-std` |
//! | [`surf`] | [`HttpClient`](crate::net::HttpClient) on surf (async-h1, rustls) | `surf` (implies `async-std`) |
//!
//! Any other executor or client plugs in by implementing the two traits.

#[cfg(feature = "async-std")]
pub mod async_std;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "surf")]
pub mod surf;
#[cfg(feature = "tokio")]
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

/// The default backend pair: tokio + reqwest when the `reqwest` feature is
/// on (also when `surf` is on too: reqwest is the crate's default feature,
/// so it wins; build `DownloaderConfig::new(Arc::new(AsyncStdRuntime), ...)`
/// to pick async-std + surf explicitly), otherwise async-std + surf.
#[cfg(any(feature = "reqwest", feature = "surf"))]
impl crate::dl::DownloaderConfig {
    /// A config with every default on the default backend pair (see above).
    ///
    /// With tokio + reqwest it must be called inside a tokio runtime (the
    /// loop and the fetches are spawned on the current one).
    ///
    /// # Errors
    /// [`BackendError::NoRuntime`] outside a tokio runtime (tokio + reqwest);
    /// [`BackendError::Client`] when the HTTP client cannot be built. Never panics.
    pub fn default_backend() -> Result<Self, BackendError> {
        use std::sync::Arc;
        #[cfg(feature = "reqwest")]
        {
            let spawn = self::tokio::TokioRuntime::current().ok_or(BackendError::NoRuntime)?;
            let client = self::reqwest::ReqwestClient::new()
                .map_err(|e| BackendError::Client(e.to_string()))?;
            Ok(Self::new(Arc::new(spawn), Arc::new(client)))
        }
        #[cfg(not(feature = "reqwest"))]
        {
            let client =
                self::surf::SurfClient::new().map_err(|e| BackendError::Client(e.to_string()))?;
            Ok(Self::new(
                Arc::new(self::async_std::AsyncStdRuntime),
                Arc::new(client),
            ))
        }
    }
}

#[cfg(any(feature = "reqwest", feature = "surf"))]
impl crate::dl::Downloader {
    /// `Downloader::new(DownloaderConfig::default_backend()?)`: a downloader
    /// on the default backend pair (tokio + reqwest if the `reqwest`
    /// feature is on, else async-std + surf).
    ///
    /// ```
    /// # #[cfg(feature = "reqwest")]
    /// # {
    /// // Outside a tokio runtime the tokio + reqwest default is a typed error.
    /// assert!(kithara_stream::dl::Downloader::with_default_backend().is_err());
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
#[cfg(any(feature = "reqwest", feature = "surf"))]
pub(crate) fn default_downloader() -> Result<crate::dl::Downloader, crate::SourceError> {
    crate::dl::Downloader::with_default_backend().map_err(crate::SourceError::other)
}

/// Without a backend feature there is no default downloader.
#[cfg(not(any(feature = "reqwest", feature = "surf")))]
pub(crate) fn default_downloader() -> Result<crate::dl::Downloader, crate::SourceError> {
    Err(crate::SourceError::Unsupported(
        "no downloader configured and no backend feature enabled",
    ))
}
