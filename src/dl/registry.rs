//! The loop: registrations, peers, the four slots, dispatch (how a
//! registration or a command becomes a queued entry is in `admit`).
//!
//! All of it is one synchronous `poll` step per wake-up: an entry is either
//! in a slot, or spawned with its slot taken, never in between, so dropping
//! the loop future at any await point cannot lose a command (each queued
//! entry completes as cancelled when dropped).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use event_listener::EventListener;
use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

use super::establish::Request;
use super::events::Hub;
use super::fetch::{run_imperative, run_streaming};
use super::shared::{ImperativeMsg, NewPeer, Shared, Slot};
use super::track::{Completion, Tracker};
use super::{FetchResponse, OnResponseFn, Peer, ReadyFn, RequestPriority, WriterFn, slot_index};
use crate::cancel::{CancelHook, CancelToken, Cancelled};
use crate::net::NetError;
use crate::rt::BoxFuture;

mod admit;

/// Passes per `poll` before yielding back to the executor.
const MAX_PASSES_PER_POLL: usize = 32;

struct PeerSlot {
    id: u64,
    peer: Arc<dyn Peer>,
    token: CancelToken,
    rx: mpsc::Receiver<ImperativeMsg>,
    hub: Arc<Hub>,
    /// `poll_next` said `Ready(None)`.
    done: bool,
    /// `poll_next` said `Ready(Some(..))` last: poll it again once its
    /// queue is empty (the pull contract), without waiting for a wake-up.
    again: bool,
    priority: RequestPriority,
    /// Streaming entries of this peer still in a slot.
    queued: usize,
    _hook: CancelHook,
}

enum Kind {
    Streaming {
        completion: Completion,
        writer: Option<WriterFn>,
        on_response: Option<OnResponseFn>,
        ready: Option<ReadyFn>,
    },
    Imperative {
        tracker: Tracker,
        tx: oneshot::Sender<Result<FetchResponse, NetError>>,
        collect: bool,
    },
}

struct Entry {
    peer: u64,
    cmd_priority: RequestPriority,
    req: Arc<Request>,
    kind: Kind,
    /// Wakes the loop when the command is cancelled while queued.
    _hook: CancelHook,
}

impl Entry {
    fn is_streaming(&self) -> bool {
        matches!(self.kind, Kind::Streaming { .. })
    }

    fn is_cancelled(&self) -> bool {
        match &self.kind {
            Kind::Imperative { tx, .. } if tx.is_canceled() => true,
            _ => self.req.cancel.is_cancelled(),
        }
    }
}

pub(crate) struct Registry {
    shared: Arc<Shared>,
    reg_rx: mpsc::UnboundedReceiver<NewPeer>,
    peers: Vec<PeerSlot>,
    slots: [VecDeque<Entry>; 4],
    shutdown: Cancelled,
    throttle: Option<BoxFuture<'static, ()>>,
    listener: Option<EventListener>,
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>, reg_rx: mpsc::UnboundedReceiver<NewPeer>) -> Self {
        Self {
            shutdown: shared.root.cancelled(),
            shared,
            reg_rx,
            peers: Vec::new(),
            slots: Default::default(),
            throttle: None,
            listener: None,
        }
    }

    /// The loop task: ends when the downloader's token fires.
    pub(crate) async fn run(mut self) {
        futures::future::poll_fn(|cx| self.poll(cx)).await;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..MAX_PASSES_PER_POLL {
            if Pin::new(&mut self.shutdown).poll(cx).is_ready() {
                self.close();
                return Poll::Ready(());
            }
            // Consume the permit first: anything notified from here on
            // makes us go round again instead of sleeping.
            self.shared.wake.take();
            self.pass(cx);
            if self.shared.wake.take() || self.poll_again() {
                continue;
            }
            let listener = self
                .listener
                .get_or_insert_with(|| self.shared.wake.listen());
            if self.shared.wake.take() {
                continue;
            }
            match Pin::new(listener).poll(cx) {
                Poll::Ready(()) => self.listener = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One synchronous pass: take in work, then dispatch what fits.
    fn pass(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(new)) = self.reg_rx.poll_next_unpin(cx) {
            self.add_peer(new);
        }
        self.poll_peers(cx);
        if self.shared.sweep.swap(false, Ordering::AcqRel) {
            self.sweep();
        }
        self.dispatch(cx);
    }

    fn poll_peers(&mut self, cx: &mut Context<'_>) {
        let mut removed = false;
        let mut i = 0;
        while i < self.peers.len() {
            if self.peers[i].token.is_cancelled() {
                // Dropping its receiver fails later `execute` calls; its
                // queued entries are cancelled by the sweep below.
                let gone = self.peers.remove(i);
                self.release(gone.peer);
                removed = true;
                continue;
            }
            // Live priority: move queued entries when it changed.
            let priority = self.peers[i].peer.priority();
            if priority != self.peers[i].priority {
                self.peers[i].priority = priority;
                let id = self.peers[i].id;
                self.reslot(id, priority);
            }
            while let Poll::Ready(Some(msg)) = self.peers[i].rx.poll_next_unpin(cx) {
                self.accept_imperative(i, msg);
            }
            let p = &self.peers[i];
            if !p.done && p.queued == 0 {
                let polled = p.peer.poll_next(cx);
                self.peers[i].again = matches!(polled, Poll::Ready(Some(_)));
                match polled {
                    Poll::Ready(Some(cmds)) => {
                        for cmd in cmds {
                            self.accept_streaming(i, cmd);
                        }
                    }
                    Poll::Ready(None) => self.peers[i].done = true,
                    Poll::Pending => {}
                }
            }
            i += 1;
        }
        if removed {
            self.sweep();
        }
    }

    /// Whether a peer that last handed over work has an empty queue now:
    /// it is polled again in the next pass (the pull contract).
    fn poll_again(&self) -> bool {
        self.peers
            .iter()
            .any(|p| p.again && !p.done && p.queued == 0 && !p.token.is_cancelled())
    }

    /// Drops a retired peer on a task of its own, not on the loop: its
    /// drop may release the last handle to its storage (closing, syncing or
    /// freeing a large cache), and the loop must stay free for every other
    /// peer meanwhile. An executor that drops the task unrun drops the
    /// peer with it.
    fn release(&self, peer: Arc<dyn Peer>) {
        self.shared
            .cfg
            .spawn
            .spawn(Box::pin(async move { drop(peer) }));
    }

    fn reslot(&mut self, peer: u64, priority: RequestPriority) {
        let mut moved = Vec::new();
        for slot in &mut self.slots {
            let (mine, rest): (VecDeque<Entry>, VecDeque<Entry>) = std::mem::take(slot)
                .into_iter()
                .partition(|e| e.peer == peer);
            *slot = rest;
            moved.extend(mine);
        }
        for e in moved {
            self.slots[slot_index(priority, e.cmd_priority)].push_back(e);
        }
        if matches!(priority, RequestPriority::High) {
            self.shared.wake.notify();
        }
    }

    /// Bookkeeping for an entry leaving the slots (dispatched or dropped).
    fn left(&mut self, entry: &Entry) {
        if entry.is_streaming()
            && let Some(p) = self.peers.iter_mut().find(|p| p.id == entry.peer)
        {
            p.queued = p.queued.saturating_sub(1);
        }
    }

    /// Completes every cancelled queued entry now (as cancelled).
    fn sweep(&mut self) {
        let mut gone = Vec::new();
        for slot in &mut self.slots {
            if slot.iter().any(Entry::is_cancelled) {
                let (dead, live): (VecDeque<Entry>, VecDeque<Entry>) = std::mem::take(slot)
                    .into_iter()
                    .partition(Entry::is_cancelled);
                *slot = live;
                gone.extend(dead);
            }
        }
        for e in gone {
            self.left(&e);
            drop(e);
        }
    }

    fn has_capacity(&self) -> bool {
        self.shared.inflight.load(Ordering::Acquire) < self.shared.cfg.max_concurrent
    }

    fn dispatch(&mut self, cx: &mut Context<'_>) {
        let mut urgent = false;
        while self.has_capacity() {
            let Some(e) = self.slots[0]
                .pop_front()
                .or_else(|| self.slots[1].pop_front())
            else {
                break;
            };
            urgent = true;
            self.start(e);
        }
        if urgent {
            // Urgent work preempts the demand throttle; it starts over.
            self.throttle = None;
        }
        let demand_waiting = !self.slots[2].is_empty() || !self.slots[3].is_empty();
        let urgent_waiting = !self.slots[0].is_empty() || !self.slots[1].is_empty();
        if !demand_waiting || urgent_waiting || !self.has_capacity() {
            return;
        }
        let throttle = self.shared.cfg.demand_throttle;
        if !throttle.is_zero() {
            let sleep = self
                .throttle
                .get_or_insert_with(|| self.shared.cfg.spawn.sleep(throttle));
            if sleep.as_mut().poll(cx).is_pending() {
                return;
            }
            self.throttle = None;
        }
        while self.has_capacity() {
            let Some(e) = self.slots[2]
                .pop_front()
                .or_else(|| self.slots[3].pop_front())
            else {
                break;
            };
            self.start(e);
        }
    }

    /// Takes a slot and spawns the entry's task (or completes it as
    /// cancelled if its token already fired).
    fn start(&mut self, entry: Entry) {
        self.left(&entry);
        if entry.is_cancelled() {
            return;
        }
        let Entry { req, kind, .. } = entry;
        self.shared.inflight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.shared.clone());
        let task: BoxFuture<'static, ()> = match kind {
            Kind::Streaming {
                mut completion,
                writer,
                on_response,
                ready,
            } => {
                completion.tracker.start();
                Box::pin(run_streaming(
                    req,
                    completion,
                    writer,
                    on_response,
                    ready,
                    slot,
                ))
            }
            Kind::Imperative {
                mut tracker,
                tx,
                collect,
            } => {
                tracker.start();
                Box::pin(run_imperative(req, tracker, tx, collect, slot))
            }
        };
        self.shared.cfg.spawn.spawn(task);
    }

    /// Shutdown: every queued entry completes as cancelled, peers (also the
    /// registrations not taken in yet) are cancelled and released, so
    /// nobody waits on a peer that will never be polled.
    fn close(&mut self) {
        for slot in &mut self.slots {
            slot.clear();
        }
        for p in self.peers.drain(..) {
            p.token.cancel();
        }
        self.reg_rx.close();
        while let Ok(new) = self.reg_rx.try_recv() {
            new.token.cancel();
        }
        self.throttle = None;
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Also reached when the executor drops the loop without finishing it.
        self.close();
        self.shared.loop_alive.store(false, Ordering::Release);
    }
}
