//! The [`Source`] trait (what a [`Stream`](crate::Stream) reads from), its
//! outcome types, and [`StorageSource`], a ready-made source over a
//! [`StorageResource`].

use std::fmt;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{SourceError, StreamResult};
use crate::storage::{Changed, ResourceStatus, StorageError, StorageResource, WaitOutcome};
use crate::timeline::Timeline;

/// A read-only snapshot of where a source stands, for observers (pipeline,
/// UI, tracing). Never used for control flow by the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SourcePhase {
    /// The source (or its storage) was cancelled or failed.
    Cancelled,
    /// The probed range starts at or past the end.
    Eof,
    /// The probed range is readable now.
    Ready,
    /// A seek is flushing.
    Seeking,
    /// Waiting for data.
    #[default]
    Waiting,
    /// Waiting for the consumer to ask for data: for sources that fetch
    /// only on demand (segmented media, where a segment is requested when
    /// the reader reaches it). The sources of this crate fetch ahead of the
    /// reader and never report it; it stays so that such a source can
    /// implement [`Source`] with the upstream vocabulary.
    WaitingDemand,
    /// Waiting for metadata (headers, length).
    WaitingMetadata,
}

/// Why a read produced no bytes (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PendingReason {
    /// A seek is in progress: abort this read and do not retry the same
    /// offset.
    #[error("seek pending")]
    SeekPending,
    /// Transient: the data is not there yet.
    #[error("data not ready ({0})")]
    NotReady(NotReadyCause),
    /// The data went away between wait and read: wait again.
    #[error("resource evicted, retry wait_range")]
    Retry,
}

/// Why data was not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotReadyCause {
    /// The read's wait budget (`MAX_WAIT_SPINS` × `WAIT_RANGE_TIMEOUT`) ran out.
    WaitBudgetExhausted,
    /// The wait kept being interrupted although no flush was active.
    WaitInterrupted,
    /// The source said ready, then had nothing to read.
    SourcePending,
}

impl fmt::Display for NotReadyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WaitBudgetExhausted => "wait budget exhausted",
            Self::WaitInterrupted => "wait interrupted, no flush",
            Self::SourcePending => "source returned pending after wait ready",
        })
    }
}

/// The outcome of [`Source::read_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadOutcome {
    /// This many bytes were copied.
    Bytes(NonZeroUsize),
    /// No bytes were touched, for this reason.
    Pending(PendingReason),
    /// The natural end of the resource is at this offset.
    Eof,
}

/// Something a [`Stream`](crate::Stream) can read from: a byte cursor over a
/// resource that may still be arriving.
///
/// The stream calls [`wait_range`](Self::wait_range) then
/// [`read_at`](Self::read_at) and moves the cursor with
/// [`advance`](Self::advance); see the crate's read policy.
///
/// # Contract
/// - `wait_range(range, timeout)` returns `Ready` when `range` (or its part
///   below the end) is readable without blocking, `Eof` only when the
///   resource is **proven** to end at or before `range.start` (never for
///   bytes that just have not arrived), `Interrupted` while the timeline is
///   flushing, and `Err` on cancel/failure. With `Some(timeout)` a passed
///   deadline is `Err(SourceError::WaitBudgetExceeded)`; `None` waits
///   indefinitely. It must wake up promptly when
///   [`notify_waiting`](Self::notify_waiting) is called.
/// - `read_at` never advances the cursor and never blocks for long.
/// - Whoever learns the length (`len()` turning `Some`) must wake waiters.
///
/// # Async extension
/// [`poll_wait_range`](Self::poll_wait_range) and
/// [`poll_wait_len`](Self::poll_wait_len) are the non-blocking forms used by
/// the stream's `AsyncRead`/`AsyncSeek`. They default to "unsupported" so
/// sync-only sources stay simple; [`StorageSource`] implements them on the
/// storage event, without blocking the executor.
///
/// # Example
/// A source over bytes that are all there from the start, read as a `Stream`:
///
/// ```
/// use std::io::{Read, Seek, SeekFrom};
/// use std::num::NonZeroUsize;
/// use std::ops::Range;
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use std::time::Duration;
/// use kithara_stream::*;
///
/// struct Fixed { data: Vec<u8>, pos: AtomicU64, timeline: Timeline }
/// impl Source for Fixed {
///     fn wait_range(&mut self, r: Range<u64>, _: Option<Duration>) -> StreamResult<WaitOutcome> {
///         Ok(if r.start >= self.data.len() as u64 { WaitOutcome::Eof } else { WaitOutcome::Ready })
///     }
///     fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> StreamResult<ReadOutcome> {
///         let rest = self.data.get(offset as usize..).unwrap_or_default();
///         let n = rest.len().min(buf.len());
///         buf[..n].copy_from_slice(&rest[..n]);
///         Ok(NonZeroUsize::new(n).map_or(ReadOutcome::Eof, ReadOutcome::Bytes))
///     }
///     fn position(&self) -> u64 { self.pos.load(Relaxed) }
///     fn set_position(&self, pos: u64) { self.pos.store(pos, Relaxed) }
///     fn advance(&self, n: u64) { self.pos.fetch_add(n, Relaxed); }
///     fn len(&self) -> Option<u64> { Some(self.data.len() as u64) }
///     fn phase_at(&self, r: Range<u64>) -> SourcePhase {
///         if r.start >= self.data.len() as u64 { SourcePhase::Eof } else { SourcePhase::Ready }
///     }
///     fn timeline(&self) -> Timeline { self.timeline.clone() }
/// }
/// impl StreamType for Fixed {
///     type Config = Fixed;
///     type Source = Fixed;
///     fn create(c: Fixed) -> impl std::future::Future<Output = Result<Fixed, SourceError>> + Send {
///         std::future::ready(Ok(c))
///     }
/// }
///
/// let src = Fixed { data: b"0123456789".to_vec(), pos: AtomicU64::new(0), timeline: Timeline::new() };
/// let mut stream = Stream::<Fixed>::from_source(src);
/// stream.seek(SeekFrom::Start(6)).unwrap();
/// let mut tail = String::new();
/// stream.read_to_string(&mut tail).unwrap();
/// assert_eq!(tail, "6789");
/// ```
pub trait Source: Send + Sync + 'static {
    /// Blocks until `range` is ready, EOF, interrupted, an error, or the
    /// timeout passes (see the trait contract).
    fn wait_range(
        &mut self,
        range: Range<u64>,
        timeout: Option<Duration>,
    ) -> StreamResult<WaitOutcome>;

    /// Copies bytes at `offset` into `buf` without moving the cursor.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> StreamResult<ReadOutcome>;

    /// The byte cursor.
    fn position(&self) -> u64;

    /// Moves the cursor to `pos`.
    fn set_position(&self, pos: u64);

    /// Moves the cursor forward by `n` (saturating).
    fn advance(&self, n: u64);

    /// The total length, if known. Never blocks for long.
    fn len(&self) -> Option<u64>;

    /// A non-blocking snapshot of the phase for `range`.
    fn phase_at(&self, range: Range<u64>) -> SourcePhase;

    /// The shared timeline (a cheap clone).
    fn timeline(&self) -> Timeline;

    /// Whether there is nothing to read as far as is known: the length is
    /// unknown or zero (the upstream contract). [`Stream::is_empty`](crate::Stream::is_empty)
    /// tells the two apart (`None` while unknown); use it when the
    /// difference matters.
    fn is_empty(&self) -> bool {
        matches!(self.len(), None | Some(0))
    }

    /// The phase at the cursor: `phase_at(pos..pos + 1)` (saturating).
    fn phase(&self) -> SourcePhase {
        let pos = self.position();
        self.phase_at(pos..pos.saturating_add(1))
    }

    /// Wakes every thread blocked in [`wait_range`](Self::wait_range) so it
    /// re-checks (call after `Timeline::initiate_seek`). Default: no-op.
    fn notify_waiting(&self) {}

    /// A lock-free closure doing what [`notify_waiting`](Self::notify_waiting)
    /// does, for a seeker that does not hold the stream. Default: `None`.
    fn make_notify_fn(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }

    /// Tells the source which seek epoch the reader is in. Default: no-op.
    fn set_seek_epoch(&mut self, _epoch: u64) {}

    /// The blocking-read timeout this source asks for (e.g. from its
    /// config); [`Stream::from_source`](crate::Stream::from_source) starts
    /// with it, and `Stream::set_read_timeout` overrides it. Default: `None`.
    fn read_timeout(&self) -> Option<Duration> {
        None
    }

    /// Blocks until the timeline stops flushing or `timeout` passes, and
    /// says whether it stopped. The stream's `Read` calls it before it
    /// reports a pending seek as `Interrupted`, so `read_exact`'s retry is
    /// not a spin. It must wake on [`notify_waiting`](Self::notify_waiting)
    /// (the seeker calls it after `Timeline::complete_seek`). Default: one
    /// sleep of at most [`WAIT_RANGE_TIMEOUT`](crate::stream::WAIT_RANGE_TIMEOUT).
    fn wait_flush_end(&mut self, timeout: Duration) -> bool {
        let tl = self.timeline();
        if tl.is_flushing() {
            std::thread::sleep(timeout.min(crate::stream::WAIT_RANGE_TIMEOUT));
        }
        !tl.is_flushing()
    }

    /// Async form of `wait_range(range, None)`: `Poll::Pending` registers
    /// `cx`'s waker to be woken on the next relevant change; never blocks the
    /// thread. Unlike the blocking form it waits out a flush instead of
    /// returning `Interrupted` (the stream's `AsyncRead` never reports a
    /// seek as an error). Cancel-safe (dropping the caller's future loses
    /// nothing). Default: `Ready(Err(Unsupported))`.
    fn poll_wait_range(
        &mut self,
        _cx: &mut Context<'_>,
        _range: Range<u64>,
    ) -> Poll<StreamResult<WaitOutcome>> {
        Poll::Ready(Err(SourceError::Unsupported("async wait").into()))
    }

    /// Blocks until the length is known (then `Ok(Some(len))`), or the
    /// source can say it will not learn it now (`Ok(None)`, e.g. a flush), an
    /// error, or the timeout (`Err(WaitBudgetExceeded)`). Used by
    /// `SeekFrom::End`. Default: the length if known, else a
    /// `wait_range(0..1, timeout)` whose result is ignored, then `len()`.
    fn wait_len(&mut self, timeout: Option<Duration>) -> StreamResult<Option<u64>> {
        if let Some(len) = self.len() {
            return Ok(Some(len));
        }
        let _ = self.wait_range(0..1, timeout);
        Ok(self.len())
    }

    /// Async form of [`wait_len`](Self::wait_len) without a timeout.
    /// Default: `Ready(Ok(self.len()))`.
    fn poll_wait_len(&mut self, _cx: &mut Context<'_>) -> Poll<StreamResult<Option<u64>>> {
        Poll::Ready(Ok(self.len()))
    }
}

/// A [`Source`] over a [`StorageResource`]: any producer that writes into the
/// storage gets a reader for free.
///
/// - `wait_range`: the range is cut at the announced length
///   ([`StorageResource::set_len_hint`]), so the part below the end is
///   `Ready` as soon as it is present; then storage readiness (`Ready`,
///   `Eof`, or the storage error; present bytes stay `Ready` after a
///   failure), then `Interrupted` while the timeline is flushing, then `Eof`
///   if `range.start` is at or past the announced length; otherwise it
///   waits on the storage event. A passed timeout becomes
///   [`SourceError::WaitBudgetExceeded`].
/// - `len()`: the committed length, else the announced one.
/// - `notify_waiting` / `make_notify_fn` notify the storage event.
/// - The async hooks wait on the same event without blocking, and wait out
///   a flush (woken by `notify_waiting`) instead of reporting it.
///
/// ```
/// use kithara_stream::{Source, StorageSource, WaitOutcome};
/// use kithara_stream::cancel::CancelToken;
/// use kithara_stream::storage::StorageResource;
///
/// let res = StorageResource::from_bytes(b"abc", CancelToken::new());
/// let mut src = StorageSource::new(res);
/// assert_eq!(src.wait_range(0..3, None).unwrap(), WaitOutcome::Ready);
/// assert_eq!(src.len(), Some(3));
/// ```
pub struct StorageSource {
    storage: StorageResource,
    timeline: Timeline,
    position: AtomicU64,
    seek_epoch: u64,
    listener: Option<Changed>,
}

impl fmt::Debug for StorageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageSource")
            .field("storage", &self.storage)
            .field("position", &self.position())
            .field("seek_epoch", &self.seek_epoch)
            .finish_non_exhaustive()
    }
}

impl StorageSource {
    /// A source over `storage` with a fresh [`Timeline`], cursor at 0.
    pub fn new(storage: StorageResource) -> Self {
        Self::with_timeline(storage, Timeline::new())
    }

    /// A source over `storage` sharing `timeline` (e.g. with the producer).
    pub fn with_timeline(storage: StorageResource, timeline: Timeline) -> Self {
        Self {
            storage,
            timeline,
            position: AtomicU64::new(0),
            seek_epoch: 0,
            listener: None,
        }
    }

    /// The underlying storage.
    pub fn storage(&self) -> &StorageResource {
        &self.storage
    }

    /// The last epoch given to [`Source::set_seek_epoch`].
    pub fn seek_epoch(&self) -> u64 {
        self.seek_epoch
    }

    /// The wait's check: `range` cut at the announced length (the part
    /// below the end is what a read there can return), then storage
    /// readiness, then a flush (`Interrupted`, unless `through_flush`), then
    /// `Eof` past the announced length.
    fn check(&self, range: Range<u64>, through_flush: bool) -> Option<StreamResult<WaitOutcome>> {
        let start = range.start;
        let len = self.storage.len_hint();
        let range = match len {
            Some(l) if start < l => start..range.end.min(l),
            _ => range,
        };
        match self.storage.check_range(range) {
            Err(e) => Some(Err(e.into())),
            Ok(Some(o)) => Some(Ok(o)),
            Ok(None) if !through_flush && self.timeline.is_flushing() => {
                Some(Ok(WaitOutcome::Interrupted))
            }
            Ok(None) => match len {
                Some(len) if start >= len => Some(Ok(WaitOutcome::Eof)),
                _ => None,
            },
        }
    }

    fn check_len(&self, through_flush: bool) -> Option<StreamResult<Option<u64>>> {
        if let Some(len) = self.storage.len_hint() {
            return Some(Ok(Some(len)));
        }
        match self.storage.status() {
            ResourceStatus::Failed(r) => Some(Err(StorageError::Failed(r).into())),
            ResourceStatus::Cancelled => Some(Err(StorageError::Cancelled.into())),
            _ if !through_flush && self.timeline.is_flushing() => Some(Ok(None)),
            _ => None,
        }
    }

    /// The listen → re-check → await idiom on the storage event, as a poll.
    fn poll_until<T>(
        &mut self,
        cx: &mut Context<'_>,
        check: impl Fn(&Self) -> Option<T>,
    ) -> Poll<T> {
        loop {
            if let Some(t) = check(self) {
                self.listener = None;
                return Poll::Ready(t);
            }
            match self.listener.as_mut() {
                None => self.listener = Some(self.storage.changed()),
                Some(l) => {
                    futures::ready!(Pin::new(l).poll(cx));
                    self.listener = None;
                }
            }
        }
    }
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl Source for StorageSource {
    fn wait_range(
        &mut self,
        range: Range<u64>,
        timeout: Option<Duration>,
    ) -> StreamResult<WaitOutcome> {
        self.storage
            .wait_until(deadline(timeout), || self.check(range.clone(), false))
            .unwrap_or(Err(SourceError::WaitBudgetExceeded.into()))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> StreamResult<ReadOutcome> {
        let n = self.storage.read_at(offset, buf)?;
        Ok(match NonZeroUsize::new(n) {
            Some(n) => ReadOutcome::Bytes(n),
            None => match self.storage.len_hint() {
                Some(len) if offset >= len => ReadOutcome::Eof,
                _ => ReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::SourcePending)),
            },
        })
    }

    fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    fn set_position(&self, pos: u64) {
        self.position.store(pos, Ordering::Release);
    }

    fn advance(&self, n: u64) {
        let _ = self
            .position
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_add(n))
            });
    }

    fn len(&self) -> Option<u64> {
        self.storage.len_hint()
    }

    /// `Cancelled` if the storage was cancelled, or failed and the range is
    /// not present; `Seeking` while flushing, `Eof` at or past the known
    /// length, `Ready` if present (also after a failure), else `Waiting`
    /// (`WaitingMetadata` while the length is unknown and nothing is written
    /// yet).
    fn phase_at(&self, range: Range<u64>) -> SourcePhase {
        let failed = match self.storage.status() {
            ResourceStatus::Cancelled => return SourcePhase::Cancelled,
            ResourceStatus::Failed(_) => true,
            _ => false,
        };
        let len = self.storage.len_hint();
        let end = len.map_or(range.end, |l| range.end.min(l));
        let present = range.start < end && self.storage.contains_range(range.start..end);
        if failed && !present {
            // Present bytes stay readable after a failure; the rest is gone.
            return SourcePhase::Cancelled;
        }
        if self.timeline.is_flushing() {
            return SourcePhase::Seeking;
        }
        if let Some(len) = len
            && range.start >= len
        {
            return SourcePhase::Eof;
        }
        if present || range.start >= end {
            SourcePhase::Ready
        } else if len.is_none() && self.storage.available().is_empty() {
            SourcePhase::WaitingMetadata
        } else {
            SourcePhase::Waiting
        }
    }

    fn timeline(&self) -> Timeline {
        self.timeline.clone()
    }

    fn notify_waiting(&self) {
        self.storage.notify_waiters();
    }

    fn make_notify_fn(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let storage = self.storage.clone();
        Some(Box::new(move || storage.notify_waiters()))
    }

    fn set_seek_epoch(&mut self, epoch: u64) {
        self.seek_epoch = epoch;
    }

    fn poll_wait_range(
        &mut self,
        cx: &mut Context<'_>,
        range: Range<u64>,
    ) -> Poll<StreamResult<WaitOutcome>> {
        self.poll_until(cx, |s| s.check(range.clone(), true))
    }

    fn wait_len(&mut self, timeout: Option<Duration>) -> StreamResult<Option<u64>> {
        self.storage
            .wait_until(deadline(timeout), || self.check_len(false))
            .unwrap_or(Err(SourceError::WaitBudgetExceeded.into()))
    }

    fn poll_wait_len(&mut self, cx: &mut Context<'_>) -> Poll<StreamResult<Option<u64>>> {
        self.poll_until(cx, |s| s.check_len(true))
    }

    fn wait_flush_end(&mut self, timeout: Duration) -> bool {
        let tl = &self.timeline;
        self.storage
            .wait_until(deadline(Some(timeout)), || {
                (!tl.is_flushing()).then_some(())
            })
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::test_util::{LIMIT, spawn, within};

    struct Fixed(SourcePhase);

    impl Source for Fixed {
        fn wait_range(&mut self, _: Range<u64>, _: Option<Duration>) -> StreamResult<WaitOutcome> {
            Ok(WaitOutcome::Ready)
        }
        fn read_at(&mut self, _: u64, _: &mut [u8]) -> StreamResult<ReadOutcome> {
            Ok(ReadOutcome::Eof)
        }
        fn position(&self) -> u64 {
            u64::MAX
        }
        fn set_position(&self, _: u64) {}
        fn advance(&self, _: u64) {}
        fn len(&self) -> Option<u64> {
            None
        }
        fn phase_at(&self, range: Range<u64>) -> SourcePhase {
            assert_eq!(range, u64::MAX..u64::MAX);
            self.0
        }
        fn timeline(&self) -> Timeline {
            Timeline::new()
        }
    }

    #[test]
    fn test_source_trait_object_safety() {
        let b: Box<dyn Source> = Box::new(Fixed(SourcePhase::Ready));
        assert!(b.is_empty());
        assert!(b.make_notify_fn().is_none());
    }

    #[test]
    fn source_phase_defaults_to_waiting() {
        assert_eq!(SourcePhase::default(), SourcePhase::Waiting);
    }

    #[test]
    fn phase_default_delegates_to_phase_at() {
        assert_eq!(Fixed(SourcePhase::Seeking).phase(), SourcePhase::Seeking);
    }

    #[test]
    fn display_strings() {
        assert_eq!(PendingReason::SeekPending.to_string(), "seek pending");
        assert_eq!(
            PendingReason::NotReady(NotReadyCause::WaitBudgetExhausted).to_string(),
            "data not ready (wait budget exhausted)"
        );
        assert_eq!(
            PendingReason::Retry.to_string(),
            "resource evicted, retry wait_range"
        );
    }

    #[test]
    fn storage_source_basics() {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = StorageSource::new(res.clone());
        assert_eq!(s.phase(), SourcePhase::WaitingMetadata);
        res.write_at(0, b"abcdef").unwrap();
        assert_eq!(s.phase(), SourcePhase::Ready);
        assert_eq!(s.phase_at(2..10), SourcePhase::Waiting);
        let mut buf = [0u8; 4];
        assert_eq!(
            s.read_at(4, &mut buf).unwrap(),
            ReadOutcome::Bytes(NonZeroUsize::new(2).unwrap())
        );
        assert_eq!(
            s.read_at(6, &mut buf).unwrap(),
            ReadOutcome::Pending(PendingReason::NotReady(NotReadyCause::SourcePending))
        );
        // Bounded: a timeout that never fired would wait forever.
        let (waited, mut s) = within(LIMIT, "wait_range with a 5 ms timeout", move || {
            (s.wait_range(6..7, Some(Duration::from_millis(5))), s)
        });
        assert!(matches!(
            waited,
            Err(crate::StreamError::Source(SourceError::WaitBudgetExceeded))
        ));
        // An announced length proves EOF past it, without growing storage.
        res.set_len_hint(Some(6));
        assert_eq!(s.len(), Some(6));
        assert_eq!(s.wait_range(6..7, Some(LIMIT)).unwrap(), WaitOutcome::Eof);
        assert_eq!(s.read_at(6, &mut buf).unwrap(), ReadOutcome::Eof);
        assert_eq!(s.phase_at(6..7), SourcePhase::Eof);
        // Flushing interrupts a wait for missing bytes.
        res.set_len_hint(None);
        let e = s.timeline().initiate_seek(Duration::from_secs(1));
        assert_eq!(s.phase(), SourcePhase::Seeking);
        assert_eq!(
            s.wait_range(10..11, Some(LIMIT)).unwrap(),
            WaitOutcome::Interrupted
        );
        assert_eq!(s.wait_len(Some(LIMIT)).unwrap(), None);
        s.timeline().complete_seek(e);
        s.advance(3);
        assert_eq!(s.position(), 3);
        s.set_position(u64::MAX - 1);
        s.advance(10);
        assert_eq!(s.position(), u64::MAX);
        s.set_seek_epoch(7);
        assert_eq!(s.seek_epoch(), 7);
        res.cancel_token().cancel();
        assert_eq!(s.phase(), SourcePhase::Cancelled);
    }

    #[test]
    fn notify_wakes_a_blocked_wait_into_interrupted() {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = StorageSource::new(res);
        let tl = s.timeline();
        let notify = s.make_notify_fn().unwrap();
        let h = spawn("wait_range(0..1, None)", move || s.wait_range(0..1, None));
        h.assert_blocked(Duration::from_millis(30));
        let _ = tl.initiate_seek(Duration::ZERO);
        notify();
        assert_eq!(h.join(LIMIT).unwrap(), WaitOutcome::Interrupted);
    }

    #[test]
    fn wait_len_wakes_on_hint_and_commit() {
        let res = StorageResource::memory(CancelToken::new());
        let mut s = StorageSource::new(res.clone());
        let h = spawn("wait_len(None)", move || s.wait_len(None).unwrap());
        h.assert_blocked(Duration::from_millis(20));
        res.set_len_hint(Some(99));
        assert_eq!(h.join(LIMIT), Some(99));
        let res = StorageResource::memory(CancelToken::new());
        let mut s = StorageSource::new(res.clone());
        res.fail("x");
        assert!(matches!(
            s.wait_len(Some(LIMIT)).map_err(crate::StreamError::into_source_error),
            Err(SourceError::Storage(StorageError::Failed(r))) if r == "x"
        ));
    }
}
