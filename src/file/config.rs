//! [`HttpFileConfig`] and [`HttpFileStorage`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::dl::Downloader;
use crate::net::{NetError, parse_url};

/// Default [`HttpFileConfig::reaim_window`]: 64 KiB.
pub const DEFAULT_REAIM_WINDOW: u64 = 64 * 1024;

/// Default budget of [`HttpFileStorage::Bounded`] (via
/// [`HttpFileConfig::bounded_memory`]): 16 MiB.
pub const DEFAULT_BOUNDED_BUDGET: u64 = 16 << 20;

/// Default look-behind of [`HttpFileStorage::Bounded`]: 256 KiB, enough for
/// a decoder's small backward seeks.
pub const DEFAULT_LOOK_BEHIND: u64 = 256 << 10;

/// Where an [`HttpFile`](super::HttpFile) keeps the bytes it downloads.
///
/// Pick [`Memory`](Self::Memory) for files that fit in memory,
/// [`File`](Self::File) to keep them across runs (offline playback, resume),
/// [`Bounded`](Self::Bounded) for live radio and hours-long files.
///
/// ```
/// use kithara_stream::file::{DEFAULT_BOUNDED_BUDGET, DEFAULT_LOOK_BEHIND};
/// use kithara_stream::{HttpFileConfig, HttpFileStorage};
///
/// let cfg = HttpFileConfig::new("http://127.0.0.1:8000/radio")?;
/// assert_eq!(cfg.storage_kind(), &HttpFileStorage::Memory); // the default
/// let cfg = cfg.storage(HttpFileStorage::Bounded {
///     budget: DEFAULT_BOUNDED_BUDGET,
///     look_behind: DEFAULT_LOOK_BEHIND,
/// });
/// let same = HttpFileConfig::new("http://127.0.0.1:8000/radio")?
///     .bounded_memory(DEFAULT_BOUNDED_BUDGET);
/// assert_eq!(cfg.storage_kind(), same.storage_kind());
/// # Ok::<(), kithara_stream::net::NetError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpFileStorage {
    /// In memory (pages allocated only where bytes arrive); gone on drop.
    #[default]
    Memory,
    /// A file at this path that acts as a cache: a complete file from an
    /// earlier run opens with **no** network request (unless
    /// [`HttpFileConfig::revalidate`]); a partial one (it has a
    /// `<path>.ranges` sidecar) resumes, fetching only the missing ranges of
    /// the same version (`If-Range` with the recorded validator; another
    /// version on the server starts the download over). A complete file's
    /// validator is kept in `<path>.validator`. One open stream per path at
    /// a time.
    File(PathBuf),
    /// In memory within a fixed budget, however long the stream (internet
    /// radio, hours-long podcasts): see
    /// [`StorageResource::bounded`](crate::storage::StorageResource::bounded).
    /// The download pauses (TCP flow control holds the server) when it is
    /// `budget` ahead of the reader. Seeking into a part no longer held
    /// fetches it again with `Range`; on a server without `Range` support
    /// or a live stream it is
    /// [`StorageError::Evicted`](crate::storage::StorageError::Evicted).
    Bounded {
        /// Bytes held at most (rounded up to 64 KiB pages, at least 1 MiB).
        budget: u64,
        /// Bytes kept behind the reader (at most a quarter of the budget).
        look_behind: u64,
    },
}

/// How to open an [`HttpFile`](super::HttpFile): the URL, the downloader,
/// the storage, an optional read timeout and extra request headers.
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::{HttpFileConfig, HttpFileStorage};
///
/// let cfg = HttpFileConfig::new("http://127.0.0.1:8080/song.mp3")?
///     .cache_file("/tmp/song.mp3")
///     .read_timeout(Some(Duration::from_secs(20)))
///     .header(http::header::USER_AGENT, http::HeaderValue::from_static("demo/1.0"));
/// assert_eq!(cfg.url().path(), "/song.mp3");
/// assert!(matches!(cfg.storage_kind(), HttpFileStorage::File(_)));
/// assert!(HttpFileConfig::new("not a url").is_err());
/// # Ok::<(), kithara_stream::net::NetError>(())
/// ```
#[derive(Clone)]
pub struct HttpFileConfig {
    pub(crate) url: Url,
    pub(crate) downloader: Option<Downloader>,
    pub(crate) storage: HttpFileStorage,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) headers: HeaderMap,
    pub(crate) reaim_window: u64,
    pub(crate) revalidate: bool,
    pub(crate) icy: bool,
}

impl fmt::Debug for HttpFileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFileConfig")
            .field("url", &self.url.as_str())
            .field("downloader", &self.downloader.is_some())
            .field("storage", &self.storage)
            .field("read_timeout", &self.read_timeout)
            .field("headers", &self.headers)
            .field("reaim_window", &self.reaim_window)
            .field("revalidate", &self.revalidate)
            .field("icy", &self.icy)
            .finish()
    }
}

impl HttpFileConfig {
    /// A config for `url` (absolute `http`/`https`), in-memory storage, no
    /// read timeout, no extra headers, and no downloader (the default
    /// backend's is built at open time; see [`downloader`](Self::downloader)).
    ///
    /// # Errors
    /// [`NetError::InvalidUrl`] for anything that is not an absolute
    /// `http`/`https` URL. Never panics.
    pub fn new(url: &str) -> Result<Self, NetError> {
        Ok(Self::from_url(parse_url(url)?))
    }

    /// A config for an already parsed `url` (see [`new`](Self::new)).
    pub fn from_url(url: Url) -> Self {
        Self {
            url,
            downloader: None,
            storage: HttpFileStorage::Memory,
            read_timeout: None,
            headers: HeaderMap::new(),
            reaim_window: DEFAULT_REAIM_WINDOW,
            revalidate: false,
            icy: false,
        }
    }

    /// Fetches through `downloader` (share one between streams so they share
    /// its connection pool and its `max_concurrent` cap). Without it,
    /// opening builds a downloader on the default backend (see
    /// `Downloader::with_default_backend` for which, when several are on), and
    /// fails with [`SourceError::Unsupported`](crate::SourceError::Unsupported)
    /// when no backend feature is on.
    ///
    /// An `HttpFile` opened through a downloader on the in-memory test client
    /// (the `test-util` feature), read to the end:
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use std::io::Read;
    /// use kithara_stream::dl::{Downloader, DownloaderConfig};
    /// use kithara_stream::net::MemoryClient;
    /// use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    ///
    /// let client = MemoryClient::new();
    /// client.insert("http://127.0.0.1/song.wav", vec![7u8; 100_000]);
    /// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)));
    /// let cfg = HttpFileConfig::new("http://127.0.0.1/song.wav")?.downloader(dl);
    /// let mut stream = futures::executor::block_on(Stream::<HttpFile>::new(cfg))?;
    /// assert_eq!(stream.len(), Some(100_000)); // known from the headers
    /// let mut all = Vec::new();
    /// stream.read_to_end(&mut all)?; // blocking: a plain thread, not an executor's
    /// assert!(all.len() == 100_000 && all.iter().all(|&b| b == 7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn downloader(mut self, downloader: Downloader) -> Self {
        self.downloader = Some(downloader);
        self
    }

    /// Sets the storage (default [`HttpFileStorage::Memory`]).
    pub fn storage(mut self, storage: HttpFileStorage) -> Self {
        self.storage = storage;
        self
    }

    /// Keeps the bytes in memory (the default).
    pub fn memory(self) -> Self {
        self.storage(HttpFileStorage::Memory)
    }

    /// Keeps the bytes in a cache file at `path`; see [`HttpFileStorage::File`].
    ///
    /// The second open of a complete cache sends no request:
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use std::io::Read;
    /// use kithara_stream::dl::{Downloader, DownloaderConfig};
    /// use kithara_stream::net::MemoryClient;
    /// use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    ///
    /// let client = MemoryClient::new();
    /// client.insert("http://127.0.0.1/song.mp3", vec![1u8; 50_000]);
    /// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client.clone())));
    /// let dir = tempfile::tempdir()?;
    /// let cfg = HttpFileConfig::new("http://127.0.0.1/song.mp3")?
    ///     .downloader(dl)
    ///     .cache_file(dir.path().join("song.mp3"));
    /// let open = |cfg| futures::executor::block_on(Stream::<HttpFile>::new(cfg));
    /// let mut first = open(cfg.clone())?; // downloads
    /// first.read_to_end(&mut Vec::new())?;
    /// // The download commits just after its last byte; a drop before that keeps a partial cache.
    /// let t0 = std::time::Instant::now();
    /// while !first.source().is_complete() {
    ///     assert!(t0.elapsed() < Duration::from_secs(10));
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// drop(first);
    /// let sent = client.requests().len();
    /// let mut again = Vec::new();
    /// open(cfg)?.read_to_end(&mut again)?;
    /// assert_eq!(again.len(), 50_000);
    /// assert_eq!(client.requests().len(), sent, "served from the cache file");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_file(self, path: impl Into<PathBuf>) -> Self {
        self.storage(HttpFileStorage::File(path.into()))
    }

    /// Keeps at most `budget` bytes in memory ([`HttpFileStorage::Bounded`]
    /// with [`DEFAULT_LOOK_BEHIND`]); use [`DEFAULT_BOUNDED_BUDGET`] unless
    /// you know better. The choice for live streams and long resources.
    ///
    /// ```
    /// use kithara_stream::file::{DEFAULT_BOUNDED_BUDGET, DEFAULT_LOOK_BEHIND};
    /// use kithara_stream::{HttpFileConfig, HttpFileStorage};
    ///
    /// let cfg = HttpFileConfig::new("http://127.0.0.1:8000/live")?
    ///     .bounded_memory(DEFAULT_BOUNDED_BUDGET)
    ///     .icy_metadata(true);
    /// let HttpFileStorage::Bounded { budget, look_behind } = cfg.storage_kind() else {
    ///     unreachable!()
    /// };
    /// assert_eq!((*budget, *look_behind), (16 << 20, DEFAULT_LOOK_BEHIND));
    /// # Ok::<(), kithara_stream::net::NetError>(())
    /// ```
    pub fn bounded_memory(self, budget: u64) -> Self {
        self.storage(HttpFileStorage::Bounded {
            budget,
            look_behind: DEFAULT_LOOK_BEHIND,
        })
    }

    /// Asks for Icecast/Shoutcast metadata (`Icy-MetaData: 1`; default
    /// off). When the answer has `icy-metaint`, the metadata blocks are
    /// taken out of the byte stream (the reader sees the audio bytes only)
    /// and each title is published with the audio offset where it starts:
    /// see `HttpFileSource::icy_title` and `HttpFileSource::live_events`.
    ///
    /// ```
    /// use kithara_stream::HttpFileConfig;
    ///
    /// let cfg = HttpFileConfig::new("http://127.0.0.1:8000/radio")?.icy_metadata(true);
    /// assert!(format!("{cfg:?}").contains("icy: true"));
    /// # Ok::<(), kithara_stream::net::NetError>(())
    /// ```
    pub fn icy_metadata(mut self, on: bool) -> Self {
        self.icy = on;
        self
    }

    /// A blocking `Read` on the stream that makes no progress for this long
    /// fails with `ErrorKind::TimedOut` (the stream starts with it; see
    /// `Stream::set_read_timeout`). `None` (the default) waits for data, the
    /// end, an error or a cancel.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Adds (replaces) a request header sent with every request.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Adds (replaces) every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        crate::net::merge_headers(&mut self.headers, &headers);
        self
    }

    /// How far ahead of the running download a reader may wait before the
    /// download is re-aimed at the reader (default [`DEFAULT_REAIM_WINDOW`]).
    /// A wanted byte within this many bytes after the download's current
    /// position is left to arrive; one further away (or behind, or in
    /// another gap) cancels the running fetch and starts a `Range` request
    /// at the reader.
    ///
    /// A seek far ahead of a slow download re-aims it with `Range`:
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use std::io::{Read, Seek, SeekFrom};
    /// use kithara_stream::dl::{Downloader, DownloaderConfig};
    /// use kithara_stream::net::{MemoryClient, MemoryResource};
    /// use kithara_stream::{HttpFile, HttpFileConfig, Stream};
    ///
    /// let client = MemoryClient::new();
    /// let body: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    /// // Every answer stalls after 64 KiB: only a re-aimed request reaches 512 KiB.
    /// client.insert_resource("http://127.0.0.1/a", MemoryResource::new(body).stall_after(64 << 10));
    /// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client.clone())));
    /// let cfg = HttpFileConfig::new("http://127.0.0.1/a")?
    ///     .downloader(dl)
    ///     .reaim_window(64 << 10)
    ///     .read_timeout(Some(Duration::from_secs(10))); // a bug fails, never hangs
    /// let mut stream = futures::executor::block_on(Stream::<HttpFile>::new(cfg))?;
    /// stream.seek(SeekFrom::Start(512 << 10))?;
    /// let mut buf = [0u8; 4];
    /// stream.read_exact(&mut buf)?;
    /// assert_eq!(buf, [0, 1, 2, 3]); // byte i is i % 256, and 512 Ki % 256 == 0
    /// let last = client.requests().pop().and_then(|r| r.range).unwrap();
    /// assert!(last.starts_with("bytes=524288-"), "{last}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reaim_window(mut self, bytes: u64) -> Self {
        self.reaim_window = bytes;
        self
    }

    /// Whether a complete cache file is checked with the server before it
    /// is used (default `false`: a complete cache opens with **no** request,
    /// which is what offline playback needs).
    ///
    /// With `true`, opening a complete cache sends one conditional `GET`
    /// (`If-None-Match` with the stored `ETag`, else `If-Modified-Since`
    /// with the stored `Last-Modified`): `304 Not Modified` (or a `200` with
    /// the same validator) keeps the file; a `200` of another version
    /// replaces it (the file is emptied and downloaded again, as a fresh
    /// open would). A cache without a stored validator is downloaded again.
    /// When the check itself fails (no network, an error status), the cached
    /// file is used as it is. A partial cache is unaffected: its resume already asks
    /// for the stored version only (`If-Range`).
    ///
    /// ```
    /// use kithara_stream::HttpFileConfig;
    ///
    /// // Offline-first (the default): a complete cache file opens with no request.
    /// let offline = HttpFileConfig::new("http://127.0.0.1:8000/song.mp3")?
    ///     .cache_file("song.mp3");
    /// // Fresh-first: one conditional GET (a 304 keeps the file).
    /// let fresh = offline.clone().revalidate(true);
    /// assert!(format!("{offline:?}").contains("revalidate: false"));
    /// assert!(format!("{fresh:?}").contains("revalidate: true"));
    /// # Ok::<(), kithara_stream::net::NetError>(())
    /// ```
    pub fn revalidate(mut self, revalidate: bool) -> Self {
        self.revalidate = revalidate;
        self
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The configured storage.
    pub fn storage_kind(&self) -> &HttpFileStorage {
        &self.storage
    }
}
