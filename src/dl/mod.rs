//! The downloader: one shared HTTP pool that pull-driven protocol peers
//! register with.
//!
//! A [`Downloader`] runs one loop task on the configured
//! [`Spawn`](crate::rt::Spawn) and fetches with the configured
//! [`HttpClient`](crate::net::HttpClient). Protocols register a [`Peer`];
//! the loop asks each peer for work ([`Peer::poll_next`]) and dispatches it
//! by priority under one global [`max_concurrent`](DownloaderConfig::max_concurrent)
//! cap. A [`PeerHandle`] also runs one-off requests
//! ([`execute`](PeerHandle::execute), [`batch`](PeerHandle::batch)).
//!
//! # Scheduling
//! Four slots, served in this order: (peer `High`, command `High`) →
//! (`High`, `Low`) → (`Low`, `High`) → (`Low`, `Low`). Peer priority is read
//! live from [`Peer::priority`] on every pass, and queued commands move when
//! it changes. The first two slots are *urgent*, the last two *demand*:
//! demand work waits [`demand_throttle`](DownloaderConfig::demand_throttle)
//! before each dispatch round, and urgent work is dispatched at once.
//!
//! # Policy, once
//! Retries with backoff before the body, resume with `Range` after a
//! mid-body failure (206 and `Content-Range` verified), the headers timeout,
//! the body inactivity timeout, short-body detection, the soft timeout and
//! the answer checks are all here, on top of the two traits, so they behave the
//! same on every backend.
//!
//! # Exactly one `on_complete`
//! Every streaming command that a peer returns from `poll_next` gets exactly
//! one [`on_complete`](FetchCmd::on_complete) call: after it ran (with or
//! without a writer), when it failed, when it was cancelled queued or in
//! flight, and when the downloader shut down or the executor dropped the
//! task first.

mod body;
mod check;
mod cmd;
mod config;
mod downloader;
mod establish;
mod events;
mod fetch;
mod peer;
mod reader;
mod registry;
mod shared;
mod track;

use std::io;

use http::HeaderMap;

pub use body::BodyStream;
pub use check::{CheckFn, ResponseInfo, reject_html_response};
pub use cmd::{FetchCmd, FetchResponse, ReadyFn, ResumeFn};
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_INACTIVITY_TIMEOUT, DEFAULT_MAX_CONCURRENT,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_SOFT_TIMEOUT, DownloaderConfig,
};
pub use downloader::{Downloader, PeerHandle};
pub use events::{CancelReason, DownloaderEvent, EVENT_QUEUE_CAPACITY, EventReceiver, RequestId};
pub use peer::Peer;

pub use crate::net::RequestMethod;

use crate::net::NetError;

/// Receives each body chunk of a streaming command, in order, each byte
/// once (also across resumes). An `Err` aborts the fetch with
/// [`NetError::Writer`]. It runs on the executor's thread: keep it quick
/// (a memory copy or a `write_at` into storage), never block on I/O waits.
/// Each chunk is handed over as the client's own [`Bytes`](bytes::Bytes),
/// so a writer can keep it without copying (see
/// [`FetchCmd::writer_bytes`](crate::dl::FetchCmd::writer_bytes)).
pub type WriterFn = Box<dyn FnMut(bytes::Bytes) -> io::Result<()> + Send>;

/// Receives the response headers once, after the checks passed (the
/// downloader's and [`FetchCmd::check`]) and before the first body byte.
pub type OnResponseFn = Box<dyn FnOnce(&HeaderMap) + Send>;

/// Called exactly once per accepted streaming command:
/// `(bytes written, headers, error)`.
///
/// - success: `(total, Some(headers), None)` (`total` is 0 without a writer);
/// - failure: `(bytes written so far, headers if a response arrived, Some(err))`;
/// - cancelled (queued, in flight, shutdown): `(bytes so far, .., Some(NetError::Cancelled))`.
pub type OnCompleteFn = Box<dyn FnOnce(u64, Option<&HeaderMap>, Option<&NetError>) + Send>;

/// Bounded length of each peer's imperative command queue.
pub const PEER_CMD_CHANNEL_CAPACITY: usize = 32;

/// Priority of a peer or of a command; the default is `Low`. Ordered as
/// the words read: `Low < High`, so `max` picks the more urgent one.
///
/// ```
/// use kithara_stream::dl::RequestPriority::{High, Low};
/// assert!(Low < High);
/// assert_eq!(Low.max(High), High);
/// assert_eq!(kithara_stream::dl::RequestPriority::default(), Low);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestPriority {
    /// Needed eventually (preload, background fill).
    #[default]
    Low,
    /// Needed now (the peer is playing; an imperative request).
    High,
}

/// The slot of a (peer, command) priority pair: 0 is served first.
pub(crate) fn slot_index(peer: RequestPriority, cmd: RequestPriority) -> usize {
    match (peer, cmd) {
        (RequestPriority::High, RequestPriority::High) => 0,
        (RequestPriority::High, RequestPriority::Low) => 1,
        (RequestPriority::Low, RequestPriority::High) => 2,
        (RequestPriority::Low, RequestPriority::Low) => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_table() {
        use RequestPriority::{High, Low};
        assert_eq!(
            [
                slot_index(High, High),
                slot_index(High, Low),
                slot_index(Low, High),
                slot_index(Low, Low)
            ],
            [0, 1, 2, 3]
        );
        assert!(Low < High);
        assert_eq!(RequestPriority::default(), Low);
    }
}
