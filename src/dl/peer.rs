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
