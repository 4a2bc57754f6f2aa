//! The download side of an `HttpFile`: the state shared with the source, the
//! fetch planner (a [`Peer`]) and the fetch callbacks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use http::HeaderMap;
use url::Url;

use crate::cancel::{CancelToken, lock};
use crate::media::{AudioCodec, ContainerFormat, MediaInfo};
use crate::net::{NetError, RetryPolicy, Validator};
use crate::offload::Offload;
use crate::storage::{StorageError, StorageResource};
use crate::timeline::Timeline;
use crate::trace::trace;

mod answer;
pub(crate) mod live;
pub(crate) mod plan;

/// Consecutive failed fetches (each already retried/resumed by the
/// downloader within its retry budget) without a byte of progress before
/// the download gives up, unless the downloader's retry budget, counted
/// from the last progress, is spent first. That give-up is transient: the resource fails
/// (the first read that needs a missing byte gets the typed error), and
/// the read after that plans the download again from its frontier.
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
    /// When the current run of failed fetches began: the last progress
    /// of its first fetch (`None`: no failure since the last progress).
    failing_since: Option<Instant>,
    error: Option<Terminal>,
    /// `error` is a give-up after transient failures: a read revives it.
    transient: bool,
    /// Counts transient give-ups, so a reader can tell which one it saw.
    failure_gen: u64,
    /// Committed; nothing more to fetch.
    done: bool,
    /// The validator of the version in storage (sent as `If-Range`).
    validator: Option<Validator>,
    /// Times the stored bytes were dropped for a new version of the resource.
    restarts: u64,
}

impl State {
    /// The stored version was dropped (storage reset): what was learned
    /// about it goes too, and the restart is counted.
    fn forget_version(&mut self) {
        self.len = None;
        self.limit = None;
        self.validator = None;
        self.ranges_supported = None;
        self.restarts += 1;
    }
}

/// What the source, the peer and the fetch callbacks share.
pub(crate) struct Shared {
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) storage: StorageResource,
    pub(crate) timeline: Timeline,
    pub(crate) reaim_window: u64,
    /// The downloader's retry policy: a run of failed fetches that has
    /// lasted its budget since its last progress is given up (the
    /// downloader spent it retrying already). `None`: only
    /// [`MAX_FETCH_FAILURES`] counts.
    retry: Option<RetryPolicy>,
    /// Where a cache file's commit (an `fdatasync`) runs: the downloader's
    /// blocking pool. `None` for a complete cache (nothing to commit).
    offload: Option<Offload>,
    /// Whether the reader has been handed a byte. Held across each read and
    /// across a version change, so a change never lands between the two
    /// halves of a read (lock order: `consumed`, then `state`).
    consumed: Mutex<bool>,
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
        offload: Option<Offload>,
    ) -> Self {
        let validator = storage.validator();
        Self {
            url,
            headers,
            storage,
            timeline,
            reaim_window,
            retry: None,
            offload,
            consumed: Mutex::new(false),
            state: Mutex::new(State {
                len,
                validator,
                ..State::default()
            }),
            live: Mutex::default(),
        }
    }

    /// Gives up a run of failed fetches once the downloader's `policy`
    /// has spent its budget on it (see `retry`).
    pub(crate) fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
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

    /// The generation of the current give-up, if it is transient.
    pub(crate) fn transient_failure(&self) -> Option<u64> {
        let st = lock(&self.state);
        (st.error.is_some() && st.transient).then_some(st.failure_gen)
    }

    /// Whether the first response's headers are in.
    pub(crate) fn headers_known(&self) -> bool {
        lock(&self.state).headers_known
    }

    /// Undoes a transient give-up: clears the error and the storage's
    /// failure (waking its waiters) and wakes the peer, which plans again
    /// from the first missing byte. Permanent failures stay.
    pub(crate) fn revive(&self) {
        let waker = {
            let mut st = lock(&self.state);
            if st.error.is_none() || !st.transient || self.storage.cancel_token().is_cancelled() {
                return;
            }
            st.error = None;
            st.transient = false;
            st.failures = 0;
            st.failing_since = None;
            st.waker.clone()
        };
        self.storage.recover();
        trace!(info, url = %self.url, "a read revives the download after a transient give-up");
        if let Some(w) = waker {
            w.wake();
        }
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

    pub(crate) fn validator(&self) -> Option<Validator> {
        lock(&self.state).validator.clone()
    }

    pub(crate) fn restarts(&self) -> u64 {
        lock(&self.state).restarts
    }

    /// Runs a read of stored bytes for the reader; marks the resource
    /// consumed when `read` returns `true` (it handed bytes over). A version
    /// change waits for the read, so a read never sees two versions.
    pub(crate) fn consume<T>(&self, read: impl FnOnce() -> (T, bool)) -> T {
        let mut consumed = lock(&self.consumed);
        let (out, gave) = read();
        *consumed |= gave;
        out
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
                // Without Range support a new fetch restarts at byte 0 and
                // the running one streams the whole body, storing every
                // missing byte: behind its frontier is stored, ahead comes
                // in order. Never cancel it (one pass, not one per seek).
                // A bounded storage may have evicted what lies behind it:
                // then only a new fetch brings it.
                if (st.ranges_supported == Some(false) || (within && soon))
                    && !self.evicted_behind(pos, f)
                {
                    return;
                }
                st.active.take()
            }
        };
        let waker = st.waker.clone();
        drop(st);
        if let Some(a) = stale {
            trace!(debug, url = %self.url, from = a.start, to = pos, "re-aim: the running fetch is cancelled");
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
        self.fail_as(error, false);
    }

    /// Gives up: permanently, or (`transient`) until a read revives it.
    fn fail_as(&self, error: Terminal, transient: bool) {
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
            st.transient = transient;
            if transient {
                st.failure_gen += 1;
            }
            st.active.take()
        };
        if let Some(a) = active {
            a.token.cancel();
        }
        trace!(warn, url = %self.url, transient, error = %msg, "download gave up");
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
            Ok(()) => trace!(debug, url = %this.url, len, "committed"),
            // The reader went away as the last byte landed: nothing to
            // report, and the storage's last drop records the complete
            // bytes (failing it here would leave the cache partial).
            Err(StorageError::Cancelled) => {}
            Err(e) => {
                lock(&this.state).done = false;
                this.fail(Terminal::Storage(e.to_string()));
            }
        };
        // A cache file's commit syncs it to disk.
        self.file_work(commit);
    }

    /// Runs `job`, which does a cache file's blocking I/O, on the
    /// downloader's blocking queue; at once for a memory storage (or
    /// without a downloader: a complete cache has nothing to write).
    fn file_work(&self, job: impl FnOnce() + Send + 'static) {
        match &self.offload {
            Some(off) if self.storage.path().is_some() => off.run(job),
            _ => job(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use http::header;

    use super::plan::FilePeer;
    use super::*;
    use crate::dl::{FetchCmd, Peer, RequestPriority};
    use crate::net::RangeSpec;

    /// A fresh state over memory storage, no length known, no retry rule.
    fn new_shared() -> Shared {
        Shared::new(
            Url::parse("http://127.0.0.1/x").unwrap(),
            HeaderMap::new(),
            StorageResource::memory(CancelToken::new()),
            Timeline::new(),
            16,
            None,
            None,
        )
    }

    fn shared() -> Arc<Shared> {
        Arc::new(new_shared())
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

    /// The peer wakes the waker of its latest poll (the downloader may poll
    /// with another one), not one it saw before.
    #[test]
    fn a_reaim_wakes_the_latest_waker() {
        let s = shared();
        let peer = FilePeer(s.clone());
        let (a, b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let wa = futures::task::waker(Arc::new(Count(a.clone())));
        let wb = futures::task::waker(Arc::new(Count(b.clone())));
        assert!(peer.poll_next(&mut Context::from_waker(&wa)).is_ready());
        assert!(peer.poll_next(&mut Context::from_waker(&wb)).is_pending());
        s.want(1000);
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (0, 1));
    }

    /// A permanent failure ends the peer (`Ready(None)`: nothing more to
    /// plan); a transient give-up waits (`Pending`) for a read to revive it.
    #[test]
    fn a_permanent_failure_ends_the_peer_a_transient_one_waits() {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let s = shared();
        let peer = FilePeer(s.clone());
        complete(&mut first_fetch(&s), Some(&invalid()));
        assert!(matches!(peer.poll_next(&mut cx), Poll::Ready(None)));
        let s = shared();
        let peer = FilePeer(s.clone());
        let mut cmd = first_fetch(&s);
        respond(&mut cmd, &answer(1000, None, "")).unwrap();
        complete(&mut cmd, Some(&body_cut()));
        for _ in 1..MAX_FETCH_FAILURES {
            complete(&mut first_fetch(&s), Some(&body_cut()));
        }
        assert!(s.transient_failure().is_some());
        assert!(peer.poll_next(&mut cx).is_pending());
    }

    /// Each fetch has its own id: the late completion of a re-aimed
    /// (cancelled) fetch leaves the one that replaced it running, so no
    /// third fetch is planned beside it.
    #[test]
    fn a_stale_completion_leaves_the_new_fetch_active() {
        let s = shared();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut old = first_fetch(&s);
        s.want(5000);
        assert!(old.cancel.as_ref().unwrap().is_cancelled(), "re-aimed");
        let new = first_fetch(&s);
        complete(&mut old, Some(&NetError::Cancelled));
        assert!(s.terminal().is_none());
        assert!(
            FilePeer(s.clone()).poll_next(&mut cx).is_pending(),
            "{new:?} runs"
        );
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

    /// Ends a fetch as the downloader would, with `err`.
    fn complete(cmd: &mut FetchCmd, err: Option<&NetError>) {
        (cmd.on_complete.take().unwrap())(0, None, err);
    }

    fn feed(cmd: &mut FetchCmd, data: &[u8]) -> io::Result<()> {
        (cmd.writer.as_mut().unwrap())(bytes::Bytes::copy_from_slice(data))
    }

    fn first_fetch(s: &Arc<Shared>) -> FetchCmd {
        let waker = futures::task::noop_waker();
        let Poll::Ready(Some(mut cmds)) =
            FilePeer(s.clone()).poll_next(&mut Context::from_waker(&waker))
        else {
            panic!("expected a fetch");
        };
        cmds.remove(0)
    }

    /// Runs the fetch's check on an answer with headers `h`: a `206` when
    /// they carry a `Content-Range`, else a `200`.
    fn respond(cmd: &mut FetchCmd, h: &HeaderMap) -> Result<(), NetError> {
        respond_at(cmd, h, None)
    }

    /// [`respond`] for a resume at `resumed_at` (`None`: the first answer).
    fn respond_at(
        cmd: &mut FetchCmd,
        h: &HeaderMap,
        resumed_at: Option<u64>,
    ) -> Result<(), NetError> {
        let url = cmd.url.clone();
        let cr = h
            .get(header::CONTENT_RANGE)
            .map(|v| crate::net::ContentRange::parse(v.to_str().unwrap()).unwrap());
        let status = if cr.is_some() {
            http::StatusCode::PARTIAL_CONTENT
        } else {
            http::StatusCode::OK
        };
        let mut info = crate::dl::ResponseInfo::new(&url, status, h);
        info.requested = cmd.range;
        info.content_range = cr;
        info.resumed_at = resumed_at;
        (cmd.check.as_mut().unwrap())(&info)
    }

    /// A gap fill asks for an end: a `206` that runs past it is rejected
    /// with a typed error (the downloader checked its start); one that
    /// ends there is taken.
    #[test]
    fn a_gap_fill_must_end_where_asked() {
        let s = shared();
        s.storage.write_at(600, &[1; 400]).unwrap();
        let mut cmd = first_fetch(&s);
        assert_eq!(cmd.range, Some(RangeSpec::new(0, Some(599)).unwrap()));
        let mut h = answer(1000, Some(0), "");
        let err = respond(&mut cmd, &h).unwrap_err();
        assert!(
            matches!(&err, NetError::InvalidResponse { reason, .. }
                if reason == "asked for bytes 0-599, got Content-Range 0-999"),
            "{err:?}"
        );
        h.insert(header::CONTENT_RANGE, "bytes 0-599/1000".parse().unwrap());
        respond(&mut cmd, &h).unwrap();
        assert_eq!(s.len(), Some(1000));
        assert_eq!(s.ranges_supported(), Some(true));
    }

    /// A `200` to any ranged request, one from byte 0 with an end too, is a
    /// server that ignores `Range`.
    #[test]
    fn a_200_to_a_gap_fill_from_zero_is_a_rangeless_server() {
        let s = shared();
        s.storage.write_at(600, &[1; 400]).unwrap();
        let mut cmd = first_fetch(&s);
        assert_eq!(cmd.range, Some(RangeSpec::new(0, Some(599)).unwrap()));
        respond(&mut cmd, &answer(1000, None, "")).unwrap();
        assert_eq!(s.ranges_supported(), Some(false));
    }

    /// A resume continues the body the first answer started: only the HTML
    /// rule applies to it (the downloader checked `If-Range` and the
    /// `Content-Range`); it changes no version, length or offset.
    #[test]
    fn a_resume_answer_is_only_checked_for_html() {
        let s = shared();
        let mut cmd = first_fetch(&s);
        respond(&mut cmd, &answer(1000, None, "\"v1\"")).unwrap();
        feed(&mut cmd, &[1; 100]).unwrap();
        respond_at(&mut cmd, &answer(2000, Some(100), "\"v2\""), Some(100)).unwrap();
        assert_eq!(s.validator(), Some(Validator::ETag("\"v1\"".into())));
        assert_eq!((s.len(), s.restarts()), (Some(1000), 0));
        let mut html = answer(1000, Some(100), "\"v1\"");
        html.insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
        assert!(matches!(
            respond_at(&mut cmd, &html, Some(100)),
            Err(NetError::InvalidContentType { .. })
        ));
    }

    /// The headers of a `200` (whole body) or a `206` from `start`.
    fn answer(len: u64, start: Option<u64>, etag: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, len.into());
        if !etag.is_empty() {
            h.insert(header::ETAG, etag.parse().unwrap());
        }
        if let Some(s) = start {
            let cr = format!("bytes {s}-{}/{len}", len - 1);
            h.insert(header::CONTENT_RANGE, cr.parse().unwrap());
        }
        h
    }

    #[test]
    fn ranged_fetches_carry_if_range_with_the_first_strong_validator() {
        let s = shared();
        let mut first = first_fetch(&s);
        assert!(first.headers.get(header::IF_RANGE).is_none());
        // A weak tag is not kept; a strong one is.
        respond(&mut first, &answer(1000, None, "W/\"w\"")).unwrap();
        assert_eq!(s.validator(), None);
        s.want(500);
        let mut next = first_fetch(&s);
        assert!(
            next.headers.get(header::IF_RANGE).is_none(),
            "no validator yet"
        );
        respond(&mut next, &answer(1000, Some(500), "\"v1\"")).unwrap();
        assert_eq!(s.validator(), Some(Validator::ETag("\"v1\"".into())));
        assert_eq!(s.storage.validator(), s.validator());
        s.want(900);
        let cmd = first_fetch(&s);
        assert_eq!(cmd.headers.get(header::IF_RANGE).unwrap(), "\"v1\"");
        assert_eq!(cmd.range, Some(RangeSpec::from_start(900)));
    }

    /// A 200 of another version before the reader got a byte: the stored
    /// bytes go, the download goes on with the new version.
    #[test]
    fn a_changed_version_before_any_read_restarts() {
        let s = shared();
        let mut first = first_fetch(&s);
        respond(&mut first, &answer(1000, None, "\"v1\"")).unwrap();
        feed(&mut first, &[1; 100]).unwrap();
        s.want(500);
        let mut next = first_fetch(&s);
        // The answer is rejected (no byte of it lands next to v1); its
        // completion drops v1 and the next fetch gets v2.
        let err = respond(&mut next, &answer(1000, None, "\"v2\"")).unwrap_err();
        assert!(matches!(err, NetError::ResourceChanged { .. }), "{err:?}");
        assert!(
            s.storage.contains_range(0..100),
            "v1 kept until the fetch ends"
        );
        complete(&mut next, Some(&err));
        assert_eq!(s.restarts(), 1);
        assert!(!s.storage.contains_range(0..1), "old bytes dropped");
        assert_eq!(s.validator(), None, "v1 forgotten");
        assert_eq!(
            s.ranges_supported(),
            None,
            "a failed If-Range is not a range-less server"
        );
        assert!(s.terminal().is_none());
        // The next fetch asks for the reader's bytes of whatever version
        // the server has now.
        let mut next = first_fetch(&s);
        assert!(next.headers.get(header::IF_RANGE).is_none());
        assert_eq!(next.range, Some(RangeSpec::from_start(500)));
        respond(&mut next, &answer(1000, Some(500), "\"v2\"")).unwrap();
        assert_eq!(s.validator(), Some(Validator::ETag("\"v2\"".into())));
        feed(&mut next, &[2; 500]).unwrap();
        let mut buf = [0; 500];
        assert_eq!(s.storage.read_at(500, &mut buf).unwrap(), 500);
        assert_eq!(buf, [2; 500]);
        assert!(s.terminal().is_none());
    }

    /// The same after the reader got bytes: a typed error, storage emptied.
    #[test]
    fn a_changed_version_after_a_read_fails_typed() {
        let s = shared();
        let mut first = first_fetch(&s);
        respond(&mut first, &answer(1000, None, "\"v1\"")).unwrap();
        feed(&mut first, &[1; 100]).unwrap();
        let mut buf = [0; 10];
        let n = s.consume(|| {
            let n = s.storage.read_at(0, &mut buf).unwrap();
            (n, n > 0)
        });
        assert_eq!(n, 10);
        s.want(500);
        let mut next = first_fetch(&s);
        let rejected = respond(&mut next, &answer(1000, None, "\"v2\""));
        assert!(
            matches!(rejected, Err(NetError::ResourceChanged { .. })),
            "{rejected:?}"
        );
        complete(&mut next, rejected.as_ref().err());
        match s.terminal() {
            Some(Terminal::Net(NetError::ResourceChanged { old, new, .. })) => {
                assert_eq!(*old, Validator::ETag("\"v1\"".into()));
                assert_eq!(new.map(|v| *v), Some(Validator::ETag("\"v2\"".into())));
            }
            other => panic!("expected ResourceChanged, got {other:?}"),
        }
        assert!(s.storage.available().is_empty(), "no stale range left");
    }

    /// A server that ignores Range (same validator): the bytes before the
    /// wanted offset are stored (only the missing ones), and from then on no
    /// seek cancels the one running fetch.
    #[test]
    fn accept_ranges_none_is_learned_from_the_first_answer() {
        let s = shared();
        let mut cmd = first_fetch(&s);
        let token = cmd.cancel.clone().unwrap();
        let mut h = answer(1000, None, "");
        h.insert(header::ACCEPT_RANGES, "none".parse().unwrap());
        respond(&mut cmd, &h).unwrap();
        assert_eq!(s.ranges_supported(), Some(false));
        s.want(900);
        assert!(!token.is_cancelled(), "a far seek waits for the one pass");
    }

    #[test]
    fn a_rangeless_pass_stores_missing_bytes_and_is_never_cancelled() {
        let s = shared();
        s.storage.write_at(100, &[9; 50]).unwrap();
        s.want(500);
        let mut cmd = first_fetch(&s);
        let token = cmd.cancel.clone().unwrap();
        respond(&mut cmd, &answer(1000, None, "\"v1\"")).unwrap();
        assert_eq!(s.ranges_supported(), Some(false));
        feed(&mut cmd, &[1; 300]).unwrap();
        assert!(s.storage.contains_range(0..300));
        let mut buf = [0; 50];
        s.storage.read_at(100, &mut buf).unwrap();
        assert_eq!(buf, [9; 50], "present bytes not rewritten");
        for pos in [950, 10, 299, 600, 0] {
            s.want(pos);
            assert!(!token.is_cancelled(), "cancelled by a seek to {pos}");
        }
        // No second pass is planned while this one runs.
        let waker = futures::task::noop_waker();
        assert!(
            FilePeer(s.clone())
                .poll_next(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }

    /// Stress: a reader reading (through `consume`) races a version change
    /// at seeded random moments. The reader never sees bytes of two
    /// versions: either it read v1 and the change failed the resource, or
    /// it read nothing before and then only v2.
    #[test]
    fn a_version_change_racing_reads_never_mixes_versions() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let s = shared();
            let mut first = first_fetch(&s);
            respond(&mut first, &answer(1000, None, "\"v1\"")).unwrap();
            let delay = next() % 2000;
            let reader = {
                let s = s.clone();
                let spins = next() % 2000;
                std::thread::spawn(move || {
                    for _ in 0..spins {
                        std::hint::spin_loop();
                    }
                    let mut seen = Vec::new();
                    for _ in 0..50 {
                        let mut buf = [0u8; 16];
                        let n = s.consume(|| match s.storage.read_at(0, &mut buf) {
                            Ok(n) => (n, n > 0),
                            Err(_) => (0, false),
                        });
                        seen.extend_from_slice(&buf[..n]);
                        std::thread::yield_now();
                    }
                    seen
                })
            };
            feed(&mut first, &[1; 100]).unwrap();
            for _ in 0..delay {
                std::hint::spin_loop();
            }
            s.want(500);
            let mut second = first_fetch(&s);
            // The answer is rejected (another version): the downloader
            // ends the fetch, whose completion restarts or fails.
            let rejected = respond(&mut second, &answer(1000, None, "\"v2\"")).unwrap_err();
            complete(&mut second, Some(&rejected));
            let wrote_v2 = s.terminal().is_none() && {
                let mut third = first_fetch(&s);
                respond(&mut third, &answer(1000, None, "\"v2\"")).is_ok()
                    && feed(&mut third, &[2; 100]).is_ok()
            };
            let seen = reader.join().unwrap();
            let v1 = seen.contains(&1);
            let v2 = seen.contains(&2);
            assert!(!(v1 && v2), "the reader saw both versions");
            if v1 {
                assert!(!wrote_v2, "v2 stored after v1 was read");
                assert!(matches!(
                    s.terminal(),
                    Some(Terminal::Net(NetError::ResourceChanged { .. }))
                ));
            } else {
                assert!(wrote_v2 && s.terminal().is_none() && s.restarts() == 1);
            }
        }
    }

    fn transport(kind: crate::net::TransportKind) -> NetError {
        NetError::Transport {
            kind,
            url: Url::parse("http://127.0.0.1/x").unwrap(),
            message: "down".into(),
        }
    }

    fn body_cut() -> NetError {
        transport(crate::net::TransportKind::Body)
    }

    fn invalid() -> NetError {
        NetError::InvalidResponse {
            url: Url::parse("http://127.0.0.1/x").unwrap(),
            reason: "lies".into(),
        }
    }

    /// How a failed fetch is judged: before the headers every error is
    /// `Stream::new`'s; after them a retryable one (or a malformed answer
    /// after progress) plans the fetch again, [`MAX_FETCH_FAILURES`] of them
    /// in a row without progress give up (transiently), and any other
    /// error is final.
    #[test]
    fn failed_fetches_are_retried_counted_or_final() {
        use crate::net::TransportKind::{Body, Connect};
        // Before the headers: final, even if retryable.
        let s = shared();
        complete(&mut first_fetch(&s), Some(&transport(Connect)));
        assert!(
            matches!(
                s.terminal(),
                Some(Terminal::Net(NetError::Transport { .. }))
            ),
            "{:?}",
            s.terminal().is_some()
        );
        assert_eq!(s.transient_failure(), None, "not a give-up");

        // After them: retried, MAX_FETCH_FAILURES in a row give up.
        let s = shared();
        let mut cmd = first_fetch(&s);
        respond(&mut cmd, &answer(1000, None, "")).unwrap();
        feed(&mut cmd, &[1; 100]).unwrap();
        complete(&mut cmd, Some(&transport(Body)));
        for n in 1..MAX_FETCH_FAILURES {
            assert!(s.terminal().is_none(), "gave up after {n} failures");
            complete(&mut first_fetch(&s), Some(&transport(Connect)));
        }
        assert!(s.transient_failure().is_some(), "a transient give-up");

        // A malformed answer after progress is retried (a server that
        // ignores Range dropped the connection); without progress it is
        // final.
        let s = shared();
        let mut cmd = first_fetch(&s);
        respond(&mut cmd, &answer(1000, None, "")).unwrap();
        feed(&mut cmd, &[1; 100]).unwrap();
        complete(&mut cmd, Some(&invalid()));
        assert!(s.terminal().is_none(), "retried after progress");
        complete(&mut first_fetch(&s), Some(&invalid()));
        assert!(
            matches!(
                s.terminal(),
                Some(Terminal::Net(NetError::InvalidResponse { .. }))
            ),
            "final without progress"
        );
        assert_eq!(s.transient_failure(), None);
    }

    /// The downloader spent its retry budget on the failing fetch (its
    /// last progress is older than the budget): no more fetches, a
    /// transient give-up at once. A young run is retried.
    #[test]
    fn a_run_of_failures_older_than_the_retry_budget_gives_up_at_once() {
        let policy = |budget_ms| crate::net::RetryPolicy {
            budget: Duration::from_millis(budget_ms),
            max_delay: Duration::from_millis(10),
            ..crate::net::RetryPolicy::default()
        };
        for (budget_ms, gives_up) in [(20, true), (60_000, false)] {
            let s = Arc::new(new_shared().with_retry(policy(budget_ms)));
            let mut cmd = first_fetch(&s);
            respond(&mut cmd, &answer(1000, None, "")).unwrap();
            feed(&mut cmd, &[1; 100]).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            complete(&mut cmd, Some(&transport(crate::net::TransportKind::Body)));
            assert_eq!(
                s.transient_failure().is_some(),
                gives_up,
                "budget {budget_ms} ms"
            );
        }
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
