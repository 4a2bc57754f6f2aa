//! [`Stream`]: a [`Source`] read through the crate's read policy, as
//! `std::io::Read + Seek` and `futures::io::AsyncRead + AsyncSeek`.

use std::fmt;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use crate::error::SourceError;
use crate::source::{PendingReason, ReadOutcome, Source, SourcePhase, StorageSource};
use crate::timeline::Timeline;

mod async_read;
mod outcome;
mod policy;
mod sync_read;

pub use outcome::{StreamPending, StreamReadError, StreamReadOutcome, StreamSeekPastEof};
pub use policy::{MAX_WAIT_SPINS, SEEK_WAIT_TIMEOUT, WAIT_RANGE_TIMEOUT};

/// A kind of stream: how to build its [`Source`] from a config.
///
/// `create` is an async constructor; it may start background work through
/// the config's own executor handle (the trait names no runtime).
///
/// ```
/// use std::io::Read;
/// use kithara_stream::{SourceError, StorageSource, Stream, StreamType};
/// use kithara_stream::cancel::CancelToken;
/// use kithara_stream::storage::StorageResource;
///
/// /// A stream type whose config is a name and whose source says hello to it.
/// enum Greeting {}
/// impl StreamType for Greeting {
///     type Config = String;
///     type Source = StorageSource;
///     fn create(name: String) -> impl Future<Output = Result<StorageSource, SourceError>> + Send {
///         let bytes = format!("hello, {name}");
///         async move { Ok(StorageSource::new(StorageResource::from_bytes(bytes.as_bytes(), CancelToken::new()))) }
///     }
/// }
///
/// let mut stream = futures::executor::block_on(Stream::<Greeting>::new("world".into()))?;
/// let mut s = String::new();
/// stream.read_to_string(&mut s)?;
/// assert_eq!(s, "hello, world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StreamType: Send + 'static {
    /// What `create` needs.
    type Config: Send;
    /// The source it builds.
    type Source: Source;

    /// Builds the source.
    fn create(
        config: Self::Config,
    ) -> impl Future<Output = Result<Self::Source, SourceError>> + Send;
}

/// A [`StorageSource`] is its own stream type: `Stream::<StorageSource>`
/// reads any storage resource (the config is the source itself).
impl StreamType for StorageSource {
    type Config = StorageSource;
    type Source = StorageSource;

    fn create(
        config: StorageSource,
    ) -> impl Future<Output = Result<StorageSource, SourceError>> + Send {
        std::future::ready(Ok(config))
    }
}

/// A readable, seekable byte stream over a [`Source`] that may still be
/// downloading.
///
/// - [`try_read`](Self::try_read): the real-time path, bounded to
///   [`MAX_WAIT_SPINS`] × [`WAIT_RANGE_TIMEOUT`].
/// - `Read`: blocking; re-enters the policy until bytes, the true end
///   (`Ok(0)` only there), a terminal error, cancellation, or the optional
///   [read timeout](Self::set_read_timeout) (`TimedOut`). A pending seek is
///   `ErrorKind::Interrupted` (std's `read_exact` retries it), reported
///   after waiting up to [`SEEK_WAIT_TIMEOUT`] for the flush to end
///   ([`Source::wait_flush_end`]), so that retry is not a spin.
/// - `Seek`: to `len` is allowed, past it `InvalidInput` carrying
///   [`StreamSeekPastEof`]; `SeekFrom::End` with an unknown length waits for
///   what the source can know ([`Source::wait_len`]: an HTTP source has its
///   headers already), then `Unsupported`.
/// - `AsyncRead + AsyncSeek` (when the source is `Unpin`): the same rules on
///   the source's async wait hook; `Poll::Pending` (waker registered) while
///   data is missing or a seek flushes, never `WouldBlock`/`Interrupted`;
///   never blocks an executor thread.
///
/// Once the length is known every wait is for `pos..min(pos + len, end)`:
/// a read that crosses the end returns the tail as soon as it is present,
/// whatever gaps lie before it.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom};
/// use kithara_stream::{Stream, StorageSource};
/// use kithara_stream::cancel::CancelToken;
/// use kithara_stream::storage::StorageResource;
///
/// let res = StorageResource::memory(CancelToken::new());
/// let writer = res.clone();
/// std::thread::spawn(move || {
///     writer.write_at(0, b"hello, world").unwrap();
///     writer.commit(None).unwrap();
/// });
/// let mut stream = Stream::<StorageSource>::from_source(StorageSource::new(res));
/// let mut s = String::new();
/// stream.read_to_string(&mut s).unwrap();
/// assert_eq!(s, "hello, world");
/// assert_eq!(stream.seek(SeekFrom::End(-5)).unwrap(), 7);
/// ```
pub struct Stream<T: StreamType> {
    source: T::Source,
    read_timeout: Option<Duration>,
    _type: PhantomData<fn() -> T>,
}

impl<T: StreamType> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("position", &self.source.position())
            .field("len", &self.source.len())
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, PendingReason::SeekPending)
}

/// What one read step made of a ready wait (see [`Stream::read_step`]).
enum Step {
    /// Bytes were read; the cursor moved past them.
    Read(NonZeroUsize),
    /// The source proved the end.
    Eof,
    /// A seek moved the cursor before or during the read: nothing counts.
    Moved,
    /// The source's own `Pending` (`Retry` means "read again now").
    Pending(PendingReason),
}

impl<T: StreamType> Stream<T> {
    /// Builds the source with `T::create(config)`. Does not yield to any
    /// runtime; errors are the source's.
    pub async fn new(config: T::Config) -> Result<Self, SourceError> {
        Ok(Self::from_source(T::create(config).await?))
    }

    /// Wraps an already built source; the read timeout starts as the
    /// source's [`Source::read_timeout`].
    pub fn from_source(source: T::Source) -> Self {
        Self {
            read_timeout: source.read_timeout(),
            source,
            _type: PhantomData,
        }
    }

    /// The source.
    pub fn source(&self) -> &T::Source {
        &self.source
    }

    /// The source, mutably.
    pub fn source_mut(&mut self) -> &mut T::Source {
        &mut self.source
    }

    /// Unwraps the source.
    pub fn into_source(self) -> T::Source {
        self.source
    }

    /// Sets how long one blocking `Read::read` may wait without progress
    /// before failing with `ErrorKind::TimedOut` (payload [`StreamPending`]).
    /// `None` (the default): wait until data, the end, an error or cancel.
    /// Does not apply to `AsyncRead` (use your executor's timeout there).
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// use kithara_stream::{StorageSource, Stream, StreamPending};
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::StorageResource;
    ///
    /// let res = StorageResource::memory(CancelToken::new()); // nothing ever arrives
    /// let mut stream = Stream::<StorageSource>::from_source(StorageSource::new(res));
    /// stream.set_read_timeout(Some(Duration::from_millis(50)));
    /// let err = stream.read(&mut [0u8; 16]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// let why = err.get_ref().and_then(|e| e.downcast_ref::<StreamPending>()).unwrap();
    /// assert_eq!((why.pos, why.want), (0, 16));
    /// ```
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The read timeout; see [`set_read_timeout`](Self::set_read_timeout).
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The shared timeline.
    pub fn timeline(&self) -> Timeline {
        self.source.timeline()
    }

    /// The byte cursor.
    pub fn position(&self) -> u64 {
        self.source.position()
    }

    /// Moves the cursor without any check or wait.
    pub fn set_position(&self, pos: u64) {
        self.source.set_position(pos);
    }

    /// The length, if known.
    pub fn len(&self) -> Option<u64> {
        self.source.len()
    }

    /// `Some(len == 0)`, or `None` while the length is unknown. Unlike
    /// [`Source::is_empty`], which folds "unknown" into `true`, this keeps
    /// the two apart: a live stream is `None`, not empty.
    pub fn is_empty(&self) -> Option<bool> {
        self.source.len().map(|l| l == 0)
    }

    /// The source's phase at the cursor.
    pub fn phase(&self) -> SourcePhase {
        self.source.phase()
    }

    /// The source's phase for `range`.
    pub fn phase_at(&self, range: std::ops::Range<u64>) -> SourcePhase {
        self.source.phase_at(range)
    }

    /// See [`Source::set_seek_epoch`].
    pub fn set_seek_epoch(&mut self, epoch: u64) {
        self.source.set_seek_epoch(epoch);
    }

    /// See [`Source::notify_waiting`].
    pub fn notify_waiting(&self) {
        self.source.notify_waiting();
    }

    /// See [`Source::make_notify_fn`].
    pub fn make_notify_fn(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        self.source.make_notify_fn()
    }

    /// The read step both paths share, once a wait for `pos` said `Ready`:
    /// the epoch checks around `read_at` (bytes read under a stale epoch
    /// are discarded), then the cursor and the segment position move.
    fn read_step(
        &mut self,
        tl: &Timeline,
        read_epoch: u64,
        pos: u64,
        buf: &mut [u8],
    ) -> Result<Step, StreamReadError> {
        if tl.seek_epoch() != read_epoch {
            return Ok(Step::Moved);
        }
        Ok(match self.source.read_at(pos, buf)? {
            ReadOutcome::Bytes(n) => {
                if tl.seek_epoch() != read_epoch {
                    return Ok(Step::Moved);
                }
                tl.set_segment_position(pos);
                self.source.advance(n.get() as u64);
                Step::Read(n)
            }
            ReadOutcome::Eof => Step::Eof,
            ReadOutcome::Pending(r) => Step::Pending(r),
        })
    }

    /// What a read of `want` bytes at `pos` waits for: `pos..pos + want`,
    /// cut at the end once the length is known, so a read that crosses the
    /// end is ready as soon as the tail is present. At or past the end it
    /// stays uncut (the source then proves `Eof`).
    fn wanted(&self, pos: u64, want: usize) -> std::ops::Range<u64> {
        let end = pos.saturating_add(want as u64);
        match self.source.len() {
            Some(len) if pos < len => pos..end.min(len),
            _ => pos..end,
        }
    }

    fn pending(&self, reason: PendingReason, want: usize) -> StreamPending {
        let pos = self.source.position();
        let tl = self.source.timeline();
        StreamPending {
            reason,
            pos,
            want,
            len: self.source.len(),
            phase: self.source.phase_at(pos..pos.saturating_add(want as u64)),
            epoch: tl.seek_epoch(),
            flushing: tl.is_flushing(),
        }
    }

    fn unknown_len_error(&self, flushing_interrupts: bool) -> io::Error {
        if flushing_interrupts && self.source.timeline().is_flushing() {
            interrupted()
        } else {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "seek from end requires known length",
            )
        }
    }

    /// Steps 1–2 of a seek: the absolute target, given the length.
    fn seek_target(current: u64, pos: SeekFrom, len: Option<u64>) -> io::Result<u64> {
        let target: i128 = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::Current(d) => i128::from(current) + i128::from(d),
            SeekFrom::End(d) => match len {
                Some(l) => i128::from(l) + i128::from(d),
                None => return Err(io::Error::other("length unknown")),
            },
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "negative seek position",
            ));
        }
        Ok(u64::try_from(target).unwrap_or(u64::MAX))
    }

    fn past_eof(&self, current_pos: u64, new_pos: u64) -> Option<io::Error> {
        match self.source.len() {
            Some(len) if new_pos > len => Some(io::Error::new(
                io::ErrorKind::InvalidInput,
                StreamSeekPastEof {
                    current_pos,
                    len,
                    new_pos,
                },
            )),
            _ => None,
        }
    }
}

// What the tests below took from this file's imports before the read paths
// moved into their own files (they `use super::*`).
#[cfg(test)]
use {
    crate::source::NotReadyCause,
    crate::storage::WaitOutcome,
    futures::io::AsyncRead,
    std::io::{Read, Seek},
    std::pin::Pin,
    std::task::Context,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{LIMIT, within};
    use std::collections::VecDeque;
    use std::ops::Range;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    type WaitHook = Box<dyn FnMut(&Timeline) + Send + Sync>;

    /// A scripted source: `wait_range` pops `waits` (then repeats `default`).
    struct Mock {
        waits: VecDeque<Result<WaitOutcome, SourceError>>,
        default: fn() -> Result<WaitOutcome, SourceError>,
        data: Vec<u8>,
        len: Option<u64>,
        pos: AtomicU64,
        timeline: Timeline,
        wait_calls: AtomicUsize,
        read_calls: AtomicUsize,
        on_wait: Option<WaitHook>,
        reads: VecDeque<ReadOutcome>,
        /// `Interrupted` while the timeline flushes, as a real source does.
        interrupt_while_flushing: bool,
    }

    impl Mock {
        fn new(data: &[u8]) -> Self {
            Self {
                waits: VecDeque::new(),
                default: || Ok(WaitOutcome::Ready),
                data: data.to_vec(),
                len: Some(data.len() as u64),
                pos: AtomicU64::new(0),
                timeline: Timeline::new(),
                wait_calls: AtomicUsize::new(0),
                read_calls: AtomicUsize::new(0),
                on_wait: None,
                reads: VecDeque::new(),
                interrupt_while_flushing: false,
            }
        }
    }

    impl Source for Mock {
        fn wait_range(
            &mut self,
            _: Range<u64>,
            _: Option<Duration>,
        ) -> crate::StreamResult<WaitOutcome> {
            self.wait_calls.fetch_add(1, Ordering::SeqCst);
            if let Some(h) = self.on_wait.as_mut() {
                h(&self.timeline);
            }
            if self.interrupt_while_flushing && self.timeline.is_flushing() {
                return Ok(WaitOutcome::Interrupted);
            }
            Ok(self.waits.pop_front().unwrap_or_else(self.default)?)
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> crate::StreamResult<ReadOutcome> {
            self.read_calls.fetch_add(1, Ordering::SeqCst);
            if let Some(r) = self.reads.pop_front() {
                return Ok(r);
            }
            let off = offset as usize;
            if off >= self.data.len() {
                return Ok(ReadOutcome::Eof);
            }
            let n = buf.len().min(self.data.len() - off);
            buf[..n].copy_from_slice(&self.data[off..off + n]);
            Ok(ReadOutcome::Bytes(NonZeroUsize::new(n).unwrap()))
        }
        fn position(&self) -> u64 {
            self.pos.load(Ordering::SeqCst)
        }
        fn set_position(&self, pos: u64) {
            self.pos.store(pos, Ordering::SeqCst);
        }
        fn advance(&self, n: u64) {
            self.pos.fetch_add(n, Ordering::SeqCst);
        }
        fn len(&self) -> Option<u64> {
            self.len
        }
        fn phase_at(&self, _: Range<u64>) -> SourcePhase {
            SourcePhase::Waiting
        }
        fn timeline(&self) -> Timeline {
            self.timeline.clone()
        }
    }

    struct M;
    impl StreamType for M {
        type Config = Mock;
        type Source = Mock;
        fn create(c: Mock) -> impl Future<Output = Result<Mock, SourceError>> + Send {
            std::future::ready(Ok(c))
        }
    }

    fn stream(m: Mock) -> Stream<M> {
        futures::FutureExt::now_or_never(Stream::<M>::new(m))
            .expect("ready at once")
            .unwrap()
    }

    #[test]
    fn read_retries_interrupted_when_not_flushing() {
        let mut m = Mock::new(b"ABCD");
        m.waits = [Ok(WaitOutcome::Interrupted), Ok(WaitOutcome::Ready)].into();
        let mut s = stream(m);
        let mut buf = [0u8; 4];
        assert_eq!(s.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"ABCD");
        assert_eq!(s.timeline().segment_position(), 0);
        assert_eq!(s.position(), 4);
    }

    #[test]
    fn try_read_returns_seek_pending_when_flushing() {
        let mut m = Mock::new(b"ABCD");
        m.default = || Ok(WaitOutcome::Interrupted);
        let _ = m.timeline.initiate_seek(Duration::from_secs(1));
        let mut s = stream(m);
        let mut buf = [0u8; 4];
        assert_eq!(
            s.try_read(&mut buf).unwrap(),
            StreamReadOutcome::Pending(PendingReason::SeekPending)
        );
        let e = s.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Interrupted);
        assert_eq!(
            e.get_ref().unwrap().downcast_ref::<PendingReason>(),
            Some(&PendingReason::SeekPending)
        );
    }

    #[test]
    fn try_read_returns_seek_pending_when_epoch_changes_after_wait() {
        let mut m = Mock::new(b"ABCD");
        m.on_wait = Some(Box::new(|tl| {
            let _ = tl.initiate_seek(Duration::from_secs(2));
            tl.complete_seek(tl.seek_epoch());
        }));
        let mut s = stream(m);
        let mut buf = [0u8; 4];
        assert_eq!(
            s.try_read(&mut buf).unwrap(),
            StreamReadOutcome::Pending(PendingReason::SeekPending)
        );
        assert_eq!(s.source().read_calls.load(Ordering::SeqCst), 0);
        assert_eq!(s.position(), 0);
    }

    #[test]
    fn try_read_budget_is_max_wait_spins() {
        let mut m = Mock::new(b"ABCD");
        m.default = || Err(SourceError::WaitBudgetExceeded);
        let mut s = stream(m);
        // Bounded: a budget that never runs out would spin forever.
        let (out, s) = within(LIMIT, "try_read", move || (s.try_read(&mut [0u8; 4]), s));
        assert_eq!(
            out.unwrap(),
            StreamReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::WaitBudgetExhausted))
        );
        assert_eq!(
            s.source().wait_calls.load(Ordering::SeqCst),
            MAX_WAIT_SPINS as usize
        );
    }

    #[test]
    fn try_read_interrupted_without_flush_exhausts_shared_budget() {
        let mut m = Mock::new(b"ABCD");
        m.default = || Ok(WaitOutcome::Interrupted);
        m.waits = [Err(SourceError::WaitBudgetExceeded)].into();
        let mut s = stream(m);
        let (out, s) = within(LIMIT, "try_read", move || (s.try_read(&mut [0u8; 2]), s));
        assert_eq!(
            out.unwrap(),
            StreamReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::WaitInterrupted))
        );
        assert_eq!(
            s.source().wait_calls.load(Ordering::SeqCst),
            MAX_WAIT_SPINS as usize
        );
    }

    #[test]
    fn try_read_retry_is_not_counted_and_other_pending_is_verbatim() {
        let mut m = Mock::new(b"ABCD");
        m.reads = std::iter::repeat_n(ReadOutcome::Pending(PendingReason::Retry), 80)
            .chain([ReadOutcome::Pending(PendingReason::NotReady(
                NotReadyCause::SourcePending,
            ))])
            .collect();
        let mut s = stream(m);
        assert_eq!(
            s.try_read(&mut [0u8; 2]).unwrap(),
            StreamReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::SourcePending))
        );
        assert_eq!(s.source().read_calls.load(Ordering::SeqCst), 81);
        // Then bytes, and the outcome carries the position after the read.
        assert_eq!(
            s.try_read(&mut [0u8; 3]).unwrap(),
            StreamReadOutcome::Bytes {
                count: NonZeroUsize::new(3).unwrap(),
                byte_position: 3
            }
        );
    }

    #[test]
    fn try_read_empty_buf_and_eof_and_errors() {
        let mut m = Mock::new(b"AB");
        m.waits = [Ok(WaitOutcome::Eof), Err(SourceError::Cancelled)].into();
        let mut s = stream(m);
        assert_eq!(
            s.try_read(&mut []).unwrap(),
            StreamReadOutcome::Eof { byte_position: 0 }
        );
        assert_eq!(s.source().wait_calls.load(Ordering::SeqCst), 0);
        assert_eq!(
            s.try_read(&mut [0u8; 1]).unwrap(),
            StreamReadOutcome::Eof { byte_position: 0 }
        );
        let e = s.try_read(&mut [0u8; 1]).unwrap_err();
        assert!(matches!(e.source_error(), SourceError::Cancelled));
        assert_eq!(e.to_string(), "source error: cancelled");
        let io: io::Error = e.into();
        let inner = io
            .get_ref()
            .unwrap()
            .downcast_ref::<StreamReadError>()
            .unwrap();
        assert!(matches!(inner.source_error(), SourceError::Cancelled));
    }

    #[test]
    fn seek_updates_position() {
        let mut s = stream(Mock::new(b"0123456789"));
        assert_eq!(s.seek(SeekFrom::Start(3)).unwrap(), 3);
        assert_eq!(s.position(), 3);
        assert_eq!(s.seek(SeekFrom::Current(2)).unwrap(), 5);
        assert_eq!(s.seek(SeekFrom::End(-1)).unwrap(), 9);
        assert_eq!(s.seek(SeekFrom::End(0)).unwrap(), 10);
        assert_eq!(s.stream_position().unwrap(), 10);
    }

    #[test]
    fn seek_rules() {
        let mut s = stream(Mock::new(b"0123456789"));
        s.seek(SeekFrom::Start(4)).unwrap();
        let e = s.seek(SeekFrom::Current(-5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = s.seek(SeekFrom::Start(11)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            e.get_ref().unwrap().downcast_ref::<StreamSeekPastEof>(),
            Some(&StreamSeekPastEof {
                current_pos: 4,
                len: 10,
                new_pos: 11
            })
        );
        assert_eq!(
            e.to_string(),
            "seek past EOF: new_pos=11 len=10 current_pos=4"
        );
        assert_eq!(s.position(), 4);
        let e = s.seek(SeekFrom::Current(i64::MAX)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        // Unknown length that never becomes known: Unsupported (default wait_len).
        let mut m = Mock::new(b"");
        m.len = None;
        let mut s = stream(m);
        assert_eq!(
            s.seek(SeekFrom::End(0)).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        // Unknown length: seeking anywhere forward is allowed.
        assert_eq!(s.seek(SeekFrom::Start(u64::MAX)).unwrap(), u64::MAX);
    }

    #[test]
    fn pending_snapshot_display() {
        let p = StreamPending {
            reason: PendingReason::SeekPending,
            pos: 1,
            want: 2,
            len: Some(3),
            phase: SourcePhase::Seeking,
            epoch: 4,
            flushing: true,
        };
        assert_eq!(
            p.to_string(),
            "seek pending: pos=1 want=2 len=Some(3) phase=Seeking epoch=4 flushing=true"
        );
    }

    /// `read_exact` while a seek flushes: each `Read` waits (bounded) for
    /// the flush to end before reporting `Interrupted`, so the retry loop is
    /// not a spin; once the flush ends the bytes come.
    #[test]
    fn read_exact_during_a_pending_seek_waits_instead_of_spinning() {
        let mut m = Mock::new(b"ABCD");
        let tl = m.timeline.clone();
        let _ = tl.initiate_seek(Duration::from_secs(1));
        m.interrupt_while_flushing = true;
        let started = Instant::now();
        m.on_wait = Some(Box::new(move |tl| {
            if tl.is_flushing() && started.elapsed() > Duration::from_millis(200) {
                tl.complete_seek(tl.seek_epoch());
            }
        }));
        let mut s = stream(m);
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ABCD");
        let waits = s.source().wait_calls.load(Ordering::SeqCst);
        assert!(waits < 100, "{waits} waits: spinning");
        assert!(!tl.is_flushing());
    }

    /// While a seek flushes and the bytes are missing, `poll_read` is
    /// `Pending` (waker registered), never `Interrupted`/`WouldBlock`; the
    /// storage event wakes it when the bytes land after the flush.
    #[test]
    fn async_read_is_pending_through_a_flush() {
        use crate::cancel::CancelToken;
        use crate::storage::StorageResource;
        let res = StorageResource::memory(CancelToken::new());
        let src = StorageSource::new(res.clone());
        let tl = src.timeline();
        let mut s = Stream::<StorageSource>::from_source(src);
        let epoch = tl.initiate_seek(Duration::ZERO);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0u8; 4];
        assert!(Pin::new(&mut s).poll_read(&mut cx, &mut buf).is_pending());
        tl.complete_seek(epoch);
        assert!(Pin::new(&mut s).poll_read(&mut cx, &mut buf).is_pending());
        let w = res.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.write_at(0, b"WXYZ").unwrap();
            w.commit(None).unwrap();
        });
        let n =
            futures::executor::block_on(futures::io::AsyncReadExt::read(&mut s, &mut buf)).unwrap();
        assert_eq!(&buf[..n], &b"WXYZ"[..n]);
        t.join().unwrap();
    }

    /// A read across a known end waits only for the part below it.
    #[test]
    fn a_read_across_the_end_waits_for_the_tail_only() {
        use crate::cancel::CancelToken;
        use crate::storage::StorageResource;
        let res = StorageResource::memory(CancelToken::new());
        res.set_len_hint(Some(10));
        res.write_at(6, b"6789").unwrap(); // 0..6 missing
        let mut s = Stream::<StorageSource>::from_source(StorageSource::new(res));
        s.set_position(6);
        let mut buf = [0u8; 64];
        assert_eq!(
            s.try_read(&mut buf).unwrap(),
            StreamReadOutcome::Bytes {
                count: NonZeroUsize::new(4).unwrap(),
                byte_position: 10
            }
        );
        assert_eq!(&buf[..4], b"6789");
        assert_eq!(
            s.try_read(&mut buf).unwrap(),
            StreamReadOutcome::Eof { byte_position: 10 }
        );
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn async_poll_hooks_default_to_unsupported() {
        let mut s = stream(Mock::new(b"AB"));
        let mut buf = [0u8; 2];
        let e = futures::FutureExt::now_or_never(futures::io::AsyncReadExt::read(&mut s, &mut buf))
            .expect("ready at once")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}
