//! [`HttpFile`]: progressive HTTP download as a [`StreamType`] — the
//! reference protocol.
//!
//! `Stream::<HttpFile>::new(config).await` registers a peer with the
//! config's [`Downloader`], resolves once the first
//! response's headers are in (so a 404, a 500, an HTML error page or a
//! refused connection is a typed error from `new`), and returns a stream
//! that reads the bytes while they download.
//!
//! # How the download is planned
//! One fetch at a time per file. The peer aims it at the reader: the first
//! missing byte at or after the reader's position, to the end of that gap
//! (a `Range` request unless it starts at byte 0 and runs to the end). When
//! the reader moves (a seek, or a wait) to a byte that is neither present
//! nor within [`reaim_window`](HttpFileConfig::reaim_window) ahead of the
//! running fetch, the running fetch is cancelled through its epoch token
//! (its `on_complete` still runs once, as cancelled) and the peer is woken
//! (a waker, no polling) to start a `Range` request at the reader. When
//! nothing is missing after the reader, the gaps before it are fetched, so
//! the resource completes and is committed (a cache file loses its sidecar).
//!
//! # One version, never two
//! The first response's validator is kept with the bytes (in memory, and in
//! a cache file's sidecar): its strong `ETag`, else its `Last-Modified` (a
//! weak `ETag` is never used; RFC 9110 §8.8, §13.1.5). Every request for a
//! part of the resource carries it in `If-Range`: the peer's re-aims and gap
//! fills, the downloader's mid-body resumes, a cache resume. An answer of
//! another version (a `200` to the `If-Range`, a `206` or `200` with another
//! validator, or another total length) is never spliced with stored bytes:
//! no byte of it is stored, and once that fetch has ended
//! - **before the reader got a byte** (a cache resume, or early in the
//!   download): the stored bytes are dropped (a cache file is emptied, on
//!   the downloader's blocking pool) and the download starts over with the
//!   new version (one more request);
//!   [`version_restarts`](HttpFileSource::version_restarts) counts it;
//! - **after**: the stream fails with
//!   [`NetError::ResourceChanged`](crate::net::NetError::ResourceChanged)
//!   (the URL and both validators), and storage is emptied so a cache file
//!   claims no byte of the old version.
//!
//! Without any validator (a server that sends neither `ETag` nor
//! `Last-Modified`) only a change of the total length is noticed: a new
//! version of the **same length** cannot be told apart, and may be spliced.
//! A cache written by an older release (sidecar version 1) has no
//! validator either and is resumed with the same weaker check.
//!
//! A complete cache file opens with no request; with
//! [`revalidate`](HttpFileConfig::revalidate) it is checked first with a
//! conditional `GET` (`304` keeps it, another version replaces it).
//!
//! # Lying and broken servers
//! - **200 to a `Range` request** (the server ignores ranges; the same
//!   validator): the body is the whole resource from byte 0; every byte
//!   streaming past that storage lacks is stored, so the reader gets correct
//!   bytes and the pass is not wasted. Once seen
//!   ([`ranges_supported`](HttpFileSource::ranges_supported) is
//!   `Some(false)`), a seek never cancels that one fetch: behind its
//!   frontier the bytes are stored, ahead of it the reader waits for it (the
//!   read timeout, if any, still applies). Random seeks cost about one
//!   pass of the body, not one per seek.
//! - A **`Content-Range` that does not match the request** (other start,
//!   other end, another total length than the one already known) fails the
//!   fetch with [`NetError::InvalidResponse`](crate::net::NetError) and the
//!   resource with it; nothing of that body is stored.
//! - A **body shorter than announced** is resumed by the downloader; when it
//!   cannot be completed the resource fails and the reader gets the error,
//!   never a premature `Ok(0)`.
//! - **No length** (chunked): the reader reads until the body ends; then the
//!   length is known and the resource is committed with it.
//! - 404/500/HTML and other non-retryable errors fail the resource: typed
//!   from `Stream::new` if the headers were not in yet, else from `read`
//!   (`SourceError::Net` inside the `io::Error`).
//! - Retryable failures after the headers: the downloader retries and
//!   resumes each fetch for its retry budget (renewed by progress); the
//!   peer then re-plans from the first missing byte while that budget
//!   lasts, counted from the last progress, and gives up once it is spent
//!   or after [`MAX_FETCH_FAILURES`] failed fetches in a row without
//!   progress, whichever comes first. That
//!   give-up is **transient**: the first read that meets it (one waiting
//!   then, or the next one that needs a missing byte) gets the typed error
//!   (`SourceError::Net`); the read after that plans the download again
//!   from the frontier. Permanent outcomes (404,
//!   410 and other 4xx, an HTML page, a changed or contradicting resource,
//!   a malformed answer, a storage error) stay terminal.
//! - Bytes already stored stay readable after any failure.

#[cfg(test)]
mod blocking_tests;
mod config;
pub mod icy;
mod peer;
mod source;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use url::Url;

pub use config::{
    DEFAULT_BOUNDED_BUDGET, DEFAULT_LOOK_BEHIND, DEFAULT_REAIM_WINDOW, HttpFileConfig,
    HttpFileStorage,
};
pub use peer::MAX_FETCH_FAILURES;
pub use peer::live::{IcyTitle, LIVE_EVENT_CAPACITY, LiveEvent};
use peer::plan::FilePeer;
use peer::{Opening, Shared, Terminal};

use crate::cancel::CancelToken;
use crate::dl::{Downloader, PeerHandle};
use crate::error::{SourceError, StreamError, StreamResult};
use crate::media::MediaInfo;
use crate::source::{Source, StorageSource};
use crate::storage::{StorageError, StorageResource};
use crate::stream::StreamType;
use crate::timeline::Timeline;

/// Progressive HTTP download as a [`StreamType`]: use it as
/// `Stream::<HttpFile>::new(HttpFileConfig)`.
///
/// ```no_run
/// # async fn demo(dl: kithara_stream::dl::Downloader) -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::{Read, Seek, SeekFrom};
/// use kithara_stream::{HttpFile, HttpFileConfig, Stream};
///
/// let cfg = HttpFileConfig::new("http://127.0.0.1:8080/song.wav")?.downloader(dl);
/// let mut stream = Stream::<HttpFile>::new(cfg).await?; // headers are in
/// println!("{:?}", stream.source().media_info());
/// // Read + Seek are blocking: use them off the async executor threads.
/// std::thread::spawn(move || {
///     let mut buf = [0u8; 4096];
///     stream.seek(SeekFrom::Start(1 << 20))?; // re-aims the download
///     stream.read_exact(&mut buf)
/// });
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub enum HttpFile {}

impl StreamType for HttpFile {
    type Config = HttpFileConfig;
    type Source = HttpFileSource;

    /// Opens the storage; a complete cache file returns at once with no
    /// request. Otherwise registers the peer and resolves once the first
    /// response's headers are in, without waiting for the body.
    ///
    /// Errors: [`SourceError::Net`] (404, 500, HTML page, refused
    /// connection, a contradicting `Content-Range`, ...),
    /// [`SourceError::Storage`] (cache file I/O),
    /// [`SourceError::Unsupported`] (no downloader and no backend feature),
    /// [`SourceError::Other`] (the default backend could not be built).
    fn create(
        config: HttpFileConfig,
    ) -> impl std::future::Future<Output = Result<HttpFileSource, SourceError>> + Send {
        HttpFileSource::open(config)
    }
}

/// The [`Source`] of an [`HttpFile`]: a [`StorageSource`] over the shared
/// storage plus the download's planner.
///
/// Dropping it cancels its fetches (the connection is closed) and, for a
/// cache file, records the ranges present so a later open resumes.
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
/// use std::io::Read;
/// use kithara_stream::dl::{Downloader, DownloaderConfig};
/// use kithara_stream::media::AudioCodec;
/// use kithara_stream::net::{MemoryClient, MemoryResource};
/// use kithara_stream::{HttpFile, HttpFileConfig, Stream};
///
/// let client = MemoryClient::new();
/// let song = MemoryResource::new(vec![0u8; 40_000]).content_type("audio/mpeg");
/// client.insert_resource("http://127.0.0.1/song.mp3", song);
/// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)));
/// let cfg = HttpFileConfig::new("http://127.0.0.1/song.mp3")?.downloader(dl);
/// let mut stream = futures::executor::block_on(Stream::<HttpFile>::new(cfg))?;
/// let source = stream.source(); // the HttpFileSource
/// assert_eq!(source.content_type().as_deref(), Some("audio/mpeg"));
/// assert_eq!(source.media_info().and_then(|m| m.codec), Some(AudioCodec::Mp3));
/// assert!(!source.is_live());
/// assert_eq!(stream.read_to_end(&mut Vec::new())?, 40_000);
/// assert_eq!(stream.source().downloaded_bytes(), 40_000); // all of it is stored
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HttpFileSource {
    inner: StorageSource,
    shared: Arc<Shared>,
    read_timeout: Option<Duration>,
    cancel: CancelToken,
    handle: Option<PeerHandle>,
    /// The transient give-up last reported to the reader (its generation):
    /// the next read after it revives the download.
    reported: AtomicU64,
}

impl fmt::Debug for HttpFileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFileSource")
            .field("url", &self.shared.url.as_str())
            .field("storage", self.inner.storage())
            .field("position", &self.inner.position())
            .finish_non_exhaustive()
    }
}

impl HttpFileSource {
    async fn open(config: HttpFileConfig) -> Result<Self, SourceError> {
        let cancel = CancelToken::new();
        // The downloader first: its blocking pool opens the storage (a cache
        // file's open, sidecar read and first sidecar sync must not run on
        // an executor thread). Without one (no backend feature), the storage
        // opens here, and only a complete cache can be read.
        let downloader = match config.downloader.clone() {
            Some(dl) => Ok(dl),
            None => crate::backends::default_downloader(),
        };
        let offload = downloader.as_ref().ok().map(Downloader::offload);
        let job = {
            let (kind, cancel) = (config.storage.clone(), cancel.clone());
            move || open_storage(&kind, cancel)
        };
        let on_disk = matches!(config.storage, HttpFileStorage::File(_));
        let (storage, opened) = match &offload {
            Some(off) if on_disk => off.call(job).await.ok_or_else(|| {
                SourceError::other("the executor dropped the storage open unrun")
            })??,
            _ => job()?,
        };
        if let Some(off) = &offload {
            storage.set_offload(off.clone());
        }
        let timeline = Timeline::new();
        let (complete, mut known_len) = match opened {
            Opened::Complete(_) if !config.revalidate => {
                // A complete cache: no request.
                return Ok(Self::complete(config, storage, timeline, cancel));
            }
            Opened::Complete(len) => (true, Some(len)),
            Opened::Partial(known_len) => (false, known_len),
        };
        let downloader = downloader?;
        if complete {
            if still_fresh(&downloader, &config, &storage).await {
                return Ok(Self::complete(config, storage, timeline, cancel));
            }
            // Another version on the server: start over (a truncate and a
            // synced sidecar: on the blocking pool).
            let st = storage.clone();
            downloader
                .offload()
                .call(move || st.reset())
                .await
                .ok_or_else(|| {
                    SourceError::other("the executor dropped the cache reset unrun")
                })??;
            known_len = None;
        }
        let mut headers = config.headers;
        if config.icy {
            headers.insert("icy-metadata", http::HeaderValue::from_static("1"));
        }
        let shared = Arc::new(
            Shared::new(
                config.url,
                headers,
                storage.clone(),
                timeline.clone(),
                config.reaim_window,
                // A partial cache's recorded length: a first answer of another
                // length is another version.
                known_len.or(storage.len_hint()),
                Some(downloader.offload()),
            )
            .with_retry(downloader.config().retry),
        );
        shared.set_icy(config.icy);
        let handle = downloader.register(Arc::new(FilePeer(shared.clone())));
        // A downloader that is shut down (or shuts down meanwhile) cancels
        // the peer: that ends the wait too.
        let peer_token = handle.cancel();
        let this = Self {
            inner: StorageSource::with_timeline(storage.clone(), timeline),
            shared,
            read_timeout: config.read_timeout,
            cancel,
            handle: Some(handle),
            reported: AtomicU64::new(0),
        };
        loop {
            let changed = storage.changed();
            let gone = peer_token.cancelled();
            match this.shared.opening() {
                Opening::Ready => return Ok(this),
                Opening::Failed(t) => return Err(terminal_error(t)),
                Opening::Waiting if peer_token.is_cancelled() => {
                    return Err(SourceError::Cancelled);
                }
                Opening::Waiting => {
                    futures::future::select(changed, gone).await;
                }
            }
        }
    }

    /// A source over a complete cache, with no downloader.
    fn complete(
        config: HttpFileConfig,
        storage: StorageResource,
        timeline: Timeline,
        cancel: CancelToken,
    ) -> Self {
        let len = storage.len().unwrap_or_default();
        let shared = Shared::complete(config.url, storage.clone(), timeline.clone(), len);
        Self {
            inner: StorageSource::with_timeline(storage, timeline),
            shared: Arc::new(shared),
            read_timeout: config.read_timeout,
            cancel,
            handle: None,
            reported: AtomicU64::new(0),
        }
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.shared.url
    }

    /// The first response's `Content-Type`, if it had one (`None` for a
    /// cache file opened without a request).
    pub fn content_type(&self) -> Option<String> {
        self.shared.content_type()
    }

    /// What the resource is: from the MIME type, or — when it is generic
    /// (`application/octet-stream`) or missing — from the magic bytes at
    /// its start once they are downloaded (`None` until then, or when
    /// neither tells). Never blocks for long.
    pub fn media_info(&self) -> Option<MediaInfo> {
        self.shared.media_info()
    }

    /// The storage the bytes land in (shared with the download).
    pub fn storage(&self) -> &StorageResource {
        self.inner.storage()
    }

    /// Bytes present in storage now (with bounded storage: what it holds,
    /// not all that passed through).
    pub fn downloaded_bytes(&self) -> u64 {
        self.inner
            .storage()
            .available()
            .iter()
            .map(|r| r.end - r.start)
            .sum()
    }

    /// Whether the whole resource is present and committed.
    pub fn is_complete(&self) -> bool {
        self.inner
            .storage()
            .len()
            .is_some_and(|l| self.inner.storage().next_gap(0, l).is_none())
    }

    /// `Some(false)` once the server answered a `Range` request with the
    /// whole body (with the same validator) or said `Accept-Ranges: none`,
    /// `Some(true)` once it honoured one, `None` before.
    pub fn ranges_supported(&self) -> Option<bool> {
        self.shared.ranges_supported()
    }

    /// The validator (strong `ETag`, else `Last-Modified`) of the version
    /// whose bytes are stored, or `None` when the server sent neither (then
    /// only a change of length can be noticed; see the module docs).
    pub fn validator(&self) -> Option<crate::net::Validator> {
        self.shared.validator()
    }

    /// How many times the stored bytes were dropped because the resource
    /// changed on the server before the reader had read any of them (a
    /// cache resume, or a change early in the download); the download then
    /// started over on the new version. Never counts down. A change after
    /// the reader got bytes is not counted here: it fails the stream with
    /// [`NetError::ResourceChanged`](crate::net::NetError::ResourceChanged).
    pub fn version_restarts(&self) -> u64 {
        self.shared.restarts()
    }

    /// Whether the stream is live (endless): no length, no `Range`, and a
    /// radio's signs (`icy-*` headers or an audio type). A live stream that
    /// drops is continued by a new plain GET, appending after what was
    /// received ([`LiveEvent::Discontinuity`] marks the join); its
    /// [`len`](Source::len) stays `None` until the server ends it.
    pub fn is_live(&self) -> bool {
        self.shared.is_live()
    }

    /// The station's `icy-*` headers (`icy-name`, `icy-genre`, `icy-br`,
    /// `icy-url`, `icy-metaint`), if the first answer had any.
    pub fn icy_headers(&self) -> Option<icy::IcyHeaders> {
        self.shared.icy_headers()
    }

    /// The latest ICY metadata block received (see
    /// [`HttpFileConfig::icy_metadata`]) and the audio offset where it
    /// starts. It is the *downloaded* one: compare its offset with the
    /// reader's position to know whether it is playing yet.
    pub fn icy_title(&self) -> Option<IcyTitle> {
        self.shared.icy_title()
    }

    /// Takes the live events (ICY metadata, discontinuities) received since
    /// the last call, oldest first; at most [`LIVE_EVENT_CAPACITY`] are
    /// kept. Never blocks.
    pub fn live_events(&self) -> Vec<LiveEvent> {
        self.shared.drain_live_events()
    }

    /// Marks the timeline playing (the peer then reports
    /// `RequestPriority::High`, and its queued fetches move slot at once)
    /// or not. Setting the flag on the [`timeline`](Source::timeline)
    /// directly works too; the downloader then notices on its next pass.
    pub fn set_playing(&self, playing: bool) {
        self.shared.timeline.set_playing(playing);
        self.shared.wake();
    }

    /// The peer's handle (events with `subscribe`, one-off requests), or
    /// `None` for a complete cache opened without a downloader.
    pub fn peer(&self) -> Option<&PeerHandle> {
        self.handle.as_ref()
    }

    /// [`StorageError::Evicted`] for a byte a bounded storage no longer
    /// holds and the resource cannot deliver again.
    fn reachable(&self, pos: u64) -> StreamResult<()> {
        if self.shared.unreachable(pos) {
            return Err(SourceError::Storage(StorageError::Evicted { offset: pos }).into());
        }
        Ok(())
    }

    /// Where a wait for `range` needs the download: its start, or for a
    /// bounded storage its first missing byte (the fetch that would bring
    /// it may be paused elsewhere, waiting for room, and must be re-aimed).
    fn first_wanted(&self, range: &Range<u64>) -> u64 {
        let storage = self.inner.storage();
        if !storage.is_bounded() {
            return range.start;
        }
        storage
            .next_gap(range.start, range.end)
            .map_or(range.start, |gap| gap.start)
    }

    /// Replaces a storage failure with the typed download error behind it,
    /// and notes a transient give-up as reported to the reader.
    fn map<T>(&self, r: StreamResult<T>) -> StreamResult<T> {
        match r {
            Err(StreamError::Source(SourceError::Storage(
                StorageError::Failed(_) | StorageError::Cancelled,
            ))) => {
                let generation = self.shared.transient_failure();
                match self.shared.terminal() {
                    Some(t) => {
                        if let Some(g) = generation {
                            self.reported.fetch_max(g, Ordering::AcqRel);
                        }
                        Err(terminal_error(t).into())
                    }
                    None => r,
                }
            }
            _ => r,
        }
    }

    /// A read after a transient give-up that this reader was told about:
    /// plan the download again (the first read to meet a give-up gets its
    /// error; the next one revives).
    fn revive_if_reported(&self) {
        if let Some(g) = self.shared.transient_failure()
            && g <= self.reported.load(Ordering::Acquire)
        {
            self.shared.revive();
        }
    }
}

/// What [`open_storage`] found.
enum Opened {
    /// A complete cache of this length: nothing to fetch.
    Complete(u64),
    /// Something to fetch; the length, if a partial cache knew it.
    Partial(Option<u64>),
}

/// Opens and prepares the storage: blocking for a cache file.
fn open_storage(
    kind: &HttpFileStorage,
    cancel: CancelToken,
) -> Result<(StorageResource, Opened), SourceError> {
    let storage = match kind {
        HttpFileStorage::Memory => StorageResource::memory(cancel),
        HttpFileStorage::File(path) => StorageResource::open_file(path, cancel)?,
        HttpFileStorage::Bounded {
            budget,
            look_behind,
        } => StorageResource::bounded(*budget, *look_behind, cancel),
    };
    let known_len = storage.len();
    if let Some(len) = known_len {
        if storage.next_gap(0, len).is_none() {
            return Ok((storage, Opened::Complete(len)));
        }
        // Committed with gaps: fill them.
        storage.reactivate()?;
        storage.set_len_hint(Some(len));
    }
    // A fresh cache file's first sidecar is durable before the first write,
    // so no write waits for it on an executor thread.
    storage.settle()?;
    Ok((storage, Opened::Partial(known_len)))
}

/// The opt-in revalidation of a complete cache (see
/// [`HttpFileConfig::revalidate`]): one conditional `GET`; `true` keeps the
/// file (`304`, the same validator, or the check failed), `false` replaces it
/// (another version, or no stored validator to ask with).
async fn still_fresh(
    downloader: &crate::dl::Downloader,
    config: &HttpFileConfig,
    storage: &StorageResource,
) -> bool {
    let Some(validator) = storage.validator() else {
        return false;
    };
    let Some(value) = validator.header_value() else {
        return false;
    };
    // A peer with nothing to stream, only to run the one request.
    let idle = Shared::complete(
        config.url.clone(),
        storage.clone(),
        Timeline::new(),
        storage.len().unwrap_or_default(),
    );
    let handle = downloader.register(Arc::new(FilePeer(Arc::new(idle))));
    let cmd = crate::dl::FetchCmd::get(config.url.clone())
        .headers(config.headers.clone())
        .header(validator.if_changed_header(), value);
    match handle.execute(cmd).await {
        // Dropping the response closes its body unread.
        Ok(resp) => validator.matches(&resp.headers),
        Err(_) => true,
    }
}

fn terminal_error(t: Terminal) -> SourceError {
    match t {
        Terminal::Net(crate::net::NetError::Cancelled) => SourceError::Cancelled,
        Terminal::Net(e) => SourceError::Net(e),
        Terminal::Storage(s) => SourceError::Storage(StorageError::Failed(s)),
    }
}

impl Drop for HttpFileSource {
    /// Stops the writers: the peer handle's drop cancels the fetches and
    /// closes connections, then the storage is cancelled (in that order, so
    /// a fetch writing meanwhile ends as cancelled, not as a failed write).
    /// The storage's last handle records what is present for a cache
    /// resume, on the downloader's blocking pool.
    fn drop(&mut self) {
        drop(self.handle.take());
        self.cancel.cancel();
    }
}
