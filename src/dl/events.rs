//! Downloader events: what happened to each request, observable without any
//! runtime dependency.
//!
//! Every publisher ([`Downloader`](super::Downloader) and each
//! [`PeerHandle`](super::PeerHandle)) keeps a list of subscribers. Each
//! subscriber owns a bounded queue: when it is full the **oldest** event is
//! dropped (and counted), so a slow or absent reader never blocks a download.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, Listener};
use url::Url;

use super::RequestPriority;
use crate::cancel::lock;
use crate::net::{NetError, RequestMethod};

/// Identifies one request of one [`Downloader`](super::Downloader). Ids start
/// at 1 and grow by one per accepted command (streaming or imperative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(NonZeroU64);

impl RequestId {
    /// The id `n`, or `None` for 0.
    pub fn new(n: u64) -> Option<Self> {
        NonZeroU64::new(n).map(Self)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a request ended as cancelled, checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// The downloader was cancelled or its last handle dropped.
    DownloaderShutdown,
    /// The peer was cancelled or its last handle dropped.
    PeerCancel,
    /// The command's epoch token ([`FetchCmd::cancel`](super::FetchCmd::cancel)) fired.
    EpochCancel,
    /// The caller of an imperative request dropped the future or the body.
    Dropped,
    /// The command was discarded before it started without any token firing
    /// (for instance: the executor dropped the loop).
    BeforeStart,
}

/// One thing that happened to a request.
///
/// For each request id: `RequestEnqueued` first, then (if it was dispatched)
/// `RequestStarted`, any number of `LoadSlow`/`RequestRetried`/
/// `RequestResumed`, and **exactly one** terminal event:
/// `RequestCompleted`, `RequestFailed` or `RequestCancelled`.
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
/// client.insert("http://127.0.0.1/a", &b"12345"[..]);
/// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)));
/// let peer = dl.register(Arc::new(Idle));
/// let events = peer.subscribe(); // this peer's requests only; `dl.subscribe()` for all
/// let url = url::Url::parse("http://127.0.0.1/a").unwrap();
/// futures::executor::block_on(async { peer.execute(FetchCmd::get(url)).await?.body.collect().await })?;
/// let mut seen = Vec::new();
/// while let Some(e) = events.recv_timeout(Duration::from_secs(10)) {
///     let last = e.is_terminal();
///     seen.push(e);
///     if last { break; }
/// }
/// assert!(matches!(seen[0], DownloaderEvent::RequestEnqueued { .. }));
/// assert!(matches!(seen[1], DownloaderEvent::RequestStarted { .. }));
/// assert!(matches!(seen.last(), Some(DownloaderEvent::RequestCompleted { bytes_transferred: 5, .. })));
/// # Ok::<(), kithara_stream::net::NetError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DownloaderEvent {
    /// The command was accepted and queued.
    RequestEnqueued {
        /// The request.
        request_id: RequestId,
        /// Its URL.
        url: Url,
        /// GET or HEAD.
        method: RequestMethod,
        /// The command's own priority (imperative: `High`, streaming: `Low`
        /// unless the command says otherwise).
        priority: RequestPriority,
    },
    /// The command got a concurrency slot and its task was spawned.
    RequestStarted {
        /// The request.
        request_id: RequestId,
        /// Time spent queued.
        wait_in_queue: Duration,
    },
    /// The response headers took longer than the soft timeout; the request
    /// keeps going.
    LoadSlow {
        /// The request.
        request_id: RequestId,
        /// Time since the request started.
        elapsed: Duration,
    },
    /// A failed attempt (before the body) is retried after `delay`.
    RequestRetried {
        /// The request.
        request_id: RequestId,
        /// Retry number, from 1.
        attempt: u32,
        /// Backoff before the retry.
        delay: Duration,
        /// What failed.
        error: NetError,
    },
    /// The body failed mid-way; it is resumed with a `Range` from `offset`.
    RequestResumed {
        /// The request.
        request_id: RequestId,
        /// Resume number, from 1.
        attempt: u32,
        /// Resource offset of the first byte asked for again.
        offset: u64,
        /// What failed.
        error: NetError,
    },
    /// The request finished: all bytes delivered.
    RequestCompleted {
        /// The request.
        request_id: RequestId,
        /// Body bytes delivered.
        bytes_transferred: u64,
        /// Time since the request started.
        duration: Duration,
        /// `bytes × 8000 / max(duration in ms, 1)`.
        bandwidth_bps: u64,
    },
    /// The request failed.
    RequestFailed {
        /// The request.
        request_id: RequestId,
        /// The final error.
        error: NetError,
        /// `error.is_retryable()` (retries, if any, are already exhausted).
        retryable: bool,
    },
    /// The request was cancelled (queued or in flight).
    RequestCancelled {
        /// The request.
        request_id: RequestId,
        /// Which token fired.
        reason: CancelReason,
        /// Body bytes delivered before the cancel.
        bytes_transferred: u64,
    },
}

impl DownloaderEvent {
    /// The request this event is about.
    pub fn request_id(&self) -> RequestId {
        match self {
            DownloaderEvent::RequestEnqueued { request_id, .. }
            | DownloaderEvent::RequestStarted { request_id, .. }
            | DownloaderEvent::LoadSlow { request_id, .. }
            | DownloaderEvent::RequestRetried { request_id, .. }
            | DownloaderEvent::RequestResumed { request_id, .. }
            | DownloaderEvent::RequestCompleted { request_id, .. }
            | DownloaderEvent::RequestFailed { request_id, .. }
            | DownloaderEvent::RequestCancelled { request_id, .. } => *request_id,
        }
    }

    /// Whether this is the request's last event (completed, failed or cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            DownloaderEvent::RequestCompleted { .. }
                | DownloaderEvent::RequestFailed { .. }
                | DownloaderEvent::RequestCancelled { .. }
        )
    }
}

/// `bytes × 8000 / max(ms, 1)`: bits per second, saturating.
pub(crate) fn bandwidth_bps(bytes: u64, duration: Duration) -> u64 {
    let ms = u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    bytes.saturating_mul(8000) / ms
}

/// Default per-subscriber queue length.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;

struct Queue {
    events: VecDeque<DownloaderEvent>,
    dropped: u64,
}

struct Chan {
    queue: Mutex<Queue>,
    capacity: usize,
    closed: AtomicBool,
    event: Event,
}

impl Chan {
    fn pop(&self) -> Option<DownloaderEvent> {
        lock(&self.queue).events.pop_front()
    }
}

/// A publisher with any number of lossy subscribers.
pub(crate) struct Hub {
    subs: Mutex<Vec<Weak<Chan>>>,
    capacity: usize,
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            subs: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn subscribe(&self) -> EventReceiver {
        let chan = Arc::new(Chan {
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                dropped: 0,
            }),
            capacity: self.capacity,
            closed: AtomicBool::new(false),
            event: Event::new(),
        });
        let mut subs = lock(&self.subs);
        subs.retain(|w| w.strong_count() > 0);
        subs.push(Arc::downgrade(&chan));
        EventReceiver {
            chan,
            listener: None,
        }
    }

    /// Pushes `event` to every live subscriber; never blocks on a reader.
    pub(crate) fn publish(&self, event: &DownloaderEvent) {
        let subs: Vec<Arc<Chan>> = {
            let subs = lock(&self.subs);
            if subs.is_empty() {
                return;
            }
            subs.iter().filter_map(Weak::upgrade).collect()
        };
        for chan in subs {
            {
                let mut q = lock(&chan.queue);
                if q.events.len() >= chan.capacity {
                    q.events.pop_front();
                    q.dropped += 1;
                }
                q.events.push_back(event.clone());
            }
            chan.event.notify(usize::MAX);
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for chan in lock(&self.subs).iter().filter_map(Weak::upgrade) {
            chan.closed.store(true, Ordering::Release);
            chan.event.notify(usize::MAX);
        }
    }
}

/// A subscription to [`DownloaderEvent`]s of a downloader or of one peer.
///
/// Lossy by design: it holds at most the configured number of events
/// ([`DownloaderConfig::event_capacity`](super::DownloaderConfig::event_capacity),
/// default [`EVENT_QUEUE_CAPACITY`]); when full, the oldest one is dropped
/// and counted in [`dropped`](Self::dropped). Publishing never waits for it.
///
/// It ends (`recv` gives `None`, the stream ends) once its publisher is gone
/// and the queue is drained. Usable from async code (`recv`, `Stream`) and
/// from threads (`recv_timeout`).
///
/// ```
/// # use std::sync::Arc;
/// # use kithara_stream::dl::{Downloader, DownloaderConfig};
/// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
/// let dl = Downloader::new(DownloaderConfig::new(
///     spawn,
///     Arc::new(kithara_stream::net::MemoryClient::new()),
/// ));
/// let events = dl.subscribe();
/// assert!(events.try_recv().is_none());
/// ```
pub struct EventReceiver {
    chan: Arc<Chan>,
    listener: Option<EventListener>,
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl EventReceiver {
    /// The next queued event, without waiting.
    pub fn try_recv(&self) -> Option<DownloaderEvent> {
        self.chan.pop()
    }

    /// One listen → re-check step: `Ok(Some(event))` when one is queued,
    /// `Ok(None)` when the publisher is gone and the queue is empty, or
    /// `Err(listener)` (registered before the re-check, so no event is
    /// missed) when the caller has to wait.
    fn next_or_listener(&self) -> Result<Option<DownloaderEvent>, EventListener> {
        loop {
            if let Some(e) = self.chan.pop() {
                return Ok(Some(e));
            }
            if self.chan.closed.load(Ordering::Acquire) {
                return Ok(self.chan.pop());
            }
            let listener = self.chan.event.listen();
            if let Some(e) = self.chan.pop() {
                return Ok(Some(e));
            }
            if !self.chan.closed.load(Ordering::Acquire) {
                return Err(listener);
            }
        }
    }

    /// The next event; `None` once the publisher is gone and the queue is
    /// empty. Cancel-safe (no event is lost when the future is dropped).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
    /// use kithara_stream::dl::{Downloader, DownloaderConfig, DownloaderEvent, FetchCmd, Peer};
    /// use kithara_stream::net::MemoryClient;
    /// use kithara_stream::rt::timeout;
    ///
    /// struct Idle;
    /// impl Peer for Idle {}
    /// let dl = Downloader::new(DownloaderConfig::new(spawn.clone(), Arc::new(MemoryClient::new())));
    /// let events = dl.subscribe();
    /// let peer = dl.register(Arc::new(Idle));
    /// let url = url::Url::parse("http://127.0.0.1/missing").unwrap();
    /// let failed = futures::executor::block_on(async {
    ///     assert!(peer.execute(FetchCmd::get(url)).await.is_err()); // 404
    ///     loop {
    ///         let next = timeout(&*spawn, Duration::from_secs(10), events.recv()).await;
    ///         match next.expect("an event within 10 s") {
    ///             Some(DownloaderEvent::RequestFailed { retryable, .. }) => break retryable,
    ///             Some(_) => continue,
    ///             None => unreachable!("the downloader is alive"),
    ///         }
    ///     }
    /// });
    /// assert!(!failed, "a 404 is not retried");
    /// ```
    pub async fn recv(&self) -> Option<DownloaderEvent> {
        loop {
            match self.next_or_listener() {
                Ok(event) => return event,
                Err(listener) => listener.await,
            }
        }
    }

    /// Blocks the calling thread for the next event, at most `timeout`.
    /// `None` on timeout or when the publisher is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<DownloaderEvent> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let listener = match self.next_or_listener() {
                Ok(event) => return event,
                Err(listener) => listener,
            };
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return self.chan.pop();
                    }
                }
            }
        }
    }

    /// Drains every event queued right now.
    pub fn drain(&self) -> Vec<DownloaderEvent> {
        lock(&self.chan.queue).events.drain(..).collect()
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.chan.queue).dropped
    }
}

impl futures::Stream for EventReceiver {
    type Item = DownloaderEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DownloaderEvent>> {
        loop {
            if let Some(e) = self.chan.pop() {
                self.listener = None;
                return Poll::Ready(Some(e));
            }
            if self.chan.closed.load(Ordering::Acquire) {
                return Poll::Ready(self.chan.pop());
            }
            match self.listener.as_mut() {
                None => self.listener = Some(self.chan.event.listen()),
                Some(l) => {
                    futures::ready!(Pin::new(l).poll(cx));
                    self.listener = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64) -> DownloaderEvent {
        DownloaderEvent::RequestStarted {
            request_id: RequestId::new(n).unwrap(),
            wait_in_queue: Duration::ZERO,
        }
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let hub = Hub::new(3);
        let rx = hub.subscribe();
        for n in 1..=5 {
            hub.publish(&ev(n));
        }
        assert_eq!(rx.dropped(), 2);
        let ids: Vec<u64> = rx.drain().iter().map(|e| e.request_id().get()).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn closed_publisher_ends_stream_after_drain() {
        let hub = Hub::new(8);
        let rx = hub.subscribe();
        hub.publish(&ev(1));
        drop(hub);
        assert_eq!(futures::executor::block_on(rx.recv()), Some(ev(1)));
        assert_eq!(futures::executor::block_on(rx.recv()), None);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), None);
    }

    #[test]
    fn bandwidth_formula() {
        assert_eq!(bandwidth_bps(1000, Duration::from_millis(1000)), 8000);
        assert_eq!(bandwidth_bps(1000, Duration::ZERO), 8_000_000);
    }
}
