//! Waiting on a [`StorageResource`]: the range checks, the sync and async
//! waits, and [`Changed`].

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{EventListener, Listener};

use super::{Data, StorageResource, read_data};
use crate::cancel::lock;
use crate::storage::{StorageError, StorageResult, WaitOutcome};

impl StorageResource {
    /// The non-blocking check behind [`wait_range`](Self::wait_range):
    /// `Ok(Some(outcome))` if a wait would return now, `Ok(None)` if it
    /// would block.
    ///
    /// In order: `start > end` → `InvalidRange`; an empty range → `Ready`;
    /// cancelled → `Cancelled`; all present (or, once committed, all of the
    /// part below `final_len`) → `Ready`, **also after a failure**; failed →
    /// `Failed`; committed and `start >= final_len` → `Eof`; committed with
    /// a gap → [`Missing`](StorageError::Missing); otherwise pending.
    /// A [`bounded`](Self::bounded) resource first notes the reader at
    /// `range.start` and clips the range to what its budget can hold.
    pub fn check_range(&self, range: Range<u64>) -> StorageResult<Option<WaitOutcome>> {
        if range.start > range.end {
            return Err(StorageError::InvalidRange {
                start: range.start,
                end: range.end,
            });
        }
        if range.start == range.end {
            return Ok(Some(WaitOutcome::Ready));
        }
        let mut st = lock(&self.inner.state);
        if self.inner.cancel.is_cancelled() {
            return Err(StorageError::Cancelled);
        }
        let range = self.note_reader(&mut st, range);
        if st.available.contains(range.clone()) {
            return Ok(Some(WaitOutcome::Ready));
        }
        if let Some(len) = st.committed
            && range.start < len
            && st.available.contains(range.start..range.end.min(len))
        {
            return Ok(Some(WaitOutcome::Ready));
        }
        self.health(&st)?;
        if let Some(len) = st.committed {
            if range.start >= len {
                return Ok(Some(WaitOutcome::Eof));
            }
            let end = range.end.min(len);
            return match st.available.next_gap(range.start, end) {
                None => Ok(Some(WaitOutcome::Ready)),
                Some(g) => Err(StorageError::Missing {
                    start: g.start,
                    end: g.end,
                }),
            };
        }
        Ok(None)
    }

    /// Blocks until `range` is present (`Ready`), the resource is committed
    /// and ends at or before `range.start` (`Eof`), or an error; see
    /// [`check_range`](Self::check_range) for the exact rules. `deadline =
    /// None` waits indefinitely; a passed deadline gives
    /// [`DeadlineExceeded`](StorageError::DeadlineExceeded).
    ///
    /// Never polls: listen → re-check → wait on the resource's event, which
    /// writes, commit, fail, reactivate and the cancel token all notify. A
    /// cancel or fail wakes a blocked waiter at once.
    pub fn wait_range(
        &self,
        range: Range<u64>,
        deadline: Option<Instant>,
    ) -> StorageResult<WaitOutcome> {
        self.wait_until(deadline, || self.check_range(range.clone()).transpose())
            .unwrap_or(Err(StorageError::DeadlineExceeded))
    }

    /// [`wait_range`](Self::wait_range) with a relative timeout (`None`: no
    /// deadline; a timeout too large to represent also means none).
    pub fn wait_range_timeout(
        &self,
        range: Range<u64>,
        timeout: Option<Duration>,
    ) -> StorageResult<WaitOutcome> {
        self.wait_range(range, timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// Blocks until `check` returns `Some` or `deadline` passes (then `None`,
    /// after one last check). `check` runs again after every notification of
    /// this resource's event, so it should read state that a notifying call
    /// changes (storage state, or anything whose writer calls
    /// [`notify_waiters`](Self::notify_waiters)). This is how sources layer
    /// their own conditions (a flushing timeline, a known length) on the same
    /// event.
    pub fn wait_until<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(t) = check() {
                return Some(t);
            }
            let listener = self.inner.event.listen();
            if let Some(t) = check() {
                return Some(t);
            }
            self.prepare_for_writer();
            match deadline {
                None => listener.wait(),
                Some(d) => {
                    if listener.wait_deadline(d).is_none() {
                        return check();
                    }
                }
            }
        }
    }

    /// A reader is about to block for the writer: memory storage uses the
    /// idle moment to map the writer's next page.
    fn prepare_for_writer(&self) {
        if let Data::Memory(pages) = &*read_data(&self.inner.data) {
            let active = {
                let st = lock(&self.inner.state);
                st.committed.is_none() && st.failed.is_none()
            };
            if active && !self.inner.cancel.is_cancelled() {
                pages.prepare_spare();
            }
        }
    }

    /// The async form of [`wait_range`](Self::wait_range), without a
    /// deadline (race it with your executor's timer if you need one). The
    /// future owns a handle, is `Send + 'static`, works on any executor and
    /// is cancel-safe.
    ///
    /// ```
    /// use kithara_stream::cancel::CancelToken;
    /// use kithara_stream::storage::{StorageResource, WaitOutcome};
    ///
    /// let res = StorageResource::memory(CancelToken::new());
    /// let wait = res.wait_range_async(0..4); // `'static`: can be moved to a task
    /// let writer = res.clone();
    /// let t = std::thread::spawn(move || writer.write_at(0, b"data"));
    /// assert_eq!(futures::executor::block_on(wait)?, WaitOutcome::Ready);
    /// t.join().unwrap()?;
    /// res.cancel_token().cancel();
    /// assert!(futures::executor::block_on(res.wait_range_async(4..8)).is_err(), "cancel wakes it");
    /// # Ok::<(), kithara_stream::storage::StorageError>(())
    /// ```
    pub fn wait_range_async(
        &self,
        range: Range<u64>,
    ) -> impl Future<Output = StorageResult<WaitOutcome>> + Send + 'static {
        let this = self.clone();
        async move {
            loop {
                if let Some(r) = this.check_range(range.clone()).transpose() {
                    return r;
                }
                let changed = this.changed();
                if let Some(r) = this.check_range(range.clone()).transpose() {
                    return r;
                }
                changed.await;
            }
        }
    }

    /// A future that completes at the next notification of this resource's
    /// event. Create it, re-check your condition, then await it (the
    /// listen → re-check → wait idiom): a notification between the check and
    /// the await is not lost. `'static`, `Send`, cancel-safe.
    pub fn changed(&self) -> Changed {
        Changed {
            listener: self.inner.event.listen(),
        }
    }

    /// Wakes every blocked waiter so it re-checks its condition. Lock-free;
    /// used by sources after a seek (`Source::notify_waiting`).
    pub fn notify_waiters(&self) {
        self.notify();
    }
}

/// Future returned by [`StorageResource::changed`]: completes at the next
/// notification of the resource's event.
pub struct Changed {
    listener: EventListener,
}

impl fmt::Debug for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed").finish_non_exhaustive()
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.listener).poll(cx)
    }
}
