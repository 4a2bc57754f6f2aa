//! The fetch planner of an `HttpFile`: the next fetch (aimed at the reader
//! first, then at the remaining gaps), its per-fetch context, and the
//! [`Peer`] that hands it to the downloader.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use http::header;

use super::{Active, Shared, Terminal};
use crate::cancel::{CancelToken, lock};
use crate::dl::{FetchCmd, Peer, RequestPriority};
use crate::net::{RangeSpec, Validator};
use crate::trace::trace;

impl Shared {
    /// Plans the next fetch (under the state lock), or says there is none.
    fn plan(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        let mut st = lock(&self.state);
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        if st.done || (st.error.is_some() && !st.transient) {
            return Poll::Ready(None);
        }
        // A transient give-up waits for a read to revive it (the waker is
        // stored above); so does a fetch in flight.
        if st.error.is_some() || st.active.is_some() {
            return Poll::Pending;
        }
        let limit = st.len.or(st.limit).unwrap_or(u64::MAX);
        let from = self
            .live_append_point()
            .unwrap_or_else(|| st.want.min(limit));
        // A bounded storage fetches only at and after the reader: filling
        // the gaps behind it would evict what it just fetched.
        let bounded = self.storage.is_bounded();
        let gap = self.storage.next_gap(from, limit).or_else(|| {
            if from > 0 && !bounded {
                self.storage.next_gap(0, from)
            } else {
                None
            }
        });
        let Some(gap) = gap else {
            if st.len.is_none() && st.limit.is_none()
                || (bounded && self.storage.next_gap(0, limit).is_some())
            {
                return Poll::Pending;
            }
            // Usually the last fetch's completion committed already; this
            // covers a resource that needed no fetch (or a 416 limit).
            self.commit_if_complete(st);
            return Poll::Ready(None);
        };
        let start = gap.start;
        let end = (gap.end < limit).then_some(gap.end);
        // A live stream is continued by a plain GET.
        let ranged = (start > 0 || end.is_some()) && !self.is_live();
        // Every request for a part of the resource names the version it
        // wants a part of (RFC 9110 §13.1.5).
        let if_range = st.validator.clone().filter(|_| ranged);
        let id = st.next_id;
        st.next_id += 1;
        let token = CancelToken::new();
        let frontier = Arc::new(AtomicU64::new(start));
        st.active = Some(Active {
            id,
            token: token.clone(),
            start,
            end,
            frontier: frontier.clone(),
        });
        let priority = if start == st.want {
            RequestPriority::High
        } else {
            RequestPriority::Low
        };
        drop(st);
        let ctx = Arc::new(Mutex::new(FetchCtx {
            id,
            start,
            end,
            ranged,
            offset: start,
            partial: false,
            stored: 0,
            frontier,
            token: token.clone(),
            if_range: if_range.clone(),
            progress: Instant::now(),
            changed: false,
        }));
        // A live stream's dropped body is continued by a new plain GET
        // (the next plan), not resumed with `Range`: liveness is learned from
        // the first answer, so it is asked at the failure.
        let this = Arc::downgrade(self);
        let mut cmd = FetchCmd::get(self.url.clone())
            .headers(self.headers.clone())
            .cancel(token)
            .priority(priority)
            .resume_if(move || this.upgrade().is_some_and(|s| !s.is_live()));
        if let Some(v) = if_range.as_ref().and_then(Validator::header_value) {
            cmd = cmd.header(header::IF_RANGE, v);
        }
        if ranged {
            match RangeSpec::new(start, end.map(|e| e - 1)) {
                Ok(spec) => cmd = cmd.range(spec),
                Err(e) => {
                    self.fail(Terminal::Net(e));
                    return Poll::Ready(None);
                }
            }
        }
        trace!(debug, url = %self.url, start, end, ranged, ?priority, "fetch planned");
        let s3 = self.clone();
        let cmd = self
            .live_callbacks(cmd, &ctx)
            .on_complete(move |bytes, _h, err| s3.on_complete(&ctx, bytes, err));
        Poll::Ready(Some(vec![cmd]))
    }
}

/// Per-fetch bookkeeping shared by its three callbacks.
pub(super) struct FetchCtx {
    pub(super) id: u64,
    /// First wanted byte.
    pub(super) start: u64,
    /// One past the last wanted byte (`None`: to the end).
    pub(super) end: Option<u64>,
    pub(super) ranged: bool,
    /// Resource offset of the next body byte.
    pub(super) offset: u64,
    /// The answer was a 206 (its end is the range's, not the resource's).
    pub(super) partial: bool,
    /// Bytes this fetch stored (ones already present not counted): its
    /// progress.
    pub(super) stored: u64,
    pub(super) frontier: Arc<AtomicU64>,
    pub(super) token: CancelToken,
    /// The validator the request sent in `If-Range`.
    pub(super) if_range: Option<Validator>,
    /// When this fetch last stored a byte (when it was planned, before
    /// its first): where a run of failures began.
    pub(super) progress: Instant,
    /// The check rejected the answer for being another version.
    pub(super) changed: bool,
}

/// The [`Peer`] of one `HttpFile`: one fetch at a time, aimed at the reader
/// first, then at the remaining gaps.
pub(crate) struct FilePeer(pub(crate) Arc<Shared>);

impl Peer for FilePeer {
    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        self.0.plan(cx)
    }

    /// `High` while the timeline is playing.
    fn priority(&self) -> RequestPriority {
        if self.0.timeline.is_playing() {
            RequestPriority::High
        } else {
            RequestPriority::Low
        }
    }
}
