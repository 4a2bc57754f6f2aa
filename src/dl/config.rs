//! [`DownloaderConfig`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::events::EVENT_QUEUE_CAPACITY;
use crate::cancel::CancelToken;
use crate::net::{HttpClient, RetryPolicy};
use crate::rt::Spawn;

/// Default [`DownloaderConfig::max_concurrent`].
pub const DEFAULT_MAX_CONCURRENT: usize = 5;
/// Default [`DownloaderConfig::soft_timeout`].
pub const DEFAULT_SOFT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default [`DownloaderConfig::inactivity_timeout`].
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`DownloaderConfig::request_timeout`]: 10 s. Headers come in
/// milliseconds from a live server; 10 s is patience for a slow origin
/// behind a CDN without making a hung one look alive.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`DownloaderConfig::connect_timeout`]: 10 s. A server that never
/// answers (a black hole, a firewall dropping packets, a hung listener) is
/// reported within about this long (plus one backoff step).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`Downloader`](super::Downloader) runs: the executor and HTTP client
/// it uses, and its limits and timeouts. Cheap to clone.
///
/// Every timeout is measured with [`Spawn::sleep`], so it behaves the same
/// on every backend.
///
/// # Liveness defaults
/// | what | default | outcome |
/// |---|---|---|
/// | server never answers (connect phase) | [`connect_timeout`](Self::connect_timeout) 10 s | typed error (`Timeout { Headers }` or the connect error) |
/// | no headers on one attempt | [`request_timeout`](Self::request_timeout) 10 s | retried |
/// | body silent | [`inactivity_timeout`](Self::inactivity_timeout) 30 s | resumed with `Range` |
/// | retries / resumes | [`retry`](Self::retry): 40 s from the first failure, renewed by progress; backoff 0, 100 ms, doubling, 4 s cap | then the error |
/// | 404/410 and other 4xx, HTML page, contradicting `Content-Range`, cancel | not retried | terminal, typed |
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use kithara_stream::dl::DownloaderConfig;
/// # use kithara_stream::rt::{BoxFuture, Spawn};
/// # struct MySpawn;
/// # impl Spawn for MySpawn {
/// #     fn spawn(&self, _t: BoxFuture<'static, ()>) {}
/// #     fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> { Box::pin(futures::future::pending()) }
/// # }
/// let cfg = DownloaderConfig::new(Arc::new(MySpawn), Arc::new(kithara_stream::net::MemoryClient::new()))
///     .max_concurrent(8)
///     .inactivity_timeout(Duration::from_secs(10));
/// assert_eq!(cfg.max_concurrent, 8);
/// assert_eq!(cfg.soft_timeout, Duration::from_secs(2));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct DownloaderConfig {
    /// Runs the loop and the fetch tasks; its `sleep` times everything.
    pub spawn: Arc<dyn Spawn>,
    /// Sends the requests.
    pub client: Arc<dyn HttpClient>,
    /// Requests in flight at once, over all peers and both paths
    /// (default 5). `0` pauses dispatch: commands are accepted and queue up.
    pub max_concurrent: usize,
    /// After this long without response headers a `LoadSlow` event is
    /// published; the request continues (default 2 s; zero: never).
    pub soft_timeout: Duration,
    /// Demand work (slots of `Low` peers) waits this long before each
    /// dispatch round; urgent work preempts the wait (default zero).
    pub demand_throttle: Duration,
    /// A body that yields no byte for this long fails with
    /// `NetError::Timeout { kind: Inactivity }` and is resumed with `Range`
    /// within the retry budget (default 30 s; zero: no inactivity timeout).
    pub inactivity_timeout: Duration,
    /// The headers phase: an attempt that gets no response headers within
    /// this long of being sent fails with `NetError::Timeout { kind: Headers
    /// }`, which is retried (default [`DEFAULT_REQUEST_TIMEOUT`], 10 s; zero:
    /// no headers timeout).
    pub request_timeout: Duration,
    /// The connect phase: how long a request keeps trying before the server
    /// first answers it (default [`DEFAULT_CONNECT_TIMEOUT`], 10 s; zero: the
    /// retry budget alone). Refused or failed connections are retried with
    /// backoff within it, and an attempt's headers wait is cut at it, so
    /// `Stream::new` against a server that never answers (or a closed port)
    /// fails with a typed error after about this long. Once the server has
    /// answered (any status), and for resumes of a body, the
    /// [`retry`](Self::retry) budget applies instead.
    pub connect_timeout: Duration,
    /// Retries before the body and resumes after a mid-body failure: for a
    /// duration, renewed after progress (default [`RetryPolicy::default`]:
    /// 40 s, backoff from 100 ms doubling to a 4 s cap, so a lost server is
    /// ridden out for at least 30 s).
    pub retry: RetryPolicy,
    /// Parent token: cancelling it shuts the downloader down. `None`: a
    /// fresh root.
    pub cancel: Option<CancelToken>,
    /// Queue length of each event subscriber (default
    /// [`EVENT_QUEUE_CAPACITY`]); the oldest event is dropped when full.
    pub event_capacity: usize,
}

impl fmt::Debug for DownloaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloaderConfig")
            .field("max_concurrent", &self.max_concurrent)
            .field("soft_timeout", &self.soft_timeout)
            .field("demand_throttle", &self.demand_throttle)
            .field("inactivity_timeout", &self.inactivity_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

impl DownloaderConfig {
    /// A config with every default, running on `spawn` and fetching with `client`.
    pub fn new(spawn: Arc<dyn Spawn>, client: Arc<dyn HttpClient>) -> Self {
        Self {
            spawn,
            client,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            soft_timeout: DEFAULT_SOFT_TIMEOUT,
            demand_throttle: Duration::ZERO,
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryPolicy::default(),
            cancel: None,
            event_capacity: EVENT_QUEUE_CAPACITY,
        }
    }

    /// Sets [`max_concurrent`](Self::max_concurrent).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Sets [`soft_timeout`](Self::soft_timeout).
    pub fn soft_timeout(mut self, d: Duration) -> Self {
        self.soft_timeout = d;
        self
    }

    /// Sets [`demand_throttle`](Self::demand_throttle).
    pub fn demand_throttle(mut self, d: Duration) -> Self {
        self.demand_throttle = d;
        self
    }

    /// Sets [`inactivity_timeout`](Self::inactivity_timeout).
    pub fn inactivity_timeout(mut self, d: Duration) -> Self {
        self.inactivity_timeout = d;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the parent [`cancel`](Self::cancel) token.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
    /// use kithara_stream::net::{MemoryClient, NetError};
    ///
    /// struct Idle;
    /// impl Peer for Idle {}
    /// let client = MemoryClient::new();
    /// client.insert("http://127.0.0.1/a", &b"x"[..]);
    /// let app = CancelToken::new(); // e.g. the application's shutdown token
    /// let cfg = DownloaderConfig::new(spawn, Arc::new(client)).cancel(app.clone());
    /// let peer = Downloader::new(cfg).register(Arc::new(Idle));
    /// app.cancel(); // shuts the downloader down, and every peer with it
    /// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
    /// let res = futures::executor::block_on(peer.execute(FetchCmd::get(url)));
    /// assert!(matches!(res, Err(NetError::Cancelled)));
    /// ```
    pub fn cancel(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Sets [`event_capacity`](Self::event_capacity) (at least 1).
    ///
    /// A slow subscriber loses the oldest events, never the newest:
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use kithara_stream::dl::{Downloader, DownloaderConfig, DownloaderEvent, FetchCmd, Peer};
    /// use kithara_stream::net::MemoryClient;
    ///
    /// struct Idle;
    /// impl Peer for Idle {}
    /// let client = MemoryClient::new();
    /// client.insert("http://127.0.0.1/a", &b"abc"[..]);
    /// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)).event_capacity(1));
    /// let events = dl.subscribe();
    /// let peer = dl.register(Arc::new(Idle));
    /// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
    /// futures::executor::block_on(async { peer.execute(FetchCmd::get(url)).await?.body.collect().await })?;
    /// // Enqueued and Started were published before the body came: one was dropped.
    /// assert!(events.dropped() >= 1);
    /// let last = loop {
    ///     let e = events.recv_timeout(Duration::from_secs(10)).expect("an event in time");
    ///     if e.is_terminal() { break e; }
    /// };
    /// assert!(matches!(last, DownloaderEvent::RequestCompleted { bytes_transferred: 3, .. }));
    /// # Ok::<(), kithara_stream::net::NetError>(())
    /// ```
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }
}
