//! [`StorageSource`]: a [`Source`] over a [`StorageResource`].

use std::fmt;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{NotReadyCause, PendingReason, ReadOutcome, Source, SourcePhase};
use crate::error::{SourceError, StreamResult};
use crate::storage::{Changed, ResourceStatus, StorageError, StorageResource, WaitOutcome};
use crate::timeline::Timeline;

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
