//! The [`Source`] trait (what a [`Stream`](crate::Stream) reads from), its
//! outcome types, and [`StorageSource`], a ready-made source over a
//! [`StorageResource`](crate::storage::StorageResource).

use std::ops::Range;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::{SourceError, StreamResult};
use crate::storage::WaitOutcome;
use crate::timeline::Timeline;

mod outcome;
mod storage;

pub use outcome::{NotReadyCause, PendingReason, ReadOutcome, SourcePhase};
pub use storage::StorageSource;

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn phase_default_delegates_to_phase_at() {
        assert_eq!(Fixed(SourcePhase::Seeking).phase(), SourcePhase::Seeking);
    }
}
