//! [`Source`] for [`HttpFileSource`]: the waits re-aim the download and a
//! failed download surfaces as its typed error.

use std::ops::Range;
use std::task::{Context, Poll};
use std::time::Duration;

use super::HttpFileSource;
use crate::error::StreamResult;
use crate::source::{ReadOutcome, Source, SourcePhase};
use crate::storage::WaitOutcome;
use crate::timeline::Timeline;

impl Source for HttpFileSource {
    /// Re-aims the download at `range.start` if needed, then waits as
    /// [`StorageSource`](crate::StorageSource) does; a failed download
    /// surfaces as its typed error.
    fn wait_range(
        &mut self,
        range: Range<u64>,
        timeout: Option<Duration>,
    ) -> StreamResult<WaitOutcome> {
        self.revive_if_reported();
        self.reachable(range.start)?;
        self.shared.want(self.first_wanted(&range));
        let r = self.inner.wait_range(range, timeout);
        self.map(r)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> StreamResult<ReadOutcome> {
        let inner = &mut self.inner;
        let r = self.shared.consume(|| {
            let r = inner.read_at(offset, buf);
            let gave = matches!(r, Ok(ReadOutcome::Bytes(_)));
            (r, gave)
        });
        self.map(r)
    }

    fn position(&self) -> u64 {
        self.inner.position()
    }

    /// Moves the cursor and re-aims the download there if that byte is
    /// neither present nor about to arrive.
    fn set_position(&self, pos: u64) {
        self.inner.set_position(pos);
        if !self.shared.unreachable(pos) {
            self.shared.want(pos);
        }
    }

    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }

    fn len(&self) -> Option<u64> {
        self.inner.len().or_else(|| self.shared.len())
    }

    fn phase_at(&self, range: Range<u64>) -> SourcePhase {
        self.inner.phase_at(range)
    }

    fn timeline(&self) -> Timeline {
        self.inner.timeline()
    }

    fn notify_waiting(&self) {
        self.inner.notify_waiting();
    }

    fn make_notify_fn(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        self.inner.make_notify_fn()
    }

    fn set_seek_epoch(&mut self, epoch: u64) {
        self.inner.set_seek_epoch(epoch);
    }

    /// The config's read timeout.
    fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    fn poll_wait_range(
        &mut self,
        cx: &mut Context<'_>,
        range: Range<u64>,
    ) -> Poll<StreamResult<WaitOutcome>> {
        self.revive_if_reported();
        self.reachable(range.start)?;
        self.shared.want(self.first_wanted(&range));
        let r = futures::ready!(self.inner.poll_wait_range(cx, range));
        Poll::Ready(self.map(r))
    }

    /// The length as the headers told it: an opened source has its headers,
    /// so this does not wait for the body (`Ok(None)` for an unsized one).
    fn wait_len(&mut self, timeout: Option<Duration>) -> StreamResult<Option<u64>> {
        if self.len().is_some() || self.shared.headers_known() {
            return Ok(self.len());
        }
        let r = self.inner.wait_len(timeout);
        self.map(r)
    }

    fn poll_wait_len(&mut self, cx: &mut Context<'_>) -> Poll<StreamResult<Option<u64>>> {
        if self.len().is_some() || self.shared.headers_known() {
            return Poll::Ready(Ok(self.len()));
        }
        let r = futures::ready!(self.inner.poll_wait_len(cx));
        Poll::Ready(self.map(r))
    }

    fn wait_flush_end(&mut self, timeout: Duration) -> bool {
        self.inner.wait_flush_end(timeout)
    }
}
