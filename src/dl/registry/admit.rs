//! Admission: a peer's registration and its commands become queued
//! entries (the request, its cancel tokens and hook, the
//! `RequestEnqueued` event), in the slot their priorities pick.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Entry, Kind, PeerSlot, Registry};
use crate::cancel::{CancelGroup, CancelHook};
use crate::dl::establish::Request;
use crate::dl::events::DownloaderEvent;
use crate::dl::shared::{ImperativeMsg, NewPeer, Shared};
use crate::dl::track::{Completion, Publisher, Tokens, Tracker};
use crate::dl::{FetchCmd, RequestPriority, slot_index};

impl Registry {
    pub(super) fn add_peer(&mut self, new: NewPeer) {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let hook = new.token.on_cancel(move || {
            if let Some(shared) = weak.upgrade() {
                shared.wake.notify();
            }
        });
        self.peers.push(PeerSlot {
            id: new.id,
            priority: new.peer.priority(),
            peer: new.peer,
            token: new.token,
            rx: new.rx,
            hub: new.hub,
            done: false,
            again: true,
            queued: 0,
            _hook: hook,
        });
    }

    fn publisher(&self, i: usize) -> Publisher {
        Publisher::new(
            self.shared.clone(),
            self.peers[i].hub.clone(),
            self.shared.next_request_id(),
        )
    }

    fn request(&self, cmd: &mut FetchCmd, tokens: &Tokens) -> Arc<Request> {
        Arc::new(Request {
            shared: self.shared.clone(),
            method: cmd.method,
            url: cmd.url.clone(),
            headers: std::mem::take(&mut cmd.headers),
            range: cmd.range,
            check: std::sync::Mutex::new(cmd.check.take()),
            resume_if: std::sync::Mutex::new(cmd.resume_if.take()),
            cancel: tokens.group(),
        })
    }

    fn hook(&self, group: &CancelGroup) -> CancelHook {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        group.token().on_cancel(move || {
            if let Some(shared) = weak.upgrade() {
                shared.sweep.store(true, Ordering::Release);
                shared.wake.notify();
            }
        })
    }

    pub(super) fn accept_streaming(&mut self, i: usize, mut cmd: FetchCmd) {
        let tokens = Tokens {
            root: self.shared.root.clone(),
            peer: self.peers[i].token.clone(),
            epoch: cmd.cancel.take(),
            caller: None,
        };
        let req = self.request(&mut cmd, &tokens);
        let publisher = self.publisher(i);
        let cmd_priority = cmd.priority.unwrap_or(RequestPriority::Low);
        self.enqueued(&publisher, &req, cmd_priority);
        let completion = Completion::new(cmd.on_complete.take(), Tracker::new(publisher, tokens));
        let entry = Entry {
            peer: self.peers[i].id,
            cmd_priority,
            _hook: self.hook(&req.cancel),
            req,
            kind: Kind::Streaming {
                completion,
                writer: cmd.writer.take(),
                on_response: cmd.on_response.take(),
                ready: cmd.ready.take(),
            },
        };
        self.peers[i].queued += 1;
        self.push(self.peers[i].priority, entry);
    }

    pub(super) fn accept_imperative(&mut self, i: usize, msg: ImperativeMsg) {
        let ImperativeMsg {
            mut cmd,
            tx,
            collect,
            caller,
        } = msg;
        let tokens = Tokens {
            root: self.shared.root.clone(),
            peer: self.peers[i].token.clone(),
            epoch: cmd.cancel.take(),
            caller: Some(caller),
        };
        let req = self.request(&mut cmd, &tokens);
        let publisher = self.publisher(i);
        let cmd_priority = cmd.priority.unwrap_or(RequestPriority::High);
        self.enqueued(&publisher, &req, cmd_priority);
        let entry = Entry {
            peer: self.peers[i].id,
            cmd_priority,
            _hook: self.hook(&req.cancel),
            req,
            kind: Kind::Imperative {
                tracker: Tracker::new(publisher, tokens),
                tx,
                collect,
            },
        };
        self.push(self.peers[i].priority, entry);
    }

    fn enqueued(&self, publisher: &Publisher, req: &Request, priority: RequestPriority) {
        publisher.publish(&DownloaderEvent::RequestEnqueued {
            request_id: publisher.id,
            url: req.url.clone(),
            method: req.method,
            priority,
        });
    }

    fn push(&mut self, peer_priority: RequestPriority, entry: Entry) {
        self.slots[slot_index(peer_priority, entry.cmd_priority)].push_back(entry);
    }
}
