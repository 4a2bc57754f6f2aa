//! Event tracking of one request: its cancel tokens, its events, and the
//! exactly-once `on_complete`.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

use super::OnCompleteFn;
use super::events::{CancelReason, DownloaderEvent, Hub, RequestId, bandwidth_bps};
use super::shared::Shared;
use crate::cancel::{CancelGroup, CancelToken};
use crate::net::NetError;

/// The tokens a command's cancel group is made of, kept for classification.
pub(crate) struct Tokens {
    pub(crate) root: CancelToken,
    pub(crate) peer: CancelToken,
    pub(crate) epoch: Option<CancelToken>,
    pub(crate) caller: Option<CancelToken>,
}

impl Tokens {
    pub(crate) fn group(&self) -> CancelGroup {
        let mut members = vec![self.peer.clone()];
        members.extend(self.epoch.iter().cloned());
        members.extend(self.caller.iter().cloned());
        CancelGroup::new(members)
    }

    fn reason(&self) -> CancelReason {
        if self.root.is_cancelled() {
            CancelReason::DownloaderShutdown
        } else if self.peer.is_cancelled() {
            CancelReason::PeerCancel
        } else if self.epoch.as_ref().is_some_and(CancelToken::is_cancelled) {
            CancelReason::EpochCancel
        } else if self.caller.is_some() {
            CancelReason::Dropped
        } else {
            CancelReason::BeforeStart
        }
    }
}

/// Publishes a request's events to the downloader's and the peer's subscribers.
#[derive(Clone)]
pub(crate) struct Publisher {
    shared: Arc<Shared>,
    peer_hub: Arc<Hub>,
    pub(crate) id: RequestId,
}

impl Publisher {
    pub(crate) fn new(shared: Arc<Shared>, peer_hub: Arc<Hub>, id: RequestId) -> Self {
        Self {
            shared,
            peer_hub,
            id,
        }
    }

    pub(crate) fn publish(&self, event: &DownloaderEvent) {
        // One place sees every request's lifecycle: enqueued, started,
        // slow, retried, resumed, completed, failed, cancelled.
        crate::trace::trace!(debug, ?event, "request");
        self.shared.hub.publish(event);
        self.peer_hub.publish(event);
    }
}

/// Publishes exactly one terminal event per request: the first of
/// `completed` / `failed` / drop (cancelled).
pub(crate) struct Tracker {
    pub(crate) publisher: Publisher,
    tokens: Tokens,
    enqueued: Instant,
    started: Instant,
    done: bool,
}

impl Tracker {
    pub(crate) fn new(publisher: Publisher, tokens: Tokens) -> Self {
        let now = Instant::now();
        Self {
            publisher,
            tokens,
            enqueued: now,
            started: now,
            done: false,
        }
    }

    pub(crate) fn start(&mut self) {
        self.started = Instant::now();
        self.publisher.publish(&DownloaderEvent::RequestStarted {
            request_id: self.publisher.id,
            wait_in_queue: self.started.duration_since(self.enqueued),
        });
    }

    pub(crate) fn completed(&mut self, bytes: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let duration = self.started.elapsed();
        self.publisher.publish(&DownloaderEvent::RequestCompleted {
            request_id: self.publisher.id,
            bytes_transferred: bytes,
            duration,
            bandwidth_bps: bandwidth_bps(bytes, duration),
        });
    }

    pub(crate) fn failed(&mut self, error: &NetError, bytes: u64) {
        if error.is_cancelled() {
            return self.cancelled(bytes);
        }
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.publisher.publish(&DownloaderEvent::RequestFailed {
            request_id: self.publisher.id,
            error: error.clone(),
            retryable: error.is_retryable(),
        });
    }

    pub(crate) fn cancelled(&mut self, bytes: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.publisher.publish(&DownloaderEvent::RequestCancelled {
            request_id: self.publisher.id,
            reason: self.tokens.reason(),
            bytes_transferred: bytes,
        });
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.cancelled(0);
    }
}

/// A streaming command's completion: calls `on_complete` exactly once —
/// through [`finish`](Self::finish), or as cancelled when dropped unfinished
/// (queued at shutdown, peer gone, task dropped by the executor).
pub(crate) struct Completion {
    callback: Option<OnCompleteFn>,
    pub(crate) tracker: Tracker,
}

impl Completion {
    pub(crate) fn new(callback: Option<OnCompleteFn>, tracker: Tracker) -> Self {
        Self { callback, tracker }
    }

    pub(crate) fn finish(
        mut self,
        bytes: u64,
        headers: Option<&HeaderMap>,
        error: Option<&NetError>,
    ) {
        match error {
            None => self.tracker.completed(bytes),
            Some(e) => self.tracker.failed(e, bytes),
        }
        if let Some(cb) = self.callback.take() {
            cb(bytes, headers, error);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.tracker.cancelled(0);
        if let Some(cb) = self.callback.take() {
            cb(0, None, Some(&NetError::Cancelled));
        }
    }
}
