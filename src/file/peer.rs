//! The download side of an `HttpFile`: the state shared with the source, the
//! fetch planner (a [`Peer`]) and the fetch callbacks.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use http::{HeaderMap, StatusCode, header};
use url::Url;

use crate::cancel::{CancelToken, lock};
use crate::dl::{FetchCmd, Peer, RequestPriority, reject_html_response};
use crate::media::{AudioCodec, ContainerFormat, MediaInfo};
use crate::net::{ContentRange, NetError, RangeSpec, header_u64};
use crate::rt::Spawn;
use crate::storage::{StorageError, StorageResource};
use crate::timeline::Timeline;

pub(crate) mod live;

/// Consecutive failed fetches (each already retried/resumed by the
/// downloader) without a byte of progress before the resource fails.
pub const MAX_FETCH_FAILURES: u32 = 3;

/// Why the download gave up for good.
#[derive(Debug, Clone)]
pub(crate) enum Terminal {
    Net(NetError),
    Storage(String),
}

/// A fetch in flight (or queued) for the reader or a gap.
struct Active {
    id: u64,
    token: CancelToken,
    /// The fetch's first wanted byte.
    start: u64,
    end: Option<u64>,
    /// One past the last byte the fetch has handed to storage, including
    /// the chunk being stored right now (it moves before the write, so a
    /// reader woken by the write never sees it behind its own position).
    frontier: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    waker: Option<Waker>,
    /// Where the reader wants bytes.
    want: u64,
    active: Option<Active>,
    next_id: u64,
    /// The resource's length, once known.
    len: Option<u64>,
    /// An upper bound on the length learned from a 416.
    limit: Option<u64>,
    headers_known: bool,
    content_type: Option<String>,
    media: Option<MediaInfo>,
    /// `Some(false)` once a ranged request was answered with the whole body.
    ranges_supported: Option<bool>,
    failures: u32,
    error: Option<Terminal>,
    /// Committed; nothing more to fetch.
    done: bool,
}

/// What the source, the peer and the fetch callbacks share.
pub(crate) struct Shared {
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) storage: StorageResource,
    pub(crate) timeline: Timeline,
    pub(crate) reaim_window: u64,
    /// Where a cache file's commit (an `fdatasync`) runs: the downloader's
    /// blocking pool. `None` for a complete cache (nothing to commit).
    spawn: Option<Arc<dyn Spawn>>,
    state: Mutex<State>,
    /// Live stream, ICY and bounded-storage state (see `live`).
    live: Mutex<live::LiveState>,
}

/// Where `new` stands: headers in, failed, or still waiting.
pub(crate) enum Opening {
    Ready,
    Failed(Terminal),
    Waiting,
}

fn is_generic_mime(ct: &str) -> bool {
    let base = ct.split(';').next().unwrap_or("").trim();
    base.is_empty()
        || base.eq_ignore_ascii_case("application/octet-stream")
        || base.eq_ignore_ascii_case("binary/octet-stream")
        || base.eq_ignore_ascii_case("application/binary")
}

/// MediaInfo from the first bytes of a resource.
pub(crate) fn media_from_magic(bytes: &[u8]) -> Option<MediaInfo> {
    let container = ContainerFormat::from_magic(bytes);
    let codec = AudioCodec::try_from(bytes).ok();
    (codec.is_some() || container.is_some()).then(|| MediaInfo::new(codec, container))
}

impl Shared {
    pub(crate) fn new(
        url: Url,
        headers: HeaderMap,
        storage: StorageResource,
        timeline: Timeline,
        reaim_window: u64,
        len: Option<u64>,
        spawn: Option<Arc<dyn Spawn>>,
    ) -> Self {
        Self {
            url,
            headers,
            storage,
            timeline,
            reaim_window,
            spawn,
            state: Mutex::new(State {
                len,
                ..State::default()
            }),
            live: Mutex::default(),
        }
    }

    /// A shared state for a complete cache: headers known, done.
    pub(crate) fn complete(
        url: Url,
        storage: StorageResource,
        timeline: Timeline,
        len: u64,
    ) -> Self {
        let s = Self::new(url, HeaderMap::new(), storage, timeline, 0, Some(len), None);
        {
            let mut st = lock(&s.state);
            st.headers_known = true;
            st.done = true;
        }
        s
    }

    pub(crate) fn opening(&self) -> Opening {
        let st = lock(&self.state);
        if let Some(e) = &st.error {
            Opening::Failed(e.clone())
        } else if st.headers_known {
            Opening::Ready
        } else if self.storage.cancel_token().is_cancelled() {
            Opening::Failed(Terminal::Net(NetError::Cancelled))
        } else {
            Opening::Waiting
        }
    }

    pub(crate) fn terminal(&self) -> Option<Terminal> {
        lock(&self.state).error.clone()
    }

    pub(crate) fn content_type(&self) -> Option<String> {
        lock(&self.state).content_type.clone()
    }

    pub(crate) fn len(&self) -> Option<u64> {
        lock(&self.state).len
    }

    /// MediaInfo from the MIME type, else from the first bytes once present.
    pub(crate) fn media_info(&self) -> Option<MediaInfo> {
        if let Some(m) = lock(&self.state).media.clone() {
            return Some(m);
        }
        let mut head = [0u8; 256];
        let n = self.storage.read_at(0, &mut head).ok()?;
        let complete = n == head.len() || self.storage.len().is_some_and(|l| n as u64 >= l);
        let m = media_from_magic(&head[..n]);
        if m.is_some() && complete {
            lock(&self.state).media.clone_from(&m);
        }
        m
    }

    pub(crate) fn ranges_supported(&self) -> Option<bool> {
        lock(&self.state).ranges_supported
    }

    /// The reader wants the byte at `pos`: re-aims the download there unless
    /// it is present, past the end, or about to arrive from the running
    /// fetch. Never blocks for long; wakes the peer through its waker.
    pub(crate) fn want(&self, pos: u64) {
        let mut st = lock(&self.state);
        if st.done || st.error.is_some() {
            return;
        }
        st.want = pos;
        if st.len.or(st.limit).is_some_and(|l| pos >= l)
            || self.storage.contains_range(pos..pos.saturating_add(1))
        {
            return;
        }
        let stale = match &st.active {
            None => None,
            Some(a) => {
                let f = a.frontier.load(Ordering::Acquire);
                let within = a.end.is_none_or(|e| pos < e);
                // Everything from the fetch's start to its frontier is stored
                // or being stored; the window says how far ahead is worth
                // waiting for.
                let soon = pos >= a.start && pos <= f.saturating_add(self.reaim_window);
                // Without Range support a new fetch restarts at byte 0:
                // waiting for the running one is never slower.
                let sequential = st.ranges_supported == Some(false) && pos >= f;
                if within && (soon || sequential) && !self.evicted_behind(pos, f) {
                    return;
                }
                st.active.take()
            }
        };
        let waker = st.waker.clone();
        drop(st);
        if let Some(a) = stale {
            a.token.cancel();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wakes the peer (the downloader re-reads its priority and polls it).
    pub(crate) fn wake(&self) {
        let waker = lock(&self.state).waker.clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn fail(&self, error: Terminal) {
        let msg = match &error {
            Terminal::Net(e) => e.to_string(),
            Terminal::Storage(s) => s.clone(),
        };
        let active = {
            let mut st = lock(&self.state);
            if st.error.is_some() || st.done {
                return;
            }
            st.error = Some(error);
            st.active.take()
        };
        if let Some(a) = active {
            a.token.cancel();
        }
        self.storage.fail(msg);
    }

    /// Commits the storage once every byte up to the known length (or
    /// limit) is present; nothing otherwise or when already done. Takes the
    /// state guard: the commit runs without the lock, and for a cache file
    /// (an `fdatasync` of the whole file) on the runtime's blocking pool.
    fn commit_if_complete(self: &Arc<Self>, mut st: MutexGuard<'_, State>) {
        let Some(limit) = st.len.or(st.limit) else {
            return;
        };
        if st.done || st.error.is_some() || self.storage.next_gap(0, limit).is_some() {
            return;
        }
        st.done = true;
        let len = st.len;
        drop(st);
        let this = self.clone();
        let commit = move || match this.storage.commit(len) {
            // The reader went away as the last byte landed: nothing to
            // report, and the storage's last drop records the complete
            // bytes (failing it here would leave the cache partial).
            Ok(()) | Err(StorageError::Cancelled) => {}
            Err(e) => {
                lock(&this.state).done = false;
                this.fail(Terminal::Storage(e.to_string()));
            }
        };
        match &self.spawn {
            // A cache file's commit syncs it to disk: off the async threads.
            Some(spawn) if self.storage.path().is_some() => spawn.spawn_blocking(Box::new(commit)),
            _ => commit(),
        }
    }

    /// Plans the next fetch (under the state lock), or says there is none.
    fn plan(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<FetchCmd>>> {
        let mut st = lock(&self.state);
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        if st.error.is_some() || st.done {
            return Poll::Ready(None);
        }
        if st.active.is_some() {
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
            reject: None,
            partial: false,
            stored: 0,
            frontier,
            token: token.clone(),
        }));
        let mut cmd = FetchCmd::get(self.url.clone())
            .headers(self.headers.clone())
            .cancel(token)
            .priority(priority)
            .validator(reject_html_response);
        if ranged {
            match RangeSpec::new(start, end.map(|e| e - 1)) {
                Ok(spec) => cmd = cmd.range(spec),
                Err(e) => {
                    self.fail(Terminal::Net(e));
                    return Poll::Ready(None);
                }
            }
        }
        let s3 = self.clone();
        let cmd = self
            .live_callbacks(cmd, &ctx)
            .on_complete(move |bytes, _h, err| s3.on_complete(&ctx, bytes, err));
        Poll::Ready(Some(vec![cmd]))
    }

    /// Interprets the response headers: where the body starts, the length,
    /// the type. A contradiction with the request or the known length marks
    /// the fetch rejected (the writer then aborts it).
    fn on_response(&self, ctx: &Mutex<FetchCtx>, headers: &HeaderMap) {
        let mut ctx = lock(ctx);
        let reject = |reason: String| NetError::InvalidResponse {
            url: self.url.clone(),
            reason,
        };
        let content_range = headers.get(header::CONTENT_RANGE).map(|v| {
            v.to_str()
                .map_err(|e| e.to_string())
                .and_then(|t| ContentRange::parse(t).map_err(|e| e.to_string()))
        });
        let total = match content_range {
            Some(Err(e)) => {
                ctx.reject = Some(reject(format!("bad Content-Range: {e}")));
                return;
            }
            Some(Ok(cr)) => {
                let total = cr.complete_length();
                let want_last = ctx
                    .end
                    .map(|e| total.map_or(e, |t| e.min(t)).saturating_sub(1));
                if cr.first() != ctx.start || want_last.is_some_and(|l| cr.last() != l) {
                    ctx.reject = Some(reject(format!(
                        "asked for bytes {}-{}, got Content-Range {}-{}",
                        ctx.start,
                        ctx.end.map_or(String::new(), |e| (e - 1).to_string()),
                        cr.first(),
                        cr.last()
                    )));
                    return;
                }
                ctx.offset = cr.first();
                ctx.partial = true;
                total
            }
            None => {
                // A 200: the body is the whole resource from byte 0; bytes
                // before the wanted start are skipped by the writer.
                ctx.offset = 0;
                header_u64(headers, header::CONTENT_LENGTH)
            }
        };
        ctx.frontier.store(ctx.offset, Ordering::Release);
        let mut st = lock(&self.state);
        if ctx.ranged && ctx.offset == 0 && ctx.start > 0 {
            st.ranges_supported = Some(false);
        } else if ctx.ranged {
            st.ranges_supported = Some(true);
        }
        if let Some(t) = total {
            match st.len {
                Some(l) if l != t => {
                    drop(st);
                    ctx.reject = Some(reject(format!(
                        "resource length changed: {t} bytes now, {l} before"
                    )));
                    return;
                }
                Some(_) => {}
                None => {
                    st.len = Some(t);
                    self.storage.set_len_hint(Some(t));
                }
            }
        }
        if !st.headers_known {
            st.headers_known = true;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(ct) = ct.as_deref().filter(|c| !is_generic_mime(c)) {
                st.media = MediaInfo::from_mime(ct);
            }
            st.content_type = ct;
        }
        drop(st);
        self.storage.notify_waiters();
    }

    /// One body chunk: lands in storage at its offset (bytes before the
    /// wanted start of a 200 answer are skipped).
    fn write(&self, ctx: &Mutex<FetchCtx>, chunk: &[u8]) -> io::Result<()> {
        let mut ctx = lock(ctx);
        if let Some(r) = &ctx.reject {
            return Err(io::Error::other(r.to_string()));
        }
        let off = ctx.offset;
        let n = chunk.len() as u64;
        let skip = usize::try_from(ctx.start.saturating_sub(off).min(n)).unwrap_or(chunk.len());
        // Before the write: the write wakes the reader, which must find the
        // frontier past the bytes it just saw arrive (else it re-aims).
        ctx.frontier.store(off + n, Ordering::Release);
        if skip < chunk.len() {
            self.storage
                .write_at(off + skip as u64, &chunk[skip..])
                .map_err(io::Error::other)?;
            ctx.stored += (chunk.len() - skip) as u64;
        }
        ctx.offset = off + n;
        self.timeline.set_download_position(ctx.offset);
        Ok(())
    }

    /// The fetch ended (exactly once): learn the length of an unsized
    /// body, count failures, and wake the peer to plan what is next.
    ///
    /// Peer-level retries (a new fetch from the first missing byte) follow
    /// retryable errors and a failed resume after progress (e.g. a server
    /// that ignores `Range` dropped the connection: the downloader cannot
    /// resume that, a new request skipping to the offset can); they stop
    /// after [`MAX_FETCH_FAILURES`] failed fetches in a row that stored
    /// nothing new.
    fn on_complete(self: &Arc<Self>, ctx: &Mutex<FetchCtx>, _bytes: u64, err: Option<&NetError>) {
        let (id, start, end, offset, reject, stored, stale, partial) = {
            let mut c = lock(ctx);
            (
                c.id,
                c.start,
                c.end,
                c.offset,
                c.reject.take(),
                c.stored,
                c.token.is_cancelled(),
                c.partial,
            )
        };
        let rejected = reject.is_some();
        let error = reject.or_else(|| err.cloned());
        let succeeded = error.is_none();
        let mut fatal = None;
        {
            let mut st = lock(&self.state);
            if st.active.as_ref().is_some_and(|a| a.id == id) {
                st.active = None;
            }
            if st.done || st.error.is_some() || self.storage.cancel_token().is_cancelled() {
                return;
            }
            match error {
                None => {
                    st.failures = 0;
                    if end.is_none() && !partial && st.len.is_none() {
                        // An unsized (chunked) 200 body ended: that is the
                        // length. (A 206 may end early by the server's
                        // choice; its end says nothing about the length.)
                        st.len = Some(offset);
                        self.storage.set_len_hint(Some(offset));
                    }
                }
                Some(_) if stale => {}
                Some(NetError::Cancelled) => fatal = Some(NetError::Cancelled),
                Some(NetError::Status { status, .. })
                    if status == StatusCode::RANGE_NOT_SATISFIABLE
                        && start > 0
                        && st.headers_known =>
                {
                    // The resource ends at or before `start`.
                    st.limit = Some(st.limit.map_or(start, |l| l.min(start)));
                }
                Some(e)
                    if st.headers_known
                        && (e.is_retryable()
                            || (!rejected
                                && stored > 0
                                && matches!(e, NetError::InvalidResponse { .. }))) =>
                {
                    if stored > 0 {
                        st.failures = 0;
                    }
                    st.failures += 1;
                    if st.failures >= MAX_FETCH_FAILURES {
                        fatal = Some(e);
                    }
                }
                Some(e) => fatal = Some(e),
            }
        }
        // Commit here, on the fetch's task, rather than in `plan`: `plan`
        // runs on the downloader's loop, which a cache file's `fdatasync`
        // (tens of ms for a big file) would stall for every peer.
        if succeeded {
            self.commit_if_complete(lock(&self.state));
        }
        match fatal {
            Some(e) => self.fail(Terminal::Net(e)),
            None => self.wake(),
        }
    }
}

/// Per-fetch bookkeeping shared by its three callbacks.
struct FetchCtx {
    id: u64,
    /// First wanted byte.
    start: u64,
    /// One past the last wanted byte (`None`: to the end).
    end: Option<u64>,
    ranged: bool,
    /// Resource offset of the next body byte.
    offset: u64,
    reject: Option<NetError>,
    /// The answer was a 206 (its end is the range's, not the resource's).
    partial: bool,
    /// Bytes this fetch stored (skipped ones not counted): its progress.
    stored: u64,
    frontier: Arc<AtomicU64>,
    token: CancelToken,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared::new(
            Url::parse("http://127.0.0.1/x").unwrap(),
            HeaderMap::new(),
            StorageResource::memory(CancelToken::new()),
            Timeline::new(),
            16,
            None,
            None,
        ))
    }

    #[test]
    fn priority_is_high_while_playing() {
        let s = shared();
        let peer = FilePeer(s.clone());
        assert_eq!(peer.priority(), RequestPriority::Low);
        s.timeline.set_playing(true);
        assert_eq!(peer.priority(), RequestPriority::High);
        s.timeline.set_playing(false);
        assert_eq!(peer.priority(), RequestPriority::Low);
    }

    #[test]
    fn plans_one_fetch_at_a_time_and_reaims_through_the_waker() {
        let s = shared();
        let peer = FilePeer(s.clone());
        let woken = Arc::new(AtomicU64::new(0));
        let waker = futures::task::waker(Arc::new(Count(woken.clone())));
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Some(first)) = peer.poll_next(&mut cx) else {
            panic!("expected a first fetch");
        };
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].range, None);
        let token = first[0].cancel.clone().unwrap();
        assert!(peer.poll_next(&mut cx).is_pending());
        // Within the window of the running fetch: no re-aim.
        s.want(10);
        assert!(!token.is_cancelled());
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        // Far ahead: the old fetch is cancelled and the peer woken.
        s.want(1000);
        assert!(token.is_cancelled());
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        let Poll::Ready(Some(next)) = peer.poll_next(&mut cx) else {
            panic!("expected a re-aimed fetch");
        };
        assert_eq!(next[0].range, Some(RangeSpec::from_start(1000)));
        assert_eq!(next[0].priority, Some(RequestPriority::High));
    }

    /// A chunk bigger than the re-aim window is being stored: a reader woken
    /// by its first bytes asks for positions inside or just past it. The
    /// running fetch serves them; re-aiming (a new request) would be waste.
    #[test]
    fn a_reader_inside_the_chunk_being_stored_does_not_reaim() {
        let s = shared();
        let peer = FilePeer(s.clone());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Some(first)) = peer.poll_next(&mut cx) else {
            panic!("expected a first fetch");
        };
        let token = first[0].cancel.clone().unwrap();
        let window = s.reaim_window;
        let chunk = 4 * window + 100;
        // 100 bytes stored, the rest of a 4-window chunk on its way.
        s.storage.write_at(0, &[7; 100]).unwrap();
        let frontier = lock(&s.state).active.as_ref().unwrap().frontier.clone();
        frontier.store(chunk, Ordering::Release);
        for pos in [100, chunk / 2, chunk - 1, chunk, chunk + window] {
            s.want(pos);
            assert!(!token.is_cancelled(), "re-aimed at {pos}");
        }
        s.want(chunk + window + 1);
        assert!(token.is_cancelled(), "far past the window re-aims");
    }

    /// The reader went away (the resource was cancelled) just as the last
    /// byte landed: the commit fails with `Cancelled`, which must not fail
    /// the resource, so its last drop still records the cache complete.
    #[test]
    fn a_commit_racing_the_readers_drop_leaves_a_complete_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let storage = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        storage.write_at(0, &[9; 1000]).unwrap();
        storage.set_len_hint(Some(1000));
        let s = Arc::new(Shared::new(
            Url::parse("http://127.0.0.1/x").unwrap(),
            HeaderMap::new(),
            storage.clone(),
            Timeline::new(),
            16,
            Some(1000),
            None,
        ));
        storage.cancel_token().cancel();
        let peer = FilePeer(s.clone());
        let waker = futures::task::noop_waker();
        // Nothing left to fetch: the peer commits, and the commit meets the
        // cancel.
        assert!(matches!(
            peer.poll_next(&mut Context::from_waker(&waker)),
            Poll::Ready(None)
        ));
        assert!(!matches!(
            storage.status(),
            crate::storage::ResourceStatus::Failed(_)
        ));
        assert!(s.terminal().is_none());
        drop((peer, s, storage));
        let again = StorageResource::open_file(&path, CancelToken::new()).unwrap();
        assert_eq!(
            again.status(),
            crate::storage::ResourceStatus::Committed { final_len: 1000 }
        );
    }

    #[test]
    fn generic_mimes() {
        assert!(is_generic_mime("application/octet-stream; x=y"));
        assert!(is_generic_mime(""));
        assert!(!is_generic_mime("audio/mpeg"));
        assert!(media_from_magic(b"fLaC\0\0\0\x22").is_some());
        assert!(media_from_magic(b"<htm").is_none());
    }

    struct Count(Arc<AtomicU64>);
    impl futures::task::ArcWake for Count {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
