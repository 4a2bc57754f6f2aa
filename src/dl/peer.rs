//! [`Peer`]: what feeds the downloader.

use std::task::{Context, Poll};

use super::{FetchCmd, RequestPriority};

/// A protocol that feeds the downloader: it is asked for work and says how
/// urgent it is.
///
/// # Contract
/// - [`poll_next`](Self::poll_next) is called from the loop task, never
///   concurrently with itself, and only when the peer has no streaming
///   command still waiting in the queue (at most one batch per peer
///   waits). `Ready(Some(cmds))` hands the commands over (each gets exactly
///   one `on_complete`) and the loop **polls again** as soon as they have
///   left the queue, until `Pending` or `Ready(None)`: a peer yielding one
///   command per poll gets up to `max_concurrent` in flight.
///   `Ready(Some(vec![]))` hands over nothing and is polled again too.
///   `Ready(None)` retires the peer's stream of work (its handle still
///   works), and `Pending` must arrange for `cx.waker()` to be woken when
///   work appears.
/// - [`priority`](Self::priority) is read on every loop pass. A peer whose
///   priority changes should wake the last waker it got, so its queued
///   commands move slot at once.
/// - Both must be quick and must not block.
///
/// A peer that streams one URL into a buffer:
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # let spawn = Arc::new(kithara_stream::rt::ThreadSpawn::new());
/// use std::sync::Mutex;
/// use std::task::{Context, Poll};
/// use kithara_stream::dl::{Downloader, DownloaderConfig, FetchCmd, Peer};
/// use kithara_stream::net::MemoryClient;
///
/// struct Once(Mutex<Option<FetchCmd>>);
/// impl Peer for Once {
///     fn poll_next(&self, _cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
///         Poll::Ready(self.0.lock().unwrap().take().map(|cmd| vec![cmd]))
///     }
/// }
///
/// let client = MemoryClient::new();
/// client.insert("http://127.0.0.1/a", &b"streamed"[..]);
/// let buf = Arc::new(Mutex::new(Vec::new()));
/// let (sink, (done, rx)) = (buf.clone(), std::sync::mpsc::channel());
/// let cmd = FetchCmd::get(url::Url::parse("http://127.0.0.1/a").unwrap())
///     .writer(move |chunk| Ok(sink.lock().unwrap().extend_from_slice(chunk)))
///     .on_complete(move |bytes, _headers, err| { let _ = done.send((bytes, err.is_none())); });
/// let dl = Downloader::new(DownloaderConfig::new(spawn, Arc::new(client)));
/// let _handle = dl.register(Arc::new(Once(Mutex::new(Some(cmd))))); // keep it: dropping cancels
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), (8, true));
/// assert_eq!(&buf.lock().unwrap()[..], b"streamed");
/// ```
pub trait Peer: Send + Sync + 'static {
    /// The next batch of streaming commands (default: none, ever).
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        let _ = cx;
        Poll::Ready(None)
    }

    /// The peer's current priority (default `Low`).
    fn priority(&self) -> RequestPriority {
        RequestPriority::Low
    }
}
