//! The loop's plumbing: the state the loop, the fetch tasks and the
//! handles share, and the messages that reach the loop. The facade
//! (`downloader.rs`) builds it and hands out handles; the loop
//! (`registry.rs`) and the fetch tasks (`fetch.rs`) run on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use event_listener::{Event, EventListener};
use futures::channel::{mpsc, oneshot};

use super::events::{Hub, RequestId};
use super::{DownloaderConfig, FetchCmd, FetchResponse, Peer};
use crate::cancel::CancelToken;
use crate::net::NetError;
use crate::offload::{MAX_BLOCKING_JOBS, Offload};

/// An event with a stored permit (like a one-permit semaphore): a
/// `notify` that comes before the waiter listens is not lost.
pub(crate) struct Signal {
    permit: AtomicBool,
    event: Event,
}

impl Signal {
    fn new() -> Self {
        Self {
            permit: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// Stores the permit, then wakes the listener.
    pub(crate) fn notify(&self) {
        self.permit.store(true, Ordering::Release);
        self.event.notify(usize::MAX);
    }

    /// Takes the permit: whether a notify happened since the last take.
    pub(crate) fn take(&self) -> bool {
        self.permit.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn listen(&self) -> EventListener {
        self.event.listen()
    }
}

/// What the loop, the fetch tasks and the handles share. The loop holds it
/// strongly; it never holds a [`Downloader`](super::Downloader) or a
/// [`PeerHandle`](super::PeerHandle), so
/// dropping those is observable.
pub(crate) struct Shared {
    pub(crate) cfg: DownloaderConfig,
    /// The downloader's own token (a child of `cfg.cancel`).
    pub(crate) root: CancelToken,
    /// Requests holding a concurrency slot. Only the loop increments it.
    pub(crate) inflight: AtomicUsize,
    /// Wakes the loop: capacity freed, urgent work enqueued, a queued
    /// command cancelled, a peer cancelled.
    pub(crate) wake: Signal,
    /// Set (before `wake`) when a queued command's token fired.
    pub(crate) sweep: AtomicBool,
    pub(crate) hub: Hub,
    pub(crate) loop_alive: AtomicBool,
    next_request_id: AtomicU64,
    next_peer_id: AtomicU64,
    reg_tx: mpsc::UnboundedSender<NewPeer>,
    /// Blocking file work of this downloader's streams (opens, commits,
    /// sidecar records), at most [`MAX_BLOCKING_JOBS`] at once.
    pub(crate) offload: Offload,
}

impl Shared {
    /// The state of a new downloader, and the receiving end of its
    /// registrations (for the loop).
    pub(crate) fn new(cfg: DownloaderConfig) -> (Arc<Self>, mpsc::UnboundedReceiver<NewPeer>) {
        let root = cfg
            .cancel
            .as_ref()
            .map_or_else(CancelToken::new, CancelToken::child);
        let (reg_tx, reg_rx) = mpsc::unbounded();
        let shared = Arc::new(Self {
            offload: Offload::new(cfg.spawn.clone(), MAX_BLOCKING_JOBS),
            hub: Hub::new(cfg.event_capacity),
            cfg,
            root,
            inflight: AtomicUsize::new(0),
            wake: Signal::new(),
            sweep: AtomicBool::new(false),
            loop_alive: AtomicBool::new(true),
            next_request_id: AtomicU64::new(1),
            next_peer_id: AtomicU64::new(1),
            reg_tx,
        });
        (shared, reg_rx)
    }

    /// A fresh peer id (from 1).
    pub(crate) fn next_peer_id(&self) -> u64 {
        self.next_peer_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands a registration to the loop; `false` when the loop is gone.
    pub(crate) fn send_peer(&self, new: NewPeer) -> bool {
        self.reg_tx.unbounded_send(new).is_ok()
    }

    pub(crate) fn next_request_id(&self) -> RequestId {
        loop {
            let n = self.next_request_id.fetch_add(1, Ordering::Relaxed);
            if let Some(id) = RequestId::new(n) {
                return id;
            }
        }
    }

    /// Frees one concurrency slot and wakes the loop.
    pub(crate) fn release_slot(&self) {
        self.inflight.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify();
    }
}

/// A concurrency slot; released (and the loop woken) on drop.
pub(crate) struct Slot(pub(crate) Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}

/// An imperative command on its way to the loop.
pub(crate) struct ImperativeMsg {
    pub(crate) cmd: FetchCmd,
    pub(crate) tx: oneshot::Sender<Result<FetchResponse, NetError>>,
    /// `batch`: read the body inside the slot and return it buffered.
    pub(crate) collect: bool,
    /// Cancelled when the caller drops its future before the answer.
    pub(crate) caller: CancelToken,
}

/// A registration on its way to the loop.
pub(crate) struct NewPeer {
    pub(crate) id: u64,
    pub(crate) peer: Arc<dyn Peer>,
    pub(crate) token: CancelToken,
    pub(crate) rx: mpsc::Receiver<ImperativeMsg>,
    pub(crate) hub: Arc<Hub>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_listener::Listener;
    use std::time::Duration;

    #[test]
    fn signal_keeps_a_notify_that_came_before_the_wait() {
        let s = Signal::new();
        assert!(!s.take());
        s.notify();
        // The waiter checks the permit after listening: the early notify is not lost.
        let l = s.listen();
        assert!(s.take());
        assert!(!s.take());
        // A notify after listening wakes the listener.
        s.notify();
        assert!(l.wait_timeout(Duration::from_secs(5)).is_some());
    }
}
