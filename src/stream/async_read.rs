//! The non-blocking side of [`Stream`]: `futures::io::AsyncRead +
//! AsyncSeek`, waiting through the source's async hooks.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncSeek};

use super::{Step, Stream, StreamReadError, StreamType};
use crate::source::{PendingReason, Source};
use crate::storage::WaitOutcome;

impl<T: StreamType> AsyncRead for Stream<T>
where
    T::Source: Unpin,
{
    /// Non-blocking read: waits through [`Source::poll_wait_range`] (the
    /// storage event for [`StorageSource`](crate::StorageSource)). Bytes → `Ok(n)`, true end →
    /// `Ok(0)`, source errors → the mapped `io::Error`. While the bytes are
    /// missing, or a seek is flushing, it is `Poll::Pending` with the waker
    /// registered (never `WouldBlock` or `Interrupted`), so
    /// `futures::io::AsyncReadExt::read_exact`, `read_to_end` and
    /// `futures::io::copy` just work. A read that crosses the known end
    /// returns the tail once it is present. Cancel-safe.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let tl = this.source.timeline();
            let read_epoch = tl.seek_epoch();
            let pos = this.source.position();
            let range = this.wanted(pos, buf.len());
            let outcome = match futures::ready!(this.source.poll_wait_range(cx, range)) {
                Ok(o) => o,
                Err(e) => return Poll::Ready(Err(StreamReadError::from(e).into())),
            };
            match outcome {
                WaitOutcome::Eof => return Poll::Ready(Ok(0)),
                // A source whose async wait reports a flush instead of
                // waiting it out: ask to be polled again.
                WaitOutcome::Interrupted => return yield_now(cx),
                WaitOutcome::Ready => {}
            }
            let step = match this.read_step(&tl, read_epoch, pos, buf) {
                Ok(s) => s,
                Err(e) => return Poll::Ready(Err(e.into())),
            };
            match step {
                Step::Read(n) => return Poll::Ready(Ok(n.get())),
                Step::Eof => return Poll::Ready(Ok(0)),
                // A seek moved the cursor: read there instead.
                Step::Moved | Step::Pending(PendingReason::Retry | PendingReason::SeekPending) => {}
                Step::Pending(_) => return yield_now(cx),
            }
        }
    }
}

/// `Poll::Pending` after waking the task at once: polled again soon.
fn yield_now<T>(cx: &mut Context<'_>) -> Poll<T> {
    cx.waker().wake_by_ref();
    Poll::Pending
}

impl<T: StreamType> AsyncSeek for Stream<T>
where
    T::Source: Unpin,
{
    /// Non-blocking seek: the same rules as `Seek`, except that there is no
    /// priming wait; `SeekFrom::End` with an unknown length waits through
    /// [`Source::poll_wait_len`].
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let current = this.source.position();
        let mut len = this.source.len();
        if matches!(pos, SeekFrom::End(_)) && len.is_none() {
            len = match futures::ready!(this.source.poll_wait_len(cx)) {
                Ok(l) => l,
                Err(e) => return Poll::Ready(Err(StreamReadError::from(e).into())),
            };
            if len.is_none() {
                return Poll::Ready(Err(this.unknown_len_error(false)));
            }
        }
        let new_pos = Self::seek_target(current, pos, len)?;
        if let Some(e) = this.past_eof(current, new_pos) {
            return Poll::Ready(Err(e));
        }
        this.source.set_position(new_pos);
        Poll::Ready(Ok(new_pos))
    }
}
